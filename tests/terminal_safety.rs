//! Bytes from the wire never reach a terminal raw: a query carrying ANSI escape
//! sequences and other control bytes comes out escaped in the text trace and the
//! summary, and as valid JSON in the records.

mod common;

use common::*;
use pgscope::synth::{self, From, PcapWriter, TcpConn};

const HOSTILE: &[u8] = b"select '\x1b[2J\x1b]0;owned\x07\r\x08\x7f\xc2\x9b31m' as x";

fn hostile_capture(dir: &std::path::Path) -> std::path::PathBuf {
    let mut conn = TcpConn::new(7);
    let mut frames: Vec<Vec<u8>> = conn.handshake().into();
    frames.push(conn.data(From::Client, &synth::startup(&[("user", "eve\x1b[5m")])));
    frames.push(conn.data(
        From::Server,
        &[synth::auth_ok(), synth::ready(b'I')].concat(),
    ));
    frames.push(conn.data(From::Client, &synth::query(HOSTILE)));
    let answer = [
        synth::data_row(&[Some(b"\x1b[31m")]),
        synth::command_complete(b"SELECT 1"),
        synth::ready(b'I'),
    ]
    .concat();
    frames.push(conn.data(From::Server, &answer));
    frames.extend(conn.close());
    let mut w = PcapWriter::new(Vec::new(), 1, 65535).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.record(
            1_700_000_000_000_000_000 + i as i64 * 1000,
            f,
            f.len() as u32,
        )
        .unwrap();
    }
    let path = dir.join("hostile.pcap");
    std::fs::write(&path, w.into_inner()).unwrap();
    path
}

#[test]
fn control_bytes_are_escaped_in_every_output_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_capture(dir.path());
    let p = path.to_str().unwrap();
    // The summary shows statements normalised (the literal becomes `?`): the user
    // name carries the escape there.
    for (mode, shown) in [("text", "\\u{1b}[2J"), ("summary", "eve\\u{1b}[5m")] {
        let run = pgscope(&["-r", p, "-o", mode]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let out = String::from_utf8(run.stdout).expect("UTF-8");
        let raw: Vec<char> = out
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(
            raw.is_empty(),
            "{mode}: raw control characters {raw:?} in\n{out}"
        );
        assert!(
            out.contains(shown),
            "{mode}: the escape is shown, escaped:\n{out}"
        );
    }
    // JSON keeps the bytes (escaped by JSON itself), so log tools see the real text.
    let recs = records(&path, "query,session", &[]);
    let q = of_kind(&recs, "pgwire.query")[0];
    assert_eq!(q["db.query.text"].as_str().unwrap().as_bytes(), HOSTILE);
    assert_eq!(
        of_kind(&recs, "pgwire.session")[0]["user.name"],
        "eve\x1b[5m"
    );
}
