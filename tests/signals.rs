//! SIGTERM and SIGHUP end a run as Ctrl-C does: the records of the open sessions and
//! the summary are written, and a live `-w` file is a whole capture.
//!
//! The live case needs root and a PostgreSQL server (`scripts/test.sh` runs it with
//! `--include-ignored`); the offline one reads standard input that stays open.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sends `sig` to `child`, waits at most 10 s for it to end; (exit code, stdout, stderr).
fn signal_and_collect(mut child: Child, sig: i32) -> (Option<i32>, String, String) {
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pgscope did not end within 10 s of signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let out = common::read_pipe(child.stdout.take());
    let err = common::read_pipe(child.stderr.take());
    (status.code(), out, err)
}

/// The first `n` records of a classic little-endian pcap file.
fn first_records(file: &[u8], n: usize) -> &[u8] {
    let mut at = 24;
    for _ in 0..n {
        let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    &file[..at]
}

/// Waits until `pid` has read at least `n` bytes (its /proc io counter).
fn wait_read(pid: u32, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let rchar: usize = io
            .lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if rchar >= n {
            // Read is not decoded yet: give the pipeline a moment.
            std::thread::sleep(Duration::from_millis(200));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pgscope read {rchar} of {n} bytes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Standard input that stays open (a pipe from tcpdump): before the connection ends, a
/// signal must still give the statements read so far and the session, closed at the
/// end of the capture, in JSON and in the summary.
#[test]
fn sigterm_and_sighup_end_an_offline_run_like_ctrl_c() {
    let capture = std::fs::read(common::root().join("captures/simple-queries.pcap")).unwrap();
    // The connection's startup and first statements, not its end.
    let part = first_records(&capture, 30);
    for (sig, mode) in [
        (libc::SIGTERM, "json"),
        (libc::SIGHUP, "json"),
        (libc::SIGTERM, "summary"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgscope"))
            .args(["-r", "-", "-o", mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgscope");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(part).unwrap();
        stdin.flush().unwrap();
        wait_read(child.id(), part.len());
        let (code, out, err) = signal_and_collect(child, sig);
        drop(stdin);
        assert_eq!(code, Some(0), "signal {sig}, {mode}: {err}");
        assert!(!err.contains("truncated"), "{err}");
        if mode == "summary" {
            let first = out.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("pgscope summary: 30 packets, 1 connections"),
                "{out}"
            );
            continue;
        }
        let recs = common::parse_lines(out.as_bytes(), std::path::Path::new("stdin"));
        let queries = recs
            .iter()
            .filter(|r| r["event.dataset"] == "pgwire.query")
            .count();
        assert!(queries > 0, "signal {sig}: no query records: {out}");
        let session = recs
            .iter()
            .find(|r| r["event.dataset"] == "pgwire.session")
            .unwrap_or_else(|| panic!("signal {sig}: no session record: {out}"));
        assert_eq!(session["pgwire.close_reason"], "end_of_capture");
        assert_eq!(session["pgwire.queries"], queries);
    }
}

/// Live on loopback with `-w`, a psql session left open: SIGTERM writes its statement
/// and its session record, and the `-w` file reads to its end in tcpdump.
#[test]
#[ignore = "needs root and a PostgreSQL server: run scripts/test.sh"]
fn sigterm_ends_a_live_capture_with_a_whole_savefile() {
    let port = std::env::var("PG15_PORT").expect("PG15_PORT: source scripts/pg-setup.sh's env");
    let dir = tempfile::tempdir().unwrap();
    // The capture runs as nobody once the handle and the file are open.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let save = dir.path().join("raw.pcap");
    let child = Command::new(env!("CARGO_BIN_EXE_pgscope"))
        .args(["-i", "lo", "-p", &port, "-o", "json", "-w"])
        .arg(&save)
        .args(["--records", "query,session"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pgscope");
    std::thread::sleep(Duration::from_millis(1500));
    let marker = format!("sigterm_{}", std::process::id());
    let mut psql = Command::new(std::env::var("PSQL").unwrap_or_else(|_| "psql".into()))
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "trust_user", "-d"])
        .args(["pgscope", "-X", "-q"])
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run psql");
    let mut psql_in = psql.stdin.take().unwrap();
    // Enough rows that the capture holds large packets, which a cut would split.
    writeln!(
        psql_in,
        "select '{marker}', repeat('x', 100000) from generate_series(1, 20);"
    )
    .unwrap();
    psql_in.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (code, out, err) = signal_and_collect(child, libc::SIGTERM);
    drop(psql_in);
    let _ = psql.wait();
    assert_eq!(code, Some(0), "{err}");
    let recs = common::parse_lines(out.as_bytes(), std::path::Path::new("live"));
    let mine = recs
        .iter()
        .find(|r| {
            r["event.dataset"] == "pgwire.query"
                && r["db.query.text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&marker))
        })
        .unwrap_or_else(|| panic!("marker statement missing: {err}\n{out}"));
    assert_eq!(mine["db.response.returned_rows"], 20);
    let session = recs
        .iter()
        .find(|r| {
            r["event.dataset"] == "pgwire.session" && r["pgwire.conn_id"] == mine["pgwire.conn_id"]
        })
        .expect("the open session's record");
    assert_eq!(session["pgwire.close_reason"], "end_of_capture");
    // tcpdump reads the file to its end, without a complaint about a cut record.
    let td = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&save)
        .output()
        .expect("run tcpdump");
    let td_err = String::from_utf8_lossy(&td.stderr);
    assert!(td.status.success(), "{td_err}");
    assert!(!td_err.contains("truncated"), "{td_err}");
    let packets = String::from_utf8_lossy(&td.stdout).lines().count();
    assert!(packets > 20, "{packets} packets in the savefile");
    // Raw packets may hold credentials: the file is the owner's only, whatever the
    // umask the run started with (the test harness's is 022).
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&save).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "-w file mode {mode:o}");
}
