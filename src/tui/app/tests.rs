//! App state without a terminal: keys, filtering, sorting, follow mode, jumps.

use super::*;
use crate::output::Sink;
use crate::output::fields::Redaction;
use crate::pgwire::{Body, Dir, Msg};
use crate::session::record::{Outcome, QueryRecord, ServerMessage, SessionRecord};
use crate::tcp::ConnMeta;
use crate::tui::rows::{human_bytes, human_ns};
use crate::tui::state::{Limits, State, TuiSink, lock};
use std::sync::Mutex;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

/// Three sessions: alice on shop (fast ok queries), bob on shop (one failure),
/// carol on crm (slow), each with a few messages.
pub(crate) fn sample_state() -> Arc<Mutex<State>> {
    let shared = Arc::new(Mutex::new(State::new(
        Limits::default(),
        "test.pcap".into(),
        Some(100),
    )));
    let mut sink = TuiSink::new(shared.clone(), Redaction::default());
    let people = [
        ("alice", "shop", 1_000_000),
        ("bob", "shop", 2_000_000),
        ("carol", "crm", 900_000_000),
    ];
    for (i, (user, db, dur)) in people.into_iter().enumerate() {
        let id = i as u64 + 1;
        let m = ConnMeta::for_test(id);
        let rec = SessionRecord {
            conn_id: id,
            user: Some(user.into()),
            database: Some(db.into()),
            application: Some("psql".into()),
            queries: id,
            errors: (user == "bob") as u64,
            bytes_client: 100 * id,
            close_reason: "open",
            ..SessionRecord::default()
        };
        sink.session_update(&m, &rec);
        for n in 0..id {
            let ts = (n as i64 + 1) * 1_000_000_000;
            let sql = format!("select {n} from t_{user}");
            let q = Msg {
                dir: Dir::Frontend,
                typ: Some(b'Q'),
                len: 20,
                body: Body::Query {
                    sql: sql.as_bytes(),
                },
            };
            sink.message(&m, ts, &q).unwrap();
            let rfq = Msg {
                dir: Dir::Backend,
                typ: Some(b'Z'),
                len: 5,
                body: Body::ReadyForQuery { status: b'I' },
            };
            sink.message(&m, ts + dur, &rfq).unwrap();
            let mut qr = QueryRecord::new(id, "simple", ts);
            qr.end_ns = ts + dur;
            qr.text = Some(sql.as_str().into());
            qr.rows_returned = n;
            if user == "bob" && n == 1 {
                qr.outcome = Outcome::Failure;
                qr.error = Some(Box::new(ServerMessage {
                    severity: "ERROR".into(),
                    code: "23505".into(),
                    message: "duplicate key".into(),
                }));
            } else {
                qr.outcome = Outcome::Success;
            }
            sink.query(&m, &rec, &qr).unwrap();
        }
    }
    shared
}

fn app_with(shared: &Arc<Mutex<State>>) -> App {
    let mut app = App::new(Filter::default());
    app.refresh(&lock(shared), Instant::now());
    app
}

fn refresh(app: &mut App, shared: &Arc<Mutex<State>>) {
    app.refresh(&lock(shared), Instant::now());
}

#[test]
fn views_by_key_and_back() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    assert_eq!(app.view, View::Sessions);
    assert_eq!(app.sessions.len(), 3);
    keys(&mut app, "5");
    assert_eq!(app.view, View::Top);
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.view, View::Errors);
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.view, View::Top);
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.view, View::Detail);
    keys(&mut app, "?");
    assert!(app.help);
    keys(&mut app, "x");
    assert!(!app.help && !app.quit);
    keys(&mut app, "q");
    assert!(app.quit);
    let mut app = App::new(Filter::default());
    app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
}

#[test]
fn sessions_sort_by_any_column() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    let users = |a: &App| {
        a.sessions
            .iter()
            .map(|r| r.user.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(users(&app), ["alice", "bob", "carol"]);
    // Sort by queries (column 9), then reverse.
    for _ in 0..9 {
        app.on_key(key(KeyCode::Right));
    }
    assert_eq!(app.sess_col(), SessCol::Queries);
    keys(&mut app, "r");
    assert_eq!(users(&app), ["carol", "bob", "alice"]);
    // Selection follows the row, not the index.
    keys(&mut app, "G");
    assert_eq!(
        app.sessions[app.sess_nav.selected].user.as_deref(),
        Some("alice")
    );
    keys(&mut app, "r");
    assert_eq!(
        app.sessions[app.sess_nav.selected].user.as_deref(),
        Some("alice")
    );
    assert_eq!(app.sess_nav.selected, 0);
    // Left wraps to the last column.
    app.sess_nav.sort = 0;
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.sess_col(), SessCol::Duration);
}

