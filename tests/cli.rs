//! The command line as tcpdump and tshark users expect it (issue 15): BPF on files
//! and as trailing words, -D, compressed captures, line-buffered output from a pipe,
//! --filter on every record kind, text timestamps, hints, generated man page and
//! completions, and what `cargo install` installs.

mod common;

use common::{parse_lines, pgscope, root};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PGSCOPE: &str = env!("CARGO_BIN_EXE_pgscope");
/// Every record kind.
const KINDS: &str = "message,query,session,anomaly";

fn capture(name: &str) -> PathBuf {
    root().join("captures").join(name)
}

fn run_ok(args: &[&str]) -> Vec<u8> {
    let r = pgscope(args);
    assert_eq!(r.status, 0, "{args:?}: {}", r.stderr);
    r.stdout
}

fn json(args: &[&str]) -> Vec<Value> {
    parse_lines(&run_ok(args), Path::new(args[1]))
}

fn datasets(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["event.dataset"].as_str().unwrap())
        .collect()
}

fn count(records: &[Value], dataset: &str) -> usize {
    datasets(records).iter().filter(|d| **d == dataset).count()
}

#[test]
fn bpf_filter_applies_to_files_and_takes_trailing_words() {
    let f = capture("simple-queries.pcap");
    let f = f.to_str().unwrap();
    let all = run_ok(&["-r", f, "-o", "json"]);
    assert!(count(&parse_lines(&all, Path::new(f)), "pgwire.query") > 3);
    // Every packet of the capture is on port 5432: the same records.
    assert_eq!(run_ok(&["-r", f, "-f", "tcp port 5432"]), all);
    assert_eq!(run_ok(&["-r", f, "tcp", "port", "5432"]), all);
    // None is on 5433, or IPv6.
    for words in [&["-f", "port 5433"][..], &["port", "5433"], &["ip6"]] {
        let mut args = vec!["-r", f, "-o", "json"];
        args.extend_from_slice(words);
        let out = run_ok(&args);
        assert_eq!(out, b"", "{words:?}");
    }
    // The IPv6 capture: `ip6` keeps it whole, `ip` drops it; a pcapng file too.
    let v6 = capture("ipv6-simple.pcap");
    let v6 = v6.to_str().unwrap();
    assert_eq!(run_ok(&["-r", v6, "ip6"]), run_ok(&["-r", v6]));
    assert_eq!(run_ok(&["-r", v6, "ip"]), b"");
    let ng = capture("external/ndpi/pgsql2.pcapng");
    let ng = ng.to_str().unwrap();
    let kinds = "message,session";
    let whole = json(&["-r", ng, "-p", "60102", "--records", kinds]);
    assert!(count(&whole, "pgwire.message") > 0);
    let kept = run_ok(&[
        "-r",
        ng,
        "-p",
        "60102",
        "--records",
        kinds,
        "tcp port 60102",
    ]);
    assert_eq!(parse_lines(&kept, Path::new(ng)), whole);
    let udp = run_ok(&["-r", ng, "-p", "60102", "--records", kinds, "udp"]);
    assert_eq!(udp, b"");
    // Only the packets that pass count towards -c, as with tcpdump.
    let none = run_ok(&["-r", f, "-c", "1", "port", "5433"]);
    assert_eq!(none, b"");
}

