//! ConnDecoder, both modes and directions: the input is a script of feeds and gaps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgscope::pgwire::{ConnDecoder, Dir, Event};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    // Bit 0: mid-stream; bit 1: small buffer cap, to reach the oversize path.
    let max = if mode & 2 != 0 { 64 } else { 1 << 20 };
    let mut d = ConnDecoder::with_max_message(mode & 1 != 0, max);
    let mut sink = |e: Event<'_>| {
        if let Event::Msg(m) = e {
            let _ = m.name();
        }
    };
    // Each op: a control byte (bit 0 direction, bit 1 gap, the rest a length), then data.
    while let Some((&op, tail)) = rest.split_first() {
        let dir = if op & 1 == 0 {
            Dir::Frontend
        } else {
            Dir::Backend
        };
        let n = usize::from(op >> 2) * 4 + 1;
        if op & 2 != 0 {
            d.gap(dir, n as u64, &mut sink);
            rest = tail;
            continue;
        }
        let (chunk, after) = tail.split_at(n.min(tail.len()));
        d.feed(dir, chunk, &mut sink);
        rest = after;
    }
    assert!(d.buffered_bytes() <= (1 << 20) + (64 << 10));
});
