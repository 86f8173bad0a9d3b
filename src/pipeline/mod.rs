//! The one-pass pipeline: packet → segment → stream bytes → messages → records → sink.

// Query records pass through several queues; boxed, each hand-over moves a pointer
// instead of a few hundred bytes.
#![allow(clippy::vec_box)]

use crate::anomaly::AnomalyKind;
use crate::capture::Packet;
use crate::net;
use crate::output::{AnomalyView, RunStats, Sink};
use crate::pgwire::{self, Anomaly, ConnDecoder, Dir, Event};
use crate::session::record::QueryRecord;
use crate::session::{InFlight, Session, Shared, Wait};
use crate::tcp::{CloseReason, ConnMeta, FlowTable, Handler, Limits, Shape, Side};
use crate::tls;
use std::io;

pub mod live;
pub mod run;
pub mod staged;

/// Per-connection state kept in the flow table.
pub(crate) struct Conn {
    decoder: ConnDecoder,
    session: Session,
    /// From the switch to TLS on, when decrypting: both directions' stream bytes go
    /// through it and its plaintext to `decoder`.
    tls: Option<Box<tls::Conn>>,
    encryption_noted: bool,
    /// Packet time after which the sink gets the next `session_update`.
    next_update_ns: i64,
    /// Startup phases already reported (encryption known, user known, authenticated,
    /// ready).
    phase: u8,
    /// The running statement last reported to a sink that wants it (its key).
    running: Option<(i64, usize, Wait)>,
}

/// At most this often (capture time) a connection's state goes to `Sink::session_update`,
/// besides once per startup phase, so live views stay fresh at a fixed cost.
pub(crate) const UPDATE_INTERVAL_NS: i64 = 250_000_000;

/// How far through its startup a session is, to report each step once.
fn phase(s: &Session) -> u8 {
    let r = s.record();
    r.encryption.is_some() as u8
        + r.user.is_some() as u8
        + r.auth_outcome.is_some() as u8
        + r.tx_status.is_some() as u8
}

/// The stages after TCP, as the flow table's handler.
pub(crate) struct Stage<'s> {
    sink: &'s mut dyn Sink,
    want_messages: bool,
    want_running: bool,
    shared: Shared,
    queries: Vec<Box<QueryRecord>>,
    messages: u64,
    anomalies: u64,
    io_error: Option<io::Error>,
    /// `--tls-keylog`: TLS connections are decrypted with these.
    tls_keys: Option<tls::KeyFiles>,
}

/// What the capture loop feeds: [`Pipeline`] on the calling thread, or
/// [`staged::Staged`] with decoding on a thread of its own.
pub trait Feed {
    /// One captured frame.
    fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()>;
    /// A run-level warning, written as an anomaly record of `kind`.
    fn warn(&mut self, kind: AnomalyKind, message: &str) -> io::Result<()>;
    /// Packets the capture dropped: `new` since the last call, `total` so far. An
    /// anomaly record that says so (and, where there are live views, their figure).
    fn drops(&mut self, new: u64, total: u64) -> io::Result<()> {
        self.stats().dropped = total;
        self.warn(AnomalyKind::CaptureDrops, &drop_message(new, total))
    }
    /// Live capture, while no packet comes: the wall clock (less [`TICK_LAG_NS`])
    /// expires idle connections, which packet times alone never would on a quiet link.
    fn tick(&mut self, now_ns: i64) -> io::Result<()>;
    /// The run's figures, for the capture loop to add its own.
    fn stats(&mut self) -> &mut RunStats;
    /// Ends the run: closes every connection and writes the closing figures.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// How far behind the wall clock a live tick stays: packets reach the pipeline up to
/// a few hundred milliseconds after their time (libpcap's 100 ms block timeout, the
/// batch queue), and a tick must not overtake them.
pub(crate) const TICK_LAG_NS: i64 = 1_000_000_000;

impl Feed for Pipeline<'_> {
    fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        Pipeline::packet(self, pkt)
    }
    fn warn(&mut self, kind: AnomalyKind, message: &str) -> io::Result<()> {
        Pipeline::warn(self, kind, message)
    }
    fn drops(&mut self, new: u64, total: u64) -> io::Result<()> {
        self.stats.dropped = total;
        self.stage.sink.drops(total);
        Pipeline::warn(self, AnomalyKind::CaptureDrops, &drop_message(new, total))
    }
    fn tick(&mut self, now_ns: i64) -> io::Result<()> {
        self.table.tick(now_ns, &mut self.stage);
        if let Some(e) = self.stage.io_error.take() {
            return Err(e);
        }
        self.stage.sink.tick(now_ns)
    }
    fn stats(&mut self) -> &mut RunStats {
        &mut self.stats
    }
    fn finish(self: Box<Self>) -> io::Result<()> {
        Pipeline::finish(*self).map(drop)
    }
}

