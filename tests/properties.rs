//! Property tests: framing is independent of segmentation, reassembly is independent
//! of reordering and duplication, and no input makes any stage panic.

use pgscope::capture::{self, Flow};
use pgscope::net::{self, FLAG_ACK, FLAG_FIN, FLAG_SYN, Segment};
use pgscope::output::json::JsonSink;
use pgscope::output::params::{self as render, Render as _};
use pgscope::pgwire::{ConnDecoder, Dir, Event};
use pgscope::pipeline::Pipeline;
use pgscope::session::params;
use pgscope::synth::{self, From, PcapWriter, TcpConn};
use pgscope::tcp::{CloseReason, ConnMeta, FlowTable, Handler, Limits, Shape, Side};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;

fn sql() -> impl Strategy<Value = Vec<u8>> {
    "[a-zA-Z0-9 ,*()'=_]{0,60}".prop_map(String::into_bytes)
}

fn bind(params: &[Vec<u8>]) -> Vec<u8> {
    let mut b = [synth::cstr(b""), synth::cstr(b"")].concat();
    b.extend([0, 0]);
    b.extend((params.len() as u16).to_be_bytes());
    for p in params {
        b.extend((p.len() as i32).to_be_bytes());
        b.extend(p);
    }
    b.extend([0, 0]);
    synth::msg(b'B', &b)
}

/// One realistic frontend message.
fn frontend_msg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        sql().prop_map(|q| synth::query(&q)),
        (sql(), sql()).prop_map(|(name, q)| {
            synth::msg(
                b'P',
                &[synth::cstr(&name), synth::cstr(&q), vec![0, 0]].concat(),
            )
        }),
        vec(vec(any::<u8>(), 0..20), 0..4).prop_map(|p| bind(&p)),
        Just(synth::msg(b'E', &[0, 0, 0, 0, 0])),
        Just(synth::msg(b'D', b"P\0")),
        Just(synth::msg(b'S', b"")),
        Just(synth::msg(b'H', b"")),
        vec(any::<u8>(), 0..300).prop_map(|d| synth::msg(b'd', &d)),
    ]
}

/// One realistic backend message.
fn backend_msg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(synth::auth_ok()),
        (sql(), sql())
            .prop_map(|(k, v)| synth::msg(b'S', &[synth::cstr(&k), synth::cstr(&v)].concat())),
        Just(synth::msg(b'K', &[0, 0, 0, 7, 1, 2, 3, 4])),
        prop_oneof![Just(b'I'), Just(b'T'), Just(b'E')].prop_map(synth::ready),
        vec(proptest::option::of(vec(any::<u8>(), 0..40)), 0..6).prop_map(|cols| {
            let cols: Vec<Option<&[u8]>> = cols.iter().map(|c| c.as_deref()).collect();
            synth::data_row(&cols)
        }),
        sql().prop_map(|t| synth::command_complete(&t)),
        sql().prop_map(|m| {
            let fields = [&b"SERROR\0"[..], b"C42P01\0", b"M", &synth::cstr(&m), b"\0"];
            synth::msg(b'E', &fields.concat())
        }),
        Just(synth::msg(b'1', b"")),
        Just(synth::msg(b'2', b"")),
        Just(synth::msg(b'n', b"")),
    ]
}

/// A client stream (startup, then typed messages), a server stream, and the number
/// of messages in both.
fn session_streams() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, usize)> {
    (vec(frontend_msg(), 0..25), vec(backend_msg(), 0..25)).prop_map(|(fe, be)| {
        let n = fe.len() + be.len() + 1;
        let mut client = synth::startup(&[("user", "u"), ("database", "d")]);
        client.extend(fe.concat());
        (client, be.concat(), n)
    })
}

/// Cuts `data` at the given relative positions (per mille of its length).
fn split<'a>(data: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| data.len() * c as usize / 1000)
        .collect();
    at.push(data.len());
    at.sort_unstable();
    let mut prev = 0;
    at.into_iter()
        .map(|end| {
            let s = &data[prev..end];
            prev = end;
            s
        })
        .collect()
}

fn render(ev: Event<'_>) -> String {
    match ev {
        Event::Msg(m) => format!("{m:?}"),
        Event::Anomaly(a) => format!("{a:?}"),
    }
}

fn decode_all(fe: &[&[u8]], be: &[&[u8]]) -> Vec<String> {
    let mut out = Vec::new();
    let mut d = ConnDecoder::new(false);
    for chunk in fe {
        d.feed(Dir::Frontend, chunk, &mut |e| out.push(render(e)));
    }
    for chunk in be {
        d.feed(Dir::Backend, chunk, &mut |e| out.push(render(e)));
    }
    out
}

