//! Per-connection framing of both directions of a PostgreSQL session.

use std::mem;

use super::message::{Body, DecodeCtx, Msg, decode, decode_startup, keeps_head, small, valid_type};
use super::{Dir, Encryption};
use crate::anomaly::AnomalyKind;

/// Default cap on one message copied into a direction's buffer.
pub(crate) const MAX_BUFFERED_MESSAGE: usize = 1 << 20;

/// Bytes kept of an oversize request's body (see [`keeps_head`]): its names and
/// the start of its text.
pub(crate) const OVERSIZE_HEAD: usize = 64 << 10;

/// Longer length fields are treated as corruption rather than a big message.
const MAX_MESSAGE_LEN: u32 = 1 << 30;
/// Largest length accepted while hunting for a boundary (and for an
/// unknown type byte to be skipped rather than resynchronised).
const HUNT_MAX_LEN: u32 = 1 << 20;
/// Unsynced bytes kept while hunting; older ones are dropped.
const HUNT_KEEP: usize = 64 << 10;
/// This many well-formed messages in a row mark a boundary.
const HUNT_CHAIN: usize = 3;
/// Undecided candidate offsets remembered while hunting.
const HUNT_MAX_PENDING: usize = 1024;
/// Emptied buffers larger than this are shrunk back to it.
const KEEP_CAPACITY: usize = 64 << 10;
const STARTUP_LEN: std::ops::RangeInclusive<u32> = 8..=10000;
/// First byte of a TLS record carrying a handshake (ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;
const TYPED_HEADER: usize = 5;

/// What [`ConnDecoder`] reports to its sink.
#[derive(Debug)]
pub enum Event<'a> {
    /// By reference: a body is over a hundred bytes, and copying it per message
    /// right after the decoder wrote it stalled on store forwarding.
    Msg(&'a Msg<'a>),
    /// What and where. Boxed, as anomalies are rare: the event is then two words,
    /// handed to the sink in registers on every message rather than through memory.
    Anomaly(Box<Anomaly>),
}

/// A framing problem: a gap, a resynchronisation, an oversize or malformed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub(crate) dir: Dir,
    pub(crate) kind: AnomalyKind,
    pub(crate) message: String,
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
    hunter: Hunter,
}

impl Side {
    fn new(mode: Mode) -> Self {
        Side {
            mode,
            buf: Vec::new(),
            skip: 0,
            dropped: 0,
            hunter: Hunter::default(),
        }
    }

