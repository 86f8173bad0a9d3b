//! pgscope: a passive PostgreSQL wire-protocol analyzer.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use clap::Parser;
use libmimalloc_sys as mi;
use pgscope::cli::{Cli, OutputMode};
use pgscope::metrics::Metrics;
use pgscope::output;
use pgscope::pipeline::run::{Presenter, Wrappers};
use pgscope::{capture, filter, pipeline, privs, tui};
use std::io::{self, IsTerminal, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// mimalloc: many small, short-lived allocations (per statement), some freed on the
/// output thread; measurably faster than glibc's malloc for that pattern.
#[global_allocator]
static ALLOC: MiMalloc = MiMalloc;

/// mimalloc through its plain entry points where they give the alignment asked for.
/// The mimalloc crate's allocator calls `mi_malloc_aligned` for every layout, whose
/// checks cost a small allocation about half as much again; every mimalloc block is
/// word-aligned (the first block of a page at 16 bytes, block sizes multiples of a
/// word), so a layout aligned to a word or less needs none of them.
struct MiMalloc;

/// The alignment of every block `mi_malloc` returns.
const WORD: usize = std::mem::size_of::<usize>();

/// `plain(size)` for a layout aligned to a word or less, else `aligned(size, align)`.
///
/// # Safety
/// The two are mimalloc's allocation calls of one kind (plain and aligned).
#[allow(unsafe_code, reason = "calls mimalloc")]
#[inline(always)]
unsafe fn by_alignment(
    layout: std::alloc::Layout,
    plain: unsafe extern "C" fn(usize) -> *mut std::ffi::c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void,
) -> *mut u8 {
    // SAFETY: the caller passes mimalloc's calls, which take any size and a
    // power-of-two alignment (a layout's).
    unsafe {
        if layout.align() <= WORD {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; each call forwards to mimalloc"
)]
// SAFETY: the layouts' alignments are honoured (mimalloc's plain calls give a word,
// its aligned calls any power of two), and `dealloc`/`realloc` get only pointers
// these calls returned, which mimalloc frees and reallocates whatever their alignment.
unsafe impl std::alloc::GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation calls take any size and alignment.
        unsafe { by_alignment(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { by_alignment(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator (the trait's contract).
        unsafe { mi::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the trait's contract).
        unsafe {
            if layout.align() <= WORD {
                mi::mi_realloc(ptr.cast(), new).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new, layout.align()).cast()
            }
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            pipeline::run::say(&e.to_string());
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> io::Result<()> {
    if let Some(done) = cli.standalone(&mut io::stdout().lock()) {
        return done;
    }
    cli.validate().map_err(io::Error::other)?;
    // A bad -f fails before any file is read or the screen taken (live, libpcap
    // checks it when the interface opens).
    if let (Some(f), None) = (cli.user_bpf(), &cli.interface) {
        capture::OfflineFilter::new(&f).map_err(io::Error::other)?;
    }
    // Before any file is opened or created: a bad -Z must leave them alone.
    let become_user = privs::target(cli.user.as_deref()).map_err(io::Error::other)?;
    let become_user = become_user.as_ref();
    // Live, -l, or a pipe: every record is written at once.
    let flush_each = cli.line_buffered();
    let stdout_tty = io::stdout().is_terminal();
    let mode = cli.output.unwrap_or(if stdout_tty {
        OutputMode::Tui
    } else {
        OutputMode::Json
    });
    let filter = filter::parse(cli.filter.as_deref().unwrap_or(""))
        .map_err(|e| io::Error::other(format!("--filter: {e}")))?;
    let _ = ctrlc_handler();
    let tls_keys = tls_keys(cli)?;
    let metrics = start_metrics(cli)?;
    let metrics = metrics.as_ref();
    let out = || io::BufWriter::with_capacity(64 << 10, io::stdout());
    let presenter = match mode {
        OutputMode::Tui => return run_tui(cli, filter, become_user, tls_keys, metrics),
        // JSON lines are gathered in the sink's own buffer and written in whole lines:
        // a BufWriter in between would only copy them once more.
        OutputMode::Json => Presenter::new(
            cli,
            output::json::JsonSink::new(io::stdout(), cli.records.clone(), flush_each),
        ),
        OutputMode::Summary | OutputMode::Html => Presenter::new(
            cli,
            output::summary::SummarySink::with_options(
                out(),
                summary_options(cli, mode, stdout_tty),
            ),
        ),
        OutputMode::Text => Presenter::new(
            cli,
            output::text::TextSink::new(out(), flush_each || stdout_tty).timestamps(cli.timestamps),
        ),
    };
    let taps = pipeline::run::Taps {
        stop: &STOP,
        metrics,
    };
    pipeline::run::records(cli, mode, presenter, filter, tls_keys, become_user, taps)?;
    io::stdout().flush()?;
    linger(cli, metrics)
}

/// `--metrics`: the endpoint is bound now, before privileges are dropped and before
/// any input is read, so that a port in use fails the run at once.
fn start_metrics(cli: &Cli) -> io::Result<Option<Arc<Metrics>>> {
    let Some(addr) = cli.metrics else {
        return Ok(None);
    };
    let m = Arc::new(Metrics::new());
    pgscope::metrics::http::serve(addr, m.clone())?;
    Ok(Some(m))
}

/// `--metrics-linger`: the files are read; the final figures stay up until a signal.
fn linger(cli: &Cli, metrics: Option<&Arc<Metrics>>) -> io::Result<()> {
    if metrics.is_none() || !cli.metrics_linger || cli.interface.is_some() {
        return Ok(());
    }
    pipeline::run::say("input read: serving the final metrics until Ctrl-C (--metrics-linger)");
    while !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
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
    filter: filter::Filter,
    become_user: Option<&privs::Target>,
    tls_keys: Option<pgscope::tls::KeyFiles>,
    metrics: Option<&Arc<Metrics>>,
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
    let limits = tui::state::Limits {
        statements: cli.tui_statements as usize,
        messages_per_session: cli.tui_messages as usize,
        // The overall bound never cuts one session below its own.
        messages_total: (cli.tui_messages as usize).max(300_000),
        ..Default::default()
    };
    let mut state = tui::state::State::new(limits, source, size);
    state.live = cli.interface.is_some();
    let progress = state.input_read.clone();
    let shared = Arc::new(Mutex::new(state));
    let for_capture = shared.clone();
    let cli_owned = cli.clone();
    let become_user = become_user.cloned();
    let metrics = metrics.cloned();
    let worker = std::thread::spawn(move || {
        // The TUI filters its views itself, so its chain is redaction, pooler
        // linking (the query detail shows the links) and metrics.
        let presenter = Presenter::new(&cli_owned, tui::state::TuiSink::new(for_capture.clone()));
        let wrappers = Wrappers {
            filter: filter::Filter::default(),
            found: None,
            metrics: metrics.as_ref(),
        };
        let mut sinks = pipeline::run::chain(&cli_owned, presenter, wrappers, None);
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut pipe = pipeline::Pipeline::new(
                sinks[0].as_mut(),
                cli_owned.server_ports(),
                cli_owned.tcp_limits(),
            );
            if let Some(keys) = tls_keys {
                pipe.decrypt_tls(keys);
            }
            pipeline::run::capture(
                &cli_owned,
                Box::new(pipe),
                become_user.as_ref(),
                Some(&progress),
                pipeline::run::Taps {
                    stop: &STOP,
                    metrics: metrics.as_ref(),
                },
                None,
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

#[cfg(test)]
mod tests {
    use super::MiMalloc;
    use std::alloc::{GlobalAlloc, Layout};

    /// Every size and alignment gets blocks aligned as asked (several at once, so
    /// that a block size class whose blocks are only word-aligned would show), whose
    /// bytes all hold and survive a reallocation, smaller and larger, on both paths.
    #[test]
    #[allow(unsafe_code, reason = "drives the global allocator directly")]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes() {
        let a = MiMalloc;
        let aligned = |p: *mut u8, align: usize| !p.is_null() && (p as usize).is_multiple_of(align);
        let fill = |p: *mut u8, n: usize| {
            // SAFETY: `p` holds at least `n` bytes.
            unsafe { (0..n).for_each(|i| p.add(i).write(i as u8)) }
        };
        let check = |p: *mut u8, n: usize| {
            // SAFETY: `p` holds at least `n` bytes, written by `fill`.
            (0..n).all(|i| unsafe { p.add(i).read() } == i as u8)
        };
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=300).chain([4095, 4096, 70_000]) {
                let layout = |n| Layout::from_size_align(n, align).unwrap();
                let small = (size / 2).max(1);
                for zeroed in [false, true] {
                    // SAFETY: layouts of a non-zero size; each block is freed once,
                    // with the layout it has then.
                    unsafe {
                        let blocks: Vec<*mut u8> = (0..4)
                            .map(|_| match zeroed {
                                true => a.alloc_zeroed(layout(size)),
                                false => a.alloc(layout(size)),
                            })
                            .collect();
                        for p in blocks {
                            assert!(aligned(p, align), "{size} {align}");
                            if zeroed {
                                assert!((0..size).all(|i| p.add(i).read() == 0));
                            }
                            fill(p, size);
                            let p = a.realloc(p, layout(size), small);
                            assert!(aligned(p, align) && check(p, small), "{size} {align}");
                            let p = a.realloc(p, layout(small), size * 3);
                            assert!(aligned(p, align) && check(p, small), "{size} {align}");
                            a.dealloc(p, layout(size * 3));
                        }
                    }
                }
            }
        }
    }
}
