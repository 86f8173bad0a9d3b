//! The session state machine fed with wire bytes through the real framer.

use super::record::{AuthOutcome, CopyDirection, Outcome};
use super::shared::OwnerRc;
use super::*;
use crate::pgwire::{ConnDecoder, Event};

use crate::synth::msg;

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn startup(params: &[(&str, &str)], minor: u16) -> Vec<u8> {
    let mut body = vec![0, 3];
    body.extend_from_slice(&minor.to_be_bytes());
    for (k, v) in params {
        body.extend(cstr(k));
        body.extend(cstr(v));
    }
    body.push(0);
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend(body);
    v
}

fn query(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(sql));
    b.extend_from_slice(&(types.len() as u16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    msg(b'P', &b)
}

fn bind(portal: &str, stmt: &str, formats: &[u16], params: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
    for f in formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    b.extend_from_slice(&(params.len() as u16).to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&0u16.to_be_bytes());
    msg(b'B', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend_from_slice(&0u32.to_be_bytes());
    msg(b'E', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cstr(tag))
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

fn data_row() -> Vec<u8> {
    msg(b'D', &[0, 1, 0, 0, 0, 1, b'1'])
}

fn error(code: &str, text: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend(cstr("ERROR"));
    b.push(b'C');
    b.extend(cstr(code));
    b.push(b'M');
    b.extend(cstr(text));
    b.push(0);
    msg(b'E', &b)
}

fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(extra);
    msg(b'R', &b)
}

fn key_data(pid: u32, key: &[u8]) -> Vec<u8> {
    let mut b = pid.to_be_bytes().to_vec();
    b.extend_from_slice(key);
    msg(b'K', &b)
}

struct Conn {
    dec: ConnDecoder,
    s: Session,
    out: Vec<Box<QueryRecord>>,
}

impl Conn {
    fn new(id: u64) -> Self {
        Conn {
            dec: ConnDecoder::new(false),
            s: Session::new(id, 0, false),
            out: Vec::new(),
        }
    }

    /// One segment whose ACK covers all the other direction sent so far (what a
    /// client that waits for answers, and a server, send).
    fn feed(&mut self, shared: &mut Shared, ts: i64, dir: Dir, parts: &[Vec<u8>]) {
        let other = match dir {
            Dir::Frontend => Dir::Backend,
            Dir::Backend => Dir::Frontend,
        };
        let acked = self.s.off[other as usize];
        self.feed_acked(shared, ts, dir, parts, Some(acked));
    }

    /// One segment with this ACK (an offset into the other direction's stream).
    fn feed_acked(
        &mut self,
        shared: &mut Shared,
        ts: i64,
        dir: Dir,
        parts: &[Vec<u8>],
        acked: Option<u64>,
    ) {
        let bytes: Vec<u8> = parts.concat();
        self.s.segment(dir, bytes.len(), acked);
        let Conn { dec, s, out } = self;
        dec.feed(dir, &bytes, &mut |ev| {
            if let Event::Msg(m) = ev {
                s.on_message(shared, ts, m, out);
            }
        });
    }

    /// `bytes` of `dir` lost, as the TCP stage reports it.
    fn gap(&mut self, ts: i64, dir: Dir, bytes: u64) {
        self.s.lost_bytes(dir, bytes);
        self.s.note_gap(dir, ts);
    }

    /// The results as (text, tag, unsure).
    fn results(&self) -> Vec<(&str, Option<&str>, bool)> {
        self.out
            .iter()
            .map(|q| {
                (
                    q.text.as_deref().unwrap_or(""),
                    q.command_tag.as_deref(),
                    q.unsure,
                )
            })
            .collect()
    }

    /// Startup with trust auth, up to the first ReadyForQuery.
    fn login(&mut self, shared: &mut Shared, pid: u32, key: &[u8]) {
        self.feed(
            shared,
            1,
            Dir::Frontend,
            &[startup(&[("user", "alice")], 0)],
        );
        self.feed(
            shared,
            2,
            Dir::Backend,
            &[auth(0, b""), key_data(pid, key), ready(b'I')],
        );
    }
}

#[test]
fn simple_multi_statement_query_yields_one_record_per_statement() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[1, 2, 3, 4]);
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[query("select 1; select 'a;b'")],
    );
    c.feed(
        &mut sh,
        20,
        Dir::Backend,
        &[data_row(), complete("SELECT 1"), data_row(), data_row()],
    );
    c.feed(
        &mut sh,
        30,
        Dir::Backend,
        &[complete("SELECT 2"), ready(b'I')],
    );
    let texts: Vec<_> = c.out.iter().map(|q| q.text.as_deref().unwrap()).collect();
    assert_eq!(texts, vec!["select 1", "select 'a;b'"]);
    assert_eq!(c.out[0].rows_returned, 1);
    assert_eq!(c.out[1].rows_returned, 2);
    assert_eq!(c.out[1].rows_affected, Some(2));
    assert_eq!((c.out[0].start_ns, c.out[0].end_ns), (10, 20));
    assert_eq!((c.out[1].start_ns, c.out[1].end_ns), (20, 30));
    assert!(c.out.iter().all(|q| q.tx_status == Some(b'I')));
    let rec = c.s.record();
    assert_eq!(rec.user.as_deref(), Some("alice"));
    assert_eq!(rec.database.as_deref(), Some("alice"));
    assert_eq!(rec.auth_method.as_deref(), Some("trust"));
    assert_eq!(rec.auth_outcome, Some(AuthOutcome::Success));
}

