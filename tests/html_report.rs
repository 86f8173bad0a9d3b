//! The HTML report (`-o html`) opened in a real headless browser (Debian's chromium,
//! installed by scripts/test.sh): the charts must have been laid out and drawn with
//! as many points and bars as the capture's statements call for, counted here
//! independently from the JSON records of the same capture. Also: the page loads
//! nothing from elsewhere and wire text is escaped; the summary's `--top`, and the
//! TUI and the summary agreeing on percentiles.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// Nanoseconds since the epoch of an RFC 3339 UTC time as pgscope writes it.
fn epoch_ns(t: &str) -> i64 {
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let frac = &t[20..t.len() - 1];
    let sub = frac.parse::<i64>().unwrap() * 10i64.pow(9 - frac.len() as u32);
    ((days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) * 1_000_000_000) + sub
}

/// What the charts must show for a capture: (rate points, latency points per
/// percentile, error bars, top statement bars), from its JSON records, with the
/// report's rule: intervals of 1 ms doubled until at most 120 span the statements.
fn expected(pcap: &str) -> (usize, usize, usize, usize) {
    let recs = records(&capture(pcap), "query", &[]);
    let counted: Vec<&Value> = of_kind(&recs, "pgwire.query")
        .into_iter()
        .filter(|r| r["pgwire.skipped"] != true && r["pgwire.unsure"] != true)
        .collect();
    let ends: Vec<(i64, bool)> = counted
        .iter()
        .map(|r| {
            (
                epoch_ns(r["event.end"].as_str().unwrap()),
                r["event.outcome"] == "failure",
            )
        })
        .collect();
    let mut step = 1_000_000i64;
    let slots = |step: i64| -> (i64, i64) {
        let s = ends.iter().map(|e| e.0.div_euclid(step));
        (s.clone().min().unwrap(), s.max().unwrap())
    };
    while {
        let (a, b) = slots(step);
        b - a + 1 > 120
    } {
        step *= 2;
    }
    let (a, b) = slots(step);
    let busy: BTreeSet<i64> = ends.iter().map(|e| e.0.div_euclid(step)).collect();
    let failing: BTreeSet<i64> = ends
        .iter()
        .filter(|e| e.1)
        .map(|e| e.0.div_euclid(step))
        .collect();
    let fingerprints: BTreeSet<&str> = counted
        .iter()
        .filter_map(|r| r["pgwire.fingerprint"].as_str())
        .collect();
    (
        (b - a + 1) as usize,
        busy.len(),
        failing.len(),
        fingerprints.len().min(15),
    )
}

/// The page's DOM once loaded and drawn by chromium.
fn browser_dom(html: &std::path::Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--dump-dom",
            &format!("file://{}", html.display()),
        ])
        .output()
        .expect("chromium (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The opening tag of the element with this id.
fn tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = dom[..at].rfind('<').unwrap();
    &dom[start..start + dom[start..].find('>').unwrap()]
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let k = format!("{name}=\"");
    let a = tag.find(&k).unwrap_or_else(|| panic!("no {name} in {tag}")) + k.len();
    &tag[a..a + tag[a..].find('"').unwrap()]
}

#[test]
fn charts_render_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    for pcap in ["trust-pgbench-extended.pcap", "pipeline-error.pcap"] {
        let run = pgscope(&["-r", capture(pcap).to_str().unwrap(), "-o", "html"]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let page = String::from_utf8(run.stdout).unwrap();
        // Self-contained: nothing fetched from anywhere.
        for bad in ["http:", "https:", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(bad), "{pcap}: the page refers to {bad}");
        }
        let html = dir.path().join(pcap.replace(".pcap", ".html"));
        std::fs::write(&html, &page).unwrap();
        let dom = browser_dom(&html);

        let (rate, latency, errors, top) = expected(pcap);
        let charts = dom.matches("<svg class=\"chart\"").count();
        assert_eq!(charts, 5, "{pcap}");
        let body = &dom[dom.find("<body").unwrap()..];
        assert_eq!(
            attr(body, "data-rendered"),
            charts.to_string(),
            "{pcap}: every chart drawn with a size"
        );
        let drawn = |id: &str, what: &str| attr(tag(&dom, id), what).parse::<usize>().unwrap();
        assert_eq!(drawn("rate", "data-drawn-points"), rate, "{pcap} rate");
        assert_eq!(drawn("latency", "data-drawn-points"), 3 * latency, "{pcap}");
        assert_eq!(drawn("errors", "data-drawn-bars"), errors, "{pcap} errors");
        assert_eq!(drawn("top", "data-drawn-bars"), top, "{pcap} top");
        assert_eq!(drawn("histogram", "data-drawn-bars"), 8, "{pcap}");
        if pcap.starts_with("pipeline-error") {
            assert!(errors > 0, "the check of error bars can fail");
        } else {
            assert!(rate > 50 && latency > 50, "{rate} {latency}");
        }
    }
}

