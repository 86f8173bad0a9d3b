//! Cross-check against a second decoder: per connection, the number of messages of
//! each (direction, type) that pgscope reports equals what tshark's pgsql dissector
//! reports on the same capture — wherever tshark decodes correctly (see EXCEPTIONS).

mod common;

use common::tshark::{pgscope_counts, tshark_counts};
use common::*;

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
        let theirs = tshark_counts(&p, &ports_of(&p), &[]);
        let ours = pgscope_counts(&p, &[]);
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
