//! `--redact-params` (without `--show-secrets`) in every presenter that writes to
//! standard output: no bind parameter value in JSON (statement and Bind message
//! records), the text trace or the summary. All of them, and the TUI, sit behind the
//! one redaction step (`output::redact::Redact`, built in main); the TUI's side is
//! checked through it in src/tui/ui/tests.rs and tests/tui_render.rs. Without the flag the same values are there, so the checks
//! can fail.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;

const CAPTURE: &str = "captures/pgbench-prepared.pcap";

fn run(args: &[&str]) -> String {
    let path = common::root().join(CAPTURE);
    let mut all = vec!["-r", path.to_str().unwrap()];
    all.extend(args);
    let r = common::pgscope(&all);
    assert_eq!(r.status, 0, "{}", r.stderr);
    String::from_utf8(r.stdout).unwrap()
}

/// Values of every parameter list (statement records and Bind messages).
fn values(json: &str) -> (BTreeSet<String>, usize) {
    let (mut found, mut redacted) = (BTreeSet::new(), 0);
    for line in json.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        for key in ["db.query.parameters", "pgwire.msg.params"] {
            match &r[key] {
                Value::Array(a) => {
                    found.extend(a.iter().filter_map(|v| v.as_str().map(String::from)))
                }
                Value::String(s) if s == "<redacted>" => redacted += 1,
                // StartupMessage parameters share the key; they are not bind values.
                Value::Null | Value::Object(_) => {}
                other => panic!("{key}: {other}"),
            }
        }
    }
    (found, redacted)
}

#[test]
fn redact_params_reaches_every_presenter() {
    let json = ["-o", "json", "--records", "query,message"];
    let (shown, none_redacted) = values(&run(&json));
    assert_eq!(none_redacted, 0);
    // pgbench's random amounts and ids, long enough not to appear by chance.
    let distinctive: Vec<&String> = shown.iter().filter(|v| v.len() >= 4).collect();
    assert!(distinctive.len() > 20, "{shown:?}");

    let (leaked, redacted) = values(&run(&[&json[..], &["--redact-params"]].concat()));
    assert!(leaked.is_empty(), "{leaked:?}");
    assert!(redacted > 200, "{redacted}");

    let bind_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("Bind("))
            .map(String::from)
            .collect()
    };
    let text = run(&["-o", "text"]);
    assert!(
        bind_lines(&text)
            .iter()
            .any(|l| distinctive.iter().any(|v| l.contains(v.as_str())))
    );
    let text = run(&["-o", "text", "--redact-params"]);
    let binds = bind_lines(&text);
    assert!(!binds.is_empty());
    assert!(
        binds.iter().all(|l| l.contains("params=<redacted>")),
        "{binds:?}"
    );

    for args in [
        &["-o", "text", "--redact-params"][..],
        &["-o", "summary", "--redact-params"],
    ] {
        // Whole words only: the digits of a value may be part of a timestamp.
        let out = run(args);
        let words: BTreeSet<&str> = out
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .collect();
        for v in &distinctive {
            assert!(!words.contains(v.as_str()), "{args:?} shows {v}");
        }
    }
}
