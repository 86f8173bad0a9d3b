//! TCP connections: a flow table and per-direction reassembly.
//!
//! In-order payload (the common case) goes to the handler straight from the frame.
//! Only segments that arrive ahead of a hole are copied, up to a per-connection and a
//! global cap; a hole that cannot be filled becomes an explicit gap.

mod community_id;

pub(crate) use community_id::community_id;

use crate::net::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN, Segment};
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Which end sent the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client (the SYN sender; without a handshake, judged by port or payload).
    Client,
    /// The server.
    Server,
}

/// What a payload's bytes alone say about who sent it: how a connection whose
/// handshake was not captured, or that is on no server port, is told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Nothing conclusive.
    Unknown,
    /// A packet a client opens a connection with (startup, SSL or cancel request).
    Startup,
    /// Whole messages only a client sends.
    Client,
    /// Whole messages only a server sends.
    Server,
}

/// What is known of a connection when it is first seen; never changes afterwards.
#[derive(Clone, Debug)]
pub struct ConnMeta {
    /// Sequential within a run, starting at 1.
    pub id: u64,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Server address and port.
    pub server: (IpAddr, u16),
    /// Time of the first packet, ns since the Unix epoch.
    pub start_ns: i64,
    /// No handshake and no startup packet seen: the capture joined a running connection.
    pub midstream: bool,
    /// The Community ID v1 flow hash (`1:` + base64).
    pub community_id: String,
}

#[cfg(test)]
impl ConnMeta {
    /// Connection `id` from 10.0.0.<id>:40000+<id> to 10.0.0.254:5432, for tests of
    /// the stages that receive it.
    pub(crate) fn for_test(id: u64) -> ConnMeta {
        use std::net::Ipv4Addr;
        ConnMeta {
            id,
            client: (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)),
                40000 + id as u16,
            ),
            server: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)), 5432),
            start_ns: 0,
            midstream: false,
            community_id: String::new(),
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Closed with a FIN.
    Fin,
    /// A reset.
    Rst,
    /// Idle longer than the timeout.
    Idle,
    /// The table was full; the least recently active connections went first.
    Evicted,
    /// Still open when the capture ended.
    EndOfCapture,
}

impl CloseReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Fin => "fin",
            CloseReason::Rst => "rst",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::EndOfCapture => "end_of_capture",
        }
    }
}

/// The next stage. `T` is its per-connection state, stored in the flow table so that a
/// packet costs one hash lookup.
pub trait Handler<T> {
    /// Who sent `payload`, judged by its shape: decides the roles (and whether to
    /// track at all) when the ports do not.
    fn shape(&self, payload: &[u8]) -> Shape;
    /// A new connection: returns the handler's state for it.
    fn open(&mut self, meta: &ConnMeta) -> T;
    /// In-order payload. `acked`: how far into the other direction's stream (bytes
    /// handed on, gaps included) this segment's ACK reaches: what the sender had
    /// received when it sent it.
    fn data(
        &mut self,
        meta: &ConnMeta,
        state: &mut T,
        side: Side,
        ts: i64,
        data: &[u8],
        acked: Option<u64>,
    );
    /// `bytes` of `side`'s stream that will never come (lost or not captured).
    fn gap(&mut self, meta: &ConnMeta, state: &mut T, side: Side, ts: i64, bytes: u64);
    /// A retransmission carried `bytes` that differ from the copy already handed
    /// on (which stands): a broken stack, a middlebox or an evasion attempt.
    fn conflict(&mut self, _meta: &ConnMeta, _state: &mut T, _side: Side, _ts: i64, _bytes: u64) {}
    /// The connection ended; its state is handed back.
    fn close(&mut self, meta: &ConnMeta, state: T, ts: i64, reason: CloseReason);
}

/// Caps on what the flow table holds.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections followed at once; beyond, the least recently active go first.
    pub max_connections: usize,
    /// Out-of-order bytes held per connection (both directions).
    pub max_conn_buffer: usize,
    /// Out-of-order bytes held by all connections together.
    pub max_total_buffer: usize,
    /// A connection idle this long (ns) is closed (`--idle-timeout`).
    pub idle_timeout_ns: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_conn_buffer: 256 << 10,
            max_total_buffer: 16 << 20,
            idle_timeout_ns: 15 * 60 * 1_000_000_000,
        }
    }
}

