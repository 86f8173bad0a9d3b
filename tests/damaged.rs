//! The pgscope binary on damaged real captures and hostile synthetic ones, as made by
//! `pgscope-damage`. Recovery figures print with `cargo test --test damaged -- --nocapture`.
//! The 1 GiB DataRow case is ignored by a bare `cargo test` (slow in a debug build);
//! `scripts/test.sh` runs it in a release build with `--include-ignored`.

mod common;

use pgscope::capture::{self, Flow};
use pgscope::net;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;

const PGSCOPE: &str = env!("CARGO_BIN_EXE_pgscope");
/// Captures with PostgreSQL sessions, under captures/external/.
const SESSIONS: [&str; 4] = [
    "suricata-verify/pgsql-simple-query-rollback.pcap",
    "suricata-verify/pgsql-sasl-assorted-simple-queries.pcap",
    "zeek/greenhouse-app.pcap",
    "zeek/psql-create-insert-select-delete-drop.pcap",
];

fn external(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/external")
        .join(name)
}

fn damage(args: &[&str]) {
    let out = Command::new(common::damage_tool())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "pgscope-damage {args:?}: {out:?}");
}

fn pgscope(file: &Path, extra: &[&str]) -> Output {
    Command::new(PGSCOPE)
        .arg("-r")
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

/// Runs pgscope and checks it succeeded; returns the JSON records.
fn records(file: &Path) -> Vec<Value> {
    let out = pgscope(file, &["-o", "json"]);
    assert!(out.status.success(), "{file:?}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of<'a>(recs: &'a [Value], dataset: &str) -> impl Iterator<Item = &'a Value> {
    let dataset = format!("pgwire.{dataset}");
    recs.iter()
        .filter(move |r| r["event.dataset"] == dataset.as_str())
}

fn anomalies(recs: &[Value], kind: &str) -> usize {
    of(recs, "anomaly")
        .filter(|r| r["pgwire.anomaly.kind"] == kind)
        .count()
}

/// A statement by its connection (client address and port) and text.
type Key = (String, u64, String);

fn query_keys(recs: &[Value]) -> HashMap<Key, usize> {
    let mut m = HashMap::new();
    for q in of(recs, "query") {
        let key = (
            q["source.ip"].as_str().unwrap_or_default().to_string(),
            q["source.port"].as_u64().unwrap_or_default(),
            q["db.query.text"].as_str().unwrap_or_default().to_string(),
        );
        *m.entry(key).or_default() += 1;
    }
    m
}

/// Client payloads per connection in a capture, to tell which statements survived.
fn client_payloads(file: &Path) -> HashMap<(String, u64), Vec<Vec<u8>>> {
    let mut m: HashMap<_, Vec<Vec<u8>>> = HashMap::new();
    let f = std::fs::File::open(file).unwrap();
    let _ = capture::read_file("t", f, &AtomicBool::new(false), &mut |p| {
        if let Some(s) = net::parse(p.linktype, p.data, p.orig_len)
            && s.dport == 5432
        {
            let key = (s.src.to_string(), u64::from(s.sport));
            m.entry(key).or_default().push(s.payload.to_vec());
        }
        Flow::Continue(())
    });
    m
}

/// (statements whose own packet survived, of those the ones still reported).
fn recovery(
    base: &HashMap<Key, usize>,
    damaged_file: &Path,
    got: &HashMap<Key, usize>,
) -> (usize, usize) {
    let payloads = client_payloads(damaged_file);
    let (mut eligible, mut recovered) = (0, 0);
    for (key, &n) in base {
        let needle = [key.2.as_bytes(), b"\0"].concat();
        let carried = payloads
            .get(&(key.0.clone(), key.1))
            .map_or(0, |ps| ps.iter().filter(|p| contains(p, &needle)).count());
        let e = n.min(carried);
        eligible += e;
        recovered += e.min(got.get(key).copied().unwrap_or(0));
    }
    (eligible, recovered)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Damages every session capture with each seed and checks what is still found.
/// Returns (statements eligible, recovered, gap anomalies).
fn damaged_runs(op: &str, percent: &str, seeds: u32) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut eligible, mut recovered, mut gaps) = (0, 0, 0);
    for name in SESSIONS {
        let src = external(name);
        let base = query_keys(&records(&src));
        for seed in 1..=seeds {
            let out = dir.path().join(format!("{op}-{seed}.pcap"));
            let seed = seed.to_string();
            damage(&[
                op,
                percent,
                &seed,
                src.to_str().unwrap(),
                out.to_str().unwrap(),
            ]);
            let recs = records(&out);
            gaps += anomalies(&recs, "gap");
            let (e, r) = recovery(&base, &out, &query_keys(&recs));
            eligible += e;
            recovered += r;
        }
    }
    let pct = 100.0 * recovered as f64 / eligible.max(1) as f64;
    println!(
        "{op} {percent}%: {recovered}/{eligible} statements recovered ({pct:.1}%), {gaps} gap anomalies"
    );
    assert!(pct >= 95.0, "{op} {percent}%: only {pct:.1}% recovered");
    (eligible, recovered, gaps)
}

#[test]
fn dropped_packets() {
    let (e1, _, g1) = damaged_runs("drop", "1", 20);
    let (e5, _, g5) = damaged_runs("drop", "5", 20);
    assert!(e1 > e5 && e5 > 0);
    assert!(g1 > 0 && g5 > g1, "losses are reported as gaps");
}

#[test]
fn reordered_packets() {
    let (e, r, _) = damaged_runs("reorder", "5", 10);
    assert!(e > 0 && r > 0);
}

#[test]
fn duplicated_packets() {
    let (e, r, gaps) = damaged_runs("dup", "5", 10);
    assert_eq!(r, e, "duplicates lose nothing");
    assert_eq!(gaps, 0);
}

#[test]
fn cut_file_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let src = external("zeek/greenhouse-app.pcap");
    let cut = dir.path().join("cut.pcap");
    damage(&["cut", src.to_str().unwrap(), cut.to_str().unwrap()]);
    let out = pgscope(&cut, &[]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("truncated"),
        "{err}"
    );
    let recs = records(&cut);
    let (e, r) = recovery(&query_keys(&records(&src)), &cut, &query_keys(&recs));
    println!("cut: {r}/{e} statements before the cut recovered");
    assert!(e > 10 && r == e);
    assert!(anomalies(&recs, "truncated_capture") == 1);
}

