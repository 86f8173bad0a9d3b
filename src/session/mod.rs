//! Per-connection state: startup, negotiation, authentication, and the queries,
//! matched to their responses through the queue of pending operations.
//!
//! The state machine only reads decoded messages; framing is pgwire's job and
//! rendering the records is output's.

// Query records pass through several queues; boxed, each hand-over moves a pointer
// instead of a few hundred bytes.
#![allow(clippy::vec_box)]

mod named;
pub mod params;
pub(crate) mod record;
pub mod shared;
pub mod sql;
pub(crate) mod texts;

#[cfg(test)]
mod tests;

use crate::pgwire::{Body, Dir, Encryption, ErrorFields, Head, Msg, oversize_head, startup_params};
use named::Named;
use params::Params;
use record::{
    AuthOutcome, CancelInfo, CopyDirection, Notification, Outcome, Protocol, QueryRecord,
    ServerMessage, SessionRecord,
};
use rustc_hash::FxHashMap;
use shared::{Name, ParamStr, Text};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

/// Pending operations kept per connection: an operation is two words, plus a
/// boxed record for an Execute, so a full queue holds some 64k statements in about
/// 30 MB. A client that pipelines more without reading answers is cut here: the
/// oldest are dropped, reported (an anomaly) and the records unsure until the queue
/// is empty again.
pub(crate) const MAX_PENDING: usize = 1 << 18;
/// Prepared statements and portals kept per connection.
const MAX_NAMED: usize = 4096;
/// Notices kept per statement.
const MAX_NOTICES: usize = 16;

/// State shared by all connections: cancel keys and cancels on their way.
#[derive(Default)]
pub(crate) struct Shared {
    /// (backend pid, secret key) → connection id.
    keys: HashMap<(u32, Vec<u8>), u64>,
    /// Target connection → (cancelling connection, time of the CancelRequest).
    cancels: FxHashMap<u64, (u64, i64)>,
    /// Operations dropped because a connection's queue was full (each drop is also
    /// reported as a `queue_overflow` anomaly of its connection).
    pub(crate) dropped_ops: u64,
    texts: texts::Texts,
    /// Reused while building each Bind's parameters.
    scratch: Vec<u8>,
    /// The server parameters of the last login by position (bounded, see
    /// [`Shared::login_param`]): most connections are sent the same dozen.
    login_params: Vec<(ParamStr, ParamStr)>,
    /// Sharded decoding: the number of the flow-table event being decoded, stamped on
    /// finished statements (see [`CrossFact`]).
    pub(crate) seq: u64,
    /// Sharded decoding: the cancel keys and CancelRequests seen, for the merge stage
    /// to match across shards (`None` on one thread, where `keys` does it).
    pub(crate) facts: Option<Vec<CrossFact>>,
}

/// What a connection tells the others, when connections are decoded on several
/// threads: the merge stage replays these in capture order to link CancelRequests to
/// their targets as one thread would (`output::threaded`).
#[derive(Debug)]
pub(crate) enum CrossFact {
    /// BackendKeyData on `conn`.
    Key { conn: u64, pid: u32, key: Vec<u8> },
    /// A CancelRequest on `conn`, at `ts`.
    Cancel {
        conn: u64,
        pid: u32,
        key: Vec<u8>,
        ts: i64,
    },
}

/// Login parameters kept for the next login: how many, and how long a pair may be.
const LOGIN_PARAMS: usize = 32;
const LOGIN_PARAM_BYTES: usize = 256;

impl Shared {
    /// The `i`-th ParameterStatus of a login as strings: the last login's, shared,
    /// when the wire bytes are the same (bytes equal to a string are valid UTF-8 and
    /// that very string), which saves validating and copying them (most of a short
    /// connection's session work).
    fn login_param(&mut self, i: usize, name: &[u8], value: &[u8]) -> (ParamStr, ParamStr) {
        use crate::text::eq_bytes;
        if let Some((n, v)) = self.login_params.get(i)
            && eq_bytes(n.as_bytes(), name)
            && eq_bytes(v.as_bytes(), value)
        {
            return (n.clone(), v.clone());
        }
        let pair = (param_str(name), param_str(value));
        if i <= self.login_params.len()
            && i < LOGIN_PARAMS
            && name.len() + value.len() <= LOGIN_PARAM_BYTES
        {
            self.login_params.truncate(i);
            self.login_params.push(pair.clone());
        }
        pair
    }

    /// Forgets a closed connection's key: its own buffer is the lookup key, and one
    /// hash finds and removes the entry (once per connection).
    fn forget(&mut self, conn_id: u64, pid: Option<u32>, key: Vec<u8>) {
        if let Some(pid) = pid
            && let Entry::Occupied(e) = self.keys.entry((pid, key))
            && *e.get() == conn_id
        {
            e.remove();
        }
        self.cancels.remove(&conn_id);
    }
}

struct Statement {
    /// Its name, shared with the portals bound to it and their records: a named
    /// statement's records cost no copy of it. `None`: the unnamed statement.
    name: Option<Name>,
    sql: Text,
    /// `sql` is only the start of the text (an oversize Parse).
    truncated: bool,
    param_types: Vec<u32>,
}

struct Portal {
    /// `None`: the unnamed statement.
    statement: Option<Name>,
    params: Params,
    /// An oversize Bind: `params` are not known.
    params_missing: bool,
}

/// A request waiting for its answer, in the order the server answers. Two words:
/// an operation is moved into the queue in registers, not through a stack copy that
/// stalled on store forwarding (several times per message).
#[allow(clippy::box_collection)] // a boxed `String` is one word: the point here
enum Op {
    /// A Query message.
    Simple(Box<SimpleQuery>),
    /// Parse of a named statement (its name), or of the unnamed one.
    Parse(Option<Box<String>>),
    Bind,
    /// Describe of a prepared statement (its name) or of a portal.
    Describe(Option<Box<String>>),
    Close,
    Execute(Box<QueryRecord>),
    FunctionCall(Box<QueryRecord>),
    Sync,
    /// Requests lost in a gap (or sent before the capture began): how many, and
    /// so how many answers they get, is unknown. Answers that reach it are not
    /// attributed; it is dropped when the session resynchronises.
    Lost,
}

/// A Query message: its statements, closed one by one.
struct SimpleQuery {
    /// Statements after the current one.
    rest: VecDeque<Text>,
    whole: Text,
    /// The statement running now; `None` once every statement was answered.
    current: Option<Box<QueryRecord>>,
    /// Its last answered statement is the last record in `done`.
    answered: bool,
}

/// A statement still running, as [`Session::in_flight`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight<'a> {
    pub(crate) text: Option<&'a str>,
    pub(crate) start_ns: i64,
    pub(crate) wait: Wait,
}

impl InFlight<'_> {
    /// Identifies the statement and its stage cheaply, so that a view is told only
    /// when they change (not per message).
    pub(crate) fn key(&self) -> (i64, usize, Wait) {
        (
            self.start_ns,
            self.text.map_or(0, |t| t.as_ptr() as usize),
            self.wait,
        )
    }
}

/// What a running statement waits on, as far as the wire shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// No answer yet: the server is working (or blocked on a lock; the wire cannot tell).
    Server,
    /// Rows are coming: the server sends, the client reads.
    Rows,
    /// COPY FROM STDIN: the server waits for the client's data.
    CopyIn,
}

impl Wait {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Wait::Server => "server",
            Wait::Rows => "rows",
            Wait::CopyIn => "client (COPY)",
        }
    }
}

/// Which authentication request the server made last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthStage {
    None,
    Requested,
    Ok,
}

