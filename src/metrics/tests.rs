use super::*;
use crate::session::record::ServerMessage;
use crate::session::shared::Text;

fn collector(top: usize) -> (Arc<Metrics>, Collector) {
    let m = Arc::new(Metrics::new());
    (m.clone(), Collector::new(m, top))
}

/// A finished statement of `text` that took `ms` milliseconds.
fn stmt(text: &str, ms: i64) -> QueryRecord {
    let mut q = QueryRecord::new(1, crate::session::record::Protocol::Simple, 0);
    q.text = Some(Text::new(text));
    q.end_ns = ms * 1_000_000;
    q.outcome = Outcome::Success;
    q
}

/// The value of a series in the Prometheus text exposition.
fn value(m: &Metrics, series: &str) -> Option<f64> {
    m.encode(false)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Asserts the value of a series.
fn check(m: &Metrics, series: &str, want: f64) {
    assert_eq!(value(m, series), Some(want), "{series}");
}

fn fp(text: &str) -> String {
    crate::session::sql::fingerprint(text.as_bytes())
}

fn count(m: &Metrics, fingerprint: &str) -> Option<f64> {
    value(
        m,
        &format!("pgscope_statement_duration_seconds_count{{fingerprint=\"{fingerprint}\"}}"),
    )
}

#[test]
fn top_n_by_total_time_and_the_rest_in_other() {
    let (m, mut c) = collector(2);
    // a and b take the two series; c, new and cheap, goes to other.
    c.query(&stmt("select a from t where x = 1", 10));
    c.query(&stmt("select b from t", 1));
    c.query(&stmt("select c from t", 1));
    assert_eq!(count(&m, &fp("select a from t where x = 2")), Some(1.0));
    assert_eq!(count(&m, &fp("select b from t")), Some(1.0));
    assert_eq!(count(&m, "other"), Some(1.0));
    assert_eq!(count(&m, &fp("select c from t")), None);
    // c's total (1 + 3 ms) passes twice b's (1 ms): it takes b's series from then
    // on, with its info line; b counts under other, which only grows.
    c.query(&stmt("select c from t", 3));
    assert_eq!(count(&m, &fp("select c from t")), Some(1.0));
    assert_eq!(count(&m, &fp("select b from t")), None);
    let info = format!(
        "pgscope_statement_info{{fingerprint=\"{}\",query=\"select c from t\"}}",
        fp("select c from t")
    );
    check(&m, &info, 1.0);
    assert!(!m.encode(false).contains("query=\"select b from t\""));
    c.query(&stmt("select b from t", 1));
    assert_eq!(count(&m, "other"), Some(2.0));
    // Literals do not make new fingerprints; mid-stream statements are "unknown".
    c.query(&stmt("select a from t where x = 3", 1));
    assert_eq!(count(&m, &fp("select a from t where x = 4")), Some(2.0));
    let mut blind = stmt("", 5);
    blind.text = None;
    c.query(&blind);
    assert_eq!(count(&m, "unknown"), Some(1.0));
    check(&m, "pgscope_statements_total{outcome=\"success\"}", 7.0);
}

#[test]
fn latency_buckets_span_50us_to_10s() {
    let (m, mut c) = collector(10);
    let mut q = stmt("select 1", 0);
    q.end_ns = 40_000; // 40 µs
    c.query(&q);
    c.query(&stmt("select 1", 20_000)); // 20 s
    let f = fp("select 1");
    let bucket = |le: &str| {
        value(
            &m,
            &format!(
                "pgscope_statement_duration_seconds_bucket{{fingerprint=\"{f}\",le=\"{le}\"}}"
            ),
        )
    };
    assert_eq!(bucket("5e-05"), Some(1.0));
    assert_eq!(bucket("0.0001"), Some(1.0));
    assert_eq!(bucket("10"), Some(1.0));
    assert_eq!(bucket("+Inf"), Some(2.0));
}

#[test]
fn errors_by_sqlstate_and_unsure_statements() {
    let (m, mut c) = collector(10);
    for code in ["42P01", "42P01", "bad\ncode", "22012"] {
        let mut q = stmt("select x", 1);
        q.outcome = Outcome::Failure;
        q.error = Some(Box::new(ServerMessage {
            severity: "ERROR".into(),
            code: code.into(),
            message: "m".into(),
            fields: Vec::new(),
        }));
        c.query(&q);
    }
    let mut unsure = stmt("select y", 1);
    unsure.unsure = true;
    unsure.rows_returned = 5;
    c.query(&unsure);
    let mut skipped = stmt("select z", 1);
    skipped.skipped = true;
    c.query(&skipped);
    check(
        &m,
        "pgscope_statement_errors_total{sqlstate=\"42P01\"}",
        2.0,
    );
    check(
        &m,
        "pgscope_statement_errors_total{sqlstate=\"invalid\"}",
        1.0,
    );
    check(&m, "pgscope_statements_total{outcome=\"failure\"}", 4.0);
    check(&m, "pgscope_statements_total{outcome=\"unknown\"}", 1.0);
    check(&m, "pgscope_unsure_statements_total", 1.0);
    // Neither the unsure result nor the skipped statement is counted further.
    check(&m, "pgscope_rows_returned_total", 0.0);
    assert_eq!(count(&m, &fp("select y")), None);
    assert_eq!(count(&m, &fp("select z")), None);
}

fn session(user: &str, app: &str) -> SessionRecord {
    SessionRecord {
        user: Some(user.into()),
        database: Some("db".into()),
        application: Some(app.into()),
        auth_method: Some("trust".into()),
        encryption: Some(crate::pgwire::Encryption::None),
        protocol_negotiated: Some("3.0".into()),
        tx_status: Some(b'I'),
        close_reason: Some(crate::tcp::CloseReason::Fin),
        ..SessionRecord::default()
    }
}

#[test]
fn sessions_are_counted_once_and_active_ones_followed() {
    let (m, mut c) = collector(10);
    let s = session("alice", "app");
    c.session_update(1, &s);
    c.session_update(1, &s);
    c.session_update(2, &SessionRecord::default());
    check(&m, "pgscope_active_sessions", 2.0);
    let series = "pgscope_sessions_total{user=\"alice\",database=\"db\",application=\"app\",auth_method=\"trust\",encryption=\"none\",protocol=\"3.0\"}";
    check(&m, series, 1.0);
    c.session_closed(1, &s);
    // Counted when ready, not again at the end.
    check(&m, series, 1.0);
    // Another protocol on the port: no session record, only the anomaly.
    c.anomaly(Some(2), AnomalyKind::NotPostgres);
    check(&m, "pgscope_active_sessions", 0.0);
    let cancel = SessionRecord {
        cancel_request: Some(Default::default()),
        close_reason: Some(crate::tcp::CloseReason::Evicted),
        ..SessionRecord::default()
    };
    c.session_update(3, &cancel);
    c.session_closed(3, &cancel);
    check(&m, "pgscope_cancel_requests_total", 1.0);
    check(&m, "pgscope_evicted_connections_total", 1.0);
    check(&m, "pgscope_sessions_closed_total{reason=\"fin\"}", 1.0);
    check(&m, "pgscope_active_sessions", 0.0);
    c.anomaly(None, AnomalyKind::Gap);
    c.anomaly(Some(9), AnomalyKind::Gap);
    check(&m, "pgscope_gaps_total", 2.0);
    check(&m, "pgscope_anomalies_total{kind=\"gap\"}", 2.0);
    c.drops(10);
    c.drops(25);
    check(&m, "pgscope_capture_dropped_packets_total", 25.0);
}

/// A hostile client: long names with control characters, thousands of distinct
/// users, applications and statements. Label values stay short and escaped, their
/// number bounded, and the fingerprints followed bounded.
#[test]
fn wire_named_labels_are_bounded() {
    let (m, mut c) = collector(5);
    let long = format!("\u{1b}[31m\"{}", "é".repeat(5000));
    c.session_closed(1, &session(&long, "a\nb"));
    let text = m.encode(false);
    let line = text
        .lines()
        .find(|l| l.starts_with("pgscope_sessions_total{"))
        .unwrap();
    assert!(!line.contains('\u{1b}'), "{line}");
    assert!(line.contains("user=\"\\\\u{1b}[31m\\\""), "{line}");
    assert!(line.contains("application=\"a\\\\nb\""), "{line}");
    assert!(line.len() < 6 * MAX_LABEL_BYTES + 200, "{line}");
    for i in 0..3000 {
        c.session_closed(i, &session(&format!("user{i}"), &format!("app{}", i * 7)));
    }
    for i in 0..(MAX_TRACKED as u64 * 3) {
        c.query(&stmt(&format!("select c{i} from t"), 1));
    }
    assert!(c.stmts.len() <= MAX_TRACKED, "{}", c.stmts.len());
    let text = m.encode(false);
    let lines = |p: &str| text.lines().filter(|l| l.starts_with(p)).count();
    assert!(lines("pgscope_sessions_total{") <= MAX_SESSION_SERIES + 1);
    let users: FxHashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("pgscope_sessions_total{"))
        .filter_map(|l| l.split("user=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(users.len(), MAX_LABEL_VALUES + 1, "and other");
    assert!(users.contains("other"));
    // 5 fingerprints and other.
    assert_eq!(lines("pgscope_statement_duration_seconds_count{"), 6);
    assert_eq!(lines("pgscope_statement_info{"), 5);
    check(
        &m,
        "pgscope_statements_total{outcome=\"success\"}",
        MAX_TRACKED as f64 * 3.0,
    );
}

#[test]
fn label_values_are_cut_on_a_character_boundary() {
    let v = label_value(&"é".repeat(100), 7);
    assert_eq!(v, "ééé");
    assert_eq!(label_value("plain", 64), "plain");
    assert_eq!(label_value("a\u{202e}b", 64), "a\\u{202e}b");
}
