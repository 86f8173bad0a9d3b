//! The records the session stage hands to the presenters.

use super::shared::{Name, ParamStr, Text};
use std::borrow::Cow;

/// How a statement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The fields of an ErrorResponse or NoticeResponse that records keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServerMessage {
    pub(crate) severity: String,
    pub(crate) code: String,
    pub(crate) message: String,
    /// The other fields the server sent (DETAIL, HINT, position, schema, table,
    /// column, constraint, ...), as (field code, value) in wire order; codes outside
    /// the protocol's list are left out.
    pub(crate) fields: Vec<(u8, String)>,
}

/// How authentication ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    Success,
    Failure,
    /// The connection ended during the exchange.
    Incomplete,
}

impl AuthOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Success => "success",
            AuthOutcome::Failure => "failure",
            AuthOutcome::Incomplete => "incomplete",
        }
    }
}

/// How a statement was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Query.
    Simple,
    /// Parse/Bind/Execute.
    Extended,
    /// FunctionCall.
    Function,
}

impl Protocol {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
            Protocol::Function => "function",
        }
    }
}

/// Which way COPY data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyDirection {
    /// Client to server (CopyInResponse).
    In,
    /// Server to client (CopyOutResponse).
    Out,
    /// Both (CopyBothResponse: replication).
    Both,
}

impl CopyDirection {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CopyDirection::In => "in",
            CopyDirection::Out => "out",
            CopyDirection::Both => "both",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CopyStats {
    /// `None` when no CopyIn/Out/BothResponse was seen (joined mid-COPY).
    pub(crate) direction: Option<CopyDirection>,
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_out: u64,
    /// Replication streams: WAL data and keepalive messages inside CopyData.
    pub(crate) xlog_data: u64,
    pub(crate) keepalives: u64,
}

/// One statement, from its request to its completion.
#[derive(Clone, Debug)]
pub struct QueryRecord {
    pub(crate) conn_id: u64,
    /// `None` when the SQL was never seen (joined mid-stream). Shared with the
    /// prepared statement it came from, so records of one statement cost no copy.
    pub(crate) text: Option<Text>,
    /// `text` is only the start of the statement: its message was over the buffer cap.
    pub(crate) text_truncated: bool,
    /// The whole text's length in bytes, where the message tells it (a Query's).
    pub(crate) text_length: Option<u64>,
    /// Set only where neither the command tag nor the text can name it (FunctionCall).
    pub(crate) operation: Option<&'static str>,
    pub(crate) protocol: Protocol,
    /// The prepared statement's name, shared with it and its portal (no copy per
    /// record); `None` for the unnamed one or none known. Read through
    /// [`QueryRecord::statement`].
    pub(crate) statement_name: Option<Name>,
    /// It ran the unnamed statement (most drivers'): told by a flag, so that its
    /// records change no shared count.
    pub(crate) unnamed_statement: bool,
    pub(crate) portal: Option<String>,
    /// Bind parameters, shared with the portal they were bound to.
    pub(crate) params: super::params::Params,
    /// The Bind was over the buffer cap: its parameters were not kept.
    pub(crate) params_missing: bool,
    /// The parameters were withheld (`--redact-params`): `params` is empty.
    pub(crate) params_withheld: bool,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) command_tag: Option<Text>,
    /// DataRow messages (or CopyData rows of COPY TO).
    pub(crate) rows_returned: u64,
    /// The count in the command tag (INSERT/UPDATE/DELETE/SELECT/COPY/MERGE/...).
    pub(crate) rows_affected: Option<u64>,
    pub(crate) outcome: Outcome,
    /// Boxed, as is `copy`: rare, and the record crosses to the output thread, so
    /// every byte of it counts on every statement.
    pub(crate) error: Option<Box<ServerMessage>>,
    /// Transaction status after the statement (`I`, `T`, `E`): the one the
    /// ReadyForQuery closing its batch reports, derived for the statements before the
    /// last one of a batch (see `Session::settle_batch`).
    pub(crate) tx_status: Option<u8>,
    pub(crate) cancelled_by: Option<u64>,
    pub(crate) notices: Vec<ServerMessage>,
    pub(crate) notifications: u32,
    pub(crate) copy: Option<Box<CopyStats>>,
    /// Not executed: an earlier message of the same pipeline failed.
    pub(crate) skipped: bool,
    /// Execute stopped at its row limit (PortalSuspended).
    pub(crate) suspended: bool,
    /// Succeeded, then undone: a later statement of the same implicit transaction
    /// (one Sync batch, or one multi-statement Query) failed.
    pub(crate) rolled_back: bool,
    /// Its result could not be told apart from another's (bytes lost, out of
    /// step, or requests dropped from a full queue): the outcome is `Unknown`
    /// and no result is given rather than a guess.
    pub(crate) unsure: bool,
    /// Sharded decoding: the number of the event that finished it (0: it was not
    /// finished by an answer, and no cancel applies) and of the last ReadyForQuery
    /// before, for the merge stage's cancel matching. Not written out.
    pub(crate) finish_seq: u64,
    pub(crate) ready_seq: u64,
    /// `--pooler-port`: how this statement is linked to the other leg of a pooler
    /// (set by the pooler correlator, after the session stage).
    pub(crate) pooler: Option<Box<Link>>,
}