pub(crate) struct Session {
    rec: SessionRecord,
    key: Vec<u8>,
    statements: Named<Statement>,
    portals: Named<Portal>,
    pending: VecDeque<Op>,
    /// An `Op::Lost` may be in `pending`: set when one is queued, cleared when the
    /// queue is emptied. While clear the session is in step without a look at the
    /// queue (several times per statement).
    lost_queued: bool,
    /// Finished statements waiting for the ReadyForQuery that gives their tx status.
    done: Vec<Box<QueryRecord>>,
    auth: AuthStage,
    ready_seen: bool,
    /// Inside a pipeline after an error: the server skips everything up to Sync.
    skipping: bool,
    /// Stream offsets (bytes handed on, gaps included) of the client and server
    /// directions, as the TCP stage counts them.
    off: [u64; 2],
    /// The segment whose messages are being fed: its stream offsets and how far
    /// into the other direction its ACK reaches.
    seg: Seg,
    /// The last backend message was a ReadyForQuery: its segment's end offset and
    /// ACK (what the server had received when it was idle).
    last_ready: Option<(u64, Option<u64>)>,
    /// Bytes were lost while a batch was in flight: whether its successes were
    /// undone by a failure is unknown until its end.
    batch_doubt: bool,
    /// The last backend event was a gap: the server offset it ended at.
    lost_answers_end: Option<u64>,
    /// The request that resynchronised the session, until its first answer shows
    /// (by its ACK) that the server had received it: the client offset it ends at.
    probation: Option<u64>,
    /// Cap on `pending` (MAX_PENDING; lowered by tests).
    max_pending: usize,
    /// Operations dropped from a full queue and not yet reported.
    dropped_ops: u64,
    /// `Shared::seq` at the last ReadyForQuery (which forgets a cancel aimed here).
    ready_seq: u64,
}

/// Where the messages being fed lie in the streams.
#[derive(Clone, Copy, Default)]
struct Seg {
    start: u64,
    end: u64,
    acked: Option<u64>,
    /// No message of the segment was fed yet: `start` is where the next begins.
    first: bool,
}

impl Session {
    pub(crate) fn new(conn_id: u64, start_ns: i64, midstream: bool) -> Self {
        let mut s = Session {
            rec: SessionRecord {
                conn_id,
                start_ns,
                end_ns: start_ns,
                midstream,
                close_reason: None,
                ..SessionRecord::default()
            },
            key: Vec::new(),
            statements: Named::new(MAX_NAMED),
            portals: Named::new(MAX_NAMED),
            pending: VecDeque::new(),
            lost_queued: false,
            done: Vec::new(),
            auth: AuthStage::None,
            // Joined mid-stream: the login is over, errors belong to statements.
            ready_seen: midstream,
            skipping: false,
            off: [0; 2],
            seg: Seg::default(),
            last_ready: None,
            lost_answers_end: None,
            batch_doubt: false,
            probation: None,
            max_pending: MAX_PENDING,
            dropped_ops: 0,
            ready_seq: 0,
        };
        if midstream {
            // Requests sent before the capture began may still be answered.
            s.pending.push_back(Op::Lost);
            s.lost_queued = true;
        }
        s
    }

    pub(crate) fn record(&self) -> &SessionRecord {
        &self.rec
    }

