//! Link, IP and TCP header parsing for every supported link type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgscope::net;

const LINKTYPES: [i32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[usize::from(sel) % LINKTYPES.len()];
    // The wire length is at least the captured length; high bits of `sel` add some.
    let orig = frame.len() as u32 + u32::from(sel >> 4) * 100;
    if let Some(seg) = net::parse(lt, frame, orig) {
        assert!(seg.payload.len() <= frame.len());
        assert!(seg.payload.len() as u64 + u64::from(seg.missing) <= u64::from(orig));
    }
});
