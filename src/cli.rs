//! Command line, following tcpdump/tshark habits.

use clap::{Parser, ValueEnum};

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
  tcpdump -w - -i lo port 5432 | pgscope -r - -o text"
)]
pub struct Cli {
    /// Read packets from a pcap or pcapng file ('-' = standard input); repeatable, read in order.
    /// Example: -r capture.pcap
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

    /// Capture filter (BPF) for live capture. Default: built from the server ports,
    /// e.g. 'tcp port 5432'. Example: -f 'tcp port 5432 and host 10.0.0.5'
    #[arg(short = 'f', long = "filter-bpf", value_name = "BPF")]
    pub bpf: Option<String>,

    /// PostgreSQL server port; repeatable. Connections to other ports are still decoded
    /// when they begin with a PostgreSQL startup packet, or (joined mid-stream) when a
    /// segment holds whole messages only a client or only a server sends.
    /// Example: -p 5432 -p 6432
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        default_value = "5432"
    )]
    pub ports: Vec<u16>,

    /// While capturing live, also save the raw packets to this pcap file (created 0600).
    /// Example: -w raw.pcap
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        requires = "interface"
    )]
    pub write: Option<String>,

    /// Stop after N packets. Example: -c 100000
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u64>,

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

    /// Keep only the statements and sessions that match (TUI: editable with `f`; JSON,
    /// text and summary: filters query and session records). Terms, all of which must hold: user= db= app= client= sqlstate= (= exact or class prefix, != not,
    /// ~ regex), duration>10ms, rows>100 (> >= < <= = !=), text~REGEX, failed; `!` negates.
    /// Example: --filter 'db=shop duration>50ms !failed'
    #[arg(long = "filter", value_name = "EXPR")]
    pub filter: Option<String>,

    /// Show passwords, MD5 hashes, SCRAM exchanges and cancel keys instead of
    /// "<redacted>" (for your own test traffic). Example: -o text --show-secrets
    #[arg(long = "show-secrets")]
    pub show_secrets: bool,

    /// Decrypt TLS connections with the secrets of this NSS key log (SSLKEYLOGFILE
    /// format, e.g. from libpq 18's sslkeylogfile connection parameter); repeatable.
    /// While capturing live, lines appended later are read too. See docs/tls.md.
    /// Example: --tls-keylog /tmp/pg-keys.log
    #[arg(long = "tls-keylog", value_name = "FILE")]
    pub tls_keylog: Vec<std::path::PathBuf>,

    /// Replace bind parameter values by "<redacted>" (they may hold personal data).
    /// Example: --redact-params
    #[arg(long = "redact-params")]
    pub redact_params: bool,

    /// Kernel capture buffer for live capture, in KiB (as tcpdump -B): packets that
    /// arrive while it is full are dropped by the kernel and reported. Example: -B 131072
    #[arg(
        short = 'B',
        long = "buffer-size",
        default_value = "32768",
        value_name = "KiB",
        value_parser = clap::value_parser!(u32).range(1..=4 << 20)
    )]
    pub buffer_kib: u32,

    /// Snapshot length for live capture. Example: --snaplen 65535
    #[arg(long = "snaplen", default_value = "262144", value_name = "BYTES")]
    pub snaplen: i32,

    /// Drop root privileges to this user once the capture handle or the input files
    /// (and the -w file) are open (as tcpdump -Z). Default when started as root:
    /// nobody. Example: -Z pgscope
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Json,
    Text,
    Summary,
    Html,
    Tui,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Message,
    Query,
    Session,
    Anomaly,
}

impl Cli {
    /// The capture filter: the user's, or one built from the server ports.
    pub fn capture_filter(&self) -> String {
        if let Some(f) = &self.bpf {
            return f.clone();
        }
        let ports: Vec<String> = self.ports.iter().map(|p| format!("tcp port {p}")).collect();
        ports.join(" or ")
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

    pub fn wants(&self, kind: RecordKind) -> bool {
        self.records.contains(&kind)
    }
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
        let none = Cli::try_parse_from(["pgscope"]).unwrap();
        assert!(none.validate().is_err());
    }
}