    /// The statement the server is working on (or will take next) and what it waits
    /// for, for live views; `None` when nothing is pending or the session is out of
    /// step. Looks at the first few operations only: Parse/Bind/Describe answers come
    /// before their Execute's.
    pub(crate) fn in_flight(&self) -> Option<InFlight<'_>> {
        let rec = self
            .pending
            .iter()
            .take(8)
            .take_while(|op| !matches!(op, Op::Lost))
            .find_map(|op| match op {
                Op::Simple(q) => q.current.as_deref(),
                Op::Execute(r) | Op::FunctionCall(r) => Some(r.as_ref()),
                _ => None,
            })?;
        let wait = match &rec.copy {
            Some(c) if c.direction == Some(CopyDirection::In) => Wait::CopyIn,
            Some(_) => Wait::Rows,
            None if rec.rows_returned > 0 => Wait::Rows,
            None => Wait::Server,
        };
        Some(InFlight {
            text: rec.text.as_deref(),
            start_ns: rec.start_ns,
            wait,
        })
    }

    /// The next in-order bytes of one direction, before they are decoded: counted,
    /// and kept as the place of the messages they hold. `acked` is how far into the
    /// other direction the segment's ACK reaches (see `tcp::Handler::data`).
    #[inline]
    pub(crate) fn segment(&mut self, dir: Dir, n: usize, acked: Option<u64>) {
        match dir {
            Dir::Frontend => self.rec.bytes_client += n as u64,
            Dir::Backend => self.rec.bytes_server += n as u64,
        }
        let off = &mut self.off[dir as usize];
        self.seg = Seg {
            start: *off,
            end: *off + n as u64,
            acked,
            first: true,
        };
        *off += n as u64;
    }

    /// Bytes of one direction were lost (the gap itself follows from the decoder).
    pub(crate) fn lost_bytes(&mut self, dir: Dir, n: u64) {
        self.off[dir as usize] += n;
    }

    /// Bytes were lost in one direction, or skipped to find a message boundary.
    /// What the evidence no longer decides is marked unsure, never guessed:
    /// - lost requests come after those pending, so the pending ones still get
    ///   their answers first; what follows (answers to the lost ones, then to later
    ///   requests) is not attributed until the session resynchronises;
    /// - lost answers may belong to any pending request: those are closed unsure.
    pub(crate) fn note_gap(&mut self, dir: Dir, ts: i64) {
        self.rec.gaps += 1;
        self.lose(dir, ts);
    }

    fn lose(&mut self, dir: Dir, ts: i64) {
        self.probation = None;
        // A batch still open may have failed in what was lost, undoing what it ran:
        // lost requests after an unfinished one (no Sync or Query ends the queue), or
        // lost answers after statements that finished before its ReadyForQuery.
        self.batch_doubt |= match dir {
            Dir::Frontend => self
                .pending
                .back()
                .is_some_and(|op| !matches!(op, Op::Sync | Op::Simple(_) | Op::Lost)),
            Dir::Backend => !self.done.is_empty(),
        };
        if dir == Dir::Backend {
            self.last_ready = None;
            self.lost_answers_end = Some(self.off[Dir::Backend as usize]);
            self.close_unsure(ts);
            self.pending.push_back(Op::Lost);
        } else if !matches!(self.pending.back(), Some(Op::Lost)) {
            self.pending.push_back(Op::Lost);
        }
        self.lost_queued = true;
    }

    /// Closes every pending request as unsure: its answers may be lost or another's.
    fn close_unsure(&mut self, ts: i64) {
        let ops: Vec<Op> = self.pending.drain(..).collect();
        self.lost_queued = false;
        for op in ops {
            self.unanswered(op, ts);
        }
    }

    /// An answer that fits no pending request: the exchange is out of step.
    fn out_of_step(&mut self, ts: i64) {
        self.rec.unsure_pairings += 1;
        self.lose(Dir::Backend, ts);
    }

    /// Whether answers are being paired now; else they are only counted.
    #[inline]
    fn in_step(&self) -> bool {
        !self.lost_queued || !matches!(self.pending.front(), Some(Op::Lost))
    }

    /// Whether `backend` pairs answers with requests (logged in and out of step, it
    /// only counts them).
    #[inline]
    fn pairing(&self) -> bool {
        self.in_step() || !self.ready_seen
    }

    /// A request while pending answers are not attributed: it is where the session
    /// becomes certain again if the client had received all the server sent (its
    /// ACK), the server's last message was a ReadyForQuery, and the server had then
    /// received all the client sent before this request. Every request still
    /// pending is then closed unsure, and the first answer must show, by its ACK,
    /// that the server had received this one.
    fn resync_point(&mut self, ts: i64) {
        let server_end = self.off[Dir::Backend as usize];
        let seen_all = self.seg.acked.is_some_and(|a| a >= server_end);
        // The server's last message was ReadyForQuery, or was lost and the client
        // went on having read it (then only the probation below can tell).
        let idle = self.last_ready.is_some_and(|(end, ack)| {
            end == server_end && ack.is_some_and(|a| a >= self.seg.start)
        }) || self.lost_answers_end == Some(server_end);
        // Joined mid-stream and nothing heard from the server yet: only the first
        // answer's ACK can tell, and probation checks it.
        let fresh = self.rec.midstream && server_end == 0 && self.rec.messages_server == 0;
        // Only a request at the start of its segment: those before it in the same
        // segment reached the server with it, after that ReadyForQuery.
        if self.seg.first && ((seen_all && idle) || fresh) {
            self.settle_doubt();
            self.close_unsure(ts);
            self.probation = Some(self.seg.end);
        }
    }

    /// An operation that will get no answer we can attribute: its statement, if it
    /// has one, is reported as unsure.
    fn unanswered(&mut self, op: Op, ts: i64) {
        let mut rec = match op {
            Op::Simple(q) => match q.current {
                Some(r) => r,
                None => return,
            },
            Op::Execute(r) | Op::FunctionCall(r) => r,
            _ => return,
        };
        rec.end_ns = ts.max(rec.start_ns);
        make_unsure(&mut rec);
        self.rec.unsure_records += 1;
        self.done.push(rec);
    }

    pub(crate) fn note_not_postgres(&mut self) {
        self.rec.not_postgres = true;
    }

    /// Bytes of `dir` were skipped to find a message boundary: as good as lost.
    pub(crate) fn note_resync(&mut self, dir: Dir, ts: i64) {
        self.rec.resyncs += 1;
        self.lose(dir, ts);
    }

    pub(crate) fn note_encryption(&mut self, kind: Encryption) {
        self.rec.encryption = Some(kind);
        if kind == Encryption::Tls && self.rec.negotiation.is_empty() {
            self.rec.negotiation.push("direct_tls".into());
        }
    }

    /// What the TLS decryptor learnt (version, suite, whether records decrypted).
    pub(crate) fn note_tls(&mut self, info: &crate::tls::Info) {
        if self.rec.tls.as_ref() != Some(info) {
            self.rec.tls = Some(info.clone());
        }
    }

    /// Feeds one decoded message; finished statements are appended to `out`.
    #[inline]
    pub(crate) fn on_message(
        &mut self,
        shared: &mut Shared,
        ts: i64,
        msg: &Msg<'_>,
        out: &mut Vec<Box<QueryRecord>>,
    ) {
        self.rec.end_ns = ts;
        match msg.dir {
            Dir::Frontend => {
                self.rec.messages_client += 1;
                self.frontend(shared, ts, msg);
                self.seg.first = false;
            }
            Dir::Backend => {
                self.rec.messages_server += 1;
                self.lost_answers_end = None;
                if !self.row(msg) {
                    self.backend(shared, ts, msg, out);
                }
            }
        }
    }

    /// A table's rows (DataRow, CopyData) are most of what servers send: counted
    /// here as `backend` would, without its prologue and dispatch for every row.
    /// False for any other message, and for a DataRow on probation.
    #[inline(always)]
    fn row(&mut self, msg: &Msg<'_>) -> bool {
        match msg.body {
            Body::DataRow { .. } if self.probation.is_none() => {
                self.last_ready = None;
                if self.pairing()
                    && let Some(r) = self.running()
                {
                    r.rows_returned += 1;
                }
                self.rec.rows += 1;
            }
            // Not an answer; binary COPY's -1 trailer is not a row (`backend`).
            Body::CopyData { data } if data != [0xff, 0xff] => {
                if self.pairing() {
                    self.copy_data(Dir::Backend, data.first().copied(), data.len());
                }
            }
            _ => return false,
        }
        true
    }

    // Inlined so each operation is built in the queue's slot, not copied there from
    // a temporary just written (a store-forwarding stall on every message).
    #[inline(always)]
    fn push(&mut self, shared: &mut Shared, ts: i64, op: Op) {
        if !self.pending.is_empty() && !self.in_step() {
            self.resync_point(ts);
        }
        if self.skipping {
            // Sent after the server reported an error: it skips these until Sync.
            match op {
                Op::Sync | Op::Simple(_) => {}
                Op::Execute(mut r) => {
                    r.skipped = true;
                    self.done.push(r);
                    return;
                }
                _ => return,
            }
        }
        if self.pending.len() >= self.max_pending {
            self.overflow(shared, ts);
        }
        self.pending.push_back(op);
    }

    /// The queue is full: what is pending is closed unsure and answers are not
    /// attributed until the session resynchronises, as after lost requests.
    #[cold]
    fn overflow(&mut self, shared: &mut Shared, ts: i64) {
        let n = self.pending.len() as u64;
        shared.dropped_ops += n;
        self.dropped_ops += n;
        self.rec.unsure_pairings += 1;
        self.lose(Dir::Backend, ts);
    }

    /// Operations dropped from a full queue since the last call, for an anomaly.
    #[inline]
    pub(crate) fn take_dropped_ops(&mut self) -> Option<u64> {
        (self.dropped_ops > 0).then(|| std::mem::take(&mut self.dropped_ops))
    }

    #[inline(never)]
    fn frontend(&mut self, shared: &mut Shared, ts: i64, msg: &Msg<'_>) {
        let id = self.rec.conn_id;
        if !self.ready_seen && msg.typ.is_some_and(|t| b"QPBESF".contains(&t)) {
            // Only a logged-in client sends these: the login's end was lost.
            self.ready_seen = true;
            self.rec.auth_outcome.get_or_insert(AuthOutcome::Success);
        }
        match msg.body {
            Body::Startup {
                major,
                minor,
                params,
            } => self.startup(major, minor, params),
            Body::SslRequest => self.rec.negotiation.push("SSLRequest".into()),
            Body::GssEncRequest => self.rec.negotiation.push("GSSENCRequest".into()),
            Body::CancelRequest { pid, key } => {
                if let Some(f) = &mut shared.facts {
                    let key = key.to_vec();
                    f.push(CrossFact::Cancel {
                        conn: id,
                        pid,
                        key,
                        ts,
                    });
                }
                let target = shared.keys.get(&(pid, key.to_vec())).copied();
                if let Some(t) = target {
                    shared.cancels.insert(t, (id, ts));
                }
                self.rec.cancel_request = Some(CancelInfo {
                    pid,
                    key_len: key.len(),
                    target_conn_id: target,
                });
            }
            Body::Query { sql } => {
                let whole = shared.texts.get(sql);
                // One statement keeps the text exactly as sent; several are reported
                // apart. Splitting needs a ';' before the end, rare enough to test first.
                let trimmed = sql.trim_ascii_end();
                let inner = &trimmed[..trimmed.len().saturating_sub(1)];
                let mut parts = if inner.contains(&b';') {
                    sql::split_statements(sql)
                } else {
                    Vec::new()
                };
                let (first, rest) = if parts.len() > 1 {
                    let rest = parts
                        .split_off(1)
                        .into_iter()
                        .map(|p| lossy(p).into())
                        .collect();
                    (lossy(parts[0]).into(), rest)
                } else {
                    (whole.clone(), VecDeque::new())
                };
                let current = Some(simple_record(id, ts, first));
                self.push(
                    shared,
                    ts,
                    Op::Simple(Box::new(SimpleQuery {
                        rest,
                        whole,
                        current,
                        answered: false,
                    })),
                );
            }
            Body::Parse {
                statement,
                query,
                param_types,
            } => self.parse(shared, ts, statement, query, false, param_types.iter()),
            Body::Bind {
                portal,
                statement,
                param_formats,
                params,
                ..
            } => {
                let found = self.statements.get_wire(statement);
                let types = found.map_or(&[][..], |s| s.param_types.as_slice());
                let values = params.iter().enumerate().map(|(i, v)| {
                    let oid = types.get(i).copied().unwrap_or(0);
                    (v, param_formats.is_binary(i), oid)
                });
                let rendered = Params::build(&mut shared.scratch, values);
                let stmt_name = bound_name(found, statement);
                self.bind(shared, ts, portal, stmt_name, rendered, false);
            }
            Body::Describe { kind, name } => {
                let stmt = (kind == b'S').then(|| Box::new(lossy(name)));
                self.push(shared, ts, Op::Describe(stmt));
            }
            Body::Close { kind, name } => {
                let name = lossy(name);
                if kind == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                self.push(shared, ts, Op::Close);
            }
            Body::Execute { portal, .. } => {
                let rec = self.extended_record(ts, &name(portal));
                self.push(shared, ts, Op::Execute(rec));
            }
            Body::Sync => self.push(shared, ts, Op::Sync),
            Body::FunctionCall { oid, .. } => self.function_call(shared, ts, oid),
            Body::SaslInitialResponse { mechanism, .. } => {
                self.rec.auth_method = Some(lossy(mechanism));
            }
            Body::CopyData { data } => {
                self.copy_data(Dir::Frontend, data.first().copied(), data.len())
            }
            Body::Oversize { head } => self.oversize_request(shared, ts, msg, head),
            Body::CopyDone | Body::CopyFail { .. } => {}
            Body::Terminate => self.rec.terminated = true,
            _ => {}
        }
    }

    #[inline]
    fn parse(
        &mut self,
        shared: &mut Shared,
        ts: i64,
        statement: &[u8],
        query: &[u8],
        truncated: bool,
        param_types: impl Iterator<Item = u32>,
    ) {
        let name = lossy(statement);
        match self.statements.get_mut(&name) {
            Some(s) => {
                // The same text again (drivers parse the unnamed statement before each
                // run): kept as it is, not looked up. Equal to a kept text, the bytes
                // are valid UTF-8 and so that text unchanged.
                if !crate::text::eq_bytes(s.sql.as_bytes(), query) {
                    s.sql = shared.texts.statement(query);
                }
                s.truncated = truncated;
                s.param_types.clear();
                s.param_types.extend(param_types);
            }
            None => self.statements.insert(
                name.clone(),
                Statement {
                    name: new_name(name.as_bytes()),
                    sql: shared.texts.statement(query),
                    truncated,
                    param_types: param_types.collect(),
                },
            ),
        }
        let name = (!name.is_empty()).then(|| Box::new(name));
        self.push(shared, ts, Op::Parse(name));
    }

    /// Binds `portal` to `statement` (its name, shared with the statement). A portal
    /// bound again (the unnamed one, on every statement) is updated in place.
    #[inline(always)]
    fn bind(
        &mut self,
        shared: &mut Shared,
        ts: i64,
        portal: &[u8],
        statement: Option<Name>,
        params: Params,
        params_missing: bool,
    ) {
        match self.portals.get_mut(&name(portal)) {
            Some(p) => {
                p.statement = statement;
                p.params = params;
                p.params_missing = params_missing;
            }
            None => self.portals.insert(
                lossy(portal),
                Portal {
                    statement,
                    params,
                    params_missing,
                },
            ),
        }
        self.push(shared, ts, Op::Bind);
    }

    /// A message over the buffer cap, of which only the head was kept: a request
    /// keeps its identity (names, the start of its text) and its place in the queue.
    fn oversize_request(&mut self, shared: &mut Shared, ts: i64, msg: &Msg<'_>, head: &[u8]) {
        let Some(typ) = msg.typ else { return };
        match oversize_head(Dir::Frontend, typ, head) {
            Some(Head::Query { sql }) => {
                // Not split into statements: the rest of the string is unknown.
                let text: Text = lossy(sql).into();
                let mut rec = simple_record(self.rec.conn_id, ts, text.clone());
                rec.text_truncated = true;
                // The body is the text and its terminator.
                rec.text_length = Some(u64::from(msg.len).saturating_sub(5));
                self.push(
                    shared,
                    ts,
                    Op::Simple(Box::new(SimpleQuery {
                        rest: VecDeque::new(),
                        whole: text,
                        current: Some(rec),
                        answered: false,
                    })),
                );
            }
            // The text's end and the parameter types lie in the skipped part.
            Some(Head::Parse { statement, query }) => {
                self.parse(shared, ts, statement, query, true, std::iter::empty())
            }
            Some(Head::Bind { portal, statement }) => {
                let stmt_name = bound_name(self.statements.get_wire(statement), statement);
                self.bind(shared, ts, portal, stmt_name, Params::default(), true);
            }
            Some(Head::FunctionCall { oid }) => self.function_call(shared, ts, oid),
            None if typ == b'd' => self.copy_data(Dir::Frontend, None, msg.len as usize - 4),
            // A head too short for the names: the request still gets its answer.
            None => match typ {
                b'P' => self.push(shared, ts, Op::Parse(None)),
                b'B' => self.push(shared, ts, Op::Bind),
                _ => {}
            },
        }
    }

    fn function_call(&mut self, shared: &mut Shared, ts: i64, oid: u32) {
        let mut rec = QueryRecord::boxed(self.rec.conn_id, Protocol::Function, ts);
        rec.text = Some(format!("FunctionCall(oid={oid})").into());
        rec.operation = Some("FUNCTION CALL");
        self.push(shared, ts, Op::FunctionCall(rec));
    }

    fn startup(&mut self, major: u16, minor: u16, raw: &[u8]) {
        let version = protocol_version(major, minor);
        self.rec.protocol_negotiated = Some(version.clone());
        self.rec.protocol_requested = Some(version);
        if self.rec.encryption.is_none() {
            self.rec.encryption = Some(Encryption::None);
        }
        for (k, v) in startup_params(raw) {
            let v = lossy(v);
            match k {
                b"user" => self.rec.user = Some(v),
                b"database" => self.rec.database = Some(v),
                b"application_name" => self.rec.application = Some(v),
                b"replication" => self.rec.replication = Some(v),
                _ => self.rec.startup_params.push((lossy(k), v)),
            }
        }
        // The database defaults to the user name.
        if self.rec.database.is_none() {
            self.rec.database = self.rec.user.clone();
        }
        self.rec.origin_version += 1;
    }

    fn extended_record(&self, ts: i64, portal: &str) -> Box<QueryRecord> {
        let mut rec = QueryRecord::boxed(self.rec.conn_id, Protocol::Extended, ts);
        rec.portal = Some(owned(portal));
        if let Some(p) = self.portals.get(portal) {
            rec.params = p.params.clone();
            rec.params_missing = p.params_missing;
            rec.statement_name = p.statement.clone();
            rec.unnamed_statement = p.statement.is_none();
            if let Some(s) = self
                .statements
                .get(p.statement.as_deref().unwrap_or_default())
            {
                rec.text = Some(s.sql.clone());
                rec.text_truncated = s.truncated;
            }
        }
        rec
    }

    /// The record of the statement the server is working on, if any. Asked for
    /// every row: the walsender test, only for a simple query past its last
    /// statement, comes last.
    #[inline]
    fn running(&mut self) -> Option<&mut QueryRecord> {
        match self.pending.front_mut()? {
            Op::Simple(q) if q.current.is_none() && q.answered && walsender(&self.rec) => {
                self.done.last_mut().map(|r| r.as_mut())
            }
            Op::Simple(q) => q.current.as_deref_mut(),
            Op::Execute(r) | Op::FunctionCall(r) => Some(r.as_mut()),
            _ => None,
        }
    }

    /// One CopyData message: its first byte (replication message kind) and size.
    fn copy_data(&mut self, dir: Dir, kind: Option<u8>, len: usize) {
        let Some(rec) = self.running() else {
            return;
        };
        let copy = rec.copy.get_or_insert_with(Box::default);
        match dir {
            Dir::Frontend => {
                copy.messages_in += 1;
                copy.bytes_in += len as u64;
            }
            Dir::Backend => {
                copy.messages_out += 1;
                copy.bytes_out += len as u64;
                if copy.direction == Some(CopyDirection::Out) {
                    rec.rows_returned += 1;
                }
            }
        }
        if copy.direction == Some(CopyDirection::Both) {
            match kind {
                Some(b'w') => copy.xlog_data += 1,
                Some(b'k') => copy.keepalives += 1,
                _ => {}
            }
        }
    }

    #[inline(never)]
    fn backend(
        &mut self,
        shared: &mut Shared,
        ts: i64,
        msg: &Msg<'_>,
        out: &mut Vec<Box<QueryRecord>>,
    ) {
        let answer = is_answer(&msg.body);
        if answer {
            // Whatever this is, the server's last word is no longer a ReadyForQuery
            // (one sets it again below).
            self.last_ready = None;
        }
        if let Some(end) = self.probation
            && answer
        {
            // The first answer after a resynchronisation: the request it answers
            // must have reached the server before it was sent.
            self.probation = None;
            if self.seg.acked.is_none_or(|a| a < end) {
                self.out_of_step(ts);
            }
        }
        if !self.pairing() {
            // Answers to requests we never saw: count what the session counts, no more.
            match msg.body {
                Body::DataRow { .. } | Body::Oversize { .. } if msg.typ == Some(b'D') => {
                    self.rec.rows += 1
                }
                Body::ErrorResponse { .. } => self.rec.errors += 1,
                Body::ReadyForQuery { status } => {
                    // Which batch this ends is not known, nor so what a failure undid.
                    self.undone_unknown(0);
                    self.rec.tx_status = Some(status);
                    self.skipping = false;
                    self.last_ready = Some((self.seg.end, self.seg.acked));
                    self.flush_done(status, out);
                    return;
                }
                _ => {}
            }
            // Asynchronous messages still tell the session about itself.
            if !matches!(
                msg.body,
                Body::ParameterStatus { .. }
                    | Body::NotificationResponse { .. }
                    | Body::NoticeResponse { .. }
            ) {
                return;
            }
        }
        match msg.body {
            Body::SslResponse { answer } | Body::GssEncResponse { answer } => {
                if let Some(last) = self.rec.negotiation.last_mut() {
                    last.push(':');
                    last.push(answer as char);
                }
                match (msg.body, answer) {
                    (Body::SslResponse { .. }, b'S') => self.rec.encryption = Some(Encryption::Tls),
                    (Body::GssEncResponse { .. }, b'G') => {
                        self.rec.encryption = Some(Encryption::Gss)
                    }
                    _ => {}
                }
            }
            Body::AuthenticationOk => {
                if self.auth == AuthStage::None {
                    self.rec.auth_method = Some("trust".into());
                }
                self.auth = AuthStage::Ok;
            }
            Body::AuthenticationCleartextPassword => self.auth_request("password"),
            Body::AuthenticationMd5Password { .. } => self.auth_request("md5"),
            Body::AuthenticationGss | Body::AuthenticationKerberosV5 => self.auth_request("gss"),
            Body::AuthenticationSspi => self.auth_request("sspi"),
            Body::AuthenticationSasl { mechanisms } => {
                let first = mechanisms.iter().next().map(lossy);
                self.auth_request(first.as_deref().unwrap_or("sasl"));
            }
            Body::AuthenticationGssContinue { .. }
            | Body::AuthenticationSaslContinue { .. }
            | Body::AuthenticationSaslFinal { .. } => {}
            Body::BackendKeyData { pid, key } => {
                self.rec.backend_pid = Some(pid);
                self.rec.cancel_key_len = Some(key.len());
                self.key = key.to_vec();
                shared.keys.insert((pid, key.to_vec()), self.rec.conn_id);
                if let Some(f) = &mut shared.facts {
                    let (conn, key) = (self.rec.conn_id, key.to_vec());
                    f.push(CrossFact::Key { conn, pid, key });
                }
            }
            Body::NegotiateProtocolVersion {
                newest_minor,
                options,
            } => {
                let major = self
                    .rec
                    .protocol_requested
                    .as_deref()
                    .and_then(|v| v.split('.').next())
                    .unwrap_or("3")
                    .to_string();
                self.rec.protocol_negotiated = Some(format!("{major}.{newest_minor}"));
                self.rec.unsupported_options = options.iter().map(lossy).collect();
            }
            Body::ParameterStatus { name, value } => self.parameter_status(shared, name, value),
            Body::ReadyForQuery { status } => self.ready(shared, ts, status, out),
            Body::ParseComplete | Body::BindComplete | Body::CloseComplete | Body::NoData => {
                self.pop_simple_op(ts, &msg.body);
            }
            Body::ParameterDescription { types } => {
                // Describe of a statement: its parameter types, for decoding Binds.
                if let Some(Op::Describe(Some(name))) = self.pending.front()
                    && let Some(s) = self.statements.get_mut(name)
                {
                    s.param_types = types.iter().collect();
                }
            }
            Body::RowDescription { .. } => {
                if let Some(Op::Describe(_)) = self.pending.front() {
                    self.pop_answered();
                }
            }
            // Too large to keep (multi-MB values): still a row.
            // A malformed one too: still a row the server sent.
            Body::DataRow { .. } | Body::Oversize { .. } | Body::Malformed { .. }
                if msg.typ == Some(b'D') =>
            {
                if let Some(r) = self.running() {
                    r.rows_returned += 1;
                }
                self.rec.rows += 1;
            }
            Body::CopyInResponse { .. } => self.start_copy(CopyDirection::In),
            Body::CopyOutResponse { .. } => self.start_copy(CopyDirection::Out),
            Body::CopyBothResponse { .. } => self.start_copy(CopyDirection::Both),
            // Binary COPY ends with a -1 field count, which is not a row.
            Body::CopyData { data: [0xff, 0xff] } => {
                self.copy_data(Dir::Backend, None, 2);
                if let Some(r) = self.running()
                    && r.copy
                        .as_ref()
                        .is_some_and(|c| c.direction == Some(CopyDirection::Out))
                {
                    r.rows_returned = r.rows_returned.saturating_sub(1);
                }
            }
            Body::CopyData { data } => {
                self.copy_data(Dir::Backend, data.first().copied(), data.len())
            }
            Body::Oversize { .. } if msg.typ == Some(b'd') => {
                self.copy_data(Dir::Backend, None, msg.len as usize - 4);
            }
            Body::CommandComplete { tag } => {
                // Tags repeat ("UPDATE 1", "SELECT 1"): shared like statement texts.
                let tag = shared.texts.tag(tag);
                self.complete(shared, ts, Outcome::Success, Some(tag), None);
            }
            Body::EmptyQueryResponse => {
                self.complete(shared, ts, Outcome::Success, None, None);
            }
            Body::PortalSuspended => {
                if let Some(r) = self.running() {
                    r.suspended = true;
                }
                self.complete(shared, ts, Outcome::Success, None, None);
            }
            Body::FunctionCallResponse { .. } => {
                self.complete(shared, ts, Outcome::Success, None, None);
            }
            Body::ErrorResponse { fields } => self.error(shared, ts, fields),
            Body::NoticeResponse { fields } => {
                self.rec.notices += 1;
                let notice = server_message(fields);
                if let Some(r) = self.running()
                    && r.notices.len() < MAX_NOTICES
                {
                    r.notices.push(notice);
                }
            }
            Body::NotificationResponse {
                pid,
                channel,
                payload,
            } => {
                self.rec.notifications += 1;
                if self.rec.notification_list.len() < MAX_NOTICES {
                    self.rec.notification_list.push(Notification {
                        pid,
                        channel: lossy(channel),
                        payload: lossy(payload),
                    });
                }
                if let Some(r) = self.running() {
                    r.notifications += 1;
                }
            }
            _ => {}
        }
    }

    /// Out of `backend`: a login's dozen and the odd `SET` are all that come, and
    /// inline its code grew the function every statement's answers go through.
    #[inline(never)]
    fn parameter_status(&mut self, shared: &mut Shared, name: &[u8], value: &[u8]) {
        let (name, value) = if self.ready_seen {
            (param_str(name), param_str(value))
        } else {
            shared.login_param(self.rec.server_params.len(), name, value)
        };
        if self.ready_seen {
            self.rec.parameter_changes += 1;
        }
        // `SET application_name` is announced: later records carry the new name.
        if self.ready_seen
            && &*name == "application_name"
            && self.rec.application.as_deref() != Some(&*value)
        {
            self.rec.application = Some(value.to_string());
            self.rec.origin_version += 1;
        }
        match self.rec.server_params.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => {
                // A login announces some 14 of them: one allocation, not four.
                if self.rec.server_params.is_empty() {
                    self.rec.server_params.reserve(16);
                }
                self.rec.server_params.push((name, value))
            }
        }
    }

    fn auth_request(&mut self, method: &str) {
        self.auth = AuthStage::Requested;
        // For SASL the client's SASLInitialResponse then names the mechanism it chose.
        self.rec.auth_method = Some(method.to_string());
    }

    /// Answers that complete a non-statement op (ParseComplete, BindComplete, ...);
    /// one that does not fit the oldest pending request puts the session out of step.
    fn pop_simple_op(&mut self, ts: i64, body: &Body<'_>) {
        let fits = matches!(
            (self.pending.front(), body),
            (Some(Op::Parse(_)), Body::ParseComplete)
                | (Some(Op::Bind), Body::BindComplete)
                | (Some(Op::Close), Body::CloseComplete)
                | (Some(Op::Describe(_)), Body::NoData)
        );
        if fits {
            self.pop_answered();
        } else {
            self.out_of_step(ts);
        }
    }

    /// Drops the oldest operation, answered. Most hold nothing to free: each kind
    /// dropped by its own arm, they cost no call to the operation's drop code
    /// (several per statement).
    #[inline(always)]
    fn pop_answered(&mut self) {
        match self.pending.pop_front() {
            Some(Op::Parse(Some(name)) | Op::Describe(Some(name))) => drop(name),
            Some(Op::Simple(q)) => drop(q),
            Some(Op::Execute(r) | Op::FunctionCall(r)) => drop(r),
            Some(
                Op::Parse(None) | Op::Describe(None) | Op::Bind | Op::Close | Op::Sync | Op::Lost,
            )
            | None => {}
        }
    }

    fn start_copy(&mut self, direction: CopyDirection) {
        if let Some(r) = self.running() {
            r.copy.get_or_insert_with(Box::default).direction = Some(direction);
        }
    }

    /// Marks the record cancelled if a CancelRequest aimed here while it ran.
    fn check_cancel(&self, shared: &mut Shared, rec: &mut QueryRecord) {
        if !shared.cancels.is_empty()
            && let Some(&(by, at)) = shared.cancels.get(&self.rec.conn_id)
            && rec.start_ns <= at
        {
            rec.cancelled_by = Some(by);
            shared.cancels.remove(&self.rec.conn_id);
        }
    }

    /// A statement finished (CommandComplete, EmptyQueryResponse, PortalSuspended,
    /// FunctionCallResponse, or an ErrorResponse).
    fn complete(
        &mut self,
        shared: &mut Shared,
        ts: i64,
        outcome: Outcome,
        tag: Option<texts::Tag>,
        error: Option<ServerMessage>,
    ) {
        let conn_id = self.rec.conn_id;
        let finished = match self.pending.front_mut() {
            Some(Op::Simple(q)) => {
                let SimpleQuery {
                    rest,
                    whole,
                    current,
                    answered,
                } = &mut **q;
                let next = rest.pop_front().map(|t| simple_record(conn_id, ts, t));
                match std::mem::replace(current, next) {
                    Some(done) => {
                        *answered = true;
                        done
                    }
                    // More answers than statements from a walsender: the command
                    // (BASE_BACKUP sends result sets and a COPY before its own tag) is
                    // still the last statement, not yet reported (that waits for
                    // ReadyForQuery).
                    // Tested only here: string comparisons, not for every answer.
                    None if *answered && walsender(&self.rec) => {
                        if let Some(last) = self.done.last_mut() {
                            Self::fold(&mut self.rec, last, ts, outcome, tag, error);
                        }
                        return;
                    }
                    // Elsewhere, a string we split short: keep the whole text.
                    None => {
                        *answered = true;
                        simple_record(conn_id, ts, whole.clone())
                    }
                }
            }
            Some(Op::Execute(_)) | Some(Op::FunctionCall(_)) => match self.pending.pop_front() {
                Some(Op::Execute(r)) | Some(Op::FunctionCall(r)) => r,
                _ => return,
            },
            _ => {
                // An answer to nothing we saw asked.
                self.out_of_step(ts);
                return;
            }
        };
        self.finish(shared, finished, ts, outcome, tag, error);
    }

    /// A further answer to an already finished statement: it ends later, with the
    /// last tag, and fails if any answer did.
    fn fold(
        counts: &mut SessionRecord,
        rec: &mut QueryRecord,
        ts: i64,
        outcome: Outcome,
        tag: Option<texts::Tag>,
        error: Option<ServerMessage>,
    ) {
        rec.end_ns = ts;
        if outcome == Outcome::Failure && rec.outcome != Outcome::Failure {
            rec.outcome = Outcome::Failure;
            counts.errors += 1;
        }
        if let Some((tag, rows)) = tag {
            rec.rows_affected = rows;
            rec.command_tag = Some(tag);
        }
        if error.is_some() {
            rec.error = error.map(Box::new);
        }
    }

    // Inlined into `complete`, every statement's path: the tag and the error are
    // not passed through a call.
    #[inline(always)]
    fn finish(
        &mut self,
        shared: &mut Shared,
        mut rec: Box<QueryRecord>,
        ts: i64,
        outcome: Outcome,
        tag: Option<texts::Tag>,
        error: Option<ServerMessage>,
    ) {
        // Capture clocks can step back (and held segments keep their own time):
        // a duration is never negative.
        rec.end_ns = ts.max(rec.start_ns);
        rec.outcome = outcome;
        (rec.command_tag, rec.rows_affected) = match tag {
            Some((tag, rows)) => (Some(tag), rows),
            None => (None, None),
        };
        rec.error = error.map(Box::new);
        self.check_cancel(shared, &mut rec);
        (rec.finish_seq, rec.ready_seq) = (shared.seq, self.ready_seq);
        self.rec.queries += 1;
        if outcome == Outcome::Failure {
            self.rec.errors += 1;
        }
        self.done.push(rec);
    }

    fn error(&mut self, shared: &mut Shared, ts: i64, fields: ErrorFields<'_>) {
        let err = server_message(fields);
        if !self.ready_seen {
            // Before the first ReadyForQuery, an error ends the login.
            self.rec.auth_outcome = Some(AuthOutcome::Failure);
            self.rec.auth_error = Some(err);
            self.rec.errors += 1;
            return;
        }
        match self.pending.front() {
            Some(Op::Simple(_)) => {
                self.complete(shared, ts, Outcome::Failure, None, Some(err));
                // The rest of a multi-statement string is not run: reported skipped.
                if let Some(Op::Simple(q)) = self.pending.front_mut() {
                    let next = q.current.take();
                    let rest = std::mem::take(&mut q.rest);
                    let conn_id = self.rec.conn_id;
                    let rest = rest.into_iter().map(|t| simple_record(conn_id, ts, t));
                    for mut r in next.into_iter().chain(rest) {
                        r.skipped = true;
                        self.done.push(r);
                    }
                }
            }
            Some(Op::Execute(_)) | Some(Op::FunctionCall(_)) => {
                self.complete(shared, ts, Outcome::Failure, None, Some(err));
                self.skip_to_sync(ts);
            }
            Some(Op::Parse(_) | Op::Bind | Op::Describe(_) | Op::Close) => {
                // The statement the client meant to run is the next Execute of
                // this pipeline segment; the error belongs to it.
                let failed = self.pending.pop_front();
                let exec = self
                    .pending
                    .iter()
                    .take_while(|op| !matches!(op, Op::Sync | Op::Lost))
                    .position(|op| matches!(op, Op::Execute(_)));
                let rec = match exec.and_then(|i| self.pending.remove(i)) {
                    Some(Op::Execute(r)) => r,
                    _ => {
                        let mut r = QueryRecord::boxed(self.rec.conn_id, Protocol::Extended, ts);
                        if let Some(Op::Parse(name)) = failed {
                            let name = name.map_or_else(String::new, |n| *n);
                            r.statement_name = match self.statements.remove(&name) {
                                Some(s) => {
                                    r.text = Some(s.sql);
                                    r.text_truncated = s.truncated;
                                    s.name
                                }
                                None => new_name(name.as_bytes()),
                            };
                            r.unnamed_statement = name.is_empty();
                        }
                        r
                    }
                };
                self.finish(shared, rec, ts, Outcome::Failure, None, Some(err));
                self.skip_to_sync(ts);
            }
            _ => {
                // Outside any request (e.g. FATAL on shutdown): the session's error.
                self.rec.errors += 1;
            }
        }
    }

    /// After an error in extended mode the server discards messages up to Sync.
    fn skip_to_sync(&mut self, ts: i64) {
        while let Some(op) = self.pending.front() {
            if matches!(op, Op::Sync | Op::Simple(_) | Op::Lost) {
                break;
            }
            if let Some(Op::Execute(mut r)) = self.pending.pop_front() {
                r.skipped = true;
                r.end_ns = ts;
                self.done.push(r);
            }
        }
        self.skipping = true;
    }

    fn ready(&mut self, shared: &mut Shared, ts: i64, status: u8, out: &mut Vec<Box<QueryRecord>>) {
        let login = !self.ready_seen;
        if login {
            self.ready_seen = true;
            if self.rec.auth_outcome.is_none() {
                self.rec.auth_outcome = Some(AuthOutcome::Success);
            }
        }
        self.skipping = false;
        self.settle_batch(status);
        self.rec.tx_status = Some(status);
        // ReadyForQuery answers the oldest Query or Sync. Anything else still
        // pending before it (its answers missing) or nothing pending at all after
        // the login means the exchange is out of step.
        match self.pending.front() {
            Some(Op::Lost) => {}
            // A Sync (every extended batch) has no statement: no call.
            Some(Op::Sync) => self.pop_answered(),
            Some(Op::Simple(_)) => {
                if let Some(op) = self.pending.pop_front() {
                    self.unanswered(op, ts);
                }
            }
            Some(_) => self.out_of_step(ts),
            None if !login => self.out_of_step(ts),
            None => {}
        }
        self.last_ready = Some((self.seg.end, self.seg.acked));
        self.ready_seq = shared.seq;
        // Checked first: cancels are rare and this runs on every ReadyForQuery.
        if !shared.cancels.is_empty() {
            shared.cancels.remove(&self.rec.conn_id);
        }
        self.flush_done(status, out);
    }

    /// Finished statements go out with the transaction status that followed them.
    #[inline]
    fn flush_done(&mut self, status: u8, out: &mut Vec<Box<QueryRecord>>) {
        self.settle_doubt();
        for mut r in self.done.drain(..) {
            r.tx_status.get_or_insert(status);
            out.push(r);
        }
        // A big pipeline's slots are released; the usual few are kept for the next one.
        if self.done.capacity() > 16 {
            self.done = Vec::new();
        }
    }

    /// The statements answered before a ReadyForQuery (one Sync batch, or one Query)
    /// get each the status a ReadyForQuery right after it would have reported, from
    /// the status before the batch and their tags; in an implicit transaction (no
    /// BEGIN), those a later error undid are marked rolled back. The last one's is the
    /// ReadyForQuery's `status`. When the status before is unknown (after a
    /// resynchronisation, or joined mid-stream) each possible one is tried: what
    /// they agree on is kept. A success that a failure in its batch may have undone,
    /// when that cannot be told, is unsure.
    fn settle_batch(&mut self, status: u8) {
        if !self.in_step() {
            return;
        }
        // Records closed unsure when the session resynchronised belong to no batch.
        let first = self
            .done
            .iter()
            .rposition(|r| r.unsure)
            .map_or(0, |i| i + 1);
        let batch = &mut self.done[first..];
        if let Some(start) = self.rec.tx_status {
            // The common case, on every ReadyForQuery: written in place.
            if !settle_in_place(batch, start, status) {
                for r in batch.iter_mut() {
                    r.tx_status = None;
                    r.rolled_back = false;
                }
                self.undone_unknown(first);
            }
            return;
        }
        let starts = [b'I', b'T'];
        let mut found: Option<Settled> = None;
        let mut agree = true;
        for start in starts {
            if let Some(d) = settle(batch, start, status) {
                match &found {
                    Some(f) if f.rolled_back != d.rolled_back => agree = false,
                    Some(f) if f.status != d.status => found = Some(d.without_status()),
                    Some(_) => {}
                    None => found = Some(d),
                }
            }
        }
        match found.filter(|_| agree) {
            Some(d) => {
                for ((r, st), rb) in batch.iter_mut().zip(d.status).zip(d.rolled_back) {
                    r.tx_status = st;
                    r.rolled_back = rb;
                }
            }
            None => self.undone_unknown(first),
        }
    }

    /// The batch that was open when bytes were lost is over: whether its
    /// successes were undone is not known.
    fn settle_doubt(&mut self) {
        if std::mem::take(&mut self.batch_doubt) {
            for r in &mut self.done {
                if r.outcome == Outcome::Success && !r.skipped && !r.unsure {
                    make_unsure(r);
                    self.rec.unsure_records += 1;
                }
            }
        }
    }

    /// Whether the successes before a failure (from `first` in `done`) were undone
    /// is not known: they are unsure.
    fn undone_unknown(&mut self, first: usize) {
        let batch = &mut self.done[first..];
        let last_failure = batch.iter().rposition(|r| r.outcome == Outcome::Failure);
        for r in &mut batch[..last_failure.unwrap_or(0)] {
            if r.outcome == Outcome::Success && !r.skipped {
                make_unsure(r);
                self.rec.unsure_records += 1;
            }
        }
    }

    /// The connection ended: flush what is pending and produce the session record.
    pub(crate) fn close(
        mut self,
        shared: &mut Shared,
        ts: i64,
        reason: crate::tcp::CloseReason,
        out: &mut Vec<Box<QueryRecord>>,
    ) -> SessionRecord {
        out.append(&mut self.done);
        // Statements still running when the capture or connection ended.
        for op in self.pending.drain(..) {
            let mut rec = match op {
                Op::Simple(q) => match q.current {
                    Some(current) => current,
                    None => continue,
                },
                Op::Execute(r) | Op::FunctionCall(r) => r,
                _ => continue,
            };
            rec.end_ns = ts;
            rec.outcome = Outcome::Unknown;
            out.push(rec);
        }
        // A startup seen, and no ReadyForQuery nor error ended it.
        let started = self.rec.protocol_requested.is_some() && !self.ready_seen;
        if self.rec.auth_outcome.is_none() && (self.auth == AuthStage::Requested || started) {
            self.rec.auth_outcome = Some(AuthOutcome::Incomplete);
        }
        self.rec.end_ns = ts.max(self.rec.end_ns);
        self.rec.close_reason = Some(reason);
        shared.forget(
            self.rec.conn_id,
            self.rec.backend_pid,
            std::mem::take(&mut self.key),
        );
        self.rec
    }
}

