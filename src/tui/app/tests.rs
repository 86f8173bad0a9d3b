//! App state without a terminal: keys, filtering, sorting, follow mode, jumps.

use super::*;
use crate::anomaly::AnomalyKind;
use crate::output::Sink;
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
/// A statement's ERROR with this SQLSTATE and message.
fn error(code: &str, message: &str) -> Option<Box<ServerMessage>> {
    Some(Box::new(ServerMessage {
        severity: "ERROR".into(),
        code: code.into(),
        message: message.into(),
        ..Default::default()
    }))
}

pub(crate) fn sample_state() -> Arc<Mutex<State>> {
    let shared = Arc::new(Mutex::new(State::new(
        Limits::default(),
        "test.pcap".into(),
        Some(100),
    )));
    let mut sink = TuiSink::new(shared.clone());
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
            close_reason: None,
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
                withheld: false,
            };
            sink.message(&m, ts, &q).unwrap();
            let rfq = Msg {
                dir: Dir::Backend,
                typ: Some(b'Z'),
                len: 5,
                body: Body::ReadyForQuery { status: b'I' },
                withheld: false,
            };
            sink.message(&m, ts + dur, &rfq).unwrap();
            let mut qr = QueryRecord::new(id, crate::session::record::Protocol::Simple, ts);
            qr.end_ns = ts + dur;
            qr.text = Some(sql.as_str().into());
            qr.rows_returned = n;
            if user == "bob" && n == 1 {
                qr.outcome = Outcome::Failure;
                qr.error = error("23505", "duplicate key");
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
    assert_eq!(app.sessions.rows.len(), 3);
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
            .rows
            .iter()
            .map(|r| r.user.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(users(&app), ["alice", "bob", "carol"]);
    // Sort by queries (column 13), then reverse.
    for _ in 0..13 {
        app.on_key(key(KeyCode::Right));
    }
    assert_eq!(app.sess_col(), SessCol::Queries);
    keys(&mut app, "r");
    assert_eq!(users(&app), ["carol", "bob", "alice"]);
    // Selection follows the row, not the index.
    keys(&mut app, "G");
    assert_eq!(
        app.sessions.rows[app.sessions.nav.selected].user.as_deref(),
        Some("alice")
    );
    keys(&mut app, "r");
    assert_eq!(
        app.sessions.rows[app.sessions.nav.selected].user.as_deref(),
        Some("alice")
    );
    assert_eq!(app.sessions.nav.selected, 0);
    // Left wraps to the last column.
    app.sessions.nav.sort = 0;
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
    assert_eq!(app.sessions.rows.len(), 1);
    assert_eq!(app.sessions.rows[0].user.as_deref(), Some("bob"));
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
    assert_eq!(app.sessions.rows.len(), 1);
    assert_eq!(app.sessions.rows[0].user.as_deref(), Some("carol"));
}

#[test]
fn timeline_follows_until_scrolled_up() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "G");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.view, View::Timeline);
    refresh(&mut app, &shared);
    assert_eq!(app.timeline.lines.rows.len(), 6);
    assert!(app.timeline.follow);
    assert_eq!(app.timeline.lines.nav.selected, 5);
    keys(&mut app, "k");
    assert!(!app.timeline.follow);
    // New messages do not move a scrolled view.
    let m = ConnMeta::for_test(3);
    let mut sink = TuiSink::new(shared.clone());
    let sync = Msg::sync();
    sink.message(&m, 10_000_000_000, &sync).unwrap();
    refresh(&mut app, &shared);
    assert_eq!(app.timeline.lines.rows.len(), 7);
    assert_eq!(app.timeline.lines.nav.selected, 4);
    app.on_key(key(KeyCode::End));
    refresh(&mut app, &shared);
    assert!(app.timeline.follow);
    assert_eq!(app.timeline.lines.nav.selected, 6);
    // Search jumps to matches and n wraps.
    keys(&mut app, "/");
    keys(&mut app, "select 1");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.timeline.lines.nav.selected, 2);
    assert!(!app.timeline.follow);
    keys(&mut app, "n");
    assert_eq!(app.timeline.lines.nav.selected, 2);
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
    let mut sink = TuiSink::new(shared.clone());
    let sync = Msg::sync();
    sink.message(&ConnMeta::for_test(9), 1, &sync).unwrap();
    refresh(&mut app, &shared);
    assert_eq!(app.sessions.rows.len(), 3);
    assert_eq!(app.header.sessions, 4);
    keys(&mut app, " ");
    refresh(&mut app, &shared);
    assert_eq!(app.sessions.rows.len(), 4);
}

