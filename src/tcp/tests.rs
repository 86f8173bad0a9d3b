use super::*;
use crate::net::Segment;

/// Records what the table hands on, as (side, bytes) with gaps as '#' runs.
#[derive(Default)]
struct Rec {
    opened: Vec<ConnMeta>,
    client: Vec<u8>,
    server: Vec<u8>,
    closed: Vec<CloseReason>,
    /// When each connection was said to end.
    closed_at: Vec<i64>,
}

impl Handler<()> for Rec {
    fn shape(&self, payload: &[u8]) -> Shape {
        match payload.first_chunk::<3>() {
            _ if payload.starts_with(b"START") => Shape::Startup,
            Some(b"FE:") => Shape::Client,
            Some(b"BE:") => Shape::Server,
            _ => Shape::Unknown,
        }
    }
    fn open(&mut self, meta: &ConnMeta) {
        self.opened.push(meta.clone());
    }
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
    fn close(&mut self, _: &ConnMeta, _: (), ts: i64, reason: CloseReason) {
        self.closed.push(reason);
        self.closed_at.push(ts);
    }
}

const C: (u8, u16) = (1, 40000);
const S: (u8, u16) = (2, 5432);

fn seg(from: (u8, u16), to: (u8, u16), seq: u32, flags: u8, payload: &[u8]) -> Segment<'_> {
    Segment {
        src: IpAddr::from([10, 0, 0, from.0]),
        dst: IpAddr::from([10, 0, 0, to.0]),
        sport: from.1,
        dport: to.1,
        seq,
        ack: 0,
        flags,
        payload,
        missing: 0,
    }
}

fn table() -> FlowTable<()> {
    FlowTable::new(vec![5432], Limits::default())
}

#[test]
fn handshake_roles_and_in_order_data() {
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(C, S, 100, FLAG_SYN, b""), 1, &mut r);
    t.process(&seg(S, C, 900, FLAG_SYN | FLAG_ACK, b""), 2, &mut r);
    t.process(&seg(C, S, 101, FLAG_ACK, b"hello "), 3, &mut r);
    t.process(&seg(C, S, 107, FLAG_ACK, b"world"), 4, &mut r);
    t.process(&seg(S, C, 901, FLAG_ACK, b"ok"), 5, &mut r);
    assert_eq!(r.client, b"hello world");
    assert_eq!(r.server, b"ok");
    assert_eq!(r.opened.len(), 1);
    assert!(!r.opened[0].midstream);
    assert_eq!(r.opened[0].client.1, 40000);
    t.process(&seg(C, S, 112, FLAG_FIN | FLAG_ACK, b""), 6, &mut r);
    t.process(&seg(S, C, 903, FLAG_FIN | FLAG_ACK, b""), 7, &mut r);
    assert_eq!(r.closed, vec![CloseReason::Fin]);
    assert!(t.is_empty());
}

#[test]
fn reordering_retransmission_overlap_and_wraparound() {
    let mut t = table();
    let mut r = Rec::default();
    let isn = u32::MAX - 3; // data crosses the 2^32 wrap
    t.process(&seg(C, S, isn, FLAG_SYN, b""), 1, &mut r);
    let base = isn.wrapping_add(1);
    t.process(
        &seg(C, S, base.wrapping_add(6), FLAG_ACK, b"world"),
        2,
        &mut r,
    );
    t.process(
        &seg(C, S, base.wrapping_add(3), FLAG_ACK, b"lo "),
        3,
        &mut r,
    );
    t.process(&seg(C, S, base, FLAG_ACK, b"hel"), 4, &mut r);
    t.process(&seg(C, S, base, FLAG_ACK, b"hello w"), 5, &mut r); // retransmission
    t.process(
        &seg(C, S, base.wrapping_add(9), FLAG_ACK, b"ld!"),
        6,
        &mut r,
    ); // overlap
    assert_eq!(r.client, b"hello world!");
    assert_eq!(t.stats.gaps, 0);
    assert_eq!(t.buffered(), 0);
    // Every retransmitted byte above repeated what was handed on.
    assert_eq!(t.stats.conflicts, 0);
}

