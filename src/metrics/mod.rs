//! Prometheus metrics (`--metrics ADDR`): [`Metrics`] holds the registry, shared with
//! the HTTP thread that encodes it on each scrape ([`http`]); a [`Collector`], owned
//! by whichever thread hands records to the presenters, turns records, sessions and
//! anomalies into metric updates. Everything the wire names (users, databases,
//! applications, SQLSTATEs, statements) is cut to a bounded length and a bounded
//! number of label values, so a hostile client cannot grow the exposition or memory.
//! Names, labels and bounds: docs/metrics.md.

pub mod http;
mod sink;

pub(crate) use sink::Tee;

use crate::anomaly::AnomalyKind;
use crate::session::record::{Outcome, QueryRecord, SessionRecord};
use crate::session::shared::Text;
use crate::session::sql::{fingerprint, normalize};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Latency buckets, in seconds: 50 µs to 10 s, 1-2.5-5 steps (a round trip on
/// loopback is tens of µs; statements beyond 10 s land in +Inf).
pub(crate) const BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Bytes of a wire-named label value kept (user, database, application...).
pub(crate) const MAX_LABEL_BYTES: usize = 64;
/// Bytes of a normalised statement kept in `pgscope_statement_info`'s `query` label.
pub(crate) const MAX_QUERY_BYTES: usize = 256;
/// Distinct values a wire-named label takes; later ones are `other`.
pub(crate) const MAX_LABEL_VALUES: usize = 100;
/// Label sets of `pgscope_sessions_total`; later combinations count under all-`other`.
pub(crate) const MAX_SESSION_SERIES: usize = 1000;
/// Distinct SQLSTATEs with a series of their own.
pub(crate) const MAX_CODES: usize = 256;
/// Fingerprints whose total time is followed to pick the top N; when full, the
/// lesser half of those without a series is forgotten.
pub(crate) const MAX_TRACKED: usize = 10_000;

/// The label of statements without a series of their own.
const OTHER: &str = "other";
/// The label of statements whose SQL was never seen (joined mid-stream).
const UNKNOWN: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FpLabel {
    fingerprint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    fingerprint: String,
    query: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SqlstateLabel {
    sqlstate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    user: String,
    database: String,
    application: String,
    auth_method: String,
    encryption: String,
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// A histogram with [`BUCKETS`], made by `Default` so that its family is too.
#[derive(Clone, Debug)]
struct Latency(Histogram);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new(BUCKETS))
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// The registry and its metrics. Every metric is atomics or a short lock taken per
/// update or per encoding, so a scrape never holds up the capture for long: the
/// exposition is encoded into memory first and only then written to the socket.
/// Made by [`Metrics::new`], which registers them (`default` leaves the registry
/// empty: it only makes the metrics).
#[derive(Default)]
pub struct Metrics {
    registry: Registry,
    latency: Family<FpLabel, Latency>,
    statement_info: Family<InfoLabels, Gauge>,
    statements: Family<OutcomeLabel, Counter>,
    errors: Family<SqlstateLabel, Counter>,
    rows_returned: Counter,
    rows_affected: Counter,
    cancelled: Counter,
    copy_bytes: Family<DirectionLabel, Counter>,
    sessions: Family<SessionLabels, Counter>,
    active_sessions: Gauge,
    cancel_requests: Counter,
    sessions_closed: Family<ReasonLabel, Counter>,
    evicted: Counter,
    // Capture health.
    packets: Counter,
    bytes: Counter,
    dropped: Counter,
    anomalies: Family<KindLabel, Counter>,
    gaps: Counter,
    resyncs: Counter,
    out_of_step: Counter,
    unsure: Counter,
    input_done: Gauge,
}

/// Registers each metric: field, name (prometheus-client adds `_total` to counters
/// and the unit's suffix), help, and a unit where there is one.
macro_rules! register {
    ($m:ident; $($field:ident, $name:literal, $help:literal $(, $unit:ident)?;)*) => {
        $( register!(@one $m, $field, $name, $help $(, $unit)?); )*
    };
    (@one $m:ident, $field:ident, $name:literal, $help:literal) => {
        $m.registry.register($name, $help, $m.$field.clone())
    };
    (@one $m:ident, $field:ident, $name:literal, $help:literal, $unit:ident) => {
        $m.registry.register_with_unit($name, $help, Unit::$unit, $m.$field.clone())
    };
}

impl Metrics {
    /// A registry with every metric registered at zero.
    pub fn new() -> Self {
        let mut m = Metrics::default();
        register! { m;
            latency, "pgscope_statement_duration", "Statement latency from request to completion as seen on the wire, per fingerprint (the top N by total time; the rest under fingerprint=\"other\", SQL never seen under \"unknown\"); unsure statements are left out", Seconds;
            statement_info, "pgscope_statement_info", "The normalised text of each fingerprint that has a latency series (value always 1)";
            statements, "pgscope_statements", "Statements completed, by outcome (success, failure, unknown: unsure after lost or out-of-step packets); skipped ones are not counted";
            errors, "pgscope_statement_errors", "Statements that failed, by SQLSTATE";
            rows_returned, "pgscope_rows_returned", "Rows sent to clients (DataRow messages, COPY TO rows)";
            rows_affected, "pgscope_rows_affected", "Rows counted in command tags (INSERT, UPDATE, DELETE, SELECT, COPY, MERGE...)";
            cancelled, "pgscope_cancelled_statements", "Statements a CancelRequest was aimed at";
            copy_bytes, "pgscope_copy", "COPY data, by direction (in: client to server, out: server to client)", Bytes;
            sessions, "pgscope_sessions", "Sessions started (counted once ready, or when they end), by user, database, application, authentication method, encryption and protocol version";
            sessions_closed, "pgscope_sessions_closed", "Connections ended, by reason (fin, rst, idle, evicted, end_of_capture)";
            active_sessions, "pgscope_active_sessions", "Connections open now";
            cancel_requests, "pgscope_cancel_requests", "Connections that carried a CancelRequest";
            packets, "pgscope_capture_packets", "Packets read from the capture";
            bytes, "pgscope_capture", "Bytes captured (as stored, up to the snaplen)", Bytes;
            dropped, "pgscope_capture_dropped_packets", "Packets libpcap dropped (live capture)";
            gaps, "pgscope_gaps", "Holes in TCP streams (bytes never captured)";
            resyncs, "pgscope_resyncs", "Times the decoder hunted for a message boundary after a gap or a mid-stream join";
            out_of_step, "pgscope_out_of_step", "Answers that fitted no pending request, putting a session out of step";
            unsure, "pgscope_unsure_statements", "Statements whose result could not be paired for sure (also in pgscope_statements_total{outcome=\"unknown\"})";
            evicted, "pgscope_evicted_connections", "Connections evicted from a full flow table";
            anomalies, "pgscope_anomalies", "Anomaly records, by kind (docs/schema.md)";
            input_done, "pgscope_input_finished", "1 once every input file has been read (offline), 0 while reading or capturing live";
        }
        m
    }

    /// The exposition: OpenMetrics (ending in `# EOF`) or the Prometheus text format.
    pub(crate) fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::with_capacity(16 << 10);
        // Writing into a String cannot fail.
        let _ = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        out
    }

    /// One captured packet of `len` bytes (called by the capture loop).
    #[inline]
    pub(crate) fn packet(&self, len: usize) {
        self.packets.inc();
        self.bytes.inc_by(len as u64);
    }

    /// Every input has been read.
    pub(crate) fn input_finished(&self) {
        self.input_done.set(1);
    }
}

/// A fingerprint followed for the top N.
struct Stmt {
    total_ns: u128,
    label: FpLabel,
    /// Set while it has a latency series of its own.
    info: Option<InfoLabels>,
}

/// Label values named by the wire, each cut to [`MAX_LABEL_BYTES`], escaped, and at
/// most [`MAX_LABEL_VALUES`] distinct ones; later ones are `other`.
#[derive(Default)]
struct Bounded {
    seen: FxHashSet<String>,
}

impl Bounded {
    fn get(&mut self, v: Option<&str>) -> String {
        let Some(v) = v else {
            return UNKNOWN.into();
        };
        let v = label_value(v, MAX_LABEL_BYTES);
        if self.seen.contains(&v) {
            return v;
        }
        if self.seen.len() >= MAX_LABEL_VALUES {
            return OTHER.into();
        }
        self.seen.insert(v.clone());
        v
    }
}

/// `s` with control and invisible characters escaped, cut to `max` bytes on a
/// character boundary.
pub(crate) fn label_value(s: &str, max: usize) -> String {
    let mut out = String::new();
    crate::output::fmt::push_sanitized(
        &mut out,
        s.as_bytes()[..s.floor_char_boundary(max)].as_ref(),
        false,
    );
    if out.len() > max {
        out.truncate(out.floor_char_boundary(max));
    }
    out
}

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Unknown];

