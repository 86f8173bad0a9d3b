//! What the capture thread knows, shared with the UI thread: a [`TuiSink`] updates it
//! under a short lock, the UI copies the part it shows. Everything is bounded; what had
//! to go is counted.

use crate::anomaly::AnomalyKind;
use crate::filter::{self, Key, Subject, Val};
use crate::output::fields::visit;
use crate::output::fmt::push_sanitized;
use crate::output::summary::{StmtStats, add_statement};
use crate::output::text::Args;
use crate::output::{AnomalyView, RunStats, Sink};
use crate::pgwire::{Body, Dir, Msg};
use crate::session::InFlight;
use crate::session::record::{Outcome, QueryRecord, SessionRecord};
use crate::session::sql::FingerprintCache;
use crate::tcp::ConnMeta;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bounds on what is kept, so a long live run does not grow without end.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Closed sessions kept for browsing (open ones are bounded by the flow table).
    pub closed_sessions: usize,
    /// Timeline lines kept per session; the oldest go first.
    pub messages_per_session: usize,
    /// Timeline lines kept over all sessions; the oldest go first.
    pub messages_total: usize,
    /// Statements kept in compact form (times, rows, outcome, shared text) for the
    /// Queries view, filters and filtered statistics: the whole capture up to this
    /// many, the oldest dropped beyond (`--tui-statements`).
    pub statements: usize,
    /// The most recent statements kept whole (parameters, notices, error fields) for
    /// the query detail.
    pub queries: usize,
    /// Bytes of SQL text and parameters kept with them (a statement can be huge).
    pub query_bytes: usize,
    /// Durations kept per fingerprint for the top queries' percentiles (a reservoir
    /// beyond): fingerprints are bounded, 10,000, so this bounds their memory.
    pub samples_per_statement: usize,
    /// Distinct (SQLSTATE, message) groups.
    pub error_groups: usize,
    /// Characters kept of a timeline summary.
    pub summary_chars: usize,
    /// Anomalies kept for the anomalies view.
    pub anomalies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            closed_sessions: 2_000,
            messages_per_session: 5_000,
            messages_total: 300_000,
            statements: 1_000_000,
            queries: 20_000,
            query_bytes: 64 << 20,
            samples_per_statement: crate::output::summary::MAX_SAMPLES,
            error_groups: 1_000,
            summary_chars: 300,
            anomalies: 10_000,
        }
    }
}

/// One timeline line: a message, or an anomaly (`dir` is `None`).
#[derive(Clone, Debug)]
pub(crate) struct MsgLine {
    /// Position among all lines of the run, to age them out across sessions.
    pub(crate) seq: u64,
    pub(crate) ts: i64,
    pub(crate) dir: Option<Dir>,
    pub(crate) name: &'static str,
    /// Fields as `k="v", ...`, already escaped for the terminal (as the text trace).
    pub(crate) summary: String,
}

/// A statement still running, as the session layer reported it.
#[derive(Clone, Debug)]
pub(crate) struct Running {
    /// Its SQL (the first [`TEXT_CAP`] bytes), `None` if never seen.
    pub(crate) text: Option<Arc<str>>,
    pub(crate) start_ns: i64,
    /// What it waits on (`server`, `rows`, `client (COPY)`).
    pub(crate) wait: &'static str,
}

/// Bytes of SQL kept per distinct text in the compact statements.
pub(crate) const TEXT_CAP: usize = 1024;

pub(crate) struct SessionEntry {
    pub(crate) meta: ConnMeta,
    /// The client address as text, for `client=` (without the port, as for statements).
    pub(crate) client_ip: String,
    pub(crate) rec: SessionRecord,
    pub(crate) closed: bool,
    /// The statement running now.
    pub(crate) running: Option<Running>,
    /// Who the session is, shared by its compact statements.
    who: Arc<Who>,
    /// Status byte of the last ReadyForQuery.
    pub(crate) tx: Option<u8>,
    pub(crate) last_ts: i64,
    pub(crate) messages: VecDeque<MsgLine>,
    pub(crate) messages_dropped: u64,
}

