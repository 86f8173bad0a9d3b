//! Packet sources: capture files (pcap, pcapng; through `pcap-parser`, which reads
//! faster than libpcap's offline path) and live interfaces (libpcap).
//!
//! A source hands each packet to a callback as `(timestamp, link type, bytes)`; it
//! knows nothing about TCP. A truncated last record is a warning, not an error; a
//! corrupt one (an impossible length, a malformed block) ends the file with an
//! error once the packets before it are read.

mod bpf;
mod compressed;

pub use bpf::OfflineFilter;
pub(crate) use bpf::{interface_list, open_hint};
mod legacy;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::stat::{Mode, umask};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The LINKTYPE_* value of the interface the frame came from.
    pub linktype: i32,
    /// The captured bytes, from the link-layer header on.
    pub data: &'a [u8],
    /// Length on the wire; larger than `data.len()` when the snaplen cut the frame.
    pub orig_len: u32,
}

/// Link types (tcpdump.org's LINKTYPE_ values) a source may yield and `net` reads.
pub(crate) const LINKTYPE_NULL: i32 = 0;
pub(crate) const LINKTYPE_ETHERNET: i32 = 1;
pub(crate) const LINKTYPE_RAW_OLD1: i32 = 12;
pub(crate) const LINKTYPE_RAW_OLD2: i32 = 14;
pub(crate) const LINKTYPE_RAW: i32 = 101;
pub(crate) const LINKTYPE_LOOP: i32 = 108;
pub(crate) const LINKTYPE_LINUX_SLL: i32 = 113;
pub(crate) const LINKTYPE_IPV4: i32 = 228;
pub(crate) const LINKTYPE_IPV6: i32 = 229;
pub(crate) const LINKTYPE_LINUX_SLL2: i32 = 276;

/// What a source reports when it stops.
#[derive(Default, Debug, Clone)]
pub struct SourceStats {
    /// Packets read.
    pub packets: u64,
    pub(crate) bytes: u64,
    /// Kernel/libpcap drops (live capture only).
    pub dropped: u64,
    /// Set when a file ended in the middle of a record.
    pub truncated: Option<String>,
    /// Set when a file held a record that cannot be (an impossible length, a
    /// malformed block): the packets before it were read, the rest is not.
    pub(crate) corrupt: Option<String>,
}

/// A capture that cannot be opened or read: the message names the cause.
#[derive(Debug)]
pub struct CaptureError(pub(crate) String);

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaptureError {}

/// Callback verdict: keep reading or stop (packet count reached, Ctrl-C).
pub type Flow = std::ops::ControlFlow<()>;

/// Read buffer of the file reader: it starts small (most captures are small, and a
/// megabyte zeroed per file dominated the cost of fuzzing) and grows for larger
/// records up to the cap. Records are at most a snaplen (256 KiB) long, so a record
/// that does not fit in the cap is corruption.
const READ_BUFFER_START: usize = 64 << 10;
const READ_BUFFER: usize = 1 << 20;

/// The largest record libpcap writes or reads for the link types pgscope decodes
/// (its MAXIMUM_SNAPLEN); longer is corruption unless the file's snaplen says more.
/// A record longer than the file's snaplen but within this is read, as tcpdump and
/// tshark read it.
const MAX_SNAPLEN: u32 = 256 << 10;

/// Reads a pcap or pcapng stream to the end, calling `on_packet` for every frame;
/// a gzip or zstd compressed one is decompressed on the way.
pub fn read_file<R: Read + Send>(
    name: &str,
    input: R,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(Packet<'_>) -> Flow,
) -> Result<SourceStats, CaptureError> {
    let mut input = input;
    let head = read_head(name, &mut input)?;
    let Some(compression) = compressed::Compression::of(&head) else {
        return read_capture(name, input, head, stop, on_packet);
    };
    let bad = |e: std::io::Error| {
        CaptureError(format!(
            "{name}: {} compressed, but cannot be read ({e})",
            compression.name()
        ))
    };
    let mut input = compression
        .decoder(Prefixed {
            prefix: head,
            at: 0,
            inner: input,
        })
        .map_err(bad)?;
    let head = read_head(name, &mut input)?;
    read_capture(name, input, head, stop, on_packet)
}

/// The first bytes of `input`, enough to tell a classic pcap header (fewer at the
/// end of the input).
fn read_head(name: &str, input: &mut impl Read) -> Result<Vec<u8>, CaptureError> {
    let mut head = Vec::with_capacity(READ_BUFFER_START);
    while head.len() < legacy::HEADER_LEN {
        let mut chunk = [0u8; legacy::HEADER_LEN];
        match input.read(&mut chunk[..legacy::HEADER_LEN - head.len()]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(CaptureError(format!("{name}: cannot be read ({e})")));
            }
            Err(_) => {
                return Err(CaptureError(format!(
                    "{name}: not a pcap or pcapng capture file (read failed)"
                )));
            }
        }
    }
    Ok(head)
}