impl SessionRecord {
    /// The close reason's word, `open` while open.
    pub(crate) fn close_reason_str(&self) -> &'static str {
        self.close_reason
            .map_or("open", crate::tcp::CloseReason::as_str)
    }
}

impl QueryRecord {
    /// A copy that shares nothing with the decoding thread's values (see
    /// [`super::shared`]): for views that keep records and drop them elsewhere.
    pub(crate) fn detached(&self) -> Self {
        QueryRecord {
            text: self.text.as_ref().map(super::shared::Text::detached),
            statement_name: self.statement_name.as_ref().map(Name::detached),
            command_tag: self.command_tag.as_ref().map(super::shared::Text::detached),
            params: self.params.detached(),
            ..self.clone()
        }
    }

    /// `--pooler-port`: whether this statement (on `conn`) counts in statement
    /// totals. Each statement counts once, on its client leg, not again as the
    /// server-leg statement it caused. Its link says which leg it is once the
    /// correlator has decided (the summary); before (metrics, which count statements
    /// as they end), a connection to any port but `pooler_ports` may be a server
    /// leg. No pooler ports: all count.
    pub(crate) fn counted_once(&self, conn: &crate::tcp::ConnMeta, pooler_ports: &[u16]) -> bool {
        match &self.pooler {
            Some(link) => link.leg != Leg::Server,
            None => pooler_ports.is_empty() || pooler_ports.contains(&conn.server.1),
        }
    }

    /// A new record written in place in its box: `Box::new` built it on the stack
    /// and copied its few hundred bytes over, once per statement.
    #[inline(always)]
    pub(crate) fn boxed(conn_id: u64, protocol: Protocol, start_ns: i64) -> Box<Self> {
        Box::write(
            Box::new_uninit(),
            QueryRecord::new(conn_id, protocol, start_ns),
        )
    }

    #[inline(always)]
    pub(crate) fn new(conn_id: u64, protocol: Protocol, start_ns: i64) -> Self {
        QueryRecord {
            conn_id,
            text: None,
            text_truncated: false,
            text_length: None,
            operation: None,
            protocol,
            statement_name: None,
            unnamed_statement: false,
            portal: None,
            params: Default::default(),
            params_missing: false,
            params_withheld: false,
            start_ns,
            end_ns: start_ns,
            command_tag: None,
            rows_returned: 0,
            rows_affected: None,
            outcome: Outcome::Unknown,
            error: None,
            tx_status: None,
            cancelled_by: None,
            notices: Vec::new(),
            notifications: 0,
            copy: None,
            skipped: false,
            suspended: false,
            rolled_back: false,
            unsure: false,
            finish_seq: 0,
            ready_seq: 0,
            pooler: None,
        }
    }

    /// The prepared statement it ran (`""` the unnamed one), if known.
    pub(crate) fn statement(&self) -> Option<&str> {
        if self.unnamed_statement {
            Some("")
        } else {
            self.statement_name.as_deref()
        }
    }

    pub(crate) fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    #[cfg(test)]
    /// `db.operation.name`: what the server says it ran (the command tag), else the
    /// statement's first keyword.
    pub(crate) fn operation_name(&self) -> Option<Cow<'_, str>> {
        self.operation_from(self.command_tag.as_deref().map(tag_operation))
    }

    /// [`operation_name`](Self::operation_name), given its tag's first word.
    pub(crate) fn operation_from<'a>(&'a self, tag_word: Option<&'a str>) -> Option<Cow<'a, str>> {
        if let Some(op) = self.operation {
            return Some(Cow::Borrowed(op));
        }
        match tag_word.filter(|w| !w.is_empty()) {
            Some(w) => Some(Cow::Borrowed(w)),
            None => super::sql::operation(self.text.as_deref()?.as_bytes()).map(Cow::Owned),
        }
    }
}

/// The first word of a command tag: `INSERT 0 1` → `INSERT`.
pub(crate) fn tag_operation(tag: &str) -> &str {
    // A byte search: a `char` pattern costs a searcher per record.
    tag.as_bytes()
        .iter()
        .position(|&b| b == b' ')
        .map_or(tag, |n| &tag[..n])
}

