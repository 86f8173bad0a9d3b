//! The pipeline cut in two after TCP: the calling thread reads packets, parses
//! headers and reassembles streams; a second thread frames, decodes and follows the
//! sessions. Stream bytes cross over in batches, in order, so every record comes out
//! exactly as from the one-thread [`Pipeline`](super::Pipeline).
//!
//! Used for offline record output, where decoding one busy thread's worth of
//! messages is what limits the rate (see docs/benchmark.md).
//!
//! With `--threads N` (N > 1) decoding is sharded by connection: a new connection
//! goes to the decoding thread with the fewest open ones ([`Spread`]), and both
//! directions of a flow to that one. Every event is numbered; each round of batches
//! goes to all shards at once, and the writer (`output::threaded`) merges their
//! records back into capture order by those numbers.

use super::{Conn, Feed, Stage, shape, to_table};
use crate::anomaly::AnomalyKind;
use crate::capture::Packet;
use crate::output::{RunStats, Sink};
use crate::tcp::{CloseReason, ConnMeta, FlowTable, Handler, Limits, Shape, Side};
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// A batch is handed over once it holds this many stream bytes or events.
const BATCH_BYTES: usize = 256 << 10;
const BATCH_EVENTS: usize = 4096;
/// Batches in all: a fixed pool going round, so memory stays at a few of them and
/// none is allocated while running (fresh large allocations are fresh pages the
/// kernel must zero). The reader waits for an empty one when the decoder is behind.
const POOL: usize = 6;
/// The same per shard when decoding is sharded: each shard's batches hold only its
/// connections' part of a round, and memory grows with the shards.
const SHARD_POOL: usize = 3;

/// What the flow table reported, in order. Connections are named by their slot in
/// the decoding thread's table (see [`Place`]).
enum Ev {
    Open(Box<ConnMeta>, u32),
    /// The next `len` bytes of the batch.
    Data {
        slot: u32,
        side: Side,
        ts: i64,
        len: u32,
        acked: Option<u64>,
    },
    Gap {
        slot: u32,
        side: Side,
        ts: i64,
        bytes: u64,
    },
    Close {
        slot: u32,
        ts: i64,
        reason: CloseReason,
    },
    /// Slot, side, time and differing bytes of a conflicting retransmission.
    Conflict(u32, Side, i64, u64),
    Warn {
        ts: i64,
        kind: AnomalyKind,
        message: String,
    },
    /// `--tls-keylog`, before any connection.
    Tls(Box<crate::tls::KeyFiles>),
    /// The last event: the reader's figures, completed and passed to `Sink::finish`.
    Finish(Box<RunStats>),
}

#[derive(Default)]
struct Batch {
    events: Vec<Ev>,
    bytes: Vec<u8>,
    /// Sharded: each event's number in the whole run.
    seqs: Vec<u64>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            events: Vec::with_capacity(BATCH_EVENTS),
            // One segment may go past the mark before the batch is sent.
            bytes: Vec::with_capacity(BATCH_BYTES + (256 << 10)),
            seqs: Vec::new(),
        }
    }
}

/// One decoding thread's hand-over.
struct ShardTx {
    batch: Batch,
    tx: Option<SyncSender<Batch>>,
    /// Batches the decoder is done with.
    empty: Receiver<Batch>,
    /// Slots of closed connections, for the next ones; and the first never used.
    free_slots: Vec<u32>,
    next_slot: u32,
}

/// Where a flow is decoded: its shard, and its slot in that shard's table of
/// connections, an index the decoding thread looks up on every event instead of
/// hashing the connection id. A closed connection's slot is reused: its `Close`
/// comes before the next `Open` in the shard's events.
#[derive(Clone, Copy)]
struct Place {
    shard: u8,
    slot: u32,
}

/// The flow table's handler on the reading side: records, does not decode. A flow's
/// entry holds its [`Place`].
struct Recorder {
    shards: Vec<ShardTx>,
    spread: Spread,
    /// The number of the last event (sharded).
    seq: u64,
    /// A shard's decoder stopped (its `tx` is gone): set where that happens, so the
    /// per-packet check reads one flag rather than every shard.
    stopped: bool,
}