#[test]
fn snaplen_cut_frames_become_gaps() {
    let dir = tempfile::tempdir().unwrap();
    for name in SESSIONS {
        let out = dir.path().join("snap.pcap");
        let src = external(name);
        damage(&[
            "snaplen",
            "80",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let recs = records(&out);
        assert!(anomalies(&recs, "gap") > 0, "{name}");
    }
}

#[test]
fn not_a_capture_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.txt");
    std::fs::write(&f, "these are not packets\n".repeat(100)).unwrap();
    let out = pgscope(&f, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pgscope: ") && err.contains("not a pcap"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn other_protocols_on_5432_give_no_sessions_or_statements() {
    for name in [
        "zeek/http-on-port-5432.pcap",
        "zeek/mysql-on-port-5432.pcap",
        "suricata-verify/pgsql-bug-6080-probe-test-01.pcap",
        // A scanner's 8-byte "startup" asking for protocol 255.255: Suricata raises an
        // event on it; pgscope flags it too and decodes nothing after it.
        "suricata-verify/pgsql-events.pcap",
    ] {
        let recs = records(&external(name));
        assert_eq!(of(&recs, "query").count(), 0, "{name}");
        assert!(anomalies(&recs, "not_postgres") > 0, "{name}");
        // Classified by the anomaly; no session record pretends it was PostgreSQL.
        assert_eq!(of(&recs, "session").count(), 0, "{name}");
    }
}

#[test]
fn implausible_lengths_resynchronise() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("lengths.pcap");
    damage(&["lengths", f.to_str().unwrap()]);
    let recs = records(&f);
    // 0, 3, 0x7fffffff, 0x80000000, 0xffffffff; each in both directions.
    assert!(anomalies(&recs, "malformed") >= 10);
    let after: Vec<&str> = of(&recs, "query")
        .filter_map(|q| q["db.query.text"].as_str())
        .filter(|t| t.contains("after bad length"))
        .collect();
    assert_eq!(after.len(), 5, "each connection resyncs on the next query");
}

#[test]
fn a_million_tiny_messages() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tiny.pcap");
    let n = 1_000_000;
    damage(&["tiny", &n.to_string(), f.to_str().unwrap()]);
    let out = pgscope(&f, &["-o", "summary"]);
    assert!(out.status.success());
    let summary = String::from_utf8(out.stdout).unwrap();
    let want = format!("{} messages", 2 * n + 3);
    assert!(summary.contains(&want), "{summary}");
}

