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
pub mod record;
pub mod shared;
pub mod sql;
pub mod texts;

#[cfg(test)]
mod tests;

use crate::pgwire::{Body, Dir, ErrorFields, Msg, startup_params};
use named::Named;
use params::Params;
use record::{CancelInfo, Notification, Outcome, QueryRecord, ServerMessage, SessionRecord};
use rustc_hash::FxHashMap;
use shared::Text;
use std::collections::{HashMap, VecDeque};

/// Pending operations kept per connection; a client that pipelines more without
/// reading answers is cut here (counted as dropped).
const MAX_PENDING: usize = 4096;
/// Prepared statements and portals kept per connection.
const MAX_NAMED: usize = 4096;
/// Notices kept per statement.
const MAX_NOTICES: usize = 16;

/// State shared by all connections: cancel keys and cancels on their way.
#[derive(Default)]
pub struct Shared {
    /// (backend pid, secret key) → connection id.
    keys: HashMap<(u32, Vec<u8>), u64>,
    /// Target connection → (cancelling connection, time of the CancelRequest).
    cancels: FxHashMap<u64, (u64, i64)>,
    /// Operations dropped because a connection's queue was full.
    pub dropped_ops: u64,
    texts: texts::Texts,
    /// Reused while building each Bind's parameters.
    scratch: Vec<u8>,
}

impl Shared {
    /// Forgets a closed connection's key.
    fn forget(&mut self, conn_id: u64, pid: Option<u32>, key: &[u8]) {
        if let Some(pid) = pid {
            let k = (pid, key.to_vec());
            if self.keys.get(&k) == Some(&conn_id) {
                self.keys.remove(&k);
            }
        }
        self.cancels.remove(&conn_id);
    }
}

struct Statement {
    sql: Text,
    param_types: Vec<u32>,
}

struct Portal {
    statement: String,
    params: Params,
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

/// Which authentication request the server made last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthStage {
    None,
    Requested,
    Ok,
}

pub struct Session {
    rec: SessionRecord,
    key: Vec<u8>,
    statements: Named<Statement>,
    portals: Named<Portal>,
    pending: VecDeque<Op>,
    /// Finished statements waiting for the ReadyForQuery that gives their tx status.
    done: Vec<Box<QueryRecord>>,
    auth: AuthStage,
    ready_seen: bool,
    /// Inside a pipeline after an error: the server skips everything up to Sync.
    skipping: bool,
    /// Requests were lost in a gap: answers are not attributed until ReadyForQuery.
    lost_requests: bool,
}

impl Session {
    pub fn new(conn_id: u64, start_ns: i64, midstream: bool) -> Self {
        Session {
            rec: SessionRecord {
                conn_id,
                start_ns,
                end_ns: start_ns,
                midstream,
                close_reason: "open",
                ..SessionRecord::default()
            },
            key: Vec::new(),
            statements: Named::new(MAX_NAMED),
            portals: Named::new(MAX_NAMED),
            pending: VecDeque::new(),
            done: Vec::new(),
            auth: AuthStage::None,
            // Joined mid-stream: the login is over, errors belong to statements.
            ready_seen: midstream,
            skipping: false,
            lost_requests: false,
        }
    }

    pub fn record(&self) -> &SessionRecord {
        &self.rec
    }

    /// Stream bytes seen, for the byte counters (every byte, decoded or not).
    pub fn count_bytes(&mut self, dir: Dir, n: usize) {
        match dir {
            Dir::Frontend => self.rec.bytes_client += n as u64,
            Dir::Backend => self.rec.bytes_server += n as u64,
        }
    }

    /// Bytes were lost in one direction. Lost requests would make later answers land
    /// on the wrong statements, so what is pending is closed as unknown and answers
    /// are ignored until the next ReadyForQuery re-anchors the exchange. Lost answers
    /// need nothing here: the next ReadyForQuery closes what they left open.
    pub fn note_gap(&mut self, dir: Dir, ts: i64) {
        self.rec.gaps += 1;
        if dir == Dir::Frontend {
            let ops: Vec<Op> = self.pending.drain(..).collect();
            for op in ops {
                self.unanswered(op, ts);
            }
            self.lost_requests = true;
        }
    }

    /// An operation that will get no answer we can attribute: its statement, if it
    /// has one, is reported with an unknown outcome.
    fn unanswered(&mut self, op: Op, ts: i64) {
        let mut rec = match op {
            Op::Simple(q) => match q.current {
                Some(r) => r,
                None => return,
            },
            Op::Execute(r) | Op::FunctionCall(r) => r,
            _ => return,
        };
        rec.end_ns = ts;
        rec.outcome = Outcome::Unknown;
        self.done.push(rec);
    }