/// What [`settle`] derives for a batch: each statement's transaction status and
/// whether a later failure undid it.
struct Settled {
    status: Vec<Option<u8>>,
    rolled_back: Vec<bool>,
}

impl Settled {
    fn without_status(self) -> Self {
        Settled {
            status: vec![None; self.status.len()],
            ..self
        }
    }
}

/// Walks a batch from the transaction status before it; `None` when a statement's
/// effect cannot be told or the walk does not end at the ReadyForQuery's `status`.
fn settle(batch: &mut [Box<QueryRecord>], start: u8, status: u8) -> Option<Settled> {
    let mut out = Settled {
        status: vec![None; batch.len()],
        rolled_back: vec![false; batch.len()],
    };
    walk(batch, start, status, Some(&mut out)).then_some(out)
}

/// [`settle`] from a known status, writing each record's status and rolled-back
/// flag; whether the walk came out at `status` (if not, what was written is void).
fn settle_in_place(batch: &mut [Box<QueryRecord>], start: u8, status: u8) -> bool {
    if let [r] = batch
        && r.outcome == Outcome::Success
        && start == status
        && !matches!(
            r.command_tag.as_deref(),
            Some("BEGIN" | "START TRANSACTION" | "COMMIT" | "ROLLBACK" | "PREPARE TRANSACTION")
        )
    {
        // One statement that changed nothing of the transaction (most batches).
        r.tx_status = Some(status);
        return true;
    }
    // Into the records themselves: a BEGIN or COMMIT alone (twice a transaction)
    // then costs no allocation.
    walk(batch, start, status, None)
}

