//! pgscope: a passive PostgreSQL wire-protocol analyzer.

use clap::Parser;
use pgscope::cli::{Cli, OutputMode, RecordKind};
use pgscope::output::fields::Redaction;
use pgscope::output::{self, Sink};
use pgscope::{capture, filter, net, pipeline, privs, tui};
use std::cell::{Cell, RefCell};
use std::io::{self, IsTerminal, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// mimalloc: many small, short-lived allocations (per statement), some freed on the
/// output thread; measurably faster than glibc's malloc for that pattern.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            say(&e.to_string());
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> io::Result<()> {
    cli.validate().map_err(io::Error::other)?;
    // Before any file is opened or created: a bad -Z must leave them alone.
    let become_user = privs::target(cli.user.as_deref()).map_err(io::Error::other)?;
    let become_user = become_user.as_ref();
    let live = cli.interface.is_some();
    let stdout_tty = io::stdout().is_terminal();
    let mode = cli.output.unwrap_or(if stdout_tty {
        OutputMode::Tui
    } else {
        OutputMode::Json
    });
    let filter = filter::parse(cli.filter.as_deref().unwrap_or(""))
        .map_err(|e| io::Error::other(format!("--filter: {e}")))?;
    let redaction = Redaction {
        show_secrets: cli.show_secrets,
        redact_params: cli.redact_params,
    };
    let _ = ctrlc_handler();
    let tls_keys = tls_keys(cli)?;
    let out = || io::BufWriter::with_capacity(64 << 10, io::stdout());
    let ports = cli.ports.clone();
    // Offline records: TCP on this thread, decoding on a second, formatting on a
    // third. Message records borrow the capture buffer and live records are written
    // as they come: both in place, on this thread (so are filtered records, whose
    // filter borrows the sink).
    let in_place = live || cli.wants(RecordKind::Message) || !filter.is_empty();
    let mut sink: Box<dyn Sink + Send> = match mode {
        OutputMode::Tui => return run_tui(cli, redaction, filter, become_user, tls_keys),
        // JSON lines are gathered in the sink's own buffer and written in whole lines:
        // a BufWriter in between would only copy them once more.
        OutputMode::Json => Box::new(output::json::JsonSink::new(
            io::stdout(),
            cli.records.clone(),
            redaction,
            live,
        )),
        OutputMode::Summary | OutputMode::Html => {
            Box::new(output::summary::SummarySink::with_options(
                out(),
                summary_options(cli, mode, stdout_tty),
            ))
        }
        OutputMode::Text => Box::new(output::text::TextSink::new(
            out(),
            redaction,
            live || stdout_tty,
        )),
    };
    if !in_place
        && matches!(
            mode,
            OutputMode::Json | OutputMode::Summary | OutputMode::Html
        )
    {
        let sink = Box::new(output::threaded::Threaded::new(sink));
        let mut staged = pipeline::staged::Staged::new(sink, ports, Default::default());
        if let Some(keys) = tls_keys {
            staged.decrypt_tls(keys);
        }
        capture(cli, Box::new(staged), become_user, None)?;
        return io::stdout().flush();
    }
    if filter.is_empty() {
        let mut pipe = pipeline::Pipeline::new(sink.as_mut(), ports, Default::default());
        if let Some(keys) = tls_keys {
            pipe.decrypt_tls(keys);
        }
        capture(cli, Box::new(pipe), become_user, None)?;
    } else {
        let mut filtered = output::filtered::Filtered::new(sink.as_mut(), filter);
        let mut pipe = pipeline::Pipeline::new(&mut filtered, ports, Default::default());
        if let Some(keys) = tls_keys {
            pipe.decrypt_tls(keys);
        }
        capture(cli, Box::new(pipe), become_user, None)?;
    }
    io::stdout().flush()
}

/// `--top`, and the width statement texts are cut to: the terminal's (or $COLUMNS)
/// unless `--wide`; whole when the output is not a terminal, as `ps` does.
fn summary_options(cli: &Cli, mode: OutputMode, tty: bool) -> output::summary::Options {
    let columns = || {
        crossterm::terminal::size()
            .ok()
            .map(|(w, _)| w as usize)
            .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
    };
    output::summary::Options {
        top: cli.top,
        width: if cli.wide || !tty { None } else { columns() },
        html: mode == OutputMode::Html,
    }
}

/// `--tls-keylog`: every file read now (a missing one fails the run); followed while
/// capturing live.
fn tls_keys(cli: &Cli) -> io::Result<Option<pgscope::tls::KeyFiles>> {
    if cli.tls_keylog.is_empty() {
        return Ok(None);
    }
    let keys = pgscope::tls::KeyFiles::open(&cli.tls_keylog, cli.interface.is_some())?;
    if keys.log.is_empty() && cli.interface.is_none() {
        eprintln!("pgscope: warning: the TLS key logs hold no usable key");
    }
    Ok(Some(keys))
}

/// Capture and decoding on a thread of their own, the TUI on this one.
fn run_tui(
    cli: &Cli,
    redaction: Redaction,
    filter: filter::Filter,
    become_user: Option<&privs::Target>,
    tls_keys: Option<pgscope::tls::KeyFiles>,
) -> io::Result<()> {
    if !io::stdout().is_terminal() {
        return Err(io::Error::other(
            "-o tui needs a terminal on standard output",
        ));
    }
    let (source, size) = match &cli.interface {
        Some(iface) => (format!("live {iface}"), None),
        None => {
            // A missing file fails here, before the screen is taken over. The progress
            // bar needs every size; standard input has none.
            let mut sizes = Some(0u64);
            for n in cli.read.iter() {
                if n == "-" {
                    sizes = None;
                    continue;
                }
                let len = std::fs::File::open(n)
                    .and_then(|f| f.metadata())
                    .map_err(|e| io::Error::other(format!("{n}: {e}")))?
                    .len();
                sizes = sizes.map(|s| s + len);
            }
            // File names only: the header line is short.
            let first = cli.read.first().map_or("", |n| {
                if n == "-" {
                    return "stdin";
                }
                std::path::Path::new(n)
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or(n)
            });
            let source = match cli.read.len() {
                0 | 1 => first.to_string(),
                n => format!("{first} +{} more", n - 1),
            };
            (source, sizes)
        }
    };
    let mut state = tui::state::State::new(Default::default(), source, size);
    state.live = cli.interface.is_some();
    let progress = state.input_read.clone();
    let shared = Arc::new(Mutex::new(state));
    let for_capture = shared.clone();
    let cli_owned = cli.clone();
    let become_user = become_user.cloned();
    let worker = std::thread::spawn(move || {
        let mut sink = tui::state::TuiSink::new(for_capture.clone(), redaction);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut pipe =
                pipeline::Pipeline::new(&mut sink, cli_owned.ports.clone(), Default::default());
            if let Some(keys) = tls_keys {
                pipe.decrypt_tls(keys);
            }
            capture(
                &cli_owned,
                Box::new(pipe),
                become_user.as_ref(),
                Some(&progress),
            )
        }));
        let mut st = tui::state::lock(&for_capture);
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => st.fatal = Some(e.to_string()),
            Err(_) => st.crashed = true,
        }
    });
    let result = tui::run(shared.clone(), filter, &STOP);
    // A live capture notices the stop within its 100 ms read timeout; a blocked read of
    // standard input may never return, so do not wait for long.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A capture that failed (e.g. no such interface) fails the run, once the
    // terminal is back.
    match tui::state::lock(&shared).fatal.take() {
        Some(e) => result.and(Err(io::Error::other(e))),
        None => result,
    }
}

