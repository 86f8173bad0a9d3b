//! Bytes from the wire never reach a terminal raw: a query carrying ANSI escape
//! sequences, other control bytes and bidirectional overrides comes out escaped in the
//! text trace, the summary and the TUI, and as valid JSON with every control
//! character (C1 included) escaped in the records.

mod common;

use common::*;
use pgscope::synth::{self, From, PcapWriter, TcpConn};

/// ESC sequences, BEL, CR, BS, DEL, U+009B (CSI), U+202E (right-to-left override),
/// U+2066 (left-to-right isolate), U+FEFF.
const HOSTILE: &[u8] =
    "select '\x1b[2J\x1b]0;owned\x07\r\x08\x7f\u{9b}31m' as x /* \u{202e}\u{2066}\u{feff} */"
        .as_bytes();
const USER: &str = "eve\x1b[5m\u{202e}";

/// What a terminal must never be handed raw: control characters (C0, DEL, C1) and the
/// invisible characters that reorder or hide text.
fn unsafe_for_terminal(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061C}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn hostile_capture(dir: &std::path::Path) -> std::path::PathBuf {
    let mut conn = TcpConn::new(7);
    let mut frames: Vec<Vec<u8>> = conn.handshake().into();
    frames.push(conn.data(From::Client, &synth::startup(&[("user", USER)])));
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
    for (mode, shown) in [
        ("text", "\\u{1b}[2J"),
        ("text", "\\u{9b}31m"),
        ("text", "/* \\u{202e}\\u{2066}\\u{feff} */"),
        ("summary", "eve\\u{1b}[5m\\u{202e}"),
    ] {
        let run = pgscope(&["-r", p, "-o", mode]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let out = String::from_utf8(run.stdout).expect("UTF-8");
        let raw: Vec<char> = out.chars().filter(|&c| unsafe_for_terminal(c)).collect();
        assert!(
            raw.is_empty(),
            "{mode}: raw control characters {raw:?} in\n{out}"
        );
        assert!(
            out.contains(shown),
            "{mode}: the escape is shown, escaped:\n{out}"
        );
    }
    // JSON keeps the text (escaped by JSON itself), so log tools see the real text:
    // every control character escaped, C1 too (JSON allows it raw, a terminal obeys
    // it), in the statement and in the session's startup parameters.
    let run = pgscope(&["-r", p, "-o", "json", "--records", "query,session,message"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let out = String::from_utf8(run.stdout).unwrap();
    let raw: Vec<char> = out
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    assert!(raw.is_empty(), "raw control characters {raw:?} in JSON");
    assert!(out.contains("\\u009b31m"), "{out}");
    let recs = records(&path, "query,session", &[]);
    let q = of_kind(&recs, "pgwire.query")[0];
    assert_eq!(q["db.query.text"].as_str().unwrap().as_bytes(), HOSTILE);
    assert_eq!(of_kind(&recs, "pgwire.session")[0]["user.name"], USER);
}

/// The TUI draws the same capture with nothing unsafe in any cell of its views: the
/// sessions, the timeline, the statements and one statement's detail.
#[test]
fn tui_shows_control_and_bidi_characters_escaped() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use pgscope::tui::{app::App, state, ui};
    use ratatui::{Terminal, backend::TestBackend};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_capture(dir.path());
    let shared = Arc::new(Mutex::new(state::State::new(
        Default::default(),
        "hostile".into(),
        None,
    )));
    let mut sink = pgscope::output::redact::Redact::new(
        state::TuiSink::new(shared.clone()),
        Default::default(),
    );
    let mut pipe = pgscope::pipeline::Pipeline::new(&mut sink, vec![5432], Default::default());
    let file = std::fs::File::open(&path).unwrap();
    pgscope::capture::read_file("t", file, &Default::default(), &mut |p| {
        pipe.packet(&p).unwrap();
        pgscope::capture::Flow::Continue(())
    })
    .unwrap();
    pipe.finish().unwrap();
    let mut app = App::new(Default::default());
    let mut seen = String::new();
    for key in ['1', '\n', '3', '\n'] {
        let code = if key == '\n' {
            KeyCode::Enter
        } else {
            KeyCode::Char(key)
        };
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        app.refresh(&state::lock(&shared), std::time::Instant::now());
        let mut t = Terminal::new(TestBackend::new(200, 50)).unwrap();
        t.draw(|f| ui::draw(f, &app, ui::Theme { color: false }))
            .unwrap();
        let screen: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        let raw: Vec<char> = screen.chars().filter(|&c| unsafe_for_terminal(c)).collect();
        assert!(
            raw.is_empty(),
            "after {key:?}: {raw:?} on screen:\n{screen}"
        );
        seen.push_str(&screen);
    }
    // The statement was on screen, its bidi override shown as an escape.
    assert!(seen.contains("\\u{202e}"), "{seen}");
    assert!(seen.contains("eve\\u{1b}[5m"), "{seen}");
}

/// A capture file name holding escape sequences is escaped in the error line.
#[test]
fn file_names_are_escaped_in_error_lines() {
    let dir = tempfile::tempdir().unwrap();
    let name = dir.path().join("evil\x1b]0;owned\x07\x1b[2J\u{202e}.pcap");
    std::fs::write(&name, "not a capture at all, just text\n").unwrap();
    let missing = dir.path().join("gone\x1b[31m.pcap");
    for f in [&name, &missing] {
        let run = pgscope(&["-r", f.to_str().unwrap(), "-o", "json"]);
        assert_eq!(run.status, 2, "{}", run.stderr);
        let raw: Vec<char> = run
            .stderr
            .chars()
            .filter(|&c| unsafe_for_terminal(c))
            .collect();
        assert!(raw.is_empty(), "{raw:?} in {:?}", run.stderr);
        assert!(run.stderr.contains("\\u{1b}"), "{}", run.stderr);
    }
}
