//! `--filter` for the record presenters (JSON, text, summary): statements and sessions
//! that do not match are not passed on; messages and anomalies are passed on as they are.

use super::{AnomalyView, RunStats, Sink};
use crate::filter::{Filter, SessionView, StatementView};
use crate::pgwire::Msg;
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io;

pub struct Filtered<'s> {
    inner: &'s mut dyn Sink,
    filter: Filter,
}

impl<'s> Filtered<'s> {
    pub fn new(inner: &'s mut dyn Sink, filter: Filter) -> Self {
        Filtered { inner, filter }
    }
}

impl Sink for Filtered<'_> {
    fn wants_messages(&self) -> bool {
        self.inner.wants_messages()
    }

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        self.inner.message(conn, ts, msg)
    }

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        self.inner.anomaly(conn, ts, a)
    }

    fn query(
        &mut self,
        conn: &ConnMeta,
        session: &SessionRecord,
        q: &QueryRecord,
    ) -> io::Result<()> {
        let client = conn.client.0.to_string();
        let view = StatementView {
            client: &client,
            session,
            query: q,
        };
        if self.filter.matches(&view) {
            self.inner.query(conn, session, q)
        } else {
            Ok(())
        }
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        let client = conn.client.0.to_string();
        let view = SessionView {
            client: &client,
            session: s,
        };
        if self.filter.matches(&view) {
            self.inner.session(conn, s)
        } else {
            Ok(())
        }
    }

    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        self.inner.session_update(conn, s)
    }

    fn drops(&mut self, total: u64) {
        self.inner.drops(total)
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        self.inner.finish(run)
    }
}
