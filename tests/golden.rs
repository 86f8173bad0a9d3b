//! Golden outputs: the default JSON records of each small real capture, compared byte
//! for byte. They were produced by pgscope and checked by reading them against what
//! each scenario did (captures/README.md). After a deliberate change of output, rerun
//! with PGSCOPE_UPDATE_GOLDEN=1 and read the diff before committing it.

mod common;

use common::*;

const GOLDEN: &[(&str, &str)] = &[
    ("simple-queries.pcap", "query,session,anomaly"),
    ("pipeline-error.pcap", "query,session,anomaly"),
    ("copy.pcap", "query,session,anomaly"),
    ("cancel-30.pcap", "query,session,anomaly"),
    ("cancel-32.pcap", "query,session,anomaly"),
    ("auth-trust.pcap", "query,session,anomaly"),
    ("auth-cleartext.pcap", "query,session,anomaly"),
    ("auth-md5.pcap", "query,session,anomaly"),
    ("auth-scram.pcap", "query,session,anomaly"),
    ("auth-failures.pcap", "query,session,anomaly"),
    ("pg18-proto32.pcap", "message,query,session,anomaly"),
    ("pg15-proto32-negotiate.pcap", "query,session,anomaly"),
    ("pq-unknown-option.pcap", "message,session,anomaly"),
    ("gssenc-refused.pcap", "message,session,anomaly"),
    ("tls-sslrequest.pcap", "message,session,anomaly"),
    ("tls-direct.pcap", "message,session,anomaly"),
    ("midstream.pcap", "query,session,anomaly"),
    ("listen-notify.pcap", "query,session,anomaly"),
    ("ipv6-simple.pcap", "query,session,anomaly"),
    ("replication.pcap", "query,session,anomaly"),
    // Every walsender message as decoded; its statements (one per command, the
    // CopyOut on BASE_BACKUP) are checked in tests/scenarios.rs.
    ("replication-basebackup.pcap", "message,anomaly"),
];

/// Decoding threads each golden runs with: the default (the cores available), one,
/// and more shards than this machine has cores; the records are the same.
const THREADS: &[Option<&str>] = &[None, Some("1"), Some("3")];

#[test]
fn outputs_match_the_reviewed_goldens() {
    let update = std::env::var_os("PGSCOPE_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (name, kinds) in GOLDEN {
        for threads in THREADS {
            let path = capture(name);
            let mut args = vec![
                "-r",
                path.to_str().unwrap(),
                "-o",
                "json",
                "--records",
                kinds,
            ];
            args.extend(["-p", "5432", "-p", "5433"]);
            if let Some(n) = threads {
                args.extend(["--threads", n]);
            }
            let run = pgscope(&args);
            assert_eq!(run.status, 0, "{name}: {}", run.stderr);
            let golden = root()
                .join("tests/golden")
                .join(name.replace(".pcap", ".jsonl"));
            if update {
                std::fs::write(&golden, &run.stdout).unwrap();
                break;
            }
            let want = std::fs::read(&golden).unwrap_or_default();
            if want != run.stdout {
                let got = String::from_utf8_lossy(&run.stdout);
                let want = String::from_utf8_lossy(&want);
                let first = got
                    .lines()
                    .zip(want.lines())
                    .find(|(g, w)| g != w)
                    .map(|(g, w)| format!("\n  got:  {g}\n  want: {w}"))
                    .unwrap_or_else(|| "\n  (line count differs)".into());
                failures.push(format!("{name} (--threads {threads:?}):{first}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