#[test]
fn wire_text_is_escaped_in_html() {
    // terminal_safety's capture carries an application name with escapes and a
    // bidi override; simple-queries a statement with quotes.
    for pcap in ["simple-queries.pcap", "copy-binary-appname.pcap"] {
        let run = pgscope(&["-r", capture(pcap).to_str().unwrap(), "-o", "html"]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let page = String::from_utf8(run.stdout).unwrap();
        let body = &page[page.find("<body>").unwrap()..];
        // The only tags are ours: no text from the wire opened one.
        for t in body.split('<').skip(1) {
            let name: String = t
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                [
                    "h1", "h2", "h3", "p", "svg", "line", "text", "polyline", "title", "circle",
                    "rect", "table", "tr", "td", "th", "div", "span", "body", "html"
                ]
                .contains(&name.as_str()),
                "{pcap}: unexpected tag <{t:.40}"
            );
        }
        assert!(!page.contains('\u{1b}') && !page.contains('\u{202e}'));
    }
    let run = pgscope(&[
        "-r",
        capture("simple-queries.pcap").to_str().unwrap(),
        "-o",
        "html",
    ]);
    let page = String::from_utf8(run.stdout).unwrap();
    assert!(
        page.contains("select $1 as one, $2 as greeting"),
        "normalised text"
    );
}

/// The summary's top table: `--top` rows, whole texts when piped, and the same
/// percentiles as the TUI's top queries on the same capture.
#[test]
fn summary_top_and_percentiles_match_the_tui() {
    let rows = |pcap: &std::path::Path, extra: &[&str]| {
        summary_top_rows(&[&["-r", pcap.to_str().unwrap()], extra].concat())
    };
    let pgbench = capture("trust-pgbench-extended.pcap");
    let all = rows(&pgbench, &[]);
    assert_eq!(all.len(), 9);
    assert_eq!(rows(&pgbench, &["--top", "3"]), all[..3]);
    // Piped: not cut, so the long catalogue query is there whole.
    assert!(
        all.iter().any(|l| l.ends_with("order by 1 asc limit $3")),
        "{all:?}"
    );
    // 5,000 calls of one statement, more than the TUI kept samples of before.
    for pcap in [pgbench, capture("long-pipeline.pcap")] {
        same_percentiles_as_the_tui(&pcap, &rows(&pcap, &[]));
    }
}

fn same_percentiles_as_the_tui(pcap: &std::path::Path, all: &[String]) {
    use pgscope::tui::app::App;
    use pgscope::tui::state::{State, TuiSink, lock};
    use std::sync::{Arc, Mutex};

    // The TUI's state fed the same capture.
    let shared = Arc::new(Mutex::new(State::new(Default::default(), "t".into(), None)));
    let mut sink = TuiSink::new(shared.clone());
    let mut pipe =
        pgscope::pipeline::Pipeline::new(&mut sink, vec![5432, 5433], Default::default());
    let file = std::fs::File::open(pcap).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    pgscope::capture::read_file("t", file, &stop, &mut |p| {
        pipe.packet(&p).unwrap();
        pgscope::capture::Flow::Continue(())
    })
    .unwrap();
    pipe.finish().unwrap();
    let mut app = App::new(Default::default());
    // The top queries view ('5') builds its table.
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('5'),
        crossterm::event::KeyModifiers::NONE,
    ));
    app.refresh(&lock(&shared), std::time::Instant::now());
    assert_eq!(app.top.rows.len(), all.len());
    for row in all {
        let f: Vec<&str> = row.split_whitespace().collect();
        let text = f[9..].join(" ");
        let tui = app
            .top
            .rows
            .iter()
            .find(|t| t.text.split_whitespace().collect::<Vec<_>>().join(" ") == text)
            .unwrap_or_else(|| panic!("{text} not in the TUI"));
        let ms = |ns: i64| format!("{:.3}", ns as f64 / 1e6);
        assert_eq!(
            (f[4], f[5]),
            (ms(tui.p95_ns).as_str(), ms(tui.p99_ns).as_str()),
            "{text}"
        );
        assert_eq!(f[0], tui.calls.to_string());
    }
}