/// What is kept of an open connection.
#[derive(Default)]
struct ConnState {
    /// Counted in `pgscope_sessions_total`.
    counted: bool,
    /// `unsure_pairings` already counted.
    out_of_step: u64,
}

/// Turns what the pipeline hands the presenters into metric updates. One per run,
/// owned by the thread that calls it.
pub(crate) struct Collector {
    m: Arc<Metrics>,
    top: usize,
    /// Fingerprints by text id: texts are interned, so a statement's text is
    /// normalised once, not on every call.
    by_text: FxHashMap<u64, String>,
    stmts: FxHashMap<String, Stmt>,
    /// `pgscope_statements_total` by outcome: success, failure, unknown.
    outcomes: [Counter; 3],
    /// Fingerprints with a series of their own.
    slotted: usize,
    /// No more than the smallest total time of a fingerprint with a series (they only
    /// grow): a lower bound, made exact before it decides anything.
    min_slotted_ns: u128,
    other: FpLabel,
    unknown: FpLabel,
    /// user, database, application, auth method, protocol.
    labels: [Bounded; 5],
    sqlstates: FxHashSet<String>,
    conns: FxHashMap<u64, ConnState>,
    dropped: u64,
    /// Label sets of `pgscope_sessions_total` so far.
    session_series: usize,
}