impl SessionEntry {
    fn new(meta: &ConnMeta, ts: i64) -> Self {
        SessionEntry {
            meta: meta.clone(),
            client_ip: meta.client.0.to_string(),
            rec: SessionRecord {
                conn_id: meta.id,
                start_ns: meta.start_ns,
                end_ns: ts,
                midstream: meta.midstream,
                close_reason: None,
                ..SessionRecord::default()
            },
            closed: false,
            running: None,
            who: Arc::new(Who {
                client: meta.client.0.to_string(),
                ..Who::default()
            }),
            tx: None,
            last_ts: ts,
            messages: VecDeque::new(),
            messages_dropped: 0,
        }
    }

    pub(crate) fn state(&self) -> &'static str {
        match (self.closed, self.running.is_some(), self.tx) {
            // Still open when the capture ended: not a real close.
            (true, ..) if self.rec.close_reason == Some(crate::tcp::CloseReason::EndOfCapture) => {
                "open at end"
            }
            (true, ..) => "closed",
            (_, true, _) => "active",
            (_, _, Some(b'T')) => "in transaction",
            (_, _, Some(b'E')) => "failed transaction",
            (_, _, Some(_)) => "idle",
            // Joined a running connection: its state shows at its next ReadyForQuery.
            _ if self.meta.midstream => "mid-stream",
            _ => "starting",
        }
    }

    pub(crate) fn who(&self) -> Arc<Who> {
        self.who.clone()
    }

    pub(crate) fn end_ns(&self) -> i64 {
        if self.closed {
            self.rec.end_ns
        } else {
            self.last_ts
        }
    }
}

/// Who ran a statement, kept with it for filtering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Who {
    pub(crate) client: String,
    pub(crate) user: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) application: Option<String>,
}

#[derive(Debug)]
pub(crate) struct QueryEntry {
    /// Position in the run, for jumps that survive the window moving.
    pub(crate) seq: u64,
    pub(crate) who: Who,
    pub(crate) rec: QueryRecord,
    /// Fingerprint of the statement's text (`(unknown)` without text).
    pub(crate) fingerprint: String,
    /// The statement had parameters, withheld (`--redact-params`): `rec` holds none.
    pub(crate) params_redacted: bool,
    /// Rebuilt from the compact statement: the whole record was no longer kept.
    pub(crate) compact: bool,
}

impl QueryEntry {
    /// Bytes that vary from one statement to another, for the memory bound.
    fn size(&self) -> usize {
        let r = &self.rec;
        r.text.as_deref().map_or(0, str::len)
            + r.params.bytes()
            + r.notices.iter().map(|n| n.message.len()).sum::<usize>()
            + 256
    }
}

/// The error of a compact statement: its SQLSTATE and message.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ErrKey {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// One statement in compact form, kept for the whole capture (bounded by
/// [`Limits::statements`]): what the Queries view, filters and filtered statistics
/// need. Texts and errors are shared between the statements that have the same.
#[derive(Clone, Debug)]
pub(crate) struct Stmt {
    pub(crate) seq: u64,
    pub(crate) conn: u64,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    /// Rows returned, or affected when more.
    pub(crate) rows: u64,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<Arc<ErrKey>>,
    /// The first [`TEXT_CAP`] bytes of the SQL; `None` if never seen.
    pub(crate) text: Option<Arc<str>>,
    pub(crate) who: Arc<Who>,
    /// Counted in the statistics: not the server leg of a pooled statement, whose
    /// client leg counts it (`--pooler-port`, as the summary counts).
    pub(crate) counted: bool,
}

impl Stmt {
    pub(crate) fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns).max(0)
    }
}

impl Subject for Stmt {
    fn get(&self, key: Key) -> Val<'_> {
        let who = self.who.view();
        match key {
            Key::Sqlstate => self
                .error
                .as_ref()
                .map_or(Val::Missing, |e| Val::Str(&e.code)),
            Key::Text => self.text.as_deref().map_or(Val::Missing, Val::Str),
            Key::Duration => Val::Num(self.duration_ns()),
            Key::Rows => Val::Num(self.rows as i64),
            Key::Failed => Val::Bool(self.outcome == Outcome::Failure),
            // The keys about who ran it, answered as for any statement.
            _ => filter::statement_value(key, who, &NO_RECORD),
        }
    }
}

