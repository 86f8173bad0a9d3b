//! Command line, following tcpdump/tshark habits.

use crate::output::json::RecordKind;
use clap::{ArgAction, CommandFactory, Parser, ValueEnum};
use std::io::{self, Write};

/// The command line.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "pgscope",
    version,
    about = "Passive PostgreSQL wire-protocol analyzer: decode, follow and summarise what crosses the wire.",
    after_help = "EXAMPLES:
  pgscope -r capture.pcap                      browse a capture (TUI on a terminal, JSON when piped)
  pgscope -r capture.pcap --filter 'db=shop duration>100ms'   TUI: statements over 100 ms on db shop
  pgscope -r capture.pcap -o text              pgproto-style trace of every message
  pgscope -r a.pcap -r b.pcapng -o summary     statistics of two files
  pgscope -r capture.pcap -o html > report.html   report with charts, one file
  pgscope -r capture.pcap | jq 'select(.\"event.dataset\"==\"pgwire.query\")'
  sudo pgscope -i eth0 -p 5432 -p 6432 -w raw.pcap   live, also saving the packets
  pgscope -r tls.pcap --tls-keylog keys.log    decrypt TLS (key log: libpq 18's sslkeylogfile)
  sudo pgscope -i eth0 --metrics 127.0.0.1:9187 > queries.json   Prometheus metrics while capturing
  tcpdump -U -w - -i lo port 5432 | pgscope -r - -o text   as packets arrive
  pgscope -r capture.pcap.gz host 10.0.0.5     BPF filter on a (compressed) file, as tcpdump -r
  pgscope -r capture.pcap -o text --filter 'client=10.0.0.0/8 and (user=app or failed)'"
)]
pub struct Cli {
    /// Read packets from a pcap or pcapng file ('-' = standard input), also gzip or zstd
    /// compressed (recognised by content); repeatable, read in order. Example: -r capture.pcap.gz
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<String>,