/// Figures of the TCP stage.
#[derive(Default, Clone, Debug)]
pub struct TcpStats {
    pub(crate) segments: u64,
    pub(crate) connections: u64,
    /// Gaps in the streams (data never seen).
    pub gaps: u64,
    pub(crate) gap_bytes: u64,
    pub(crate) out_of_order: u64,
    pub(crate) retransmitted_bytes: u64,
    /// Retransmitted segments whose bytes differ from the copy handed on, and
    /// how many bytes differed.
    pub(crate) conflicts: u64,
    pub(crate) conflict_bytes: u64,
    pub(crate) evicted: u64,
    pub(crate) idle_closed: u64,
    /// Peak of buffered out-of-order bytes.
    pub(crate) peak_buffered: usize,
    /// Packets stamped earlier than one before them, and the largest step back.
    pub(crate) clock_backwards: u64,
    pub(crate) clock_backwards_max_ns: i64,
}

/// A jump forward larger than this is not a hole to wait for but a lost stretch.
const MAX_HOLE: u32 = 16 << 20;
/// A segment that acknowledges bytes of the other direction not seen yet waits this
/// long (capture time) for them before they are declared lost.
const HOLD_NS: i64 = 200_000_000;
/// Segments waiting so per connection, at most (then the oldest is let go).
const MAX_HELD: usize = 64;
const SWEEP_INTERVAL_NS: i64 = 10 * 1_000_000_000;

/// A connection's endpoints in canonical order, as plain integers: hashed and
/// compared on every packet, so no enum walks (IPv4 as IPv4-mapped IPv6).
type Key = (u128, u128, u32);

#[derive(Default)]
struct Half {
    /// Next expected sequence number, once known.
    next: Option<u32>,
    /// Bytes handed on so far, gaps included: the stream offset of `next`.
    delivered: u64,
    /// Segments of this direction held back, in capture order, because they
    /// acknowledge bytes of the other direction that were not handed on yet: the
    /// sender had received them, so what they answer must not come first.
    held: std::collections::VecDeque<Held>,
    held_bytes: usize,
    /// Segments ahead of `next`, sorted by their distance from it.
    ooo: Vec<Queued>,
    ooo_bytes: usize,
    fin: bool,
    /// Payload of this direction was seen: a SYN no longer moves `next`.
    started: bool,
    /// The last bytes handed on (at most `TAIL`, none across a gap): what a
    /// retransmission is compared with.
    tail: Tail,
}

/// Bytes of each direction kept to compare retransmissions with: a retransmission
/// repeats the last unacknowledged segment(s), and 256 bytes per direction keep
/// the cost per connection small. Differences before them go unnoticed.
const TAIL: usize = 256;

/// The last `TAIL` bytes handed on, in a ring: a delivery writes over the oldest
/// instead of shifting the kept ones forward (it was a fifth of a segment's cost).
#[derive(Default)]
struct Tail {
    /// `TAIL` bytes once anything was kept.
    ring: Vec<u8>,
    /// Where the next byte goes.
    end: usize,
    /// Bytes kept, at most `TAIL`.
    len: usize,
}

impl Tail {
    /// Always inlined: the hint alone left it a call on every delivery.
    #[inline(always)]
    fn push(&mut self, data: &[u8]) {
        let keep = &data[data.len().saturating_sub(TAIL)..];
        if self.ring.is_empty() {
            self.ring = vec![0; TAIL];
        }
        let (wrapped, first) = keep.split_at(keep.len().min(TAIL - self.end));
        self.ring[self.end..self.end + wrapped.len()].copy_from_slice(wrapped);
        // Most deliveries do not wrap: no second copy call then.
        if !first.is_empty() {
            self.ring[..first.len()].copy_from_slice(first);
        }
        self.end = (self.end + keep.len()) % TAIL;
        self.len = (self.len + keep.len()).min(TAIL);
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// The byte `back` places before the end (1: the last one kept).
    fn back(&self, back: usize) -> u8 {
        self.ring[(self.end + TAIL - back) % TAIL]
    }
}

/// A segment ahead of a hole: its sequence number, capture time (what its bytes
/// are stamped with when they go on), how far its ACK reached and payload.
type Queued = (u32, i64, Option<u64>, Vec<u8>);

/// A segment held back until the other direction catches up with its ACK.
struct Held {
    ts: i64,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
    missing: u32,
}

impl Held {
    fn segment(&self) -> Segment<'_> {
        Segment {
            src: IpAddr::from([0u8; 4]),
            dst: IpAddr::from([0u8; 4]),
            sport: 0,
            dport: 0,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            payload: &self.payload,
            missing: self.missing,
        }
    }
}