impl Recorder {
    /// Inlined: called for every event, and the event is then built in place in
    /// the batch rather than moved through a call.
    #[inline(always)]
    fn push(&mut self, shard: u8, ev: Ev) {
        let n = self.shards.len();
        let b = &mut self.shards[usize::from(shard)].batch;
        b.events.push(ev);
        if n > 1 {
            self.seq += 1;
            b.seqs.push(self.seq);
        }
        if b.events.len() >= BATCH_EVENTS || b.bytes.len() >= BATCH_BYTES {
            self.send();
        }
    }

    /// Hands every shard its batch: one round.
    #[cold]
    #[inline(never)]
    fn send(&mut self) {
        for s in &mut self.shards {
            // Only a stopped decoder keeps the pool: then any batch will do.
            let next = s.empty.recv().unwrap_or_default();
            let batch = std::mem::replace(&mut s.batch, next);
            // A failed send means the decoder stopped (output error): `Staged` asks it why.
            if s.tx.as_ref().is_some_and(|tx| tx.send(batch).is_err()) {
                s.tx = None;
                self.stopped = true;
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stopped
    }
}

/// Which shard a new connection goes to: the one with the fewest open connections,
/// ties taken in turn. A hash of the addresses left a few long connections unevenly
/// spread (pgbench's four clients went three to one of two shards, which then
/// decoded five times what the other did). Decided on the reading thread, in capture
/// order, so the same on every run.
pub struct Spread {
    open: Vec<u32>,
    /// Where the search for a least-loaded shard starts next.
    next: usize,
}

impl Spread {
    /// `n` shards, 1 to 255.
    pub fn new(n: usize) -> Self {
        Spread {
            open: vec![0; n.clamp(1, 255)],
            next: 0,
        }
    }

    /// The shard of a connection opening now.
    pub fn open(&mut self) -> u8 {
        let n = self.open.len();
        let least = self.open.iter().copied().min().unwrap_or_default();
        let shard = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| self.open[i] == least)
            .unwrap_or_default();
        self.open[shard] += 1;
        self.next = (shard + 1) % n;
        // At most 255 shards (`new`).
        shard as u8
    }

    /// A connection of `shard` closed.
    pub fn close(&mut self, shard: u8) {
        if let Some(c) = self.open.get_mut(usize::from(shard)) {
            *c = c.saturating_sub(1);
        }
    }
}

impl Handler<Place> for Recorder {
    fn shape(&self, payload: &[u8]) -> Shape {
        shape(payload)
    }

    fn open(&mut self, meta: &ConnMeta) -> Place {
        let shard = self.spread.open();
        let s = &mut self.shards[usize::from(shard)];
        let slot = s.free_slots.pop().unwrap_or_else(|| {
            s.next_slot += 1;
            s.next_slot - 1
        });
        self.push(shard, Ev::Open(Box::new(meta.clone()), slot));
        Place { shard, slot }
    }

    fn data(
        &mut self,
        _: &ConnMeta,
        &mut Place { shard, slot }: &mut Place,
        side: Side,
        ts: i64,
        data: &[u8],
        acked: Option<u64>,
    ) {
        // Segments are at most a snaplen (256 KiB): no u32 overflow.
        let b = &mut self.shards[usize::from(shard)].batch;
        b.bytes.extend_from_slice(data);
        self.push(
            shard,
            Ev::Data {
                slot,
                side,
                ts,
                len: data.len() as u32,
                acked,
            },
        );
    }

    fn gap(&mut self, _: &ConnMeta, place: &mut Place, side: Side, ts: i64, bytes: u64) {
        let Place { shard, slot } = *place;
        self.push(
            shard,
            Ev::Gap {
                slot,
                side,
                ts,
                bytes,
            },
        );
    }

    fn conflict(&mut self, _: &ConnMeta, place: &mut Place, side: Side, ts: i64, bytes: u64) {
        let Place { shard, slot } = *place;
        self.push(shard, Ev::Conflict(slot, side, ts, bytes));
    }