/// The walk of [`settle`]: each statement's status and rolled-back flag go to
/// `out`, or without it into the records (whose fields the walk does not read).
fn walk(
    batch: &mut [Box<QueryRecord>],
    start: u8,
    status: u8,
    mut out: Option<&mut Settled>,
) -> bool {
    let mut tx = start;
    // First statement of the current implicit transaction.
    let mut run = 0;
    for i in 0..batch.len() {
        let r = &batch[i];
        match r.outcome {
            _ if r.skipped => {}
            Outcome::Unknown => return false,
            Outcome::Failure if tx == b'I' => {
                for (p, prev) in batch[run..i].iter_mut().enumerate() {
                    let rb = prev.outcome == Outcome::Success;
                    match out.as_deref_mut() {
                        Some(o) => o.rolled_back[run + p] = rb,
                        None => prev.rolled_back = rb,
                    }
                }
                run = i + 1;
            }
            Outcome::Failure => tx = b'E',
            Outcome::Success => {
                let tag = r.command_tag.as_deref().unwrap_or_default();
                let keeps = || {
                    r.text
                        .as_deref()
                        .map(|t| sql::keeps_transaction(t.as_bytes()))
                };
                match tag {
                    "BEGIN" | "START TRANSACTION" => tx = b'T',
                    "COMMIT" | "ROLLBACK" if tx == b'I' => run = i + 1,
                    "PREPARE TRANSACTION" => {
                        tx = b'I';
                        run = i + 1;
                    }
                    "COMMIT" | "ROLLBACK" => match keeps() {
                        None => return false,
                        Some(true) => tx = b'T',
                        Some(false) => {
                            tx = b'I';
                            run = i + 1;
                        }
                    },
                    _ => {}
                }
            }
        }
        match out.as_deref_mut() {
            Some(o) => o.status[i] = Some(tx),
            None => {
                batch[i].tx_status = Some(tx);
                // A later failure in the same implicit transaction sets it again.
                batch[i].rolled_back = false;
            }
        }
    }
    tx == status
}

