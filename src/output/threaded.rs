//! Records formatted on another core: the pipeline hands finished statements,
//! sessions and anomalies over in batches, and a writer thread runs the real sink.
//! Used for record output (JSON, summary) when no per-message records are wanted,
//! since messages borrow the capture buffer.
//!
//! With sharded decoding (`--threads N`), each shard thread has a [`Threaded`] of its
//! own (from [`Threaded::shards`]) and the writer merges what they hand over into
//! capture order: every item carries the number of the flow-table event that made it,
//! each shard hands over once per round of events, and the writer takes one hand-over
//! from every shard before merging them by event number. The records come out byte
//! for byte as from one thread. What crosses connections is settled here: the cancel
//! keys and CancelRequests ([`CrossFact`]) are replayed in that order, to link each
//! CancelRequest to its target and the statement it hit as one thread would.

use super::{AnomalyView, OwnedAnomaly, RunStats, Sink};
use crate::session::CrossFact;
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Records per hand-over: large enough that the channel costs nothing per record.
const BATCH: usize = 512;
/// Batches in flight; the pipeline waits when the writer falls this far behind.
const IN_FLIGHT: usize = 16;
const SHARD_IN_FLIGHT: usize = 2;

/// What a statement record needs of its connection and session.
type Origin = Arc<(ConnMeta, SessionRecord)>;

enum Item {
    /// What later statement records of a connection are written with (sent when it
    /// changes: an `Arc` cloned per record would bounce its count between cores).
    Origin(Origin),
    Query(Box<QueryRecord>),
    Session(Box<(ConnMeta, SessionRecord)>),
    /// Boxed, as every item but the smallest: items are one word, so a batch is
    /// few cache lines to hand to the other core.
    Anomaly(Box<OwnedAnomaly>),
    /// Sharded decoding: a cancel key or CancelRequest, for the merge.
    Fact(Box<CrossFact>),
    /// The last item: the run's figures for the real sink's `finish`.
    Finish(Box<RunStats>),
}

/// Written statement records come back to be dropped where they were made: their
/// shared texts and parameters have counts that only that thread changes
/// (`session::shared`), and their memory is freed into the heap it came from. So do
/// written session records and the origins the writer let go of: mimalloc frees
/// memory of another thread's heap through that heap's shared list, at several
/// times the cost (a fifth of the writer's instructions on the connect mix).
#[derive(Default)]
#[allow(
    clippy::vec_box,
    reason = "the records' own boxes, handed back to be freed"
)]
struct Done {
    queries: Vec<Box<QueryRecord>>,
    sessions: Vec<Box<(ConnMeta, SessionRecord)>>,
    origins: Vec<Origin>,
}

impl Done {
    fn new() -> Self {
        Done {
            queries: Vec::with_capacity(BATCH),
            ..Done::default()
        }
    }

    fn len(&self) -> usize {
        self.queries.len() + self.sessions.len() + self.origins.len()
    }
}

/// One hand-over: items and, with shards, each one's event number.
struct Chunk {
    items: Vec<Item>,
    seqs: Vec<u64>,
}

/// A sink that hands the records to a formatting thread running `sink`.
pub struct Threaded {
    tx: Option<SyncSender<Chunk>>,
    done: Receiver<Done>,
    chunk: Chunk,
    /// The writer thread, joined by `finish` (by the first shard's, with shards).
    worker: Option<JoinHandle<io::Result<()>>>,
    /// Per open connection, the origin last sent (user, db and app are all a
    /// statement record takes from its session).
    origins: FxHashMap<u64, Origin>,
    /// Sharded: items are numbered and handed over at the end of each round.
    sharded: bool,
    /// The number of the event being decoded (sharded).
    seq: u64,
}

impl Threaded {
    /// Starts the formatting thread, which owns `sink` from now on.
    pub fn new(sink: Box<dyn Sink + Send>) -> Self {
        Threaded::start(sink, 1).pop().expect("one")
    }

    /// One producer for each of `n` decoding shards, all into `sink` on one writer
    /// thread that merges them back into capture order.
    pub fn shards(sink: Box<dyn Sink + Send>, n: usize) -> Vec<Self> {
        Threaded::start(sink, n.max(2))
    }

