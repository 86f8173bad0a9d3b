//! The collector as a presenter in front of another: every record goes to the
//! collector, then on to the real sink unchanged.

use super::Collector;
use crate::output::{AnomalyView, RunStats, Sink};
use crate::pgwire::Msg;
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io::Result;
use std::ops::DerefMut;

/// Feeds `c` and passes everything on to the sink `inner` points to (a box, or a
/// borrowed sink such as the `--filter` one, so metrics count every statement).
pub struct Tee<S> {
    inner: S,
    c: Collector,
}

impl<S> Tee<S> {
    pub fn new(inner: S, c: Collector) -> Self {
        Tee { inner, c }
    }
}

impl<S: DerefMut> Sink for Tee<S>
where
    S::Target: Sink,
{
    fn wants_messages(&self) -> bool {
        self.inner.wants_messages()
    }

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> Result<()> {
        self.inner.message(conn, ts, msg)
    }

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> Result<()> {
        self.c.anomaly(conn.map(|c| c.id), a.kind);
        self.inner.anomaly(conn, ts, a)
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> Result<()> {
        self.c.query(q);
        self.inner.query(conn, s, q)
    }

    fn query_owned(&mut self, c: &ConnMeta, s: &SessionRecord, q: Box<QueryRecord>) -> Result<()> {
        self.c.query(&q);
        self.inner.query_owned(c, s, q)
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> Result<()> {
        self.c.session_closed(conn.id, s);
        self.inner.session(conn, s)
    }

    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        self.c.session_update(conn.id, s);
        self.inner.session_update(conn, s)
    }

    fn drops(&mut self, total: u64) {
        self.c.drops(total);
        self.inner.drops(total)
    }

    fn threaded(&mut self) -> Option<&mut crate::output::threaded::Threaded> {
        self.inner.threaded()
    }

    fn finish(&mut self, run: &RunStats) -> Result<()> {
        self.c.drops(run.dropped);
        self.inner.finish(run)
    }
}