/// Stands for a statement's own fields where only who ran it is asked.
static NO_RECORD: std::sync::LazyLock<QueryRecord> =
    std::sync::LazyLock::new(|| QueryRecord::new(0, crate::session::record::Protocol::Simple, 0));

/// Interns texts and errors so that repeated statements share them. Cleared when
/// it grows past its bound: only the sharing is lost.
#[derive(Default)]
pub(crate) struct Interner {
    texts: std::collections::HashSet<Arc<str>>,
    errors: std::collections::HashSet<Arc<ErrKey>>,
}

const INTERNED: usize = 200_000;

impl Interner {
    fn text(&mut self, t: &str) -> Arc<str> {
        let t = &t[..t.floor_char_boundary(TEXT_CAP)];
        if let Some(a) = self.texts.get(t) {
            return a.clone();
        }
        if self.texts.len() >= INTERNED {
            self.texts.clear();
        }
        let a: Arc<str> = Arc::from(t);
        self.texts.insert(a.clone());
        a
    }

    fn error(&mut self, code: &str, message: &str) -> Arc<ErrKey> {
        let k = ErrKey {
            code: code.to_string(),
            message: message.to_string(),
        };
        if let Some(a) = self.errors.get(&k) {
            return a.clone();
        }
        if self.errors.len() >= INTERNED {
            self.errors.clear();
        }
        let a = Arc::new(k);
        self.errors.insert(a.clone());
        a
    }
}

impl Who {
    fn view(&self) -> filter::Who<'_> {
        filter::Who {
            client: &self.client,
            server: None,
            user: self.user.as_deref(),
            database: self.database.as_deref(),
            application: self.application.as_deref(),
        }
    }
}

impl QueryEntry {
    /// A detail entry for a statement whose whole record is no longer kept: what its
    /// compact form holds.
    pub(crate) fn from_stmt(s: &Stmt) -> Self {
        // The protocol is not kept: the detail view leaves it blank (`compact`).
        let mut rec =
            QueryRecord::new(s.conn, crate::session::record::Protocol::Simple, s.start_ns);
        rec.end_ns = s.end_ns;
        rec.text = s.text.as_deref().map(Into::into);
        rec.rows_returned = s.rows;
        rec.outcome = s.outcome;
        rec.error = s.error.as_ref().map(|e| {
            Box::new(crate::session::record::ServerMessage {
                code: e.code.clone(),
                message: e.message.clone(),
                ..Default::default()
            })
        });
        QueryEntry {
            seq: s.seq,
            who: (*s.who).clone(),
            fingerprint: String::new(),
            params_redacted: false,
            compact: true,
            rec,
        }
    }
}

impl Subject for QueryEntry {
    fn get(&self, key: Key) -> Val<'_> {
        filter::statement_value(key, self.who.view(), &self.rec)
    }
}

impl Subject for SessionEntry {
    fn get(&self, key: Key) -> Val<'_> {
        let who = filter::Who::of(&self.client_ip, &self.rec);
        filter::session_value(key, who, self.rec.errors)
    }
}

/// Errors grouped by SQLSTATE and message.
#[derive(Clone, Debug)]
pub(crate) struct ErrorGroup {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) count: u64,
    pub(crate) last_ns: i64,
    pub(crate) last_seq: u64,
}

/// Adds a failed statement to the groups, keeping at most `cap` of them.
pub(crate) fn add_error(groups: &mut HashMap<(String, String), ErrorGroup>, q: &Stmt, cap: usize) {
    let Some(e) = &q.error else { return };
    let key = (e.code.clone(), e.message.clone());
    let key = if groups.len() < cap || groups.contains_key(&key) {
        key
    } else {
        (String::new(), "(other errors)".to_string())
    };
    let g = groups
        .entry(key)
        .or_insert_with_key(|(code, message)| ErrorGroup {
            code: code.clone(),
            message: message.clone(),
            count: 0,
            last_ns: 0,
            last_seq: 0,
        });
    g.count += 1;
    g.last_ns = q.end_ns;
    g.last_seq = q.seq;
}