#[test]
fn walsender_command_with_several_result_sets_is_one_statement() {
    // BASE_BACKUP's shape: result set, result set, COPY out, result set, own tag.
    let answer = [
        data_row(),
        complete("SELECT"),
        data_row(),
        complete("SELECT"),
        msg(b'H', &[0, 0, 0]),
        msg(b'd', b"n..."),
        msg(b'd', b"d..."),
        msg(b'c', b""),
        data_row(),
        complete("SELECT"),
        complete("BASE_BACKUP"),
        ready(b'I'),
    ];
    let run = |replication: Option<&str>| {
        let mut sh = Shared::default();
        let mut c = Conn::new(1);
        let mut params = vec![("user", "repl")];
        params.extend(replication.map(|r| ("replication", r)));
        c.feed(&mut sh, 1, Dir::Frontend, &[startup(&params, 0)]);
        c.feed(&mut sh, 2, Dir::Backend, &[auth(0, b""), ready(b'I')]);
        c.feed(
            &mut sh,
            10,
            Dir::Frontend,
            &[query("BASE_BACKUP ( LABEL 'x' )")],
        );
        c.feed(&mut sh, 20, Dir::Backend, &answer);
        (c.out, c.s.record().queries)
    };
    let (out, queries) = run(Some("true"));
    assert_eq!(queries, 1);
    let q = &out[0];
    assert_eq!(q.command_tag.as_deref(), Some("BASE_BACKUP"));
    assert_eq!(q.rows_returned, 3 + 2); // DataRows and COPY out data
    let copy = q.copy.as_ref().unwrap();
    assert_eq!(
        (copy.direction, copy.messages_out),
        (Some(CopyDirection::Out), 2)
    );
    // On a regular connection each answer beyond the statements is a record of its
    // own, as when a multi-statement string was split short.
    let (out, queries) = run(None);
    assert_eq!(queries, 4);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].command_tag.as_deref(), Some("BASE_BACKUP"));
}

#[test]
fn pipeline_error_lands_on_its_statement_and_skips_the_rest() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[
            parse("", "select 1", &[]),
            bind("", "", &[], &[]),
            execute(""),
            parse("", "select 1/0", &[]),
            bind("", "", &[], &[]),
            execute(""),
            parse("", "select 3", &[]),
            bind("", "", &[], &[]),
            execute(""),
            sync(),
        ],
    );
    c.feed(
        &mut sh,
        20,
        Dir::Backend,
        &[
            msg(b'1', b""),
            msg(b'2', b""),
            data_row(),
            complete("SELECT 1"),
            msg(b'1', b""),
            msg(b'2', b""),
            error("22012", "division by zero"),
            ready(b'I'),
        ],
    );
    assert_eq!(c.out.len(), 3);
    assert_eq!(c.out[0].outcome, Outcome::Success);
    assert_eq!(c.out[1].text.as_deref(), Some("select 1/0"));
    assert_eq!(c.out[1].outcome, Outcome::Failure);
    assert_eq!(c.out[1].error.as_ref().unwrap().code, "22012");
    assert!(c.out[2].skipped);
    assert_eq!(c.out[2].text.as_deref(), Some("select 3"));
    assert_eq!(c.s.record().errors, 1);
}