impl Collector {
    pub(crate) fn new(m: Arc<Metrics>, top: usize) -> Self {
        // Made now, at 0: rate() counts no increase into a series' first sample.
        let outcomes = OUTCOMES.map(|o| {
            m.statements.get_or_create_owned(&OutcomeLabel {
                outcome: o.as_str(),
            })
        });
        Collector {
            m,
            top: top.max(1),
            by_text: FxHashMap::default(),
            stmts: FxHashMap::default(),
            outcomes,
            slotted: 0,
            min_slotted_ns: 0,
            other: FpLabel {
                fingerprint: OTHER.into(),
            },
            unknown: FpLabel {
                fingerprint: UNKNOWN.into(),
            },
            labels: Default::default(),
            sqlstates: FxHashSet::default(),
            conns: FxHashMap::default(),
            dropped: 0,
            session_series: 0,
        }
    }

    pub(crate) fn query(&mut self, q: &QueryRecord) {
        if q.skipped {
            return;
        }
        let m = Arc::clone(&self.m);
        let outcome = if q.unsure {
            m.unsure.inc();
            Outcome::Unknown
        } else {
            q.outcome
        };
        let slot = OUTCOMES.iter().position(|&o| o == outcome).unwrap_or(2);
        self.outcomes[slot].inc();
        if let Some(e) = &q.error {
            let sqlstate = bounded_code(&mut self.sqlstates, sqlstate(&e.code));
            m.errors.get_or_create(&SqlstateLabel { sqlstate }).inc();
        }
        if q.cancelled_by.is_some() {
            m.cancelled.inc();
        }
        if q.unsure {
            // No result and no trustworthy duration.
            return;
        }
        m.rows_returned.inc_by(q.rows_returned);
        m.rows_affected.inc_by(q.rows_affected.unwrap_or(0));
        if let Some(c) = &q.copy {
            for (direction, n) in [("in", c.bytes_in), ("out", c.bytes_out)] {
                if n > 0 {
                    m.copy_bytes
                        .get_or_create(&DirectionLabel { direction })
                        .inc_by(n);
                }
            }
        }
        let d = q.duration_ns().max(0) as u64;
        let label = self.series(q.text.as_ref(), d);
        m.latency.get_or_create(label).0.observe(d as f64 / 1e9);
    }

