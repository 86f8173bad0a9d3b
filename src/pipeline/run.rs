//! The capture loop: reads the chosen source (files in turn, or an interface) and
//! feeds every packet to a [`Feed`], then the run-level warnings and figures.
//! `main.rs` picks the presenter and calls [`records`] (or, for the TUI, [`chain`]
//! and [`capture`] on a worker thread).

use super::{Feed, Pipeline, staged::Staged};
use crate::anomaly::AnomalyKind;
use crate::cli::{Cli, OutputMode};
use crate::metrics::{Collector, Metrics, Tee};
use crate::output::json::RecordKind;
use crate::output::redact::{Redact, Redaction};
use crate::output::{self, Sink};
use crate::{capture, filter, net, privs, tls};
use std::cell::{Cell, RefCell};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// What a run reports to besides its records: the stop flag signals set, and the
/// `--metrics` registry.
#[derive(Clone, Copy)]
pub struct Taps<'a> {
    /// Set by a signal: stop reading and finish.
    pub stop: &'a AtomicBool,
    /// The `--metrics` registry, if any.
    pub metrics: Option<&'a Arc<Metrics>>,
}

/// The metrics collector of a run.
pub(crate) fn collector(cli: &Cli, m: &Arc<Metrics>) -> Collector {
    Collector::new(m.clone(), cli.metrics_top as usize)
}

/// A run's presenter, behind redaction (`--show-secrets`, `--redact-params`): the
/// one way to make what [`chain`] wraps, so no presenter can go without it.
pub struct Presenter(Box<dyn Sink + Send>);

impl Presenter {
    /// `presenter` behind the redaction the command line asks for.
    pub fn new<P: Sink + Send + 'static>(cli: &Cli, presenter: P) -> Self {
        let redaction = Redaction {
            show_secrets: cli.show_secrets,
            redact_params: cli.redact_params,
        };
        // Redaction knows the presenter's type: one dynamic call a record, not two.
        Presenter(Box::new(Redact::new(presenter, redaction)))
    }
}

/// What wraps a run's presenter besides redaction (see [`chain`]).
pub struct Wrappers<'a> {
    /// `--filter` (the TUI filters its views itself and passes none).
    pub filter: filter::Filter,
    /// Set at the first PostgreSQL record, for the closing hint; `None`: no watch.
    pub found: Option<Arc<AtomicBool>>,
    /// `--metrics`: the registry the statements are counted in.
    pub metrics: Option<&'a Arc<Metrics>>,
}

/// The one way a run's presenter is wrapped, innermost first: redaction
/// ([`Presenter`]), the watch for PostgreSQL records, `--filter`, `--pooler-port` linking
/// (after the filter, so statements are linked before it drops any), the formatting
/// thread, or `threads` of them, when `threads` is given, and the metrics collector,
/// which sees every statement (the caller keeps metrics to one decoding thread).
pub fn chain(
    cli: &Cli,
    presenter: Presenter,
    w: Wrappers<'_>,
    threads: Option<usize>,
) -> Vec<Box<dyn Sink + Send>> {
    let mut sink = presenter.0;
    if let Some(found) = w.found {
        sink = Box::new(crate::hints::Noticing::new(sink, found));
    }
    if !w.filter.is_empty() {
        sink = Box::new(output::filtered::Filtered::new(sink, w.filter));
    }
    if !cli.pooler_ports.is_empty() {
        sink = Box::new(crate::pooler::Correlator::new(
            sink,
            cli.pooler_ports.clone(),
        ));
    }
    let sinks: Vec<Box<dyn Sink + Send>> = match threads {
        None => vec![sink],
        Some(1) => vec![Box::new(output::threaded::Threaded::new(sink))],
        Some(n) => output::threaded::Threaded::shards(sink, n)
            .into_iter()
            .map(|t| Box::new(t) as Box<dyn Sink + Send>)
            .collect(),
    };
    let Some(m) = w.metrics else { return sinks };
    sinks
        .into_iter()
        .map(|sink| {
            let tee = Tee::new(sink, collector(cli, m)).client_legs(cli.pooler_ports.clone());
            Box::new(tee) as Box<dyn Sink + Send>
        })
        .collect()
}