/// How many bytes of `peer`'s stream `ack` acknowledges beyond what was handed on
/// (its FIN counts one); 0 when nothing is missing or the peer's sequence is unknown.
fn acked_ahead(peer: &Half, ack: u32) -> u64 {
    let Some(next) = peer.next else {
        return 0;
    };
    let ahead = seq_diff(ack, next) - i64::from(peer.fin);
    if ahead > 0 && ahead <= i64::from(MAX_HOLE) {
        ahead as u64
    } else {
        0
    }
}

/// The stream offset of `peer` that `ack` reaches, if the peer's sequence is known.
fn acked_offset(peer: &Half, ack: u32) -> Option<u64> {
    let next = peer.next?;
    let d = seq_diff(ack, next) - i64::from(peer.fin);
    Some(
        peer.delivered
            .saturating_add_signed(d.min(i64::from(MAX_HOLE))),
    )
}

struct Flow<T> {
    meta: ConnMeta,
    client_half: Half,
    server_half: Half,
    last_ns: i64,
    state: T,
}

impl<T> Flow<T> {
    /// Runs `f` on both halves with the reassembly context of this flow.
    fn with_ctx<H: Handler<T>>(
        &mut self,
        h: &mut H,
        stats: &mut TcpStats,
        buffered: &mut usize,
        limits: &Limits,
        ts: i64,
        f: impl FnOnce(&mut Ctx<'_, T, H>, &mut Half, &mut Half),
    ) {
        let Flow {
            meta,
            state,
            client_half,
            server_half,
            ..
        } = self;
        let mut ctx = Ctx {
            meta,
            state,
            handler: h,
            stats,
            buffered,
            limits,
            ts,
            acked_now: None,
        };
        f(&mut ctx, client_half, server_half);
    }

    /// Gives up on the holes of both directions (close, buffer pressure).
    fn flush_both<H: Handler<T>>(
        &mut self,
        h: &mut H,
        stats: &mut TcpStats,
        buffered: &mut usize,
        limits: &Limits,
        ts: i64,
    ) {
        self.with_ctx(h, stats, buffered, limits, ts, |ctx, client, server| {
            ctx.release_all(client, server);
            ctx.flush(client, Side::Client);
            ctx.flush(server, Side::Server);
        });
    }
}

/// The connections being followed, keyed by their 4-tuple.
pub struct FlowTable<T> {
    /// Boxed: a flow with its handler state is about a kilobyte, and the table's
    /// spare and (while growing) doubled slots should cost a pointer, not that.
    flows: FxHashMap<Key, Box<Flow<T>>>,
    ports: Vec<u16>,
    limits: Limits,
    next_id: u64,
    buffered: usize,
    /// When idle connections are looked for next (capture time), and how often:
    /// kept rather than worked out on every packet.
    next_sweep_ns: i64,
    sweep_interval: i64,
    /// The latest capture time seen: idle expiry follows it, so one packet stamped
    /// in the past cannot make a busy connection look idle.
    clock: i64,
    /// Its figures so far.
    pub stats: TcpStats,
}

fn key_of(seg: &Segment<'_>) -> Key {
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    };
    let (a, b) = ((bits(seg.src), seg.sport), (bits(seg.dst), seg.dport));
    let ((x, xp), (y, yp)) = if a <= b { (a, b) } else { (b, a) };
    (x, y, u32::from(xp) << 16 | u32::from(yp))
}

/// Signed distance from `from` to `to` in sequence space (wraps at 2^32).
fn seq_diff(to: u32, from: u32) -> i64 {
    to.wrapping_sub(from) as i32 as i64
}