    /// The latency series of a statement of this text, giving its fingerprint one of
    /// the top N if it earned it: a free one, or the one of the fingerprint with the
    /// least total time once its own is over twice that (so that two close ones do
    /// not take turns). A fingerprint that loses its series counts under `other`
    /// from then on; every series only grows.
    fn series(&mut self, text: Option<&Text>, d: u64) -> &FpLabel {
        let Some(text) = text else {
            return &self.unknown;
        };
        if self.by_text.len() >= MAX_TRACKED && !self.by_text.contains_key(&text.id()) {
            self.by_text.clear();
        }
        let fp: &str = self
            .by_text
            .entry(text.id())
            .or_insert_with(|| fingerprint(text.as_bytes()));
        if !self.stmts.contains_key(fp) {
            if self.stmts.len() >= MAX_TRACKED {
                forget_lesser_half(&mut self.stmts);
            }
            let label = FpLabel {
                fingerprint: fp.to_string(),
            };
            self.stmts.insert(
                label.fingerprint.clone(),
                Stmt {
                    total_ns: 0,
                    label,
                    info: None,
                },
            );
        }
        let st = self.stmts.get_mut(fp).expect("inserted above");
        st.total_ns += d as u128;
        if st.info.is_some() {
            return &self.stmts[fp].label;
        }
        let total = st.total_ns;
        if self.slotted >= self.top {
            if total <= 2 * self.min_slotted_ns {
                return &self.other;
            }
            // The bound may be stale: the exact least total decides.
            let (least, least_ns) = self
                .stmts
                .iter()
                .filter(|(_, s)| s.info.is_some())
                .min_by_key(|(_, s)| s.total_ns)
                .map(|(k, s)| (k.clone(), s.total_ns))
                .expect("top N are taken");
            self.min_slotted_ns = least_ns;
            if total <= 2 * least_ns {
                return &self.other;
            }
            let demoted = self.stmts.get_mut(&least).expect("found above");
            if let Some(info) = demoted.info.take() {
                self.m.latency.remove(&demoted.label);
                self.m.statement_info.remove(&info);
            }
            self.slotted -= 1;
        }
        let fp = fp.to_string();
        let info = InfoLabels {
            fingerprint: fp.clone(),
            query: label_value(&normalize(text.as_bytes()), MAX_QUERY_BYTES),
        };
        self.m.statement_info.get_or_create(&info).set(1);
        let st = self.stmts.get_mut(&fp).expect("inserted above");
        st.info = Some(info);
        self.slotted += 1;
        if self.slotted >= self.top {
            self.min_slotted_ns = self
                .stmts
                .values()
                .filter(|s| s.info.is_some())
                .map(|s| s.total_ns)
                .min()
                .unwrap_or(0);
        }
        &self.stmts[&fp].label
    }

    /// A connection's state now and then while it is open.
    pub(crate) fn session_update(&mut self, conn_id: u64, s: &SessionRecord) {
        if s.not_postgres {
            self.forget(conn_id);
            return;
        }
        let m = &self.m;
        let st = self.conns.entry(conn_id).or_insert_with(|| {
            m.active_sessions.inc();
            ConnState::default()
        });
        let ready = s.tx_status.is_some() && !st.counted && s.cancel_request.is_none();
        m.out_of_step
            .inc_by(s.unsure_pairings.saturating_sub(st.out_of_step));
        st.out_of_step = st.out_of_step.max(s.unsure_pairings);
        if ready {
            st.counted = true;
            self.count_session(s);
        }
    }

