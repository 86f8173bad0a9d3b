//! pgscope-damage: makes damaged and synthetic captures to test pgscope against.
//!
//! Damage (reads IN, a pcap or pcapng file; writes OUT as pcap, `-` for stdout):
//!   cut IN OUT                  end the file in the middle of its middle packet
//!   remove INDEX IN OUT         remove the one packet INDEX (0 = the file's first)
//!   drop PERCENT SEED IN OUT    drop that share of packets at random
//!   dropdata PERCENT SEED IN OUT  drop that share of the TCP packets that carry payload
//!   reorder PERCENT SEED IN OUT move that share of packets 1 to 3 places later
//!   swap PERCENT SEED same|cross IN OUT
//!                               swap that share of the adjacent pairs that belong to one
//!                               TCP connection and go the same way (`same`) or opposite
//!                               ways (`cross`); a swapped packet is not swapped again
//!   dup PERCENT SEED IN OUT     send that share of packets twice (the copy 0 to 3 places later)
//!   snaplen BYTES IN OUT        cut every frame to BYTES, as a small snaplen would
//!   midflow N IN OUT            drop the first N packets of every TCP connection
//!   skip N IN OUT               drop the first N packets of the file
//! A damage command may be preceded by `--map FILE`: FILE gets one line per packet
//! written, the packet's index in IN, followed by ` cut` when its frame was shortened,
//! so that a test knows exactly which original packets survived, and where.
//! Synthetic (writes OUT):
//!   lengths OUT                 messages with length fields 0, 3, 0x7fffffff and negative
//!   tiny N OUT                  one connection carrying N tiny messages each way
//!   bigrow BYTES OUT            one query answered by a single DataRow of BYTES bytes
//!   conns N OUT                 N connections open at once (startup and a query each)
//!   halfopen N OUT              N connections that only ever send a SYN

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use pgscope::synth::{self, From, PcapWriter, TcpConn};
use pgscope::{capture, net};
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

/// A captured frame, owned.
#[derive(Clone)]
struct Frame {
    ts_ns: i64,
    data: Vec<u8>,
    orig_len: u32,
    /// Position in the input file.
    idx: usize,
    /// Shortened here (snaplen).
    cut: bool,
    /// The TCP connection and direction, if it is TCP.
    flow: Option<(Conn, bool)>,
    /// TCP with payload (counting bytes a snaplen already cut off).
    data_bearing: bool,
}

/// A TCP connection's endpoints, lower one first.
type Conn = [(std::net::IpAddr, u16); 2];

/// splitmix64: a seeded, dependency-free generator; the damage must be reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 10_000.0 < percent
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Out = PcapWriter<Box<dyn Write>>;

fn open_out(path: &str, linktype: u32) -> io::Result<Out> {
    let w: Box<dyn Write> = if path == "-" {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        Box::new(BufWriter::new(std::fs::File::create(path)?))
    };
    PcapWriter::new(w, linktype, 262_144)
}

fn finish(out: Out) -> io::Result<()> {
    out.into_inner().flush()
}

fn read(path: &str) -> Result<(u32, Vec<Frame>), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut frames = Vec::new();
    let mut linktype = None;
    let mut mixed = false;
    capture::read_file(path, f, &AtomicBool::new(false), &mut |p| {
        mixed |= *linktype.get_or_insert(p.linktype) != p.linktype;
        let seg = net::parse(p.linktype, p.data, p.orig_len);
        let flow = seg.as_ref().map(|s| {
            let (a, b) = ((s.src, s.sport), (s.dst, s.dport));
            if a <= b {
                ([a, b], true)
            } else {
                ([b, a], false)
            }
        });
        frames.push(Frame {
            ts_ns: p.ts_ns,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            idx: frames.len(),
            cut: false,
            flow,
            data_bearing: seg.is_some_and(|s| !s.payload.is_empty() || s.missing > 0),
        });
        capture::Flow::Continue(())
    })
    .map_err(|e| e.to_string())?;
    if mixed {
        return Err(format!("{path}: several link types; pcap output holds one"));
    }
    Ok((linktype.unwrap_or(1) as u32, frames))
}

