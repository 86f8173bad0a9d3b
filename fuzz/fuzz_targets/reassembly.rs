//! TCP reassembly on arbitrary segment sequences (two connections, small caps).
//!
//! Payload bytes are the low byte of their own sequence number, so the handler can
//! check that every delivered byte sits at the right stream offset: reassembly may
//! lose bytes (as announced gaps) but must never misplace or repeat them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgscope::net::Segment;
use pgscope::tcp::{CloseReason, ConnMeta, FlowTable, Handler, Limits, Shape, Side};
use std::net::IpAddr;

/// Per connection: the low byte of the next expected sequence number of each side.
#[derive(Default)]
struct Expect([Option<u8>; 2]);

struct Check;

fn slot(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Handler<Expect> for Check {
    fn shape(&self, payload: &[u8]) -> Shape {
        if payload.first() == Some(&0) {
            Shape::Startup
        } else {
            Shape::Unknown
        }
    }
    fn open(&mut self, _: &ConnMeta) -> Expect {
        Expect::default()
    }
    fn data(
        &mut self,
        _: &ConnMeta,
        e: &mut Expect,
        side: Side,
        _: i64,
        data: &[u8],
        _: Option<u64>,
    ) {
        assert!(!data.is_empty());
        let next = e.0[slot(side)].get_or_insert(data[0]);
        for &b in data {
            assert_eq!(b, *next, "byte delivered at the wrong stream offset");
            *next = next.wrapping_add(1);
        }
    }
    fn gap(&mut self, _: &ConnMeta, e: &mut Expect, side: Side, _: i64, bytes: u64) {
        assert!(bytes > 0);
        if let Some(next) = &mut e.0[slot(side)] {
            *next = next.wrapping_add(bytes as u8);
        }
    }
    fn close(&mut self, _: &ConnMeta, _: Expect, _: i64, _: CloseReason) {}
}

const OP: usize = 6;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_connections: 2,
        max_conn_buffer: 2000,
        max_total_buffer: 3000,
        idle_timeout_ns: 1000,
    };
    let caps = limits.max_total_buffer;
    let mut table: FlowTable<Expect> = FlowTable::new(vec![5432], limits);
    let mut h = Check;
    let payload: Vec<u8> = (0..=255u8).cycle().take(1024 + 256).collect();
    let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
    // Each op: flags and direction, connection, seq offset (u16), ack offset, length.
    for (t, op) in data.chunks_exact(OP).enumerate() {
        let [flags, conn, s0, s1, a, len] = op.try_into().unwrap();
        let from_client = flags & 0x80 == 0;
        let base = u32::from(conn & 3) << 30;
        let seq = base.wrapping_add(u32::from(u16::from_be_bytes([s0, s1])) * 4);
        let len = usize::from(len) * 4;
        // Data of a SYN segment starts after the SYN's own sequence number.
        let syn = u32::from(flags & 0x02 != 0);
        let start = (seq.wrapping_add(syn) & 0xff) as usize;
        let (c, s) = ((ip(conn & 1), 40000), (ip(9), 5432));
        let ((src, sport), (dst, dport)) = if from_client { (c, s) } else { (s, c) };
        let seg = Segment {
            src,
            dst,
            sport,
            dport,
            seq,
            ack: base.wrapping_add(u32::from(a) * 64),
            flags: flags & 0x17,
            payload: &payload[start..start + len],
            // Bit 5: the snaplen cut part of this segment.
            missing: if flags & 0x20 != 0 { 17 } else { 0 },
        };
        // Time moves slowly, so idle sweeps happen too.
        table.process(&seg, t as i64 * 50, &mut h);
        assert!(table.buffered() <= caps + 1024);
    }
    table.close_all(i64::MAX / 2, &mut h);
    assert_eq!(table.buffered(), 0);
    assert!(table.is_empty());
});