    fn start(sink: Box<dyn Sink + Send>, n: usize) -> Vec<Self> {
        let (mut txs, mut rxs, mut backs, mut dones) = (vec![], vec![], vec![], vec![]);
        // A shard's hand-over is a whole round (up to a few thousand records): fewer
        // in flight keep the memory near one thread's.
        let in_flight = if n > 1 { SHARD_IN_FLIGHT } else { IN_FLIGHT };
        for _ in 0..n {
            let (tx, rx) = sync_channel(in_flight);
            // Between two sends, which each take back all written records, the writer
            // can finish at most the batches in flight and the one it holds: with room
            // for those, written records are never dropped on its thread (which freed
            // a third of them across threads, bouncing the texts' counts between cores).
            let (back, done) = sync_channel(in_flight + 2);
            txs.push(tx);
            rxs.push(rx);
            backs.push(back);
            dones.push(done);
        }
        let mut worker = Some(std::thread::spawn(move || {
            let mut w = Writer::new(sink, backs);
            if rxs.len() == 1 {
                w.one(&rxs[0])
            } else {
                w.merge(&rxs)
            }
        }));
        txs.into_iter()
            .zip(dones)
            .map(|(tx, done)| Threaded {
                tx: Some(tx),
                done,
                chunk: Chunk {
                    items: Vec::with_capacity(BATCH),
                    seqs: Vec::new(),
                },
                worker: worker.take(),
                origins: FxHashMap::default(),
                sharded: n > 1,
                seq: 0,
            })
            .collect()
    }

    fn push(&mut self, item: Item) -> io::Result<()> {
        self.chunk.items.push(item);
        if self.sharded {
            self.chunk.seqs.push(self.seq);
        } else if self.chunk.items.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Sharded: the number of the flow-table event whose records come next.
    pub(crate) fn at(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Sharded: a fact for the merge stage, with the current event's number.
    pub(crate) fn fact(&mut self, f: CrossFact) -> io::Result<()> {
        self.push(Item::Fact(Box::new(f)))
    }

    /// Sharded: the end of a round; the writer waits for every shard's hand-over.
    pub(crate) fn end_round(&mut self) -> io::Result<()> {
        self.send()
    }

    fn send(&mut self) -> io::Result<()> {
        while let Ok(done) = self.done.try_recv() {
            drop(done);
        }
        let cap = if self.sharded { 0 } else { BATCH };
        let next = Chunk {
            items: Vec::with_capacity(cap),
            seqs: Vec::new(),
        };
        let chunk = std::mem::replace(&mut self.chunk, next);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            Ok(())
        } else {
            // The writer stopped (its error is reported by finish): stop feeding it.
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()))
        }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        // Written records come back until the writer ends: dropped here, on the
        // thread that made them.
        while let Ok(done) = self.done.recv() {
            drop(done);
        }
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("output thread panicked")),
            None => Ok(()),
        }
    }

    /// Sends the connection's origin first if it is new or changed.
    fn origin(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        match self.origins.get(&conn.id) {
            Some(o) if o.1.origin_version == s.origin_version => Ok(()),
            _ => {
                let light = s.origin();
                let o = Arc::new((conn.clone(), light));
                self.origins.insert(conn.id, o.clone());
                self.push(Item::Origin(o))
            }
        }
    }
}

/// The writer thread's side: applies items to the real sink.
struct Writer {
    sink: Box<dyn Sink + Send>,
    origins: FxHashMap<u64, Origin>,
    /// Per producer, written records to give back, and where.
    done: Vec<Done>,
    back: Vec<SyncSender<Done>>,
    cancels: Cancels,
    /// Sharded: producers whose `Finish` came, and the figures summed so far.
    finished: usize,
    run: RunStats,
}

/// Cancel matching across shards, as `session` does it on one thread: keys by
/// (pid, key); per target, the CancelRequest aimed at it (by, at, event number); per
/// cancelling connection, the target found.
#[derive(Default)]
struct Cancels {
    keys: HashMap<(u32, Vec<u8>), u64>,
    pending: FxHashMap<u64, (u64, i64, u64)>,
    targets: FxHashMap<u64, Option<u64>>,
}

impl Cancels {
    fn fact(&mut self, f: CrossFact, seq: u64) {
        match f {
            CrossFact::Key { conn, pid, key } => {
                self.keys.insert((pid, key), conn);
            }
            CrossFact::Cancel { conn, pid, key, ts } => {
                let target = self.keys.get(&(pid, key)).copied();
                if let Some(t) = target {
                    self.pending.insert(t, (conn, ts, seq));
                }
                self.targets.insert(conn, target);
            }
        }
    }

    /// A statement finished by an answer after the CancelRequest aimed at its
    /// connection, with no ReadyForQuery in between, and started before it: cancelled.
    fn query(&mut self, q: &mut QueryRecord) {
        if q.finish_seq == 0 {
            return;
        }
        q.cancelled_by = None;
        if let Some(&(by, at, seq)) = self.pending.get(&q.conn_id) {
            if q.ready_seq > seq {
                self.pending.remove(&q.conn_id);
            } else if q.finish_seq > seq && q.start_ns <= at {
                q.cancelled_by = Some(by);
                self.pending.remove(&q.conn_id);
            }
        }
    }

    /// A connection closed: its key and the cancel aimed at it are forgotten.
    fn session(&mut self, s: &mut SessionRecord) {
        let id = s.conn_id;
        self.keys.retain(|_, c| *c != id);
        self.pending.remove(&id);
        if let Some(c) = &mut s.cancel_request {
            c.target_conn_id = self.targets.remove(&id).flatten();
        }
    }
}

