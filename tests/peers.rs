//! pgscope against other tools' expected outputs on the same captures: Zeek's
//! postgresql.log baselines, suricata-verify's EVE checks, Packetbeat's and
//! DeepFlow's test assertions. Where a peer disagrees, the test says who is right.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn queries_by_client(recs: &[Value]) -> BTreeMap<u64, Vec<&Value>> {
    let mut m: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for q in of_kind(recs, "pgwire.query") {
        m.entry(q["source.port"].as_u64().unwrap())
            .or_default()
            .push(q);
    }
    m
}

/// Zeek escapes non-printable bytes as `\xNN`.
fn zeek_unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(Ok(v)) = s.get(i + 2..i + 4).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn zeek_postgresql_logs_agree() {
    let dir = capture("external/zeek");
    let mut checked_queries = 0;
    let mut checked_logins = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let log = e.unwrap().path();
        let name = log.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".zeek-postgresql.log") else {
            continue;
        };
        let pcap = dir.join(format!("{stem}.pcap"));
        let recs = records(&pcap, "query,session", &[]);
        let ours = queries_by_client(&recs);
        let sessions: BTreeMap<u64, &Value> = of_kind(&recs, "pgwire.session")
            .into_iter()
            .map(|s| (s["source.port"].as_u64().unwrap(), s))
            .collect();
        let mut theirs: BTreeMap<u64, Vec<(String, String, String)>> = BTreeMap::new();
        for line in std::fs::read_to_string(&log).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 15 || line.starts_with('#') || f[0] == "ts" {
                continue;
            }
            let port: u64 = f[3].parse().unwrap();
            match f[9] {
                "simple_query" => theirs.entry(port).or_default().push((
                    zeek_unescape(f[10]),
                    f[13].to_string(),
                    f[14].to_string(),
                )),
                "startup" => {
                    let s = sessions
                        .get(&port)
                        .unwrap_or_else(|| panic!("{stem}: no session for port {port}"));
                    assert_eq!(s["user.name"], f[6], "{stem}");
                    assert_eq!(s["db.namespace"], f[7], "{stem}");
                    let app = if f[8] == "-" {
                        Value::Null
                    } else {
                        f[8].into()
                    };
                    assert_eq!(s["service.name"], app, "{stem}");
                    // Zeek's success column on the startup row is the login's outcome.
                    let want = match f[13] {
                        "T" => "success",
                        "F" => "failure",
                        _ => "incomplete",
                    };
                    assert_eq!(s["pgwire.auth.outcome"], want, "{stem} port {port}");
                    checked_logins += 1;
                }
                "ssl_request" => {
                    let s = sessions[&port];
                    let want = if f[12] == "S" { "tls" } else { "none" };
                    assert_eq!(s["pgwire.encryption"], want, "{stem}");
                }
                _ => {}
            }
        }
        for (port, zq) in theirs {
            let oq = ours.get(&port).cloned().unwrap_or_default();
            assert_eq!(oq.len(), zq.len(), "{stem} port {port}: query count");
            for (o, (text, ok, rows)) in oq.iter().zip(zq) {
                assert_eq!(o["db.query.text"], text.as_str(), "{stem}");
                let success = o["event.outcome"] == "success";
                assert_eq!(success, ok == "T", "{stem}: {text}");
                if let Ok(n) = rows.parse::<u64>() {
                    assert_eq!(o["db.response.returned_rows"], n, "{stem}: {text}");
                }
                checked_queries += 1;
            }
        }
    }
    assert!(
        checked_queries >= 90,
        "only {checked_queries} queries checked"
    );
    assert!(checked_logins >= 10, "only {checked_logins} logins checked");
}

/// The `match:` maps of a suricata-verify test.yaml (a flat subset of YAML).
fn suricata_filters(yaml: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: Option<BTreeMap<String, String>> = None;
    for line in yaml.lines() {
        let t = line.trim();
        if t.starts_with("- filter:") {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            cur = Some(BTreeMap::new());
        } else if let (Some(c), Some((k, v))) = (cur.as_mut(), t.split_once(": ")) {
            let v = v.trim().trim_matches('\'').trim_matches('"').to_string();
            c.insert(k.to_string(), v);
        }
    }
    out.extend(cur);
    out
}