    /// Capture live from an interface (libpcap); 'any' captures on all of them.
    /// Example: -i eth0
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "read"
    )]
    pub interface: Option<String>,

    /// Capture filter (BPF, libpcap's syntax, as tcpdump): applied live and to files
    /// (-r). May also be given as the last words of the command line, as with tcpdump.
    /// Default live: 'tcp port P' for each -p port; default on files: every packet.
    /// Example: -f 'tcp port 5432 and host 10.0.0.5'
    #[arg(short = 'f', long = "filter-bpf", value_name = "BPF")]
    pub(crate) bpf: Option<String>,

    /// The capture filter as trailing words, as tcpdump takes it: pgscope -i eth0 port 5432
    #[arg(value_name = "EXPRESSION", conflicts_with = "bpf")]
    pub(crate) expression: Vec<String>,

    /// PostgreSQL server port; repeatable. Live without a BPF filter, exactly 'tcp port P'
    /// for each of them is captured, nothing else. What is read (a file, or a live
    /// capture with -f) is decoded on these ports, and on any other port where a
    /// connection begins with a PostgreSQL startup packet or (joined mid-stream) a
    /// segment holds whole messages only a client or only a server sends.
    /// Example: -p 5432 -p 6432
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        default_value = "5432"
    )]
    pub(crate) ports: Vec<u16>,

    /// Client-facing port of a connection pooler (pgbouncer; 6432 when given without a
    /// value); repeatable. Its connections are decoded as PostgreSQL, and when the
    /// pooler's server connections are captured too, each server statement is linked to
    /// the client statement that caused it (pgwire.pooler.*; see docs/pooler.md).
    /// Example: --pooler-port 6432
    #[arg(
        long = "pooler-port",
        value_name = "PORT",
        num_args = 0..=1,
        default_missing_value = "6432"
    )]
    pub(crate) pooler_ports: Vec<u16>,

    /// While capturing live, also save the raw packets to this pcap file (created 0600).
    /// Example: -w raw.pcap
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        requires = "interface"
    )]
    pub(crate) write: Option<String>,

    /// Stop after N packets. Example: -c 100000
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub(crate) count: Option<u64>,

    /// Output mode. Default: tui when standard output is a terminal, json otherwise.
    /// html: the summary as one self-contained page with charts. Example: -o html > report.html
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<OutputMode>,

    /// Summary and HTML report: how many statements the top table lists, by total time.
    /// Example: -o summary --top 50
    #[arg(long = "top", value_name = "N", default_value = "15")]
    pub top: usize,

    /// Summary: statement texts whole, not cut to the terminal's width (they are not
    /// cut when standard output is not a terminal). Example: -o summary --wide
    #[arg(long = "wide")]
    pub wide: bool,

    /// Which JSON records to write, comma separated, out of message, query, session, anomaly.
    /// Example: --records message,anomaly
    #[arg(
        long = "records",
        value_delimiter = ',',
        default_value = "query,session,anomaly",
        value_enum
    )]
    pub records: Vec<RecordKind>,

    /// Keep only the records that match (TUI: editable with `f`; JSON, text and summary:
    /// statements, sessions and wire messages; anomalies are always kept). Fields: user
    /// db app client server (connection: every record), failed (statements; sessions
    /// that had an error), sqlstate text duration rows (statements only: a record
    /// without a field the filter needs is not kept). Operators: = != (exact;
    /// sqlstate=23 a class), ~ !~ (regex, any case), > >= < <= (duration, rows);
    /// client=10.0.0.0/8, server=[::1]:5432, :port; and, or, not (!), parentheses,
    /// 'quotes'. See docs/cli.md.
    /// Example: --filter 'db=shop duration>50ms !failed'
    #[arg(long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,

    /// Show passwords, MD5 hashes, SCRAM exchanges and cancel keys instead of
    /// "<redacted>" (for your own test traffic). Example: -o text --show-secrets
    #[arg(long = "show-secrets")]
    pub(crate) show_secrets: bool,

    /// Decrypt TLS connections with the secrets of this NSS key log (SSLKEYLOGFILE
    /// format, e.g. from libpq 18's sslkeylogfile connection parameter); repeatable.
    /// While capturing live, lines appended later are read too. See docs/tls.md.
    /// Example: --tls-keylog /tmp/pg-keys.log
    #[arg(long = "tls-keylog", value_name = "FILE")]
    pub tls_keylog: Vec<std::path::PathBuf>,

    /// Replace bind parameter values by "<redacted>" (they may hold personal data).
    /// Example: --redact-params
    #[arg(long = "redact-params")]
    pub(crate) redact_params: bool,

    /// Kernel capture buffer for live capture, in KiB (as tcpdump -B): packets that
    /// arrive while it is full are dropped by the kernel and reported. Example: -B 131072
    #[arg(
        short = 'B',
        long = "buffer-size",
        default_value = "32768",
        value_name = "KiB",
        value_parser = clap::value_parser!(u32).range(1..=4 << 20)
    )]
    pub(crate) buffer_kib: u32,

    /// Snapshot length for live capture, as tcpdump -s (0 = 262144): longer packets are
    /// cut, and their missing bytes become gaps. Example: -s 65535
    #[arg(
        short = 's',
        long = "snaplen",
        default_value = "262144",
        value_name = "BYTES",
        value_parser = clap::value_parser!(i32).range(0..=262144)
    )]
    pub(crate) snaplen: i32,

    /// Decoding threads for JSON and summary records from files: each new connection
    /// goes to the one with the fewest open, and records come out in the same order as
    /// with one. Default: the cores available less two (the reading and the writing threads
    /// have theirs), at least one. Example: --threads 4
    #[arg(
        long = "threads",
        value_name = "N",
        value_parser = clap::value_parser!(u8).range(1..=255)
    )]
    pub(crate) threads: Option<u8>,

    /// End a connection (close_reason idle) after this long without a packet of its
    /// own. Live, the wall clock counts too, so a client that vanished without FIN or
    /// RST ends even when no packet comes at all. Units: s, m (min), ms.
    /// Example: --idle-timeout 2m
    #[arg(long = "idle-timeout", default_value = "15m", value_name = "DURATION",
          value_parser = parse_idle_timeout)]
    pub(crate) idle_timeout_ns: i64,

    /// Accepted for tcpdump habits: pgscope never resolves addresses or ports to
    /// names, so output is always numeric.
    #[arg(short = 'n')]
    pub(crate) numeric: bool,

    /// Line-buffered output: every record is written as soon as it is complete. The
    /// default already when capturing live or reading a pipe or standard input, so that
    /// tcpdump -U -w - | pgscope -r - | jq prints as packets arrive.
    #[arg(short = 'l', long = "line-buffered")]
    pub(crate) line_buffered: bool,

    /// Timestamps of the text trace (-o text), as tcpdump: local time of day by default
    /// (TZ=UTC for UTC); -t none; -tt seconds since the epoch; -ttt delta from the
    /// previous line; -tttt date, time and zone offset; -ttttt delta from the first line.
    #[arg(short = 't', action = ArgAction::Count)]
    pub timestamps: u8,

    /// List the interfaces libpcap can capture on, as tcpdump -D, and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    pub(crate) list_interfaces: bool,

    /// Print the man page or a shell completion script to standard output and exit.
    /// Example: --generate bash > /etc/bash_completion.d/pgscope
    #[arg(long = "generate", value_enum, value_name = "WHAT")]
    pub(crate) generate: Option<Generate>,

    /// Drop root privileges to this user once the capture handle or the input files
    /// (and the -w file) are open (as tcpdump -Z). Default when started as root:
    /// nobody. Example: -Z pgscope
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,

    /// Serve Prometheus metrics at http://ADDR/metrics while running (OpenMetrics when
    /// the scraper asks for it), alongside any output mode. See docs/metrics.md.
    /// Example: --metrics 127.0.0.1:9187
    #[arg(long = "metrics", value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Statements with a latency histogram of their own (by total time); the others
    /// share one `fingerprint="other"` series. Example: --metrics-top 50
    #[arg(
        long = "metrics-top",
        value_name = "N",
        default_value = "100",
        requires = "metrics",
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub(crate) metrics_top: u32,

    /// Reading files: once they are read, keep serving the final metrics until
    /// Ctrl-C or SIGTERM (without it the endpoint ends with the run).
    /// Example: -r day.pcap -o summary --metrics 127.0.0.1:9187 --metrics-linger
    #[arg(long = "metrics-linger", requires = "metrics")]
    pub metrics_linger: bool,

    /// TUI: statements kept (in compact form, about 100 bytes each plus their
    /// shared text) for the Queries view, filters and filtered statistics; the
    /// oldest go beyond, and the Queries title says so. Example: --tui-statements 5000000
    #[arg(long = "tui-statements", default_value = "1000000", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub tui_statements: u64,

    /// TUI: timeline messages kept per session; older ones go first, and the
    /// timeline's title says so. Example: --tui-messages 50000
    #[arg(long = "tui-messages", default_value = "5000", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub tui_messages: u64,
}

