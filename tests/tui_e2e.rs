//! End to end: pgscope's TUI in a real terminal (tmux, 80×24) on real captures,
//! driven by keys, checked on the captured pane. Skips, saying why, without tmux.

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

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn tui_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("SKIPPED tui_in_tmux: tmux is not installed (apt-get install tmux)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let captures = root.join("captures/external/zeek");
    // tmux runs the command through the shell: quote the paths.
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    // The exit status goes to a file: tmux's #{pane_dead_status} is sometimes empty
    // for a process that has exited normally.
    let status_file = std::env::temp_dir().join(format!("pgscope-e2e-{}.rc", std::process::id()));
    let _ = std::fs::remove_file(&status_file);
    let cmd = format!(
        "{} -r {} -r {}; echo $? > {}",
        quote(Path::new(env!("CARGO_BIN_EXE_pgscope"))),
        quote(&captures.join("greenhouse-app.pcap")),
        quote(&captures.join("psql-insert-fail-drop-fail.pcap")),
        quote(&status_file)
    );
    let t = Tmux {
        socket: format!("pgscope-e2e-{}", std::process::id()),
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
    t.cmd(&["respawn-pane", "-k", "-t", "e2e", &cmd]);

    // Sessions: both files read, three sessions, the errors counted in the header.
    let pane = t.wait_for(&["end of capture", "Sessions: 3 shown"]);
    assert!(pane.contains("plant_serv"), "{pane}");
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
        pane.contains("commit") && pane.contains("drop table t"),
        "{pane}"
    );
    t.keys(&["6"]);
    let pane = t.wait_for(&["Errors: 2 groups"]);
    assert!(pane.contains("42804") && pane.contains("42P01"), "{pane}");
    t.keys(&["Enter"]);
    t.wait_for(&["ERROR 42P01", "DROP TABLE"]);

    // Recent statements, newest first; Enter opens one.
    t.keys(&["3"]);
    t.wait_for(&["Queries: 89 most recent first"]);
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
    assert!(!pane.contains("user_servi"), "{pane}");

    // Help, then quit: the process ends and the terminal is restored.
    t.keys(&["?"]);
    t.wait_for(&["Sessions keys", "any key closes"]);
    t.keys(&["Escape", "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t
        .cmd(&["display-message", "-p", "-t", "e2e", "#{pane_dead}"])
        .trim()
        != "1"
    {
        assert!(
            Instant::now() < deadline,
            "pgscope did not quit:\n{}",
            t.pane()
        );
        sleep(Duration::from_millis(100));
    }
    let status = std::fs::read_to_string(&status_file).unwrap_or_default();
    let _ = std::fs::remove_file(&status_file);
    assert_eq!(status.trim(), "0", "{}", t.pane());
    let pane = t.pane();
    assert!(
        !pane.contains("Sessions:"),
        "alternate screen left:\n{pane}"
    );
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