/// A record whose result cannot be vouched for: it says so and gives none.
fn make_unsure(r: &mut QueryRecord) {
    r.outcome = Outcome::Unknown;
    r.unsure = true;
    r.command_tag = None;
    r.rows_affected = None;
    r.rows_returned = 0;
    r.error = None;
    r.rolled_back = false;
}

/// A message the server sends in answer to a request (not an asynchronous one such
/// as ParameterStatus, NoticeResponse or NotificationResponse, nor a login message).
fn is_answer(body: &Body<'_>) -> bool {
    matches!(
        body,
        Body::ParseComplete
            | Body::BindComplete
            | Body::CloseComplete
            | Body::NoData
            | Body::ParameterDescription { .. }
            | Body::RowDescription { .. }
            | Body::DataRow { .. }
            | Body::CommandComplete { .. }
            | Body::EmptyQueryResponse
            | Body::PortalSuspended
            | Body::ErrorResponse { .. }
            | Body::ReadyForQuery { .. }
            | Body::CopyInResponse { .. }
            | Body::CopyOutResponse { .. }
            | Body::CopyBothResponse { .. }
            | Body::FunctionCallResponse { .. }
    )
}

/// A walsender connection: a Query is one replication command, which may answer
/// with several result sets (and a COPY) before its own tag.
fn walsender(rec: &SessionRecord) -> bool {
    let v = rec.replication.as_deref();
    v.is_some_and(|v| !matches!(v, "false" | "off" | "no" | "0"))
}