/// `-o`: how the records are presented (json, text, summary, html, tui).
// No doc comments on the variants: clap would show them in `--help`, which
// docs/cli.md pins.
#[allow(missing_docs)]
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Json,
    Text,
    Summary,
    Html,
    Tui,
}

/// What `--generate` prints.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Generate {
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Cli {
    /// The user's BPF filter: -f, or the trailing words.
    pub fn user_bpf(&self) -> Option<String> {
        match &self.bpf {
            Some(f) => Some(f.clone()),
            None if self.expression.is_empty() => None,
            None => Some(self.expression.join(" ")),
        }
    }

    /// The live capture filter: the user's, or one built from the server ports.
    pub(crate) fn capture_filter(&self) -> String {
        if let Some(f) = self.user_bpf() {
            return f;
        }
        let ports: Vec<String> = self
            .server_ports()
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect();
        ports.join(" or ")
    }

    /// The snapshot length libpcap is given (tcpdump's -s 0 is its maximum).
    pub(crate) fn snaplen(&self) -> i32 {
        if self.snaplen == 0 {
            262_144
        } else {
            self.snaplen
        }
    }

    /// Whether every record is written at once: asked (-l), live, or reading a pipe
    /// or a terminal (standard input unless redirected from a file).
    pub fn line_buffered(&self) -> bool {
        self.line_buffered
            || self.interface.is_some()
            || self.read.iter().any(|r| {
                let path = if r == "-" { "/dev/stdin" } else { r.as_str() };
                std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file())
            })
    }

    /// Runs what needs no capture (`--generate`, `-D`); `None` when there is none.
    pub fn standalone(&self, out: &mut dyn Write) -> Option<io::Result<()>> {
        if let Some(what) = self.generate {
            return Some(generate(what, out));
        }
        if self.list_interfaces {
            return Some(match crate::capture::interface_list() {
                Ok(lines) => lines.iter().try_for_each(|l| writeln!(out, "{l}")),
                Err(e) => Err(io::Error::other(e)),
            });
        }
        None
    }

    /// The ports decoded as PostgreSQL servers: `--port` and `--pooler-port`.
    /// The flow table's limits: the defaults with `--idle-timeout`.
    pub fn tcp_limits(&self) -> crate::tcp::Limits {
        crate::tcp::Limits {
            idle_timeout_ns: self.idle_timeout_ns,
            ..Default::default()
        }
    }

    /// The `--port` ports and the `--pooler-port` ones: the server ends to follow.
    pub fn server_ports(&self) -> Vec<u16> {
        let mut ports = self.ports.clone();
        for p in &self.pooler_ports {
            if !ports.contains(p) {
                ports.push(*p);
            }
        }
        ports
    }

    /// Checks what clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.read.is_empty() && self.interface.is_none() {
            return Err("nothing to read: give -r FILE or -i IFACE (see --help)".into());
        }
        if self.write.is_some() && self.interface.is_none() {
            return Err("-w saves a live capture: it needs -i IFACE".into());
        }
        Ok(())
    }

    /// `--threads`, or the cores the reading and writing threads leave: on two cores
    /// a second shard only slows the run (docs/benchmark.md, All cores).
    pub(crate) fn decoding_threads(&self) -> usize {
        self.threads.map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get().saturating_sub(2).clamp(1, 255))
            },
            usize::from,
        )
    }

    pub(crate) fn wants(&self, kind: RecordKind) -> bool {
        self.records.contains(&kind)
    }
}

