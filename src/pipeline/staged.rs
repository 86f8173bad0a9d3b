//! The pipeline cut in two after TCP: the calling thread reads packets, parses
//! headers and reassembles streams; a second thread frames, decodes and follows the
//! sessions. Stream bytes cross over in batches, in order, so every record comes out
//! exactly as from the one-thread [`Pipeline`](super::Pipeline).
//!
//! Used for offline record output, where decoding one busy thread's worth of
//! messages is what limits the rate (see docs/benchmark.md).

use super::{Conn, Feed, Stage, shape, to_table};
use crate::capture::Packet;
use crate::output::{RunStats, Sink};
use crate::tcp::{CloseReason, ConnMeta, FlowTable, Handler, Limits, Shape, Side};
use rustc_hash::FxHashMap;
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

/// What the flow table reported, in order.
enum Ev {
    Open(Box<ConnMeta>),
    /// The next `len` bytes of the batch.
    Data {
        id: u64,
        side: Side,
        ts: i64,
        len: u32,
        acked: Option<u64>,
    },
    Gap {
        id: u64,
        side: Side,
        ts: i64,
        bytes: u64,
    },
    Close {
        id: u64,
        ts: i64,
        reason: CloseReason,
    },
    Warn {
        ts: i64,
        kind: String,
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
}

impl Batch {
    fn new() -> Self {
        Batch {
            events: Vec::with_capacity(BATCH_EVENTS),
            // One segment may go past the mark before the batch is sent.
            bytes: Vec::with_capacity(BATCH_BYTES + (256 << 10)),
        }
    }
}

/// The flow table's handler on the reading side: records, does not decode.
struct Recorder {
    batch: Batch,
    tx: Option<SyncSender<Batch>>,
    /// Batches the decoder is done with.
    empty: Receiver<Batch>,
}

impl Recorder {
    fn push(&mut self, ev: Ev) {
        self.batch.events.push(ev);
        if self.batch.events.len() >= BATCH_EVENTS || self.batch.bytes.len() >= BATCH_BYTES {
            self.send();
        }
    }

    fn send(&mut self) {
        // Only a stopped decoder keeps the pool: then any batch will do.
        let next = self.empty.recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        // A failed send means the decoder stopped (output error): `Staged` asks it why.
        if self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_err()) {
            self.tx = None;
        }
    }
}

impl Handler<()> for Recorder {
    fn shape(&self, payload: &[u8]) -> Shape {
        shape(payload)
    }

    fn open(&mut self, meta: &ConnMeta) {
        self.push(Ev::Open(Box::new(meta.clone())));
    }

    fn data(
        &mut self,
        meta: &ConnMeta,
        _: &mut (),
        side: Side,
        ts: i64,
        data: &[u8],
        acked: Option<u64>,
    ) {
        // Segments are at most a snaplen (256 KiB): no u32 overflow.
        self.batch.bytes.extend_from_slice(data);
        self.push(Ev::Data {
            id: meta.id,
            side,
            ts,
            len: data.len() as u32,
            acked,
        });
    }

    fn gap(&mut self, meta: &ConnMeta, _: &mut (), side: Side, ts: i64, bytes: u64) {
        let id = meta.id;
        self.push(Ev::Gap {
            id,
            side,
            ts,
            bytes,
        });
    }

    fn close(&mut self, meta: &ConnMeta, _: (), ts: i64, reason: CloseReason) {
        let id = meta.id;
        self.push(Ev::Close { id, ts, reason });
    }
}

pub struct Staged {
    table: FlowTable<()>,
    rec: Recorder,
    worker: Option<JoinHandle<io::Result<()>>>,
    /// The last packet's time; none before the first.
    last_ts: Option<i64>,
    stats: RunStats,
}

impl Staged {
    /// Starts the decoding thread, which owns `sink` from now on.
    pub fn new(sink: Box<dyn Sink + Send>, ports: Vec<u16>, limits: Limits) -> Self {
        let (tx, rx) = sync_channel(POOL);
        let (back, empty) = sync_channel(POOL);
        for _ in 1..POOL {
            let _ = back.send(Batch::new());
        }
        let worker = std::thread::spawn(move || decode_all(sink, rx, back));
        Staged {
            table: FlowTable::new(ports, limits),
            rec: Recorder {
                batch: Batch::new(),
                tx: Some(tx),
                empty,
            },
            worker: Some(worker),
            last_ts: None,
            stats: RunStats::default(),
        }
    }