/// One anomaly, for the anomalies view.
#[derive(Clone, Debug)]
pub(crate) struct AnomalyLine {
    pub(crate) ts: i64,
    pub(crate) conn: Option<u64>,
    pub(crate) kind: AnomalyKind,
    /// Escaped for the terminal.
    pub(crate) message: String,
}

/// Per-second counters, by capture time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) sec: i64,
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) bytes: u64,
}

pub(crate) const RATE_SECONDS: usize = 120;

/// Appends zero buckets up to second `until`, so that a quiet live capture shows its
/// rates falling to zero instead of freezing at the last busy second.
pub(crate) fn pad_rates(rates: &mut Vec<Bucket>, until: i64) {
    let Some(last) = rates.last().map(|b| b.sec) else {
        return;
    };
    let first = (last + 1).max(until - RATE_SECONDS as i64 + 1);
    rates.extend((first..=until).map(|sec| Bucket {
        sec,
        ..Bucket::default()
    }));
    let excess = rates.len().saturating_sub(RATE_SECONDS);
    rates.drain(..excess);
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Health {
    pub(crate) gaps: u64,
    pub(crate) midstream: u64,
    pub(crate) encrypted: u64,
    pub(crate) anomalies: u64,
    pub(crate) sessions_dropped: u64,
    pub(crate) messages_dropped: u64,
    pub(crate) queries_dropped: u64,
    /// Compact statements dropped beyond `Limits::statements`.
    pub(crate) statements_dropped: u64,
    /// Packets the live capture has dropped so far (libpcap's count).
    pub(crate) dropped_packets: u64,
}

/// What the pipeline has reported so far, shared with the drawing thread.
#[derive(Default)]
pub struct State {
    pub(crate) limits: Limits,
    pub(crate) sessions: HashMap<u64, SessionEntry>,
    /// Closed sessions, oldest first, to forget the oldest beyond the limit.
    closed_order: VecDeque<u64>,
    pub(crate) queries: VecDeque<Arc<QueryEntry>>,
    /// Every statement of the run in compact form (up to `limits.statements`), by seq.
    pub(crate) stmts_all: VecDeque<Stmt>,
    pub(crate) anomalies: VecDeque<AnomalyLine>,
    pub(crate) interner: Interner,
    /// The latest capture time seen.
    pub(crate) last_ts: i64,
    /// Connections on a watched port that turned out not to be PostgreSQL.
    pub(crate) not_postgres: u64,
    pub(crate) next_seq: u64,
    /// Text and parameter bytes of `queries`.
    query_bytes: usize,
    /// Every kept timeline line as (connection, line seq), oldest first.
    line_order: VecDeque<(u64, u64)>,
    next_line: u64,
    pub(crate) stmts: HashMap<String, StmtStats>,
    pub(crate) errors: HashMap<(String, String), ErrorGroup>,
    pub(crate) total_queries: u64,
    pub(crate) total_errors: u64,
    pub(crate) rates: VecDeque<Bucket>,
    pub(crate) health: Health,
    /// Set when the capture has ended (and with what figures).
    pub(crate) finished: Option<RunStats>,
    /// Why the capture thread stopped, if it failed.
    pub fatal: Option<String>,
    /// The capture thread panicked (the terminal is already restored by then).
    pub crashed: bool,
    /// Bytes read so far of `input_size` (offline files).
    pub input_read: Arc<AtomicU64>,
    pub(crate) input_size: Option<u64>,
    pub(crate) source: String,
    /// Live capture: quiet seconds are filled in by the wall clock.
    pub live: bool,
    /// Counts the sink's calls: the UI copies and draws again only when it moved
    /// (`App::outdated`).
    pub(crate) version: u64,
    rng: u64,
    pub(crate) fingerprints: FingerprintCache,
}

impl State {
    /// Empty state for a run reading `source` (`input_size` bytes, if a file).
    pub fn new(limits: Limits, source: String, input_size: Option<u64>) -> Self {
        State {
            limits,
            source,
            input_size,
            rng: 0x9e37_79b9_7f4a_7c15,
            ..State::default()
        }
    }

    fn entry(&mut self, conn: &ConnMeta, ts: i64) -> &mut SessionEntry {
        let health = &mut self.health;
        let e = self.sessions.entry(conn.id).or_insert_with(|| {
            health.midstream += conn.midstream as u64;
            SessionEntry::new(conn, ts)
        });
        e.last_ts = e.last_ts.max(ts);
        self.last_ts = self.last_ts.max(ts);
        e
    }

    fn bucket(&mut self, ts: i64) -> &mut Bucket {
        let sec = ts.div_euclid(1_000_000_000);
        let last = self.rates.back().map(|b| b.sec);
        match last {
            Some(l) if sec <= l => {
                // Late packets land in the newest bucket rather than reopening old ones.
            }
            Some(l) => {
                // Quiet seconds count as zeros, up to the window.
                let first = (l + 1).max(sec - RATE_SECONDS as i64 + 1);
                for s in first..=sec {
                    self.rates.push_back(Bucket {
                        sec: s,
                        ..Bucket::default()
                    });
                }
            }
            None => self.rates.push_back(Bucket {
                sec,
                ..Bucket::default()
            }),
        }
        while self.rates.len() > RATE_SECONDS {
            self.rates.pop_front();
        }
        self.rates.back_mut().expect("a bucket was just ensured")
    }

    /// Appends a timeline line, within the per-session and the overall bound.
    fn push_line(
        &mut self,
        conn: &ConnMeta,
        ts: i64,
        dir: Option<Dir>,
        name: &'static str,
        summary: String,
    ) {
        let seq = self.next_line;
        self.next_line += 1;
        let cap = self.limits.messages_per_session;
        let e = self.entry(conn, ts);
        let dropped = e.messages.len() >= cap;
        if dropped {
            e.messages.pop_front();
            e.messages_dropped += 1;
        }
        e.messages.push_back(MsgLine {
            seq,
            ts,
            dir,
            name,
            summary,
        });
        self.health.messages_dropped += dropped as u64;
        self.line_order.push_back((conn.id, seq));
        // The oldest line of the run is the first line of its session, unless that
        // session dropped it already or is gone: then the entry is stale.
        while self.line_order.len() > self.limits.messages_total {
            let Some((id, seq)) = self.line_order.pop_front() else {
                break;
            };
            if let Some(e) = self.sessions.get_mut(&id)
                && e.messages.front().is_some_and(|l| l.seq == seq)
            {
                e.messages.pop_front();
                e.messages_dropped += 1;
                self.health.messages_dropped += 1;
            }
        }
    }

    /// Finds a retained statement by its sequence number.
    pub(crate) fn query_by_seq(&self, seq: u64) -> Option<&Arc<QueryEntry>> {
        let first = self.queries.front()?.seq;
        self.queries
            .get(seq.checked_sub(first)? as usize)
            .filter(|q| q.seq == seq)
    }

    /// Finds a compact statement by its sequence number.
    pub(crate) fn stmt_by_seq(&self, seq: u64) -> Option<&Stmt> {
        let first = self.stmts_all.front()?.seq;
        self.stmts_all
            .get(seq.checked_sub(first)? as usize)
            .filter(|q| q.seq == seq)
    }

    /// The statement `seq` for the detail view: whole if still kept, else rebuilt
    /// from its compact form.
    pub(crate) fn detail_of(&self, seq: u64) -> Option<Arc<QueryEntry>> {
        self.query_by_seq(seq).cloned().or_else(|| {
            self.stmt_by_seq(seq)
                .map(|s| Arc::new(QueryEntry::from_stmt(s)))
        })
    }

    /// Another protocol on a watched port: not a session (JSON drops it too).
    fn forget_not_postgres(&mut self, id: u64) {
        if self.sessions.remove(&id).is_some() {
            self.not_postgres += 1;
        }
    }

    /// Keeps a statement in compact form, dropping the oldest beyond the bound.
    fn push_stmt(&mut self, seq: u64, conn: u64, q: &QueryRecord, counted: bool) {
        let who = self
            .sessions
            .get(&conn)
            .map_or_else(Default::default, |e| e.who.clone());
        let stmt = Stmt {
            seq,
            conn,
            start_ns: q.start_ns,
            end_ns: q.end_ns,
            rows: q.rows_returned.max(q.rows_affected.unwrap_or(0)),
            outcome: q.outcome,
            error: q
                .error
                .as_ref()
                .map(|e| self.interner.error(&e.code, &e.message)),
            text: q.text.as_deref().map(|t| self.interner.text(t)),
            who,
            counted,
        };
        self.stmts_all.push_back(stmt);
        while self.stmts_all.len() > self.limits.statements.max(1) {
            self.stmts_all.pop_front();
            self.health.statements_dropped += 1;
        }
    }

    fn set_record(&mut self, conn: &ConnMeta, s: &SessionRecord, ts: i64) {
        if s.not_postgres {
            self.forget_not_postgres(conn.id);
            return;
        }
        let e = self.entry(conn, ts);
        let who = Who {
            client: e.client_ip.clone(),
            user: s.user.clone(),
            database: s.database.clone(),
            application: s.application.clone(),
        };
        if *e.who != who {
            e.who = Arc::new(who);
        }
        let was_encrypted = matches!(
            e.rec.encryption,
            Some(crate::pgwire::Encryption::Tls | crate::pgwire::Encryption::Gss)
        );
        e.rec = s.clone();
        let now_encrypted = matches!(
            e.rec.encryption,
            Some(crate::pgwire::Encryption::Tls | crate::pgwire::Encryption::Gss)
        );
        self.health.encrypted += (now_encrypted && !was_encrypted) as u64;
    }
}

/// The shared state, as both threads hold it.
pub(crate) type SharedState = Arc<Mutex<State>>;

/// Locks, shrugging off a poisoned lock: the data is counters and copies, still usable.
pub fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The presenter that feeds the TUI.
pub struct TuiSink {
    shared: SharedState,
    summary_chars: usize,
}

impl TuiSink {
    /// A sink writing into `shared`.
    pub fn new(shared: SharedState) -> Self {
        let summary_chars = lock(&shared).limits.summary_chars;
        TuiSink {
            shared,
            summary_chars,
        }
    }

    /// The state, marked changed: every call of the sink changes what a view shows.
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = lock(&self.shared);
        st.version += 1;
        st
    }
}