#[test]
fn retransmission_with_other_bytes_is_a_conflict() {
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(C, S, 0, FLAG_SYN, b""), 1, &mut r);
    t.process(&seg(C, S, 1, FLAG_ACK, b"SELECT 1;"), 2, &mut r);
    // Same bytes again: a plain retransmission.
    t.process(&seg(C, S, 1, FLAG_ACK, b"SELECT 1;"), 3, &mut r);
    assert_eq!((t.stats.conflicts, t.stats.conflict_bytes), (0, 0));
    // Other bytes at the same place, overlapping new ones: the first copy stands
    // and the differing byte is counted.
    t.process(&seg(C, S, 5, FLAG_ACK, b"CT 2;--"), 4, &mut r);
    assert_eq!((t.stats.conflicts, t.stats.conflict_bytes), (1, 1));
    assert_eq!(r.client, b"SELECT 1;--");
    // A gap forgets the tail: bytes from before it cannot be compared.
    t.process(&seg(C, S, 20, FLAG_ACK, b"x"), 5, &mut r);
    t.process(&seg(C, S, 40, FLAG_ACK, b"y"), 6, &mut r);
    t.process(&seg(C, S, 22, FLAG_ACK | FLAG_FIN, b""), 7, &mut r);
    assert_eq!(t.stats.conflicts, 1);
}

#[test]
fn lost_segment_becomes_a_gap_when_acked_past() {
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(C, S, 0, FLAG_SYN, b""), 1, &mut r);
    t.process(&seg(C, S, 1, FLAG_ACK, b"aaaa"), 2, &mut r);
    t.process(&seg(C, S, 9, FLAG_ACK, b"cccc"), 3, &mut r); // bytes 5..9 never captured
    assert_eq!(r.client, b"aaaa");
    let mut ack = seg(S, C, 0, FLAG_ACK, b"");
    ack.ack = 13;
    t.process(&ack, 4, &mut r);
    assert_eq!(r.client, b"aaaa####cccc");
    assert_eq!((t.stats.gaps, t.stats.gap_bytes), (1, 4));
}

#[test]
fn pending_holes_flush_at_end_of_capture() {
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(C, S, 10, FLAG_ACK, b"ab"), 1, &mut r);
    t.process(&seg(C, S, 20, FLAG_ACK, b"cd"), 2, &mut r);
    t.close_all(3, &mut r);
    assert_eq!(r.client, b"ab########cd");
    assert_eq!(r.closed, vec![CloseReason::EndOfCapture]);
    assert!(r.opened[0].midstream);
}

#[test]
fn buffer_cap_forces_gap_instead_of_growth() {
    let limits = Limits {
        max_conn_buffer: 8,
        ..Limits::default()
    };
    let mut t = FlowTable::new(vec![5432], limits);
    let mut r = Rec::default();
    t.process(&seg(C, S, 0, FLAG_ACK, b"x"), 1, &mut r);
    t.process(&seg(C, S, 5, FLAG_ACK, b"12345"), 2, &mut r);
    t.process(&seg(C, S, 10, FLAG_ACK, b"67890"), 3, &mut r);
    assert_eq!(r.client, b"x####1234567890");
    assert_eq!(t.buffered(), 0);
}

#[test]
fn non_port_flows_need_a_startup_packet() {
    let mut t = table();
    let mut r = Rec::default();
    let a = (3, 50000);
    let b = (4, 7777);
    t.process(&seg(a, b, 1, FLAG_ACK, b"GET / HTTP/1.1"), 1, &mut r);
    assert!(r.opened.is_empty());
    t.process(&seg(a, b, 1, FLAG_ACK, b"START up"), 2, &mut r);
    assert_eq!(r.opened.len(), 1);
    assert!(!r.opened[0].midstream);
    assert_eq!(r.opened[0].server.1, 7777);
}