#[test]
fn parse_error_is_reported_on_the_statement_meant_to_run() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[
            parse("s1", "selec 1", &[]),
            bind("", "s1", &[], &[]),
            execute(""),
            sync(),
        ],
    );
    c.feed(
        &mut sh,
        11,
        Dir::Backend,
        &[error("42601", "syntax error"), ready(b'I')],
    );
    assert_eq!(c.out.len(), 1);
    assert_eq!(c.out[0].text.as_deref(), Some("selec 1"));
    assert_eq!(c.out[0].statement(), Some("s1"));
    assert_eq!(c.out[0].error.as_ref().unwrap().code, "42601");
}

#[test]
fn binary_bind_parameters_use_the_parse_types() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[
            parse("q", "select $1, $2, $3", &[23, 25, 0]),
            bind(
                "",
                "q",
                &[1, 0, 1],
                &[Some(&[0, 0, 1, 0]), Some(b"hi"), None],
            ),
            execute(""),
            sync(),
        ],
    );
    c.feed(
        &mut sh,
        11,
        Dir::Backend,
        &[
            msg(b'1', b""),
            msg(b'2', b""),
            complete("SELECT 1"),
            ready(b'T'),
        ],
    );
    let q = &c.out[0];
    // Each value keeps its format and the type Parse gave (rendered by the presenter).
    let params: Vec<_> = q
        .params
        .entries()
        .map(|e| (e.binary, e.type_oid, (!e.null).then_some(e.kept)))
        .collect();
    let want: [(bool, u32, Option<&[u8]>); 3] = [
        (true, 23, Some(&[0, 0, 1, 0])),
        (false, 25, Some(b"hi")),
        (true, 0, None),
    ];
    assert_eq!(params, want);
    assert_eq!(q.tx_status, Some(b'T'));
    assert_eq!(q.operation_name().as_deref(), Some("SELECT"));
}

#[test]
fn cancel_request_is_matched_to_the_running_statement() {
    let mut sh = Shared::default();
    let key = [9u8; 32];
    let mut target = Conn::new(1);
    target.login(&mut sh, 4242, &key);
    target.feed(&mut sh, 10, Dir::Frontend, &[query("select pg_sleep(10)")]);

    let mut canceller = Conn::new(2);
    let mut cancel = (12 + key.len() as u32).to_be_bytes().to_vec();
    cancel.extend_from_slice(&80877102u32.to_be_bytes());
    cancel.extend_from_slice(&4242u32.to_be_bytes());
    cancel.extend_from_slice(&key);
    canceller.feed(&mut sh, 15, Dir::Frontend, &[cancel]);
    let info = canceller.s.record().cancel_request.clone().unwrap();
    assert_eq!(info.target_conn_id, Some(1));
    assert_eq!(info.key_len, 32);

    target.feed(
        &mut sh,
        16,
        Dir::Backend,
        &[
            error("57014", "canceling statement due to user request"),
            ready(b'I'),
        ],
    );
    assert_eq!(target.out[0].cancelled_by, Some(2));
    assert_eq!(target.out[0].error.as_ref().unwrap().code, "57014");
    assert_eq!(target.s.record().cancel_key_len, Some(32));
}

#[test]
fn login_failure_is_an_auth_outcome_not_a_query() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.feed(&mut sh, 1, Dir::Frontend, &[startup(&[("user", "bob")], 2)]);
    c.feed(&mut sh, 2, Dir::Backend, &[auth(5, &[1, 2, 3, 4])]);
    c.feed(&mut sh, 3, Dir::Frontend, &[msg(b'p', &cstr("md5abcdef"))]);
    c.feed(
        &mut sh,
        4,
        Dir::Backend,
        &[error("28P01", "password authentication failed")],
    );
    let rec = c.s.record();
    assert_eq!(rec.auth_method.as_deref(), Some("md5"));
    assert_eq!(rec.auth_outcome, Some(AuthOutcome::Failure));
    assert_eq!(rec.auth_error.as_ref().unwrap().code, "28P01");
    assert_eq!(rec.protocol_requested.as_deref(), Some("3.2"));
    assert!(c.out.is_empty());
}

