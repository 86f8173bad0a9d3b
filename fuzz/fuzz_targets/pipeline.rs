//! The whole pipeline, as the binary runs it, on arbitrary capture-file bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgscope::capture::{self, Flow};
use pgscope::output::json::JsonSink;
use pgscope::pipeline::Pipeline;
use pgscope::tcp::Limits;
use std::sync::atomic::AtomicBool;

fuzz_target!(|data: &[u8]| {
    let mut sink = JsonSink::new(std::io::sink(), Vec::new(), false);
    let mut p = Pipeline::new(&mut sink, vec![5432], Limits::default());
    let stop = AtomicBool::new(false);
    let _ = capture::read_file("fuzz", data, &stop, &mut |pkt| {
        p.packet(&pkt).unwrap();
        Flow::Continue(())
    });
    p.finish().unwrap();
});