#[test]
fn bad_bpf_filter_is_a_one_line_error() {
    let f = capture("simple-queries.pcap");
    for args in [
        &["-f", "tcp port"][..],
        &["tcp", "prot", "5432"],
        &["-o", "text", "host", "nosuch..name"],
    ] {
        let mut a = vec!["-r", f.to_str().unwrap()];
        a.extend_from_slice(args);
        let r = pgscope(&a);
        assert_eq!(r.status, 2, "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("pgscope: bad capture filter"),
            "{}",
            r.stderr
        );
    }
    // -f and trailing words together: which one was meant?
    let r = pgscope(&["-r", f.to_str().unwrap(), "-f", "tcp", "port", "5432"]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

#[test]
fn lists_interfaces_like_tcpdump() {
    let out = String::from_utf8(run_ok(&["-D"])).unwrap();
    let lo = out
        .lines()
        .find(|l| l.split_once('.').is_some_and(|(_, n)| n.starts_with("lo ")))
        .unwrap_or_else(|| panic!("no lo in:\n{out}"));
    assert!(lo.contains("Loopback"), "{lo}");
    let tcpdump = Command::new("tcpdump").arg("-D").output();
    if let Ok(t) = tcpdump {
        // The same interfaces, numbered alike.
        let names = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.split(' ').next().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&out), names(&String::from_utf8_lossy(&t.stdout)));
    }
}

/// Compresses `src` with `tool` (gzip, zstd) into `dst`.
fn compress(tool: &str, src: &Path, dst: &Path) {
    let out = Command::new(tool)
        .args(["-c", src.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (scripts/test.sh installs it)"));
    assert!(out.status.success(), "{tool}: {out:?}");
    std::fs::write(dst, out.stdout).unwrap();
}

#[test]
fn compressed_captures_give_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "simple-queries.pcap",
        "pipeline-error.pcap",
        "ipv6-simple.pcap",
        "external/ndpi/pgsql2.pcapng",
    ] {
        let src = capture(name);
        let ports = common::ports_of(&src);
        let port = ports[0].to_string();
        let every_record = |path: &Path| {
            let kinds = "message,query,session,anomaly";
            run_ok(&[
                "-r",
                path.to_str().unwrap(),
                "-p",
                &port,
                "--records",
                kinds,
            ])
        };
        let want = every_record(&src);
        assert!(!want.is_empty());
        let base = src.file_name().unwrap().to_str().unwrap();
        // By content, not by name: one copy keeps the extension, one does not.
        for (tool, file) in [
            ("gzip", format!("{base}.gz")),
            ("zstd", format!("{base}.zst")),
            ("gzip", format!("{base}-gz-without-extension")),
            ("zstd", "zstd-without-extension".to_string()),
        ] {
            let dst = dir.path().join(&file);
            compress(tool, &src, &dst);
            let got = every_record(&dst);
            assert!(got == want, "{name} through {tool} ({file}) differs");
        }
        // Standard input too (multi-member and multi-frame streams: the next test).
        let gz = dir.path().join(format!("{base}.gz"));
        let r = Command::new(PGSCOPE)
            .args(["-r", "-", "-p", &port, "--records", KINDS])
            .stdin(std::fs::File::open(&gz).unwrap())
            .output()
            .unwrap();
        assert!(r.status.success());
        assert!(r.stdout == want, "{name}: gzip on standard input differs");
    }
}

/// A classic pcap file split after its header plus `n` packets.
fn split_pcap(bytes: &[u8], n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut at = 24;
    for _ in 0..n {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    (bytes[..at].to_vec(), bytes[at..].to_vec())
}

fn packets_in(bytes: &[u8]) -> usize {
    let (mut at, mut n) = (24, 0);
    while at < bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        n += 1;
    }
    n
}

#[test]
fn multi_member_gzip_and_multi_frame_zstd_read_as_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let src = capture("simple-queries.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let (a, b) = split_pcap(&bytes, packets_in(&bytes) / 2);
    let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let want = run_ok(&["-r", src.to_str().unwrap()]);
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst")] {
        let (ca, cb) = (
            dir.path().join(format!("a.{ext}")),
            dir.path().join(format!("b.{ext}")),
        );
        compress(tool, &pa, &ca);
        compress(tool, &pb, &cb);
        let mut both = std::fs::read(&ca).unwrap();
        both.extend(std::fs::read(&cb).unwrap());
        let joined = dir.path().join(format!("joined.{ext}"));
        std::fs::write(&joined, both).unwrap();
        assert!(run_ok(&["-r", joined.to_str().unwrap()]) == want, "{tool}");
    }
    // A damaged compressed file is an error that says so, not a panic.
    let gz = dir.path().join("a.gz");
    let mut bad = std::fs::read(&gz).unwrap();
    let mid = bad.len() / 2;
    bad[mid..].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&gz, bad).unwrap();
    let r = pgscope(&["-r", gz.to_str().unwrap()]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("gzip")
            || r.stderr.contains("read error")
            || r.stderr.contains("corrupt"),
        "{}",
        r.stderr
    );
}

