//! Sinks in front of another sink (redaction, `--filter`, metrics, pooler linking,
//! the "no PostgreSQL found" watch): a [`Wrap`] names its inner sink, and every
//! [`Sink`] method it does not override goes on to that sink unchanged. A wrapper
//! thus cannot forget to pass a call on (the redaction step once hid running
//! statements from the TUI that way), and a method added to `Sink` is forwarded
//! by every wrapper once it is added here.
//!
//! The methods have `Sink`'s names and signatures; the blanket `impl Sink` calls
//! them statically, so a wrapper costs the same one dynamic call per record as a
//! hand-written forward.

use super::threaded::Threaded;
use super::{AnomalyView, RunStats, Sink};
use crate::pgwire::Msg;
use crate::session::InFlight;
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::io::Result;

/// [`Wrap`]'s accessors for a wrapper generic over `S` (a box, or a borrowed
/// sink) whose field `inner` derefs to its sink.
macro_rules! inner_deref {
    () => {
        type Inner = S::Target;
        fn inner(&mut self) -> &mut S::Target {
            &mut self.inner
        }
        fn inner_ref(&self) -> &S::Target {
            &self.inner
        }
    };
}
pub(crate) use inner_deref;

/// A sink in front of [`Wrap::Inner`]. A wrapper that changes `query` changes
/// `query_owned` too: by default the owned record goes straight on.
pub(crate) trait Wrap {
    type Inner: Sink + ?Sized;
    fn inner(&mut self) -> &mut Self::Inner;
    fn inner_ref(&self) -> &Self::Inner;

    fn wants_messages(&self) -> bool {
        self.inner_ref().wants_messages()
    }
    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> Result<()> {
        self.inner().message(conn, ts, msg)
    }
    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> Result<()> {
        self.inner().anomaly(conn, ts, a)
    }
    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> Result<()> {
        self.inner().query(conn, s, q)
    }
    fn query_owned(&mut self, c: &ConnMeta, s: &SessionRecord, q: Box<QueryRecord>) -> Result<()> {
        self.inner().query_owned(c, s, q)
    }
    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> Result<()> {
        self.inner().session(conn, s)
    }
    /// Through `session` by default, so a wrapper that changes that cannot be
    /// bypassed; one that does not may hand the record straight on.
    fn session_owned(&mut self, conn: &ConnMeta, s: SessionRecord) -> Result<()> {
        Wrap::session(self, conn, &s)
    }
    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        self.inner().session_update(conn, s)
    }
    fn wants_running(&self) -> bool {
        self.inner_ref().wants_running()
    }
    fn running(&mut self, conn: &ConnMeta, now: Option<&InFlight<'_>>) {
        self.inner().running(conn, now)
    }
    fn drops(&mut self, total: u64) {
        self.inner().drops(total)
    }
    fn tick(&mut self, now_ns: i64) -> Result<()> {
        self.inner().tick(now_ns)
    }
    fn threaded(&mut self) -> Option<&mut Threaded> {
        self.inner().threaded()
    }
    fn finish(&mut self, run: &RunStats) -> Result<()> {
        self.inner().finish(run)
    }
}

