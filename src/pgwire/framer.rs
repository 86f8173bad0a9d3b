//! Per-connection framing of both directions of a PostgreSQL session.

use std::mem;

use super::Dir;
use super::message::{Body, DecodeCtx, Msg, decode, decode_startup, valid_type};

/// Default cap on one message copied into a direction's buffer.
pub const MAX_BUFFERED_MESSAGE: usize = 1 << 20;

/// Longer length fields are treated as corruption rather than a big message.
const MAX_MESSAGE_LEN: u32 = 1 << 30;
/// Largest length accepted while hunting for a boundary (and for an
/// unknown type byte to be skipped rather than resynchronised).
const HUNT_MAX_LEN: u32 = 1 << 20;
/// Unsynced bytes kept while hunting; older ones are dropped.
const HUNT_KEEP: usize = 64 << 10;
/// This many well-formed messages in a row mark a boundary.
const HUNT_CHAIN: usize = 3;
/// Candidate boundaries kept waiting for more bytes; past this, new ones are
/// judged broken (only crafted input has that many plausible headers at once).
const HUNT_WAITING: usize = 256;
/// Emptied buffers larger than this are shrunk back to it.
const KEEP_CAPACITY: usize = 64 << 10;
const STARTUP_LEN: std::ops::RangeInclusive<u32> = 8..=10000;
/// First byte of a TLS record carrying a handshake (ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;
const TYPED_HEADER: usize = 5;

pub enum Event<'a> {
    Msg(Msg<'a>),
    Anomaly(Anomaly),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub dir: Dir,
    pub kind: AnomalyKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// The TCP layer lost bytes.
    Gap,
    /// A message boundary was found again after losing sync.
    Resync,
    /// A length or body that does not parse.
    Malformed,
    /// A type byte not valid in its direction.
    UnknownMessage,
    /// TLS or GSSAPI encryption started; the rest is not decoded.
    EncryptionSwitch,
    /// A message longer than the buffer cap was not kept.
    Oversize,
    /// The connection does not speak the PostgreSQL protocol.
    NotPostgres,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Gap => "gap",
            AnomalyKind::Resync => "resync",
            AnomalyKind::Malformed => "malformed",
            AnomalyKind::UnknownMessage => "unknown_message",
            AnomalyKind::EncryptionSwitch => "encryption",
            AnomalyKind::Oversize => "oversize",
            AnomalyKind::NotPostgres => "not_postgres",
        }
    }
}

/// Byte counters for data that was seen but not decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes discarded inside a decodable stream: oversize message bodies,
    /// messages damaged by a gap, unsynced bytes before a boundary.
    pub skipped: u64,
    /// Bytes after the connection stopped being decoded (encryption, not
    /// PostgreSQL, data after a CancelRequest).
    pub ignored: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ssl,
    Gss,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Frontend expects an untyped startup-phase packet; `first` while no
    /// packet has been seen yet (decides "not PostgreSQL").
    Untyped { first: bool },
    /// Backend owes the one-byte answer to an SSLRequest/GSSENCRequest.
    Answer(Answer),
    /// At a known message boundary (or inside a message being buffered or
    /// skipped).
    Synced,
    /// Boundary unknown: bytes accumulate in `buf` until one is found.
    Hunting,
    /// Nothing more is expected (after a CancelRequest).
    Ignore,
}

struct Side {
    mode: Mode,
    /// Synced/Untyped: start of a message straddling feeds.
    /// Hunting: unsynced bytes.
    buf: Vec<u8>,
    /// Remaining bytes of an oversize message to discard.
    skip: u64,
    /// Bytes discarded since sync was lost, reported on resync.
    dropped: u64,
    hunt: Hunt,
}

/// Where the boundary search stands, so that each feed while hunting judges only
/// the new offsets instead of rescanning the whole buffer (quadratic in the
/// number of segments otherwise). Offsets count from the start of the hunt.
#[derive(Default)]
struct Hunt {
    /// Offset of `buf[0]` (bytes trimmed from the front so far).
    base: u64,
    /// Every offset below this was judged: broken, or waiting.
    scanned: u64,
    /// Offsets whose chain ran past the end of `buf`, with the end it needs.
    waiting: Vec<(u64, u64)>,
}

impl Hunt {
    /// Forgets every verdict (the decoding context changed).
    fn restart(&mut self) {
        self.scanned = self.base;
        self.waiting.clear();
    }