/// The statement name a Bind of `wire` gives its portal: the statement's own,
/// shared, when it is known (`found`).
fn bound_name(found: Option<&Statement>, wire: &[u8]) -> Option<Name> {
    match found {
        Some(s) => s.name.clone(),
        None => new_name(wire),
    }
}

/// A statement's name to share; `None` for the unnamed one (nothing to share).
fn new_name(wire: &[u8]) -> Option<Name> {
    (!wire.is_empty()).then(|| Name::new(&name(wire)))
}

fn simple_record(conn_id: u64, ts: i64, text: Text) -> Box<QueryRecord> {
    let mut rec = QueryRecord::boxed(conn_id, Protocol::Simple, ts);
    rec.text = Some(text);
    rec
}

/// A statement or portal name to look up, borrowed; the unnamed one (on every
/// message of most drivers) without the UTF-8 check's call.
#[inline(always)]
fn name(b: &[u8]) -> std::borrow::Cow<'_, str> {
    if b.is_empty() {
        return std::borrow::Cow::Borrowed("");
    }
    crate::text::utf8_lossless(b)
}

/// A name's copy; the unnamed one's without a zero-byte copy call.
#[inline(always)]
fn owned(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        s.to_owned()
    }
}

/// "3.0": one digit each (every version so far) without the formatting machinery,
/// which is most of a startup's own cost on a mix of short connections.
fn protocol_version(major: u16, minor: u16) -> String {
    match (
        char::from_digit(major.into(), 10),
        char::from_digit(minor.into(), 10),
    ) {
        (Some(a), Some(b)) => [a, '.', b].into_iter().collect(),
        _ => format!("{major}.{minor}"),
    }
}

