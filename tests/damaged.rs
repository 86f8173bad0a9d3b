//! The pgscope binary on damaged real captures and hostile synthetic ones, as made by
//! `pgscope-damage`. Recovery figures print with `cargo test --test damaged -- --nocapture`.
//! `PGSCOPE_BIG_ROW=1` adds the 1 GiB DataRow case (slow in a debug build).

use pgscope::capture::{self, Flow};
use pgscope::net;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;

const PGSCOPE: &str = env!("CARGO_BIN_EXE_pgscope");
const DAMAGE: &str = env!("CARGO_BIN_EXE_pgscope-damage");

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
    let out = Command::new(DAMAGE).args(args).output().unwrap();
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
    let mut gen_ = Command::new(DAMAGE)
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
fn one_gib_data_row_is_streamed() {
    if std::env::var_os("PGSCOPE_BIG_ROW").is_none() {
        return;
    }
    check_big_row(1 << 30, 48 << 10);
}