#[test]
fn non_port_flows_are_tracked_and_given_roles_by_message_shape() {
    let mut t = table();
    let mut r = Rec::default();
    // The server's port is the higher one: the port guess alone would swap the roles.
    let client = (3, 6000);
    let server = (4, 7777);
    t.process(&seg(server, client, 1, FLAG_ACK, b"??"), 1, &mut r);
    assert!(r.opened.is_empty(), "unknown shape on no server port");
    t.process(&seg(server, client, 1, FLAG_ACK, b"BE: rows"), 2, &mut r);
    t.process(&seg(client, server, 1, FLAG_ACK, b"FE: query"), 3, &mut r);
    assert_eq!(r.opened.len(), 1);
    assert!(r.opened[0].midstream);
    assert_eq!(r.opened[0].server.1, 7777);
    assert_eq!(r.server, b"BE: rows");
    assert_eq!(r.client, b"FE: query");
}

#[test]
fn both_on_server_ports_the_shape_decides() {
    let mut t = FlowTable::new(vec![5432, 5433], Limits::default());
    let mut r = Rec::default();
    t.process(&seg((1, 5432), (2, 5433), 1, FLAG_ACK, b"FE: x"), 1, &mut r);
    assert_eq!(r.opened[0].server.1, 5433);
    assert_eq!(r.client, b"FE: x");
}

#[test]
fn midstream_server_first_packet_keeps_roles_by_port() {
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(S, C, 500, FLAG_ACK, b"Z"), 1, &mut r);
    assert_eq!(r.opened[0].client, (IpAddr::from([10, 0, 0, 1]), 40000));
    assert_eq!(r.server, b"Z");
}

#[test]
fn rst_closes_and_table_cap_evicts() {
    let limits = Limits {
        max_connections: 4,
        ..Limits::default()
    };
    let mut t = FlowTable::new(vec![5432], limits);
    let mut r = Rec::default();
    for i in 0..10u16 {
        t.process(&seg((1, 40000 + i), S, 0, FLAG_SYN, b""), i as i64, &mut r);
    }
    assert!(t.len() <= 4);
    assert_eq!(t.stats.evicted, 6);
    t.process(&seg((1, 40009), S, 1, FLAG_RST, b""), 20, &mut r);
    assert_eq!(r.closed.last(), Some(&CloseReason::Rst));
}

#[test]
fn snaplen_missing_bytes_are_a_gap() {
    let mut t = table();
    let mut r = Rec::default();
    let mut s = seg(C, S, 0, FLAG_ACK, b"abc");
    s.missing = 2;
    t.process(&s, 1, &mut r);
    t.process(&seg(C, S, 5, FLAG_ACK, b"de"), 2, &mut r);
    assert_eq!(r.client, b"abc##de");
}

#[test]
fn late_duplicate_syn_does_not_rewind_the_stream() {
    // Found by fuzzing: a SYN seen again after data reset the expected sequence
    // number, so later segments were held as a hole and retransmissions re-delivered.
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(C, S, 100, FLAG_SYN, b""), 1, &mut r);
    t.process(&seg(S, C, 900, FLAG_SYN | FLAG_ACK, b""), 2, &mut r);
    t.process(&seg(S, C, 901, FLAG_ACK, b"first "), 3, &mut r);
    t.process(&seg(S, C, 900, FLAG_SYN | FLAG_ACK, b""), 4, &mut r);
    t.process(&seg(S, C, 907, FLAG_ACK, b"second"), 5, &mut r);
    t.process(&seg(S, C, 901, FLAG_ACK, b"first "), 6, &mut r);
    assert_eq!(r.server, b"first second");
    assert_eq!(t.stats.gaps, 0);
}