/// Records the byte streams a flow table delivers, gaps as '#' runs.
#[derive(Default)]
struct Streams {
    client: Vec<u8>,
    server: Vec<u8>,
    closed: Vec<CloseReason>,
}

impl Handler<()> for Streams {
    fn shape(&self, _: &[u8]) -> Shape {
        Shape::Unknown
    }
    fn open(&mut self, _: &ConnMeta) {}
    fn data(&mut self, _: &ConnMeta, _: &mut (), side: Side, _: i64, data: &[u8], _: Option<u64>) {
        match side {
            Side::Client => self.client.extend_from_slice(data),
            Side::Server => self.server.extend_from_slice(data),
        }
    }
    fn gap(&mut self, _: &ConnMeta, _: &mut (), side: Side, _: i64, bytes: u64) {
        let fill = std::iter::repeat_n(b'#', bytes as usize);
        match side {
            Side::Client => self.client.extend(fill),
            Side::Server => self.server.extend(fill),
        }
    }
    fn close(&mut self, _: &ConnMeta, _: (), _: i64, reason: CloseReason) {
        self.closed.push(reason);
    }
}

fn tcp_seg(client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Segment<'_> {
    let c = (IpAddr::from([10, 0, 0, 2]), 40000);
    let s = (IpAddr::from([10, 0, 0, 1]), 5432);
    let ((src, sport), (dst, dport)) = if client { (c, s) } else { (s, c) };
    Segment {
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        payload,
        missing: 0,
    }
}

/// A segment of one direction: (from the client?, offset into its stream, length).
/// Offset `SYN` stands for a retransmitted SYN (client) or SYN-ACK (server).
type Piece = (bool, usize, usize);
const SYN: usize = usize::MAX;

/// Two streams, a partition of each into segments plus extra overlapping or
/// duplicate segments, all shuffled; and the two initial sequence numbers.
fn pieces() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<Piece>, u32, u32)> {
    (
        vec(any::<u8>(), 1..3000),
        vec(any::<u8>(), 1..3000),
        vec(0u16..1000, 0..12),
        vec(0u16..1000, 0..12),
        vec((any::<bool>(), 0u16..1000, 1usize..400), 0..10),
        vec(any::<bool>(), 0..3),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_flat_map(|(c, s, ccuts, scuts, extra, syns, isn_c, isn_s)| {
            let mut ps: Vec<Piece> = Vec::new();
            for (is_client, data, cuts) in [(true, &c, &ccuts), (false, &s, &scuts)] {
                let mut off = 0;
                for part in split(data, cuts) {
                    if !part.is_empty() {
                        ps.push((is_client, off, part.len()));
                    }
                    off += part.len();
                }
            }
            for (is_client, at, len) in extra {
                let n = if is_client { c.len() } else { s.len() };
                let start = n * at as usize / 1000;
                ps.push((is_client, start, len.min(n - start)));
            }
            ps.extend(syns.into_iter().map(|is_client| (is_client, SYN, 0)));
            (
                Just(c),
                Just(s),
                Just(ps).prop_shuffle(),
                Just(isn_c),
                Just(isn_s),
            )
        })
}

/// A pcap of one synthetic PostgreSQL connection with bytes flipped and the end cut.
fn damaged_pcap() -> impl Strategy<Value = Vec<u8>> {
    (
        session_streams(),
        vec((any::<Index>(), any::<u8>()), 0..20),
        any::<Index>(),
    )
        .prop_map(|((client, server, _), flips, cut)| {
            let mut w = PcapWriter::new(Vec::new(), 1, 65535).unwrap();
            let mut conn = TcpConn::new(1);
            let mut frames: Vec<Vec<u8>> = conn.handshake().into();
            frames.extend(client.chunks(200).map(|c| conn.data(From::Client, c)));
            frames.extend(server.chunks(300).map(|c| conn.data(From::Server, c)));
            frames.extend(conn.close());
            for (i, f) in frames.iter().enumerate() {
                w.record(i as i64 * 1000, f, f.len() as u32).unwrap();
            }
            let mut bytes = w.into_inner();
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= v;
            }
            bytes.truncate(24 + cut.index(bytes.len() - 23));
            bytes
        })
}