    pub fn note_not_postgres(&mut self) {
        self.rec.not_postgres = true;
    }

    pub fn note_resync(&mut self) {
        self.rec.resyncs += 1;
    }

    pub fn note_encryption(&mut self, kind: &'static str) {
        self.rec.encryption = Some(kind);
        if kind == "tls" && self.rec.negotiation.is_empty() {
            self.rec.negotiation.push("direct_tls".into());
        }
    }

    /// What the TLS decryptor learnt (version, suite, whether records decrypted).
    pub fn note_tls(&mut self, info: &crate::tls::Info) {
        if self.rec.tls.as_ref() != Some(info) {
            self.rec.tls = Some(info.clone());
        }
    }

    /// Feeds one decoded message; finished statements are appended to `out`.
    #[inline]
    pub fn on_message(
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
            }
            Dir::Backend => {
                self.rec.messages_server += 1;
                self.backend(shared, ts, msg, out);
            }
        }
    }

    // Inlined so each operation is built in the queue's slot, not copied there from
    // a temporary just written (a store-forwarding stall on every message).
    #[inline(always)]
    fn push(&mut self, shared: &mut Shared, op: Op) {
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
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            shared.dropped_ops += 1;
        }
        self.pending.push_back(op);
    }

    #[inline(never)]
    fn frontend(&mut self, shared: &mut Shared, ts: i64, msg: &Msg<'_>) {
        let id = self.rec.conn_id;
        match msg.body {
            Body::Startup {
                major,
                minor,
                params,
            } => self.startup(major, minor, params),
            Body::SslRequest => self.rec.negotiation.push("SSLRequest".into()),
            Body::GssEncRequest => self.rec.negotiation.push("GSSENCRequest".into()),
            Body::CancelRequest { pid, key } => {
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
            } => {
                let name = lossy(statement);
                let sql = shared.texts.get(query);
                match self.statements.get_mut(&name) {
                    Some(s) => {
                        s.sql = sql;
                        s.param_types.clear();
                        s.param_types.extend(param_types.iter());
                    }
                    None => self.statements.insert(
                        name.clone(),
                        Statement {
                            sql,
                            param_types: param_types.iter().collect(),
                        },
                    ),
                }
                let name = (!name.is_empty()).then(|| Box::new(name));
                self.push(shared, Op::Parse(name));
            }
            Body::Bind {
                portal,
                statement,
                param_formats,
                params,
                ..
            } => {
                let stmt_name = lossy(statement);
                let types = self
                    .statements
                    .get(&stmt_name)
                    .map(|s| s.param_types.as_slice())
                    .unwrap_or(&[]);
                let values = params.iter().enumerate().map(|(i, v)| {
                    let oid = types.get(i).copied().unwrap_or(0);
                    (v, param_formats.is_binary(i), oid)
                });
                let rendered = Params::build(&mut shared.scratch, values);
                self.portals.insert(
                    lossy(portal),
                    Portal {
                        statement: stmt_name,
                        params: rendered,
                    },
                );
                self.push(shared, Op::Bind);
            }
            Body::Describe { kind, name } => {
                let stmt = (kind == b'S').then(|| Box::new(lossy(name)));
                self.push(shared, Op::Describe(stmt));
            }
            Body::Close { kind, name } => {
                let name = lossy(name);
                if kind == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                self.push(shared, Op::Close);
            }
            Body::Execute { portal, .. } => {
                let rec = self.extended_record(ts, &lossy(portal));
                self.push(shared, Op::Execute(rec));
            }
            Body::Sync => self.push(shared, Op::Sync),
            Body::FunctionCall { oid, .. } => {
                let mut rec = Box::new(QueryRecord::new(id, "function", ts));
                rec.text = Some(format!("FunctionCall(oid={oid})").into());
                rec.operation = Some("FUNCTION CALL");
                self.push(shared, Op::FunctionCall(rec));
            }
            Body::SaslInitialResponse { mechanism, .. } => {
                self.rec.auth_method = Some(lossy(mechanism));
            }
            Body::CopyData { data } => {
                self.copy_data(Dir::Frontend, data.first().copied(), data.len())
            }
            Body::Oversize if msg.typ == Some(b'd') => {
                self.copy_data(Dir::Frontend, None, msg.len as usize - 4)
            }
            Body::CopyDone | Body::CopyFail { .. } => {}
            Body::Terminate => self.rec.terminated = true,
            _ => {}
        }
    }

    fn startup(&mut self, major: u16, minor: u16, raw: &[u8]) {
        self.rec.protocol_requested = Some(format!("{major}.{minor}"));
        self.rec.protocol_negotiated = Some(format!("{major}.{minor}"));
        if self.rec.encryption.is_none() {
            self.rec.encryption = Some("none");
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
        let mut rec = Box::new(QueryRecord::new(self.rec.conn_id, "extended", ts));
        rec.portal = Some(portal.to_string());
        if let Some(p) = self.portals.get(portal) {
            rec.params = p.params.clone();
            rec.statement = Some(p.statement.clone());
            if let Some(s) = self.statements.get(&p.statement) {
                rec.text = Some(s.sql.clone());
            }
        }
        rec
    }

    /// A walsender connection: a Query is one replication command, which may answer
    /// with several result sets (and a COPY) before its own tag.
    fn walsender(&self) -> bool {
        let v = self.rec.replication.as_deref();
        v.is_some_and(|v| !matches!(v, "false" | "off" | "no" | "0"))
    }

    /// The record of the statement the server is working on, if any.
    fn running(&mut self) -> Option<&mut QueryRecord> {
        let walsender = self.walsender();
        match self.pending.front_mut()? {
            Op::Simple(q) if q.current.is_none() && q.answered && walsender => {
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
                if copy.direction == "out" {
                    rec.rows_returned += 1;
                }
            }
        }
        if copy.direction == "both" {
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
        if self.lost_requests && !matches!(msg.body, Body::ReadyForQuery { .. }) {
            // Answers to requests we never saw: count what the session counts, no more.
            match msg.body {
                Body::DataRow { .. } => self.rec.rows += 1,
                Body::ErrorResponse { .. } => self.rec.errors += 1,
                _ => {}
            }
            return;
        }
        match msg.body {
            Body::SslResponse { answer } | Body::GssEncResponse { answer } => {
                if let Some(last) = self.rec.negotiation.last_mut() {
                    last.push(':');
                    last.push(answer as char);
                }
                match (msg.body, answer) {
                    (Body::SslResponse { .. }, b'S') => self.rec.encryption = Some("tls"),
                    (Body::GssEncResponse { .. }, b'G') => self.rec.encryption = Some("gss"),
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
            Body::ParameterStatus { name, value } => {
                let (name, value) = (lossy(name), lossy(value));
                if self.ready_seen {
                    self.rec.parameter_changes += 1;
                }
                match self.rec.server_params.iter_mut().find(|(k, _)| *k == name) {
                    Some(slot) => slot.1 = value,
                    None => self.rec.server_params.push((name, value)),
                }
            }
            Body::ReadyForQuery { status } => self.ready(shared, ts, status, out),
            Body::ParseComplete | Body::BindComplete | Body::CloseComplete | Body::NoData => {
                self.pop_simple_op();
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
                    self.pending.pop_front();
                }
            }
            // Too large to keep (multi-MB values): still a row.
            Body::DataRow { .. } | Body::Oversize if msg.typ == Some(b'D') => {
                if let Some(r) = self.running() {
                    r.rows_returned += 1;
                }
                self.rec.rows += 1;
            }
            Body::CopyInResponse { .. } => self.start_copy("in"),
            Body::CopyOutResponse { .. } => self.start_copy("out"),
            Body::CopyBothResponse { .. } => self.start_copy("both"),
            Body::CopyData { data } => {
                self.copy_data(Dir::Backend, data.first().copied(), data.len())
            }
            Body::Oversize if msg.typ == Some(b'd') => {
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

    fn auth_request(&mut self, method: &str) {
        self.auth = AuthStage::Requested;
        // For SASL the client's SASLInitialResponse then names the mechanism it chose.
        self.rec.auth_method = Some(method.to_string());
    }

    /// Answers that complete a non-statement op (ParseComplete, BindComplete, ...).
    fn pop_simple_op(&mut self) {
        if matches!(
            self.pending.front(),
            Some(Op::Parse(_) | Op::Bind | Op::Describe(_) | Op::Close)
        ) {
            self.pending.pop_front();
        }
    }

    fn start_copy(&mut self, direction: &'static str) {
        if let Some(r) = self.running() {
            r.copy.get_or_insert_with(Box::default).direction = direction;
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
        let walsender = self.walsender();
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
                    None if *answered && walsender => {
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
            _ => return, // an answer to nothing we saw asked (joined mid-stream)
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

    fn finish(
        &mut self,
        shared: &mut Shared,
        mut rec: Box<QueryRecord>,
        ts: i64,
        outcome: Outcome,
        tag: Option<texts::Tag>,
        error: Option<ServerMessage>,
    ) {
        rec.end_ns = ts;
        rec.outcome = outcome;
        (rec.command_tag, rec.rows_affected) = match tag {
            Some((tag, rows)) => (Some(tag), rows),
            None => (None, None),
        };
        rec.error = error.map(Box::new);
        self.check_cancel(shared, &mut rec);
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
            self.rec.auth_outcome = Some("failure");
            self.rec.auth_error = Some(err);
            self.rec.errors += 1;
            return;
        }
        match self.pending.front() {
            Some(Op::Simple(_)) => {
                self.complete(shared, ts, Outcome::Failure, None, Some(err));
                // The rest of a multi-statement string is not run.
                if let Some(Op::Simple(q)) = self.pending.front_mut() {
                    q.rest.clear();
                    q.current = None;
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
                    .take_while(|op| !matches!(op, Op::Sync))
                    .position(|op| matches!(op, Op::Execute(_)));
                let rec = match exec.and_then(|i| self.pending.remove(i)) {
                    Some(Op::Execute(r)) => r,
                    _ => {
                        let mut r = Box::new(QueryRecord::new(self.rec.conn_id, "extended", ts));
                        if let Some(Op::Parse(name)) = failed {
                            let name = name.map_or_else(String::new, |n| *n);
                            if let Some(s) = self.statements.remove(&name) {
                                r.text = Some(s.sql);
                            }
                            r.statement = Some(name);
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
            if matches!(op, Op::Sync | Op::Simple(_)) {
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
        if !self.ready_seen {
            self.ready_seen = true;
            if self.rec.auth_outcome.is_none() {
                self.rec.auth_outcome = Some("success");
            }
        }
        self.skipping = false;
        self.rec.tx_status = Some(status);
        if self.lost_requests {
            // The request this answers was lost: nothing pending belongs to it.
            self.lost_requests = false;
        } else {
            // ReadyForQuery answers the oldest Query or Sync; what came before it and
            // got no answer (answers lost in a gap) is closed as unknown.
            while let Some(op) = self.pending.pop_front() {
                let end = matches!(op, Op::Sync | Op::Simple(_));
                self.unanswered(op, ts);
                if end {
                    break;
                }
            }
        }
        // Checked first: cancels are rare and this runs on every ReadyForQuery.
        if !shared.cancels.is_empty() {
            shared.cancels.remove(&self.rec.conn_id);
        }
        for mut r in self.done.drain(..) {
            r.tx_status = Some(status);
            out.push(r);
        }
        // A big pipeline's slots are released; the usual few are kept for the next one.
        if self.done.capacity() > 16 {
            self.done = Vec::new();
        }
    }

    /// The connection ended: flush what is pending and produce the session record.
    pub fn close(
        mut self,
        shared: &mut Shared,
        ts: i64,
        reason: &'static str,
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
        if self.rec.auth_outcome.is_none() && self.auth == AuthStage::Requested {
            self.rec.auth_outcome = Some("incomplete");
        }
        self.rec.end_ns = ts.max(self.rec.end_ns);
        self.rec.close_reason = reason;
        shared.forget(self.rec.conn_id, self.rec.backend_pid, &self.key);
        self.rec
    }
}

fn simple_record(conn_id: u64, ts: i64, text: Text) -> Box<QueryRecord> {
    let mut rec = Box::new(QueryRecord::new(conn_id, "simple", ts));
    rec.text = Some(text);
    rec
}

fn lossy(b: &[u8]) -> String {
    if b.is_empty() {
        return String::new(); // the unnamed statement or portal, on every message
    }
    crate::output::fmt::utf8_lossless(b).into_owned()
}

fn server_message(fields: ErrorFields<'_>) -> ServerMessage {
    let get = |c: u8| fields.get(c).map(lossy).unwrap_or_default();
    let severity = fields.get(b'V').or_else(|| fields.get(b'S')).map(lossy);
    ServerMessage {
        severity: severity.unwrap_or_default(),
        code: get(b'C'),
        message: get(b'M'),
    }
}

/// The row count at the end of a command tag: `INSERT 0 5` → 5, `SELECT 3` → 3.
pub fn rows_from_tag(tag: &str) -> Option<u64> {
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