#[test]
fn suricata_verify_checks_agree() {
    let dir = capture("external/suricata-verify");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let yaml = e.unwrap().path();
        let name = yaml.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".suricata-test.yaml") else {
            continue;
        };
        let pcap = dir.join(format!("{stem}.pcap"));
        if !pcap.exists() {
            continue; // tests that reuse another test's pcap
        }
        let recs = records(&pcap, "query,session", &[]);
        let queries = of_kind(&recs, "pgwire.query");
        for f in suricata_filters(&std::fs::read_to_string(&yaml).unwrap()) {
            let Some(sql) = f.get("pgsql.request.simple_query") else {
                continue;
            };
            // Suricata logs the whole Query string (the flat YAML reader keeps only the
            // first line of a folded one): match on the common prefix.
            let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
            let want = words(sql);
            let mine: Vec<&&Value> = queries
                .iter()
                .filter(|q| {
                    q["db.query.text"].as_str().is_some_and(|t| {
                        let t = words(t);
                        t.starts_with(&want) || want.starts_with(t.trim_end_matches(';'))
                    })
                })
                .collect();
            assert!(!mine.is_empty(), "{stem}: no record for {sql:?}");
            if let Some(tag) = f.get("pgsql.response.command_completed") {
                assert!(
                    mine.iter().any(|q| q["pgwire.command_tag"] == tag.as_str()),
                    "{stem}: {sql:?} tag {tag}"
                );
            }
            if let Some(code) = f.get("pgsql.response.code") {
                assert!(
                    mine.iter()
                        .any(|q| q["db.response.status_code"] == code.as_str()),
                    "{stem}: {sql:?} code {code}"
                );
            }
            if let Some(rows) = f.get("pgsql.response.data_rows") {
                let n: u64 = rows.parse().unwrap();
                assert!(
                    mine.iter().any(|q| q["db.response.returned_rows"] == n),
                    "{stem}: {sql:?} rows {rows}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} suricata checks");
}

fn only_query(p: &Path) -> Value {
    let recs = records(p, "query", &[]);
    let q = of_kind(&recs, "pgwire.query");
    assert_eq!(q.len(), 1, "{}: {q:?}", p.display());
    q[0].clone()
}

#[test]
fn packetbeat_expectations_agree() {
    // Packetbeat reports the query without its final ';'; pgscope keeps the text as
    // it was sent (`tshark -e pgsql.query` agrees: "select * from test;").
    let q = only_query(&capture("external/packetbeat/pgsql_request_response.pcap"));
    assert_eq!(q["db.query.text"], "select * from test;");
    assert_eq!(q["db.operation.name"], "SELECT");
    assert_eq!(q["db.response.returned_rows"], 4);

    let q = only_query(&capture("external/packetbeat/pgsql_insert.pcap"));
    assert_eq!(q["db.operation.name"], "INSERT");
    assert_eq!(q["event.outcome"], "success");

    let q = only_query(&capture("external/packetbeat/pgsql_insert_error.pcap"));
    assert_eq!(q["db.operation.name"], "INSERT");
    assert_eq!(q["db.response.status_code"], "23505");
    assert_eq!(q["event.outcome"], "failure");

    let q = only_query(&capture("external/packetbeat/pgsql_long_result.pcap"));
    assert_eq!(q["db.response.returned_rows"], 15);

    // One transaction, response time 38 ms, not distorted by the logins before it.
    let q = only_query(&capture("external/packetbeat/pgsql_rt.pcap"));
    assert_eq!(q["db.operation.name"], "SELECT");
    let ms = q["event.duration"].as_i64().unwrap() as f64 / 1e6;
    // Packetbeat truncates to whole milliseconds: 38.8 ms on the wire reads as 38.
    assert!((38.0..39.0).contains(&ms), "response time {ms} ms");
}

#[test]
fn packetbeat_byte_counts_agree() {
    // Packetbeat: bytes_in=63 and bytes_out=16 for the INSERT. Its bytes_out stops at
    // CommandComplete; pgscope counts every byte the server sent, which adds the
    // 6-byte ReadyForQuery that follows. Both are right for what they measure.
    const READY_FOR_QUERY: u64 = 6;
    let recs = records(
        &capture("external/packetbeat/pgsql_insert.pcap"),
        "session",
        &[],
    );
    let s = of_kind(&recs, "pgwire.session")[0];
    assert_eq!(s["source.bytes"], 63);
    assert_eq!(s["destination.bytes"], 16 + READY_FOR_QUERY);
    let recs = records(
        &capture("external/packetbeat/pgsql_request_response.pcap"),
        "session",
        &[],
    );
    assert_eq!(
        of_kind(&recs, "pgwire.session")[0]["destination.bytes"],
        202 + READY_FOR_QUERY
    );
}

#[test]
fn deepflow_expectations_agree() {
    let q = only_query(&capture("external/deepflow/simple_query.pcap"));
    assert_eq!(q["db.query.text"], "delete  from test;");
    assert_eq!(q["pgwire.rows_affected"], 1);

    let q = only_query(&capture("external/deepflow/error.pcap"));
    assert_eq!(q["db.query.text"], "asdsdfdsf;");
    assert_eq!(q["db.response.status_code"], "42601");

    // DeepFlow expects the request (Parse "1") and a response in one record, but the
    // two halves of this fixture were cut from different points of a pipelined stream
    // (the BindComplete answers a Bind that is not in the capture). pgscope pairs
    // nothing it cannot prove: the Parse is kept as a statement, no query is invented.
    let recs = records(
        &capture("external/deepflow/prepare_stat.pcap"),
        "query",
        &[],
    );
    assert!(of_kind(&recs, "pgwire.query").is_empty());

    // The mid-stream JDBC session on port 8000: every Execute is answered.
    let recs = records(
        &capture("external/deepflow/pgsql-all.pcap"),
        "query,session",
        &[],
    );
    let qs = of_kind(&recs, "pgwire.query");
    assert!(qs.len() >= 30, "{} queries", qs.len());
    assert!(qs.iter().all(|q| q["event.outcome"] == "success"));
    assert_eq!(
        of_kind(&recs, "pgwire.session")[0]["pgwire.midstream"],
        true
    );
}