    /// Earliest offset into `buf` where a boundary can now be confirmed.
    fn find(&mut self, dir: Dir, buf: &[u8], ctx: &DecodeCtx) -> Option<usize> {
        let base = self.base;
        let end = base + buf.len() as u64;
        let at_rel = |at: u64| buf.get((at - base) as usize..).unwrap_or_default();
        // Waiting offsets come before any new one: the earliest confirmed wins.
        let mut best: Option<u64> = None;
        let mut waiting = mem::take(&mut self.waiting);
        waiting.retain_mut(|(at, need)| {
            if *at < base {
                return false;
            }
            if *need > end {
                return true;
            }
            match chain(dir, at_rel(*at), ctx) {
                Chain::Found => best = Some(best.map_or(*at, |b| b.min(*at))),
                Chain::Short(n) => {
                    *need = *at + n as u64;
                    return true;
                }
                Chain::Broken => {}
            }
            false
        });
        self.waiting = waiting;
        if let Some(at) = best {
            return Some((at - base) as usize);
        }
        for at in self.scanned.max(base)..end {
            match chain(dir, at_rel(at), ctx) {
                Chain::Found => return Some((at - base) as usize),
                Chain::Short(n) if self.waiting.len() < HUNT_WAITING => {
                    self.waiting.push((at, at + n as u64));
                }
                _ => {}
            }
            self.scanned = at + 1;
        }
        None
    }
}

impl Side {
    fn new(mode: Mode) -> Self {
        Side {
            mode,
            buf: Vec::new(),
            skip: 0,
            dropped: 0,
            hunt: Hunt::default(),
        }
    }

    /// Starts looking for a boundary from the first byte of `buf`.
    fn hunt(&mut self) {
        self.mode = Mode::Hunting;
        self.hunt = Hunt::default();
    }

    fn lose_sync(&mut self) {
        self.dropped += self.buf.len() as u64;
        self.buf.clear();
        self.skip = 0;
        self.hunt();
    }
}

/// Where a message being assembled currently is.
enum Whole<'d> {
    /// Entirely inside the fed data: decode from there (zero copy).
    InData(&'d [u8]),
    /// Completed in the side's buffer.
    InBuf,
    /// Still incomplete (what arrived is buffered).
    Partial,
}

/// Decoder for one TCP connection (both directions).
pub struct ConnDecoder {
    fe: Side,
    be: Side,
    ctx: DecodeCtx,
    /// Capture missed the start (or lost bytes): no startup checks.
    midstream: bool,
    seen_frontend: bool,
    stopped: bool,
    encryption: Option<&'static str>,
    protocol_minor: Option<u16>,
    max_message: usize,
    stats: Stats,
}

impl ConnDecoder {
    pub fn new(midstream: bool) -> Self {
        Self::with_max_message(midstream, MAX_BUFFERED_MESSAGE)
    }

    /// Like [`ConnDecoder::new`] with a different cap on buffered messages.
    pub fn with_max_message(midstream: bool, max_message: usize) -> Self {
        let (fe, be) = if midstream {
            (Mode::Hunting, Mode::Hunting)
        } else {
            (Mode::Untyped { first: true }, Mode::Synced)
        };
        ConnDecoder {
            fe: Side::new(fe),
            be: Side::new(be),
            ctx: DecodeCtx::default(),
            midstream,
            seen_frontend: false,
            stopped: false,
            encryption: None,
            protocol_minor: None,
            max_message: max_message.max(TYPED_HEADER),
            stats: Stats::default(),
        }
    }