/// The time of a run-level anomaly: the last packet's, or the wall clock before the
/// first packet (a file corrupt from its first record, a live capture dropping from
/// the start), never the epoch.
pub(crate) fn run_ts(last_ts: Option<i64>) -> i64 {
    last_ts.unwrap_or_else(wall_ns)
}

/// The wall clock, in nanoseconds since the epoch.
pub(crate) fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The `clock_backwards` anomaly at the end of a run whose packet times went back.
pub(crate) fn clock_message(t: &crate::tcp::TcpStats) -> Option<String> {
    (t.clock_backwards > 0).then(|| {
        format!(
            "capture time went backwards {} times (at most {:.3} ms): durations are clamped at 0 and idle expiry follows the latest time seen",
            t.clock_backwards,
            t.clock_backwards_max_ns as f64 / 1e6
        )
    })
}

/// What a `capture_drops` anomaly says.
pub(crate) fn drop_message(new: u64, total: u64) -> String {
    format!("libpcap dropped {new} packets ({total} in all): connections may show gaps")
}

/// Every stage on the calling thread, from frames to a presenter.
pub struct Pipeline<'s> {
    table: FlowTable<Conn>,
    stage: Stage<'s>,
    /// The last packet's time; none before the first.
    last_ts: Option<i64>,
    pub(crate) stats: RunStats,
}

/// Who sent a segment, by its shape: a startup packet alone, or whole messages
/// only one side sends.
fn shape(p: &[u8]) -> Shape {
    if looks_like_startup(p) {
        return Shape::Startup;
    }
    match pgwire::sender_of(p) {
        Some(Dir::Frontend) => Shape::Client,
        Some(Dir::Backend) => Shape::Server,
        None => Shape::Unknown,
    }
}