/// Reads an uncompressed capture whose first bytes, `head`, were read already.
fn read_capture<R: Read + Send>(
    name: &str,
    input: R,
    head: Vec<u8>,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(Packet<'_>) -> Flow,
) -> Result<SourceStats, CaptureError> {
    // A classic pcap file (the common case, and what tcpdump writes) takes the fast
    // path; anything else, pcapng included, goes through pcap-parser's block reader
    // with the bytes read so far put back in front.
    if head.len() < legacy::HEADER_LEN && stop.load(Ordering::Relaxed) {
        // Stopped before the input said what it is: nothing was read.
        return Ok(SourceStats::default());
    }
    if let Ok((_, header)) = pcap_parser::pcap::parse_pcap_header(&head) {
        return legacy::read(name, input, &header, head, stop, on_packet);
    }
    let input = Prefixed {
        prefix: head,
        at: 0,
        inner: input,
    };
    let mut capacity = READ_BUFFER_START;
    let mut reader = pcap_parser::create_reader(capacity, input).map_err(|e| {
        CaptureError(format!(
            "{name}: not a pcap or pcapng capture file ({})",
            describe(&e)
        ))
    })?;
    let mut stats = SourceStats::default();
    // pcapng: per interface, link type and timestamp unit (ticks per second) and offset.
    let mut interfaces: Vec<(i32, u64, i64)> = Vec::new();
    let mut big_endian = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // pcap-parser can panic on crafted blocks (an unchecked length subtraction
        // in its pcapng block parser, found by fuzzing): treat that as corruption.
        let r = &mut reader;
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let r = r; // moved in, so the block may borrow the reader past the closure
            r.next()
        }));
        let Ok(next) = next else {
            corrupt(name, &mut stats, reader.consumed(), "malformed block");
            break;
        };
        match next {
            Ok((offset, block)) => {
                // Classic pcap never gets here: its header is recognised above, by
                // the same parser, and read by `legacy::read`.
                let verdict = match block {
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                        big_endian = shb.big_endian();
                        interfaces.clear();
                        Flow::Continue(())
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let unit = idb.ts_resolution().unwrap_or(1_000_000);
                        interfaces.push((idb.linktype.0, unit, idb.ts_offset()));
                        Flow::Continue(())
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (lt, unit, off) = interfaces
                            .get(epb.if_id as usize)
                            .copied()
                            .unwrap_or((1, 1_000_000, 0));
                        let ticks = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                        let ts = ticks_to_ns(ticks, unit, off);
                        emit(
                            &mut stats,
                            on_packet,
                            ts,
                            lt,
                            epb.packet_data(),
                            epb.origlen,
                        )
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let lt = interfaces.first().map_or(1, |i| i.0);
                        emit(&mut stats, on_packet, 0, lt, spb.packet_data(), spb.origlen)
                    }
                    _ => Flow::Continue(()),
                };
                // Without the shift `consume` does past half the buffer (which moved
                // every byte once more); `refill` shifts what is left, a record at most.
                reader.consume_noshift(offset);
                if verdict.is_break() {
                    break;
                }
            }
            Err(PcapError::Eof) => break,
            Err(
                e @ (PcapError::Incomplete(_)
                | PcapError::UnexpectedEof
                | PcapError::BufferTooSmall),
            ) => {
                let (eof, full) = (
                    matches!(e, PcapError::UnexpectedEof),
                    matches!(e, PcapError::BufferTooSmall),
                );
                // A block that is not whole yet: one whose length cannot be is
                // corrupt, whether or not the file holds that many bytes.
                if let Some(len) = absurd_block_len(reader.data(), big_endian) {
                    let why = format!("block length {len}, more than the maximum of {READ_BUFFER}");
                    corrupt(name, &mut stats, reader.consumed(), &why);
                    break;
                }
                if eof {
                    // A stop cuts the input short on purpose.
                    if !stop.load(Ordering::Relaxed) {
                        stats.truncated = Some(truncated(name, &stats));
                    }
                    break;
                }
                if full && capacity < READ_BUFFER {
                    capacity = (capacity * 4).min(READ_BUFFER);
                    reader.grow(capacity);
                } else if full {
                    corrupt(name, &mut stats, reader.consumed(), "record too large");
                    break;
                } else {
                    reader.refill().map_err(|e| {
                        CaptureError(format!("{name}: read error ({})", describe(&e)))
                    })?;
                }
            }
            Err(e) => {
                let why = describe(&e);
                corrupt(name, &mut stats, reader.consumed(), &why);
                break;
            }
        }
    }
    Ok(stats)
}