impl<W: Wrap> Sink for W {
    #[inline]
    fn wants_messages(&self) -> bool {
        Wrap::wants_messages(self)
    }
    #[inline]
    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> Result<()> {
        Wrap::message(self, conn, ts, msg)
    }
    #[inline]
    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> Result<()> {
        Wrap::anomaly(self, conn, ts, a)
    }
    #[inline]
    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> Result<()> {
        Wrap::query(self, conn, s, q)
    }
    #[inline]
    fn query_owned(&mut self, c: &ConnMeta, s: &SessionRecord, q: Box<QueryRecord>) -> Result<()> {
        Wrap::query_owned(self, c, s, q)
    }
    #[inline]
    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> Result<()> {
        Wrap::session(self, conn, s)
    }
    #[inline]
    fn session_owned(&mut self, conn: &ConnMeta, s: SessionRecord) -> Result<()> {
        Wrap::session_owned(self, conn, s)
    }
    #[inline]
    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        Wrap::session_update(self, conn, s)
    }
    #[inline]
    fn wants_running(&self) -> bool {
        Wrap::wants_running(self)
    }
    #[inline]
    fn running(&mut self, conn: &ConnMeta, now: Option<&InFlight<'_>>) {
        Wrap::running(self, conn, now)
    }
    #[inline]
    fn drops(&mut self, total: u64) {
        Wrap::drops(self, total)
    }
    #[inline]
    fn tick(&mut self, now_ns: i64) -> Result<()> {
        Wrap::tick(self, now_ns)
    }
    #[inline]
    fn threaded(&mut self) -> Option<&mut Threaded> {
        Wrap::threaded(self)
    }
    #[inline]
    fn finish(&mut self, run: &RunStats) -> Result<()> {
        Wrap::finish(self, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgwire::Body;
    use std::sync::{Arc, Mutex};

    /// Every `Sink` method, as [`Recorder`] names it.
    const ALL: [&str; 13] = [
        "wants_messages",
        "message",
        "anomaly",
        "query",
        "query_owned",
        "session",
        "session_update",
        "wants_running",
        "running",
        "drops",
        "tick",
        "threaded",
        "finish",
    ];

    /// Notes every call it gets, and wants everything.
    struct Recorder(Arc<Mutex<Vec<&'static str>>>);

    impl Recorder {
        fn saw(&self, call: &'static str) -> Result<()> {
            self.0.lock().unwrap().push(call);
            Ok(())
        }
    }

    impl Sink for Recorder {
        fn wants_messages(&self) -> bool {
            self.saw("wants_messages").unwrap();
            true
        }
        fn message(&mut self, _: &ConnMeta, _: i64, _: &Msg<'_>) -> Result<()> {
            self.saw("message")
        }
        fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, _: &AnomalyView<'_>) -> Result<()> {
            self.saw("anomaly")
        }
        fn query(&mut self, _: &ConnMeta, _: &SessionRecord, _: &QueryRecord) -> Result<()> {
            self.saw("query")
        }
        fn query_owned(
            &mut self,
            _: &ConnMeta,
            _: &SessionRecord,
            _: Box<QueryRecord>,
        ) -> Result<()> {
            self.saw("query_owned")
        }
        fn session(&mut self, _: &ConnMeta, _: &SessionRecord) -> Result<()> {
            self.saw("session")
        }
        fn session_update(&mut self, _: &ConnMeta, _: &SessionRecord) {
            self.saw("session_update").unwrap();
        }
        fn wants_running(&self) -> bool {
            self.saw("wants_running").unwrap();
            true
        }
        fn running(&mut self, _: &ConnMeta, _: Option<&InFlight<'_>>) {
            self.saw("running").unwrap();
        }
        fn drops(&mut self, _: u64) {
            self.saw("drops").unwrap();
        }
        fn tick(&mut self, _: i64) -> Result<()> {
            self.saw("tick")
        }
        fn threaded(&mut self) -> Option<&mut Threaded> {
            self.saw("threaded").unwrap();
            None
        }
        fn finish(&mut self, _: &RunStats) -> Result<()> {
            self.saw("finish")
        }
    }

    /// Makes every `Sink` call once on `sink`, with records no wrapper withholds.
    fn call_everything(sink: &mut dyn Sink) {
        let conn = ConnMeta::for_test(1);
        let s = SessionRecord::default();
        let q = QueryRecord::new(1, crate::session::record::Protocol::Simple, 0);
        let msg = super::super::redact::tests::msg(Body::Query { sql: b"SELECT 1" });
        let a = AnomalyView {
            kind: crate::anomaly::AnomalyKind::Gap,
            dir: None,
            message: "m",
        };
        assert!(sink.wants_messages());
        sink.message(&conn, 0, &msg).unwrap();
        sink.anomaly(Some(&conn), 0, &a).unwrap();
        sink.query(&conn, &s, &q).unwrap();
        sink.query_owned(&conn, &s, Box::new(q.clone())).unwrap();
        sink.session_update(&conn, &s);
        assert!(sink.wants_running());
        sink.running(&conn, None);
        sink.drops(1);
        sink.tick(0).unwrap();
        assert!(sink.threaded().is_none());
        sink.session(&conn, &s).unwrap();
        sink.finish(&RunStats::default()).unwrap();
    }

    /// Each wrapper in front of a recorder passes every call on. `owned_as_query`:
    /// the wrapper judges an owned statement as a borrowed one (filter, pooler).
    #[test]
    fn every_wrapper_forwards_every_call() {
        type Make = fn(Recorder, &mut dyn FnMut(&mut dyn Sink));
        let wrappers: [(&str, bool, Make); 5] = [
            ("redact", false, |r, f| {
                f(&mut super::super::redact::Redact::new(
                    r,
                    Default::default(),
                ))
            }),
            ("noticing", false, |r, f| {
                let found = Default::default();
                f(&mut crate::hints::Noticing::new(Box::new(r), found))
            }),
            ("filtered", true, |mut r, f| {
                f(&mut super::super::filtered::Filtered::new(
                    &mut r,
                    Default::default(),
                ))
            }),
            ("tee", false, |r, f| {
                let c =
                    crate::metrics::Collector::new(Arc::new(crate::metrics::Metrics::new()), 10);
                f(&mut crate::metrics::Tee::new(Box::new(r), c).client_legs(vec![6432]))
            }),
            ("correlator", true, |r, f| {
                f(&mut crate::pooler::Correlator::new(Box::new(r), vec![6432]))
            }),
        ];
        for (name, owned_as_query, make) in wrappers {
            let calls = Arc::new(Mutex::new(Vec::new()));
            make(Recorder(calls.clone()), &mut call_everything);
            let calls = calls.lock().unwrap();
            for want in ALL {
                let want = match want {
                    "query_owned" if owned_as_query => "query",
                    w => w,
                };
                assert!(
                    calls.contains(&want),
                    "{name} did not pass {want} on: {calls:?}"
                );
            }
            let queries = calls.iter().filter(|c| c.starts_with("query")).count();
            assert_eq!(queries, 2, "{name}: {calls:?}");
        }
    }
}