/// `tcpdump -U -w - | pgscope -r - | jq`: records come out as packets arrive, not at
/// the end of the input. Part of a capture goes into the pipe, which stays open: the
/// statements it holds must be written before anything more is sent.
#[test]
fn records_from_a_pipe_come_out_before_its_end() {
    let bytes = std::fs::read(capture("simple-queries.pcap")).unwrap();
    let n = packets_in(&bytes);
    // All but the connection's end: the statements are whole, the session is open.
    let (first, rest) = split_pcap(&bytes, n - 3);
    let mut child = Command::new(PGSCOPE)
        .args(["-r", "-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&first).unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let early = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no record while the pipe is open: output is not line-buffered");
    assert!(early.contains("\"pgwire.query\""), "{early}");
    // Nothing waits for the end: the session record only comes with its packets.
    std::thread::sleep(Duration::from_millis(300));
    let mut before_end = vec![early];
    before_end.extend(rx.try_iter());
    assert!(before_end.iter().all(|l| !l.contains("\"pgwire.session\"")));
    stdin.write_all(&rest).unwrap();
    drop(stdin);
    let after: Vec<String> = rx.iter().collect();
    assert!(child.wait().unwrap().success());
    assert!(after.iter().any(|l| l.contains("\"pgwire.session\"")));
    let all: Vec<String> = before_end.into_iter().chain(after).collect();
    let want = run_ok(&["-r", capture("simple-queries.pcap").to_str().unwrap()]);
    assert_eq!(all.join("\n") + "\n", String::from_utf8(want).unwrap());
}

#[test]
fn filter_applies_to_text_messages_and_sessions() {
    let f = capture("simple-queries.pcap");
    let f = f.to_str().unwrap();
    let text = |filter: &str| {
        String::from_utf8(run_ok(&["-r", f, "-o", "text", "--filter", filter])).unwrap()
    };
    let all = String::from_utf8(run_ok(&["-r", f, "-o", "text"])).unwrap();
    assert!(all.contains("FE=> Query"));
    assert_eq!(text("user=trust_user and client=127.0.0.0/8"), all);
    assert_eq!(text("server=127.0.0.1:5432"), all);
    let none = text("user=someone_else or client=10.0.0.0/8");
    assert!(!none.contains("FE=>") && !none.contains("<= BE"), "{none}");
    // Statement fields: a message has none, so none is kept.
    assert!(!text("duration>0").contains("FE=>"));
    // Message records in JSON likewise.
    let msgs = |filter: &str| json(&["-r", f, "--records", "message", "--filter", filter]);
    let every = json(&["-r", f, "--records", "message"]);
    assert_eq!(msgs("db=pgscope app~RECORD"), every);
    assert!(msgs("db=other").is_empty());
    // A statement-only term keeps statements and drops sessions; a connection term
    // keeps both.
    let recs = |filter: &str| json(&["-r", f, "--filter", filter]);
    let slow = recs("duration>=0");
    assert!(count(&slow, "pgwire.query") > 0);
    assert_eq!(count(&slow, "pgwire.session"), 0);
    let mine = recs("user=trust_user");
    assert_eq!(count(&mine, "pgwire.session"), 1);
    assert_eq!(count(&mine, "pgwire.query"), count(&slow, "pgwire.query"));
    let either = recs("failed or user=trust_user");
    assert_eq!(either, mine);
    let failed = recs("text~'SELECT 1' and not failed");
    assert!(failed.iter().all(|q| {
        q["db.query.text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("select 1")
    }));
    assert!(!failed.is_empty());
}

#[test]
fn bad_filter_expressions_are_errors() {
    let f = capture("simple-queries.pcap");
    for (filter, says) in [
        ("usr=alice", "unknown key \"usr\""),
        ("user<>alice", "takes = != ~"),
        ("(user=alice", "unclosed parenthesis"),
        ("client=10.0.0.0/40", "not an address"),
    ] {
        let r = pgscope(&["-r", f.to_str().unwrap(), "--filter", filter]);
        assert_eq!(r.status, 2, "{filter}");
        assert!(r.stdout.is_empty());
        assert!(
            r.stderr.starts_with("pgscope: --filter: at "),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{filter}: {}", r.stderr);
    }
}

fn starts(line: &str, prefix: &str) {
    assert!(
        line.starts_with(prefix),
        "{line:?} does not start with {prefix:?}"
    );
}

fn text_with_tz(tz: &str, extra: &[&str]) -> Vec<String> {
    let f = capture("simple-queries.pcap");
    let mut args = vec!["-r", f.to_str().unwrap(), "-o", "text"];
    args.extend_from_slice(extra);
    let out = Command::new(PGSCOPE)
        .args(&args)
        .env("TZ", tz)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn text_timestamps_follow_tcpdump() {
    // The first message is at 2026-11-24T02:34:59.169140Z.
    let utc = text_with_tz("UTC", &[]);
    starts(&utc[0], "02:34:59.169140 #1 FE=> StartupMessage");
    // Local time by default, as tcpdump: a POSIX zone 5:30 east of UTC.
    let east = text_with_tz("XYZ-5:30", &[]);
    starts(&east[0], "08:04:59.169140 #1 ");
    let full = text_with_tz("XYZ-5:30", &["-tttt"]);
    starts(&full[0], "2026-11-24 08:04:59.169140 +0530 #1 ");
    let west = text_with_tz("XYZ+3", &["-tttt"]);
    starts(&west[0], "2026-11-23 23:34:59.169140 -0300 #1 ");
    let none = text_with_tz("UTC", &["-t"]);
    starts(&none[0], "#1 FE=> StartupMessage");
    let epoch = text_with_tz("XYZ-5:30", &["-tt"]);
    starts(&epoch[0], "1795487699.169140 #1 ");
    let delta = text_with_tz("UTC", &["-ttt"]);
    starts(&delta[0], "00:00:00.000000 #1 ");
    starts(&delta[1], "00:00:00.007790 #1 ");
    let since = text_with_tz("UTC", &["-ttttt"]);
    assert_eq!(since.len(), utc.len());
    starts(since.last().unwrap(), "00:00:00.0");
}

#[test]
fn ipv6_addresses_are_bracketed_with_ports() {
    let f = capture("ipv6-simple.pcap");
    let out = String::from_utf8(run_ok(&["-r", f.to_str().unwrap(), "-o", "text"])).unwrap();
    let closed = out.lines().find(|l| l.contains("-- closed")).unwrap();
    assert!(closed.contains("[::1]:5432"), "{closed}");
    assert!(
        closed.contains("-> [::1]:5432") && closed.contains("): [::1]:"),
        "{closed}"
    );
}

/// One connection on 5432 that speaks HTTP, and a busier one on 8080.
fn not_postgres(path: &Path) {
    use pgscope::synth::{From, PcapWriter, TcpConn};
    let mut w = PcapWriter::new(Vec::new(), 1, 65535).unwrap();
    let mut frames = Vec::new();
    let mut c = TcpConn::new(1);
    frames.extend(c.handshake());
    frames.push(c.data(From::Client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    frames.push(c.data(
        From::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ));
    frames.extend(c.close());
    for (i, f) in frames.iter().enumerate() {
        w.record(i as i64 * 1000, f, f.len() as u32).unwrap();
    }
    std::fs::write(path, w.into_inner()).unwrap();
}

#[test]
fn no_postgres_found_names_the_busiest_ports() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("http.pcap");
    not_postgres(&f);
    let r = pgscope(&["-r", f.to_str().unwrap(), "-o", "json", "-p", "6432"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let hint = r
        .stderr
        .lines()
        .find(|l| l.contains("no PostgreSQL"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        hint.contains("busiest TCP ports: 5432 (6 packets), 40001 (6 packets)"),
        "{hint}"
    );
    assert!(hint.contains("-p PORT"), "{hint}");
    // A capture with PostgreSQL in it gives no hint.
    let ok = pgscope(&[
        "-r",
        capture("simple-queries.pcap").to_str().unwrap(),
        "-o",
        "summary",
    ]);
    assert!(!ok.stderr.contains("no PostgreSQL"), "{}", ok.stderr);
}

#[test]
fn permission_errors_name_root_and_cap_net_raw() {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            PGSCOPE,
            "-i",
            "lo",
            "-o",
            "json",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("CAP_NET_RAW") && err.contains("root") || err.contains("sudo"),
        "{err}"
    );
    assert!(err.contains("CAP_NET_RAW"), "{err}");
    let r = pgscope(&["-i", "no-such-interface0", "-o", "json"]);
    assert_eq!(r.status, 2);
    assert!(
        r.stderr.contains("pgscope -D lists the interfaces"),
        "{}",
        r.stderr
    );
}

#[test]
fn man_page_and_completions_come_from_the_definition() {
    let man = String::from_utf8(run_ok(&["--generate", "man"])).unwrap();
    let parts = [
        ".TH pgscope 1",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        "EXPRESSION",
        "\\-\\-tls\\-keylog",
        "\\-\\-filter",
        "\\-D",
        "\\-\\-snaplen",
    ];
    for part in parts {
        assert!(man.contains(part), "man page lacks {part}");
    }
    let bash = String::from_utf8(run_ok(&["--generate", "bash"])).unwrap();
    assert!(bash.contains("complete -F _pgscope") && bash.contains("--filter-bpf"));
    // bash itself accepts the script.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pgscope.bash");
    std::fs::write(&script, &bash).unwrap();
    let st = Command::new("bash").arg("-n").arg(&script).status();
    assert!(st.unwrap().success());
    for (shell, needle) in [("zsh", "#compdef pgscope"), ("fish", "complete -c pgscope")] {
        let s = String::from_utf8(run_ok(&["--generate", shell])).unwrap();
        assert!(s.contains(needle), "{shell}");
    }
}

#[test]
fn tcpdump_habits_are_accepted() {
    let f = capture("simple-queries.pcap");
    let f = f.to_str().unwrap();
    let plain = run_ok(&["-r", f]);
    assert_eq!(run_ok(&["-n", "-l", "-r", f]), plain);
    let r = pgscope(&["-r", f, "-s", "999999"]);
    assert_eq!(r.status, 2);
    assert_eq!(pgscope(&["-r", f, "-s", "0"]).status, 0);
}

/// `cargo install --path .` installs every binary target: only pgscope must be one
/// (the damage tool is an example).
#[test]
fn cargo_install_installs_only_pgscope() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bins: Vec<&str> = meta["packages"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(bins, ["pgscope"]);
}

/// docs/cli.md shows `pgscope --help` as it is (at 100 columns); regenerate with
/// `COLUMNS=100 pgscope --help` after changing an option.
#[test]
fn docs_show_the_current_help() {
    let out = Command::new(PGSCOPE)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/cli.md")).unwrap();
    let start = doc.find("```\n").unwrap() + 4;
    let end = start + doc[start..].find("```\n").unwrap();
    assert!(
        doc[start..end] == help,
        "docs/cli.md's help block is not `COLUMNS=100 pgscope --help`:\n{help}"
    );
    assert!(
        help.lines().all(|l| l.chars().count() <= 100),
        "help wider than 100 columns"
    );
}
