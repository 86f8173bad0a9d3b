//! The offline pipeline cut across threads (TCP on the reading thread, decoding on a
//! second, formatting on a third) writes exactly what the one-thread pipeline
//! writes, on every capture the project ships and on peers' captures.

use pgscope::capture::{self, Flow};
use pgscope::cli::RecordKind;
use pgscope::output::json::JsonSink;
use pgscope::output::threaded::Threaded;
use pgscope::pipeline::{Feed, Pipeline, staged::Staged};
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
        feed.warn("truncated_capture", &w).unwrap();
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

#[test]
fn staged_and_one_thread_pipelines_write_the_same() {
    let ports = vec![5432, 5433];
    let mut compared = 0;
    for path in captures() {
        let mut one = Vec::new();
        {
            let mut sink = JsonSink::new(&mut one, records(), false);
            run(
                &path,
                Box::new(Pipeline::new(&mut sink, ports.clone(), Default::default())),
            );
        }
        let out = Shared::default();
        let json = JsonSink::new(out.clone(), records(), false);
        let sink = Box::new(Threaded::new(Box::new(json)));
        run(
            &path,
            Box::new(Staged::new(sink, ports.clone(), Default::default())),
        );
        let staged = out.0.lock().unwrap().clone();
        assert!(
            one == staged,
            "{}: {} bytes in one thread, {} staged",
            path.display(),
            one.len(),
            staged.len()
        );
        compared += usize::from(!one.is_empty());
    }
    assert!(compared > 25, "{compared} captures with records");
}
