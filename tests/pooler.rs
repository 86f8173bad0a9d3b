//! Pooler correlation (`--pooler-port`) against the truth of real pgbouncer traffic.
//!
//! Every statement of the clients in captures/pooler (see its README and record.sh)
//! that is not BEGIN/COMMIT/SET returns `pg_backend_pid()` and a number unique to it,
//! so the DataRow on the client leg, read by tshark's own dissector, says which server
//! backend really ran it. Each link pgscope makes is checked against that pid: a
//! client statement linked to the wrong server connection is a wrong link. BEGIN and
//! COMMIT are checked against the numbered statements of their transaction.

mod common;

use common::{capture, parse_lines, pgscope};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

/// What pgscope got right and wrong on one capture.
#[derive(Debug, Default)]
struct Report {
    /// Client-leg statements, and those linked.
    client: u64,
    linked: u64,
    /// Links whose backend pid the truth confirms, and those it contradicts.
    right: u64,
    wrong: Vec<String>,
    /// Linked statements with no truth to check (SET outside a transaction).
    unchecked: u64,
    /// pgbench's statements (application `pgbench`), and those linked.
    bench: u64,
    bench_linked: u64,
    by_match: BTreeMap<String, u64>,
    /// Server-leg statements linked, and those whose link the client leg returns.
    server_linked: u64,
    server_mutual: u64,
}