/// What a file that ends in the middle of a record is told with (a warning: every
/// packet before it was read).
fn truncated(name: &str, stats: &SourceStats) -> String {
    format!(
        "{name}: file ends in the middle of a record after {} packets (truncated capture)",
        stats.packets
    )
}

/// A file found corrupt at byte `offset`, after `stats.packets` packets: the end of
/// the file, and an error once those packets are decoded.
fn corrupt(name: &str, stats: &mut SourceStats, offset: usize, why: &str) {
    stats.corrupt = Some(format!(
        "{name}: corrupt capture at byte {offset}, after {} packets ({why})",
        stats.packets
    ));
}

/// The length of the pcapng block at the start of `data`, when no block can be that
/// long (more than the read buffer holds).
fn absurd_block_len(data: &[u8], big_endian: bool) -> Option<u32> {
    let head: [u8; 12] = data.get(..12)?.try_into().ok()?;
    let word = |i: usize, big: bool| {
        let b = [head[i], head[i + 1], head[i + 2], head[i + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    // A section header states its own byte order.
    let big = if word(0, false) == 0x0A0D_0D0A {
        word(8, true) == 0x1A2B_3C4D
    } else {
        big_endian
    };
    let len = word(4, big);
    (len as usize > READ_BUFFER).then_some(len)
}

/// The bytes read while looking for a classic pcap header, then the rest of the
/// input. The read that returns the last of them also reads on, as the first read
/// of the whole input would have: pcap-parser looks for a whole pcapng section
/// header in its first read.
struct Prefixed<R> {
    prefix: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.prefix[self.at..];
        if rest.is_empty() {
            return self.inner.read(buf);
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        if self.at < self.prefix.len() || n == buf.len() {
            return Ok(n);
        }
        // An error here comes back on the next read.
        Ok(n + self.inner.read(&mut buf[n..]).unwrap_or(0))
    }
}

/// A pipe or standard input can block forever in `read`; a stop (signal) must
/// still end the run. Waits for data in slices of 100 ms and, once `stop` is set,
/// reads as at the end of the input. Regular files never block and need none of it.
pub(crate) struct Stoppable<'s, R> {
    inner: R,
    stop: &'s AtomicBool,
}

impl<'s, R: Read + AsFd> Stoppable<'s, R> {
    pub(crate) fn new(inner: R, stop: &'s AtomicBool) -> Self {
        Stoppable { inner, stop }
    }
}

impl<R: Read + AsFd> Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(0);
            }
            match poll_in(self.inner.as_fd()) {
                Ok(0) | Err(Errno::EINTR) => continue,
                // Readable, closed or failed: `read` says which.
                _ => return self.inner.read(buf),
            }
        }
    }
}

/// Waits up to 100 ms for `fd` to be readable (or closed, or failed).
fn poll_in(fd: BorrowedFd<'_>) -> nix::Result<i32> {
    poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], 100u16)
}

/// Timestamp ticks of `unit` per second to nanoseconds. A corrupt block can hold any
/// ticks, unit or offset: out-of-range values saturate instead of overflowing.
fn ticks_to_ns(ticks: u64, unit: u64, offset_secs: i64) -> i64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(unit.max(1));
    i64::try_from(ns)
        .unwrap_or(i64::MAX)
        .saturating_add(offset_secs.saturating_mul(1_000_000_000))
}

fn emit(
    stats: &mut SourceStats,
    on_packet: &mut dyn FnMut(Packet<'_>) -> Flow,
    ts_ns: i64,
    linktype: i32,
    data: &[u8],
    orig_len: u32,
) -> Flow {
    stats.packets += 1;
    stats.bytes += data.len() as u64;
    on_packet(Packet {
        ts_ns,
        linktype,
        data,
        orig_len,
    })
}

fn describe<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof => "empty file".into(),
        PcapError::HeaderNotRecognized => "unknown file header".into(),
        PcapError::ReadError => "read failed".into(),
        PcapError::UnexpectedEof | PcapError::Incomplete(_) => "unexpected end of file".into(),
        PcapError::BufferTooSmall => "record too large".into(),
        PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => {
            format!("malformed block: {k:?}")
        }
    }
}

