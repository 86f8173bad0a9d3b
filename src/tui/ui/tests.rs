//! Rendering into ratatui's TestBackend, asserting on the buffer's text.

use super::*;
use crate::filter::Filter;
use crate::session::params::Params;
use crate::tui::app::tests::sample_state;
use crate::tui::state::lock;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;

const PLAIN: Theme = Theme { color: false };

/// Draws the app at the given size and returns the screen as lines.
fn screen(app: &mut App, w: u16, h: u16) -> Vec<String> {
    app.resize(h);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app, PLAIN)).unwrap();
    let buf = t.backend().buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect()
}

fn press(app: &mut App, c: KeyCode) {
    app.on_key(KeyEvent::new(c, KeyModifiers::NONE));
}

#[test]
fn sessions_at_80x24_and_wide() {
    let shared = sample_state();
    let mut app = App::new(Filter::default());
    app.refresh(&lock(&shared), Instant::now());
    let s = screen(&mut app, 80, 24);
    let all = s.join("\n");
    assert!(
        s[0].starts_with("pgscope 3 sessions (3 open) 6 queries"),
        "{all}"
    );
    assert!(s[0].contains("0% test.pcap"), "{all}");
    assert!(s[0].contains("1 errors"), "{all}");
    assert!(s[1].starts_with("q/s "), "{all}");
    assert!(
        s[2].contains("1 Sessions") && s[2].contains("6 Errors"),
        "{all}"
    );
    assert!(s[4].contains("user") && s[4].contains("state"), "{all}");
    assert!(s[5].contains("alice") && s[5].contains("shop"), "{all}");
    assert!(s[7].contains("carol") && s[7].contains("idle"), "{all}");
    assert!(s[23].contains("? help"), "{all}");
    let wide = screen(&mut app, 160, 30).join("\n");
    assert!(
        wide.contains("10.0.0.2:40002") && wide.contains("psql"),
        "{wide}"
    );
}

#[test]
fn wire_text_is_escaped() {
    let shared = sample_state();
    {
        let mut st = lock(&shared);
        let e = st.sessions.get_mut(&1).unwrap();
        e.rec.user = Some("evil\x1b[2J".into());
    }
    let mut app = App::new(Filter::default());
    app.refresh(&lock(&shared), Instant::now());
    let all = screen(&mut app, 200, 24).join("\n");
    assert!(all.contains("evil\\u{1b}"), "{all}");
    assert!(!all.contains('\x1b'));
}