/// A connection, reported when it ends.
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub(crate) conn_id: u64,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) user: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) application: Option<String>,
    /// Changes whenever `user`, `database` or `application` may have: what the
    /// writers of per-statement records compare instead of the three strings.
    pub(crate) origin_version: u32,
    pub(crate) replication: Option<String>,
    /// Other StartupMessage parameters (options, DateStyle, `_pq_.` options, ...).
    pub(crate) startup_params: Vec<(String, String)>,
    pub(crate) protocol_requested: Option<String>,
    pub(crate) protocol_negotiated: Option<String>,
    pub(crate) unsupported_options: Vec<String>,
    /// `none`, `tls`, `gss`; `None` if the connection was never seen starting.
    pub(crate) encryption: Option<crate::pgwire::Encryption>,
    /// What was asked and answered, e.g. `SSLRequest:N`, `GSSENCRequest:N`, `direct_tls`.
    pub(crate) negotiation: Vec<String>,
    /// TLS version, suite and whether it was decrypted (only with `--tls-keylog`).
    pub(crate) tls: Option<crate::tls::Info>,
    pub(crate) auth_method: Option<String>,
    pub(crate) auth_outcome: Option<AuthOutcome>,
    pub(crate) auth_error: Option<ServerMessage>,
    pub(crate) backend_pid: Option<u32>,
    pub(crate) cancel_key_len: Option<usize>,
    pub(crate) server_params: Vec<(ParamStr, ParamStr)>,
    pub(crate) parameter_changes: u64,
    pub(crate) tx_status: Option<u8>,
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) rows: u64,
    pub(crate) bytes_client: u64,
    pub(crate) bytes_server: u64,
    pub(crate) messages_client: u64,
    pub(crate) messages_server: u64,
    pub(crate) notices: u64,
    pub(crate) notifications: u64,
    /// The first NotificationResponses (sender pid, channel, payload).
    pub(crate) notification_list: Vec<Notification>,
    pub(crate) midstream: bool,
    pub(crate) gaps: u64,
    pub(crate) resyncs: u64,
    /// Statements reported unsure (see [`QueryRecord::unsure`]).
    pub(crate) unsure_records: u64,
    /// Answers that fit no pending request: the session was out of step.
    pub(crate) unsure_pairings: u64,
    /// Connections that only carried a CancelRequest.
    pub(crate) cancel_request: Option<CancelInfo>,
    /// `None` while the connection is open.
    pub(crate) close_reason: Option<crate::tcp::CloseReason>,
    pub(crate) terminated: bool,
    /// The connection turned out not to speak PostgreSQL (no session record is written).
    pub(crate) not_postgres: bool,
}

impl SessionRecord {
    /// What a statement record takes from its session (user, database, application,
    /// backend pid): the copy sent along with statement records instead of the whole.
    pub(crate) fn origin(&self) -> SessionRecord {
        SessionRecord {
            conn_id: self.conn_id,
            user: self.user.clone(),
            database: self.database.clone(),
            application: self.application.clone(),
            origin_version: self.origin_version,
            backend_pid: self.backend_pid,
            ..SessionRecord::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Notification {
    pub(crate) pid: u32,
    pub(crate) channel: String,
    pub(crate) payload: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CancelInfo {
    pub(crate) pid: u32,
    pub(crate) key_len: usize,
    pub(crate) target_conn_id: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leg {
    /// A connection to a `--pooler-port`.
    Client,
    /// A connection from a pooler's address to another port.
    Server,
}

impl Leg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Leg::Client => "client",
            Leg::Server => "server",
        }
    }
}

/// How a link was decided, strongest evidence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// The server leg's application_name named the client (its address, or an
    /// application only that one fitting client had).
    ApplicationName,
    /// Transaction boundaries: the server connection was inside a transaction
    /// already linked to that client.
    Transaction,
    /// Only one client statement had the same text and parameters around it.
    TextParamsTime,
    /// Several statements fit: not linked.
    Ambiguous,
    None,
}

impl Match {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Match::ApplicationName => "application_name",
            Match::Transaction => "transaction",
            Match::TextParamsTime => "text_params_time",
            Match::Ambiguous => "ambiguous",
            Match::None => "none",
        }
    }

    pub(crate) fn linked(self) -> bool {
        matches!(
            self,
            Match::ApplicationName | Match::Transaction | Match::TextParamsTime
        )
    }
}

/// What a record says about the other leg (`pgwire.pooler.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) leg: Leg,
    pub(crate) matched: Match,
    /// Ambiguous: how many statements fit.
    pub(crate) candidates: u32,
    /// The other leg's connection (`pgwire.conn_id`).
    pub(crate) peer_conn_id: Option<u64>,
    /// Server leg: the client's address and application.
    pub(crate) client: Option<(std::net::IpAddr, u16)>,
    pub(crate) client_application: Option<String>,
    /// Client leg: the backend pid of the server connection that ran it.
    pub(crate) backend_pid: Option<u32>,
    /// From the client's request to the pooler sending it to the server.
    pub(crate) wait_ns: Option<i64>,
    /// How long the server statement took.
    pub(crate) server_ns: Option<i64>,
}

impl Link {
    /// A link that names no peer (undecided, ambiguous, or nothing fitted).
    pub(crate) fn unlinked(leg: Leg, matched: Match, candidates: u32) -> Self {
        Link {
            leg,
            matched,
            candidates,
            peer_conn_id: None,
            client: None,
            client_application: None,
            backend_pid: None,
            wait_ns: None,
            server_ns: None,
        }
    }
}
