//! End to end: pgscope's TUI in a real terminal (tmux, 80×24) on real captures,
//! driven by keys, checked on the captured pane. tmux is required (scripts/test.sh
//! installs it): without it these tests fail, they never pass unrun.

mod common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn pane(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "e2e"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "e2e", k]);
        }
    }

    fn type_text(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "e2e", "-l", text]);
    }

    /// Waits until the pane shows every one of `want`; panics with the pane if not.
    fn wait_for(&self, want: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let pane = self.pane();
            if want.iter().all(|w| pane.contains(w)) {
                return pane;
            }
            if Instant::now() > deadline {
                panic!("pane never showed {want:?}:\n{pane}");
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Tmux {
    /// A detached 80×24 session `e2e` running `cmd` through the shell, its pane kept
    /// after the command ends.
    fn start(name: &str, cmd: &str) -> Tmux {
        assert!(
            Command::new("tmux").arg("-V").output().is_ok(),
            "tmux is not installed: apt-get install tmux (scripts/test.sh does)"
        );
        let t = Tmux {
            socket: format!("pgscope-{name}-{}", std::process::id()),
        };
        t.cmd(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            "80",
            "-y",
            "24",
            "-e",
            "NO_COLOR=1",
        ]);
        t.cmd(&["set-option", "-t", "e2e", "remain-on-exit", "on"]);
        t.cmd(&["respawn-pane", "-k", "-t", "e2e", cmd]);
        t
    }

    fn format(&self, f: &str) -> String {
        self.cmd(&["display-message", "-p", "-t", "e2e", f])
            .trim()
            .to_string()
    }

    /// Waits for the pane's command to end; panics with the pane if it does not.
    fn wait_dead(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.format("#{pane_dead}") != "1" {
            assert!(
                Instant::now() < deadline,
                "pgscope did not quit:\n{}",
                self.pane()
            );
            sleep(Duration::from_millis(100));
        }
    }
}

/// tmux runs the command through the shell: quote the paths.
fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// `pgscope` on `files` in the pane, its exit status written to the returned file:
/// tmux's #{pane_dead_status} is sometimes empty for a process that has exited
/// normally.
fn tui_command(files: &[&str], tag: &str) -> (String, std::path::PathBuf) {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/external/zeek");
    let status_file = std::env::temp_dir().join(format!("pgscope-{tag}-{}.rc", std::process::id()));
    let _ = std::fs::remove_file(&status_file);
    let mut cmd = quote(Path::new(env!("CARGO_BIN_EXE_pgscope")));
    for f in files {
        cmd += &format!(" -r {}", quote(&captures.join(f)));
    }
    cmd += &format!("; echo $? > {}", quote(&status_file));
    (cmd, status_file)
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn tui_in_tmux() {
    let (cmd, status_file) = tui_command(
        &["greenhouse-app.pcap", "psql-insert-fail-drop-fail.pcap"],
        "e2e",
    );
    let t = Tmux::start("e2e", &cmd);

    // Sessions: both files read, three sessions, the errors counted in the header.
    let pane = t.wait_for(&["end of capture", "Sessions: 3 shown"]);
    assert!(pane.contains("plant_se"), "{pane}");
    assert!(pane.contains("2 errors"), "{pane}");

    // Timeline of the first session, which follows its tail.
    t.keys(&["Enter"]);
    let pane = t.wait_for(&["Timeline [following] #1"]);
    assert!(pane.contains("ReadyForQuery"), "{pane}");

    // The statement of the last message (ROLLBACK), then back.
    t.keys(&["Enter"]);
    let pane = t.wait_for(&["Query #", "SQL"]);
    assert!(pane.contains("ROLLBACK"), "{pane}");
    t.keys(&["Escape"]);
    t.wait_for(&["Timeline [following] #1"]);

    // Scrolling up stops following; G resumes.
    t.keys(&["Up"]);
    t.wait_for(&["Timeline [End/G: follow] #1"]);
    t.keys(&["G"]);
    t.wait_for(&["Timeline [following] #1"]);

    // Top queries and errors; Enter on an error opens the failing statement.
    t.keys(&["5"]);
    let pane = t.wait_for(&["Top queries:", "total▼"]);
    assert!(
        // As pg_stat_statements shows them: as written, constants as $n.
        pane.contains("COMMIT") && pane.contains("DROP TABLE t"),
        "{pane}"
    );
    t.keys(&["6"]);
    let pane = t.wait_for(&["Errors: 2 groups"]);
    assert!(pane.contains("42804") && pane.contains("42P01"), "{pane}");
    t.keys(&["Enter"]);
    t.wait_for(&["ERROR 42P01", "DROP TABLE"]);

    // Statements, latest start first; Enter opens one.
    t.keys(&["3"]);
    t.wait_for(&["Queries: 0 running, 89 done", "by start time ▼"]);
    t.keys(&["Enter"]);
    t.wait_for(&["Query #", "timing"]);

    // Pause shows in the header and freezes the view; p resumes.
    t.keys(&["p"]);
    t.wait_for(&["pgscope PAUSED 3 sessions"]);
    t.keys(&["p"]);
    let pane = t.wait_for(&["pgscope 3 sessions"]);
    assert!(!pane.contains("PAUSED"), "{pane}");

    // A filter, checked as it is typed, then applied to the sessions.
    t.keys(&["1", "f"]);
    t.type_text("db=plant_service_db rows>x");
    t.wait_for(&["filter> db=plant_service_db rows>x", "bad number"]);
    for _ in 0.."rows>x".len() {
        t.keys(&["BSpace"]);
    }
    t.wait_for(&["✓"]);
    t.keys(&["Enter"]);
    let pane = t.wait_for(&["filter: db=plant_service_db", "Sessions: 1 shown"]);
    assert!(!pane.contains("user_se"), "{pane}");

    // Help, then quit: the process ends and the terminal is restored.
    t.keys(&["?"]);
    t.wait_for(&["Sessions keys", "any key closes"]);
    // One key at a time: ESC and `q` read together would be Alt-q.
    t.keys(&["Escape"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.pane().contains("any key closes") {
        assert!(
            Instant::now() < deadline,
            "help did not close:\n{}",
            t.pane()
        );
        sleep(Duration::from_millis(100));
    }
    t.keys(&["q"]);
    t.wait_dead();
    let status = std::fs::read_to_string(&status_file).unwrap_or_default();
    let _ = std::fs::remove_file(&status_file);
    assert_eq!(status.trim(), "0", "{}", t.pane());
    let pane = t.pane();
    assert!(
        !pane.contains("Sessions:"),
        "alternate screen left:\n{pane}"
    );
}

/// SIGTERM (and SIGHUP, as when the terminal closes) end the TUI as `q` does: the
/// alternate screen is left, the cursor shown again, and the exit status is 0.
#[test]
fn tui_ends_on_sigterm_and_sighup_with_the_terminal_restored() {
    for (sig, name) in [(libc::SIGTERM, "term"), (libc::SIGHUP, "hup")] {
        let (cmd, status_file) = tui_command(&["greenhouse-app.pcap"], name);
        // The shell lingers: tmux resets the cursor flag of a dead pane.
        let t = Tmux::start(name, &format!("{cmd}; sleep 5"));
        t.wait_for(&["end of capture", "Sessions:"]);
        assert_eq!(
            t.format("#{alternate_on}"),
            "1",
            "TUI not on the alternate screen"
        );
        // The pane runs the shell; pgscope is its child.
        let shell = t.format("#{pane_pid}");
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        let pid: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
        // SAFETY: a signal to the pgscope this test started.
        unsafe { libc::kill(pid, sig) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match std::fs::read_to_string(&status_file) {
                Ok(s) if s.ends_with('\n') => break s,
                _ if Instant::now() > deadline => panic!("{name}: pgscope did not quit"),
                _ => sleep(Duration::from_millis(100)),
            }
        };
        let _ = std::fs::remove_file(&status_file);
        assert_eq!(status.trim(), "0", "{name}: {}", t.pane());
        assert_eq!(
            t.format("#{alternate_on}"),
            "0",
            "{name}: alternate screen kept"
        );
        assert_eq!(
            t.format("#{cursor_flag}"),
            "1",
            "{name}: cursor left hidden"
        );
        let pane = t.pane();
        assert!(!pane.contains("Sessions:"), "{name}: {pane}");
    }
}

/// A TUI whose terminal goes away (the tmux server killed, as a closed terminal
/// window or ssh session) ends: no orphan left spinning on a dead terminal, which
/// crossterm alone would do (each used a quarter of a core, for hours).
#[test]
fn tui_ends_when_its_terminal_goes_away() {
    let (cmd, _) = tui_command(&["greenhouse-app.pcap"], "gone");
    // `exec`: the pane's process is pgscope itself.
    let cmd = cmd.split(';').next().unwrap();
    let t = Tmux::start("gone", &format!("exec {cmd}"));
    t.wait_for(&["end of capture", "Sessions:"]);
    let pid: i32 = t.format("#{pane_pid}").parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "pgscope");
    drop(t);
    // Gone, or a zombie that init has not reaped yet.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive() && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    if alive() {
        // SAFETY: the pgscope this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("pgscope outlived its terminal by 10 s");
    }
}

#[test]
fn filter_option_is_validated() {
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/external/zeek/greenhouse-app.pcap");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pgscope"))
            .arg("-r")
            .arg(&capture)
            .args(args)
            .output()
            .expect("run pgscope");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--filter", "db=x bogus=1"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--filter: at 6: unknown key \"bogus\""),
        "{err}"
    );
    // JSON applies the same filter (tests/scenarios.rs checks what it keeps).
    let (code, err) = run(&["-o", "json", "--filter", "db=x"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(&["-o", "tui"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("needs a terminal"), "{err}");
}

/// The first duration of at least a second on a line of `pane` holding every one
/// of `want`, in seconds (the TUI writes them as `1.23s`).
fn seconds_on_line(pane: &str, want: &[&str]) -> Option<f64> {
    pane.lines()
        .filter(|l| want.iter().all(|w| l.contains(w)))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.strip_suffix('s')?.parse::<f64>().ok())
        .next()
}

/// The TUI capturing live on loopback for the test server's port (`PG15_PORT`), with
/// `extra` arguments for that port, ready to see traffic.
fn live_tui(name: &str, extra: impl Fn(&str) -> String) -> (Tmux, String) {
    let port =
        std::env::var("PG15_PORT").expect("PG15_PORT: source the env file of scripts/pg-setup.sh");
    let cmd = format!(
        "{} -i lo -p {port}{}",
        quote(Path::new(env!("CARGO_BIN_EXE_pgscope"))),
        extra(&port)
    );
    let t = Tmux::start(name, &cmd);
    t.wait_for(&["live lo", "Sessions:"]);
    // libpcap needs a moment before the handle sees traffic.
    sleep(Duration::from_millis(1500));
    (t, port)
}

/// A statement still running shows, with its elapsed time ticking: `select
/// pg_sleep(5)` against the local server, captured live on loopback, appears in
/// Queries as running (`[server]`, waiting for the server's answer) and in Sessions
/// as active, each with at least a second elapsed, then in Queries as done.
#[test]
#[ignore = "needs root and a PostgreSQL server: run scripts/test.sh"]
fn running_statement_shows_while_it_runs() {
    let (t, port) = live_tui("inflight", |_| String::new());
    let mut psql = common::psql(&port)
        .args(["-c", "select pg_sleep(5)"])
        .spawn()
        .expect("run psql");
    // Queries: the running statement first, its elapsed time growing past a second.
    t.keys(&["3"]);
    let deadline = Instant::now() + Duration::from_secs(4);
    let elapsed = loop {
        let pane = t.pane();
        let secs = seconds_on_line(&pane, &["[server] select pg_sleep", " run "]);
        if let Some(s) = secs.filter(|s| *s >= 1.0) {
            assert!(pane.contains("Queries: 1 running"), "{pane}");
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no running pg_sleep with a second elapsed:\n{pane}"
        );
        sleep(Duration::from_millis(100));
    };
    assert!(elapsed < 5.0, "{elapsed}");
    // Sessions: active, with the running time beside it.
    t.keys(&["1"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let pane = t.pane();
        if seconds_on_line(&pane, &["127.0.0.1", "active"]).is_some_and(|s| s > elapsed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no active session with a growing running time:\n{pane}"
        );
        sleep(Duration::from_millis(100));
    }
    // Once answered it is a finished statement of about 5 s.
    assert!(psql.wait().unwrap().success());
    t.keys(&["3"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pane = t.pane();
        let done = seconds_on_line(&pane, &["select pg_sleep", " ok "]);
        if done.is_some_and(|s| (4.9..6.0).contains(&s)) && !pane.contains("[server]") {
            assert!(pane.contains("Queries: 0 running"), "{pane}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pg_sleep never finished:\n{pane}"
        );
        sleep(Duration::from_millis(100));
    }
    t.keys(&["q"]);
    t.wait_dead();
}

/// A client that vanished (its FIN and RST never reach pgscope: the capture filter
/// drops them) on a quiet link: the session shows `idle`, then `closed` once the
/// idle timeout has passed on the wall clock, with no further packet. IPv6 loopback,
/// so other tests' traffic (IPv4) does not move the capture clock.
#[test]
#[ignore = "needs root and a PostgreSQL server: run scripts/test.sh"]
fn a_vanished_client_ends_on_a_quiet_link() {
    let (t, port) = live_tui("vanished", |port| {
        format!(" --idle-timeout 2s -f 'ip6 and tcp port {port} and ip6[53] & 0x05 == 0'")
    });
    let status = common::psql(&port)
        .args(["-h", "::1", "-c", "select 42"])
        .status()
        .expect("run psql");
    assert!(status.success());
    let pane = t.wait_for(&["1 sessions (0 open)"]);
    let row = pane
        .lines()
        .find(|l| l.contains("[::1]:"))
        .unwrap_or_else(|| panic!("no session row:\n{pane}"));
    assert!(row.contains("closed"), "{pane}");
}

/// `--pooler-port` in the TUI: the correlator runs there too, and the query detail
/// shows the link of the statement opened, the same link the JSON records give it.
#[test]
fn pooler_links_show_in_the_query_detail() {
    let cap = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/pooler/transaction.pcap");
    let bin = Path::new(env!("CARGO_BIN_EXE_pgscope"));
    // As tests/pooler.rs reads these captures.
    let args = ["-p", "5432", "-p", "6432", "--pooler-port", "6432"];
    let cmd = format!("{} -r {} {}", quote(bin), quote(&cap), args.join(" "));
    let t = Tmux::start("pooler", &cmd);
    t.wait_for(&["end of capture"]);
    // The latest statement to start.
    t.keys(&["3"]);
    t.wait_for(&["by start time ▼"]);
    t.keys(&["Enter"]);
    let pane = t.wait_for(&["Query #", "pooler"]);
    let number_after = |line: &str, tag: &str| -> u64 {
        let rest = &line[line.find(tag).unwrap_or_else(|| panic!("{tag}: {pane}")) + tag.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap_or_else(|_| panic!("{tag}: {pane}"))
    };
    let line_of = |start: &str| pane.lines().find(|l| l.contains(start)).unwrap();
    let conn = number_after(line_of("session     #"), "session     #");
    let pooler = line_of("pooler      ");
    let (leg, peer_field) = if pooler.contains("server leg") {
        ("server", "pgwire.pooler.client_conn_id")
    } else {
        ("client", "pgwire.pooler.server_conn_id")
    };
    let peer = number_after(pooler, "connection #");
    // The JSON records of the same capture: that connection has a statement of
    // that leg linked to that peer.
    let records = common::records(&cap, "query", &["--pooler-port", "6432"]);
    let found = records.iter().any(|v| {
        v["pgwire.conn_id"] == conn && v["pgwire.pooler.leg"] == leg && v[peer_field] == peer
    });
    assert!(
        found,
        "no {leg}-leg record of #{conn} linked to #{peer}:\n{pane}"
    );
    t.keys(&["q"]);
    t.wait_dead();
}