/// The whole pipeline, as the binary runs it, on capture-file bytes.
fn run_pipeline(bytes: &[u8]) {
    let mut sink = JsonSink::new(std::io::sink(), Vec::new(), false);
    let mut p = Pipeline::new(&mut sink, vec![5432], Limits::default());
    let stop = AtomicBool::new(false);
    let _ = capture::read_file("input", bytes, &stop, &mut |pkt| {
        p.packet(&pkt).unwrap();
        Flow::Continue(())
    });
    p.finish().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_split_decodes_the_same(
        (client, server, n) in session_streams(),
        fcuts in vec(0u16..1000, 0..40),
        bcuts in vec(0u16..1000, 0..40),
    ) {
        let whole = decode_all(&[&client], &[&server]);
        prop_assert_eq!(whole.len(), n, "a valid stream decodes to its messages: {:?}", whole);
        prop_assert!(whole.iter().all(|e| !e.starts_with("Anomaly")), "{:?}", whole);
        let pieces = decode_all(&split(&client, &fcuts), &split(&server, &bcuts));
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn reordering_and_duplication_deliver_the_same_stream(
        (c, s, ps, isn_c, isn_s) in pieces()
    ) {
        let mut t = FlowTable::new(vec![5432], Limits::default());
        let mut r = Streams::default();
        // Every ACK stays at the peer's first byte: acknowledging more would say a hole
        // is already lost.
        let (cack, sack) = (isn_s.wrapping_add(1), isn_c.wrapping_add(1));
        t.process(&tcp_seg(true, isn_c, 0, FLAG_SYN, b""), 1, &mut r);
        t.process(&tcp_seg(false, isn_s, sack, FLAG_SYN | FLAG_ACK, b""), 2, &mut r);
        for (is_client, off, len) in ps {
            let (data, isn, ack) = if is_client { (&c, isn_c, cack) } else { (&s, isn_s, sack) };
            if off == SYN {
                let flags = if is_client { FLAG_SYN } else { FLAG_SYN | FLAG_ACK };
                t.process(&tcp_seg(is_client, isn, ack, flags, b""), 3, &mut r);
                continue;
            }
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            t.process(&tcp_seg(is_client, seq, ack, FLAG_ACK, &data[off..off + len]), 3, &mut r);
        }
        for (is_client, isn, n, ack) in [(true, isn_c, c.len(), cack), (false, isn_s, s.len(), sack)] {
            let seq = isn.wrapping_add(1 + n as u32);
            t.process(&tcp_seg(is_client, seq, ack, FLAG_FIN | FLAG_ACK, b""), 4, &mut r);
        }
        prop_assert_eq!(&r.client, &c);
        prop_assert_eq!(&r.server, &s);
        prop_assert_eq!(r.closed, vec![CloseReason::Fin]);
        prop_assert_eq!(t.stats.gaps, 0);
        prop_assert_eq!(t.buffered(), 0);
    }

    #[test]
    fn decoder_never_panics(
        midstream: bool,
        max in 5usize..2000,
        ops in vec((0u8..5, vec(any::<u8>(), 0..200), any::<u16>()), 0..30),
    ) {
        let mut d = ConnDecoder::with_max_message(midstream, max);
        let mut ignore = |_: Event<'_>| {};
        for (op, data, gap) in ops {
            let dir = if op % 2 == 0 { Dir::Frontend } else { Dir::Backend };
            if op == 4 {
                d.gap(dir, u64::from(gap), &mut ignore);
            } else {
                d.feed(dir, &data, &mut ignore);
            }
        }
    }

    #[test]
    fn decoder_never_panics_on_near_valid_streams(
        midstream: bool,
        (client, server, _) in session_streams(),
        flips in vec((any::<Index>(), any::<u8>(), any::<bool>()), 1..8),
        cuts in vec(0u16..1000, 0..10),
    ) {
        let (mut client, mut server) = (client, server);
        for (at, v, fe) in flips {
            let buf = if fe || server.is_empty() { &mut client } else { &mut server };
            let i = at.index(buf.len());
            buf[i] ^= v;
        }
        let mut d = ConnDecoder::new(midstream);
        let mut ignore = |_: Event<'_>| {};
        for (f, b) in split(&client, &cuts).into_iter().zip(split(&server, &cuts)) {
            d.feed(Dir::Frontend, f, &mut ignore);
            d.feed(Dir::Backend, b, &mut ignore);
        }
    }

    #[test]
    fn net_parse_never_panics(
        linktype in prop_oneof![
            Just(0), Just(1), Just(12), Just(14), Just(101), Just(108), Just(113),
            Just(228), Just(229), Just(276), any::<i32>()
        ],
        frame in vec(any::<u8>(), 0..120),
        orig_len: u32,
    ) {
        let _ = net::parse(linktype, &frame, orig_len);
    }

    #[test]
    fn pipeline_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..400)) {
        run_pipeline(&bytes);
    }

    #[test]
    fn pipeline_never_panics_on_damaged_captures(bytes in damaged_pcap()) {
        run_pipeline(&bytes);
    }
}

/// Capture files that once crashed the pipeline fuzz target.
#[test]
fn fuzz_regressions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");
    for entry in std::fs::read_dir(dir).unwrap() {
        run_pipeline(&std::fs::read(entry.unwrap().path()).unwrap());
    }
}

