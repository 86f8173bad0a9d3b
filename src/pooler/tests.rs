use super::*;
use crate::session::shared::Text;
use std::net::Ipv4Addr;

const POOLER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254));

/// What the presenter got, in order.
#[derive(Default)]
struct Seen {
    queries: Vec<(u64, String, Option<Link>)>,
    sessions: Vec<u64>,
    anomalies: Vec<AnomalyKind>,
}

impl Sink for Seen {
    fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        self.anomalies.push(a.kind);
        Ok(())
    }
    fn query(&mut self, c: &ConnMeta, _: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        let text = q.text.as_deref().unwrap_or("").to_string();
        self.queries
            .push((c.id, text, q.pooler.as_deref().cloned()));
        Ok(())
    }
    fn session(&mut self, c: &ConnMeta, _: &SessionRecord) -> io::Result<()> {
        self.sessions.push(c.id);
        Ok(())
    }
    fn finish(&mut self, _: &RunStats) -> io::Result<()> {
        Ok(())
    }
}

/// A client of the pooler (10.0.0.id → pooler:6432), or a server connection
/// (pooler → 10.0.0.1:5432) with backend pid 1000 + id.
fn conn(id: u64, client_leg: bool, app: &str) -> (ConnMeta, SessionRecord) {
    let mut m = ConnMeta::for_test(id);
    if client_leg {
        m.server.1 = 6432;
    } else {
        m.client.0 = POOLER;
        m.server.0 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    }
    let s = SessionRecord {
        conn_id: id,
        application: Some(app.to_string()),
        backend_pid: (!client_leg).then_some(1000 + id as u32),
        ..SessionRecord::default()
    };
    (m, s)
}

fn stmt(id: u64, text: &str, start: i64, end: i64, tx: u8) -> QueryRecord {
    let mut q = QueryRecord::new(id, crate::session::record::Protocol::Simple, start);
    q.text = Some(Text::new(text));
    q.end_ns = end;
    q.tx_status = Some(tx);
    q
}

struct Feed {
    c: Correlator<Box<Seen>>,
}

impl Feed {
    fn new() -> Self {
        Feed {
            c: Correlator::new(Box::default(), vec![6432]),
        }
    }
    fn q(&mut self, c: &(ConnMeta, SessionRecord), text: &str, start: i64, end: i64, tx: u8) {
        let q = stmt(c.0.id, text, start, end, tx);
        self.c.query(&c.0, &c.1, &q).unwrap();
    }
    /// The usual pair: a server statement inside the client's.
    fn pair(&mut self, c: &(ConnMeta, SessionRecord), s: &(ConnMeta, SessionRecord), text: &str) {
        self.q(s, text, 1_010, 1_090, b'I');
        self.q(c, text, 1_000, 1_100, b'I');
    }
    fn done(mut self) -> Seen {
        self.c.finish(&RunStats::default()).unwrap();
        *self.c.inner
    }
}

/// A client and a server connection, both with application `app`.
fn legs() -> ((ConnMeta, SessionRecord), (ConnMeta, SessionRecord)) {
    (conn(1, true, "app"), conn(2, false, "app"))
}

fn link_of<'a>(seen: &'a Seen, id: u64, text: &str) -> &'a Link {
    let q = seen.queries.iter().find(|q| q.0 == id && q.1 == text);
    q.and_then(|q| q.2.as_ref()).expect("a link")
}

#[test]
fn links_the_client_statement_around_the_server_one() {
    let (a, s) = legs();
    let mut f = Feed::new();
    // The server statement ends first, so its record comes first.
    f.pair(&a, &s, "SELECT 1");
    let seen = f.done();
    assert_eq!(seen.queries[0].0, 2, "order kept");
    let sl = link_of(&seen, 2, "SELECT 1");
    assert_eq!(
        (
            sl.leg,
            sl.matched,
            sl.peer_conn_id,
            sl.wait_ns,
            sl.server_ns
        ),
        (
            Leg::Server,
            Match::TextParamsTime,
            Some(1),
            Some(10),
            Some(80)
        )
    );
    assert_eq!(sl.client, Some(a.0.client));
    assert_eq!(sl.client_application.as_deref(), Some("app"));
    let cl = link_of(&seen, 1, "SELECT 1");
    assert_eq!(
        (cl.leg, cl.matched, cl.peer_conn_id, cl.backend_pid),
        (Leg::Client, Match::TextParamsTime, Some(2), Some(1002))
    );
}