#[test]
fn filter_is_validated_while_typed_and_applies() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "f");
    assert!(app.input.is_some());
    keys(&mut app, "db=shop dur");
    assert!(app.input.as_ref().unwrap().error.is_some());
    keys(&mut app, "ation>1500us");
    assert_eq!(app.input.as_ref().unwrap().error, None);
    app.on_key(key(KeyCode::Enter));
    assert!(app.input.is_none());
    refresh(&mut app, &shared);
    // Only bob has a statement on shop slower than 1.5 ms.
    assert_eq!(app.sessions.len(), 1);
    assert_eq!(app.sessions[0].user.as_deref(), Some("bob"));
    keys(&mut app, "3");
    refresh(&mut app, &shared);
    assert_eq!(app.queries.len(), 2);
    // An invalid filter keeps the line open with its error; Esc keeps the old filter.
    keys(&mut app, "f");
    keys(&mut app, " bogus");
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.input
            .as_ref()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("unknown key")
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.filter.source(), "db=shop duration>1500us");
    // Session-only filter by client address.
    keys(&mut app, "f");
    for _ in 0..40 {
        app.on_key(key(KeyCode::Backspace));
    }
    keys(&mut app, "client=10.0.0.3");
    app.on_key(key(KeyCode::Enter));
    keys(&mut app, "1");
    refresh(&mut app, &shared);
    assert_eq!(app.sessions.len(), 1);
    assert_eq!(app.sessions[0].user.as_deref(), Some("carol"));
}

#[test]
fn timeline_follows_until_scrolled_up() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "G");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.view, View::Timeline);
    refresh(&mut app, &shared);
    assert_eq!(app.timeline.lines.len(), 6);
    assert!(app.timeline.follow);
    assert_eq!(app.timeline.selected, 5);
    keys(&mut app, "k");
    assert!(!app.timeline.follow);
    // New messages do not move a scrolled view.
    let m = ConnMeta::for_test(3);
    let mut sink = TuiSink::new(shared.clone(), Redaction::default());
    let sync = Msg {
        dir: Dir::Frontend,
        typ: Some(b'S'),
        len: 4,
        body: Body::Sync,
    };
    sink.message(&m, 10_000_000_000, &sync).unwrap();
    refresh(&mut app, &shared);
    assert_eq!(app.timeline.lines.len(), 7);
    assert_eq!(app.timeline.selected, 4);
    app.on_key(key(KeyCode::End));
    refresh(&mut app, &shared);
    assert!(app.timeline.follow);
    assert_eq!(app.timeline.selected, 6);
    // Search jumps to matches and n wraps.
    keys(&mut app, "/");
    keys(&mut app, "select 1");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.timeline.selected, 2);
    assert!(!app.timeline.follow);
    keys(&mut app, "n");
    assert_eq!(app.timeline.selected, 2);
    keys(&mut app, "/");
    keys(&mut app, "nothing like it");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.status.as_deref(), Some("no match"));
    // Enter on a message opens its statement.
    keys(&mut app, "/");
    keys(&mut app, "select 2");
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    assert_eq!(app.view, View::Detail);
    assert_eq!(
        app.detail.as_ref().unwrap().rec.text.as_deref(),
        Some("select 2 from t_carol")
    );
}

#[test]
fn pause_freezes_rows_but_not_the_header() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "p");
    refresh(&mut app, &shared);
    assert!(app.paused);
    let mut sink = TuiSink::new(shared.clone(), Redaction::default());
    let sync = Msg {
        dir: Dir::Frontend,
        typ: Some(b'S'),
        len: 4,
        body: Body::Sync,
    };
    sink.message(&ConnMeta::for_test(9), 1, &sync).unwrap();
    refresh(&mut app, &shared);
    assert_eq!(app.sessions.len(), 3);
    assert_eq!(app.header.sessions, 4);
    keys(&mut app, " ");
    refresh(&mut app, &shared);
    assert_eq!(app.sessions.len(), 4);
}

#[test]
fn top_queries_sort_and_errors_jump() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "5");
    refresh(&mut app, &shared);
    assert_eq!(app.top.len(), 3);
    assert_eq!(app.top_col(), TopCol::Total);
    assert_eq!(
        app.top[0].fingerprint,
        crate::session::sql::fingerprint(b"select 0 from t_carol")
    );
    assert!((app.top.iter().map(|r| r.share).sum::<f64>() - 1.0).abs() < 1e-9);
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.top_col(), TopCol::Calls);
    assert_eq!(app.top[0].calls, 3);
    keys(&mut app, "r");
    assert_eq!(app.top[0].calls, 1);
    // The selection stays on the row it was on (carol's, the slowest).
    assert_eq!(app.top_nav.selected, 2);
    keys(&mut app, "g");
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    assert_eq!(app.view, View::Detail);
    assert_eq!(
        app.detail.as_ref().unwrap().who.user.as_deref(),
        Some("alice")
    );
    keys(&mut app, "6");
    refresh(&mut app, &shared);
    assert_eq!(app.errors.len(), 1);
    assert_eq!(app.errors[0].code, "23505");
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    let d = app.detail.as_ref().unwrap();
    assert_eq!(d.rec.error.as_ref().unwrap().message, "duplicate key");
    // Filtered statistics come from the retained window.
    keys(&mut app, "f");
    keys(&mut app, "user=carol");
    app.on_key(key(KeyCode::Enter));
    keys(&mut app, "5");
    refresh(&mut app, &shared);
    assert!(app.stats_from_window);
    assert_eq!(app.top.len(), 1);
}

#[test]
fn formats() {
    assert_eq!(human_ns(999), "999ns");
    assert_eq!(human_ns(1_500), "1.5µs");
    assert_eq!(human_ns(2_500_000), "2.5ms");
    assert_eq!(human_ns(3_000_000_000), "3.00s");
    assert_eq!(human_bytes(10), "10B");
    assert_eq!(human_bytes(1536), "1.5K");
}