    /// Decrypts TLS connections with the secrets of these key log files (the
    /// decoding thread, where the framer is, takes them).
    pub fn decrypt_tls(&mut self, keys: crate::tls::KeyFiles) {
        self.rec.push(Ev::Tls(Box::new(keys)));
    }

    /// Closes the hand-over and waits for the decoding thread: its output error, if
    /// it stopped on one.
    fn wait(&mut self) -> io::Result<()> {
        self.rec.tx = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("decoding thread panicked")),
            None => Ok(()),
        }
    }
}

impl Feed for Staged {
    /// Processes one captured frame. Returns the decoder's output error, if it
    /// stopped on one (e.g. a closed pipe).
    fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        self.last_ts = Some(pkt.ts_ns);
        self.stats.saw(pkt.ts_ns);
        to_table(&mut self.table, &mut self.rec, pkt);
        if self.rec.tx.is_none() {
            return Err(self
                .wait()
                .err()
                .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()));
        }
        Ok(())
    }

    /// A run-level warning (truncated file, drops) for the anomaly stream and summary.
    fn warn(&mut self, kind: &str, message: &str) -> io::Result<()> {
        self.stats.warnings.push(message.to_string());
        self.rec.push(Ev::Warn {
            ts: super::run_ts(self.last_ts),
            kind: kind.to_string(),
            message: message.to_string(),
        });
        Ok(())
    }

    fn stats(&mut self) -> &mut RunStats {
        &mut self.stats
    }

    /// Ends every open connection, lets the sink write its closing output and waits
    /// for the decoding thread.
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        if let Some(m) = super::clock_message(&self.table.stats) {
            self.warn("clock_backwards", &m)?;
        }
        self.table
            .close_all(self.last_ts.unwrap_or(0), &mut self.rec);
        let mut stats = std::mem::take(&mut self.stats);
        stats.tcp = self.table.stats.clone();
        self.rec.push(Ev::Finish(Box::new(stats)));
        self.rec.send();
        self.wait()
    }
}

/// The decoding thread: replays the flow table's events into the stages after TCP.
fn decode_all(
    mut sink: Box<dyn Sink + Send>,
    rx: Receiver<Batch>,
    back: SyncSender<Batch>,
) -> io::Result<()> {
    let mut stage = Stage::new(&mut *sink);
    let mut conns: FxHashMap<u64, (Box<ConnMeta>, Conn)> = FxHashMap::default();
    while let Ok(mut batch) = rx.recv() {
        let mut bytes = &batch.bytes[..];
        for ev in batch.events.drain(..) {
            match ev {
                Ev::Open(meta) => {
                    let conn = stage.open(&meta);
                    conns.insert(meta.id, (meta, conn));
                }
                Ev::Data {
                    id,
                    side,
                    ts,
                    len,
                    acked,
                } => {
                    let (data, rest) = bytes.split_at(len as usize);
                    bytes = rest;
                    if let Some((meta, conn)) = conns.get_mut(&id) {
                        stage.data(meta, conn, side, ts, data, acked);
                    }
                }
                Ev::Gap {
                    id,
                    side,
                    ts,
                    bytes,
                } => {
                    if let Some((meta, conn)) = conns.get_mut(&id) {
                        stage.gap(meta, conn, side, ts, bytes);
                    }
                }
                Ev::Close { id, ts, reason } => {
                    if let Some((meta, conn)) = conns.remove(&id) {
                        stage.close(&meta, conn, ts, reason);
                    }
                }
                Ev::Warn { ts, kind, message } => stage.warn(ts, &kind, &message)?,
                Ev::Tls(keys) => stage.tls_keys = Some(*keys),
                Ev::Finish(mut stats) => {
                    stats.messages = stage.messages;
                    stats.anomalies = stage.anomalies;
                    return stage.sink.finish(&stats);
                }
            }
            if let Some(e) = stage.io_error.take() {
                return Err(e);
            }
        }
        batch.bytes.clear();
        // Back to the pool (the reader may be gone at the end: then it is dropped).
        let _ = back.send(batch);
    }
    Ok(())
}
