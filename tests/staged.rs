//! The offline pipeline cut across threads (TCP on the reading thread, decoding on a
//! second, formatting on a third) writes exactly what the one-thread pipeline
//! writes, on every capture the project ships and on peers' captures; so does
//! decoding sharded by connection over several threads (`--threads`), cancels across
//! shards included, and no shared value is dropped on a thread that does not own it.

use pgscope::anomaly::AnomalyKind;
use pgscope::capture::{self, Flow};
use pgscope::output::Sink;
use pgscope::output::json::{JsonSink, RecordKind};
use pgscope::output::threaded::Threaded;
use pgscope::pipeline::staged::{Spread, Staged};
use pgscope::pipeline::{Feed, Pipeline};
use pgscope::session::shared::foreign_drops;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// Output shared with the formatting thread.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn records() -> Vec<RecordKind> {
    vec![RecordKind::Query, RecordKind::Session, RecordKind::Anomaly]
}

fn run(path: &Path, mut feed: Box<dyn Feed + '_>) {
    let file = std::fs::File::open(path).unwrap();
    let stats = capture::read_file("t", file, &AtomicBool::new(false), &mut |p| {
        feed.packet(&p).unwrap();
        Flow::Continue(())
    })
    .unwrap();
    if let Some(w) = stats.truncated {
        feed.warn(AnomalyKind::TruncatedCapture, &w).unwrap();
    }
    feed.stats().packets = stats.packets;
    feed.finish().unwrap();
}

fn captures() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures"
    ))];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

const PORTS: [u16; 2] = [5432, 5433];

/// The JSON records of a capture through the one-thread pipeline.
fn one_thread(path: &Path) -> Vec<u8> {
    let mut one = Vec::new();
    let mut sink = JsonSink::new(&mut one, records(), false);
    run(
        path,
        Box::new(Pipeline::new(&mut sink, PORTS.to_vec(), Default::default())),
    );
    drop(sink);
    one
}

/// The same through the staged pipeline with `shards` decoding threads.
fn staged(path: &Path, shards: usize) -> Vec<u8> {
    let out = Shared::default();
    let json = Box::new(JsonSink::new(out.clone(), records(), false));
    let sinks: Vec<Box<dyn Sink + Send>> = if shards == 1 {
        vec![Box::new(Threaded::new(json))]
    } else {
        Threaded::shards(json, shards)
            .into_iter()
            .map(|t| Box::new(t) as Box<dyn Sink + Send>)
            .collect()
    };
    run(
        path,
        Box::new(Staged::sharded(sinks, PORTS.to_vec(), Default::default())),
    );
    out.0.lock().unwrap().clone()
}

#[test]
fn staged_and_sharded_pipelines_write_what_one_thread_writes() {
    let drops_before = foreign_drops();
    let mut compared = 0;
    for path in captures() {
        let one = one_thread(&path);
        for shards in [1, 2, 3, 4] {
            let out = staged(&path, shards);
            assert!(
                one == out,
                "{}: {} bytes in one thread, {} with {shards} decoding threads",
                path.display(),
                one.len(),
                out.len()
            );
        }
        compared += usize::from(!one.is_empty());
    }
    assert!(compared > 25, "{compared} captures with records");
    // Every record went back to the decoding thread that made it.
    assert_eq!(
        foreign_drops(),
        drops_before,
        "shared values dropped abroad"
    );
}

#[test]
fn connections_go_to_the_shard_with_the_fewest_open() {
    let mut s = Spread::new(2);
    // Four long connections: two a shard (a hash of their addresses put pgbench's
    // four three to one).
    let four: Vec<u8> = (0..4).map(|_| s.open()).collect();
    assert_eq!(four, [0, 1, 0, 1]);
    // One closes: the next goes where it was.
    s.close(1);
    assert_eq!(s.open(), 1);
    // Connections one at a time (connect, query, disconnect) take turns.
    let mut s = Spread::new(3);
    let turns: Vec<u8> = (0..6)
        .map(|_| {
            let shard = s.open();
            s.close(shard);
            shard
        })
        .collect();
    assert_eq!(turns, [0, 1, 2, 0, 1, 2]);
    // Out-of-range input is ignored rather than trusted.
    s.close(200);
    assert!(s.open() < 3);
}

#[test]
fn cancels_are_matched_across_shards() {
    for name in ["cancel-30.pcap", "cancel-32.pcap"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name);
        let one = one_thread(&path);
        let recs: Vec<serde_json::Value> = one
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let cancel = recs
            .iter()
            .find(|r| r["pgwire.cancel.target_conn_id"].is_u64())
            .expect("a CancelRequest matched to its target");
        let target_id = cancel["pgwire.cancel.target_conn_id"].as_u64();
        assert!(
            recs.iter()
                .any(|r| r["pgwire.cancelled_by"].as_u64() == cancel["pgwire.conn_id"].as_u64()),
            "{name}: a statement cancelled by it"
        );
        let target = recs
            .iter()
            .find(|r| {
                r["event.dataset"] == "pgwire.session" && r["pgwire.conn_id"].as_u64() == target_id
            })
            .unwrap();
        // The target is the first connection and still open when the cancel's opens
        // (each record's start is its first packet, its end its last): `Spread`
        // then puts the two on different shards, whatever the number of threads.
        let stamp = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap().to_owned();
        assert!(recs.iter().all(|r| r["event.dataset"] != "pgwire.session"
            || stamp(r, "event.start") >= stamp(target, "event.start")));
        assert!(stamp(target, "event.end") > stamp(cancel, "event.start"));
        for n in 2..=8 {
            let mut spread = Spread::new(n);
            assert_ne!(spread.open(), spread.open(), "{name}: {n} threads");
            assert!(staged(&path, n) == one, "{name}: {n} threads");
        }
    }
}