#[test]
fn timeline_detail_top_errors_and_help() {
    let shared = sample_state();
    let mut app = App::new(Filter::default());
    let refresh = |app: &mut App| app.refresh(&lock(&shared), Instant::now());
    refresh(&mut app);
    press(&mut app, KeyCode::Char('G'));
    press(&mut app, KeyCode::Enter);
    refresh(&mut app);
    let s = screen(&mut app, 80, 24).join("\n");
    assert!(
        s.contains("Timeline [following] #3 idle user=carol db=crm 10.0.0.3"),
        "{s}"
    );
    assert!(
        s.contains("Query") && s.contains(r#"query="select 2 from t_carol""#),
        "{s}"
    );
    assert!(
        s.contains("ReadyForQuery") && s.contains(r#"status="I""#),
        "{s}"
    );

    press(&mut app, KeyCode::Char('6'));
    refresh(&mut app);
    let s = screen(&mut app, 80, 24).join("\n");
    assert!(s.contains("23505") && s.contains("duplicate key"), "{s}");
    press(&mut app, KeyCode::Enter);
    refresh(&mut app);
    let s = screen(&mut app, 80, 24).join("\n");
    assert!(s.contains("error       ERROR 23505 duplicate key"), "{s}");
    assert!(s.contains("select 1 from t_bob"), "{s}");
    assert!(s.contains("user bob db shop"), "{s}");

    press(&mut app, KeyCode::Char('5'));
    refresh(&mut app);
    let s = screen(&mut app, 80, 24).join("\n");
    assert!(
        s.contains("total▼") && s.contains("select $1 from t_carol"),
        "{s}"
    );

    press(&mut app, KeyCode::Char('?'));
    let s = screen(&mut app, 80, 24).join("\n");
    assert!(s.contains("Top keys") && s.contains("reverse sort"), "{s}");

    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('f'));
    for c in "rows>x".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    let s = screen(&mut app, 80, 24);
    assert!(s[23].starts_with("filter> rows>x"), "{}", s[23]);
    assert!(s[23].contains("bad number"), "{}", s[23]);
}

#[test]
fn sparkline_scales() {
    assert_eq!(sparkline(&[0, 1, 2, 4, 8], 5), "▁▃▄▅█");
    assert_eq!(sparkline(&[5, 5], 1), "█");
    assert_eq!(sparkline(&[], 4), "");
    assert_eq!(bar(5, 10, 4), "██░░");
}

#[test]
fn no_color_means_no_colors() {
    let shared = sample_state();
    let mut app = App::new(Filter::default());
    app.refresh(&lock(&shared), Instant::now());
    let colors = |theme: Theme| {
        let mut t = Terminal::new(TestBackend::new(100, 24)).unwrap();
        t.draw(|f| draw(f, &app, theme)).unwrap();
        t.backend()
            .buffer()
            .content()
            .iter()
            .filter(|c| {
                c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset
            })
            .count()
    };
    assert_eq!(colors(PLAIN), 0);
    assert!(colors(Theme { color: true }) > 0);
}

#[test]
fn detail_shows_parameters_notices_and_sql_lines() {
    use crate::session::record::{QueryRecord, ServerMessage};
    let mut rec = QueryRecord::new(4, crate::session::record::Protocol::Extended, 1_000_000_000);
    rec.end_ns = 1_002_500_000;
    rec.text = Some("select $1,\n\t$2".into());
    rec.statement_name = Some("s1".into());
    rec.portal = Some(String::new());
    rec.params = Params::from_texts(&[Some("it's\x1b"), None]);
    rec.notices = vec![ServerMessage {
        severity: "NOTICE".into(),
        code: "00000".into(),
        message: "hello".into(),
        ..Default::default()
    }];
    rec.command_tag = Some("SELECT 1".into());
    rec.error = Some(Box::new(ServerMessage {
        severity: "ERROR".into(),
        code: "23505".into(),
        message: "duplicate key value violates unique constraint \"u_pkey\"".into(),
        fields: vec![
            (b'D', "Key (id)=(1) already exists.".into()),
            (b'H', "try \x1b[2J another".into()),
            (b'n', "u_pkey".into()),
        ],
    }));
    let mut q = entry(rec);
    q.who.client = "10.0.0.4".into();
    let text: Vec<String> = detail_lines(&q, PLAIN)
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect();
    let all = text.join("\n");
    assert!(all.contains("statement \"s1\"  portal \"\""), "{all}");
    assert!(all.contains("duration 2.5ms"), "{all}");
    assert!(all.contains("  $1 = 'it's\\u{1b}'"), "{all}");
    assert!(all.contains("  $2 = NULL"), "{all}");
    assert!(all.contains("notice      NOTICE 00000 hello"), "{all}");
    // Quotes as sent, the other ErrorResponse fields one per line, escaped.
    assert!(all.contains("unique constraint \"u_pkey\""), "{all}");
    assert!(!all.contains("\\\""), "{all}");
    assert!(
        all.contains("detail      Key (id)=(1) already exists."),
        "{all}"
    );
    assert!(all.contains("hint        try \\u{1b}[2J another"), "{all}");
    assert!(all.contains("constraint  u_pkey"), "{all}");
    // Real line breaks stay line breaks; tabs become spaces.
    assert!(
        text.ends_with(&["SQL".into(), "  select $1,".into(), "      $2".into()]),
        "{all}"
    );
}

/// `--redact-params` reaches the TUI: the values never enter its state, and the
/// query detail says they were withheld (without it, they are shown).
#[test]
fn redacted_parameters_never_reach_the_detail_view() {
    use crate::output::Sink;
    use crate::output::redact::{Redact, Redaction};
    use crate::session::record::{QueryRecord, SessionRecord};
    use crate::tcp::ConnMeta;
    use crate::tui::state::{State, TuiSink};
    use std::sync::{Arc, Mutex};
    for redact_params in [false, true] {
        let shared = Arc::new(Mutex::new(State::new(Default::default(), "t".into(), None)));
        let redaction = Redaction {
            redact_params,
            show_secrets: false,
        };
        let mut sink = Redact::new(TuiSink::new(shared.clone()), redaction);
        let mut q = QueryRecord::new(1, crate::session::record::Protocol::Extended, 0);
        q.text = Some("select $1, $2".into());
        q.params = Params::from_texts(&[Some("-1334"), Some("secret-value")]);
        sink.query(&ConnMeta::for_test(1), &SessionRecord::default(), &q)
            .unwrap();
        let st = lock(&shared);
        let entry = st.queries.back().unwrap();
        assert_eq!(entry.params_redacted, redact_params);
        let all: String = detail_lines(entry, PLAIN)
            .iter()
            .flat_map(|l| l.spans.iter().map(|s| s.content.to_string()))
            .collect();
        for value in ["-1334", "secret-value"] {
            assert_eq!(all.contains(value), !redact_params, "{all}");
        }
        assert_eq!(all.contains("<redacted>"), redact_params, "{all}");
        assert_eq!(entry.rec.params.is_empty(), redact_params);
    }
}

/// `--pooler-port`: the detail names the leg, how the link was decided and the other
/// leg, escaped; an ambiguous statement says how many fitted.
#[test]
fn detail_shows_the_pooler_link() {
    use crate::session::record::{Leg, Link, Match, QueryRecord};
    let detail = |link: Link| {
        let mut rec = QueryRecord::new(2, crate::session::record::Protocol::Simple, 0);
        rec.pooler = Some(Box::new(link));
        let lines: Vec<String> = detail_lines(&entry(rec), PLAIN)
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        lines.into_iter().find(|l| l.starts_with("pooler")).unwrap()
    };
    let mut server = Link::unlinked(Leg::Server, Match::ApplicationName, 0);
    server.peer_conn_id = Some(1);
    server.client = Some(("127.0.0.1".parse().unwrap(), 55104));
    server.client_application = Some("app\x1b[2J".into());
    server.wait_ns = Some(171_000);
    server.server_ns = Some(270_000);
    assert_eq!(
        detail(server),
        "pooler      server leg, linked by application_name to client connection #1 \
         from 127.0.0.1:55104 app app\\u{1b}[2J  pool wait 171.0µs  on the server 270.0µs"
    );
    let mut client = Link::unlinked(Leg::Client, Match::Transaction, 0);
    client.peer_conn_id = Some(2);
    client.backend_pid = Some(4419);
    assert_eq!(
        detail(client),
        "pooler      client leg, linked by transaction to server connection #2 backend pid 4419"
    );
    assert_eq!(
        detail(Link::unlinked(Leg::Client, Match::Ambiguous, 3)),
        "pooler      client leg, not linked: 3 statements fit"
    );
}

/// A whole statement of the detail view, as the TUI keeps it.
fn entry(rec: crate::session::record::QueryRecord) -> crate::tui::state::QueryEntry {
    crate::tui::state::QueryEntry {
        seq: 0,
        who: crate::tui::state::Who::default(),
        rec,
        fingerprint: String::new(),
        params_redacted: false,
        compact: false,
    }
}