fn extreme() -> BoxedStrategy<i64> {
    prop_oneof![
        Just(0i64),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX - 1),
        Just(i64::MIN + 1),
        Just(i64::from(i32::MAX)),
        Just(i64::from(i32::MIN)),
        Just(-1),
        any::<i64>(),
    ]
    .boxed()
}

/// Bytes that are often close to a valid binary value of some decoded type: random,
/// extremes of the usual widths, or inet and numeric headers over random contents.
fn binary_scalar() -> BoxedStrategy<Vec<u8>> {
    let sign = prop_oneof![
        Just(0u16),
        Just(0x4000),
        Just(0xC000),
        Just(0xD000),
        Just(0xF000),
        any::<u16>()
    ];
    prop_oneof![
        vec(any::<u8>(), 0..40),
        extreme().prop_map(|v| v.to_be_bytes().to_vec()),
        extreme().prop_map(|v| (v as i32).to_be_bytes().to_vec()),
        // interval (time, days, months) or timetz (time, zone)
        (extreme(), extreme(), extreme(), any::<bool>()).prop_map(|(t, d, m, tz)| {
            let mut v = [&t.to_be_bytes()[..], &(d as i32).to_be_bytes()].concat();
            if !tz {
                v.extend((m as i32).to_be_bytes());
            }
            v
        }),
        // inet: family, bits, cidr flag, address length, address
        (
            0u8..5,
            any::<u8>(),
            any::<u8>(),
            prop_oneof![Just(4u8), Just(16), any::<u8>()],
            vec(any::<u8>(), 0..18)
        )
            .prop_map(|(f, b, c, n, a)| [vec![f, b, c, n], a].concat()),
        // numeric: digit count (right or not), weight, sign, scale, digits
        (
            any::<Option<u16>>(),
            any::<i16>(),
            sign,
            any::<u16>(),
            vec(prop_oneof![0u16..10_000, any::<u16>()], 0..12)
        )
            .prop_map(|(n, w, s, d, digits)| {
                let n = n.unwrap_or(digits.len() as u16);
                let mut v = [n, w as u16, s, d]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect::<Vec<u8>>();
                v.extend(digits.iter().flat_map(|d| d.to_be_bytes()));
                v
            }),
    ]
    .boxed()
}

/// An array header (dimension count, null flag, element type, then length and lower
/// bound per dimension) over elements of [`binary_scalar`] or NULL, some cut short.
fn binary_array(elem: u32) -> BoxedStrategy<Vec<u8>> {
    (
        0i32..8,
        0i32..3,
        prop_oneof![Just(elem), any::<u32>()],
        vec((-1i32..4, prop_oneof![Just(1i32), any::<i32>()]), 0..7),
        vec(proptest::option::of(binary_scalar()), 0..12),
        0usize..4,
    )
        .prop_map(|(ndim, nulls, elem, dims, elems, cut)| {
            let mut v = [ndim, nulls, elem as i32]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect::<Vec<u8>>();
            for (len, lb) in dims.iter().take(ndim as usize) {
                v.extend(len.to_be_bytes());
                v.extend(lb.to_be_bytes());
            }
            for e in &elems {
                match e {
                    None => v.extend((-1i32).to_be_bytes()),
                    Some(e) => {
                        v.extend((e.len() as i32).to_be_bytes());
                        v.extend(e);
                    }
                }
            }
            v.truncate(v.len().saturating_sub(cut));
            v
        })
        .boxed()
}

/// A type that parameters are decoded for (or any other), with a value for it.
fn typed_binary_value() -> impl Strategy<Value = (u32, Vec<u8>)> {
    let arrays = params::ARRAY_TYPES.to_vec();
    prop_oneof![
        (
            prop_oneof![
                4 => proptest::sample::select(render::SCALAR_TYPES.to_vec()),
                1 => any::<u32>()
            ],
            binary_scalar()
        ),
        proptest::sample::select(arrays).prop_flat_map(|(array, elem)| (
            Just(array),
            prop_oneof![3 => binary_array(elem), 1 => binary_scalar()]
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Rendering never panics or overflows (scripts/test.sh runs this in a debug
    /// build, where arithmetic overflow panics), stays within the cap, and a value
    /// kept by a Bind renders as the whole value does.
    #[test]
    fn binary_parameters_render_without_panic((ty, v) in typed_binary_value()) {
        let whole = render::render(&v, true, ty);
        prop_assert!(whole.chars().count() <= render::MAX_PARAM_CHARS + 24, "{whole}");
        let kept = params::Params::build(&mut Vec::new(), [(Some(&v[..]), true, ty)].into_iter());
        let again: Vec<_> = kept.texts().collect();
        prop_assert_eq!(again[0].as_deref(), Some(whole.as_str()));
    }
}