fn write_frames(path: &str, linktype: u32, frames: &[Frame], map: Option<&str>) -> io::Result<()> {
    let mut out = open_out(path, linktype)?;
    for f in frames {
        out.record(f.ts_ns, &f.data, f.orig_len)?;
    }
    finish(out)?;
    write_map(map, frames)
}

/// The `--map` file: which input packet each output packet is.
fn write_map(map: Option<&str>, frames: &[Frame]) -> io::Result<()> {
    let Some(map) = map else { return Ok(()) };
    let mut w = BufWriter::new(std::fs::File::create(map)?);
    for f in frames {
        writeln!(w, "{}{}", f.idx, if f.cut { " cut" } else { "" })?;
    }
    w.flush()
}

/// Swaps a share of the adjacent pairs of one connection, in one direction or across.
fn swap(mut frames: Vec<Frame>, percent: f64, rng: &mut Rng, cross: bool) -> Vec<Frame> {
    let mut i = 0;
    while i + 1 < frames.len() {
        let pair = match (&frames[i].flow, &frames[i + 1].flow) {
            (Some((c1, d1)), Some((c2, d2))) => c1 == c2 && (d1 != d2) == cross,
            _ => false,
        };
        if pair && rng.chance(percent) {
            frames.swap(i, i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    frames
}

/// Drops the first `n` packets of every TCP connection, as a capture started late would.
fn midflow(frames: Vec<Frame>, n: usize) -> Vec<Frame> {
    let mut seen: std::collections::HashMap<Conn, usize> = std::collections::HashMap::new();
    frames
        .into_iter()
        .filter(|f| {
            f.flow.as_ref().is_none_or(|(c, _)| {
                let k = seen.entry(*c).or_default();
                *k += 1;
                *k > n
            })
        })
        .collect()
}

/// Writes everything, then truncates the file halfway through the middle record.
fn cut(path: &str, linktype: u32, frames: &[Frame], map: Option<&str>) -> io::Result<()> {
    let mid = frames.len() / 2;
    let before: usize = frames[..mid].iter().map(|f| 16 + f.data.len()).sum();
    let len = 24 + before + 16 + frames.get(mid).map_or(0, |f| f.data.len() / 2);
    let mut buf = PcapWriter::new(Vec::new(), linktype, 262_144)?;
    for f in frames {
        buf.record(f.ts_ns, &f.data, f.orig_len)?;
    }
    let mut bytes = buf.into_inner();
    bytes.truncate(len);
    write_bytes(path, &bytes)?;
    write_map(map, &frames[..mid])
}

fn write_bytes(path: &str, bytes: &[u8]) -> io::Result<()> {
    if path == "-" {
        io::stdout().lock().write_all(bytes)
    } else {
        std::fs::write(path, bytes)
    }
}

/// Moves (`copy` false) or copies (`copy` true) a share of frames up to 3 places later.
fn shuffle(frames: Vec<Frame>, percent: f64, rng: &mut Rng, copy: bool) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::with_capacity(frames.len());
    // (frames still to pass, frame) waiting to be written later.
    let mut held: Vec<(u64, Frame)> = Vec::new();
    for f in frames {
        if rng.chance(percent) {
            let delay = rng.below(4) + u64::from(!copy);
            if copy {
                out.push(f.clone());
            }
            held.push((delay, f));
        } else {
            out.push(f);
        }
        for h in &mut held {
            h.0 = h.0.saturating_sub(1);
        }
        let (due, wait): (Vec<_>, Vec<_>) = held.into_iter().partition(|h| h.0 == 0);
        out.extend(due.into_iter().map(|h| h.1));
        held = wait;
    }
    out.extend(held.into_iter().map(|h| h.1));
    out
}

/// Frames of one connection, from handshake through close.
fn session(n: u32, client: &[u8], server: &[u8]) -> Vec<Vec<u8>> {
    let mut c = TcpConn::new(n);
    let mut frames: Vec<Vec<u8>> = c.handshake().into();
    frames.extend(c.stream(From::Client, client));
    frames.extend(c.stream(From::Server, server));
    frames.extend(c.close());
    frames
}

fn login() -> Vec<u8> {
    synth::startup(&[("user", "damage"), ("database", "test")])
}

fn login_reply() -> Vec<u8> {
    [synth::auth_ok(), synth::ready(b'I')].concat()
}

/// Writes frames 1 µs apart.
fn write_synthetic(path: &str, frames: impl IntoIterator<Item = Vec<u8>>) -> io::Result<()> {
    let mut out = open_out(path, 1)?;
    for (i, f) in frames.into_iter().enumerate() {
        out.record(i as i64 * 1000, &f, f.len() as u32)?;
    }
    finish(out)
}

/// Each bad length in its own connection, then a valid query the decoder should find.
fn lengths(path: &str) -> io::Result<()> {
    let bad: [u32; 5] = [0, 3, 0x7fff_ffff, 0x8000_0000, u32::MAX];
    let frames = bad.iter().enumerate().flat_map(|(i, &len)| {
        let mut c = TcpConn::new(i as u32 + 1);
        let mut f: Vec<Vec<u8>> = c.handshake().into();
        f.push(c.data(From::Client, &login()));
        f.push(c.data(From::Server, &login_reply()));
        let mut q = vec![b'Q'];
        q.extend(len.to_be_bytes());
        q.extend(b"select 'bad length'\0");
        f.push(c.data(From::Client, &q));
        // A bad length on the backend side too.
        let mut z = vec![b'Z'];
        z.extend(len.to_be_bytes());
        f.push(c.data(From::Server, &z));
        let follow = format!("select {i} -- after bad length {len:#x}");
        f.push(c.data(From::Client, &synth::query(follow.as_bytes())));
        let reply = [synth::command_complete(b"SELECT 1"), synth::ready(b'I')].concat();
        f.push(c.data(From::Server, &reply));
        f.extend(c.close());
        f
    });
    write_synthetic(path, frames)
}

/// `n` Sync messages answered by `n` ReadyForQuery, in full-size segments.
fn tiny(path: &str, n: usize) -> io::Result<()> {
    let client = [login(), synth::msg(b'S', b"").repeat(n)].concat();
    let server = [login_reply(), synth::ready(b'I').repeat(n)].concat();
    write_synthetic(path, session(1, &client, &server))
}

/// The DataRow is generated a segment at a time: the file may be far larger than RAM.
fn bigrow(path: &str, bytes: u64) -> io::Result<()> {
    let mut out = open_out(path, 1)?;
    let mut ts = 0;
    let mut put = |out: &mut Out, f: &[u8]| {
        ts += 1000;
        out.record(ts, f, f.len() as u32)
    };
    let mut c = TcpConn::new(1);
    for f in c.handshake() {
        put(&mut out, &f)?;
    }
    put(&mut out, &c.data(From::Client, &login()))?;
    put(&mut out, &c.data(From::Server, &login_reply()))?;
    let q = synth::query(b"select big_column from big_table");
    put(&mut out, &c.data(From::Client, &q))?;
    // DataRow header: type, length, one column of `col` bytes.
    let col = bytes.saturating_sub(11).min(i32::MAX as u64 - 10);
    let mut head = vec![b'D'];
    head.extend((col as u32 + 10).to_be_bytes());
    head.extend(1u16.to_be_bytes());
    head.extend((col as u32).to_be_bytes());
    put(&mut out, &c.data(From::Server, &head))?;
    let chunk = vec![b'x'; synth::MAX_SEGMENT];
    let mut left = col;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        put(&mut out, &c.data(From::Server, &chunk[..n]))?;
        left -= n as u64;
    }
    let tail = [synth::command_complete(b"SELECT 1"), synth::ready(b'I')].concat();
    put(&mut out, &c.data(From::Server, &tail))?;
    for f in c.close() {
        put(&mut out, &f)?;
    }
    finish(out)
}

/// `n` connections all opened before any closes: handshakes, then logins and one
/// query each; the capture ends with every connection still open.
fn conns(path: &str, n: u32) -> io::Result<()> {
    let mut cs: Vec<TcpConn> = (1..=n).map(TcpConn::new).collect();
    let hello: Vec<Vec<u8>> = cs.iter_mut().flat_map(|c| c.handshake()).collect();
    let q = synth::query(b"select now()");
    let reply = [synth::command_complete(b"SELECT 1"), synth::ready(b'I')].concat();
    let queries = cs.iter_mut().flat_map(|c| {
        [
            c.data(From::Client, &login()),
            c.data(From::Server, &login_reply()),
            c.data(From::Client, &q),
            c.data(From::Server, &reply),
        ]
    });
    write_synthetic(path, hello.into_iter().chain(queries))
}

fn halfopen(path: &str, n: u32) -> io::Result<()> {
    write_synthetic(
        path,
        (1..=n).map(|i| TcpConn::new(i).control(From::Client, b"S")),
    )
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    let map = match a.as_slice() {
        ["--map", file, ..] => {
            let file = *file;
            a.drain(..2);
            Some(file)
        }
        _ => None,
    };
    let io = |r: io::Result<()>| r.map_err(|e| e.to_string());
    // Reads IN (the next to last argument), damages its frames, writes OUT and the map.
    let damage = |a: &[&str], f: &mut dyn FnMut(Vec<Frame>) -> Result<Vec<Frame>, String>| {
        let [.., inp, out] = a else { unreachable!() };
        let (lt, frames) = read(inp)?;
        io(write_frames(out, lt, &f(frames)?, map))
    };
    match a.as_slice() {
        ["cut", inp, out] => {
            let (lt, frames) = read(inp)?;
            io(cut(out, lt, &frames, map))
        }
        ["remove", i, _, _] => {
            let i: usize = num(i)?;
            damage(&a, &mut |mut fr| {
                if i >= fr.len() {
                    return Err(format!("no packet {i}: the file has {}", fr.len()));
                }
                fr.remove(i);
                Ok(fr)
            })
        }
        [op @ ("drop" | "dropdata"), pct, seed, _, _] => {
            let (pct, mut rng) = (num(pct)?, Rng(num(seed)?));
            let data_only = *op == "dropdata";
            damage(&a, &mut |mut fr| {
                fr.retain(|f| (data_only && !f.data_bearing) || !rng.chance(pct));
                Ok(fr)
            })
        }
        [op @ ("reorder" | "dup"), pct, seed, _, _] => {
            let (pct, mut rng) = (num(pct)?, Rng(num(seed)?));
            damage(&a, &mut |fr| Ok(shuffle(fr, pct, &mut rng, *op == "dup")))
        }
        ["swap", pct, seed, dir @ ("same" | "cross"), _, _] => {
            let (pct, mut rng) = (num(pct)?, Rng(num(seed)?));
            damage(&a, &mut |fr| Ok(swap(fr, pct, &mut rng, *dir == "cross")))
        }
        ["snaplen", n, _, _] => {
            let n: usize = num(n)?;
            damage(&a, &mut |mut fr| {
                for f in &mut fr {
                    f.cut = f.data.len() > n;
                    f.data.truncate(n);
                }
                Ok(fr)
            })
        }
        ["midflow", n, _, _] => {
            let n: usize = num(n)?;
            damage(&a, &mut |fr| Ok(midflow(fr, n)))
        }
        ["skip", n, _, _] => {
            let n: usize = num(n)?;
            damage(&a, &mut |fr| Ok(fr.into_iter().skip(n).collect()))
        }
        ["lengths", out] => io(lengths(out)),
        ["tiny", n, out] => io(tiny(out, num(n)?)),
        ["bigrow", n, out] => io(bigrow(out, num(n)?)),
        ["conns", n, out] => io(conns(out, num(n)?)),
        ["halfopen", n, out] => io(halfopen(out, num(n)?)),
        _ => Err("usage: see the comment at the top of src/bin/pgscope-damage.rs".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgscope-damage: {e}");
            ExitCode::from(2)
        }
    }
}