    /// `Some("tls")` / `Some("gss")` once the connection switched to encryption.
    pub fn encrypted(&self) -> Option<&'static str> {
        self.encryption
    }

    /// Minor protocol version from the StartupMessage, lowered by
    /// NegotiateProtocolVersion.
    pub fn protocol_minor(&self) -> Option<u16> {
        self.protocol_minor
    }

    /// Bytes currently held in the per-direction buffers.
    pub fn buffered_bytes(&self) -> usize {
        self.fe.buf.len() + self.be.buf.len()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Feeds in-order stream bytes of one direction.
    pub fn feed(&mut self, dir: Dir, data: &[u8], sink: &mut dyn FnMut(Event<'_>)) {
        if self.stopped {
            self.stats.ignored += data.len() as u64;
            return;
        }
        if data.is_empty() {
            return;
        }
        match dir {
            Dir::Frontend => self.seen_frontend = true,
            // MySQL and others greet first; a PostgreSQL server never does.
            Dir::Backend if !self.midstream && !self.seen_frontend => {
                self.stats.ignored += data.len() as u64;
                self.stop(dir, AnomalyKind::NotPostgres, sink, || {
                    "server sent data before the client's startup packet".into()
                });
                return;
            }
            Dir::Backend => {}
        }
        self.drain(dir, data, sink);
        while let Some(replay) = self.resync(dir, sink) {
            self.drain(dir, &replay, sink);
        }
    }

    /// The TCP layer lost `missing_bytes` of `dir`: drop what depends on
    /// them. Sync is kept when the loss provably lies inside the current
    /// message; otherwise the direction hunts for a new boundary.
    pub fn gap(&mut self, dir: Dir, missing_bytes: u64, sink: &mut dyn FnMut(Event<'_>)) {
        if self.stopped {
            return;
        }
        // Without the lost bytes the startup-phase checks are meaningless.
        self.midstream = true;
        sink(Event::Anomaly(Anomaly {
            dir,
            kind: AnomalyKind::Gap,
            message: format!("{missing_bytes} bytes missing from the capture"),
        }));
        let side = match dir {
            Dir::Frontend => &mut self.fe,
            Dir::Backend => &mut self.be,
        };
        match side.mode {
            Mode::Ignore => return,
            Mode::Synced => {
                let left = if side.skip > 0 {
                    Some(side.skip)
                } else if side.buf.len() >= TYPED_HEADER {
                    // Buffered messages always have a validated header.
                    let total = u64::from(header(&side.buf, &[]).1) + 1;
                    Some(total - side.buf.len() as u64)
                } else if side.buf.is_empty() {
                    Some(0)
                } else {
                    None
                };
                if let Some(left) = left.filter(|&l| missing_bytes <= l) {
                    // The partial message is lost but the next boundary is known.
                    self.stats.skipped += side.buf.len() as u64;
                    side.buf.clear();
                    side.skip = left - missing_bytes;
                    return;
                }
            }
            _ => {}
        }
        side.lose_sync();
    }

    fn side(&self, dir: Dir) -> &Side {
        match dir {
            Dir::Frontend => &self.fe,
            Dir::Backend => &self.be,
        }
    }

    fn side_mut(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::Frontend => &mut self.fe,
            Dir::Backend => &mut self.be,
        }
    }

    fn drain(&mut self, dir: Dir, mut data: &[u8], sink: &mut dyn FnMut(Event<'_>)) {
        while !data.is_empty() {
            if self.stopped {
                self.stats.ignored += data.len() as u64;
                return;
            }
            // Each step consumes bytes or changes the mode.
            let used = match self.side(dir).mode {
                Mode::Untyped { first } => self.step_untyped(data, first, sink),
                Mode::Answer(answer) => self.step_answer(answer, data, sink),
                Mode::Synced => self.step_synced(dir, data, sink),
                Mode::Hunting => {
                    self.side_mut(dir).buf.extend_from_slice(data);
                    data.len()
                }
                Mode::Ignore => {
                    self.stats.ignored += data.len() as u64;
                    data.len()
                }
            };
            data = data.get(used..).unwrap_or_default();
        }
    }

    /// While hunting, looks for a boundary in the accumulated bytes and
    /// returns the bytes from there on to be replayed in sync.
    fn resync(&mut self, dir: Dir, sink: &mut dyn FnMut(Event<'_>)) -> Option<Vec<u8>> {
        if self.stopped || self.side(dir).mode != Mode::Hunting {
            return None;
        }
        let ctx = self.ctx;
        let side = self.side_mut(dir);
        let Some(at) = side.hunt.find(dir, &side.buf, &ctx) else {
            let excess = side.buf.len().saturating_sub(HUNT_KEEP);
            side.buf.drain(..excess);
            side.hunt.base += excess as u64;
            side.dropped += excess as u64;
            return None;
        };
        let mut replay = mem::take(&mut side.buf);
        replay.drain(..at);
        side.dropped += at as u64;
        side.mode = Mode::Synced;
        let dropped = mem::take(&mut side.dropped);
        self.stats.skipped += dropped;
        if dropped > 0 {
            sink(Event::Anomaly(Anomaly {
                dir,
                kind: AnomalyKind::Resync,
                message: format!("message boundary found after skipping {dropped} bytes"),
            }));
        }
        Some(replay)
    }

    /// Collects a message of `total` bytes, copying only if it straddles feeds.
    fn assemble<'d>(&mut self, dir: Dir, data: &'d [u8], total: usize) -> (usize, Whole<'d>) {
        let buf = &mut self.side_mut(dir).buf;
        if let Some(whole) = data.get(..total).filter(|_| buf.is_empty()) {
            return (total, Whole::InData(whole));
        }
        let take = total.saturating_sub(buf.len()).min(data.len());
        buf.extend_from_slice(data.get(..take).unwrap_or_default());
        let state = if buf.len() == total {
            Whole::InBuf
        } else {
            Whole::Partial
        };
        (take, state)
    }

    /// Runs `f` on the completed buffered message, then recycles the buffer.
    fn with_buffered(&mut self, dir: Dir, f: impl FnOnce(&mut Self, &[u8])) {
        let mut buf = mem::take(&mut self.side_mut(dir).buf);
        f(self, &buf);
        buf.clear();
        buf.shrink_to(KEEP_CAPACITY);
        let side = self.side_mut(dir);
        if side.buf.is_empty() {
            side.buf = buf;
        }
    }

    fn step_synced(&mut self, dir: Dir, data: &[u8], sink: &mut dyn FnMut(Event<'_>)) -> usize {
        let side = self.side_mut(dir);
        if side.skip > 0 {
            let n = side.skip.min(data.len() as u64);
            side.skip -= n;
            self.stats.skipped += n;
            return n as usize;
        }
        if side.buf.len() + data.len() < TYPED_HEADER {
            side.buf.extend_from_slice(data);
            return data.len();
        }
        let (typ, len) = header(&side.buf, data);
        if !(4..=MAX_MESSAGE_LEN).contains(&len) || (!valid_type(dir, typ) && len > HUNT_MAX_LEN) {
            let kind = if valid_type(dir, typ) {
                AnomalyKind::Malformed
            } else {
                AnomalyKind::UnknownMessage
            };
            self.anomaly(dir, kind, sink, || {
                format!(
                    "implausible length {len} for message type {}; resynchronising",
                    label(typ)
                )
            });
            // Hunt again from the byte after this bogus type byte.
            let side = self.side_mut(dir);
            side.dropped += 1;
            side.hunt();
            if side.buf.is_empty() {
                return 1;
            }
            side.buf.remove(0);
            return 0;
        }
        let total = len as usize + 1;
        if total > self.max_message {
            return self.skip_oversize(dir, typ, len, data, sink);
        }
        let (used, whole) = self.assemble(dir, data, total);
        match whole {
            Whole::InData(m) => self.emit_typed(dir, m, sink),
            Whole::InBuf => self.with_buffered(dir, |me, m| me.emit_typed(dir, m, sink)),
            Whole::Partial => {}
        }
        used
    }

    /// Reports a message over the cap once and skips its bytes unbuffered.
    fn skip_oversize(
        &mut self,
        dir: Dir,
        typ: u8,
        len: u32,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let cap = self.max_message;
        let side = self.side_mut(dir);
        let buffered = side.buf.len() as u64;
        let remaining = len as u64 + 1 - buffered;
        let used = remaining.min(data.len() as u64);
        side.skip = remaining - used;
        side.buf.clear();
        // The whole message counts, including header bytes already buffered.
        self.stats.skipped += used + buffered;
        let skipped = (len as u64 + 1).saturating_sub(TYPED_HEADER as u64);
        self.emit(dir, Some(typ), len, Body::Oversize, sink);
        self.anomaly(dir, AnomalyKind::Oversize, sink, || {
            format!(
                "message type {} of {} bytes exceeds the {cap} byte buffer; {skipped} body bytes skipped",
                label(typ),
                len as u64 + 1
            )
        });
        used as usize
    }

    fn step_untyped(&mut self, data: &[u8], first: bool, sink: &mut dyn FnMut(Event<'_>)) -> usize {
        let dir = Dir::Frontend;
        if self.fe.buf.is_empty() && data.first() == Some(&TLS_HANDSHAKE) {
            self.stats.ignored += data.len() as u64;
            self.encryption = Some("tls");
            self.stop(dir, AnomalyKind::EncryptionSwitch, sink, || {
                "direct TLS handshake (sslnegotiation=direct); not decoded further".into()
            });
            return data.len();
        }
        if self.fe.buf.len() + data.len() < 4 {
            self.fe.buf.extend_from_slice(data);
            return data.len();
        }
        let len = u32::from_be_bytes(head(&self.fe.buf, data));
        if !STARTUP_LEN.contains(&len) {
            if first {
                self.stats.ignored += data.len() as u64;
                self.not_postgres(sink);
                return data.len();
            }
            self.anomaly(dir, AnomalyKind::Malformed, sink, || {
                format!("implausible startup packet length {len}; resynchronising")
            });
            self.fe.hunt();
            return 0;
        }
        let (used, whole) = self.assemble(dir, data, len as usize);
        match whole {
            Whole::InData(p) => self.on_untyped(p, first, sink),
            Whole::InBuf => self.with_buffered(dir, |me, p| me.on_untyped(p, first, sink)),
            Whole::Partial => {}
        }
        used
    }

    fn on_untyped(&mut self, packet: &[u8], first: bool, sink: &mut dyn FnMut(Event<'_>)) {
        let body = decode_startup(packet.get(4..).unwrap_or_default());
        if first && matches!(body, Body::UnknownStartup { .. }) {
            self.not_postgres(sink);
            return;
        }
        self.fe.mode = match body {
            Body::SslRequest => {
                self.be.mode = Mode::Answer(Answer::Ssl);
                Mode::Untyped { first: false }
            }
            Body::GssEncRequest => {
                self.be.mode = Mode::Answer(Answer::Gss);
                Mode::Untyped { first: false }
            }
            Body::CancelRequest { .. } => Mode::Ignore,
            Body::Startup { minor, .. } => {
                self.protocol_minor = Some(minor);
                Mode::Synced
            }
            // The server rejects anything else; assume regular traffic follows.
            _ => Mode::Synced,
        };
        self.emit(Dir::Frontend, None, packet.len() as u32, body, sink);
    }

    fn step_answer(
        &mut self,
        answer: Answer,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let dir = Dir::Backend;
        let Some(&byte) = data.first() else { return 0 };
        let body = match (answer, byte) {
            (Answer::Ssl, b'S' | b'N') => Body::SslResponse { answer: byte },
            (Answer::Gss, b'G' | b'N') => Body::GssEncResponse { answer: byte },
            (_, b'E') => {
                // Servers predating the request answer with a typed ErrorResponse.
                self.be.mode = Mode::Synced;
                return 0;
            }
            _ => {
                self.anomaly(dir, AnomalyKind::Malformed, sink, || {
                    format!("unexpected answer {} to an encryption request", label(byte))
                });
                self.be.hunt();
                return 0;
            }
        };
        self.be.mode = Mode::Synced;
        self.emit(dir, None, 1, body, sink);
        let scheme = match byte {
            b'S' => "TLS",
            b'G' => "GSSAPI encryption",
            _ => return 1,
        };
        self.encryption = Some(if byte == b'S' { "tls" } else { "gss" });
        self.stop(dir, AnomalyKind::EncryptionSwitch, sink, || {
            format!("connection switched to {scheme}; not decoded further")
        });
        1
    }

    /// Decodes and emits a complete typed message (header included).
    fn emit_typed(&mut self, dir: Dir, m: &[u8], sink: &mut dyn FnMut(Event<'_>)) {
        let (typ, len) = header(m, &[]);
        let body = decode(
            dir,
            typ,
            m.get(TYPED_HEADER..).unwrap_or_default(),
            &self.ctx,
        );
        if dir == Dir::Backend {
            let before = self.ctx;
            self.ctx.observe(&body);
            if self.ctx != before {
                // Frontend 'p' messages decode differently now.
                self.fe.hunt.restart();
            }
            if let Body::NegotiateProtocolVersion { newest_minor, .. } = body {
                let newest = u16::try_from(newest_minor).unwrap_or(u16::MAX);
                self.protocol_minor = Some(self.protocol_minor.map_or(newest, |m| m.min(newest)));
            }
        }
        self.emit(dir, Some(typ), len, body, sink);
    }

    /// Emits a message, followed by an anomaly if its body was not decoded.
    fn emit(
        &mut self,
        dir: Dir,
        typ: Option<u8>,
        len: u32,
        body: Body<'_>,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        sink(Event::Msg(Msg {
            dir,
            typ,
            len,
            body,
        }));
        match body {
            Body::Unknown { .. } => self.anomaly(dir, AnomalyKind::UnknownMessage, sink, || {
                format!(
                    "message type {} is not valid from the {}; skipped {len} bytes",
                    label(typ.unwrap_or(0)),
                    dir_name(dir)
                )
            }),
            Body::Malformed { reason } => self.anomaly(dir, AnomalyKind::Malformed, sink, || {
                let name = Msg {
                    dir,
                    typ,
                    len,
                    body,
                }
                .name();
                format!("malformed {name}: {reason}")
            }),
            _ => {}
        }
    }

    fn anomaly(
        &self,
        dir: Dir,
        kind: AnomalyKind,
        sink: &mut dyn FnMut(Event<'_>),
        message: impl FnOnce() -> String,
    ) {
        sink(Event::Anomaly(Anomaly {
            dir,
            kind,
            message: message(),
        }));
    }

    /// Stops decoding both directions for good.
    fn stop(
        &mut self,
        dir: Dir,
        kind: AnomalyKind,
        sink: &mut dyn FnMut(Event<'_>),
        message: impl FnOnce() -> String,
    ) {
        self.stopped = true;
        self.fe.buf = Vec::new();
        self.be.buf = Vec::new();
        self.anomaly(dir, kind, sink, message);
    }

    fn not_postgres(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        self.stop(Dir::Frontend, AnomalyKind::NotPostgres, sink, || {
            "first client packet is not a PostgreSQL startup packet".into()
        });
    }
}

/// First `N` bytes of `buf ++ data` (zero-padded if shorter).
fn head<const N: usize>(buf: &[u8], data: &[u8]) -> [u8; N] {
    let mut h = [0; N];
    for (d, s) in h.iter_mut().zip(buf.iter().chain(data)) {
        *d = *s;
    }
    h
}

/// Type byte and length field of a typed message starting in `buf ++ data`.
fn header(buf: &[u8], data: &[u8]) -> (u8, u32) {
    let [typ, a, b, c, d] = head(buf, data);
    (typ, u32::from_be_bytes([a, b, c, d]))
}

/// Verdict on a candidate boundary: a confident chain of messages starts there
/// if it ends exactly at the end of the bytes, has `HUNT_CHAIN` messages, or
/// contains a ReadyForQuery (fixed length and three possible status bytes).
enum Chain {
    Found,
    Broken,
    /// Cut short by the end of the bytes; this many are needed to judge it.
    Short(usize),
}

fn chain(dir: Dir, bytes: &[u8], ctx: &DecodeCtx) -> Chain {
    let mut rest = bytes;
    let mut count = 0;
    loop {
        let used = bytes.len() - rest.len();
        if rest.is_empty() {
            return if count > 0 {
                Chain::Found
            } else {
                Chain::Short(used + TYPED_HEADER)
            };
        }
        if rest.len() < TYPED_HEADER {
            return Chain::Short(used + TYPED_HEADER);
        }
        let (typ, len) = header(rest, &[]);
        if !valid_type(dir, typ) || !(4..=HUNT_MAX_LEN).contains(&len) {
            return Chain::Broken;
        }
        let Some((m, tail)) = rest.split_at_checked(len as usize + 1) else {
            return Chain::Short(used + len as usize + 1);
        };
        let body = decode(dir, typ, m.get(TYPED_HEADER..).unwrap_or_default(), ctx);
        if matches!(body, Body::Malformed { .. }) {
            return Chain::Broken;
        }
        count += 1;
        if count >= HUNT_CHAIN || matches!(body, Body::ReadyForQuery { .. }) {
            return Chain::Found;
        }
        rest = tail;
    }
}

/// Type byte for messages: the character if printable, else hex.
fn label(typ: u8) -> String {
    if typ.is_ascii_graphic() {
        format!("'{}'", typ as char)
    } else {
        format!("0x{typ:02x}")
    }
}

fn dir_name(dir: Dir) -> &'static str {
    match dir {
        Dir::Frontend => "frontend",
        Dir::Backend => "backend",
    }
}
