//! The collector as a presenter in front of another: every record goes to the
//! collector, then on to the real sink unchanged.

use super::Collector;
use crate::output::wrap::Wrap;
use crate::output::{AnomalyView, RunStats, Sink};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io::Result;
use std::ops::DerefMut;

/// Feeds `c` and passes everything on to the sink `inner` points to (a box, or a
/// borrowed sink such as the `--filter` one, so metrics count every statement).
pub(crate) struct Tee<S> {
    inner: S,
    c: Collector,
    /// `--pooler-port`: statements count on the client leg only (the connection to
    /// a pooler port), so that each is counted once; empty: all count.
    client_legs: Vec<u16>,
}

impl<S> Tee<S> {
    /// Feeds `c` with what passes through to `inner`.
    pub(crate) fn new(inner: S, c: Collector) -> Self {
        Tee {
            inner,
            c,
            client_legs: Vec::new(),
        }
    }

    /// Counts statements only on connections to these (pooler) ports.
    pub(crate) fn client_legs(mut self, pooler_ports: Vec<u16>) -> Self {
        self.client_legs = pooler_ports;
        self
    }
}

impl<S: DerefMut> Wrap for Tee<S>
where
    S::Target: Sink,
{
    crate::output::wrap::inner_deref!();

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> Result<()> {
        self.c.anomaly(conn.map(|c| c.id), a.kind);
        self.inner.anomaly(conn, ts, a)
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> Result<()> {
        if q.counted_once(conn, &self.client_legs) {
            self.c.query(q);
        }
        self.inner.query(conn, s, q)
    }

    fn query_owned(&mut self, c: &ConnMeta, s: &SessionRecord, q: Box<QueryRecord>) -> Result<()> {
        if q.counted_once(c, &self.client_legs) {
            self.c.query(&q);
        }
        self.inner.query_owned(c, s, q)
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> Result<()> {
        self.c.session_closed(conn.id, s);
        self.inner.session(conn, s)
    }

    fn session_owned(&mut self, conn: &ConnMeta, s: SessionRecord) -> Result<()> {
        self.c.session_closed(conn.id, &s);
        self.inner.session_owned(conn, s)
    }

    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        self.c.session_update(conn.id, s);
        self.inner.session_update(conn, s)
    }

    fn drops(&mut self, total: u64) {
        self.c.drops(total);
        self.inner.drops(total)
    }

    fn finish(&mut self, run: &RunStats) -> Result<()> {
        self.c.drops(run.dropped);
        self.inner.finish(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::Arc;

    struct Nothing;
    impl Sink for Nothing {
        fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, _: &AnomalyView<'_>) -> Result<()> {
            Ok(())
        }
        fn query(&mut self, _: &ConnMeta, _: &SessionRecord, _: &QueryRecord) -> Result<()> {
            Ok(())
        }
        fn session(&mut self, _: &ConnMeta, _: &SessionRecord) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &RunStats) -> Result<()> {
            Ok(())
        }
    }

    /// With pooler ports, the server leg (a connection to 5432) is not counted.
    #[test]
    fn pooled_statements_count_once_on_the_client_leg() {
        for (ports, want) in [(vec![], "1"), (vec![6432], "0"), (vec![5432], "1")] {
            let m = Arc::new(Metrics::new());
            let mut tee =
                Tee::new(Box::new(Nothing), Collector::new(m.clone(), 10)).client_legs(ports);
            let mut q = QueryRecord::new(1, crate::session::record::Protocol::Simple, 0);
            q.outcome = crate::session::record::Outcome::Success;
            Sink::query(
                &mut tee,
                &ConnMeta::for_test(1),
                &SessionRecord::default(),
                &q,
            )
            .unwrap();
            let line = m
                .encode(false)
                .lines()
                .find(|l| l.starts_with("pgscope_statements_total{outcome=\"success\"}"))
                .map(str::to_string)
                .unwrap_or_default();
            assert!(line.ends_with(&format!(" {want}")), "{line}");
        }
    }
}