/// Runs the capture into `presenter` with the feed that suits the records wanted.
/// Offline records: TCP on this thread, decoding on a second, formatting on a third.
/// Message records borrow the capture buffer and live records are written as they
/// come: both in place, on this thread (so are filtered records).
pub fn records(
    cli: &Cli,
    mode: OutputMode,
    presenter: Presenter,
    filter: filter::Filter,
    tls_keys: Option<tls::KeyFiles>,
    become_user: Option<&privs::Target>,
    taps: Taps<'_>,
) -> io::Result<()> {
    // Live, -l, or a pipe: every record is written at once, in place.
    let in_place = cli.line_buffered() || cli.wants(RecordKind::Message) || !filter.is_empty();
    let ports = cli.server_ports();
    // Set at the first PostgreSQL record: without one, the run ends with a hint.
    let found = Arc::new(AtomicBool::new(false));
    let wrappers = Wrappers {
        filter,
        found: Some(found.clone()),
        metrics: taps.metrics,
    };
    let found = Some(&found);
    if !in_place
        && matches!(
            mode,
            OutputMode::Json | OutputMode::Summary | OutputMode::Html
        )
    {
        // TLS key logs are decrypted with, and metrics collected on, one decoding
        // thread (which sees the live sessions' updates the formatting thread does not).
        let threads = if tls_keys.is_some() || taps.metrics.is_some() {
            1
        } else {
            cli.decoding_threads()
        };
        if threads > 1 {
            // The allocator asks for transparent huge pages, and each thread's heap
            // then takes 2 MiB pages: several decoding threads took peak RSS past
            // 64 MiB (6 threads: 73 MiB, 36 MiB without). One decoding thread keeps
            // them: they save it 4-8% of its CPU time (docs/benchmark.md).
            let _ = nix::sys::prctl::set_thp_disable(true);
        }
        let sinks = chain(cli, presenter, wrappers, Some(threads));
        let mut staged = Staged::sharded(sinks, ports, cli.tcp_limits());
        if let Some(keys) = tls_keys {
            staged.decrypt_tls(keys);
        }
        return capture(cli, Box::new(staged), become_user, None, taps, found);
    }
    let mut sinks = chain(cli, presenter, wrappers, None);
    let mut pipe = Pipeline::new(sinks[0].as_mut(), ports, cli.tcp_limits());
    if let Some(keys) = tls_keys {
        pipe.decrypt_tls(keys);
    }
    capture(cli, Box::new(pipe), become_user, None, taps, found)
}