#[test]
fn giving_up_a_hole_does_not_repeat_queued_bytes() {
    // Found by fuzzing: a snaplen-cut segment overlapping queued data made the table
    // give up the hole and then rewind to the segment's start, repeating the overlap.
    let mut t = table();
    let mut r = Rec::default();
    t.process(&seg(C, S, 100, FLAG_SYN, b""), 1, &mut r);
    t.process(&seg(C, S, 111, 0, b"abcdef"), 2, &mut r);
    let cut = Segment {
        missing: 3,
        ..seg(C, S, 115, 0, b"efgh")
    };
    t.process(&cut, 3, &mut r);
    assert_eq!(r.client, b"##########abcdefgh###");
}

#[test]
fn a_packet_stamped_in_the_past_does_not_make_its_connection_idle() {
    let mut t = table();
    let mut r = Rec::default();
    let s = 1_000_000_000i64;
    t.process(&seg(C, S, 100, FLAG_SYN, b""), 3600 * s, &mut r);
    t.process(&seg(C, S, 101, FLAG_ACK, b"a"), 3600 * s, &mut r);
    // One packet an hour in the past, then the connection goes on.
    t.process(&seg(C, S, 102, FLAG_ACK, b"b"), s, &mut r);
    let other = (3, 40001);
    t.process(&seg(other, S, 7, FLAG_SYN, b""), 3600 * s + 20 * s, &mut r);
    assert!(r.closed.is_empty(), "expired as idle: {:?}", r.closed);
    assert_eq!(r.client, b"ab");
    assert_eq!(t.stats.clock_backwards, 1);
    assert_eq!(t.stats.clock_backwards_max_ns, 3599 * s);
}

#[test]
fn ticks_expire_quiet_connections_without_moving_the_packet_clock() {
    let s = 1_000_000_000i64;
    let limits = Limits {
        idle_timeout_ns: 4 * s,
        ..Limits::default()
    };
    let mut t = FlowTable::new(vec![5432], limits);
    let mut r = Rec::default();
    t.process(&seg(C, S, 100, FLAG_SYN, b""), 100 * s, &mut r);
    t.process(&seg(C, S, 101, FLAG_ACK, b"a"), 101 * s, &mut r);
    // Within the timeout, and a tick in the past: nothing ends.
    t.tick(104 * s, &mut r);
    t.tick(50 * s, &mut r);
    assert!(r.closed.is_empty(), "{:?}", r.closed);
    // A packet still on its way, stamped before the tick, is no step back.
    t.process(&seg(C, S, 102, FLAG_ACK, b"b"), 103 * s, &mut r);
    assert_eq!(t.stats.clock_backwards, 0);
    // Quiet past the timeout (4 s after its last packet, at 103 s): ended as idle.
    t.tick(107 * s + 1, &mut r);
    assert_eq!(r.closed, [CloseReason::Idle]);
    // It ends at its last packet: its duration leaves the timeout out.
    assert_eq!(r.closed_at, [103 * s]);
    assert_eq!(t.stats.idle_closed, 1);
    assert!(t.is_empty());
    assert_eq!(r.client, b"ab");
}

/// The ring of last bytes keeps what a plain vector of the last `TAIL` bytes keeps,
/// whatever the sizes delivered (wrapping, whole rings, clears).
#[test]
fn tail_ring_keeps_the_last_bytes() {
    let mut ring = Tail::default();
    let mut plain: Vec<u8> = Vec::new();
    let mut byte = 0u8;
    for (i, n) in [0usize, 1, 100, 155, 1, 256, 300, 7, 250, 3, 512, 9]
        .into_iter()
        .enumerate()
    {
        if i == 9 {
            ring.clear();
            plain.clear();
        }
        let data: Vec<u8> = (0..n)
            .map(|_| {
                byte = byte.wrapping_add(7);
                byte
            })
            .collect();
        ring.push(&data);
        plain.extend_from_slice(&data);
        plain.drain(..plain.len().saturating_sub(TAIL));
        assert_eq!(ring.len, plain.len(), "after {n}");
        for back in 1..=plain.len() {
            assert_eq!(ring.back(back), plain[plain.len() - back], "{n}: {back}");
        }
    }
}
