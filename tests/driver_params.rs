//! Binary bind parameters of a real driver, rendered as the server prints them:
//! asyncpg (which sends binary for every type it knows) sends many values of each
//! decoded type to PostgreSQL 15 and 18 while tcpdump captures loopback; for each
//! value, pgscope's rendering of the parameter in the capture must equal the
//! server's own text of it (`format('%s', $1::type)`, the type's output function),
//! which the script writes to a file.
//!
//! Needs root (tcpdump), both servers and asyncpg in `/opt/pgscope-py` (or
//! `PGSCOPE_PYTHON`): `scripts/test.sh` provides them and runs this test with
//! `--include-ignored`, as CI does. A bare `cargo test` skips it.

mod common;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn port(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var}: source the env file of scripts/pg-setup.sh"))
}

#[test]
#[ignore = "needs root, PostgreSQL 15 and 18, and asyncpg: run scripts/test.sh"]
fn asyncpg_binary_parameters_render_as_the_server_prints_them() {
    let (pg15, pg18) = (port("PG15_PORT"), port("PG18_PORT"));
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("driver.pcap");
    let expected = dir.path().join("expected.jsonl");
    let filter = format!("tcp port {pg15} or tcp port {pg18}");
    let mut tcpdump = Command::new("tcpdump")
        // A large buffer: on a busy machine the default one drops packets.
        .args([
            "-i",
            "lo",
            "--immediate-mode",
            "-B",
            "65536",
            "-U",
            "-n",
            "-w",
        ])
        .arg(&pcap)
        .arg(&filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    // Traffic may start once tcpdump says it listens.
    let mut tcpdump_err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    tcpdump_err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "tcpdump: {line}");

    let python = std::env::var("PGSCOPE_PYTHON").unwrap_or("/opt/pgscope-py/bin/python3".into());
    let script = common::root().join("tests/driver/binary_params.py");
    let status = Command::new(&python)
        .arg(&script)
        .args([&pg15, &pg18])
        .arg(&expected)
        .status()
        .unwrap_or_else(|e| panic!("run {python} (asyncpg, from scripts/test.sh): {e}"));
    // Immediate mode hands each packet on at once; leave it a moment all the same.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: SIGINT to our own child, which then writes out what it has.
    unsafe { libc::kill(tcpdump.id() as i32, libc::SIGINT) };
    tcpdump.wait().unwrap();
    assert!(status.success(), "the asyncpg script failed");
    let mut stats = String::new();
    tcpdump_err.read_to_string(&mut stats).unwrap();
    assert!(
        stats.lines().any(|l| l == "0 packets dropped by kernel"),
        "tcpdump lost packets, the capture is incomplete: {stats}"
    );

    let run = common::pgscope(&[
        "-r",
        pcap.to_str().unwrap(),
        "-p",
        &pg15,
        "-p",
        &pg18,
        "-o",
        "json",
        "--records",
        "query",
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    // (server port, index) -> the rendered value; `$2` of each statement is its index.
    let mut rendered = HashMap::new();
    for line in String::from_utf8(run.stdout).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let sql = r["db.query.text"].as_str().unwrap_or_default();
        if !sql.starts_with("select $2::int4, format('%s', $1::") {
            continue;
        }
        let p = &r["db.query.parameters"];
        let (Some(value), Some(index)) = (p[0].as_str(), p[1].as_str()) else {
            panic!("parameters missing: {line}");
        };
        let port = r["destination.port"].as_u64().unwrap();
        let index = index
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("index: {line}"));
        rendered.insert((port, index), value.to_string());
    }

    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in std::fs::read_to_string(&expected).unwrap().lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let key = (e["port"].as_u64().unwrap(), e["i"].as_u64().unwrap());
        let (ty, want) = (e["type"].as_str().unwrap(), e["text"].as_str().unwrap());
        let got = rendered
            .get(&key)
            .map(String::as_str)
            .unwrap_or("<no record>");
        // Past the cap pgscope keeps the first 256 bytes and marks the cut.
        let ok = if want.len() > 256 {
            let mut cut = 256;
            while !want.is_char_boundary(cut) {
                cut -= 1;
            }
            got.strip_prefix(&want[..cut])
                .is_some_and(|rest| rest.starts_with('…') && rest.ends_with(" bytes)"))
        } else {
            got == want
        };
        if !ok {
            wrong.push(format!(
                "{ty} on port {}: server {want:?}, pgscope {got:?}",
                key.0
            ));
        }
        checked += 1;
    }
    // Both servers, every native value and the server-made ones (see the script).
    assert!(checked > 250, "only {checked} values checked");
    assert!(
        wrong.is_empty(),
        "{} of {checked} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