/// Reads every packet of the capture through the pipeline into `sink`, as
/// `become_user` once the inputs (and the `-w` file) are open. `progress` (TUI)
/// counts the file bytes read and silences warnings on standard error, which would
/// land in the middle of the screen; they still reach the sink. `found` (set once
/// PostgreSQL was seen) asks for the closing hint when it was not.
pub fn capture(
    cli: &Cli,
    pipe: Box<dyn Feed + '_>,
    become_user: Option<&privs::Target>,
    progress: Option<&Arc<AtomicU64>>,
    taps: Taps<'_>,
    found: Option<&Arc<AtomicBool>>,
) -> io::Result<()> {
    let Taps { stop, metrics } = taps;
    let drop_privs = || become_user.map_or(Ok(()), privs::drop_to);
    let quiet = progress.is_some();
    let remaining = Cell::new(cli.count.unwrap_or(u64::MAX));
    let out_err: Cell<Option<io::Error>> = Cell::new(None);
    // Link types `net` cannot read: (type, packets skipped), in the order first seen;
    // the last type known to be readable spares the check on every packet.
    let unsupported: RefCell<Vec<(i32, u64)>> = RefCell::new(Vec::new());
    let readable = Cell::new(capture::LINKTYPE_ETHERNET);
    // Packets and live drop reports both go to the pipeline, one call at a time.
    let pipe = RefCell::new(pipe);
    // -f on files, as tcpdump -r applies it (live, the kernel does).
    let mut offline_bpf = match cli.user_bpf() {
        Some(f) if cli.interface.is_none() => {
            Some(capture::OfflineFilter::new(&f).map_err(io::Error::other)?)
        }
        _ => None,
    };
    let mut census = found.map(|f| crate::hints::PortCensus::new(f.clone()));
    let mut on_packet = |p: capture::Packet<'_>| {
        if let Some(m) = metrics {
            m.packet(p.data.len());
        }
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
        if let Some(bpf) = offline_bpf.as_mut() {
            match bpf.matches(&p) {
                Ok(true) => {}
                Ok(false) => return capture::Flow::Continue(()),
                Err(e) => {
                    out_err.set(Some(io::Error::other(e)));
                    return capture::Flow::Break(());
                }
            }
        }
        if let Some(c) = census.as_mut() {
            c.packet(&p);
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
                say(&format!("warning: {}", super::drop_message(new, total)));
            }
            if let Err(e) = pipe.borrow_mut().drops(new, total) {
                out_err.set(Some(e));
            }
            reported.set(total);
        };
        // No packet for 100 ms: time still passes for idle expiry. An output error
        // (a closed pipe) stops the capture as a packet's would.
        let mut on_idle = || {
            if let Err(e) = pipe
                .borrow_mut()
                .tick(super::wall_ns() - super::TICK_LAG_NS)
            {
                out_err.set(Some(e));
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let stats = super::live::read_live(
            capture::LiveOptions {
                interface: iface,
                filter: &filter,
                snaplen: cli.snaplen(),
                buffer_bytes: i32::try_from(u64::from(cli.buffer_kib) << 10).unwrap_or(i32::MAX),
                savefile: cli.write.as_deref(),
            },
            capture::Hooks {
                after_open: &mut drop_privs,
                on_drops: &mut on_drops,
                on_idle: Some(&mut on_idle),
            },
            stop,
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
                Box::new(capture::Stoppable::new(std::fs::File::from(fd), stop))
            } else {
                let file = std::fs::File::open(name)
                    .map_err(|e| io::Error::other(format!("{name}: {e}")))?;
                if file.metadata().is_ok_and(|m| m.is_file()) {
                    Box::new(file)
                } else {
                    Box::new(capture::Stoppable::new(file, stop))
                }
            };
            inputs.push((name, input));
        }
        drop_privs().map_err(io::Error::other)?;
        for (name, input) in inputs {
            let input = match progress {
                Some(count) => Box::new(capture::CountingReader::new(input, count.clone())),
                None => input,
            };
            let label = if name == "-" { "stdin" } else { name.as_str() };
            let stats =
                capture::read_file(label, input, stop, &mut on_packet).map_err(io::Error::other)?;
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
        pipe.warn(AnomalyKind::TruncatedCapture, w)?;
    }
    for &(linktype, packets) in unsupported.borrow().iter() {
        let w = format!(
            "{packets} packets of {} skipped: not supported",
            linktype_name(linktype)
        );
        if !quiet {
            say(&format!("warning: {w}"));
        }
        pipe.warn(AnomalyKind::UnsupportedLinktype, &w)?;
    }
    for e in &corrupt {
        pipe.warn(AnomalyKind::CorruptCapture, e)?;
    }
    let stats = pipe.stats();
    stats.packets = packets;
    stats.bytes = bytes;
    stats.dropped = dropped;
    pipe.finish()?;
    // After `finish`: the decoding thread has then counted every statement, so a
    // scraper that sees 1 sees the file's figures (set before it, a scrape could
    // catch statements still on their way).
    if let Some(m) = metrics
        && cli.interface.is_none()
    {
        m.input_finished();
    }
    let live_default = cli.interface.is_some() && cli.user_bpf().is_none();
    let live_filter = live_default.then(|| cli.capture_filter());
    // Packets of a link type pgscope cannot read were named already: no hint then.
    if let Some(hint) = census.and_then(|c| c.hint(live_filter.as_deref()))
        && !quiet
        && unsupported.borrow().is_empty()
    {
        say(&hint);
    }
    // What came before the corruption is written; the run still fails.
    if !corrupt.is_empty() {
        return Err(io::Error::other(corrupt.join("; ")));
    }
    Ok(())
}

/// A line on standard error. File and interface names and libpcap's messages may
/// hold control characters (a file named with an escape sequence): escaped, as every
/// text that reaches a terminal.
pub fn say(msg: &str) {
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