impl Writer {
    fn new(sink: Box<dyn Sink + Send>, back: Vec<SyncSender<Done>>) -> Self {
        Writer {
            sink,
            origins: FxHashMap::default(),
            done: back.iter().map(|_| Done::new()).collect(),
            back,
            cancels: Cancels::default(),
            finished: 0,
            run: RunStats::default(),
        }
    }

    /// One producer: items in the order they come.
    fn one(&mut self, rx: &Receiver<Chunk>) -> io::Result<()> {
        while let Ok(chunk) = rx.recv() {
            for item in chunk.items {
                if self.apply(item, 0, 0)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Shards: a hand-over from each in turn, merged by event number. Items of one
    /// event all come from one shard (events are per connection), in their order.
    fn merge(&mut self, rxs: &[Receiver<Chunk>]) -> io::Result<()> {
        loop {
            let mut round = Vec::with_capacity(rxs.len());
            for rx in rxs {
                match rx.recv() {
                    Ok(c) => round.push((c.seqs.into_iter().peekable(), c.items.into_iter())),
                    // A shard stopped on an output error it reports itself.
                    Err(_) => return Ok(()),
                }
            }
            loop {
                let next = round
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, (s, _))| s.peek().map(|&seq| (seq, i)))
                    .min();
                let Some((seq, i)) = next else { break };
                let (seqs, items) = &mut round[i];
                seqs.next();
                let item = items.next().expect("one item per number");
                if self.apply(item, i, seq)? {
                    return Ok(());
                }
            }
        }
    }

    /// Hands one item to the sink; true after the last producer's `Finish`.
    fn apply(&mut self, item: Item, from: usize, seq: u64) -> io::Result<bool> {
        let sharded = self.back.len() > 1;
        match item {
            Item::Origin(o) => {
                if let Some(old) = self.origins.insert(o.0.id, o) {
                    self.done[from].origins.push(old);
                }
            }
            Item::Query(mut q) => {
                if sharded {
                    self.cancels.query(&mut q);
                }
                match self.origins.get(&q.conn_id) {
                    Some(o) => self.sink.query(&o.0, &o.1, &q)?,
                    None => debug_assert!(false, "statement before its origin"),
                }
                let done = &mut self.done[from];
                done.queries.push(q);
                if done.queries.len() >= BATCH {
                    self.give_back(from);
                }
            }
            Item::Session(mut b) => {
                let origin = self.origins.remove(&b.0.id);
                if sharded {
                    self.cancels.session(&mut b.1);
                }
                self.sink.session(&b.0, &b.1)?;
                let done = &mut self.done[from];
                done.origins.extend(origin);
                done.sessions.push(b);
                if done.len() >= BATCH {
                    self.give_back(from);
                }
            }
            Item::Anomaly(a) => a.replay(self.sink.as_mut())?,
            Item::Fact(f) => self.cancels.fact(*f, seq),
            Item::Finish(run) => {
                // The first producer's figures are the run's; the others add the
                // messages and anomalies they decoded.
                if self.finished == 0 {
                    self.run = *run;
                } else {
                    self.run.messages += run.messages;
                    self.run.anomalies += run.anomalies;
                }
                self.finished += 1;
                if self.finished == self.back.len() {
                    // The producers wait for these (they are dropping what comes back
                    // until this thread ends): sent whole, never dropped here.
                    for (back, done) in self.back.iter().zip(&mut self.done) {
                        let _ = back.send(std::mem::take(done));
                    }
                    self.sink.finish(&self.run)?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl Writer {
    /// Sends a batch of written records back to producer `from`. If its channel is
    /// full they are kept for the next try: dropped here, their shared values would
    /// be leaked (see `session::shared`).
    #[inline(never)]
    fn give_back(&mut self, from: usize) {
        let done = &mut self.done[from];
        let batch = std::mem::replace(done, Done::new());
        if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) =
            self.back[from].try_send(batch)
        {
            *done = batch;
        }
    }
}

impl Sink for Threaded {
    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        self.push(Item::Anomaly(Box::new(a.owned(conn, ts))))
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        self.query_owned(conn, s, Box::new(q.clone()))
    }

    fn query_owned(
        &mut self,
        conn: &ConnMeta,
        s: &SessionRecord,
        q: Box<QueryRecord>,
    ) -> io::Result<()> {
        self.origin(conn, s)?;
        self.push(Item::Query(q))
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        self.session_owned(conn, s.clone())
    }

    fn session_owned(&mut self, conn: &ConnMeta, s: SessionRecord) -> io::Result<()> {
        self.origins.remove(&conn.id);
        self.push(Item::Session(Box::new((conn.clone(), s))))
    }

    fn threaded(&mut self) -> Option<&mut Threaded> {
        Some(self)
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        self.push(Item::Finish(Box::new(run.clone())))?;
        self.send()?;
        self.join()
    }
}