/// Options for a live capture.
#[derive(Clone, Copy)]
pub struct LiveOptions<'a> {
    /// Interface name (`-i`).
    pub interface: &'a str,
    /// BPF filter expression (empty: every packet).
    pub filter: &'a str,
    /// Bytes kept of each frame (`-s`).
    pub snaplen: i32,
    /// Kernel ring size in bytes.
    pub buffer_bytes: i32,
    /// File the packets are also written to (`-w`).
    pub savefile: Option<&'a str>,
}

/// What a live capture calls besides the packet callback.
pub struct Hooks<'a> {
    /// Called once the handle is open (and the savefile created), before any packet:
    /// the place to drop privileges.
    pub after_open: &'a mut (dyn FnMut() -> Result<(), String> + Send),
    /// Called while capturing when libpcap has dropped packets since the last call
    /// (checked about once a second): `(new drops, total so far)`.
    pub on_drops: &'a mut dyn FnMut(u64, u64),
    /// Called when libpcap has no packet ready (a batching consumer hands over what
    /// it holds).
    pub on_idle: Option<&'a mut dyn FnMut()>,
}

/// How often a live capture asks libpcap for its drop count.
const DROP_CHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// Packets between two looks at the clock for [`DROP_CHECK`].
const DROP_CHECK_PACKETS: u32 = 1024;

/// Decides when libpcap's drop count is read and when a growth is reported: at
/// most once per [`DROP_CHECK`], and only for drops not reported yet.
#[derive(Debug)]
pub(crate) struct DropWatch {
    reported: u64,
    next: std::time::Instant,
}

impl DropWatch {
    pub(crate) fn new(now: std::time::Instant) -> Self {
        DropWatch {
            reported: 0,
            next: now + DROP_CHECK,
        }
    }

    /// Whether the drop count is due to be read.
    pub(crate) fn due(&self, now: std::time::Instant) -> bool {
        now >= self.next
    }

    /// Takes a total read at `now`: the drops to report, if there are new ones.
    pub(crate) fn update(&mut self, now: std::time::Instant, total: u64) -> Option<(u64, u64)> {
        self.next = now + DROP_CHECK;
        let new = total.checked_sub(self.reported).filter(|&n| n > 0)?;
        self.reported = total;
        Some((new, total))
    }
}