#[test]
fn top_queries_sort_and_errors_jump() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "5");
    refresh(&mut app, &shared);
    assert_eq!(app.top.rows.len(), 3);
    assert_eq!(app.top_col(), TopCol::Total);
    assert_eq!(
        app.top.rows[0].fingerprint,
        crate::session::sql::fingerprint(b"select 0 from t_carol")
    );
    assert!((app.top.rows.iter().map(|r| r.share).sum::<f64>() - 1.0).abs() < 1e-9);
    app.on_key(key(KeyCode::Left));
    assert_eq!(app.top_col(), TopCol::Calls);
    assert_eq!(app.top.rows[0].calls, 3);
    keys(&mut app, "r");
    assert_eq!(app.top.rows[0].calls, 1);
    // The selection stays on the row it was on (carol's, the slowest).
    assert_eq!(app.top.nav.selected, 2);
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
    assert_eq!(app.errors.rows.len(), 1);
    assert_eq!(app.errors.rows[0].code, "23505");
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    let d = app.detail.as_ref().unwrap();
    assert_eq!(d.rec.error.as_ref().unwrap().message, "duplicate key");
    // Filtered statistics come from the kept statements.
    keys(&mut app, "f");
    keys(&mut app, "user=carol");
    app.on_key(key(KeyCode::Enter));
    keys(&mut app, "5");
    refresh(&mut app, &shared);
    assert_eq!(app.top.rows.len(), 1);
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

/// Selects the row of the Queries view whose text is `text` (the rows in view).
fn select_query(app: &mut App, shared: &Arc<Mutex<State>>, text: &str) {
    keys(app, "g");
    refresh(app, shared);
    for _ in 0..app.queries.len() {
        if app
            .queries
            .visible_selected()
            .and_then(|r| r.text.as_deref())
            == Some(text)
        {
            return;
        }
        keys(app, "j");
        refresh(app, shared);
    }
    panic!("no query {text}");
}

#[test]
fn running_statements_show_tick_and_sort() {
    use crate::session::{InFlight, Wait};
    let shared = sample_state();
    let mut sink = TuiSink::new(shared.clone());
    let bob = ConnMeta::for_test(2);
    let sleep = InFlight {
        text: Some("select pg_sleep(8)"),
        start_ns: 9_000_000_000,
        wait: Wait::Server,
    };
    sink.running(&bob, Some(&sleep));
    // Capture time moves on to 14 s (another session's packet): 5 s elapsed.
    let sync = Msg::sync();
    sink.message(&ConnMeta::for_test(1), 14_000_000_000, &sync)
        .unwrap();
    let mut app = app_with(&shared);
    assert_eq!(app.header.running, 1);
    let row = app.sessions.rows.iter().find(|r| r.conn == 2).unwrap();
    assert_eq!(row.state, "active");
    assert_eq!(row.cell(SessCol::Running), "5.00s");
    assert_eq!(row.cell(SessCol::Wait), "server");
    assert_eq!(row.cell(SessCol::Query), "select pg_sleep(8)");
    // Sorted by running time, longest first, bob leads.
    while app.sess_col() != SessCol::Running {
        app.on_key(key(KeyCode::Right));
    }
    keys(&mut app, "r");
    assert_eq!(app.sessions.rows[0].conn, 2);
    // Queries: running first, elapsed as its duration.
    keys(&mut app, "3");
    refresh(&mut app, &shared);
    assert_eq!(app.queries.running, [2]);
    assert_eq!(app.queries.len(), 7);
    let r = &app.queries.visible[0];
    assert_eq!(
        (r.seq, r.duration_ns, r.wait),
        (None, 5_000_000_000, Some("server"))
    );
    assert_eq!(r.text.as_deref(), Some("select pg_sleep(8)"));
    assert_eq!(r.outcome, None);
    // Filters see the elapsed time as its duration.
    for (f, running) in [("duration>4s", 1), ("duration>6s", 0)] {
        keys(&mut app, "f");
        for _ in 0..20 {
            app.on_key(key(KeyCode::Backspace));
        }
        keys(&mut app, f);
        app.on_key(key(KeyCode::Enter));
        refresh(&mut app, &shared);
        assert_eq!(app.queries.running.len(), running, "{f}");
    }
    // Answered: no longer running, the session back to its transaction state.
    sink.running(&bob, None);
    let app = app_with(&shared);
    let row = app.sessions.rows.iter().find(|r| r.conn == 2).unwrap();
    assert_eq!((row.state, row.running_ns), ("idle", None));
}