impl<T> FlowTable<T> {
    /// An empty table; `ports` are the server ports (`--port`), which set the roles.
    pub fn new(ports: Vec<u16>, limits: Limits) -> Self {
        // Idle connections are looked for every 10 s, more often with an idle
        // timeout under 40 s, so one ends at most a quarter of its timeout late.
        let interval = SWEEP_INTERVAL_NS.min(limits.idle_timeout_ns / 4);
        FlowTable {
            flows: FxHashMap::default(),
            ports,
            limits,
            next_id: 1,
            buffered: 0,
            next_sweep_ns: i64::MIN.saturating_add(interval),
            sweep_interval: interval,
            clock: i64::MIN,
            stats: TcpStats::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// No connection followed (the reassembly fuzz target's check after `close_all`).
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Bytes held in out-of-order queues right now.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Takes one segment captured at `ts`: reassembles it and calls `h` for what follows.
    pub fn process<H: Handler<T>>(&mut self, seg: &Segment<'_>, ts: i64, h: &mut H) {
        self.stats.segments += 1;
        if ts < self.clock {
            self.stats.clock_backwards += 1;
            self.stats.clock_backwards_max_ns =
                self.stats.clock_backwards_max_ns.max(self.clock - ts);
        }
        self.clock = self.clock.max(ts);
        if self.clock >= self.next_sweep_ns {
            self.next_sweep_ns = self.clock.saturating_add(self.sweep_interval);
            self.sweep_idle(self.clock, h);
        }
        let key = key_of(seg);
        // One lookup for a known flow (nearly every segment); a new one is looked up
        // again once inserted.
        if !self.known(seg, ts, h, key) && self.open_flow(seg, ts, h, key) {
            self.known(seg, ts, h, key);
        }
    }

    /// Time passes with no packet (live capture, by the wall clock): idle connections
    /// expire as if a packet had come at `now`. The packet clock stays as it is, so a
    /// packet stamped before `now` and still on its way is not counted as the clock
    /// going backwards.
    pub(crate) fn tick<H: Handler<T>>(&mut self, now: i64, h: &mut H) {
        if now > self.clock && now >= self.next_sweep_ns {
            self.next_sweep_ns = now.saturating_add(self.sweep_interval);
            self.sweep_idle(now, h);
        }
    }

    /// Starts tracking the flow of `seg` if it is worth it; whether it did.
    fn open_flow<H: Handler<T>>(
        &mut self,
        seg: &Segment<'_>,
        ts: i64,
        h: &mut H,
        key: Key,
    ) -> bool {
        let Some(meta) = self.classify(seg, ts, h) else {
            return false;
        };
        if self.flows.len() >= self.limits.max_connections {
            self.evict_oldest(ts, h);
        }
        self.stats.connections += 1;
        let state = h.open(&meta);
        let flow = Box::new(Flow {
            meta,
            client_half: Half::default(),
            server_half: Half::default(),
            last_ns: self.clock.max(ts),
            state,
        });
        self.flows.insert(key, flow);
        true
    }

    /// A segment of a tracked flow; false if the flow is not tracked.
    fn known<H: Handler<T>>(&mut self, seg: &Segment<'_>, ts: i64, h: &mut H, key: Key) -> bool {
        let Some(flow) = self.flows.get_mut(&key) else {
            return false;
        };
        // A new SYN on a finished flow is port reuse: end the old connection first.
        if seg.has(FLAG_SYN) && !seg.has(FLAG_ACK) && flow.client_half.fin {
            if let Some(old) = self.flows.remove(&key) {
                self.finish(*old, ts, CloseReason::Fin, h);
            }
            self.process(seg, ts, h);
            return true;
        }
        // `process` moved the clock to this packet's time if it was later.
        flow.last_ns = self.clock;
        let side = if (seg.src, seg.sport) == flow.meta.client {
            Side::Client
        } else {
            Side::Server
        };
        let Flow {
            meta,
            state,
            client_half,
            server_half,
            ..
        } = &mut **flow;
        let (this, other) = match side {
            Side::Client => (client_half, server_half),
            Side::Server => (server_half, client_half),
        };
        let mut ctx = Ctx {
            meta,
            state,
            handler: h,
            stats: &mut self.stats,
            buffered: &mut self.buffered,
            limits: &self.limits,
            ts,
            acked_now: None,
        };
        ctx.arrive(this, other, side, seg);
        if seg.has(FLAG_RST) {
            ctx.release_all(this, other);
        }
        let closed = seg.has(FLAG_RST) || (this.fin && other.fin);
        self.stats.peak_buffered = self.stats.peak_buffered.max(self.buffered);
        if closed {
            if let Some(flow) = self.flows.remove(&key) {
                let reason = if seg.has(FLAG_RST) {
                    CloseReason::Rst
                } else {
                    CloseReason::Fin
                };
                self.finish(*flow, ts, reason, h);
            }
        } else if self.buffered > self.limits.max_total_buffer {
            self.shed_buffers(ts, h);
        }
        true
    }

    /// Decides whether an unknown flow is tracked and who the client is.
    fn classify<H: Handler<T>>(&mut self, seg: &Segment<'_>, ts: i64, h: &H) -> Option<ConnMeta> {
        let syn = seg.has(FLAG_SYN);
        let on_port = |p: u16| self.ports.contains(&p);
        let shape = if syn || seg.payload.is_empty() {
            Shape::Unknown
        } else {
            h.shape(seg.payload)
        };
        let src_is_client = if syn {
            !seg.has(FLAG_ACK)
        } else if on_port(seg.dport) != on_port(seg.sport) {
            on_port(seg.dport)
        } else {
            // Both or neither on a server port: the payload's shape tells; failing
            // that, guess the higher (ephemeral) port is the client's.
            match shape {
                Shape::Startup | Shape::Client => true,
                Shape::Server => false,
                Shape::Unknown => seg.sport > seg.dport,
            }
        };
        let startup = src_is_client && shape == Shape::Startup;
        let shaped = matches!(shape, Shape::Client | Shape::Server);
        if !(on_port(seg.dport) || on_port(seg.sport) || startup || shaped) {
            return None;
        }
        if !syn && seg.payload.is_empty() && seg.missing == 0 {
            return None; // a bare ACK/FIN/RST tells nothing worth a table entry
        }
        let (client, server) = if src_is_client {
            ((seg.src, seg.sport), (seg.dst, seg.dport))
        } else {
            ((seg.dst, seg.dport), (seg.src, seg.sport))
        };
        let id = self.next_id;
        self.next_id += 1;
        Some(ConnMeta {
            id,
            community_id: community_id(client, server, 6),
            client,
            server,
            start_ns: ts,
            midstream: !(syn || startup),
        })
    }

    fn finish<H: Handler<T>>(
        &mut self,
        mut flow: Flow<T>,
        ts: i64,
        reason: CloseReason,
        h: &mut H,
    ) {
        flow.flush_both(h, &mut self.stats, &mut self.buffered, &self.limits, ts);
        h.close(&flow.meta, flow.state, ts, reason);
    }

    fn sweep_idle<H: Handler<T>>(&mut self, ts: i64, h: &mut H) {
        // Segments held back too long: what they wait for is not coming.
        for flow in self.flows.values_mut() {
            if flow.client_half.held.is_empty() && flow.server_half.held.is_empty() {
                continue;
            }
            let (stats, buffered) = (&mut self.stats, &mut self.buffered);
            flow.with_ctx(
                h,
                stats,
                buffered,
                &self.limits,
                ts,
                |ctx, client, server| ctx.pump(client, server, false),
            );
        }
        let limit = ts.saturating_sub(self.limits.idle_timeout_ns);
        let mut idle: Vec<(u64, Key)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_ns < limit)
            .map(|(k, f)| (f.meta.id, *k))
            .collect();
        idle.sort_unstable();
        for (_, key) in idle {
            if let Some(flow) = self.flows.remove(&key) {
                self.stats.idle_closed += 1;
                // It ended unseen: its last packet is the last sign of it, so its
                // duration leaves the timeout out (as Zeek's inactivity timeout does).
                let last = flow.last_ns;
                self.finish(*flow, last, CloseReason::Idle, h);
            }
        }
    }

    /// Table full: closes the least recently active eighth, so the scan is amortised.
    fn evict_oldest<H: Handler<T>>(&mut self, ts: i64, h: &mut H) {
        let mut all: Vec<(i64, u64, Key)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.last_ns, f.meta.id, *k))
            .collect();
        all.sort_unstable();
        let n = (all.len() / 8).max(1);
        for (_, _, key) in all.into_iter().take(n) {
            if let Some(flow) = self.flows.remove(&key) {
                self.stats.evicted += 1;
                self.finish(*flow, ts, CloseReason::Evicted, h);
            }
        }
    }

    /// Over the global buffer cap: give up waiting on the holes of every flow.
    fn shed_buffers<H: Handler<T>>(&mut self, ts: i64, h: &mut H) {
        let mut keys: Vec<(u64, Key)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.client_half.ooo_bytes + f.server_half.ooo_bytes > 0)
            .map(|(k, f)| (f.meta.id, *k))
            .collect();
        keys.sort_unstable();
        for (_, key) in keys {
            if let Some(flow) = self.flows.get_mut(&key) {
                flow.flush_both(h, &mut self.stats, &mut self.buffered, &self.limits, ts);
            }
        }
    }

    /// Ends every connection still open (end of the capture), oldest first.
    pub fn close_all<H: Handler<T>>(&mut self, ts: i64, h: &mut H) {
        let mut flows: Vec<Box<Flow<T>>> = self.flows.drain().map(|(_, f)| f).collect();
        flows.sort_unstable_by_key(|f| f.meta.id);
        for flow in flows {
            self.finish(*flow, ts, CloseReason::EndOfCapture, h);
        }
    }
}

