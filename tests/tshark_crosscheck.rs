//! Cross-check against a second decoder: per connection, the number of messages of
//! each (direction, type) that pgscope reports equals what tshark's pgsql dissector
//! reports on the same capture — wherever tshark decodes correctly (see EXCEPTIONS).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

type Counts = BTreeMap<(u16, String), u64>;

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

/// Client port → counts, from tshark.
fn tshark_counts(p: &Path, ports: &[u16]) -> BTreeMap<u16, Counts> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(p);
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

fn pgscope_counts(p: &Path) -> BTreeMap<u16, Counts> {
    let mut all: BTreeMap<u16, Counts> = BTreeMap::new();
    for r in records(p, "message", &[]) {
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

/// Captures where tshark is known to decode wrongly, and why. pgscope's output on these
/// is checked by the golden and peer tests instead.
const EXCEPTIONS: &[(&str, &str)] = &[
    // tshark reads the answer to an 8-byte unknown startup code as a message.
    (
        "pgsql-events.pcap",
        "tshark decodes the 1-byte 'N' answer to an unknown startup code as a typed message",
    ),
    // Not PostgreSQL at all: tshark forced onto port 5432 decodes garbage as messages.
    (
        "http-on-port-5432.pcap",
        "not PostgreSQL; tshark decodes HTTP as pgsql when forced",
    ),
    (
        "mysql-on-port-5432.pcap",
        "not PostgreSQL; tshark decodes MySQL as pgsql when forced",
    ),
    (
        "pgsql-bug-6080-probe-test-01.pcap",
        "not PostgreSQL; tshark decodes the probes as pgsql",
    ),
    (
        "bad-startup-message-1.pcap",
        "crafted startup length; tshark decodes the rest as messages",
    ),
    (
        "bad-backend-message-1.pcap",
        "crafted backend length < 4; tshark keeps decoding past it",
    ),
    // tshark 4.0 does not follow a GSSENCRequest answered 'N': it decodes no backend
    // message afterwards, where the real server sent a full login and query answer.
    (
        "gssenc-refused.pcap",
        "tshark drops the backend side after a refused GSSENCRequest",
    ),
];

#[test]
fn message_counts_match_tshark() {
    let mut compared = 0;
    let mut failures = Vec::new();
    for p in all_captures() {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if EXCEPTIONS.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let theirs = tshark_counts(&p, &ports_of(&p));
        let ours = pgscope_counts(&p);
        for (client, t) in &theirs {
            // tshark cannot frame a connection it joined mid-stream or after TLS starts;
            // only compare connections where it saw no unknown message.
            if t.keys().any(|(_, k)| k.starts_with("?:")) {
                continue;
            }
            let o = ours.get(client).cloned().unwrap_or_default();
            compared += 1;
            if &o != t {
                failures.push(format!(
                    "{name} client port {client}:\n  tshark  {t:?}\n  pgscope {o:?}"
                ));
            }
        }
    }
    assert!(compared > 60, "compared only {compared} connections");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