#[test]
fn negotiate_protocol_version_and_copy_in() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.feed(
        &mut sh,
        1,
        Dir::Frontend,
        &[startup(&[("user", "u"), ("_pq_.x", "1")], 2)],
    );
    let mut npv = 0u32.to_be_bytes().to_vec();
    npv.extend_from_slice(&1u32.to_be_bytes());
    npv.extend(cstr("_pq_.x"));
    c.feed(
        &mut sh,
        2,
        Dir::Backend,
        &[msg(b'v', &npv), auth(0, b""), ready(b'I')],
    );
    assert_eq!(c.s.record().protocol_negotiated.as_deref(), Some("3.0"));
    assert_eq!(c.s.record().unsupported_options, vec!["_pq_.x"]);

    c.feed(&mut sh, 10, Dir::Frontend, &[query("copy t from stdin")]);
    c.feed(&mut sh, 11, Dir::Backend, &[msg(b'G', &[0, 0, 1, 0, 0])]);
    c.feed(
        &mut sh,
        12,
        Dir::Frontend,
        &[msg(b'd', b"1\n"), msg(b'd', b"2\n"), msg(b'c', b"")],
    );
    c.feed(
        &mut sh,
        13,
        Dir::Backend,
        &[complete("COPY 2"), ready(b'I')],
    );
    let q = &c.out[0];
    assert_eq!(q.rows_affected, Some(2));
    let copy = q.copy.as_ref().unwrap();
    assert_eq!(
        (copy.direction, copy.messages_in, copy.bytes_in),
        (Some(CopyDirection::In), 2, 4)
    );
}

#[test]
fn answers_without_requests_are_ignored_mid_stream() {
    let mut sh = Shared::default();
    let mut s = Session::new(1, 0, true);
    let mut dec = ConnDecoder::new(true);
    let mut out = Vec::new();
    let bytes = [complete("SELECT 1"), ready(b'I')].concat();
    dec.feed(Dir::Backend, &bytes, &mut |ev| {
        if let Event::Msg(m) = ev {
            s.on_message(&mut sh, 1, m, &mut out);
        }
    });
    assert!(out.is_empty());
    assert_eq!(s.record().tx_status, Some(b'I'));
}

#[test]
fn command_tags() {
    let cases = [
        ("INSERT 0 5", Some(5)),
        ("UPDATE 3", Some(3)),
        ("SELECT 0", Some(0)),
        ("COPY 12", Some(12)),
        ("CREATE TABLE", None),
        ("BEGIN", None),
        ("MERGE 2", Some(2)),
    ];
    for (tag, want) in cases {
        assert_eq!(rows_from_tag(tag), want, "{tag}");
    }
}

#[test]
fn a_lost_request_does_not_shift_later_answers() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(&mut sh, 10, Dir::Frontend, &[query("select 'a'")]);
    c.feed(
        &mut sh,
        11,
        Dir::Backend,
        &[complete("SELECT 1"), ready(b'I')],
    );
    // The segment with `select 'b'` is lost; the server's answer acknowledges it,
    // so the TCP stage reports the gap before handing the answer on.
    c.gap(12, Dir::Frontend, query("select 'b'").len() as u64);
    c.feed(
        &mut sh,
        13,
        Dir::Backend,
        &[complete("SELECT 2"), ready(b'I')],
    );
    // `select 'c'` is sent once its client has read that answer (its ACK says so).
    c.feed(&mut sh, 14, Dir::Frontend, &[query("select 'c'")]);
    c.feed(
        &mut sh,
        15,
        Dir::Backend,
        &[complete("SELECT 3"), ready(b'I')],
    );
    assert_eq!(
        c.results(),
        [
            ("select 'a'", Some("SELECT 1"), false),
            ("select 'c'", Some("SELECT 3"), false)
        ]
    );
    assert_eq!(c.s.record().gaps, 1);
    assert_eq!(c.s.record().unsure_records, 0);
}

