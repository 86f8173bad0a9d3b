//! `-Z`: the user is checked before any file is touched, and root is dropped for
//! `-r` as for live capture, once the inputs are open.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `-Z` user that does not exist fails the run and leaves an existing `-w` file as
/// it was (it used to be replaced by an empty capture first).
#[test]
fn unknown_user_fails_before_the_savefile_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("keep.pcap");
    std::fs::write(&save, b"precious bytes").unwrap();
    let run = common::pgscope(&[
        "-i",
        "lo",
        "-o",
        "json",
        "-w",
        save.to_str().unwrap(),
        "-Z",
        "no-such-user-pgscope",
    ]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("-Z: no such user \"no-such-user-pgscope\""),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&save).unwrap(), b"precious bytes");
    // Offline too: nothing is read.
    let capture = common::root().join("captures/simple-queries.pcap");
    let run = common::pgscope(&[
        "-r",
        capture.to_str().unwrap(),
        "-Z",
        "no-such-user-pgscope",
    ]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

/// The effective uid of a running process, from /proc.
fn uid_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().to_string()
}

/// As root, `-r` runs as nobody (or the `-Z` user) once every input is open: a file
/// only root may read is still read, and while pgscope waits on standard input (the
/// second `-r`) it is no longer root.
#[test]
#[ignore = "needs root: run scripts/test.sh"]
fn offline_reading_as_root_drops_privileges_after_opening_the_inputs() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test must run as root");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = dir.path().join("root-only.pcap");
    std::fs::copy(
        common::root().join("captures/simple-queries.pcap"),
        &private,
    )
    .unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    // (-Z, uid expected): the default is nobody; daemon is uid 1 on Debian.
    for (user, uid) in [(None, "65534"), (Some("daemon"), "1")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgscope"));
        cmd.args(["-o", "json", "-r"])
            .arg(&private)
            .args(["-r", "-"]);
        if let Some(u) = user {
            cmd.args(["-Z", u]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgscope");
        let mut stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while uid_of(child.id()) != uid {
            assert!(
                Instant::now() < deadline,
                "{user:?}: still uid {}",
                uid_of(child.id())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // End standard input with an empty classic pcap: the run finishes.
        let empty = pgscope::synth::PcapWriter::new(Vec::new(), 1, 65535)
            .unwrap()
            .into_inner();
        stdin.write_all(&empty).unwrap();
        drop(stdin);
        let status = child.wait().unwrap();
        let out = common::read_pipe(child.stdout.take());
        let err = common::read_pipe(child.stderr.take());
        assert!(status.success(), "{user:?}: {err}");
        assert!(
            out.contains("\"event.dataset\":\"pgwire.query\""),
            "{user:?}: the root-only file was not read: {err}"
        );
    }
}