/// A reader that counts the bytes read, for the progress bar of offline files.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, count: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Captures from a live interface until `stop` is set or the callback breaks.
pub(crate) fn read_live(
    opts: LiveOptions<'_>,
    mut hooks: Hooks<'_>,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(Packet<'_>) -> Flow,
) -> Result<SourceStats, CaptureError> {
    let err = |what: &str, e: pcap::Error| CaptureError(format!("{}: {what}: {e}", opts.interface));
    let mut cap = pcap::Capture::from_device(opts.interface)
        .map_err(|e| {
            let hint = open_hint(&e.to_string());
            CaptureError(format!("{}: no such device: {e}{hint}", opts.interface))
        })?
        .promisc(true)
        .snaplen(opts.snaplen)
        // Not immediate: libpcap then uses TPACKET_V3, whose ring hands over whole
        // blocks (filled, or retired after the 100 ms timeout), far fewer wake-ups
        // under load than a packet at a time; records wait at most that long.
        .immediate_mode(false)
        .buffer_size(opts.buffer_bytes)
        .timeout(100)
        .open()
        .map_err(|e| {
            let hint = open_hint(&e.to_string());
            CaptureError(format!(
                "{}: cannot open capture: {e}{hint}",
                opts.interface
            ))
        })?;
    cap.filter(opts.filter, true)
        .map_err(|e| err("bad capture filter", e))?;
    // Non-blocking, with our own poll: libpcap's read timeout does not return on an
    // idle interface with TPACKET_V3, and Ctrl-C must stop the capture there too.
    let mut cap = cap
        .setnonblock()
        .map_err(|e| err("cannot set non-blocking mode", e))?;
    let linktype = cap.get_datalink().0;
    let mut save = match opts.savefile {
        Some(path) => {
            // Raw packets may hold credentials: only the owner may read the file.
            let _ = std::fs::remove_file(path);
            let old = umask(Mode::from_bits_truncate(0o077));
            let file = cap.savefile(path);
            umask(old);
            Some(file.map_err(|e| err("cannot create -w file", e))?)
        }
        None => None,
    };
    (hooks.after_open)().map_err(CaptureError)?;
    let mut stats = SourceStats::default();
    let mut drops = DropWatch::new(std::time::Instant::now());
    let mut since_check = 0u32;
    // Drops are reported while capturing, when they happen, not only at the end.
    let mut check_drops = |cap: &mut pcap::Capture<pcap::Active>| {
        let now = std::time::Instant::now();
        if drops.due(now)
            && let Ok(s) = cap.stats()
            && let Some((new, total)) =
                drops.update(now, u64::from(s.dropped) + u64::from(s.if_dropped))
        {
            (hooks.on_drops)(new, total);
        }
    };
    // Once stopped, packets still go on for one block timeout: the ring hands over
    // the last block only when the kernel retires it.
    let mut drain_until = None;
    loop {
        match drain_until {
            Some(end) if std::time::Instant::now() >= end => break,
            Some(_) => {}
            None if stop.load(Ordering::Relaxed) => {
                drain_until =
                    Some(std::time::Instant::now() + std::time::Duration::from_millis(150));
            }
            None => {}
        }
        match cap.next_packet() {
            Ok(p) => {
                if let Some(s) = save.as_mut() {
                    s.write(&p);
                }
                let ts = p.header.ts.tv_sec * 1_000_000_000 + p.header.ts.tv_usec * 1000;
                if emit(&mut stats, on_packet, ts, linktype, p.data, p.header.len).is_break() {
                    break;
                }
                since_check += 1;
                if since_check >= DROP_CHECK_PACKETS {
                    since_check = 0;
                    check_drops(&mut cap);
                }
            }
            Err(pcap::Error::TimeoutExpired) => {
                if let Some(idle) = hooks.on_idle.as_mut() {
                    idle();
                }
                check_drops(&mut cap);
                let _ = poll_in(cap.as_fd());
            }
            Err(e) => return Err(err("capture failed", e)),
        }
    }
    if let Some(mut s) = save {
        let _ = s.flush();
    }
    if let Ok(s) = cap.stats() {
        stats.dropped = s.dropped as u64 + s.if_dropped as u64;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::PcapWriter;

    fn lengths(file: &[u8]) -> (Vec<usize>, SourceStats) {
        let mut lens = Vec::new();
        let stats = read_file("t", file, &AtomicBool::new(false), &mut |p| {
            lens.push(p.data.len());
            Flow::Continue(())
        })
        .unwrap();
        (lens, stats)
    }

    #[test]
    fn buffer_grows_for_large_records_up_to_the_cap() {
        let mut w = PcapWriter::new(Vec::new(), 1, 1 << 21).unwrap();
        for n in [10, 200_000, 900_000, 10, 1_100_000, 10] {
            w.record(0, &vec![0; n], n as u32).unwrap();
        }
        let (lens, stats) = lengths(&w.into_inner());
        assert_eq!(lens, [10, 200_000, 900_000, 10]);
        assert!(stats.truncated.is_none());
        assert!(
            stats
                .corrupt
                .unwrap()
                .contains("at byte 1100108, after 4 packets (record too large)")
        );
    }

    #[test]
    fn drops_are_read_once_a_second_and_reported_when_they_grow() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let mut w = DropWatch::new(t0);
        assert!(!w.due(t0));
        assert!(!w.due(t0 + Duration::from_millis(999)));
        let t1 = t0 + DROP_CHECK;
        assert!(w.due(t1));
        assert_eq!(w.update(t1, 0), None, "no drops yet");
        assert!(
            !w.due(t1 + Duration::from_millis(500)),
            "next read a second later"
        );
        let t2 = t1 + DROP_CHECK;
        assert_eq!(w.update(t2, 120), Some((120, 120)));
        let t3 = t2 + DROP_CHECK;
        assert_eq!(w.update(t3, 120), None, "reported already");
        assert_eq!(w.update(t3 + DROP_CHECK, 150), Some((30, 150)));
        // A counter that went backwards (a reset handle) reports nothing new.
        assert_eq!(w.update(t3 + 2 * DROP_CHECK, 10), None);
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(ticks_to_ns(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ticks_to_ns(7, 1_000_000_000, 2), 2_000_000_007);
        assert_eq!(ticks_to_ns(3, 1024, 0), 2_929_687);
        assert_eq!(ticks_to_ns(u64::MAX, 1_000_000, 0), i64::MAX);
        assert_eq!(ticks_to_ns(1, 0, i64::MIN), i64::MIN + 1_000_000_000);
    }
}