/// A StartupMessage, SSLRequest, GSSENCRequest or CancelRequest alone in a segment.
fn looks_like_startup(p: &[u8]) -> bool {
    let (Some(len), Some(code)) = (p.get(0..4), p.get(4..8)) else {
        return false;
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let code = u32::from_be_bytes([code[0], code[1], code[2], code[3]]);
    len as usize == p.len()
        && (8..=10_000).contains(&len)
        && (code >> 16 == 3
            || matches!(
                code,
                pgwire::SSL_REQUEST_CODE
                    | pgwire::GSSENC_REQUEST_CODE
                    | pgwire::CANCEL_REQUEST_CODE
            ))
}

/// A frame's headers, then the flow table: the part both pipelines share.
fn to_table<T, H: Handler<T>>(table: &mut FlowTable<T>, handler: &mut H, pkt: &Packet<'_>) {
    if let Some(seg) = net::parse(pkt.linktype, pkt.data, pkt.orig_len) {
        table.process(&seg, pkt.ts_ns, handler);
    }
}

fn dir_of(side: Side) -> Dir {
    match side {
        Side::Client => Dir::Frontend,
        Side::Server => Dir::Backend,
    }
}

impl<'s> Stage<'s> {
    pub(crate) fn new(sink: &'s mut dyn Sink) -> Self {
        Stage {
            want_messages: sink.wants_messages(),
            want_running: sink.wants_running(),
            sink,
            shared: Shared::default(),
            queries: Vec::new(),
            messages: 0,
            anomalies: 0,
            io_error: None,
            tls_keys: None,
        }
    }

    /// Runs `f` on a TLS connection's decryptor, with the key logs and a sink that
    /// feeds its plaintext to the framer as if it had been the stream.
    fn with_tls(
        &mut self,
        meta: &ConnMeta,
        conn: &mut Conn,
        ts: i64,
        f: impl FnOnce(&mut tls::Conn, &mut tls::KeyFiles, &mut dyn FnMut(tls::Out<'_>)),
    ) {
        let (
            Some(mut keys),
            Conn {
                decoder,
                session,
                tls: Some(t),
                ..
            },
        ) = (self.tls_keys.take(), conn)
        else {
            return;
        };
        f(t, &mut keys, &mut |out| match out {
            tls::Out::Plain(d, p) => {
                decoder.feed(d, p, &mut |ev| self.event(meta, session, ts, ev))
            }
            tls::Out::Anomaly(d, problem, message) => {
                self.tls_anomaly(meta, ts, d, problem, &message)
            }
        });
        self.tls_keys = Some(keys);
        session.note_tls(&t.info);
    }

    fn tls_anomaly(
        &mut self,
        meta: &ConnMeta,
        ts: i64,
        dir: Dir,
        problem: tls::Problem,
        message: &str,
    ) {
        self.anomalies += 1;
        let view = AnomalyView {
            kind: problem.kind(),
            dir: Some(dir),
            message,
        };
        let r = self.sink.anomaly(Some(meta), ts, &view);
        self.check(r);
    }

    /// A run-level warning for the anomaly stream.
    pub(crate) fn warn(&mut self, ts: i64, kind: AnomalyKind, message: &str) -> io::Result<()> {
        let view = AnomalyView {
            kind,
            dir: None,
            message,
        };
        self.sink.anomaly(None, ts, &view)
    }

    fn check(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.io_error.get_or_insert(e);
        }
    }

    /// Hands finished statements to the sink.
    fn flush_queries(&mut self, meta: &ConnMeta, session: &Session) {
        let mut queries = std::mem::take(&mut self.queries);
        for q in queries.drain(..) {
            let r = self.sink.query_owned(meta, session.record(), q);
            self.check(r);
        }
        // Keep the vector's capacity for the next statements.
        self.queries = queries;
    }

    /// Requests dropped from a connection's full queue of pending operations.
    #[cold]
    fn queue_overflow(&mut self, meta: &ConnMeta, ts: i64, n: u64) {
        self.anomalies += 1;
        let message = format!(
            "{n} pending requests dropped from a full queue (a pipeline of over {} requests \
             before its answers); records are unsure until the queue empties",
            crate::session::MAX_PENDING
        );
        let view = AnomalyView {
            kind: AnomalyKind::QueueOverflow,
            dir: Some(Dir::Frontend),
            message: &message,
        };
        let r = self.sink.anomaly(Some(meta), ts, &view);
        self.check(r);
    }

    #[inline(always)]
    fn event(&mut self, meta: &ConnMeta, session: &mut Session, ts: i64, ev: Event<'_>) {
        match ev {
            Event::Msg(m) => {
                self.messages += 1;
                session.on_message(&mut self.shared, ts, m, &mut self.queries);
                if m.dir == Dir::Frontend
                    && let Some(n) = session.take_dropped_ops()
                {
                    self.queue_overflow(meta, ts, n);
                }
                if self.want_messages {
                    let r = self.sink.message(meta, ts, m);
                    self.check(r);
                }
            }
            Event::Anomaly(a) => self.framing_anomaly(meta, session, ts, *a),
        }
    }

    /// Out of the per-message path, which is then a smaller function saving fewer
    /// registers on each call.
    #[cold]
    #[inline(never)]
    fn framing_anomaly(&mut self, meta: &ConnMeta, session: &mut Session, ts: i64, a: Anomaly) {
        self.anomalies += 1;
        match a.kind {
            AnomalyKind::Resync => session.note_resync(a.dir, ts),
            AnomalyKind::Gap => session.note_gap(a.dir, ts),
            AnomalyKind::NotPostgres => session.note_not_postgres(),
            _ => {}
        }
        let view = AnomalyView {
            kind: a.kind,
            dir: Some(a.dir),
            message: &a.message,
        };
        let r = self.sink.anomaly(Some(meta), ts, &view);
        self.check(r);
    }

    /// Sharded: the cancel keys and CancelRequests just seen go to the merge stage.
    #[inline]
    fn cross_facts(&mut self) {
        // The sink is asked (a dynamic call) only once there is something to tell:
        // this runs after every event.
        if let Some(facts) = &mut self.shared.facts
            && !facts.is_empty()
            && let Some(t) = self.sink.threaded()
        {
            for f in facts.drain(..) {
                let r = t.fact(f);
                if let Err(e) = r {
                    self.io_error.get_or_insert(e);
                }
            }
        }
    }

    fn after_feed(&mut self, meta: &ConnMeta, conn: &mut Conn, ts: i64) {
        if let (false, Some(kind)) = (conn.encryption_noted, conn.decoder.encrypted()) {
            conn.encryption_noted = true;
            conn.session.note_encryption(kind);
        }
        if !self.queries.is_empty() {
            self.flush_queries(meta, &conn.session);
        }
        if ts >= conn.next_update_ns || phase(&conn.session) != conn.phase {
            conn.next_update_ns = ts.saturating_add(UPDATE_INTERVAL_NS);
            conn.phase = phase(&conn.session);
            self.sink.session_update(meta, conn.session.record());
        }
        if self.want_running {
            // One comparison per segment; the sink hears of a statement when it
            // starts, changes stage or ends.
            let now = conn.session.in_flight();
            let key = now.as_ref().map(InFlight::key);
            if key != conn.running {
                conn.running = key;
                self.sink.running(meta, now.as_ref());
            }
        }
    }
}

impl Handler<Conn> for Stage<'_> {
    fn shape(&self, payload: &[u8]) -> Shape {
        shape(payload)
    }

    fn open(&mut self, meta: &ConnMeta) -> Conn {
        let mut decoder = ConnDecoder::new(meta.midstream);
        if self.tls_keys.is_some() {
            decoder.decrypt_tls();
        }
        Conn {
            decoder,
            session: Session::new(meta.id, meta.start_ns, meta.midstream),
            tls: None,
            encryption_noted: false,
            next_update_ns: i64::MIN,
            phase: 0,
            running: None,
        }
    }

    fn data(
        &mut self,
        meta: &ConnMeta,
        conn: &mut Conn,
        side: Side,
        ts: i64,
        data: &[u8],
        acked: Option<u64>,
    ) {
        let dir = dir_of(side);
        conn.session.segment(dir, data.len(), acked);
        if conn.tls.is_some() {
            self.with_tls(meta, conn, ts, |t, keys, out| {
                t.feed(dir, data, ts, keys, out)
            });
        } else {
            let Conn {
                decoder, session, ..
            } = conn;
            decoder.feed(dir, data, &mut |ev| self.event(meta, session, ts, ev));
            if let Some(rest) = decoder.tls_handoff() {
                conn.tls = Some(Box::default());
                let data = &data[data.len() - rest..];
                self.with_tls(meta, conn, ts, |t, keys, out| {
                    t.feed(dir, data, ts, keys, out)
                });
            }
        }
        self.after_feed(meta, conn, ts);
    }

    fn gap(&mut self, meta: &ConnMeta, conn: &mut Conn, side: Side, ts: i64, bytes: u64) {
        let Conn {
            decoder, session, ..
        } = conn;
        session.lost_bytes(dir_of(side), bytes);
        let dir = dir_of(side);
        decoder.gap(dir, bytes, &mut |ev| self.event(meta, session, ts, ev));
        self.with_tls(meta, conn, ts, |t, _, out| t.gap(dir, bytes, out));
        self.after_feed(meta, conn, ts);
    }

    fn conflict(&mut self, meta: &ConnMeta, _: &mut Conn, side: Side, ts: i64, bytes: u64) {
        self.anomalies += 1;
        let message = format!(
            "a retransmission differs in {bytes} byte(s) from the copy already decoded (which \
             was kept): a broken TCP stack, a middlebox or an evasion attempt"
        );
        let view = AnomalyView {
            kind: AnomalyKind::RetransmissionConflict,
            dir: Some(dir_of(side)),
            message: &message,
        };
        let r = self.sink.anomaly(Some(meta), ts, &view);
        self.check(r);
    }

    fn close(&mut self, meta: &ConnMeta, mut conn: Conn, ts: i64, reason: CloseReason) {
        // Records held for a key are decrypted if it came; a cut record or a key
        // that never came is reported.
        self.with_tls(meta, &mut conn, ts, |t, keys, out| t.close(ts, keys, out));
        let mut session_rec = conn
            .session
            .close(&mut self.shared, ts, reason, &mut self.queries);
        let r = &session_rec;
        let bytes = r.bytes_client + r.bytes_server;
        if !r.not_postgres
            && r.encryption.is_none_or(|e| e == pgwire::Encryption::None)
            && r.messages_client + r.messages_server == 0
            && bytes > 0
        {
            // Bytes flowed (a start lost in a gap, perhaps) but not one message
            // decoded: nothing says this was PostgreSQL.
            session_rec.not_postgres = true;
            let message = format!("no PostgreSQL message in {bytes} bytes: not PostgreSQL");
            self.anomalies += 1;
            let view = AnomalyView {
                kind: AnomalyKind::NotPostgres,
                dir: None,
                message: &message,
            };
            let res = self.sink.anomaly(Some(meta), ts, &view);
            self.check(res);
        }
        for q in std::mem::take(&mut self.queries) {
            let r = self.sink.query_owned(meta, &session_rec, q);
            self.check(r);
        }
        // Another protocol on a PostgreSQL port: its anomaly record said so; a session
        // record would only be noise.
        if !session_rec.not_postgres {
            let r = self.sink.session_owned(meta, session_rec);
            self.check(r);
        }
    }
}

impl<'s> Pipeline<'s> {
    /// A pipeline writing to `sink`, with `ports` as the server ports.
    pub fn new(sink: &'s mut dyn Sink, ports: Vec<u16>, limits: Limits) -> Self {
        Pipeline {
            table: FlowTable::new(ports, limits),
            stage: Stage::new(sink),
            last_ts: None,
            stats: RunStats::default(),
        }
    }

    /// Decrypts TLS connections with the secrets of these key log files.
    pub fn decrypt_tls(&mut self, keys: tls::KeyFiles) {
        self.stage.tls_keys = Some(keys);
    }

    /// Processes one captured frame. Returns an output error (e.g. a closed pipe).
    pub fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        self.last_ts = Some(pkt.ts_ns);
        self.stats.saw(pkt.ts_ns);
        to_table(&mut self.table, &mut self.stage, pkt);
        match self.stage.io_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A run-level warning (truncated file, drops) for the anomaly stream and summary.
    pub(crate) fn warn(&mut self, kind: AnomalyKind, message: &str) -> io::Result<()> {
        self.stats.warnings.push(message.to_string());
        self.stage.warn(run_ts(self.last_ts), kind, message)
    }

    /// Ends every open connection and lets the sink write its closing output.
    pub fn finish(mut self) -> io::Result<RunStats> {
        if let Some(m) = clock_message(&self.table.stats) {
            self.warn(AnomalyKind::ClockBackwards, &m)?;
        }
        self.table
            .close_all(self.last_ts.unwrap_or(0), &mut self.stage);
        if let Some(e) = self.stage.io_error.take() {
            return Err(e);
        }
        let s = &mut self.stats;
        s.tcp = self.table.stats.clone();
        s.messages = self.stage.messages;
        s.anomalies = self.stage.anomalies;
        self.stage.sink.finish(s)?;
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::record::SessionRecord;
    use std::sync::atomic::AtomicBool;

    /// Each packet of the capture `name` (under the crate's root), in order.
    fn each_packet(name: &str, f: &mut dyn FnMut(&crate::capture::Packet<'_>)) {
        let path = format!("{}/{name}", env!("CARGO_MANIFEST_DIR"));
        let file = std::fs::File::open(&path).unwrap();
        crate::capture::read_file(&path, file, &AtomicBool::new(false), &mut |p| {
            f(&p);
            crate::capture::Flow::Continue(())
        })
        .unwrap();
    }

    /// Keeps what `session_update` reported, per connection.
    #[derive(Default)]
    struct Updates(Vec<(u64, Option<String>, Option<u8>)>, u64);

    impl Sink for Updates {
        fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, _: &AnomalyView<'_>) -> io::Result<()> {
            Ok(())
        }
        fn query(&mut self, _: &ConnMeta, _: &SessionRecord, _: &QueryRecord) -> io::Result<()> {
            self.1 += 1;
            Ok(())
        }
        fn session(&mut self, _: &ConnMeta, _: &SessionRecord) -> io::Result<()> {
            Ok(())
        }
        fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
            self.0.push((conn.id, s.user.clone(), s.tx_status));
        }
        fn finish(&mut self, _: &RunStats) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn open_sessions_are_reported_now_and_then() {
        let mut sink = Updates::default();
        let mut pipe = Pipeline::new(&mut sink, vec![5432], Limits::default());
        each_packet("captures/external/zeek/greenhouse-app.pcap", &mut |p| {
            pipe.packet(p).unwrap();
        });
        drop(pipe);
        // Each of the two connections is reported with its user and, once ready, its
        // transaction status; far fewer times than it has statements (84).
        for conn in [1, 2] {
            let mine: Vec<_> = sink.0.iter().filter(|u| u.0 == conn).collect();
            assert!(
                mine.iter()
                    .any(|u| u.1.as_deref() == Some("user") && u.2.is_some())
            );
            assert!(mine.len() >= 3, "{mine:?}");
        }
        assert!(sink.0.len() < sink.1 as usize, "{} updates", sink.0.len());
    }

    /// Keeps the anomalies and drop figures it is given.
    #[derive(Default)]
    struct Drops(Vec<(AnomalyKind, String)>, Vec<u64>, Option<u64>);

    impl Sink for Drops {
        fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, a: &AnomalyView<'_>) -> io::Result<()> {
            self.0.push((a.kind, a.message.to_string()));
            Ok(())
        }
        fn query(&mut self, _: &ConnMeta, _: &SessionRecord, _: &QueryRecord) -> io::Result<()> {
            Ok(())
        }
        fn session(&mut self, _: &ConnMeta, _: &SessionRecord) -> io::Result<()> {
            Ok(())
        }
        fn drops(&mut self, total: u64) {
            self.1.push(total);
        }
        fn finish(&mut self, run: &RunStats) -> io::Result<()> {
            self.2 = Some(run.dropped);
            Ok(())
        }
    }

    #[test]
    fn capture_drops_are_reported_as_they_come() {
        let mut sink = Drops::default();
        let mut pipe: Box<dyn Feed> =
            Box::new(Pipeline::new(&mut sink, vec![5432], Limits::default()));
        pipe.drops(120, 120).unwrap();
        pipe.drops(30, 150).unwrap();
        pipe.finish().unwrap();
        assert_eq!(sink.1, [120, 150]);
        assert_eq!(sink.2, Some(150), "the run's figure is the last total");
        let kinds: Vec<_> = sink.0.iter().map(|a| a.0).collect();
        assert_eq!(kinds, [AnomalyKind::CaptureDrops; 2]);
        assert!(
            sink.0[1].1.contains("dropped 30 packets (150 in all)"),
            "{:?}",
            sink.0
        );
    }

    /// Keeps the close reason of every session record, and counts the statement
    /// records and those with a pooler link; shareable across threads.
    #[derive(Clone, Default)]
    struct Closes(std::sync::Arc<std::sync::Mutex<Seen>>);

    #[derive(Default)]
    struct Seen {
        closes: Vec<(u64, &'static str)>,
        queries: usize,
        linked: usize,
    }

    impl Closes {
        /// Statement records, and those linked to their other leg.
        fn counts(&self) -> (usize, usize) {
            let seen = self.0.lock().unwrap();
            (seen.queries, seen.linked)
        }
    }

    impl Sink for Closes {
        fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, _: &AnomalyView<'_>) -> io::Result<()> {
            Ok(())
        }
        fn query(&mut self, _: &ConnMeta, _: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
            let mut seen = self.0.lock().unwrap();
            seen.queries += 1;
            seen.linked += q.pooler.as_ref().is_some_and(|l| l.peer_conn_id.is_some()) as usize;
            Ok(())
        }
        fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
            let mut seen = self.0.lock().unwrap();
            seen.closes.push((conn.id, s.close_reason_str()));
            Ok(())
        }
        fn finish(&mut self, _: &RunStats) -> io::Result<()> {
            Ok(())
        }
    }

    /// A capture's packets without their FINs and RSTs (clients that vanished), into
    /// `feed`, then a tick `quiet_ns` after the last packet; the close reasons of the
    /// sessions, sorted by connection.
    fn vanished(mut feed: Box<dyn Feed + '_>, closes: &Closes, quiet_ns: i64) -> Vec<&'static str> {
        let mut last = 0;
        each_packet("captures/external/zeek/greenhouse-app.pcap", &mut |p| {
            let seg = net::parse(p.linktype, p.data, p.orig_len).unwrap();
            if seg.flags & (net::FLAG_FIN | net::FLAG_RST) == 0 {
                last = p.ts_ns;
                feed.packet(p).unwrap();
            }
        });
        feed.tick(last + quiet_ns).unwrap();
        feed.finish().unwrap();
        let mut v = closes.0.lock().unwrap().closes.clone();
        v.sort_unstable();
        v.into_iter().map(|c| c.1).collect()
    }

    const SECOND: i64 = 1_000_000_000;

    /// Longer than the capture (40 s), so only the tick can expire a connection.
    fn idle_limits() -> Limits {
        Limits {
            idle_timeout_ns: 60 * SECOND,
            ..Limits::default()
        }
    }

    #[test]
    fn a_tick_past_the_idle_timeout_ends_vanished_sessions_as_idle() {
        // Before the timeout the tick ends nothing: the capture's end does.
        for (quiet, want) in [(1, "end_of_capture"), (61, "idle")] {
            let closes = Closes::default();
            let mut sink = closes.clone();
            let pipe = Pipeline::new(&mut sink, vec![5432], idle_limits());
            assert_eq!(vanished(Box::new(pipe), &closes, quiet * SECOND), [want; 2]);
        }
    }

    /// Live, the pooler correlator holds the last statements of a burst for its
    /// window (1 s of capture time): a tick once the link has been quiet for longer
    /// hands them on, linked, before the run ends. Without it they waited for the
    /// next record.
    #[test]
    fn a_tick_hands_on_the_statements_the_pooler_correlator_holds() {
        let seen = Closes::default();
        let mut corr = crate::pooler::Correlator::new(Box::new(seen.clone()), vec![6432]);
        let mut pipe = Pipeline::new(&mut corr, vec![5432, 6432], Limits::default());
        let mut last = 0;
        each_packet("captures/pooler/transaction-addhost.pcap", &mut |p| {
            last = p.ts_ns;
            pipe.packet(p).unwrap();
        });
        let by_records = seen.counts();
        Feed::tick(&mut pipe, last + SECOND / 2).unwrap();
        assert_eq!(
            seen.counts(),
            by_records,
            "a tick inside the window frees nothing"
        );
        Feed::tick(&mut pipe, last + 3 * SECOND).unwrap();
        let by_tick = seen.counts();
        Box::new(pipe).finish().unwrap();
        let all = seen.counts();
        assert!(by_tick.0 > by_records.0, "{by_records:?} {by_tick:?}");
        assert_eq!(by_tick, all, "the tick handed on every held statement");
        assert!(all.1 > 0, "linked: {all:?}");
    }

    #[test]
    fn the_staged_and_sharded_pipelines_tick_too() {
        for shards in [1, 3] {
            let sink = Closes::default();
            let sinks = (0..shards)
                .map(|_| Box::new(sink.clone()) as Box<dyn Sink + Send>)
                .collect();
            let staged = staged::Staged::sharded(sinks, vec![5432], idle_limits());
            assert_eq!(
                vanished(Box::new(staged), &sink, 61 * SECOND),
                ["idle"; 2],
                "{shards} shards"
            );
        }
    }
}
