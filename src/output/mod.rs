//! Presenters. Every one is a [`Sink`]: the pipeline hands it messages, anomalies,
//! finished statements and finished sessions, and it renders them.

pub mod fields;
pub mod filtered;
pub mod fmt;
pub mod html;
pub mod json;
pub mod jsonw;
pub mod params;
pub mod redact;
pub mod summary;
pub mod text;
pub mod threaded;
pub mod wrap;

use crate::anomaly::AnomalyKind;
use crate::pgwire::{Dir, Msg};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io;

/// Figures about the whole run, for the closing summary.
#[derive(Default, Debug, Clone)]
pub struct RunStats {
    pub packets: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub tcp: crate::tcp::TcpStats,
    pub messages: u64,
    pub anomalies: u64,
    pub warnings: Vec<String>,
    /// Earliest and latest packet times (ns), for the summary's time span.
    pub span: Option<(i64, i64)>,
}

impl RunStats {
    #[inline]
    pub fn saw(&mut self, ts: i64) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(ts), b.max(ts)),
            None => (ts, ts),
        });
    }
}

/// An anomaly as presenters see it.
pub struct AnomalyView<'a> {
    pub kind: AnomalyKind,
    pub dir: Option<Dir>,
    pub message: &'a str,
}

/// An anomaly kept to be handed on later by presenters that hold records: the
/// formatting thread's queue, the pooler.
pub struct OwnedAnomaly {
    conn: Option<ConnMeta>,
    ts: i64,
    kind: AnomalyKind,
    dir: Option<Dir>,
    message: String,
}

impl AnomalyView<'_> {
    pub fn owned(&self, conn: Option<&ConnMeta>, ts: i64) -> OwnedAnomaly {
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
    pub fn replay<S: Sink + ?Sized>(self, sink: &mut S) -> io::Result<()> {
        let view = AnomalyView {
            kind: self.kind,
            dir: self.dir,
            message: &self.message,
        };
        sink.anomaly(self.conn.as_ref(), self.ts, &view)
    }
}

pub trait Sink {
    /// Whether `message` should be called at all (decoding is cheaper without).
    fn wants_messages(&self) -> bool {
        false
    }
    fn message(&mut self, _conn: &ConnMeta, _ts: i64, _msg: &Msg<'_>) -> io::Result<()> {
        Ok(())
    }
    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()>;
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
    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()>;
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
    /// A decoding shard's hand-over to the merging writer, for the pipeline to number
    /// events and end rounds (`--threads`).
    fn threaded(&mut self) -> Option<&mut threaded::Threaded> {
        None
    }
    fn finish(&mut self, run: &RunStats) -> io::Result<()>;
}

/// Optional-string equality for the checks made on every record, through
/// [`eq_bytes`](crate::text::eq_bytes) (no `memcmp` call for short names).
pub fn same(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => crate::text::eq_bytes(a.as_bytes(), b.as_bytes()),
        (None, None) => true,
        _ => false,
    }
}

pub fn dir_str(d: Dir) -> &'static str {
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