#[test]
fn no_link_outside_the_span_or_with_another_text() {
    let (a, s) = legs();
    let mut f = Feed::new();
    f.q(&s, "SELECT 1", 990, 1_090, b'I'); // starts before the client's
    f.q(&s, "SELECT 2", 1_010, 1_090, b'I');
    f.q(&a, "SELECT 1", 1_000, 1_100, b'I');
    let seen = f.done();
    assert_eq!(seen.queries[0].2.as_ref().unwrap().matched, Match::None);
    assert_eq!(seen.queries[1].2.as_ref().unwrap().matched, Match::None);
    assert_eq!(link_of(&seen, 1, "SELECT 1").matched, Match::None);
}

type Leg2 = (ConnMeta, SessionRecord);

/// A server BEGIN inside the BEGINs of two clients.
fn two_begins(s: &Leg2, a: &Leg2, b: &Leg2) -> Seen {
    let mut f = Feed::new();
    f.q(s, "BEGIN", 1_010, 1_090, b'T');
    f.q(a, "BEGIN", 1_000, 1_100, b'T');
    f.q(b, "BEGIN", 1_005, 1_095, b'T');
    f.done()
}

#[test]
fn two_clients_that_fit_are_ambiguous_unless_the_application_name_tells() {
    for (server_app, want) in [
        ("other", None),
        ("app-b", Some((3, Match::ApplicationName))),
        // application_name_add_host: the address decides even between equal names.
        ("app - 10.0.0.1:40001", Some((1, Match::ApplicationName))),
        ("", None),
    ] {
        let (a, b) = (conn(1, true, "app"), conn(3, true, "app-b"));
        let a = if server_app.contains(" - ") {
            a
        } else {
            conn(1, true, "app-a")
        };
        let seen = two_begins(&conn(2, false, server_app), &a, &b);
        let sl = link_of(&seen, 2, "BEGIN");
        match want {
            Some((client, m)) => {
                assert_eq!(
                    (sl.peer_conn_id, sl.matched),
                    (Some(client), m),
                    "{server_app}"
                );
            }
            // A name neither client has: the evidence conflicts, no link.
            None => assert_eq!(sl.matched, Match::None, "{server_app}"),
        }
    }
    // Without a name on the server leg, both fit.
    let (a, b, s) = (conn(1, true, "x"), conn(3, true, "y"), conn(2, false, "z"));
    let mut s = s;
    s.1.application = None;
    let seen = two_begins(&s, &a, &b);
    let sl = link_of(&seen, 2, "BEGIN");
    assert_eq!((sl.matched, sl.candidates), (Match::Ambiguous, 2));
    assert_eq!(link_of(&seen, 1, "BEGIN").matched, Match::Ambiguous);
}

#[test]
fn a_client_statement_around_two_server_statements_links_neither() {
    // pgbouncer's server_check_query ("select 1") before the client's own "select 1".
    let (a, s) = legs();
    let mut f = Feed::new();
    f.q(&s, "select 1", 1_001, 1_005, b'I');
    f.pair(&a, &s, "select 1");
    let seen = f.done();
    assert!(
        seen.queries
            .iter()
            .all(|q| q.2.as_ref().unwrap().matched == Match::Ambiguous),
        "{:?}",
        seen.queries
    );
}

#[test]
fn a_server_transaction_belongs_to_one_client() {
    let (a, b, s) = (conn(1, true, "p"), conn(3, true, "p"), conn(2, false, "p"));
    let mut f = Feed::new();
    // Both clients sent BEGIN around the server's; only a's next statement fits the
    // server's second one, so the BEGIN was a's too.
    f.q(&s, "BEGIN", 1_010, 1_020, b'T');
    f.q(&a, "BEGIN", 1_000, 1_030, b'T');
    f.q(&b, "BEGIN", 1_001, 1_030, b'T');
    f.q(&s, "SELECT 7", 1_040, 1_050, b'T');
    f.q(&a, "SELECT 7", 1_035, 1_060, b'T');
    f.q(&s, "COMMIT", 1_070, 1_080, b'I');
    f.q(&a, "COMMIT", 1_065, 1_090, b'I');
    f.q(&b, "COMMIT", 1_066, 1_091, b'I');
    let seen = f.done();
    let begin = link_of(&seen, 2, "BEGIN");
    assert_eq!(
        (begin.peer_conn_id, begin.matched),
        (Some(1), Match::Transaction)
    );
    let commit = link_of(&seen, 2, "COMMIT");
    assert_eq!(
        (commit.peer_conn_id, commit.matched),
        (Some(1), Match::Transaction)
    );
    assert_eq!(link_of(&seen, 3, "BEGIN").peer_conn_id, None);
    // Its text alone decided the SELECT, which then told whose transaction it was.
    assert_eq!(link_of(&seen, 2, "SELECT 7").matched, Match::TextParamsTime);
}

