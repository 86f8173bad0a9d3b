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
use pgscope::pipeline::staged::{Staged, shard_of};
use pgscope::pipeline::{Feed, Pipeline};
use pgscope::session::shared::foreign_drops;
use pgscope::tcp::ConnMeta;
use std::io::Write;
use std::net::IpAddr;
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

/// The connection of a session record, as the flow table names it.
fn meta(rec: &serde_json::Value) -> ConnMeta {
    let end = |ip: &str, port: &str| {
        let ip: IpAddr = rec[ip].as_str().unwrap().parse().unwrap();
        (ip, rec[port].as_u64().unwrap() as u16)
    };
    ConnMeta {
        id: rec["pgwire.conn_id"].as_u64().unwrap(),
        client: end("source.ip", "source.port"),
        server: end("destination.ip", "destination.port"),
        start_ns: 0,
        midstream: false,
        community_id: String::new(),
    }
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
        // Thread counts that put the two connections on different shards.
        let apart: Vec<usize> = (2..=8)
            .filter(|&n| shard_of(&meta(cancel), n) != shard_of(&meta(target), n))
            .collect();
        assert!(!apart.is_empty(), "{name}: never on different shards");
        for n in apart {
            assert!(staged(&path, n) == one, "{name}: {n} threads");
        }
    }
}