/// A server parameter's name or value, to share.
fn param_str(b: &[u8]) -> ParamStr {
    ParamStr::new(&crate::text::utf8_lossless(b))
}

fn lossy(b: &[u8]) -> String {
    if b.is_empty() {
        return String::new(); // the unnamed statement or portal, on every message
    }
    crate::text::utf8_lossless(b).into_owned()
}

fn server_message(fields: ErrorFields<'_>) -> ServerMessage {
    let get = |c: u8| fields.get(c).map(lossy).unwrap_or_default();
    let severity = fields.get(b'V').or_else(|| fields.get(b'S')).map(lossy);
    let fields = fields
        .iter()
        .filter(|(c, _)| {
            !matches!(c, b'S' | b'V' | b'C' | b'M') && crate::pgwire::error_field_name(*c).is_some()
        })
        .map(|(c, v)| (c, lossy(v)))
        .collect();
    ServerMessage {
        severity: severity.unwrap_or_default(),
        code: get(b'C'),
        message: get(b'M'),
        fields,
    }
}

/// The row count at the end of a command tag: `INSERT 0 5` → 5, `SELECT 3` → 3.
pub(crate) fn rows_from_tag(tag: &str) -> Option<u64> {
    // Byte scans: tags are short, and this runs once per statement.
    let b = tag.as_bytes();
    let first = b.iter().position(|&c| c == b' ')?;
    if !matches!(
        &b[..first],
        b"INSERT" | b"UPDATE" | b"DELETE" | b"SELECT" | b"MERGE" | b"FETCH" | b"MOVE" | b"COPY"
    ) {
        return None;
    }
    let last = b.iter().rposition(|&c| c == b' ')?;
    tag[last + 1..].parse().ok()
}