#[test]
fn a_request_sent_before_the_lost_ones_were_answered_is_unsure() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    let served = c.s.off[Dir::Backend as usize];
    c.gap(10, Dir::Frontend, query("select 'b'").len() as u64);
    // Pipelined: `select 'c'` goes out before the answer to the lost request, so
    // either answer could be its own.
    c.feed_acked(
        &mut sh,
        11,
        Dir::Frontend,
        &[query("select 'c'")],
        Some(served),
    );
    c.feed(
        &mut sh,
        12,
        Dir::Backend,
        &[complete("SELECT 2"), ready(b'I')],
    );
    c.feed(
        &mut sh,
        13,
        Dir::Backend,
        &[complete("SELECT 3"), ready(b'I')],
    );
    // Then a request sent after both answers were read is certain again.
    c.feed(&mut sh, 14, Dir::Frontend, &[query("select 'd'")]);
    c.feed(
        &mut sh,
        15,
        Dir::Backend,
        &[complete("SELECT 4"), ready(b'I')],
    );
    assert_eq!(
        c.results(),
        [
            ("select 'c'", None, true),
            ("select 'd'", Some("SELECT 4"), false)
        ]
    );
    assert_eq!(c.out[0].outcome, Outcome::Unknown);
}

#[test]
fn an_answer_sent_before_the_resync_request_arrived_is_not_its_own() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.gap(10, Dir::Frontend, 40);
    c.feed(
        &mut sh,
        11,
        Dir::Backend,
        &[complete("SELECT 2"), ready(b'I')],
    );
    let received = c.s.off[Dir::Frontend as usize];
    c.feed(&mut sh, 12, Dir::Frontend, &[query("select 'c'")]);
    // This answer's ACK shows the server had not received `select 'c'` yet: it
    // answers another lost request.
    c.feed_acked(
        &mut sh,
        13,
        Dir::Backend,
        &[complete("SELECT 9"), ready(b'I')],
        Some(received),
    );
    c.feed(
        &mut sh,
        14,
        Dir::Backend,
        &[complete("SELECT 3"), ready(b'I')],
    );
    c.feed(&mut sh, 15, Dir::Frontend, &[query("select 'd'")]);
    c.feed(
        &mut sh,
        16,
        Dir::Backend,
        &[complete("SELECT 4"), ready(b'I')],
    );
    assert_eq!(
        c.results(),
        [
            ("select 'c'", None, true),
            ("select 'd'", Some("SELECT 4"), false)
        ]
    );
    assert_eq!(c.s.record().unsure_pairings, 1);
}

#[test]
fn lost_answers_close_their_statements_as_unsure() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[
            bind("", "", &[], &[]),
            execute(""),
            sync(),
            query("select 2"),
        ],
    );
    // Everything up to the first ReadyForQuery was lost in the capture.
    c.gap(20, Dir::Backend, 30);
    c.feed(&mut sh, 20, Dir::Backend, &[ready(b'I')]);
    c.feed(
        &mut sh,
        21,
        Dir::Backend,
        &[complete("SELECT 1"), ready(b'I')],
    );
    assert_eq!(c.out.len(), 2);
    assert!(
        c.out
            .iter()
            .all(|q| q.unsure && q.outcome == Outcome::Unknown)
    );
    assert!(c.out.iter().all(|q| q.command_tag.is_none()));
    // The next request, sent after everything was read, is certain.
    c.feed(&mut sh, 22, Dir::Frontend, &[query("select 3")]);
    c.feed(
        &mut sh,
        23,
        Dir::Backend,
        &[complete("SELECT 3"), ready(b'I')],
    );
    assert_eq!(c.results()[2], ("select 3", Some("SELECT 3"), false));
}

#[test]
fn a_ready_for_query_with_answers_missing_puts_the_session_out_of_step() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[
            bind("", "", &[], &[]),
            execute(""),
            sync(),
            query("select 2"),
        ],
    );
    // No gap was seen, yet BindComplete and CommandComplete never came.
    c.feed(&mut sh, 20, Dir::Backend, &[ready(b'I')]);
    c.feed(
        &mut sh,
        21,
        Dir::Backend,
        &[complete("SELECT 1"), ready(b'I')],
    );
    assert!(c.out.iter().all(|q| q.unsure), "{:?}", c.results());
    assert_eq!(c.s.record().unsure_pairings, 1);
}