/// The man page or a completion script, from the clap definition above: they cannot
/// drift from `--help`.
pub(crate) fn generate(what: Generate, out: &mut dyn Write) -> io::Result<()> {
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match what {
        Generate::Man => return clap_mangen::Man::new(cmd).render(out),
        Generate::Bash => Shell::Bash,
        Generate::Zsh => Shell::Zsh,
        Generate::Fish => Shell::Fish,
        Generate::Elvish => Shell::Elvish,
        Generate::Powershell => Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut cmd, "pgscope", out);
    Ok(())
}

/// `--idle-timeout`: a duration with its unit (a bare number would be ambiguous), of
/// at least a second, in nanoseconds.
fn parse_idle_timeout(v: &str) -> Result<i64, String> {
    let ns = v
        .ends_with(|c: char| c.is_alphabetic())
        .then(|| crate::filter::parse_duration(v))
        .flatten()
        .ok_or_else(|| format!("'{v}' is not a duration with its unit: 30s, 15m, 1500ms"))?;
    if ns < 1_000_000_000 {
        return Err("at least 1s".into());
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_filter() {
        let c =
            Cli::try_parse_from(["pgscope", "-r", "x.pcap", "-p", "5432", "-p", "6432"]).unwrap();
        assert_eq!(c.capture_filter(), "tcp port 5432 or tcp port 6432");
        let d = Cli::try_parse_from(["pgscope", "-r", "x.pcap"]).unwrap();
        assert_eq!(d.ports, vec![5432]);
        assert!(d.wants(RecordKind::Query) && !d.wants(RecordKind::Message));
        let e =
            Cli::try_parse_from(["pgscope", "-r", "x", "--records", "message,anomaly"]).unwrap();
        assert!(e.wants(RecordKind::Message) && !e.wants(RecordKind::Session));
        assert!(Cli::try_parse_from(["pgscope", "-r", "x", "--records", "bogus"]).is_err());
        let w = Cli::try_parse_from(["pgscope", "-r", "x", "-w", "o.pcap"]).unwrap();
        assert!(w.validate().is_err());
        assert!(d.validate().is_ok());
        let p = Cli::try_parse_from(["pgscope", "-r", "x", "--pooler-port"]).unwrap();
        assert_eq!(p.pooler_ports, vec![6432]);
        assert_eq!(p.server_ports(), vec![5432, 6432]);
        assert_eq!(p.capture_filter(), "tcp port 5432 or tcp port 6432");
        let p = Cli::try_parse_from([
            "pgscope",
            "-r",
            "x",
            "--pooler-port",
            "7000",
            "--pooler-port",
        ])
        .unwrap();
        assert_eq!(p.pooler_ports, vec![7000, 6432]);
        assert!(d.pooler_ports.is_empty());
        let none = Cli::try_parse_from(["pgscope"]).unwrap();
        assert!(none.validate().is_err());
    }

    #[test]
    fn idle_timeout_takes_a_duration_with_its_unit() {
        let parse = |v: &str| Cli::try_parse_from(["pgscope", "-r", "x", "--idle-timeout", v]);
        assert_eq!(
            parse("2m").unwrap().tcp_limits().idle_timeout_ns,
            120_000_000_000
        );
        assert_eq!(parse("1500ms").unwrap().idle_timeout_ns, 1_500_000_000);
        for bad in ["2", "500ms", "2x", "m", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let d = Cli::try_parse_from(["pgscope", "-r", "x"]).unwrap();
        assert_eq!(
            d.tcp_limits().idle_timeout_ns,
            crate::tcp::Limits::default().idle_timeout_ns
        );
    }
}