    /// A connection has ended.
    pub(crate) fn session_closed(&mut self, conn_id: u64, s: &SessionRecord) {
        let st = self.forget(conn_id).unwrap_or_default();
        let m = Arc::clone(&self.m);
        m.out_of_step
            .inc_by(s.unsure_pairings.saturating_sub(st.out_of_step));
        if s.cancel_request.is_some() {
            m.cancel_requests.inc();
        } else if !st.counted {
            self.count_session(s);
        }
        m.sessions_closed
            .get_or_create(&ReasonLabel {
                reason: s.close_reason_str(),
            })
            .inc();
        if s.close_reason == Some(crate::tcp::CloseReason::Evicted) {
            m.evicted.inc();
        }
    }

    fn forget(&mut self, conn_id: u64) -> Option<ConnState> {
        let st = self.conns.remove(&conn_id)?;
        self.m.active_sessions.dec();
        Some(st)
    }

    fn count_session(&mut self, s: &SessionRecord) {
        let [user, database, application, auth, protocol] = &mut self.labels;
        let mut labels = SessionLabels {
            user: user.get(s.user.as_deref()),
            database: database.get(s.database.as_deref()),
            application: application.get(s.application.as_deref()),
            auth_method: auth.get(s.auth_method.as_deref()),
            encryption: s
                .encryption
                .map_or(UNKNOWN, crate::pgwire::Encryption::as_str)
                .to_string(),
            protocol: protocol.get(
                s.protocol_negotiated
                    .as_deref()
                    .or(s.protocol_requested.as_deref()),
            ),
        };
        let sessions = &self.m.sessions;
        if sessions.get(&labels).is_none() {
            if self.session_series >= MAX_SESSION_SERIES {
                let other = || OTHER.to_string();
                labels = SessionLabels {
                    user: other(),
                    database: other(),
                    application: other(),
                    auth_method: other(),
                    encryption: other(),
                    protocol: other(),
                };
            } else {
                self.session_series += 1;
            }
        }
        sessions.get_or_create(&labels).inc();
    }

    /// An anomaly record (`conn_id` when it concerns one connection).
    pub(crate) fn anomaly(&mut self, conn_id: Option<u64>, kind: AnomalyKind) {
        match kind {
            AnomalyKind::Gap => {
                self.m.gaps.inc();
            }
            AnomalyKind::Resync => {
                self.m.resyncs.inc();
            }
            AnomalyKind::NotPostgres => {
                if let Some(id) = conn_id {
                    self.forget(id);
                }
            }
            _ => {}
        }
        // The kinds are pgscope's own words, a fixed set: no bound needed.
        let kind = kind.as_str();
        self.m.anomalies.get_or_create(&KindLabel { kind }).inc();
    }

    /// libpcap's drop count so far.
    pub(crate) fn drops(&mut self, total: u64) {
        self.m.dropped.inc_by(total.saturating_sub(self.dropped));
        self.dropped = self.dropped.max(total);
    }
}

/// A SQLSTATE as a label: five digits or upper-case letters, else `invalid`.
fn sqlstate(code: &str) -> String {
    if code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        code.to_string()
    } else {
        "invalid".into()
    }
}

/// `v`, or `other` once [`MAX_CODES`] distinct values have been seen.
fn bounded_code(seen: &mut FxHashSet<String>, v: String) -> String {
    if seen.contains(&v) {
        return v;
    }
    if seen.len() >= MAX_CODES {
        return OTHER.into();
    }
    seen.insert(v.clone());
    v
}

/// Forgets the half of the fingerprints without a series that took the least time.
fn forget_lesser_half(stmts: &mut FxHashMap<String, Stmt>) {
    let mut totals: Vec<u128> = stmts
        .values()
        .filter(|s| s.info.is_none())
        .map(|s| s.total_ns)
        .collect();
    if totals.is_empty() {
        return;
    }
    let mid = totals.len() / 2;
    let (_, &mut median, _) = totals.select_nth_unstable(mid);
    stmts.retain(|_, s| s.info.is_some() || s.total_ns > median);
}

#[cfg(test)]
mod tests;