#[test]
fn queries_sort_by_start_and_duration_and_t_lands_at_the_statement() {
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "3");
    refresh(&mut app, &shared);
    let texts = |a: &App| -> Vec<String> {
        a.queries
            .visible
            .iter()
            .map(|r| r.text.as_deref().unwrap().to_string())
            .collect()
    };
    // Latest start first; the time shown is the start, so the order matches it.
    let starts: Vec<i64> = app.queries.visible.iter().map(|r| r.start_ns).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    assert_eq!(app.queries.col(), QCol::Start);
    // By duration, longest first: carol's 900 ms statements lead.
    app.on_key(key(KeyCode::Right));
    refresh(&mut app, &shared);
    assert_eq!(app.queries.col(), QCol::Duration);
    let durations: Vec<i64> = app.queries.visible.iter().map(|r| r.duration_ns).collect();
    assert!(durations.windows(2).all(|w| w[0] >= w[1]), "{durations:?}");
    assert!(texts(&app)[0].ends_with("t_carol"));
    // Carol's second statement, its detail, then `t`: the timeline at its Query.
    select_query(&mut app, &shared, "select 1 from t_carol");
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    assert_eq!(app.view, View::Detail);
    keys(&mut app, "t");
    refresh(&mut app, &shared);
    assert_eq!(app.view, View::Timeline);
    let tl = &app.timeline;
    let line = tl.lines.selected().unwrap();
    assert_eq!((line.ts, line.name), (2_000_000_000, "Query"));
    assert!(!tl.follow);
}

#[test]
fn follow_one_session_and_list_anomalies() {
    use crate::output::AnomalyView;
    let shared = sample_state();
    let mut app = app_with(&shared);
    keys(&mut app, "G");
    keys(&mut app, "F");
    assert_eq!(app.follow, Some(3));
    assert_eq!(app.view, View::Queries);
    refresh(&mut app, &shared);
    assert_eq!(app.queries.len(), 3);
    assert!(app.queries.visible.iter().all(|r| r.conn == 3));
    keys(&mut app, "5");
    refresh(&mut app, &shared);
    // Carol's three statements share one fingerprint.
    assert_eq!(app.top.rows.len(), 1);
    assert_eq!(app.top.rows[0].calls, 3);
    assert!(app.top.rows[0].text.ends_with("t_carol"));
    keys(&mut app, "F");
    assert_eq!(app.follow, None);
    keys(&mut app, "3");
    refresh(&mut app, &shared);
    assert_eq!(app.queries.len(), 6);
    // Anomalies, newest first; Enter opens the session's timeline at it.
    let mut sink = TuiSink::new(shared.clone());
    for (ts, kind) in [
        (4_500_000_000, AnomalyKind::Gap),
        (5_500_000_000, AnomalyKind::Resync),
    ] {
        let a = AnomalyView {
            kind,
            dir: Some(Dir::Backend),
            message: "lost \"10\" bytes\x1b",
        };
        sink.anomaly(Some(&ConnMeta::for_test(3)), ts, &a).unwrap();
    }
    keys(&mut app, "7");
    refresh(&mut app, &shared);
    let kinds: Vec<_> = app.anomalies.rows.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [AnomalyKind::Resync, AnomalyKind::Gap]);
    assert_eq!(app.anomalies.rows[0].message, "lost \"10\" bytes\\u{1b}");
    keys(&mut app, "j");
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    assert_eq!(app.view, View::Timeline);
    let line = app.timeline.lines.selected().unwrap();
    assert_eq!((line.ts, line.name), (4_500_000_000, "anomaly"));
}

#[test]
fn statements_beyond_the_whole_records_open_compact_and_the_bound_is_counted() {
    let limits = Limits {
        queries: 2,
        statements: 4,
        ..Limits::default()
    };
    let shared = Arc::new(Mutex::new(State::new(limits, "t".into(), None)));
    let mut sink = TuiSink::new(shared.clone());
    let m = ConnMeta::for_test(1);
    for i in 0..6 {
        let mut q = QueryRecord::new(1, crate::session::record::Protocol::Simple, i * 1_000_000);
        q.end_ns = i * 1_000_000 + 10;
        q.text = Some(format!("select {i}").into());
        q.outcome = Outcome::Success;
        sink.query(&m, &SessionRecord::default(), &q).unwrap();
    }
    {
        let st = lock(&shared);
        assert_eq!(st.health.statements_dropped, 2);
        assert_eq!(st.stmts_all.len(), 4);
        assert_eq!(st.queries.len(), 2);
    }
    let mut app = app_with(&shared);
    keys(&mut app, "3");
    refresh(&mut app, &shared);
    assert_eq!(app.queries.len(), 4);
    // The oldest kept statement is only in compact form: it opens all the same.
    select_query(&mut app, &shared, "select 2");
    app.on_key(key(KeyCode::Enter));
    refresh(&mut app, &shared);
    let d = app.detail.as_ref().unwrap();
    assert!(d.compact);
    assert_eq!(d.rec.text.as_deref(), Some("select 2"));
}

