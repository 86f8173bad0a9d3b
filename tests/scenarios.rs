//! The project's own recordings (captures/README.md says how each was made), decoded
//! and checked against what the scenario did on the real servers.

mod common;

use common::*;
use serde_json::Value;

fn recs(name: &str) -> Vec<Value> {
    records(&capture(name), "query,session,anomaly", &[])
}

fn sessions(r: &[Value]) -> Vec<&Value> {
    of_kind(r, "pgwire.session")
}

fn queries(r: &[Value]) -> Vec<&Value> {
    of_kind(r, "pgwire.query")
}

#[test]
fn pgbench_statements_are_all_recovered_with_sql_and_durations() {
    for name in ["pgbench-extended.pcap", "pgbench-prepared.pcap"] {
        let r = recs(name);
        let q = queries(&r);
        // 2 clients × 20 transactions × 7 statements (BEGIN, 3 UPDATE, SELECT, INSERT, END).
        let bench: Vec<_> = q
            .iter()
            .filter(|q| q["pgwire.protocol"] == "extended")
            .collect();
        assert_eq!(bench.len(), 280, "{name}");
        for q in &bench {
            assert!(q["db.query.text"].is_string(), "{name}: {q}");
            assert_eq!(q["event.outcome"], "success", "{name}: {q}");
            assert!(q["event.duration"].as_i64().unwrap() > 0, "{name}: {q}");
            assert!(q["pgwire.fingerprint"].is_string());
        }
        let updates = bench
            .iter()
            .filter(|q| q["db.operation.name"] == "UPDATE")
            .count();
        assert_eq!(updates, 120, "{name}");
        // Bind parameters are decoded (pgbench sends them as text).
        assert!(bench.iter().any(|q| {
            q["db.query.parameters"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        }));
        if name == "pgbench-prepared.pcap" {
            assert!(
                bench
                    .iter()
                    .all(|q| q["pgwire.statement"].as_str().unwrap().starts_with("P_"))
            );
        }
    }
}

#[test]
fn pipeline_error_lands_on_the_right_statement() {
    let r = recs("pipeline-error.pcap");
    let q: Vec<(&str, &str)> = queries(&r)
        .iter()
        .map(|q| {
            (
                q["db.query.text"].as_str().unwrap(),
                q["event.outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        q,
        [
            ("SELECT 1 AS first", "success"),
            ("SELECT 1/0 AS boom", "failure"),
            ("SELECT 3 AS skipped", "unknown"),
            ("SELECT 4 AS after_sync", "success"),
        ]
    );
    let qs = queries(&r);
    assert_eq!(qs[1]["db.response.status_code"], "22012");
    assert_eq!(qs[2]["pgwire.skipped"], true);
    assert!(qs[3].get("pgwire.skipped").is_none());
}

#[test]
fn cancels_are_matched_and_linked_in_both_protocol_versions() {
    for (name, key_len) in [("cancel-30.pcap", 4), ("cancel-32.pcap", 32)] {
        let r = recs(name);
        let q = queries(&r);
        let cancelled = q
            .iter()
            .find(|q| q["db.response.status_code"] == "57014")
            .unwrap_or_else(|| panic!("{name}: no 57014"));
        let by = cancelled["pgwire.cancelled_by"]
            .as_u64()
            .expect("cancelled_by");
        let target = cancelled["pgwire.conn_id"].as_u64().unwrap();
        let canceller = sessions(&r)
            .into_iter()
            .find(|s| s["pgwire.conn_id"] == by)
            .unwrap();
        assert_eq!(canceller["pgwire.cancel.target_conn_id"], target, "{name}");
        assert_eq!(canceller["pgwire.cancel.key_len"], key_len, "{name}");
        let victim = sessions(&r)
            .into_iter()
            .find(|s| s["pgwire.conn_id"] == target)
            .unwrap();
        assert_eq!(victim["pgwire.cancel_key_len"], key_len, "{name}");
    }
}

#[test]
fn authentication_methods_and_failures() {
    for (name, method) in [
        ("auth-trust.pcap", "trust"),
        ("auth-cleartext.pcap", "password"),
        ("auth-md5.pcap", "md5"),
        ("auth-scram.pcap", "SCRAM-SHA-256"),
    ] {
        let r = recs(name);
        let s = sessions(&r);
        assert_eq!(s.len(), 1, "{name}");
        assert_eq!(s[0]["pgwire.auth.method"], method, "{name}");
        assert_eq!(s[0]["pgwire.auth.outcome"], "success", "{name}");
        assert_eq!(queries(&r).len(), 1, "{name}");
    }
    let r = recs("auth-failures.pcap");
    let codes: Vec<&str> = sessions(&r)
        .iter()
        .map(|s| {
            assert_eq!(s["pgwire.auth.outcome"], "failure");
            s["db.response.status_code"].as_str().unwrap()
        })
        .collect();
    assert_eq!(codes, ["28P01", "28000", "3D000"]);
    assert!(queries(&r).is_empty());
}

#[test]
fn protocol_negotiation() {
    let r = recs("pg18-proto32.pcap");
    let s = sessions(&r)[0];
    assert_eq!(s["pgwire.protocol.requested"], "3.2");
    assert_eq!(s["pgwire.protocol.negotiated"], "3.2");
    assert_eq!(s["pgwire.cancel_key_len"], 32);

    let r = recs("pg15-proto32-negotiate.pcap");
    let s = sessions(&r)[0];
    assert_eq!(s["pgwire.protocol.requested"], "3.2");
    assert_eq!(s["pgwire.protocol.negotiated"], "3.0");
    assert_eq!(s["pgwire.cancel_key_len"], 4);

    let r = recs("pq-unknown-option.pcap");
    let s = sessions(&r)[0];
    assert_eq!(
        s["pgwire.negotiation.unsupported_options"][0],
        "_pq_.pgscope_test"
    );
    assert_eq!(s["pgwire.startup_params"]["_pq_.pgscope_test"], "1");
}

#[test]
fn encryption_negotiation() {
    let tls = sessions(&recs("tls-sslrequest.pcap"))[0].clone();
    assert_eq!(tls["pgwire.encryption"], "tls");
    assert_eq!(tls["pgwire.encryption.negotiation"][0], "SSLRequest:S");
    let direct = recs("tls-direct.pcap");
    assert_eq!(sessions(&direct)[0]["pgwire.encryption"], "tls");
    assert!(
        of_kind(&direct, "pgwire.anomaly")
            .iter()
            .any(|a| a["pgwire.anomaly.kind"] == "encryption")
    );
    let gss = recs("gssenc-refused.pcap");
    let s = sessions(&gss)[0];
    assert_eq!(s["pgwire.encryption"], "none");
    assert_eq!(s["pgwire.encryption.negotiation"][0], "GSSENCRequest:N");
    assert_eq!(queries(&gss).len(), 1);
}

#[test]
fn midstream_capture_still_yields_later_queries() {
    let r = recs("midstream.pcap");
    let texts: Vec<&str> = queries(&r)
        .iter()
        .map(|q| q["db.query.text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["select 42;", "select 'after join';"]);
    assert_eq!(sessions(&r)[0]["pgwire.midstream"], true);
}

#[test]
fn midstream_on_no_server_port_is_found_by_message_shape() {
    // As if the server's port were not known: the roles come from the messages.
    let p = capture("midstream.pcap");
    let run = pgscope(&["-r", p.to_str().unwrap(), "-o", "json", "-p", "9999"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let r = parse_lines(&run.stdout, &p);
    let texts: Vec<&str> = queries(&r)
        .iter()
        .map(|q| q["db.query.text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["select 42;", "select 'after join';"]);
    let s = sessions(&r)[0];
    assert_eq!(s["pgwire.midstream"], true);
    assert_eq!(s["destination.port"], 5432);
}

#[test]
fn copy_row_counts_are_exact() {
    let r = recs("copy.pcap");
    let q = queries(&r);
    assert_eq!(q[0]["pgwire.copy.direction"], "in");
    assert_eq!(q[0]["pgwire.rows_affected"], 5);
    assert_eq!(q[1]["pgwire.copy.direction"], "out");
    assert_eq!(q[1]["pgwire.rows_affected"], 5);
    assert_eq!(q[1]["db.response.returned_rows"], 5);
    assert_eq!(q[1]["pgwire.copy.messages_out"], 5);
}

#[test]
fn simple_queries_split_notices_and_errors() {
    let r = recs("simple-queries.pcap");
    let q = queries(&r);
    let texts: Vec<&str> = q
        .iter()
        .map(|q| q["db.query.text"].as_str().unwrap())
        .collect();
    assert!(
        texts.windows(2).any(|w| w == ["select 1", "select 2"]),
        "{texts:?}"
    );
    let codes: Vec<&str> = q
        .iter()
        .filter_map(|q| q["db.response.status_code"].as_str())
        .collect();
    assert_eq!(codes, ["22012", "42601", "23505", "25P02"]);
    let drop = q
        .iter()
        .find(|q| {
            q["db.query.text"]
                .as_str()
                .unwrap()
                .contains("nonexistent_table")
        })
        .unwrap();
    assert_eq!(drop["pgwire.notices"][0]["code"], "00000");
    let failed_tx = q
        .iter()
        .find(|q| q["db.response.status_code"] == "23505")
        .unwrap();
    assert_eq!(failed_tx["pgwire.tx_status"], "E");
}

#[test]
fn notifications_large_rows_ipv6_and_replication() {
    let r = recs("listen-notify.pcap");
    let total: u64 = sessions(&r)
        .iter()
        .map(|s| s["pgwire.notifications"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 2);

    let r = recs("large-result.pcap");
    let q = queries(&r);
    assert_eq!(q[0]["db.response.returned_rows"], 300);
    assert_eq!(
        q[1]["db.response.returned_rows"], 1,
        "the 3 MB row is counted"
    );
    assert!(
        of_kind(&r, "pgwire.anomaly")
            .iter()
            .any(|a| a["pgwire.anomaly.kind"] == "oversize")
    );

    let r = recs("ipv6-simple.pcap");
    assert_eq!(sessions(&r)[0]["source.ip"], "::1");
    assert_eq!(queries(&r).len(), 3);

    let r = recs("replication.pcap");
    let stream = queries(&r)
        .into_iter()
        .find(|q| {
            q["db.query.text"]
                .as_str()
                .unwrap()
                .starts_with("START_REPLICATION")
        })
        .unwrap();
    assert_eq!(stream["pgwire.copy.direction"], "both");
    assert!(stream["pgwire.copy.xlog_data"].as_u64().unwrap() > 0);
    assert!(
        sessions(&r)
            .iter()
            .any(|s| s["pgwire.replication"] == "database")
    );
}

/// pg_basebackup -Ft -X stream with server-side zstd (captures/README.md): two physical
/// walsender connections, the backup's tar stream in CopyOut on one, the WAL in
/// CopyBoth on the other.
#[test]
fn pg_basebackup_replication_sessions_and_commands() {
    let r = recs("replication-basebackup.pcap");
    assert!(
        of_kind(&r, "pgwire.anomaly").is_empty(),
        "{:?}",
        of_kind(&r, "pgwire.anomaly")
    );
    let s = sessions(&r);
    assert_eq!(s.len(), 2);
    for s in &s {
        // Physical replication: libpq sends replication=true and database "replication".
        assert_eq!(s["pgwire.replication"], "true", "{s}");
        assert_eq!(s["db.namespace"], "replication", "{s}");
        assert_eq!(s["user.name"], "repl_user", "{s}");
        assert_eq!(s["pgwire.auth.outcome"], "success", "{s}");
        // PGSSLMODE=disable reached pg_basebackup: no SSLRequest at all.
        assert_eq!(s["pgwire.encryption"], "none", "{s}");
        assert!(s.get("pgwire.encryption.negotiation").is_none(), "{s}");
        assert_eq!(s["pgwire.errors"], 0, "{s}");
        assert_eq!(s["pgwire.gaps"], 0, "{s}");
        assert_eq!(s["pgwire.resyncs"], 0, "{s}");
        assert_eq!(s["pgwire.terminated"], true, "{s}");
    }
    let q = queries(&r);
    assert!(q.iter().all(|q| q["event.outcome"] == "success"), "{q:?}");
    let of_conn = |id: u64| -> Vec<&Value> {
        q.iter()
            .filter(|q| q["pgwire.conn_id"] == id)
            .copied()
            .collect()
    };
    let texts = |qs: &[&Value]| -> Vec<String> {
        let mut t: Vec<String> = qs
            .iter()
            .map(|q| q["db.query.text"].as_str().unwrap().to_string())
            .collect();
        t.dedup(); // several CommandCompletes of one walsender command
        t
    };
    // Each command's last CommandComplete tag (a walsender command may send several).
    let last_tags = |qs: &[&Value]| -> Vec<String> {
        let mut t: Vec<(String, String)> = Vec::new();
        for q in qs {
            let text = q["db.query.text"].as_str().unwrap().to_string();
            let tag = q["pgwire.command_tag"].as_str().unwrap().to_string();
            match t.last_mut() {
                Some(last) if last.0 == text => last.1 = tag,
                _ => t.push((text, tag)),
            }
        }
        t.into_iter().map(|(_, tag)| tag).collect()
    };

    // Connection 1: the backup itself.
    let main = of_conn(1);
    // One record per command, however many result sets it answered with.
    assert_eq!(main.len(), 4);
    let t = texts(&main);
    assert_eq!(
        t[..3],
        [
            "SHOW data_directory_mode",
            "SHOW wal_segment_size",
            "IDENTIFY_SYSTEM"
        ]
    );
    assert_eq!(t.len(), 4, "{t:?}");
    assert!(t[3].starts_with("BASE_BACKUP ( LABEL 'pg_basebackup base backup'"));
    for opt in [
        "CHECKPOINT 'fast'",
        "MANIFEST 'yes'",
        "TARGET 'client'",
        "COMPRESSION 'zstd'",
        "COMPRESSION_DETAIL 'level=19'",
    ] {
        assert!(t[3].contains(opt), "{opt} not in {}", t[3]);
    }
    // BASE_BACKUP answers with result sets (start position, tablespaces, then after
    // the CopyOut the end position), each ended by CommandComplete SELECT, and a
    // final CommandComplete BASE_BACKUP.
    assert_eq!(
        last_tags(&main),
        ["SHOW", "SHOW", "IDENTIFY_SYSTEM", "BASE_BACKUP"]
    );
    let base = main.last().unwrap();
    assert_eq!(base["event.outcome"], "success");
    assert_eq!(base["pgwire.tx_status"], "I");
    // The data directory holds the server's Unix socket; the server warns that it
    // skips it (01000), while sizing the backup and while sending it.
    let warned = main
        .iter()
        .flat_map(|q| q["pgwire.notices"].as_array().into_iter().flatten())
        .filter(|n| {
            n["code"] == "01000"
                && n["severity"] == "WARNING"
                && n["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("skipping special file")
        })
        .count();
    assert!(warned >= 1);
    let main_session = s.iter().find(|s| s["pgwire.conn_id"] == 1).unwrap();
    assert_eq!(main_session["pgwire.notices"], 2);
    assert_eq!(main_session["pgwire.queries"], 4);
    // From the Query to BASE_BACKUP's own CommandComplete: the whole backup, 1.28 s
    // in this recording (its first result set, the start position, came after 58 ms).
    let took = base["event.duration"].as_u64().unwrap();
    assert!(took > 1_000_000_000, "{took}");
    // The compressed tar and the manifest: far more than the result sets, far less
    // than the 23 MB of the uncompressed cluster.
    let down = main_session["destination.bytes"].as_u64().unwrap();
    assert!((300_000..3_000_000).contains(&down), "{down}");
    // pg_basebackup forks a child for the WAL stream; at exit it also sends Terminate
    // on the inherited main connection: 2 Terminates there.
    assert_eq!(main_session["pgwire.messages.frontend"], 7); // startup, 4 Query, 2 X

    // Connection 2: the WAL stream, from a temporary slot.
    let wal = of_conn(2);
    assert_eq!(wal.len(), 4);
    let t = texts(&wal);
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[0], "SHOW data_directory_mode");
    let slot = t[1]
        .strip_prefix("CREATE_REPLICATION_SLOT \"")
        .and_then(|x| x.strip_suffix("\" TEMPORARY PHYSICAL ( RESERVE_WAL)"))
        .unwrap_or_else(|| panic!("{}", t[1]));
    assert!(slot.starts_with("pg_basebackup_"), "{slot}");
    assert_eq!(t[2], "IDENTIFY_SYSTEM");
    let start = t[3]
        .strip_prefix(&format!("START_REPLICATION SLOT \"{slot}\" "))
        .and_then(|x| x.strip_suffix(" TIMELINE 1"))
        .unwrap_or_else(|| panic!("{}", t[3]));
    // Streaming starts at a WAL segment boundary (segments are 1 MB here).
    let (_, lo) = start.split_once('/').unwrap();
    assert_eq!(
        u64::from_str_radix(lo, 16).unwrap() % 0x10_0000,
        0,
        "{start}"
    );
    // A physical walsender ends the stream with CommandComplete START_STREAMING,
    // then START_REPLICATION.
    assert_eq!(
        last_tags(&wal),
        [
            "SHOW",
            "CREATE_REPLICATION_SLOT",
            "IDENTIFY_SYSTEM",
            "START_REPLICATION"
        ]
    );
    let stream = wal
        .iter()
        .find(|q| q["pgwire.copy.direction"] == "both")
        .unwrap();
    let xlog = stream["pgwire.copy.xlog_data"].as_u64().unwrap();
    let keepalives = stream["pgwire.copy.keepalives"].as_u64().unwrap();
    let out = stream["pgwire.copy.messages_out"].as_u64().unwrap();
    assert!(xlog > 0);
    assert_eq!(
        out,
        xlog + keepalives,
        "every server CopyData is 'w' or 'k'"
    );
    // WAL bytes: CopyData bodies less the XLogData (25) and keepalive (18) headers.
    let body = stream["pgwire.copy.bytes_out"].as_u64().unwrap();
    let wal_bytes = body - 25 * xlog - 18 * keepalives;
    assert!((1..=2 << 20).contains(&wal_bytes), "{wal_bytes}");
    // Standby status updates ('r'): 34 bytes each.
    let ups = stream["pgwire.copy.messages_in"].as_u64().unwrap();
    assert!(ups >= 1);
    assert_eq!(stream["pgwire.copy.bytes_in"], 34 * ups);
}

/// BASE_BACKUP's CopyOut (the compressed tar and the manifest) belongs to the
/// BASE_BACKUP statement, as do its result sets' rows and its notices.
#[test]
fn pg_basebackup_copy_out_is_counted_on_base_backup() {
    let path = capture("replication-basebackup.pcap");
    let msgs = records(&path, "message", &[]);
    let copy: Vec<u64> = msgs
        .iter()
        .filter(|m| {
            m["pgwire.conn_id"] == 1
                && m["pgwire.msg.dir"] == "backend"
                && m["pgwire.msg.name"] == "CopyData"
        })
        .map(|m| m["pgwire.msg.data_len"].as_u64().unwrap())
        .collect();
    let bytes: u64 = copy.iter().sum();
    assert!((300_000..3_000_000).contains(&bytes), "{bytes}");
    let r = recs("replication-basebackup.pcap");
    let base: Vec<&Value> = queries(&r)
        .into_iter()
        .filter(|q| {
            q["db.query.text"]
                .as_str()
                .unwrap()
                .starts_with("BASE_BACKUP")
        })
        .collect();
    let with_copy: Vec<&&Value> = base
        .iter()
        .filter(|q| q["pgwire.copy.direction"] == "out")
        .collect();
    let summary: Vec<(&Value, &Value)> = base
        .iter()
        .map(|q| (&q["pgwire.command_tag"], &q["pgwire.copy.direction"]))
        .collect();
    assert_eq!(with_copy.len(), 1, "{summary:?}");
    assert_eq!(with_copy[0]["pgwire.copy.messages_out"], copy.len() as u64);
    assert_eq!(with_copy[0]["pgwire.copy.bytes_out"], bytes);
    let session = sessions(&r)
        .into_iter()
        .find(|s| s["pgwire.conn_id"] == 1)
        .unwrap();
    let all = queries(&r)
        .into_iter()
        .filter(|q| q["pgwire.conn_id"] == 1)
        .collect::<Vec<_>>();
    // DataRows: 3 before BASE_BACKUP (SHOW, SHOW, IDENTIFY_SYSTEM) + 3 result sets.
    let rows: u64 = all
        .iter()
        .map(|q| q["db.response.returned_rows"].as_u64().unwrap())
        .sum::<u64>()
        - copy.len() as u64;
    assert_eq!(rows, session["pgwire.rows"].as_u64().unwrap());
    let notices: usize = all
        .iter()
        .map(|q| q["pgwire.notices"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(notices as u64, session["pgwire.notices"].as_u64().unwrap());
}

/// Every secret of the authentication captures, in every output mode.
#[test]
fn no_secret_reaches_any_output() {
    let secrets: Vec<String> = std::fs::read_to_string(capture("secrets.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(secrets.len() >= 6);
    let files = [
        "auth-md5.pcap",
        "auth-scram.pcap",
        "auth-cleartext.pcap",
        "auth-failures.pcap",
    ];
    let modes: [&[&str]; 3] = [
        &["-o", "json", "--records", "message,query,session,anomaly"],
        &["-o", "text"],
        &["-o", "summary"],
    ];
    let mut revealed = 0;
    for f in files {
        let path = capture(f);
        for mode in modes {
            let mut args = vec!["-r", path.to_str().unwrap()];
            args.extend_from_slice(mode);
            let out = String::from_utf8(pgscope(&args).stdout).unwrap();
            for s in &secrets {
                assert!(!out.contains(s.as_str()), "{f} {mode:?} leaks {s}");
            }
            // The same run with --show-secrets does show them: the check can fail.
            args.push("--show-secrets");
            let shown = String::from_utf8(pgscope(&args).stdout).unwrap();
            revealed += secrets
                .iter()
                .filter(|s| shown.contains(s.as_str()))
                .count();
        }
    }
    assert!(
        revealed > 0,
        "--show-secrets revealed nothing: the leak check proves nothing"
    );
}

/// Every shipped capture, every record kind: valid JSON, no duplicate keys, exit 0.
#[test]
fn every_capture_decodes_to_valid_json() {
    for p in all_captures() {
        let r = records(&p, "message,query,session,anomaly", &[]);
        assert!(
            !r.is_empty() || p.to_string_lossy().contains("probe"),
            "{}",
            p.display()
        );
    }
}

/// `--filter` keeps the matching statements in JSON too (the TUI's language).
#[test]
fn filter_applies_to_json_records() {
    let path = capture("simple-queries.pcap");
    let p = path.to_str().unwrap();
    let run = pgscope(&[
        "-r",
        p,
        "--records",
        "query",
        "--filter",
        "failed sqlstate=2",
    ]);
    let q = parse_lines(&run.stdout, &path);
    let codes: Vec<&str> = q
        .iter()
        .map(|q| q["db.response.status_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["22012", "23505", "25P02"]);
    let bad = pgscope(&["-r", p, "--filter", "rows>lots"]);
    assert_eq!(bad.status, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn statements_over_the_buffer_cap_keep_their_identity_and_results() {
    let r = recs("oversize-statements.pcap");
    let q = queries(&r);
    let text = |q: &Value| q["db.query.text"].as_str().unwrap().to_string();
    // psql: a 1.2 MB simple Query, then a small one.
    let big = &q[0];
    assert!(
        text(big).starts_with("select length('qqqq"),
        "{}",
        &text(big)[..40]
    );
    assert_eq!(text(big).len(), 64 << 10, "the kept prefix");
    assert_eq!(big["pgwire.query.truncated"], true);
    assert_eq!(big["pgwire.query.length"], 1_200_031);
    assert_eq!(big["pgwire.command_tag"], "SELECT 1");
    assert_eq!(big["db.response.returned_rows"], 1);
    assert_eq!(text(q[1]), "select 2 as after_big");
    assert!(q[1].get("pgwire.query.truncated").is_none());
    // psycopg: a small unnamed statement, a 1.1 MB Parse (unnamed), a 1.5 MB Bind
    // of a named statement, then a small simple Query.
    assert_eq!(text(q[2]), "select $1::int as small");
    assert_eq!(q[2]["db.query.parameters"][0], "1");
    let parse = &q[3];
    assert!(
        text(parse).starts_with("select $1::int as big_parse, length('xxx"),
        "{}",
        &text(parse)[..50]
    );
    assert_eq!(parse["pgwire.query.truncated"], true);
    assert_eq!(parse["pgwire.statement"], "");
    assert_eq!(parse["pgwire.command_tag"], "SELECT 1");
    assert_eq!(parse["event.outcome"], "success");
    let bind = &q[4];
    assert_eq!(text(bind), "select length($1) as big_bind");
    assert_eq!(bind["pgwire.statement"], "_pg3_0");
    assert_eq!(bind["pgwire.portal"], "");
    assert_eq!(bind["pgwire.query.parameters_missing"], true);
    assert!(bind.get("db.query.parameters").is_none());
    assert_eq!(bind["pgwire.command_tag"], "SELECT 1");
    assert_eq!(text(q[5]), "select 4 as after_big");
    assert_eq!(q.len(), 6);
    let oversize = of_kind(&r, "pgwire.anomaly")
        .iter()
        .filter(|a| a["pgwire.anomaly.kind"] == "oversize")
        .count();
    assert_eq!(oversize, 3);
    let s = sessions(&r);
    assert_eq!(s[0]["pgwire.queries"], 2);
    assert_eq!(s[1]["pgwire.queries"], 4);
}

#[test]
fn rolled_back_skipped_and_each_statements_own_tx_status() {
    let r = recs("rollback-batches.pcap");
    let rows: Vec<String> = queries(&r)
        .iter()
        .map(|q| {
            let text = q["db.query.text"].as_str().unwrap();
            let flag = |k: &'static str| if q[k] == true { k } else { "" };
            format!(
                "{} {} {} {}{}",
                text,
                q["event.outcome"].as_str().unwrap(),
                q["pgwire.tx_status"].as_str().unwrap(),
                flag("pgwire.rolled_back"),
                flag("pgwire.skipped"),
            )
        })
        .collect();
    let want = [
        // psycopg pipelines, one Sync each: in autocommit, then inside BEGIN.
        "drop table if exists rb_t success I ",
        "create table rb_t (id int primary key) success I ",
        "insert into rb_t values (1) success I pgwire.rolled_back",
        "insert into rb_t values (2) success I pgwire.rolled_back",
        "insert into rb_t values (1) failure I ",
        "insert into rb_t values (4) unknown I pgwire.skipped",
        "begin success T ",
        "insert into rb_t values (1) success T ",
        "insert into rb_t values (2) success T ",
        "insert into rb_t values (1) failure E ",
        "insert into rb_t values (4) unknown E pgwire.skipped",
        "rollback success I ",
        "select count(*) from rb_t success I ",
        // psql multi-statement Queries.
        "insert into rb_t values (1) success I pgwire.rolled_back",
        "insert into rb_t values (2) success I pgwire.rolled_back",
        "select 1/0 failure I ",
        "select 3 unknown I pgwire.skipped",
        // COMMIT ends the implicit transaction: only what follows it is undone.
        "insert into rb_t values (1) success I ",
        "commit success I ",
        "insert into rb_t values (2) success I pgwire.rolled_back",
        "select 1/0 failure I ",
        // An explicit transaction: nothing undone yet, it is left failed.
        "begin success T ",
        "insert into rb_t values (3) success T ",
        "select 1/0 failure E ",
        "select 4 unknown E pgwire.skipped",
        "rollback success I ",
        "begin success T ",
        "savepoint s success T ",
        "insert into rb_t values (5) success T ",
        "rollback to savepoint s success T ",
        "insert into rb_t values (6) success T ",
        "select 1/0 failure E ",
        "rollback success I ",
        "select count(*) from rb_t success I ",
    ];
    assert_eq!(rows, want);
}

#[test]
fn a_pipeline_of_5000_statements_before_one_sync_is_paired_exactly() {
    let r = recs("long-pipeline.pcap");
    assert!(of_kind(&r, "pgwire.anomaly").is_empty());
    let q = queries(&r);
    let inserts: Vec<&&Value> = q
        .iter()
        .filter(|q| q["db.query.text"] == "insert into lp_t values ($1)")
        .collect();
    assert_eq!(inserts.len(), 5000);
    for (i, q) in inserts.iter().enumerate() {
        assert_eq!(q["db.query.parameters"][0], i.to_string(), "in order");
        assert_eq!(q["pgwire.command_tag"], "INSERT 0 1");
        assert_eq!(q["event.outcome"], "success");
        assert!(q.get("pgwire.unsure").is_none());
    }
    assert_eq!(
        q.last().unwrap()["db.query.text"],
        "select count(*) from lp_t"
    );
    assert_eq!(sessions(&r)[0]["pgwire.queries"], 5003);
}

#[test]
fn binary_copy_rows_and_a_renamed_application() {
    let r = recs("copy-binary-appname.pcap");
    let q = queries(&r);
    // 30 rows, the -1 trailer of binary COPY is not one.
    assert_eq!(q[0]["pgwire.copy.direction"], "out");
    assert_eq!(q[0]["db.response.returned_rows"], 30);
    assert_eq!(q[0]["pgwire.rows_affected"], 30);
    let apps: Vec<&str> = q
        .iter()
        .map(|q| q["service.name"].as_str().unwrap())
        .collect();
    // The SET's own record ends after the server announced the new name.
    assert_eq!(
        apps,
        [
            "pgscope-record",
            "pgscope-record",
            "renamed-app",
            "renamed-app"
        ]
    );
    assert_eq!(sessions(&r)[0]["service.name"], "renamed-app");
    let path = capture("copy-binary-appname.pcap");
    let filtered = records(&path, "query", &["--filter", "app=renamed-app"]);
    assert_eq!(filtered.len(), 2);
}
