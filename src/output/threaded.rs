//! Records formatted on a second core: the pipeline hands finished statements,
//! sessions and anomalies over in batches, and a writer thread runs the real sink.
//! Used for record output (JSON, summary) when no per-message records are wanted,
//! since messages borrow the capture buffer.

use super::{AnomalyView, OwnedAnomaly, RunStats, Sink};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use rustc_hash::FxHashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Records per hand-over: large enough that the channel costs nothing per record.
const BATCH: usize = 512;
/// Batches in flight; the pipeline waits when the writer falls this far behind.
const IN_FLIGHT: usize = 16;

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
    /// The last item: the run's figures for the real sink's `finish`.
    Finish(Box<RunStats>),
}

/// Written statement records come back to be dropped where they were made: their
/// shared texts and parameters have counts that only that thread changes
/// (`session::shared`), and their memory is freed into the heap it came from.
type Done = Vec<Box<QueryRecord>>;

pub struct Threaded {
    tx: Option<SyncSender<Vec<Item>>>,
    done: Receiver<Done>,
    batch: Vec<Item>,
    worker: Option<JoinHandle<io::Result<()>>>,
    /// Per open connection, the origin last sent (`SessionRecord::origin`: all a
    /// statement record takes from its session).
    origins: FxHashMap<u64, Origin>,
}

impl Threaded {
    pub fn new(sink: Box<dyn Sink + Send>) -> Self {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        // Between two sends, which each take back all written records, the writer
        // can finish at most the batches in flight and the one it holds: with room
        // for those, written records are never dropped on its thread (which freed a
        // third of them across threads, bouncing the texts' counts between cores).
        let (back, done) = sync_channel(IN_FLIGHT + 2);
        let worker = std::thread::spawn(move || write_all(sink, rx, back));
        Threaded {
            tx: Some(tx),
            done,
            batch: Vec::with_capacity(BATCH),
            worker: Some(worker),
            origins: FxHashMap::default(),
        }
    }

    fn push(&mut self, item: Item) -> io::Result<()> {
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        while let Ok(done) = self.done.try_recv() {
            drop(done);
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
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

fn write_all(
    mut sink: Box<dyn Sink + Send>,
    rx: Receiver<Vec<Item>>,
    back: SyncSender<Done>,
) -> io::Result<()> {
    let mut origins: FxHashMap<u64, Origin> = FxHashMap::default();
    let mut done = Vec::with_capacity(BATCH);
    while let Ok(batch) = rx.recv() {
        for item in batch {
            match item {
                Item::Origin(o) => {
                    origins.insert(o.0.id, o);
                }
                Item::Query(q) => {
                    match origins.get(&q.conn_id) {
                        Some(o) => sink.query(&o.0, &o.1, &q)?,
                        None => debug_assert!(false, "statement before its origin"),
                    }
                    done.push(q);
                    if done.len() >= BATCH {
                        give_back(&back, &mut done);
                    }
                }
                Item::Session(b) => {
                    origins.remove(&b.0.id);
                    sink.session(&b.0, &b.1)?
                }
                Item::Anomaly(a) => super::replay_anomaly(sink.as_mut(), *a)?,
                Item::Finish(run) => {
                    give_back(&back, &mut done);
                    return sink.finish(&run);
                }
            }
        }
    }
    Ok(())
}

/// Sends written records back to the decoding thread. If its channel is full they
/// are kept for the next try: dropped here, their shared values would be leaked (see
/// `session::shared`).
fn give_back(back: &SyncSender<Done>, done: &mut Done) {
    let batch = std::mem::replace(done, Vec::with_capacity(BATCH));
    if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) = back.try_send(batch)
    {
        *done = batch;
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
        self.origins.remove(&conn.id);
        self.push(Item::Session(Box::new((conn.clone(), s.clone()))))
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        self.batch.push(Item::Finish(Box::new(run.clone())));
        self.send()?;
        self.join()
    }
}