#[test]
fn unsure_statements_are_never_linked() {
    let (a, s) = legs();
    let mut f = Feed::new();
    let mut q = stmt(2, "SELECT 1", 1_010, 1_090, b'I');
    q.unsure = true;
    f.c.query(&s.0, &s.1, &q).unwrap();
    f.q(&a, "SELECT 1", 1_000, 1_100, b'I');
    let seen = f.done();
    assert_eq!(link_of(&seen, 2, "SELECT 1").matched, Match::None);
}

#[test]
fn other_connections_are_left_alone() {
    // A connection from another address to the server: not a pooler's server leg.
    let a = conn(1, true, "app");
    let mut d = conn(5, false, "app");
    d.0.client.0 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
    let mut f = Feed::new();
    f.pair(&a, &d, "SELECT 1");
    let seen = f.done();
    assert!(seen.queries[0].2.is_none());
    assert_eq!(link_of(&seen, 1, "SELECT 1").matched, Match::None);
}

#[test]
fn records_go_on_once_their_window_has_passed_and_sessions_keep_their_place() {
    let (a, s) = legs();
    let mut f = Feed::new();
    f.pair(&a, &s, "SELECT 1");
    f.c.session(
        &s.0,
        &SessionRecord {
            end_ns: 1_200,
            ..s.1.clone()
        },
    )
    .unwrap();
    assert!(f.c.inner.queries.is_empty(), "held");
    // Just short of twice the window after the first: still held.
    f.q(&a, "SELECT 2", 2 * WINDOW_NS, 2 * WINDOW_NS + 1_000, b'I');
    assert_eq!(f.c.inner.queries.len(), 0);
    f.q(&a, "SELECT 3", 3 * WINDOW_NS, 3 * WINDOW_NS + 1_000, b'I');
    assert_eq!(f.c.inner.queries.len(), 2, "the first two went on");
    assert_eq!(f.c.inner.sessions, vec![2]);
    assert_eq!(link_of(&f.c.inner, 2, "SELECT 1").peer_conn_id, Some(1));
    let seen = f.done();
    assert_eq!(seen.queries.len(), 4);
    assert!(seen.anomalies.is_empty());
}

#[test]
fn at_most_max_held_records_wait() {
    let (a, s) = legs();
    let mut f = Feed::new();
    let n = MAX_HELD as i64 + 100;
    // A client leg first: it tells where the pooler is.
    f.q(&a, "SELECT x", 900, 950, b'I');
    for i in 0..n {
        // All within one window: only the count bound lets them go.
        let t = 1_000 + i * 10;
        f.q(&s, &format!("SELECT {i}"), t + 1, t + 8, b'I');
        assert!(f.c.held.len() <= MAX_HELD + 1);
    }
    f.q(&a, "SELECT 0", 1_000, 1_010, b'I');
    assert!(f.c.inner.queries.len() >= 99);
    let seen = f.done();
    assert_eq!(seen.queries.len() as i64, n + 2);
    // Decided before its window passed: left unlinked, and said so.
    assert_eq!(seen.queries[1].1, "SELECT 0");
    assert_eq!(seen.queries[1].2.as_ref().unwrap().matched, Match::None);
    assert_eq!(link_of(&seen, 1, "SELECT 0").matched, Match::None);
    assert_eq!(seen.anomalies, [AnomalyKind::PoolerWindowFull]);
}

#[test]
fn add_host_names_parse() {
    assert_eq!(
        parse_host_port("127.0.0.1:5000"),
        Some("127.0.0.1:5000".parse().unwrap())
    );
    assert_eq!(
        parse_host_port("[::1]:5000"),
        Some("[::1]:5000".parse().unwrap())
    );
    assert_eq!(
        parse_host_port("::1:5000"),
        Some("[::1]:5000".parse().unwrap())
    );
    assert_eq!(parse_host_port("somewhere"), None);
    assert_eq!(parse_host_port("1.2.3.4:99999"), None);
}

#[test]
fn a_live_tick_hands_on_what_is_due_on_a_quiet_link() {
    let (a, s) = legs();
    let mut f = Feed::new();
    f.pair(&a, &s, "SELECT 1");
    // Before twice the window after the first record's end (1_090): still held.
    f.c.tick(1_090 + 2 * WINDOW_NS - 1).unwrap();
    assert!(f.c.inner.queries.is_empty(), "held");
    // No record comes, but the wall clock has moved on: both go, linked.
    f.c.tick(1_100 + 2 * WINDOW_NS).unwrap();
    assert_eq!(f.c.inner.queries.len(), 2);
    assert_eq!(link_of(&f.c.inner, 2, "SELECT 1").peer_conn_id, Some(1));
    assert_eq!(link_of(&f.c.inner, 1, "SELECT 1").peer_conn_id, Some(2));
    // A tick behind the records' clock changes nothing.
    f.c.tick(0).unwrap();
    let seen = f.done();
    assert_eq!(seen.queries.len(), 2);
    assert!(seen.anomalies.is_empty());
}