#[test]
fn a_full_queue_of_pending_requests_is_reported_and_its_records_unsure() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    // Each statement is three operations (Parse, Bind, Execute): a cap of 8 holds
    // two statements and a half.
    c.s.max_pending = 8;
    let n = 4;
    let mut req = Vec::new();
    for i in 0..n {
        let sql = format!("select {i}");
        req.extend([parse("", &sql, &[]), bind("", "", &[], &[]), execute("")]);
    }
    req.push(sync());
    c.feed(&mut sh, 10, Dir::Frontend, &req);
    // 13 operations into 8 places: the 9th finds the queue full, and the 8
    // pending are closed unsure, as after lost requests.
    assert_eq!(c.s.take_dropped_ops(), Some(8));
    assert_eq!(c.s.take_dropped_ops(), None, "reported once");
    assert_eq!(sh.dropped_ops, 8);
    let mut answers = Vec::new();
    for i in 0..n {
        answers.extend([
            msg(b'1', b""),
            msg(b'2', b""),
            data_row(),
            complete(&format!("SELECT {}", i + 1)),
        ]);
    }
    answers.push(ready(b'I'));
    c.feed(&mut sh, 20, Dir::Backend, &answers);
    // No answer is attributed: none can be told apart.
    c.feed(&mut sh, 30, Dir::Frontend, &[query("select 9")]);
    c.feed(
        &mut sh,
        40,
        Dir::Backend,
        &[complete("SELECT 1"), ready(b'I')],
    );
    // Every statement has a record; none claims a result but the one sent after
    // the session was certain again.
    assert_eq!(
        c.results(),
        [
            ("select 0", None, true),
            ("select 1", None, true),
            ("select 2", None, true),
            ("select 3", None, true),
            ("select 9", Some("SELECT 1"), false),
        ]
    );
}

#[test]
fn a_pipeline_longer_than_the_old_cap_is_paired_exactly() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    let n = 20_000;
    let mut req = vec![parse("s", "select $1", &[])];
    for i in 0..n {
        let v = i.to_string();
        req.extend([bind("", "s", &[], &[Some(v.as_bytes())]), execute("")]);
    }
    req.push(sync());
    c.feed(&mut sh, 10, Dir::Frontend, &req);
    let mut answers = vec![msg(b'1', b"")];
    for i in 0..n {
        // Each statement's own answer: i rows.
        answers.push(msg(b'2', b""));
        answers.extend(std::iter::repeat_n(data_row(), i % 3));
        answers.push(complete(&format!("SELECT {}", i % 3)));
    }
    answers.push(ready(b'I'));
    c.feed(&mut sh, 20, Dir::Backend, &answers);
    assert_eq!(c.s.take_dropped_ops(), None);
    assert_eq!(c.out.len(), n);
    for (i, r) in c.out.iter().enumerate() {
        assert_eq!(r.rows_returned, (i % 3) as u64);
        assert_eq!(r.rows_affected, Some((i % 3) as u64));
        assert!(!r.unsure);
    }
}

#[test]
fn malformed_data_rows_count_and_an_unfinished_startup_is_incomplete() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    c.feed(&mut sh, 10, Dir::Frontend, &[query("select 1")]);
    // A DataRow whose column count promises more than it holds.
    let bad_row = msg(b'D', &[0, 2, 0, 0, 0, 1, b'1']);
    c.feed(
        &mut sh,
        20,
        Dir::Backend,
        &[data_row(), bad_row, complete("SELECT 2"), ready(b'I')],
    );
    assert_eq!(c.out[0].rows_returned, 2);
    assert_eq!(c.s.record().rows, 2);

    // A startup the server never answered.
    let mut c = Conn::new(2);
    c.feed(&mut sh, 1, Dir::Frontend, &[startup(&[("user", "bob")], 0)]);
    let rec =
        c.s.close(&mut sh, 5, crate::tcp::CloseReason::Fin, &mut Vec::new());
    assert_eq!(rec.auth_outcome, Some(AuthOutcome::Incomplete));
}

