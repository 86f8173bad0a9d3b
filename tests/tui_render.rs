//! Robustness: every capture at hand goes through the TUI's sink, then every view is
//! driven by keys and drawn at small, usual and large sizes. Nothing may panic.
//! Uses the repository's captures and, when present beside the checkout,
//! shared/captures/external.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pgscope::output::redact::{Redact, Redaction};
use pgscope::tui::app::App;
use pgscope::tui::state::{Limits, State, TuiSink, lock};
use pgscope::tui::ui::{Theme, draw};
use pgscope::{capture, pipeline};
use ratatui::{Terminal, backend::TestBackend};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

#[test]
fn every_view_of_every_capture_draws() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    captures(&root.join("captures"), &mut files);
    captures(&root.join("../shared/captures/external"), &mut files);
    assert!(files.len() >= 2, "no captures found");
    let secrets: Vec<String> = std::fs::read_to_string(root.join("captures/secrets.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut auth_screens = 0;
    for path in &files {
        let is_auth = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("auth-"));
        let name = path.display().to_string();
        // Small bounds so that the dropping paths run too.
        let limits = Limits {
            messages_total: 500,
            messages_per_session: 200,
            queries: 50,
            ..Limits::default()
        };
        let shared = Arc::new(Mutex::new(State::new(limits, name.clone(), None)));
        let mut sink = Redact::new(TuiSink::new(shared.clone()), Redaction::default());
        let mut pipe = pipeline::Pipeline::new(&mut sink, vec![5432, 5433], Default::default());
        let file = std::fs::File::open(path).unwrap();
        // Some captures are deliberately cut or empty: errors are fine, panics are not.
        let _ = capture::read_file(&name, file, &AtomicBool::new(false), &mut |p| {
            pipe.packet(&p).unwrap();
            capture::Flow::Continue(())
        });
        pipe.finish().unwrap();

        let mut app = App::new(Default::default());
        let keys = "1\n>r2k\n/e\nn3\n4jG5\n<6\ngG7\n1F3>G\nt4FF";
        for c in keys.chars() {
            let code = if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            };
            app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
            app.refresh(&lock(&shared), Instant::now());
            for (w, h) in [(20, 5), (80, 24), (200, 60)] {
                let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
                t.draw(|f| draw(f, &app, Theme { color: true }))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                // No password, MD5 hash or SCRAM proof on any screen of the auth captures.
                if is_auth {
                    let screen: String = t
                        .backend()
                        .buffer()
                        .content()
                        .iter()
                        .map(|c| c.symbol())
                        .collect();
                    for secret in &secrets {
                        assert!(!screen.contains(secret.as_str()), "{name} shows {secret}");
                    }
                    auth_screens += 1;
                }
            }
        }
    }
    assert!(auth_screens > 0, "no authentication capture was drawn");
}

/// The control for the secrets check above: with --show-secrets the cleartext
/// password does reach the timeline, so a leak would have been seen.
#[test]
fn shown_secrets_do_reach_the_screen() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("captures/auth-cleartext.pcap");
    let shared = Arc::new(Mutex::new(State::new(Limits::default(), "t".into(), None)));
    let show = Redaction {
        show_secrets: true,
        ..Redaction::default()
    };
    let mut sink = Redact::new(TuiSink::new(shared.clone()), show);
    let mut pipe = pipeline::Pipeline::new(&mut sink, vec![5432], Default::default());
    let file = std::fs::File::open(&path).unwrap();
    capture::read_file("t", file, &AtomicBool::new(false), &mut |p| {
        pipe.packet(&p).unwrap();
        capture::Flow::Continue(())
    })
    .unwrap();
    pipe.finish().unwrap();
    let mut app = App::new(Default::default());
    // Sessions, open the first one's timeline, go to its top.
    for code in [KeyCode::Char('1'), KeyCode::Enter, KeyCode::Char('g')] {
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        app.refresh(&lock(&shared), Instant::now());
    }
    let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap();
    t.draw(|f| draw(f, &app, Theme { color: false })).unwrap();
    let screen: String = t
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("clear-secret-pw"), "{screen}");
}