/// Streams a DataRow of `bytes` from the generator straight into pgscope; returns
/// pgscope's peak RSS in KiB (when /usr/bin/time exists) and its JSON output.
fn big_row(bytes: u64) -> (Option<u64>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let rss_file = dir.path().join("rss");
    let mut gen_ = Command::new(common::damage_tool())
        .args(["bigrow", &bytes.to_string(), "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(PGSCOPE);
        c
    } else {
        Command::new(PGSCOPE)
    };
    let out = cmd
        .args(["-r", "-", "-o", "json"])
        .stdin(gen_.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(gen_.wait().unwrap().success());
    assert!(out.status.success(), "{out:?}");
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let recs = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (rss, recs)
}

fn check_big_row(bytes: u64, max_rss_kib: u64) {
    let (rss, recs) = big_row(bytes);
    println!("DataRow of {bytes} bytes: peak RSS {rss:?} KiB");
    assert_eq!(anomalies(&recs, "oversize"), 1);
    let q: Vec<&Value> = of(&recs, "query").collect();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["db.response.returned_rows"], 1);
    if let Some(rss) = rss {
        assert!(rss < max_rss_kib, "peak RSS {rss} KiB");
    }
}

#[test]
fn big_data_row_is_streamed() {
    check_big_row(64 << 20, 48 << 10);
}

#[test]
#[ignore = "1 GiB through a pipe, slow in a debug build: scripts/test.sh runs it (release)"]
fn one_gib_data_row_is_streamed() {
    check_big_row(1 << 30, 48 << 10);
}

/// The file header and the records of a little-endian classic pcap file.
fn classic_records(file: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let bytes = std::fs::read(file).unwrap();
    let (mut at, mut recs) = (24, Vec::new());
    while at < bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        recs.push(bytes[at..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    (bytes[..24].to_vec(), recs)
}

/// A record header of the same time as `like` that claims `caplen` bytes.
fn record_header(like: &[u8], caplen: u32) -> Vec<u8> {
    [&like[..8], &caplen.to_le_bytes(), &caplen.to_le_bytes()].concat()
}

/// A pcapng block of this type and body.
fn ng_block(typ: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    [
        &typ.to_le_bytes(),
        &len.to_le_bytes(),
        body,
        &len.to_le_bytes(),
    ]
    .concat()
}

/// A pcapng section header and one interface of this link type.
fn ng_start(linktype: u16, snaplen: u32) -> Vec<u8> {
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    [ng_block(0x0A0D_0D0A, &shb), ng_idb(linktype, snaplen)].concat()
}

fn ng_idb(linktype: u16, snaplen: u32) -> Vec<u8> {
    let body = [&linktype.to_le_bytes()[..], &[0, 0], &snaplen.to_le_bytes()].concat();
    ng_block(1, &body)
}

/// A classic record as an enhanced packet block of interface `if_id` (microsecond
/// ticks).
fn ng_epb(if_id: u32, rec: &[u8]) -> Vec<u8> {
    let sec = u64::from(u32::from_le_bytes(rec[0..4].try_into().unwrap()));
    let usec = u64::from(u32::from_le_bytes(rec[4..8].try_into().unwrap()));
    let ticks = sec * 1_000_000 + usec;
    let mut epb = if_id.to_le_bytes().to_vec();
    epb.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
    epb.extend_from_slice(&(ticks as u32).to_le_bytes());
    epb.extend_from_slice(&rec[8..16]);
    epb.extend_from_slice(&rec[16..]);
    epb.resize(epb.len().next_multiple_of(4), 0);
    ng_block(6, &epb)
}

/// The same packets as classic records, as pcapng blocks of interface 0.
fn ng_epbs(recs: &[Vec<u8>]) -> Vec<u8> {
    recs.iter().flat_map(|r| ng_epb(0, r)).collect()
}

/// A classic file header's link type and snaplen.
fn linktype_snaplen(header: &[u8]) -> (u16, u32) {
    let lt = u32::from_le_bytes(header[20..24].try_into().unwrap());
    let snap = u32::from_le_bytes(header[16..20].try_into().unwrap());
    (u16::try_from(lt).unwrap(), snap)
}

/// Records other than anomalies, as text, for comparing two runs.
fn non_anomalies(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .filter(|r| r["event.dataset"] != "pgwire.anomaly")
        .map(Value::to_string)
        .collect()
}

/// A record whose length cannot be (longer than any snaplen, a pcapng block of a
/// gigabyte) is a corrupt capture, as tcpdump and tshark call it: what came before it
/// is decoded and written, the error names the byte offset, the exit status is 2, and
/// the anomaly carries the last packet's time.
#[test]
fn impossible_record_length_is_a_corrupt_capture() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/simple-queries.pcap");
    let (header, recs) = classic_records(&src);
    // Mid-connection: statements before, more after.
    let n = 30;
    let (before, after) = recs.split_at(n);
    let clean = dir.path().join("clean.pcap");
    std::fs::write(&clean, [header.clone(), before.concat()].concat()).unwrap();
    let want = records(&clean);
    assert!(of(&want, "query").count() > 3);
    let last_ts = of(&want, "session").last().unwrap()["@timestamp"].clone();

    let classic_at = header.len() + before.iter().map(Vec::len).sum::<usize>();
    let (linktype, snaplen) = linktype_snaplen(&header);
    let ng_before = [ng_start(linktype, snaplen), ng_epbs(before)].concat();
    let huge = [record_header(&before[n - 1], 0xFFFF_FFF0), vec![0; 100]].concat();
    let over = [record_header(&before[n - 1], 300_000), vec![0; 300_000]].concat();
    // An enhanced packet block claiming 1 GiB.
    let ng_huge = [
        &6u32.to_le_bytes()[..],
        &(1u32 << 30).to_le_bytes(),
        &[0; 200],
    ]
    .concat();
    let variants = [
        (
            "huge.pcap",
            [header.clone(), before.concat(), huge, after.concat()].concat(),
            classic_at,
        ),
        (
            "over.pcap",
            [header.clone(), before.concat(), over, after.concat()].concat(),
            classic_at,
        ),
        (
            "huge.pcapng",
            [ng_before.clone(), ng_huge, ng_epbs(after)].concat(),
            ng_before.len(),
        ),
    ];
    for (name, bytes, offset) in variants {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = pgscope(&f, &["-o", "json"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        let at = format!("corrupt capture at byte {offset}, after {n} packets");
        assert!(
            err.starts_with("pgscope: ") && err.contains(&at),
            "{name}: {err}"
        );
        let got: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(non_anomalies(&got), non_anomalies(&want), "{name}");
        let corrupt: Vec<&Value> = of(&got, "anomaly")
            .filter(|r| r["pgwire.anomaly.kind"] == "corrupt_capture")
            .collect();
        assert_eq!(corrupt.len(), 1, "{name}");
        assert!(corrupt[0]["message"].as_str().unwrap().contains(&at));
        assert_eq!(corrupt[0]["@timestamp"], last_ts, "{name}");
    }

    // Corrupt from the first record: no packet time to take, and still not the epoch.
    let f = dir.path().join("first.pcap");
    std::fs::write(
        &f,
        [header.clone(), record_header(&recs[0], 1 << 30)].concat(),
    )
    .unwrap();
    let out = pgscope(&f, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["pgwire.anomaly.kind"], "corrupt_capture");
    let ts = rec["@timestamp"].as_str().unwrap();
    assert!(!ts.starts_with("1970"), "{ts}");

    // Longer than the header's snaplen but within 256 KiB: read, as tcpdump reads it.
    let mut small_snap = header.clone();
    small_snap[16..20].copy_from_slice(&65535u32.to_le_bytes());
    let long = [record_header(&before[n - 1], 70_000), vec![0; 70_000]].concat();
    let f = dir.path().join("long.pcap");
    std::fs::write(
        &f,
        [small_snap, before.concat(), long, after.concat()].concat(),
    )
    .unwrap();
    let got = records(&f);
    assert_eq!(anomalies(&got, "corrupt_capture"), 0);
    assert_eq!(
        of(&got, "query").count(),
        of(&records(&src), "query").count()
    );
}

/// Packets of a link type pgscope cannot read are named on standard error (once per
/// type, then with their count) and in an anomaly record; a pcapng file with one such
/// interface still decodes the other.
#[test]
fn unsupported_link_types_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/simple-queries.pcap");
    let (header, recs) = classic_records(&src);
    let want = records(&src);
    // Classic pcap: IEEE 802.11 (105), which libpcap names.
    let mut wifi = header.clone();
    wifi[20..24].copy_from_slice(&105u32.to_le_bytes());
    let f = dir.path().join("wifi.pcap");
    std::fs::write(&f, [wifi, recs.concat()].concat()).unwrap();
    let out = pgscope(&f, &["-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let count = format!(
        "{} packets of link type 105 (IEEE802_11) skipped",
        recs.len()
    );
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        "pgscope: warning: link type 105 (IEEE802_11) is not supported: its packets are skipped"
    );
    assert!(lines[1].contains(&count), "{err}");
    let got: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["pgwire.anomaly.kind"], "unsupported_linktype");
    assert!(got[0]["message"].as_str().unwrap().contains(&count));

    // pcapng: every packet on interface 0 (Ethernet) and again on interface 1, of a
    // link type libpcap has no name for.
    let (linktype, snaplen) = linktype_snaplen(&header);
    let mut ng = [ng_start(linktype, snaplen), ng_idb(4242, snaplen)].concat();
    for r in &recs {
        ng.extend(ng_epb(1, r));
        ng.extend(ng_epb(0, r));
    }
    let f = dir.path().join("two.pcapng");
    std::fs::write(&f, ng).unwrap();
    let out = pgscope(&f, &["-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.matches("link type 4242 is not supported").count(),
        1,
        "{err}"
    );
    let count = format!("{} packets of link type 4242 skipped", recs.len());
    assert!(err.contains(&count), "{err}");
    let got: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(non_anomalies(&got), non_anomalies(&want));
    assert_eq!(anomalies(&got, "unsupported_linktype"), 1);
}

/// Inserts after the frame holding `text` a copy of it (a retransmission), with
/// `text`'s first byte replaced by `with` (itself for a faithful copy).
fn retransmit(src: &Path, dst: &Path, text: &[u8], with: u8) {
    let (header, mut recs) = classic_records(src);
    let i = recs
        .iter()
        .position(|r| contains(r, text))
        .expect("a frame with the text");
    let mut copy = recs[i].clone();
    let at = copy.windows(text.len()).position(|w| w == text).unwrap();
    copy[at] = with;
    recs.insert(i + 1, copy);
    std::fs::write(dst, [header, recs.concat()].concat()).unwrap();
}

#[test]
fn retransmission_with_other_bytes_is_an_anomaly_and_the_first_copy_stands() {
    let dir = tempfile::tempdir().unwrap();
    let src = external("zeek/psql-create-insert-select-delete-drop.pcap");
    let clean = records(&src);
    let text = b"INSERT INTO t VALUES (86";
    for (with, conflicts) in [(b'I', 0), (b'U', 1)] {
        let out = dir.path().join("retransmitted.pcap");
        retransmit(&src, &out, text, with);
        let recs = records(&out);
        assert_eq!(anomalies(&recs, "retransmission_conflict"), conflicts);
        assert_eq!(query_keys(&recs), query_keys(&clean));
        let a =
            of(&recs, "anomaly").find(|r| r["pgwire.anomaly.kind"] == "retransmission_conflict");
        if let Some(a) = a {
            assert_eq!(a["pgwire.anomaly.dir"], "frontend", "{a}");
            assert!(a["message"].as_str().unwrap().contains("in 1 byte"), "{a}");
        }
    }
}