/// Statements parsed again under the same name (with the same text or another),
/// closed, and looked up among many names: each Execute runs its statement's
/// current text.
#[test]
fn reparsed_closed_and_many_named_statements_run_their_current_text() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    let mut ts = 10;
    let mut want = Vec::new();
    // Optionally closes the statement, then optionally parses it, binds and runs it.
    let mut run =
        |c: &mut Conn, name: &str, close: bool, sql: Option<&str>, expect: Option<&str>| {
            let (mut front, mut back) = (Vec::new(), Vec::new());
            if close {
                let mut b = vec![b'S'];
                b.extend(cstr(name));
                front.push(msg(b'C', &b));
                back.push(msg(b'3', b""));
            }
            if let Some(sql) = sql {
                front.push(parse(name, sql, &[]));
                back.push(msg(b'1', b""));
            }
            front.extend([bind("", name, &[], &[]), execute(""), sync()]);
            back.extend([msg(b'2', b""), complete("SELECT 1"), ready(b'I')]);
            c.feed(&mut sh, ts, Dir::Frontend, &front);
            c.feed(&mut sh, ts + 1, Dir::Backend, &back);
            ts += 2;
            want.push((name.to_string(), expect.map(str::to_string)));
        };
    for sql in ["select 1", "select 1", "select 2", "select 2"] {
        run(&mut c, "", false, Some(sql), Some(sql));
    }
    let names: Vec<String> = (0..40).map(|i| format!("P_{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        let sql = format!("select {i}");
        run(&mut c, n, false, Some(&sql), Some(&sql));
    }
    for round in 0..3 {
        for (i, n) in names.iter().enumerate().rev().step_by(round + 1) {
            run(&mut c, n, false, None, Some(&format!("select {i}")));
        }
    }
    // Closed, then bound: unknown; parsed again: its new text.
    for n in ["P_3", "P_39"] {
        run(&mut c, n, true, None, None);
        run(&mut c, n, false, Some("select 'new'"), Some("select 'new'"));
        run(&mut c, n, false, None, Some("select 'new'"));
    }
    run(&mut c, "P_38", false, None, Some("select 38"));
    run(&mut c, "", false, None, Some("select 2"));
    let got: Vec<_> = c
        .out
        .iter()
        .map(|q| {
            (
                q.statement().unwrap_or_default().to_owned(),
                q.text.as_deref().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(c.out.iter().all(|q| q.outcome == Outcome::Success));
}

#[test]
fn records_of_a_named_statement_share_its_name() {
    let mut sh = Shared::default();
    let mut c = Conn::new(1);
    c.login(&mut sh, 7, &[0; 4]);
    let run = |c: &mut Conn, sh: &mut Shared, ts, stmt: &str| {
        c.feed(
            sh,
            ts,
            Dir::Frontend,
            &[bind("", stmt, &[], &[]), execute(""), sync()],
        );
        let answers = [msg(b'2', &[]), complete("SELECT 1"), ready(b'I')];
        c.feed(sh, ts + 1, Dir::Backend, &answers);
    };
    c.feed(
        &mut sh,
        10,
        Dir::Frontend,
        &[parse("s1", "select 1", &[]), sync()],
    );
    c.feed(&mut sh, 11, Dir::Backend, &[msg(b'1', &[]), ready(b'I')]);
    run(&mut c, &mut sh, 20, "s1");
    run(&mut c, &mut sh, 30, "s1");
    // Never prepared in sight: named by its Bind.
    run(&mut c, &mut sh, 40, "before_capture");
    c.feed(&mut sh, 50, Dir::Frontend, &[parse("", "select 2", &[])]);
    run(&mut c, &mut sh, 51, "");
    let names: Vec<_> = c.out.iter().map(|q| q.statement()).collect();
    let want = [Some("s1"), Some("s1"), Some("before_capture"), Some("")];
    assert_eq!(names, want);
    assert_eq!(c.out[3].text.as_deref(), Some("select 2"));
    let (a, b) = (
        c.out[0].statement_name.as_ref(),
        c.out[1].statement_name.as_ref(),
    );
    assert!(super::shared::OwnerRc::ptr_eq(a.unwrap(), b.unwrap()));
    let d = c.out[0].detached();
    assert_eq!(d.statement(), Some("s1"));
    assert!(!super::shared::OwnerRc::ptr_eq(
        d.statement_name.as_ref().unwrap(),
        a.unwrap()
    ));
}

#[test]
fn protocol_version_spelled_as_formatted() {
    // The one-digit shortcut and the formatted fallback agree on every shape.
    for (major, minor) in [(3, 0), (3, 2), (9, 9), (3, 10), (10, 0), (1234, 5679)] {
        assert_eq!(protocol_version(major, minor), format!("{major}.{minor}"));
    }
}

#[test]
fn a_closed_connection_forgets_its_cancel_key_but_not_a_successors() {
    let mut sh = Shared::default();
    let key = [7u8; 4];
    let target_of = |sh: &mut Shared, id: u64| {
        let mut c = Conn::new(id);
        let mut cancel = 16u32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&80877102u32.to_be_bytes());
        cancel.extend_from_slice(&4242u32.to_be_bytes());
        cancel.extend_from_slice(&key);
        c.feed(sh, 20, Dir::Frontend, &[cancel]);
        c.s.record().cancel_request.as_ref().unwrap().target_conn_id
    };
    let close = |sh: &mut Shared, c: Conn| {
        c.s.close(sh, 30, crate::tcp::CloseReason::Fin, &mut Vec::new());
    };
    let mut first = Conn::new(1);
    first.login(&mut sh, 4242, &key);
    assert_eq!(target_of(&mut sh, 10), Some(1));
    close(&mut sh, first);
    assert_eq!(target_of(&mut sh, 11), None);

    // The same pid and key reused by a later backend: the earlier connection's
    // close must leave the later one's entry.
    let (mut old, mut new) = (Conn::new(2), Conn::new(3));
    old.login(&mut sh, 4242, &key);
    new.login(&mut sh, 4242, &key);
    close(&mut sh, old);
    assert_eq!(target_of(&mut sh, 12), Some(3));
    close(&mut sh, new);
    assert_eq!(target_of(&mut sh, 13), None);
}

#[test]
fn login_parameters_are_the_wire_bytes_whatever_the_last_login_sent() {
    let status = |name: &[u8], value: &[u8]| {
        let mut b = name.to_vec();
        b.push(0);
        b.extend_from_slice(value);
        b.push(0);
        msg(b'S', &b)
    };
    let mut sh = Shared::default();
    // Each login's parameters; later ones share some with earlier ones (at the same
    // or another position), differ in a value, or are not UTF-8.
    let logins: [&[(&[u8], &[u8])]; 5] = [
        &[(b"TimeZone", b"UTC"), (b"client_encoding", b"UTF8")],
        &[(b"TimeZone", b"UTC"), (b"client_encoding", b"UTF8")],
        &[
            (b"TimeZone", b"Etc/\xff"),
            (b"TimeZone", b"UTC"),
            (b"DateStyle", b"ISO"),
        ],
        // Against the escaped string kept from the login before.
        &[(b"TimeZone", b"Etc/\xff")],
        &[(b"client_encoding", b"UTF8"), (b"TimeZone", b"UTC")],
    ];
    let wants: [&[(&str, &str)]; 5] = [
        &[("TimeZone", "UTC"), ("client_encoding", "UTF8")],
        &[("TimeZone", "UTC"), ("client_encoding", "UTF8")],
        &[("TimeZone", "UTC"), ("DateStyle", "ISO")],
        &[("TimeZone", "Etc/\\xff")],
        &[("client_encoding", "UTF8"), ("TimeZone", "UTC")],
    ];
    let mut kept = Vec::new();
    for (i, (params, want)) in logins.iter().zip(wants).enumerate() {
        let mut c = Conn::new(i as u64);
        c.feed(&mut sh, 1, Dir::Frontend, &[startup(&[("user", "u")], 0)]);
        let mut answers = vec![auth(0, b"")];
        answers.extend(params.iter().map(|(n, v)| status(n, v)));
        answers.push(ready(b'I'));
        c.feed(&mut sh, 2, Dir::Backend, &answers);
        let got: Vec<(&str, &str)> =
            c.s.record()
                .server_params
                .iter()
                .map(|(n, v)| (&**n, &**v))
                .collect();
        assert_eq!(got, want, "login {i}");
        kept.push(c.s.record().server_params.clone());
    }
    // The second login, the same bytes as the first, shares the first's strings.
    let shared = |a: &(ParamStr, ParamStr), b: &(ParamStr, ParamStr)| {
        OwnerRc::ptr_eq(&a.0, &b.0) && OwnerRc::ptr_eq(&a.1, &b.1)
    };
    assert!(kept[0].iter().zip(&kept[1]).all(|(a, b)| shared(a, b)));
    assert!(!kept[1].iter().zip(&kept[2]).any(|(a, b)| shared(a, b)));
}