/// An idle TUI neither copies nor draws: `outdated` is false until the state
/// changes, a key asks for data, or (live) the wall clock ticks a second.
#[test]
fn nothing_is_redrawn_while_nothing_changes() {
    let shared = sample_state();
    let s = 1_000_000_000i64;
    let wall = 1_700_000_000 * s;
    let mut app = App::new(Filter::default());
    assert!(app.outdated(&lock(&shared), wall), "never refreshed");
    for view in ["1", "3", "5", "6", "7", "2"] {
        keys(&mut app, view);
        assert!(
            app.outdated(&lock(&shared), wall),
            "a key asked for view {view}"
        );
        app.refresh_at(&lock(&shared), Instant::now(), wall);
        // Top and Errors rebuild at most once a second: forced by the key here.
        assert!(
            !app.outdated(&lock(&shared), wall + s / 2),
            "view {view} wants a refresh with nothing changed"
        );
    }
    // The capture hands the sink anything: the state moved.
    keys(&mut app, "1");
    app.refresh_at(&lock(&shared), Instant::now(), wall);
    TuiSink::new(shared.clone()).drops(3);
    assert!(app.outdated(&lock(&shared), wall));
    app.refresh_at(&lock(&shared), Instant::now(), wall);
    assert!(!app.outdated(&lock(&shared), wall));
    // Bytes read (a file's progress) move without a record.
    lock(&shared)
        .input_read
        .fetch_add(10, std::sync::atomic::Ordering::Relaxed);
    assert!(app.outdated(&lock(&shared), wall));
    app.refresh_at(&lock(&shared), Instant::now(), wall);
    // Live, elapsed times and rates tick with the wall clock's seconds, until the
    // capture ends.
    lock(&shared).live = true;
    app.refresh_at(&lock(&shared), Instant::now(), wall);
    assert!(!app.outdated(&lock(&shared), wall + s / 2));
    assert!(app.outdated(&lock(&shared), wall + s));
    TuiSink::new(shared.clone())
        .finish(&Default::default())
        .unwrap();
    app.refresh_at(&lock(&shared), Instant::now(), wall);
    assert!(!app.outdated(&lock(&shared), wall + 5 * s));
}

/// `--pooler-port`: a pooled statement shows on both legs, and counts once, on its
/// client leg, as the summary counts it: in the totals, the top queries, the errors
/// and the filtered statistics.
#[test]
fn a_pooled_statement_is_listed_on_both_legs_and_counted_once() {
    use crate::session::record::{Leg, Link, Match};
    let shared = Arc::new(Mutex::new(State::new(Limits::default(), "t".into(), None)));
    let mut sink = TuiSink::new(shared.clone());
    for (conn, leg) in [(1, Leg::Client), (2, Leg::Server), (3, Leg::Server)] {
        let mut q = QueryRecord::new(conn, crate::session::record::Protocol::Simple, 1_000);
        q.end_ns = 2_000;
        q.text = Some("select broken".into());
        q.outcome = Outcome::Failure;
        q.error = error("42703", "column \"broken\" does not exist");
        // Connection 3: a server leg the correlator could not link still is one.
        let mut link = Link::unlinked(leg, Match::TextParamsTime, 0);
        link.peer_conn_id = (conn != 3).then_some(3 - conn);
        q.pooler = Some(Box::new(link));
        sink.query(&ConnMeta::for_test(conn), &SessionRecord::default(), &q)
            .unwrap();
    }
    {
        let st = lock(&shared);
        assert_eq!(st.stmts_all.len(), 3);
        assert_eq!((st.total_queries, st.total_errors), (1, 1));
        let calls: Vec<u64> = st.stmts.values().map(|s| s.calls).collect();
        assert_eq!(calls, [1]);
        let errors: Vec<u64> = st.errors.values().map(|g| g.count).collect();
        assert_eq!(errors, [1]);
    }
    // Filtered statistics count the same way.
    let mut app = app_with(&shared);
    keys(&mut app, "3");
    keys(&mut app, "ftext~broken");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filter.source(), "text~broken");
    refresh(&mut app, &shared);
    assert_eq!(app.queries.len(), 3);
    let m = &app.queries.matched;
    let calls: Vec<u64> = m.stmts.values().map(|s| s.calls).collect();
    assert_eq!(calls, [1]);
    let errors: Vec<u64> = m.errors.values().map(|g| g.count).collect();
    assert_eq!(errors, [1]);
}