/// Reads every packet of the capture through the pipeline into `sink`, as
/// `become_user` once the inputs (and the `-w` file) are open. `progress` (TUI)
/// counts the file bytes read and silences warnings on standard error, which would
/// land in the middle of the screen; they still reach the sink.
fn capture(
    cli: &Cli,
    pipe: Box<dyn pipeline::Feed + '_>,
    become_user: Option<&privs::Target>,
    progress: Option<&Arc<AtomicU64>>,
) -> io::Result<()> {
    let drop_privs = || become_user.map_or(Ok(()), privs::drop_to);
    let quiet = progress.is_some();
    let remaining = Cell::new(cli.count.unwrap_or(u64::MAX));
    let out_err: Cell<Option<io::Error>> = Cell::new(None);
    // Link types `net` cannot read: (type, packets skipped), in the order first seen;
    // the last type known to be readable spares the check on every packet.
    let unsupported: RefCell<Vec<(i32, u64)>> = RefCell::new(Vec::new());
    let readable = Cell::new(net::LINKTYPE_ETHERNET);
    // Packets and live drop reports both go to the pipeline, one call at a time.
    let pipe = RefCell::new(pipe);
    let mut on_packet = |p: capture::Packet<'_>| {
        if p.linktype != readable.get() {
            if net::supported(p.linktype) {
                readable.set(p.linktype);
            } else {
                skip_linktype(&mut unsupported.borrow_mut(), p.linktype, quiet);
                remaining.set(remaining.get() - 1);
                return if remaining.get() == 0 {
                    capture::Flow::Break(())
                } else {
                    capture::Flow::Continue(())
                };
            }
        }
        if let Err(e) = pipe.borrow_mut().packet(&p) {
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
    let mut corrupt = Vec::new();
    let mut dropped = 0;
    let mut packets = 0;
    let mut bytes = 0;
    if let Some(iface) = &cli.interface {
        let filter = cli.capture_filter();
        let mut drop_privs = drop_privs;
        let reported = Cell::new(0);
        let mut on_drops = |new: u64, total: u64| {
            if !quiet {
                say(&format!("warning: {}", pipeline::drop_message(new, total)));
            }
            if let Err(e) = pipe.borrow_mut().drops(new, total) {
                out_err.set(Some(e));
            }
            reported.set(total);
        };
        let stats = capture::read_live(
            capture::LiveOptions {
                interface: iface,
                filter: &filter,
                snaplen: cli.snaplen,
                buffer_bytes: i32::try_from(u64::from(cli.buffer_kib) << 10).unwrap_or(i32::MAX),
                savefile: cli.write.as_deref(),
                after_open: &mut drop_privs,
                on_drops: &mut on_drops,
            },
            &STOP,
            &mut on_packet,
        )
        .map_err(io::Error::other)?;
        // Drops since the last report while capturing (libpcap's final count).
        if stats.dropped > reported.get() {
            on_drops(stats.dropped - reported.get(), stats.dropped);
        }
        dropped = stats.dropped;
        packets = stats.packets;
        bytes = stats.bytes;
    } else {
        // Every input is opened before privileges are dropped: a file only root may
        // read is still read.
        let mut inputs = Vec::with_capacity(cli.read.len());
        for name in &cli.read {
            // Standard input and pipes may block forever: they read through
            // `Stoppable`, so that a signal still ends the run.
            let input: Box<dyn io::Read + Send> = if name == "-" {
                // The descriptor itself: `io::stdin()` buffers, and bytes held in its
                // buffer would not wake the poll.
                let fd = std::os::fd::AsFd::as_fd(&io::stdin()).try_clone_to_owned()?;
                Box::new(capture::Stoppable::new(std::fs::File::from(fd), &STOP))
            } else {
                let file = std::fs::File::open(name)
                    .map_err(|e| io::Error::other(format!("{name}: {e}")))?;
                if file.metadata().is_ok_and(|m| m.is_file()) {
                    Box::new(file)
                } else {
                    Box::new(capture::Stoppable::new(file, &STOP))
                }
            };
            inputs.push((name, input));
        }
        drop_privs().map_err(io::Error::other)?;
        for (name, input) in inputs {
            let input = match progress {
                Some(count) => Box::new(tui::CountingReader::new(input, count.clone())),
                None => input,
            };
            let label = if name == "-" { "stdin" } else { name.as_str() };
            let stats = capture::read_file(label, input, &STOP, &mut on_packet)
                .map_err(io::Error::other)?;
            packets += stats.packets;
            bytes += stats.bytes;
            warnings.extend(stats.truncated);
            corrupt.extend(stats.corrupt);
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
    let mut pipe = pipe.into_inner();
    for w in &warnings {
        if !quiet {
            say(&format!("warning: {w}"));
        }
        pipe.warn("truncated_capture", w)?;
    }
    for &(linktype, packets) in unsupported.borrow().iter() {
        let w = format!(
            "{packets} packets of {} skipped: not supported",
            linktype_name(linktype)
        );
        if !quiet {
            say(&format!("warning: {w}"));
        }
        pipe.warn("unsupported_linktype", &w)?;
    }
    for e in &corrupt {
        pipe.warn("corrupt_capture", e)?;
    }
    let stats = pipe.stats();
    stats.packets = packets;
    stats.bytes = bytes;
    stats.dropped = dropped;
    pipe.finish()?;
    // What came before the corruption is written; the run still fails.
    if !corrupt.is_empty() {
        return Err(io::Error::other(corrupt.join("; ")));
    }
    Ok(())
}

/// A line on standard error. File and interface names and libpcap's messages may
/// hold control characters (a file named with an escape sequence): escaped, as every
/// text that reaches a terminal.
fn say(msg: &str) {
    let mut line = String::from("pgscope: ");
    output::fmt::push_sanitized(&mut line, msg.as_bytes(), false);
    eprintln!("{line}");
}

/// Counts a packet of a link type pgscope cannot read, naming the type on standard
/// error the first time (unless `quiet`).
fn skip_linktype(seen: &mut Vec<(i32, u64)>, linktype: i32, quiet: bool) {
    match seen.iter_mut().find(|(lt, _)| *lt == linktype) {
        Some((_, n)) => *n += 1,
        None => {
            if !quiet {
                say(&format!(
                    "warning: {} is not supported: its packets are skipped",
                    linktype_name(linktype)
                ));
            }
            seen.push((linktype, 1));
        }
    }
}

/// "link type 147 (USER0)", with libpcap's name when it has one.
fn linktype_name(linktype: i32) -> String {
    match pcap::Linktype(linktype).get_name() {
        Ok(name) => format!("link type {linktype} ({name})"),
        Err(_) => format!("link type {linktype}"),
    }
}

/// Ctrl-C, SIGTERM and SIGHUP (`timeout`, `kill`, systemd, `docker stop`, a closed
/// terminal) stop the capture; the pipeline then closes sessions, writes their
/// records and the summary, and the `-w` file is flushed whole. A second signal
/// exits at once.
fn ctrlc_handler() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
}
