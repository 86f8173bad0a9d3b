//! Peak memory of sharded decoding. A test file of its own: the children's peak RSS
//! that `getrusage` reports is over every child this process waited for.

mod common;

use nix::sys::resource::{UsageWho, getrusage};

/// Six decoding threads on a small capture stay small: the allocator's transparent
/// huge pages (2 MiB a thread's heap takes) are turned off when decoding is sharded.
/// With them, this run's peak was 48 MiB on a machine whose THP mode is `madvise`;
/// without, 11 MiB. (Where THP is `never`, the run is small either way.)
#[test]
fn sharded_decoding_does_not_take_huge_pages() {
    let run = common::pgscope(&[
        "-r",
        "captures/oversize-statements.pcap",
        "-o",
        "json",
        "--threads",
        "6",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!run.stdout.is_empty());
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    assert!(peak_kib < 32 << 10, "peak RSS {peak_kib} KiB");
}