    fn lose_sync(&mut self) {
        self.dropped += self.buf.len() as u64;
        self.buf.clear();
        self.skip = 0;
        self.hunter.reset();
        self.mode = Mode::Hunting;
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
    /// Indexed by `Dir as usize`.
    sides: [Side; 2],
    ctx: DecodeCtx,
    /// Capture missed the start (or lost bytes): no startup checks.
    midstream: bool,
    seen_frontend: bool,
    stopped: bool,
    encryption: Option<Encryption>,
    /// TLS is decrypted by the caller: the switch hands the stream back (see
    /// [`ConnDecoder::tls_handoff`]) instead of stopping.
    decrypt_tls: bool,
    /// Set by the switch to TLS: how many bytes of the current feed followed it.
    handoff: Option<usize>,
    max_message: usize,
}

impl ConnDecoder {
    /// `midstream`: the capture missed the connection's start, so no
    /// startup packet is expected and both directions begin by hunting for
    /// a message boundary.
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
            sides: [Side::new(fe), Side::new(be)],
            ctx: DecodeCtx::default(),
            midstream,
            seen_frontend: false,
            stopped: false,
            encryption: None,
            decrypt_tls: false,
            handoff: None,
            max_message: max_message.max(TYPED_HEADER),
        }
    }

    /// `Some(Tls)` / `Some(Gss)` once the connection switched to encryption.
    pub(crate) fn encrypted(&self) -> Option<Encryption> {
        self.encryption
    }

    /// The caller decrypts TLS: after the switch to it (SSLRequest answered `S`, or a
    /// direct TLS handshake) the framer takes the plaintext, fed like the stream's.
    pub(crate) fn decrypt_tls(&mut self) {
        self.decrypt_tls = true;
    }

    /// After a feed in which the stream switched to TLS (with [`Self::decrypt_tls`]):
    /// how many of its last bytes are TLS, to be decrypted and fed back as plaintext.
    pub(crate) fn tls_handoff(&mut self) -> Option<usize> {
        self.handoff.take()
    }

    /// Bytes currently held in the per-direction buffers (the decoder fuzz target's bound).
    pub fn buffered_bytes(&self) -> usize {
        self.sides.iter().map(|s| s.buf.len()).sum()
    }

    /// Feeds in-order stream bytes of one direction.
    // Generic over the sink along the per-message path, so the next stage's handler
    // is inlined there; the rare paths take it as `dyn`.
    pub fn feed<S: FnMut(Event<'_>)>(&mut self, dir: Dir, data: &[u8], sink: &mut S) {
        if self.stopped {
            return;
        }
        if data.is_empty() {
            return;
        }
        match dir {
            Dir::Frontend => self.seen_frontend = true,
            // MySQL and others greet first; a PostgreSQL server never does.
            Dir::Backend if !self.midstream && !self.seen_frontend => {
                self.stop(dir, AnomalyKind::NotPostgres, sink, || {
                    "server sent data before the client's startup packet".into()
                });
                return;
            }
            Dir::Backend => {}
        }
        self.drain(dir, data, sink);
        // Checked here, so a synced feed (nearly every one) makes no call for it.
        if self.side(dir).mode != Mode::Hunting {
            return;
        }
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
        sink(Event::Anomaly(Box::new(Anomaly {
            dir,
            kind: AnomalyKind::Gap,
            message: format!("{missing_bytes} bytes missing from the capture"),
        })));
        let side = &mut self.sides[dir as usize];
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
        &self.sides[dir as usize]
    }

    fn side_mut(&mut self, dir: Dir) -> &mut Side {
        &mut self.sides[dir as usize]
    }

    fn drain<S: FnMut(Event<'_>)>(&mut self, dir: Dir, mut data: &[u8], sink: &mut S) {
        while !data.is_empty() {
            if self.stopped {
                return;
            }
            if self.handoff.is_some() {
                self.handoff = Some(data.len());
                return;
            }
            // Each step consumes bytes or changes the mode.
            let used = match self.side(dir).mode {
                Mode::Untyped { first } => self.step_untyped(data, first, sink),
                Mode::Answer(answer) => self.step_answer(answer, data, sink),
                Mode::Synced => match self.run_synced(dir, data, sink) {
                    0 => self.step_synced(dir, data, sink),
                    n => n,
                },
                Mode::Hunting => {
                    self.side_mut(dir).buf.extend_from_slice(data);
                    data.len()
                }
                Mode::Ignore => data.len(),
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
        let side = &mut self.sides[dir as usize];
        let Some(at) = side.hunter.search(dir, &side.buf, &self.ctx) else {
            // Keep only bytes that may still start a boundary, bounded.
            let drop = side
                .hunter
                .dead_prefix()
                .max(side.buf.len().saturating_sub(HUNT_KEEP));
            side.buf.drain(..drop);
            side.hunter.shift(drop);
            side.dropped += drop as u64;
            return None;
        };
        side.hunter.reset();
        let mut replay = mem::take(&mut side.buf);
        replay.drain(..at);
        side.dropped += at as u64;
        side.mode = Mode::Synced;
        let dropped = mem::take(&mut side.dropped);
        if dropped > 0 {
            sink(Event::Anomaly(Box::new(Anomaly {
                dir,
                kind: AnomalyKind::Resync,
                message: format!("message boundary found after skipping {dropped} bytes"),
            })));
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

    /// The common case in a tight loop: whole messages lying in `data`, with nothing
    /// buffered or being skipped. Stops at anything else (a message cut by the end of
    /// the data, an implausible or oversize length, a change of mode), which
    /// `step_synced` then handles; returns the bytes consumed.
    #[inline(always)]
    fn run_synced<S: FnMut(Event<'_>)>(&mut self, dir: Dir, data: &[u8], sink: &mut S) -> usize {
        let mut used = 0;
        if !self.in_run(dir) {
            return used;
        }
        loop {
            let rest = &data[used..];
            let Some(&[_, a, b, c, d]) = rest.first_chunk::<TYPED_HEADER>() else {
                return used;
            };
            let len = u32::from_be_bytes([a, b, c, d]);
            let total = len as usize + 1;
            if !(4..=HUNT_MAX_LEN).contains(&len) || total > self.max_message || total > rest.len()
            {
                return used;
            }
            let typ = rest[0];
            let body = &rest[TYPED_HEADER..total];
            // The commonest messages of both query protocols and COPY, each decoded on a path
            // of its own: the decoder's match is folded to the one type, and the body
            // is built with its own fields only (see `small`). None of them changes
            // the decoding context (authentication) or the protocol version.
            macro_rules! own_path {
                ($dir:expr, $typ:literal) => {{
                    let msg = Msg {
                        dir,
                        typ: Some(typ),
                        len,
                        body: decode($dir, $typ, body, &self.ctx),
                        withheld: false,
                    };
                    self.emit(&msg, sink)
                }};
            }
            match (dir, typ) {
                (Dir::Frontend, b'Q') => own_path!(Dir::Frontend, b'Q'),
                (Dir::Frontend, b'P') => own_path!(Dir::Frontend, b'P'),
                (Dir::Frontend, b'B') => own_path!(Dir::Frontend, b'B'),
                (Dir::Frontend, b'D') => own_path!(Dir::Frontend, b'D'),
                (Dir::Frontend, b'E') => own_path!(Dir::Frontend, b'E'),
                (Dir::Backend, b'C') => own_path!(Dir::Backend, b'C'),
                (Dir::Backend, b'D') => own_path!(Dir::Backend, b'D'),
                (Dir::Backend, b'T') => own_path!(Dir::Backend, b'T'),
                // COPY's rows, one message each.
                (Dir::Frontend, b'd') => own_path!(Dir::Frontend, b'd'),
                (Dir::Backend, b'd') => own_path!(Dir::Backend, b'd'),
                _ => match small(dir, typ, body) {
                    // None of these is an anomaly either: straight to the sink.
                    Some(body) => sink(Event::Msg(&Msg {
                        dir,
                        typ: Some(typ),
                        len,
                        body,
                        withheld: false,
                    })),
                    None => {
                        self.emit_typed(dir, &rest[..total], sink);
                        // The one path here that may change the state (authentication,
                        // a switch to encryption).
                        if !self.in_run(dir) {
                            return used + total;
                        }
                    }
                },
            }
            used += total;
        }
    }

    /// Synced with nothing buffered or to skip: whole messages decode straight from the data.
    #[inline(always)]
    fn in_run(&self, dir: Dir) -> bool {
        let side = &self.sides[dir as usize];
        !self.stopped && side.mode == Mode::Synced && side.skip == 0 && side.buf.is_empty()
    }

    fn step_synced<S: FnMut(Event<'_>)>(&mut self, dir: Dir, data: &[u8], sink: &mut S) -> usize {
        let side = self.side_mut(dir);
        if side.skip > 0 {
            let n = side.skip.min(data.len() as u64);
            side.skip -= n;
            return n as usize;
        }
        if side.buf.len() + data.len() < TYPED_HEADER {
            side.buf.extend_from_slice(data);
            return data.len();
        }
        let (typ, len) = header(&side.buf, data);
        if !(4..=MAX_MESSAGE_LEN).contains(&len) || (len > HUNT_MAX_LEN && !valid_type(dir, typ)) {
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
            side.mode = Mode::Hunting;
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

    /// A message over the cap: its head (see [`keeps_head`]) is collected, then it
    /// is reported once and the rest is skipped unbuffered.
    fn skip_oversize(
        &mut self,
        dir: Dir,
        typ: u8,
        len: u32,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let body_len = len as usize - 4;
        let head = if keeps_head(dir, typ) {
            // Bounded by the cap too, so that a smaller cap bounds the memory.
            body_len
                .min(OVERSIZE_HEAD)
                .min(self.max_message - TYPED_HEADER)
        } else {
            0
        };
        let keep = TYPED_HEADER + head;
        let (used, whole) = self.assemble(dir, data, keep);
        match whole {
            Whole::InData(m) => self.report_oversize(dir, len, m, sink),
            Whole::InBuf => self.with_buffered(dir, |me, m| me.report_oversize(dir, len, m, sink)),
            Whole::Partial => return used,
        }
        // The whole message counts, the kept head included.
        self.side_mut(dir).skip = len as u64 + 1 - keep as u64;
        used
    }

    /// Emits an oversize message from its kept first bytes `m` (header included).
    fn report_oversize(&mut self, dir: Dir, len: u32, m: &[u8], sink: &mut dyn FnMut(Event<'_>)) {
        let cap = self.max_message;
        let typ = m[0];
        let head = m.get(TYPED_HEADER..).unwrap_or_default();
        self.emit(
            &Msg {
                dir,
                typ: Some(typ),
                len,
                body: Body::Oversize { head },
                withheld: false,
            },
            sink,
        );
        let skipped = len as usize + 1 - m.len();
        self.anomaly(dir, AnomalyKind::Oversize, sink, || {
            format!(
                "message type {} of {} bytes exceeds the {cap} byte buffer; {skipped} body bytes skipped",
                label(typ),
                len as u64 + 1
            )
        });
    }

    fn step_untyped(&mut self, data: &[u8], first: bool, sink: &mut dyn FnMut(Event<'_>)) -> usize {
        let dir = Dir::Frontend;
        let buf = &mut self.side_mut(dir).buf;
        if buf.is_empty() && data.first() == Some(&TLS_HANDSHAKE) {
            self.encrypt(
                dir,
                Encryption::Tls,
                "direct TLS handshake (sslnegotiation=direct)",
                sink,
            );
            if self.decrypt_tls {
                // The handshake is the caller's to decrypt.
                return 0;
            }
            return data.len();
        }
        if buf.len() + data.len() < 4 {
            buf.extend_from_slice(data);
            return data.len();
        }
        let len = u32::from_be_bytes(head(buf, data));
        if !STARTUP_LEN.contains(&len) {
            if first {
                self.not_postgres(sink, || {
                    "first client packet is not a PostgreSQL startup packet".into()
                });
                return data.len();
            }
            self.anomaly(dir, AnomalyKind::Malformed, sink, || {
                format!("implausible startup packet length {len}; resynchronising")
            });
            self.side_mut(dir).mode = Mode::Hunting;
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
        if first && let Body::UnknownStartup { code } = body {
            // Scanners probe with such packets (e.g. version 255.255): say what came.
            self.not_postgres(sink, || {
                format!(
                    "first client packet is an untyped packet with unknown code {code:#010x} \
                     (protocol {}.{}?), not a PostgreSQL startup packet",
                    code >> 16,
                    code & 0xffff
                )
            });
            return;
        }
        let (frontend, backend) = match body {
            Body::SslRequest => (Mode::Untyped { first: false }, Some(Answer::Ssl)),
            Body::GssEncRequest => (Mode::Untyped { first: false }, Some(Answer::Gss)),
            Body::CancelRequest { .. } => (Mode::Ignore, None),
            // The server rejects anything else; assume regular traffic follows.
            _ => (Mode::Synced, None),
        };
        self.side_mut(Dir::Frontend).mode = frontend;
        if let Some(answer) = backend {
            self.side_mut(Dir::Backend).mode = Mode::Answer(answer);
        }
        self.emit(
            &Msg {
                dir: Dir::Frontend,
                typ: None,
                len: packet.len() as u32,
                body,
                withheld: false,
            },
            sink,
        );
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
                self.side_mut(dir).mode = Mode::Synced;
                return 0;
            }
            _ => {
                self.anomaly(dir, AnomalyKind::Malformed, sink, || {
                    format!("unexpected answer {} to an encryption request", label(byte))
                });
                self.side_mut(dir).mode = Mode::Hunting;
                return 0;
            }
        };
        self.side_mut(dir).mode = Mode::Synced;
        self.emit(
            &Msg {
                dir,
                typ: None,
                len: 1,
                body,
                withheld: false,
            },
            sink,
        );
        match byte {
            b'S' => self.encrypt(dir, Encryption::Tls, "connection switched to TLS", sink),
            b'G' => self.encrypt(
                dir,
                Encryption::Gss,
                "connection switched to GSSAPI encryption",
                sink,
            ),
            _ => {}
        }
        1
    }

    /// Encryption started: nothing more can be decoded (unless the caller decrypts).
    fn encrypt(
        &mut self,
        dir: Dir,
        scheme: Encryption,
        what: &str,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        self.encryption = Some(scheme);
        if scheme == Encryption::Tls && self.decrypt_tls {
            self.handoff = Some(0);
            return;
        }
        self.stop(dir, AnomalyKind::EncryptionSwitch, sink, || {
            format!("{what}; not decoded further")
        });
    }

    /// Decodes and emits a complete typed message (header included).
    fn emit_typed<S: FnMut(Event<'_>)>(&mut self, dir: Dir, m: &[u8], sink: &mut S) {
        let (typ, len) = header(m, &[]);
        let msg = Msg {
            dir,
            typ: Some(typ),
            len,
            body: decode(
                dir,
                typ,
                m.get(TYPED_HEADER..).unwrap_or_default(),
                &self.ctx,
            ),
            withheld: false,
        };
        if dir == Dir::Backend {
            self.ctx.observe(&msg.body);
        }
        self.emit(&msg, sink);
    }

    /// Emits a message, followed by an anomaly if its body was not decoded.
    #[inline(always)]
    fn emit<S: FnMut(Event<'_>) + ?Sized>(&mut self, msg: &Msg<'_>, sink: &mut S) {
        // Told before the call, where the decoder has just built the body (on the
        // fast paths the variant is known there): only this flag lives across it.
        let bad = matches!(msg.body, Body::Unknown { .. } | Body::Malformed { .. });
        sink(Event::Msg(msg));
        if bad {
            self.undecoded(msg, sink);
        }
    }

    /// The anomaly that follows a message whose body was not decoded.
    #[cold]
    #[inline(never)]
    fn undecoded<S: FnMut(Event<'_>) + ?Sized>(&mut self, msg: &Msg<'_>, sink: &mut S) {
        let (dir, len) = (msg.dir, msg.len);
        match msg.body {
            Body::Unknown { .. } => self.anomaly(dir, AnomalyKind::UnknownMessage, sink, || {
                format!(
                    "message type {} is not valid from the {}; skipped {len} bytes",
                    label(msg.typ.unwrap_or(0)),
                    dir_name(dir)
                )
            }),
            Body::Malformed { reason } => self.anomaly(dir, AnomalyKind::Malformed, sink, || {
                format!("malformed {}: {reason}", msg.name())
            }),
            _ => {}
        }
    }

    fn anomaly<S: FnMut(Event<'_>) + ?Sized>(
        &self,
        dir: Dir,
        kind: AnomalyKind,
        sink: &mut S,
        message: impl FnOnce() -> String,
    ) {
        sink(Event::Anomaly(Box::new(Anomaly {
            dir,
            kind,
            message: message(),
        })));
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
        for side in &mut self.sides {
            side.buf = Vec::new();
        }
        self.anomaly(dir, kind, sink, message);
    }

    fn not_postgres(&mut self, sink: &mut dyn FnMut(Event<'_>), what: impl FnOnce() -> String) {
        self.stop(Dir::Frontend, AnomalyKind::NotPostgres, sink, what);
    }
}

/// First `N` bytes of `buf ++ data` (zero-padded if shorter).
fn head<const N: usize>(buf: &[u8], data: &[u8]) -> [u8; N] {
    // Nearly always the whole header is on one side: one load, not a byte loop
    // over a chained iterator, on every message.
    if let Some(h) = buf.first_chunk::<N>() {
        return *h;
    }
    if buf.is_empty()
        && let Some(h) = data.first_chunk::<N>()
    {
        return *h;
    }
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

/// Incremental boundary search over a side's unsynced bytes, so each byte
/// is examined about once rather than on every segment.
#[derive(Default)]
struct Hunter {
    /// Offsets into the buffer whose chain ran out of data; re-checked as
    /// more arrives.
    pending: Vec<usize>,
    /// Every other offset below this can never start a boundary.
    scanned: usize,
}

impl Hunter {
    fn reset(&mut self) {
        self.pending.clear();
        self.scanned = 0;
    }

    /// Earliest confident boundary: a chain of messages that ends exactly
    /// at the end of `buf`, has `HUNT_CHAIN` messages, or contains a
    /// ReadyForQuery (fixed length, three possible status bytes).
    fn search(&mut self, dir: Dir, buf: &[u8], ctx: &DecodeCtx) -> Option<usize> {
        // Bounds the body bytes decoded per call, so crafted input full of
        // plausible headers cannot make a segment expensive.
        let mut budget = 4 * HUNT_KEEP;
        let mut check = |at: usize| chain(dir, buf.get(at..).unwrap_or_default(), ctx, &mut budget);
        let mut found = None;
        self.pending.retain(|&at| {
            if found.is_some() {
                return true;
            }
            match check(at) {
                Verdict::Boundary => found = Some(at),
                Verdict::NotBoundary => return false,
                Verdict::Undecided | Verdict::OutOfBudget => {}
            }
            true
        });
        if found.is_some() {
            return found;
        }
        while self.scanned + TYPED_HEADER <= buf.len() {
            let at = self.scanned;
            match check(at) {
                Verdict::Boundary => return Some(at),
                Verdict::NotBoundary => {}
                Verdict::Undecided => self.pending.push(at),
                Verdict::OutOfBudget => break,
            }
            self.scanned += 1;
        }
        // Give up on the oldest candidates rather than grow without bound.
        let excess = self.pending.len().saturating_sub(HUNT_MAX_PENDING);
        self.pending.drain(..excess);
        None
    }

    /// Length of the buffer prefix that can no longer start a boundary.
    fn dead_prefix(&self) -> usize {
        self.pending
            .first()
            .map_or(self.scanned, |&p| p.min(self.scanned))
    }

    /// The buffer lost its first `n` bytes.
    fn shift(&mut self, n: usize) {
        self.pending.retain_mut(|p| match p.checked_sub(n) {
            Some(q) => {
                *p = q;
                true
            }
            None => false,
        });
        self.scanned = self.scanned.saturating_sub(n);
    }
}

enum Verdict {
    Boundary,
    NotBoundary,
    /// Needs more data.
    Undecided,
    /// The scan's work budget ran out; try again later.
    OutOfBudget,
}

/// Which peer sent `payload`, judged by its shape alone: `Some(dir)` when, from
/// its first byte, it is a chain of whole messages valid from `dir` and not from
/// the other side (as the boundary hunt judges a chain). Mid-stream role inference.
pub(crate) fn sender_of(payload: &[u8]) -> Option<Dir> {
    let ctx = DecodeCtx::default();
    let fits = |dir| {
        let mut budget = 4 * HUNT_KEEP;
        matches!(chain(dir, payload, &ctx, &mut budget), Verdict::Boundary)
    };
    match (fits(Dir::Frontend), fits(Dir::Backend)) {
        (true, false) => Some(Dir::Frontend),
        (false, true) => Some(Dir::Backend),
        _ => None,
    }
}

fn chain(dir: Dir, mut rest: &[u8], ctx: &DecodeCtx, budget: &mut usize) -> Verdict {
    let mut count = 0;
    loop {
        if rest.is_empty() {
            return if count > 0 {
                Verdict::Boundary
            } else {
                Verdict::Undecided
            };
        }
        if rest.len() < TYPED_HEADER {
            return Verdict::Undecided;
        }
        let (typ, len) = header(rest, &[]);
        if !valid_type(dir, typ) || !(4..=HUNT_MAX_LEN).contains(&len) {
            return Verdict::NotBoundary;
        }
        let Some((m, tail)) = rest.split_at_checked(len as usize + 1) else {
            return Verdict::Undecided;
        };
        let Some(left) = budget.checked_sub(m.len()) else {
            *budget = 0;
            return Verdict::OutOfBudget;
        };
        *budget = left;
        let body = decode(dir, typ, m.get(TYPED_HEADER..).unwrap_or_default(), ctx);
        if matches!(body, Body::Malformed { .. }) {
            return Verdict::NotBoundary;
        }
        count += 1;
        if count >= HUNT_CHAIN || matches!(body, Body::ReadyForQuery { .. }) {
            return Verdict::Boundary;
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