    fn close(&mut self, _: &ConnMeta, Place { shard, slot }: Place, ts: i64, reason: CloseReason) {
        self.push(shard, Ev::Close { slot, ts, reason });
        self.shards[usize::from(shard)].free_slots.push(slot);
        self.spread.close(shard);
    }
}

/// A [`Feed`](super::Feed) that keeps capture, net and tcp on this thread and decodes on others.
pub struct Staged {
    table: FlowTable<Place>,
    rec: Recorder,
    workers: Vec<JoinHandle<io::Result<()>>>,
    /// The last packet's time; none before the first.
    last_ts: Option<i64>,
    stats: RunStats,
}

impl Staged {
    /// One decoding thread per sink (from `Threaded::shards` when more than one).
    pub fn sharded(sinks: Vec<Box<dyn Sink + Send>>, ports: Vec<u16>, limits: Limits) -> Self {
        assert!((1..=255).contains(&sinks.len()), "1 to 255 shards");
        let sharded = sinks.len() > 1;
        let mut shards = Vec::new();
        let mut workers = Vec::new();
        let pool = if sharded { SHARD_POOL } else { POOL };
        for sink in sinks {
            let (tx, rx) = sync_channel(pool);
            let (back, empty) = sync_channel(pool);
            for _ in 1..pool {
                let _ = back.send(Batch::new());
            }
            workers.push(std::thread::spawn(move || {
                decode_all(sink, rx, back, sharded)
            }));
            shards.push(ShardTx {
                batch: Batch::new(),
                tx: Some(tx),
                empty,
                free_slots: Vec::new(),
                next_slot: 0,
            });
        }
        Staged {
            table: FlowTable::new(ports, limits),
            rec: Recorder {
                spread: Spread::new(shards.len()),
                shards,
                seq: 0,
                stopped: false,
            },
            workers,
            last_ts: None,
            stats: RunStats::default(),
        }
    }

    /// Decrypts TLS connections with the secrets of these key log files (the
    /// decoding thread, where the framer is, takes them). One shard only: the key
    /// logs are read as they grow and not shared.
    pub(crate) fn decrypt_tls(&mut self, keys: crate::tls::KeyFiles) {
        assert_eq!(
            self.rec.shards.len(),
            1,
            "TLS decryption decodes on one thread"
        );
        self.rec.push(0, Ev::Tls(Box::new(keys)));
    }

    /// The decoder's output error, if it stopped on one (e.g. a closed pipe).
    fn check_stopped(&mut self) -> io::Result<()> {
        if self.rec.stopped() {
            return Err(self
                .wait()
                .err()
                .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()));
        }
        Ok(())
    }

