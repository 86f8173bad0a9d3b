//! Presenters. Every one is a [`Sink`]: the pipeline hands it messages, anomalies,
//! finished statements and finished sessions, and it renders them.

pub(crate) mod fields;
pub(crate) mod filtered;
pub(crate) mod fmt;
pub(crate) mod html;
pub mod json;
pub(crate) mod jsonw;
pub mod params;
pub mod redact;
pub mod summary;
pub mod text;
pub mod threaded;
pub(crate) mod wrap;

use crate::anomaly::AnomalyKind;
use crate::pgwire::{Dir, Msg};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io;

/// Figures about the whole run, for the closing summary.
#[derive(Default, Debug, Clone)]
pub struct RunStats {
    /// Packets read.
    pub packets: u64,
    pub(crate) bytes: u64,
    pub(crate) dropped: u64,
    pub(crate) tcp: crate::tcp::TcpStats,
    pub(crate) messages: u64,
    pub(crate) anomalies: u64,
    pub(crate) warnings: Vec<String>,
    /// Earliest and latest packet times (ns), for the summary's time span.
    pub(crate) span: Option<(i64, i64)>,
}

impl RunStats {
    #[inline]
    pub(crate) fn saw(&mut self, ts: i64) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(ts), b.max(ts)),
            None => (ts, ts),
        });
    }
}

/// An anomaly as presenters see it.
pub struct AnomalyView<'a> {
    pub(crate) kind: AnomalyKind,
    pub(crate) dir: Option<Dir>,
    pub(crate) message: &'a str,
}

/// An anomaly kept to be handed on later by presenters that hold records: the
/// formatting thread's queue, the pooler.
pub(crate) struct OwnedAnomaly {
    conn: Option<ConnMeta>,
    ts: i64,
    kind: AnomalyKind,
    dir: Option<Dir>,
    message: String,
}

impl AnomalyView<'_> {
    pub(crate) fn owned(&self, conn: Option<&ConnMeta>, ts: i64) -> OwnedAnomaly {
        OwnedAnomaly {
            conn: conn.cloned(),
            ts,
            kind: self.kind,
            dir: self.dir,
            message: self.message.to_string(),
        }
    }
}

impl OwnedAnomaly {
    /// Hands the kept anomaly to `sink`.
    pub(crate) fn replay<S: Sink + ?Sized>(self, sink: &mut S) -> io::Result<()> {
        let view = AnomalyView {
            kind: self.kind,
            dir: self.dir,
            message: &self.message,
        };
        sink.anomaly(self.conn.as_ref(), self.ts, &view)
    }
}

/// A presenter: receives the records of a run, in capture order.
pub trait Sink {
    /// Whether `message` should be called at all (decoding is cheaper without).
    fn wants_messages(&self) -> bool {
        false
    }
    /// A decoded message (only if [`Sink::wants_messages`]).
    fn message(&mut self, _conn: &ConnMeta, _ts: i64, _msg: &Msg<'_>) -> io::Result<()> {
        Ok(())
    }
    /// An anomaly, of a connection or (`None`) of the whole run.
    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()>;
    /// A finished statement of `session`.
    fn query(
        &mut self,
        conn: &ConnMeta,
        session: &SessionRecord,
        q: &QueryRecord,
    ) -> io::Result<()>;
    /// The same, handing the record over (a sink that keeps or sends it saves a copy).
    fn query_owned(
        &mut self,
        conn: &ConnMeta,
        session: &SessionRecord,
        q: Box<QueryRecord>,
    ) -> io::Result<()> {
        self.query(conn, session, &q)
    }
    /// A session that ended.
    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()>;
    /// The same, handing the record over (a sink that sends it on saves a copy).
    fn session_owned(&mut self, conn: &ConnMeta, s: SessionRecord) -> io::Result<()> {
        self.session(conn, &s)
    }
    /// The state of a still open session, for live views. Called now and then (see
    /// `pipeline::UPDATE_INTERVAL_NS`), never per message.
    fn session_update(&mut self, _conn: &ConnMeta, _s: &SessionRecord) {}
    /// Whether `running` should be called (live views).
    fn wants_running(&self) -> bool {
        false
    }
    /// The statement a connection runs now (`None`: nothing), when it changes: a
    /// statement starts, its answer starts coming, or it ends.
    fn running(&mut self, _conn: &ConnMeta, _now: Option<&crate::session::InFlight<'_>>) {}
    /// Packets the live capture has dropped so far (the anomaly records say it too).
    fn drops(&mut self, _total: u64) {}
    /// Live, while no packet comes: the capture time that has certainly passed (the
    /// wall clock less `pipeline::TICK_LAG_NS`). A sink that holds records until some
    /// capture time has passed (the pooler correlator) hands on what is due, which
    /// record times alone would not do on a quiet link. Offline runs never tick.
    fn tick(&mut self, _now_ns: i64) -> io::Result<()> {
        Ok(())
    }
    /// A decoding shard's hand-over to the merging writer, for the pipeline to number
    /// events and end rounds (`--threads`).
    fn threaded(&mut self) -> Option<&mut threaded::Threaded> {
        None
    }
    /// The end of the run, with its figures.
    fn finish(&mut self, run: &RunStats) -> io::Result<()>;
}

/// Optional-string equality for the checks made on every record, through
/// [`eq_bytes`](crate::text::eq_bytes) (no `memcmp` call for short names).
pub(crate) fn same(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => crate::text::eq_bytes(a.as_bytes(), b.as_bytes()),
        (None, None) => true,
        _ => false,
    }
}

pub(crate) fn dir_str(d: Dir) -> &'static str {
    match d {
        Dir::Frontend => "frontend",
        Dir::Backend => "backend",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_compares_like_equality() {
        let cases = [
            (Some(""), Some(""), true),
            (Some("app"), Some("app"), true),
            (Some("app"), Some("apq"), false),
            (Some(""), Some("a"), false),
            (None, Some(""), false),
            (None, None, true),
        ];
        for (a, b, want) in cases {
            assert_eq!(super::same(a, b), want, "{a:?} {b:?}");
            assert_eq!(super::same(b, a), want, "{b:?} {a:?}");
        }
    }
}
