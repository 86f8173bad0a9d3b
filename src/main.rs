//! pgscope: a passive PostgreSQL wire-protocol analyzer.

use clap::Parser;
use pgscope::cli::{Cli, OutputMode};
use pgscope::output::fields::Redaction;
use pgscope::output::{self, Sink};
use pgscope::{capture, pipeline, privs};
use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgscope: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> io::Result<()> {
    cli.validate().map_err(io::Error::other)?;
    let live = cli.interface.is_some();
    let stdout_tty = io::stdout().is_terminal();
    let mode = cli.output.unwrap_or(if stdout_tty {
        OutputMode::Text
    } else {
        OutputMode::Json
    });
    let redaction = Redaction {
        show_secrets: cli.show_secrets,
        redact_params: cli.redact_params,
    };
    let out = io::BufWriter::with_capacity(64 << 10, io::stdout().lock());
    let mut sink: Box<dyn Sink> = match mode {
        OutputMode::Json => Box::new(output::json::JsonSink::new(
            out,
            cli.records.clone(),
            redaction,
            live,
        )),
        OutputMode::Text | OutputMode::Tui => Box::new(output::text::TextSink::new(
            out,
            redaction,
            live || stdout_tty,
        )),
        OutputMode::Summary => Box::new(output::summary::SummarySink::new(out)),
    };
    let _ = ctrlc_handler();
    let mut pipe = pipeline::Pipeline::new(sink.as_mut(), cli.ports.clone(), Default::default());
    let remaining = Cell::new(cli.count.unwrap_or(u64::MAX));
    let out_err: Cell<Option<io::Error>> = Cell::new(None);
    let mut on_packet = |p: capture::Packet<'_>| {
        if let Err(e) = pipe.packet(&p) {
            out_err.set(Some(e));
            return capture::Flow::Break(());
        }
        remaining.set(remaining.get() - 1);
        if remaining.get() == 0 {
            capture::Flow::Break(())
        } else {
            capture::Flow::Continue(())
        }
    };
    let mut warnings = Vec::new();
    let mut dropped = 0;
    let mut packets = 0;
    let mut bytes = 0;
    if let Some(iface) = &cli.interface {
        let filter = cli.capture_filter();
        let mut drop_privs = || privs::drop_privileges(cli.user.as_deref());
        let stats = capture::read_live(
            capture::LiveOptions {
                interface: iface,
                filter: &filter,
                snaplen: cli.snaplen,
                savefile: cli.write.as_deref(),
                after_open: &mut drop_privs,
            },
            &STOP,
            &mut on_packet,
        )
        .map_err(io::Error::other)?;
        dropped = stats.dropped;
        packets = stats.packets;
        bytes = stats.bytes;
    } else {
        for name in &cli.read {
            let stats = if name == "-" {
                capture::read_file("stdin", io::stdin(), &STOP, &mut on_packet)
            } else {
                let f = std::fs::File::open(name)
                    .map_err(|e| io::Error::other(format!("{name}: {e}")))?;
                capture::read_file(name, f, &STOP, &mut on_packet)
            }
            .map_err(io::Error::other)?;
            packets += stats.packets;
            bytes += stats.bytes;
            if let Some(w) = stats.truncated {
                warnings.push(w);
            }
            if remaining.get() == 0 {
                break;
            }
            if let Some(e) = out_err.take() {
                return Err(e);
            }
        }
    }
    if let Some(e) = out_err.take() {
        return Err(e);
    }
    for w in &warnings {
        eprintln!("pgscope: warning: {w}");
        pipe.warn("truncated_capture", w)?;
    }
    if dropped > 0 {
        let w = format!("libpcap dropped {dropped} packets");
        eprintln!("pgscope: warning: {w}");
        pipe.warn("capture_drops", &w)?;
    }
    pipe.stats.packets = packets;
    pipe.stats.bytes = bytes;
    pipe.stats.dropped = dropped;
    pipe.finish()?;
    io::stdout().flush()
}

/// Ctrl-C stops the capture; the pipeline then closes sessions and prints summaries.
fn ctrlc_handler() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
}
