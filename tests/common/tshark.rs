//! Message counts per connection from tshark's pgsql dissector and from pgscope, to
//! cross-check the two.

use super::records;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

pub type Counts = BTreeMap<(u16, String), u64>;

/// tshark's message names → pgscope's key: the type byte, or the untyped packet's name.
fn tshark_key(frontend: bool, name: &str) -> Option<String> {
    let k = match (frontend, name) {
        (true, "Startup message") => "StartupMessage",
        (true, "SSL request") => "SSLRequest",
        (true, "GSS encrypt request") => "GSSENCRequest",
        (true, "Cancel request") => "CancelRequest",
        (true, "Simple query") => "Q",
        (true, "Parse") => "P",
        (true, "Bind") => "B",
        (true, "Execute") => "E",
        (true, "Describe") => "D",
        (true, "Close") => "C",
        (true, "Sync") => "S",
        (true, "Flush") => "H",
        (true, "Termination") => "X",
        (true, "Function call") => "F",
        (true, "Copy failure") => "f",
        (true, "Password message" | "SASLInitialResponse message" | "SASLResponse message") => "p",
        (true, "GSSResponse message") => "p",
        (_, "Copy data") => "d",
        (_, "Copy completion") => "c",
        (false, "Authentication request") => "R",
        (false, "Backend key data") => "K",
        (false, "Parse completion") => "1",
        (false, "Bind completion") => "2",
        (false, "Close completion") => "3",
        (false, "Command completion") => "C",
        (false, "Data row") => "D",
        (false, "Empty query") => "I",
        (false, "Error") => "E",
        (false, "Notice") => "N",
        (false, "Notification") => "A",
        (false, "Parameter status") => "S",
        (false, "Ready for query") => "Z",
        (false, "Row description") => "T",
        (false, "No data") => "n",
        (false, "Portal suspended") => "s",
        (false, "Parameter description") => "t",
        (false, "CopyIn response") => "G",
        (false, "CopyOut response") => "H",
        (false, "CopyBoth response") => "W",
        (false, "Function call response") => "V",
        (false, "Negotiate protocol version") => "v",
        _ => return None,
    };
    Some(format!("{}:{k}", if frontend { "F" } else { "B" }))
}

/// Client port → counts, from tshark (`extra`: more tshark options, e.g. a TLS key log).
pub fn tshark_counts(p: &Path, ports: &[u16], extra: &[&str]) -> BTreeMap<u16, Counts> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(p).args(extra);
    for port in ports {
        cmd.arg("-d").arg(format!("tcp.port=={port},pgsql"));
    }
    cmd.args([
        "-Y",
        "pgsql",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;",
    ]);
    cmd.args([
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
        "-e",
        "pgsql.frontend",
        "-e",
        "pgsql.type",
    ]);
    let out = cmd
        .output()
        .expect("tshark is installed (apt-get install tshark)");
    // tshark exits non-zero on a truncated capture but still prints what it read.
    let mut all: BTreeMap<u16, Counts> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Ok(sport), Ok(dport)) = (f[0].parse::<u16>(), f[1].parse::<u16>()) else {
            continue;
        };
        let client = if ports.contains(&dport) { sport } else { dport };
        for (fe, name) in f[2].split(';').zip(f[3].split(';')) {
            let key = tshark_key(fe == "1", name).unwrap_or_else(|| format!("?:{name}"));
            *all.entry(client)
                .or_default()
                .entry((client, key))
                .or_default() += 1;
        }
    }
    all
}

/// Client port → counts, from pgscope's message records (`extra`: more options).
pub fn pgscope_counts(p: &Path, extra: &[&str]) -> BTreeMap<u16, Counts> {
    let mut all: BTreeMap<u16, Counts> = BTreeMap::new();
    for r in records(p, "message", extra) {
        let client = r["source.port"].as_u64().unwrap() as u16;
        let name = r["pgwire.msg.name"].as_str().unwrap();
        if name == "SSLResponse" || name == "GSSENCResponse" {
            continue; // tshark shows no message for the one-byte answers
        }
        let dir = if r["pgwire.msg.dir"] == "frontend" {
            "F"
        } else {
            "B"
        };
        let key = match r["pgwire.msg.type"].as_str() {
            Some(t) => format!("{dir}:{t}"),
            None => format!("{dir}:{name}"),
        };
        *all.entry(client)
            .or_default()
            .entry((client, key))
            .or_default() += 1;
    }
    all
}