impl Sink for TuiSink {
    fn wants_messages(&self) -> bool {
        true
    }

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        // Formatted before locking, so the lock is held only for the bookkeeping.
        let mut summary = String::new();
        if let Body::ErrorResponse { fields } | Body::NoticeResponse { fields } = msg.body {
            // What matters first, before the full field list that the column cuts.
            for (code, sep) in [(b'S', " "), (b'C', ": "), (b'M', " │ ")] {
                if let Some((_, v)) = fields.iter().find(|(c, _)| *c == code) {
                    // Unquoted: `"u_pkey"` reads as sent.
                    push_sanitized(&mut summary, v, false);
                    summary.push_str(sep);
                }
            }
        }
        visit(msg, &mut Args::new(&mut summary));
        if let Some((cut, _)) = summary.char_indices().nth(self.summary_chars) {
            summary.truncate(cut);
            summary.push('…');
        }
        let mut st = self.lock();
        st.bucket(ts).bytes += msg.len as u64;
        if let Body::ReadyForQuery { status } = msg.body {
            st.entry(conn, ts).tx = Some(status);
        }
        st.push_line(conn, ts, Some(msg.dir), msg.name(), summary);
        Ok(())
    }

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        let mut message = String::new();
        push_sanitized(&mut message, a.message.as_bytes(), false);
        let mut st = self.lock();
        st.health.anomalies += 1;
        st.health.gaps += (a.kind == AnomalyKind::Gap) as u64;
        st.anomalies.push_back(AnomalyLine {
            ts,
            conn: conn.map(|c| c.id),
            kind: a.kind,
            message: message.clone(),
        });
        if st.anomalies.len() > st.limits.anomalies {
            st.anomalies.pop_front();
        }
        match conn {
            Some(conn) if a.kind == AnomalyKind::NotPostgres => st.forget_not_postgres(conn.id),
            Some(conn) => st.push_line(
                conn,
                ts,
                None,
                "anomaly",
                format!("{}: {message}", a.kind.as_str()),
            ),
            None => {}
        }
        Ok(())
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        let who = Who {
            client: conn.client.0.to_string(),
            user: s.user.clone(),
            database: s.database.clone(),
            application: s.application.clone(),
        };
        let mut guard = self.lock();
        let st = &mut *guard;
        st.set_record(conn, s, q.end_ns);
        if q.skipped {
            return Ok(());
        }
        // Linked records come from the pooler correlator: no ports needed.
        let counted = q.counted_once(conn, &[]);
        st.push_stmt(st.next_seq, conn.id, q, counted);
        if counted {
            let failed = q.outcome == Outcome::Failure;
            st.total_queries += 1;
            st.total_errors += failed as u64;
            let b = st.bucket(q.end_ns);
            b.queries += 1;
            b.errors += failed as u64;
            add_statement(
                &mut st.stmts,
                &mut st.fingerprints,
                q,
                &mut st.rng,
                st.limits.samples_per_statement,
            );
        }
        let fingerprint = match q.text.as_deref() {
            Some(t) => st.fingerprints.get(t).to_string(),
            None => "(unknown)".to_string(),
        };
        // Entries end on the drawing thread too: keep nothing shared.
        let rec = q.detached();
        let params_redacted = rec.params_withheld;
        let entry = Arc::new(QueryEntry {
            seq: st.next_seq,
            who,
            rec,
            fingerprint,
            params_redacted,
            compact: false,
        });
        st.next_seq += 1;
        if let Some(last) = st.stmts_all.back().filter(|l| l.counted) {
            add_error(&mut st.errors, last, st.limits.error_groups);
        }
        st.query_bytes += entry.size();
        st.queries.push_back(entry);
        while st.queries.len() > st.limits.queries || st.query_bytes > st.limits.query_bytes {
            let Some(old) = st.queries.pop_front() else {
                break;
            };
            st.query_bytes -= old.size();
            st.health.queries_dropped += 1;
        }
        Ok(())
    }

    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        let ts = s.end_ns;
        self.lock().set_record(conn, s, ts);
    }

    fn wants_running(&self) -> bool {
        true
    }

    fn running(&mut self, conn: &ConnMeta, now: Option<&InFlight<'_>>) {
        // The text is copied once per statement, outside the lock; the interner
        // shares it with the statement's compact record later.
        let text: Option<Arc<str>> = now
            .and_then(|r| r.text)
            .map(|t| Arc::from(&t[..t.floor_char_boundary(TEXT_CAP)]));
        let mut st = self.lock();
        if !st.sessions.contains_key(&conn.id) && now.is_none() {
            return;
        }
        let ts = now.map_or(0, |r| r.start_ns);
        st.entry(conn, ts).running = now.map(|r| Running {
            text,
            start_ns: r.start_ns,
            wait: r.wait.as_str(),
        });
    }

    fn drops(&mut self, total: u64) {
        self.lock().health.dropped_packets = total;
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        let mut st = self.lock();
        st.set_record(conn, s, s.end_ns);
        let e = st.entry(conn, s.end_ns);
        e.closed = true;
        e.running = None;
        st.closed_order.push_back(conn.id);
        while st.closed_order.len() > st.limits.closed_sessions {
            if let Some(old) = st.closed_order.pop_front() {
                st.sessions.remove(&old);
                st.health.sessions_dropped += 1;
            }
        }
        Ok(())
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        self.lock().finished = Some(run.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_counted() {
        let limits = Limits {
            closed_sessions: 2,
            messages_per_session: 3,
            queries: 4,
            ..Limits::default()
        };
        let shared = Arc::new(Mutex::new(State::new(limits, "test".into(), None)));
        let mut sink = TuiSink::new(shared.clone());
        let rec = SessionRecord::default();
        for id in 1..=4 {
            let m = ConnMeta::for_test(id);
            for i in 0..5 {
                let msg = Msg::sync();
                sink.message(&m, i * 1_000_000_000, &msg).unwrap();
                let mut q = QueryRecord::new(id, crate::session::record::Protocol::Simple, i);
                q.text = Some("select 1".into());
                sink.query(&m, &rec, &q).unwrap();
            }
            sink.session(&m, &rec).unwrap();
        }
        let st = lock(&shared);
        assert_eq!(st.sessions.len(), 2);
        assert_eq!(st.health.sessions_dropped, 2);
        assert!(st.sessions.values().all(|s| s.messages.len() == 3));
        assert_eq!(st.health.messages_dropped, 8);
        assert_eq!(st.queries.len(), 4);
        assert_eq!(st.health.queries_dropped, 16);
        let fp = crate::session::sql::fingerprint(b"select 1");
        assert_eq!(st.stmts[&fp].calls, 20);
        assert_eq!(st.query_by_seq(19).unwrap().seq, 19);
        assert!(st.query_by_seq(3).is_none());
        assert_eq!(st.rates.len(), 5);
    }

    #[test]
    fn overall_bounds_drop_the_oldest() {
        let limits = Limits {
            messages_per_session: 4,
            messages_total: 6,
            query_bytes: 700,
            ..Limits::default()
        };
        let shared = Arc::new(Mutex::new(State::new(limits, "test".into(), None)));
        let mut sink = TuiSink::new(shared.clone());
        let sync = Msg::sync();
        // Session 1 gets 5 lines (one over its own cap), then session 2 gets 4.
        for i in 0..5 {
            sink.message(&ConnMeta::for_test(1), i, &sync).unwrap();
        }
        for i in 5..9 {
            sink.message(&ConnMeta::for_test(2), i, &sync).unwrap();
        }
        {
            let st = lock(&shared);
            let ts = |id| -> Vec<i64> { st.sessions[&id].messages.iter().map(|l| l.ts).collect() };
            assert_eq!(ts(1), [3, 4]);
            assert_eq!(ts(2), [5, 6, 7, 8]);
            assert_eq!(st.health.messages_dropped, 3);
            assert_eq!(st.sessions[&1].messages_dropped, 3);
        }
        // Statements with big texts: the byte bound keeps the newest that fit.
        for i in 0..4 {
            let mut q = QueryRecord::new(1, crate::session::record::Protocol::Simple, i);
            q.text = Some("x".repeat(200).into());
            sink.query(&ConnMeta::for_test(1), &SessionRecord::default(), &q)
                .unwrap();
        }
        let st = lock(&shared);
        assert_eq!(st.queries.len(), 1);
        assert_eq!(st.queries[0].seq, 3);
        assert_eq!(st.health.queries_dropped, 3);
    }

    #[test]
    fn error_lines_lead_with_code_and_message() {
        let shared = Arc::new(Mutex::new(State::default()));
        let mut sink = TuiSink::new(shared.clone());
        let body = b"SERROR\0VERROR\0C42P01\0Mtable \"t\"\x1b does not exist\0\0";
        let msg = Msg {
            dir: Dir::Backend,
            typ: Some(b'E'),
            len: body.len() as u32 + 4,
            body: crate::pgwire::decode(Dir::Backend, b'E', body, &Default::default()),
            withheld: false,
        };
        sink.message(&ConnMeta::for_test(1), 0, &msg).unwrap();
        let st = lock(&shared);
        let line = &st.sessions[&1].messages[0];
        assert_eq!(line.name, "ErrorResponse");
        assert!(
            line.summary
                .starts_with("ERROR 42P01: table \"t\"\\u{1b} does not exist │ severity="),
            "{}",
            line.summary
        );
    }

    #[test]
    fn live_drops_reach_the_health_figures() {
        let shared = Arc::new(Mutex::new(State::new(Limits::default(), "t".into(), None)));
        let mut sink = TuiSink::new(shared.clone());
        sink.drops(7);
        sink.drops(42);
        assert_eq!(lock(&shared).health.dropped_packets, 42);
    }

    #[test]
    fn quiet_seconds_pad_to_zero() {
        let b = |sec, queries| Bucket {
            sec,
            queries,
            ..Bucket::default()
        };
        let mut r = vec![b(10, 3)];
        pad_rates(&mut r, 12);
        assert_eq!(r, vec![b(10, 3), b(11, 0), b(12, 0)]);
        pad_rates(&mut r, 12);
        assert_eq!(r.len(), 3);
        pad_rates(&mut r, 10_000);
        assert_eq!(r.len(), RATE_SECONDS);
        assert_eq!(r.last().unwrap().sec, 10_000);
        let mut empty = Vec::new();
        pad_rates(&mut empty, 5);
        assert!(empty.is_empty());
    }
}