/// Per client port, the rows pgbouncer sent that client, in order: (pid, n).
fn truth(pcap: &Path, port: u16) -> HashMap<u64, Vec<(i64, i64)>> {
    let out = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap(), "-d"])
        .arg(format!("tcp.port=={port},pgsql"))
        .arg("-Y")
        .arg(format!(
            "pgsql.type == \"Data row\" && tcp.srcport == {port}"
        ))
        .args(["-T", "fields", "-e", "tcp.dstport", "-e", "pgsql.val.data"])
        .output()
        .expect("run tshark (scripts/test.sh installs it)");
    assert!(out.status.success(), "tshark failed on {}", pcap.display());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows: HashMap<u64, Vec<(i64, i64)>> = HashMap::new();
    for line in text.lines() {
        let (client, data) = line.split_once('\t').unwrap();
        let vals: Vec<i64> = data
            .split(',')
            .map(|h| {
                let bytes: Vec<u8> = (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect();
                String::from_utf8(bytes).unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(vals.len() % 2, 0, "rows of two columns: {line}");
        let list = rows.entry(client.parse().unwrap()).or_default();
        list.extend(vals.chunks(2).map(|r| (r[0], r[1])));
    }
    assert!(
        !rows.is_empty(),
        "no DataRow on port {port} in {}",
        pcap.display()
    );
    rows
}

/// The number a statement returns: its literal, or its one bind parameter.
fn number(q: &Value) -> Option<i64> {
    let text = q["db.query.text"].as_str()?;
    let rest = text
        .strip_prefix("SELECT pg_backend_pid(), ")?
        .trim_end_matches(';');
    let v = if rest == "$1" {
        q["db.query.parameters"][0].as_str()?
    } else {
        rest
    };
    v.parse().ok()
}

/// pgscope's output on a capture of pgbouncer on `port` in front of 5432.
fn pgscope_pooler(pcap: &Path, port: u16, output: &[&str]) -> Vec<u8> {
    let port = port.to_string();
    let mut args = vec![
        "-r",
        pcap.to_str().unwrap(),
        "-p",
        "5432",
        "--pooler-port",
        &port,
    ];
    args.extend_from_slice(output);
    let run = pgscope(&args);
    assert_eq!(run.status, 0, "{}", run.stderr);
    run.stdout
}

fn check(pcap: &Path, port: u16) -> Report {
    let truth = truth(pcap, port);
    let out = pgscope_pooler(pcap, port, &["-o", "json", "--records", "query,session"]);
    let recs = parse_lines(&out, pcap);
    let pid_of_conn: HashMap<u64, i64> = recs
        .iter()
        .filter(|r| r["event.dataset"] == "pgwire.session")
        .filter_map(|r| {
            Some((
                r["pgwire.conn_id"].as_u64()?,
                r["pgwire.backend_pid"].as_i64()?,
            ))
        })
        .collect();
    let queries: Vec<&Value> = recs
        .iter()
        .filter(|r| r["event.dataset"] == "pgwire.query")
        .collect();
    let mut rep = Report::default();
    // Per client connection, its statements in order: BEGIN and COMMIT take the
    // truth of the numbered statements of their transaction.
    let mut by_conn: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for q in &queries {
        if q["destination.port"] == port {
            by_conn
                .entry(q["pgwire.conn_id"].as_u64().unwrap())
                .or_default()
                .push(q);
        }
    }
    // (server connection, text, client connection) → client statements so linked.
    let mut links: HashMap<(u64, String, u64), u64> = HashMap::new();
    for stmts in by_conn.values() {
        // The backend that ran each numbered statement: the connection's rows in order.
        let port = stmts[0]["source.port"].as_u64().unwrap();
        let rows = truth.get(&port).map_or(&[][..], |v| &v[..]);
        let numbered: Vec<(usize, i64)> = stmts
            .iter()
            .enumerate()
            .filter_map(|(i, q)| Some((i, number(q)?)))
            .collect();
        assert_eq!(
            numbered.len(),
            rows.len(),
            "client port {port}: rows and statements"
        );
        let mut ran: HashMap<usize, i64> = HashMap::new();
        for (&(i, n), &(pid, m)) in numbered.iter().zip(rows) {
            assert_eq!(n, m, "client port {port}: rows out of step");
            ran.insert(i, pid);
        }
        for (i, q) in stmts.iter().enumerate() {
            assert_eq!(q["pgwire.pooler.leg"], "client", "{q}");
            rep.client += 1;
            let bench = q["service.name"] == "pgbench";
            rep.bench += bench as u64;
            let m = q["pgwire.pooler.match"].as_str().unwrap().to_string();
            *rep.by_match.entry(m.clone()).or_default() += 1;
            if !matches!(&*m, "application_name" | "text_params_time" | "transaction") {
                assert!(q["pgwire.pooler.server_conn_id"].is_null(), "{q}");
                continue;
            }
            rep.linked += 1;
            rep.bench_linked += bench as u64;
            let server = q["pgwire.pooler.server_conn_id"].as_u64().unwrap();
            let pid = q["pgwire.pooler.backend_pid"].as_i64();
            assert_eq!(pid, pid_of_conn.get(&server).copied(), "{q}");
            assert!(q["pgwire.pooler.wait"].as_i64().unwrap() >= 0, "{q}");
            let text = q["db.query.text"].as_str().unwrap_or("").to_string();
            let client = q["pgwire.conn_id"].as_u64().unwrap();
            *links.entry((server, text.clone(), client)).or_default() += 1;
            // The numbered statement itself, or the nearest of the same transaction.
            let near = match text.trim_end_matches(';') {
                "BEGIN" => numbered.iter().find(|(j, _)| *j > i),
                "COMMIT" => numbered.iter().rev().find(|(j, _)| *j < i),
                _ => numbered.iter().find(|(j, _)| *j == i),
            };
            match near.and_then(|(j, _)| ran.get(j)) {
                Some(&t) if Some(t) == pid => rep.right += 1,
                Some(t) => rep
                    .wrong
                    .push(format!("ran on pid {t}, linked to {pid:?}: {q}")),
                None => rep.unchecked += 1,
            }
        }
    }
    for q in &queries {
        if q["pgwire.pooler.leg"] != "server" {
            continue;
        }
        let Some(client) = q["pgwire.pooler.client_conn_id"].as_u64() else {
            continue;
        };
        rep.server_linked += 1;
        let text = q["db.query.text"].as_str().unwrap_or("").to_string();
        let server = q["pgwire.conn_id"].as_u64().unwrap();
        if let Some(n) = links.get_mut(&(server, text, client)).filter(|n| **n > 0) {
            *n -= 1;
            rep.server_mutual += 1;
        }
    }
    rep
}

/// What every capture must hold: no wrong link, and the two legs agree.
fn assert_sound(name: &str, rep: &Report) {
    eprintln!(
        "{name}: {} client statements, {} linked ({:.1}%), {} checked right, {} wrong, {} unchecked; pgbench {}/{} linked ({:.1}%); by match {:?}",
        rep.client,
        rep.linked,
        100.0 * rep.linked as f64 / rep.client.max(1) as f64,
        rep.right,
        rep.wrong.len(),
        rep.unchecked,
        rep.bench_linked,
        rep.bench,
        100.0 * rep.bench_linked as f64 / rep.bench.max(1) as f64,
        rep.by_match
    );
    assert!(
        rep.client > 100 && rep.bench > 50,
        "{name}: too little traffic: {rep:?}"
    );
    assert!(
        rep.wrong.is_empty(),
        "{name}: wrong links:\n{}",
        rep.wrong.join("\n")
    );
    assert_eq!(rep.server_linked, rep.linked, "{name}: the legs disagree");
    assert_eq!(rep.server_mutual, rep.linked, "{name}: the legs disagree");
    assert!(rep.right > 0, "{name}");
}

/// With application_name_add_host, the server leg names the client's address: every
/// statement is linked.
fn assert_all_linked(name: &str, rep: &Report) {
    assert_eq!(rep.linked, rep.client, "{name}: {:?}", rep.by_match);
}

/// Without it, pgbench's clients all say `pgbench`: text, parameters and time must
/// still link at least 90% of them (2 server connections).
fn assert_bench_share(name: &str, rep: &Report) {
    assert!(
        rep.bench_linked * 10 >= rep.bench * 9,
        "{name}: {}/{} pgbench statements linked",
        rep.bench_linked,
        rep.bench
    );
}

/// Message records, which cannot be held, go on at once: the same as without
/// `--pooler-port`.
#[test]
fn message_records_pass_through() {
    let pcap = capture("pooler/transaction.pcap");
    let with = pgscope_pooler(&pcap, 6432, &["-o", "json", "--records", "message"]);
    let without = pgscope(&[
        "-r",
        pcap.to_str().unwrap(),
        "-p",
        "5432",
        "-p",
        "6432",
        "-o",
        "json",
        "--records",
        "message",
    ]);
    assert!(with.len() > 100_000);
    assert_eq!(with, without.stdout);
}

const RECORDED: [(&str, bool); 4] = [
    ("pooler/transaction-addhost.pcap", true),
    ("pooler/transaction.pcap", false),
    ("pooler/session-addhost.pcap", true),
    ("pooler/session.pcap", false),
];

/// The summary counts each statement once, on its client leg, and reports the
/// pool wait and server time of the linked ones.
fn assert_summary(pcap: &Path, port: u16, rep: &Report) {
    let text = String::from_utf8(pgscope_pooler(pcap, port, &["-o", "summary"])).unwrap();
    let head = text.lines().next().unwrap();
    assert!(
        head.contains(&format!(" {} statements (", rep.client)),
        "{head}"
    );
    let want = format!(
        "Pooler: {} client statements (counted above), {} linked",
        rep.client, rep.linked
    );
    assert!(text.contains(&want), "{text}");
    for row in ["  pool wait ", "  server time "] {
        let line = text.lines().find(|l| l.starts_with(row)).expect(row);
        let nums: Vec<f64> = line[row.len()..]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        // mean, p50, p95, p99, max: in order, and a max no lower than any.
        assert_eq!(nums.len(), 5, "{line}");
        assert!(
            nums[1] <= nums[2] && nums[2] <= nums[3] && nums[3] <= nums[4],
            "{line}"
        );
    }
}

#[test]
fn recorded_pgbouncer_captures_link_right() {
    for (name, add_host) in RECORDED {
        let rep = check(&capture(name), 6432);
        assert_sound(name, &rep);
        assert_summary(&capture(name), 6432, &rep);
        if add_host {
            assert_all_linked(name, &rep);
        } else {
            assert_bench_share(name, &rep);
        }
    }
}

/// New traffic through a pgbouncer started now (captures/pooler/record.sh), in both
/// pool modes, with and without application_name_add_host.
#[test]
#[ignore = "needs root, PostgreSQL 15 and pgbouncer: run scripts/test.sh"]
fn live_pgbouncer_links_right() {
    let dir = std::env::temp_dir().join(format!("pgscope-pooler-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = 16000 + (std::process::id() % 1000) as u16;
    for (mode, add_host) in [
        ("transaction", true),
        ("transaction", false),
        ("session", true),
        ("session", false),
    ] {
        let name = format!("{mode}-{}", add_host as u8);
        let pcap = dir.join(format!("{name}.pcap"));
        // Exit status 3: tcpdump lost packets on a loaded machine; try again.
        let mut status = None;
        for _ in 0..3 {
            let s = Command::new(common::root().join("captures/pooler/record.sh"))
                .arg(&pcap)
                .arg(port.to_string())
                .arg(mode)
                .arg((add_host as u8).to_string())
                .args(["200", "10"])
                .status()
                .expect("run captures/pooler/record.sh");
            status = s.code();
            if status != Some(3) {
                break;
            }
        }
        assert_eq!(status, Some(0), "record.sh {name}");
        let rep = check(&pcap, port);
        assert_sound(&name, &rep);
        assert_summary(&pcap, port, &rep);
        if add_host {
            assert_all_linked(&name, &rep);
        } else {
            assert_bench_share(&name, &rep);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