    /// Closes the hand-over and waits for the decoding threads: the first output
    /// error, if one stopped on one.
    fn wait(&mut self) -> io::Result<()> {
        for s in &mut self.rec.shards {
            s.tx = None;
        }
        self.rec.stopped = true;
        let mut result = Ok(());
        for w in self.workers.drain(..) {
            let r = match w.join() {
                Ok(r) => r,
                Err(_) => Err(io::Error::other("decoding thread panicked")),
            };
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

impl Feed for Staged {
    /// Processes one captured frame. Returns the decoder's output error, if it
    /// stopped on one (e.g. a closed pipe).
    fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        self.last_ts = Some(pkt.ts_ns);
        self.stats.saw(pkt.ts_ns);
        to_table(&mut self.table, &mut self.rec, pkt);
        self.check_stopped()
    }

    /// A run-level warning (truncated file, drops) for the anomaly stream and summary.
    fn warn(&mut self, kind: AnomalyKind, message: &str) -> io::Result<()> {
        self.stats.warnings.push(message.to_string());
        self.rec.push(
            0,
            Ev::Warn {
                ts: super::run_ts(self.last_ts),
                kind,
                message: message.to_string(),
            },
        );
        Ok(())
    }

    /// Idle connections expire, and whatever waits in a batch goes to the decoders
    /// now rather than when the batch fills.
    fn tick(&mut self, now_ns: i64) -> io::Result<()> {
        self.table.tick(now_ns, &mut self.rec);
        if self.rec.shards.iter().any(|s| !s.batch.events.is_empty()) {
            self.rec.send();
        }
        self.check_stopped()
    }

    fn stats(&mut self) -> &mut RunStats {
        &mut self.stats
    }

    /// Ends every open connection, lets the sink write its closing output and waits
    /// for the decoding thread.
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        if let Some(m) = super::clock_message(&self.table.stats) {
            self.warn(AnomalyKind::ClockBackwards, &m)?;
        }
        self.table
            .close_all(self.last_ts.unwrap_or(0), &mut self.rec);
        let mut stats = std::mem::take(&mut self.stats);
        stats.tcp = self.table.stats.clone();
        // The first shard carries the run's figures; the others add their counts.
        self.rec.push(0, Ev::Finish(Box::new(stats)));
        for shard in 1..self.rec.shards.len() {
            self.rec.push(shard as u8, Ev::Finish(Box::default()));
        }
        self.rec.send();
        self.wait()
    }
}

/// The decoding thread: replays the flow table's events into the stages after TCP.
/// Sharded, each event's records are numbered for the merge, and each batch ends a
/// round.
fn decode_all(
    mut sink: Box<dyn Sink + Send>,
    rx: Receiver<Batch>,
    back: SyncSender<Batch>,
    sharded: bool,
) -> io::Result<()> {
    let mut stage = Stage::new(&mut *sink);
    if sharded {
        stage.shared.facts = Some(Vec::new());
    }
    // By slot (see `Place`), as many as were open at once. Boxed: at over a kilobyte
    // a `Conn`, the free slots would cost that much each.
    let mut conns: Vec<Option<Box<(ConnMeta, Conn)>>> = Vec::new();
    while let Ok(mut batch) = rx.recv() {
        let mut bytes = &batch.bytes[..];
        let mut seqs = batch.seqs.drain(..);
        for ev in batch.events.drain(..) {
            if let Some(seq) = seqs.next() {
                stage.shared.seq = seq;
                if let Some(t) = stage.sink.threaded() {
                    t.at(seq);
                }
            }
            match ev {
                Ev::Open(meta, slot) => {
                    let conn = stage.open(&meta);
                    let slot = slot as usize;
                    if conns.len() <= slot {
                        conns.resize_with(slot + 1, || None);
                    }
                    conns[slot] = Some(Box::new((*meta, conn)));
                }
                Ev::Data {
                    slot,
                    side,
                    ts,
                    len,
                    acked,
                } => {
                    let (data, rest) = bytes.split_at(len as usize);
                    bytes = rest;
                    if let Some((meta, conn)) = open_conn(&mut conns, slot) {
                        stage.data(meta, conn, side, ts, data, acked);
                    }
                }
                Ev::Gap {
                    slot,
                    side,
                    ts,
                    bytes,
                } => {
                    if let Some((meta, conn)) = open_conn(&mut conns, slot) {
                        stage.gap(meta, conn, side, ts, bytes);
                    }
                }
                Ev::Conflict(slot, side, ts, bytes) => {
                    if let Some((meta, conn)) = open_conn(&mut conns, slot) {
                        stage.conflict(meta, conn, side, ts, bytes);
                    }
                }
                Ev::Close { slot, ts, reason } => {
                    if let Some(c) = conns.get_mut(slot as usize).and_then(Option::take) {
                        let (meta, conn) = *c;
                        stage.close(&meta, conn, ts, reason);
                    }
                }
                Ev::Warn { ts, kind, message } => stage.warn(ts, kind, &message)?,
                Ev::Tls(keys) => stage.tls_keys = Some(*keys),
                Ev::Finish(mut stats) => {
                    stats.messages = stage.messages;
                    stats.anomalies = stage.anomalies;
                    return stage.sink.finish(&stats);
                }
            }
            stage.cross_facts();
            if let Some(e) = stage.io_error.take() {
                return Err(e);
            }
        }
        drop(seqs);
        if sharded && let Some(t) = stage.sink.threaded() {
            t.end_round()?;
        }
        batch.bytes.clear();
        // Back to the pool (the reader may be gone at the end: then it is dropped).
        let _ = back.send(batch);
    }
    Ok(())
}

/// The connection in `slot` of a decoding thread's table, if open.
fn open_conn(
    conns: &mut [Option<Box<(ConnMeta, Conn)>>],
    slot: u32,
) -> Option<&mut (ConnMeta, Conn)> {
    conns.get_mut(slot as usize)?.as_deref_mut()
}