impl Side {
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Borrowed pieces of the table and one flow, for the reassembly steps.
struct Ctx<'a, T, H> {
    meta: &'a ConnMeta,
    state: &'a mut T,
    handler: &'a mut H,
    stats: &'a mut TcpStats,
    buffered: &'a mut usize,
    limits: &'a Limits,
    ts: i64,
    /// The stream offset of the other direction that the segment being handed on
    /// acknowledges.
    acked_now: Option<u64>,
}

impl<T, H: Handler<T>> Ctx<'_, T, H> {
    /// A segment of `this` direction arrives. It is held back while it acknowledges
    /// bytes of `other` not handed on yet (its answer must not overtake the
    /// request), and held segments of either direction go on as soon as what they
    /// acknowledge has been handed on.
    #[inline(always)]
    fn arrive(&mut self, this: &mut Half, other: &mut Half, side: Side, seg: &Segment<'_>) {
        let data = !seg.payload.is_empty() || seg.missing > 0 || seg.has(FLAG_FIN);
        let ack = seg.has(FLAG_ACK);
        // An ACK beyond the peer's next byte means the capture missed what was acked:
        // if segments after that hole are waiting, the hole will never fill.
        if ack && !other.ooo.is_empty() {
            self.acked(other, side.other(), seg.ack);
        }
        // Bytes of this direction that the other side acknowledged (in a segment
        // held back for them) are lost if this segment comes after them: then what
        // it answers is released first, and it follows.
        if data
            && let (Some(next), Some(h)) = (this.next, other.held.back())
            && seq_diff(h.ack, seg.seq) >= 0
            && seq_diff(seg.seq, next) > 0
            && seq_diff(seg.seq, next) <= i64::from(MAX_HOLE)
        {
            self.flush(this, side);
            if let Some(next) = this.next {
                let hole = seq_diff(seg.seq, next);
                if hole > 0 {
                    self.gap(this, side, hole as u64);
                }
            }
            let (client, server) = match side {
                Side::Client => (&mut *this, &mut *other),
                Side::Server => (&mut *other, &mut *this),
            };
            self.pump(client, server, false);
        }
        // Only in-order data waits: data after a hole waits in the queue anyway.
        let in_order = this
            .next
            .is_none_or(|n| seq_diff(seg.seq.wrapping_add(seg.has(FLAG_SYN) as u32), n) <= 0);
        let wait =
            data && (!this.held.is_empty() || (ack && in_order && acked_ahead(other, seg.ack) > 0));
        if !wait {
            self.acked_now = if ack {
                acked_offset(other, seg.ack)
            } else {
                None
            };
            self.segment(this, side, seg);
        } else {
            this.held_bytes += seg.payload.len();
            *self.buffered += seg.payload.len();
            this.held.push_back(Held {
                ts: self.ts,
                seq: seg.seq,
                ack: seg.ack,
                flags: seg.flags,
                payload: seg.payload.to_vec(),
                missing: seg.missing,
            });
        }
        // Bytes of this direction that a held segment of the other acknowledges
        // are not coming if they lie before data queued after a hole.
        if let Some(h) = other.held.back()
            && !this.ooo.is_empty()
        {
            let ack = h.ack;
            self.acked(this, side, ack);
        }
        if this.held.is_empty() && other.held.is_empty() {
            return;
        }
        let (client, server) = match side {
            Side::Client => (this, other),
            Side::Server => (other, this),
        };
        self.pump(client, server, false);
    }

    /// Hands on held segments whose ACK the other direction has caught up with;
    /// with `force`, also those that waited too long or too many (declaring lost
    /// what they acknowledge).
    fn pump(&mut self, client: &mut Half, server: &mut Half, force: bool) {
        loop {
            let now = self.ts;
            let c = client
                .held
                .front()
                .map(|h| (h.ts, acked_ahead(server, h.ack)));
            let s = server
                .held
                .front()
                .map(|h| (h.ts, acked_ahead(client, h.ack)));
            let over = |half: &Half, t: i64| {
                force
                    || now.saturating_sub(t) > HOLD_NS
                    || half.held.len() > MAX_HELD
                    || half.held_bytes > self.limits.max_conn_buffer
            };
            // The ready one first; else, if one must go, the older.
            let pick = match (c, s) {
                (Some((_, 0)), _) => Side::Client,
                (_, Some((_, 0))) => Side::Server,
                (Some((tc, _)), Some((ts, _))) if tc <= ts && over(client, tc) => Side::Client,
                (Some((tc, _)), Some((ts, _))) if over(server, ts) => {
                    let _ = tc;
                    Side::Server
                }
                (Some((tc, _)), None) if over(client, tc) => Side::Client,
                (None, Some((ts, _))) if over(server, ts) => Side::Server,
                _ => return,
            };
            let (this, other) = match pick {
                Side::Client => (&mut *client, &mut *server),
                Side::Server => (&mut *server, &mut *client),
            };
            let Some(h) = this.held.pop_front() else {
                return;
            };
            this.held_bytes -= h.payload.len();
            *self.buffered -= h.payload.len();
            // What it acknowledges and we never saw is lost, unless the other
            // direction is itself waiting (then capture order decides).
            let missing = acked_ahead(other, h.ack);
            if missing > 0 && other.held.is_empty() {
                self.gap(other, pick.other(), missing);
            }
            let ts = std::mem::replace(&mut self.ts, h.ts);
            self.acked_now = acked_offset(other, h.ack);
            self.segment(this, pick, &h.segment());
            self.ts = ts;
        }
    }

    /// Lets every held segment go (close, end of capture, idle sweep).
    fn release_all(&mut self, a: &mut Half, b: &mut Half) {
        if !a.held.is_empty() || !b.held.is_empty() {
            self.pump(a, b, true);
        }
    }

    fn deliver(&mut self, half: &mut Half, side: Side, data: &[u8], acked: Option<u64>) {
        if !data.is_empty() {
            self.handler
                .data(self.meta, self.state, side, self.ts, data, acked);
            half.next = half.next.map(|n| n.wrapping_add(data.len() as u32));
            half.delivered += data.len() as u64;
            half.tail.push(data);
        }
    }

    fn gap(&mut self, half: &mut Half, side: Side, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.stats.gaps += 1;
        self.stats.gap_bytes += bytes;
        self.handler
            .gap(self.meta, self.state, side, self.ts, bytes);
        half.next = half.next.map(|n| n.wrapping_add(bytes as u32));
        half.delivered += bytes;
        half.tail.clear();
    }

    /// Always inlined (into `arrive`, once per packet): as a call, with the
    /// segment and the context passed through memory, it cost ~25 instructions.
    #[inline(always)]
    fn segment(&mut self, half: &mut Half, side: Side, seg: &Segment<'_>) {
        let mut seq = seg.seq;
        if seg.has(FLAG_SYN) {
            seq = seq.wrapping_add(1);
            // A retransmitted or duplicated SYN arriving after data must not rewind
            // the stream (that re-delivered or misplaced what came since).
            if !half.started {
                half.next = Some(seq);
            }
        }
        let next = *half.next.get_or_insert(seq);
        let total = seg.payload.len() as u64 + seg.missing as u64;
        if total > 0 {
            half.started = true;
            let rel = seq_diff(seq, next);
            if rel <= 0 {
                let acked = self.acked_now;
                self.in_order(
                    half,
                    side,
                    seg.payload,
                    seg.missing as u64,
                    (-rel) as u64,
                    acked,
                );
                // Nearly always nothing is queued: no call then.
                if !half.ooo.is_empty() {
                    self.drain(half, side);
                }
            } else if rel as u64 > MAX_HOLE as u64 {
                // Far ahead: a lost stretch rather than a reordering.
                self.give_up_until(half, side, seq, seg.payload, seg.missing);
            } else {
                self.stats.out_of_order += 1;
                self.buffer(half, side, seq, seg.payload, seg.missing);
            }
        }
        if seg.has(FLAG_FIN) {
            if !half.ooo.is_empty() {
                self.flush(half, side);
            }
            half.fin = true;
        }
    }

    /// Delivers a segment that starts at or before `next`, skipping `skip` bytes already seen.
    /// Always inlined, like `segment`: six arguments made the call cost as much as
    /// the common case's work.
    #[inline(always)]
    fn in_order(
        &mut self,
        half: &mut Half,
        side: Side,
        payload: &[u8],
        missing: u64,
        skip: u64,
        acked: Option<u64>,
    ) {
        let have = payload.len() as u64;
        if skip > 0 {
            self.compare(half, side, payload, skip);
        }
        if skip >= have + missing {
            self.stats.retransmitted_bytes += have + missing;
            return;
        }
        self.stats.retransmitted_bytes += skip.min(have);
        if skip < have {
            self.deliver(half, side, &payload[skip as usize..], acked);
            self.gap(half, side, missing);
        } else {
            self.gap(half, side, missing - (skip - have));
        }
    }

    /// Compares the part of `payload` already handed on (its first `skip` bytes)
    /// with the kept tail of this direction.
    fn compare(&mut self, half: &Half, side: Side, payload: &[u8], skip: u64) {
        let tail = half.tail.len as u64;
        // Offsets back from `delivered`: the payload's old part spans
        // (skip, skip - old], the tail (tail, 0].
        let old = skip.min(payload.len() as u64);
        let from = skip.min(tail);
        let to = skip - old;
        if from <= to {
            return;
        }
        let mine = &payload[(skip - from) as usize..(skip - to) as usize];
        // The payload's i-th byte here lies `from - i` bytes back in the tail.
        let differ = (mine.iter().enumerate())
            .filter(|&(i, &a)| a != half.tail.back(from as usize - i))
            .count() as u64;
        if differ > 0 {
            self.stats.conflicts += 1;
            self.stats.conflict_bytes += differ;
            self.handler
                .conflict(self.meta, self.state, side, self.ts, differ);
        }
    }

    fn buffer(&mut self, half: &mut Half, side: Side, seq: u32, payload: &[u8], missing: u32) {
        let conn_bytes = half.ooo_bytes + payload.len();
        if conn_bytes > self.limits.max_conn_buffer || missing > 0 {
            // Over the cap (or itself incomplete): stop waiting for the hole.
            self.give_up_until(half, side, seq, payload, missing);
            return;
        }
        let next = half.next.unwrap_or(seq);
        let rel = seq_diff(seq, next);
        let pos = half
            .ooo
            .partition_point(|(s, ..)| seq_diff(*s, next) <= rel);
        half.ooo
            .insert(pos, (seq, self.ts, self.acked_now, payload.to_vec()));
        half.ooo_bytes += payload.len();
        *self.buffered += payload.len();
    }

    /// Stops waiting for the holes before `seq`, then delivers the segment at `seq`.
    /// The queued data may already reach past `seq`: that overlap is not repeated.
    fn give_up_until(
        &mut self,
        half: &mut Half,
        side: Side,
        seq: u32,
        payload: &[u8],
        missing: u32,
    ) {
        self.flush(half, side);
        let rel = seq_diff(seq, *half.next.get_or_insert(seq));
        if rel > 0 {
            self.gap(half, side, rel as u64);
        }
        let acked = self.acked_now;
        self.in_order(
            half,
            side,
            payload,
            missing as u64,
            (-rel).max(0) as u64,
            acked,
        );
    }

    /// Delivers queued segments that have become contiguous.
    fn drain(&mut self, half: &mut Half, side: Side) {
        while let Some((seq, ..)) = half.ooo.first() {
            let next = half.next.unwrap_or(*seq);
            let rel = seq_diff(*seq, next);
            if rel > 0 {
                break;
            }
            let (_, ts, acked, data) = half.ooo.remove(0);
            half.ooo_bytes -= data.len();
            *self.buffered -= data.len();
            let now = std::mem::replace(&mut self.ts, ts);
            self.in_order(half, side, &data, 0, (-rel) as u64, acked);
            self.ts = now;
        }
    }

    /// Gives up on every hole of this direction: gaps, then the queued data.
    fn flush(&mut self, half: &mut Half, side: Side) {
        while let Some((seq, ..)) = half.ooo.first() {
            let next = half.next.unwrap_or(*seq);
            let rel = seq_diff(*seq, next);
            if rel > 0 {
                self.gap(half, side, rel as u64);
            }
            self.drain(half, side);
        }
    }

    /// The peer acknowledged up to `ack`: holes before it will not be filled.
    fn acked(&mut self, half: &mut Half, side: Side, ack: u32) {
        let (Some(next), Some((first, ..))) = (half.next, half.ooo.first()) else {
            return;
        };
        if seq_diff(ack, next) > 0 && seq_diff(*first, ack) <= 0 {
            let hole = seq_diff(*first, next).max(0) as u64;
            self.gap(half, side, hole);
            self.drain(half, side);
        }
    }
}

#[cfg(test)]
mod tests;
