//! Peak memory of sharded decoding. A test file of its own: the children's peak RSS
//! that `getrusage` reports is over every child this process waited for.

use nix::sys::resource::{UsageWho, getrusage};
use std::process::Command;

/// Six decoding threads on a small capture stay small: the allocator's transparent
/// huge pages (2 MiB a thread's heap takes) are turned off when decoding is sharded.
/// With them, this run's peak was 48 MiB on a machine whose THP mode is `madvise`;
/// without, 11 MiB. (Where THP is `never`, the run is small either way.)
#[test]
fn sharded_decoding_does_not_take_huge_pages() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgscope"))
        .args(["-r", "captures/oversize-statements.pcap", "-o", "json"])
        .args(["--threads", "6"])
        .output()
        .expect("pgscope runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    assert!(peak_kib < 32 << 10, "peak RSS {peak_kib} KiB");
}
