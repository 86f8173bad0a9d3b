//! TLS decryption on real captures with their key logs (captures/tls/, recorded by
//! captures/tls/record.sh): decrypted sessions decode exactly as the same statements
//! sent in plaintext, tshark agrees on the messages, and bad keys or damaged records
//! give anomalies, never garbage.

mod common;

use common::tshark::{pgscope_counts, tshark_counts};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn tls(name: &str) -> (PathBuf, PathBuf) {
    let base = root().join("captures/tls").join(name);
    (base.with_extension("pcap"), base.with_extension("keys"))
}

fn decrypted(pcap: &Path, keys: &Path, kinds: &str) -> Vec<Value> {
    records(pcap, kinds, &["--tls-keylog", keys.to_str().unwrap()])
}

/// What a statement record says that does not depend on timing or ports.
fn queries(recs: &[Value]) -> Vec<String> {
    of_kind(recs, "pgwire.query")
        .iter()
        .map(|q| {
            format!(
                "{} | {} | {} | {}",
                q["db.query.text"],
                q["pgwire.command_tag"],
                q["db.response.status_code"],
                q["db.response.returned_rows"]
            )
        })
        .collect()
}

fn session(recs: &[Value]) -> &Value {
    let s = of_kind(recs, "pgwire.session");
    assert_eq!(s.len(), 1, "{recs:?}");
    s[0]
}

fn anomalies(recs: &[Value]) -> Vec<(String, String)> {
    of_kind(recs, "pgwire.anomaly")
        .iter()
        .map(|a| {
            (
                a["pgwire.anomaly.kind"].as_str().unwrap().to_string(),
                a["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The libpq 18 captures: each with the same statements in a plaintext capture.
const PSQL: &[(&str, &str, &str)] = &[
    ("tls13-pg15-sslrequest", "1.3", "SSLRequest:S"),
    ("tls12-pg15-sslrequest", "1.2", "SSLRequest:S"),
    ("tls13-pg18-sslrequest-scram32", "1.3", "SSLRequest:S"),
    ("tls13-pg18-direct-scram32", "1.3", "direct_tls"),
    ("tls12-pg18-direct", "1.2", "direct_tls"),
];

#[test]
fn decrypted_sessions_decode_as_their_plaintext_twins() {
    for (name, version, negotiation) in PSQL {
        let (pcap, keys) = tls(name);
        let plain = pcap.with_extension("plain.pcap");
        // The staged pipeline (default records) and the one-thread one (messages).
        let ours = decrypted(&pcap, &keys, "query,session,anomaly");
        let twin = records(&plain, "query,session,anomaly", &[]);
        assert_eq!(anomalies(&ours), [], "{name}");
        assert_eq!(queries(&ours).len(), 5, "{name}");
        assert_eq!(queries(&ours), queries(&twin), "{name}");
        let (s, t) = (session(&ours), session(&twin));
        for k in [
            "user.name",
            "db.namespace",
            "service.name",
            "pgwire.protocol.requested",
            "pgwire.protocol.negotiated",
            "pgwire.auth.outcome",
            "pgwire.queries",
            "pgwire.errors",
            "pgwire.rows",
            "pgwire.tx_status",
            "pgwire.terminated",
        ] {
            assert_eq!(s[k], t[k], "{name}: {k}");
            assert!(!s[k].is_null(), "{name}: {k}");
        }
        assert_eq!(s["pgwire.encryption"], "tls", "{name}");
        assert_eq!(
            s["pgwire.encryption.negotiation"][0], *negotiation,
            "{name}"
        );
        assert_eq!(s["tls.version"], *version, "{name}");
        assert_eq!(s["tls.decrypted"], true, "{name}");
        assert_eq!(s["tls.next_protocol"], "postgresql", "{name}");
        assert!(
            s["tls.cipher"].as_str().unwrap().contains("_GCM_"),
            "{name}: {s}"
        );
        // Message by message: the same, but for the SSLRequest and its answer.
        let names = |recs: &[Value]| -> Vec<String> {
            of_kind(recs, "pgwire.message")
                .iter()
                .map(|m| format!("{} {}", m["pgwire.msg.dir"], m["pgwire.msg.name"]))
                .filter(|n| !n.contains("SSLRequest") && !n.contains("SSLResponse"))
                .collect()
        };
        let ours = decrypted(&pcap, &keys, "message");
        let twin = records(&plain, "message", &[]);
        assert!(names(&ours).len() > 20, "{name}");
        assert_eq!(names(&ours), names(&twin), "{name}");
    }
}

#[test]
fn scram_inside_tls_binds_the_channel() {
    let (pcap, keys) = tls("tls13-pg18-direct-scram32");
    let recs = decrypted(&pcap, &keys, "session");
    // Over TLS libpq picks SCRAM with channel binding, and protocol 3.2 holds.
    assert_eq!(session(&recs)["pgwire.auth.method"], "SCRAM-SHA-256-PLUS");
    assert_eq!(session(&recs)["pgwire.protocol.negotiated"], "3.2");
}

/// openssl s_client: the suites and the KeyUpdate libpq does not exercise.
#[test]
fn cipher_suites_and_key_updates() {
    for (name, version, cipher, texts) in [
        (
            "tls13-aes128",
            "1.3",
            "TLS_AES_128_GCM_SHA256",
            &["SELECT 'aes128'"][..],
        ),
        (
            "tls13-aes256",
            "1.3",
            "TLS_AES_256_GCM_SHA384",
            &["SELECT 'aes256'"][..],
        ),
        (
            "tls13-chacha20",
            "1.3",
            "TLS_CHACHA20_POLY1305_SHA256",
            &["SELECT 'chacha20'"],
        ),
        (
            "tls12-chacha20",
            "1.2",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            &["SELECT 'chacha20'"],
        ),
        (
            "tls12-aes128",
            "1.2",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            &["SELECT 'aes128'"],
        ),
        // `k` updates the client's keys, `K` both sides' (update_requested).
        (
            "tls13-keyupdate",
            "1.3",
            "TLS_AES_256_GCM_SHA384",
            &["SELECT 'before'", "SELECT 'after k'", "SELECT 'after K'"],
        ),
    ] {
        let (pcap, keys) = tls(name);
        let recs = decrypted(&pcap, &keys, "query,session,anomaly");
        assert_eq!(anomalies(&recs), [], "{name}");
        let want: Vec<String> = texts
            .iter()
            .map(|t| format!("{:?} | \"SELECT 1\" | null | 1", t))
            .collect();
        assert_eq!(queries(&recs), want, "{name}");
        let s = session(&recs);
        assert_eq!(
            (s["tls.version"].as_str(), s["tls.cipher"].as_str()),
            (Some(version), Some(cipher)),
            "{name}"
        );
        assert_eq!(s["user.name"], "trust_user", "{name}");
        assert_eq!(s["tls.decrypted"], true, "{name}");
    }
}

/// The secrets after a KeyUpdate, derived: the same statements without the
/// `_N` lines OpenSSL 3.0 logged for them.
#[test]
fn key_update_secrets_are_derived() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, keys) = tls("tls13-keyupdate");
    let text = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(text.matches("TRAFFIC_SECRET_N ").count(), 3);
    let kept: String = text
        .lines()
        .filter(|l| !l.contains("TRAFFIC_SECRET_N "))
        .map(|l| format!("{l}\n"))
        .collect();
    let stripped = temp_keys(dir.path(), &kept);
    let want = decrypted(&pcap, &keys, "query,session,anomaly");
    let got = decrypted(&pcap, &stripped, "query,session,anomaly");
    assert_eq!(queries(&got).len(), 3);
    assert_eq!(queries(&got), queries(&want));
    assert_eq!(anomalies(&got), []);
}

#[test]
fn cbc_suite_is_reported_by_name() {
    let (pcap, keys) = tls("tls12-cbc");
    let recs = decrypted(&pcap, &keys, "message,query,session,anomaly");
    let a = anomalies(&recs);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].0, "tls_unsupported");
    assert!(
        a[0].1.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        "{a:?}"
    );
    assert_eq!(queries(&recs), Vec::<String>::new());
    let s = session(&recs);
    assert_eq!(s["tls.decrypted"], false);
    assert_eq!(s["tls.cipher"], "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA");
}

/// tshark decrypts and decodes the SSLRequest path (not direct TLS, in 4.0): the
/// same messages per connection.
#[test]
fn message_counts_match_tshark_with_the_key_log() {
    let mut compared = 0;
    for name in [
        "tls13-pg15-sslrequest",
        "tls12-pg15-sslrequest",
        "tls13-pg18-sslrequest-scram32",
        "tls13-aes128",
        "tls13-aes256",
        "tls13-chacha20",
        "tls12-chacha20",
        "tls12-aes128",
        "tls13-keyupdate",
    ] {
        let (pcap, keys) = tls(name);
        let opt = format!("tls.keylog_file:{}", keys.display());
        let mut theirs = tshark_counts(&pcap, &[5432, 5433], &["-o", &opt]);
        for t in theirs.values_mut() {
            // tshark 4.0 does not know protocol 3.2's StartupMessage (captures/README.md).
            let unknown = t.keys().find(|(_, k)| k == "?:Unknown").cloned();
            if let Some((client, k)) = unknown.filter(|_| name.ends_with("scram32")) {
                let n = t.remove(&(client, k)).unwrap();
                t.insert((client, "F:StartupMessage".into()), n);
            }
        }
        let ours = pgscope_counts(&pcap, &["--tls-keylog", keys.to_str().unwrap()]);
        assert_eq!(theirs.len(), 1, "{name}: {theirs:?}");
        for (client, t) in &theirs {
            // More than the SSLRequest: tshark did decrypt.
            assert!(t.values().sum::<u64>() > 10, "{name}: {t:?}");
            assert_eq!(ours.get(client), Some(t), "{name}");
            compared += 1;
        }
    }
    assert_eq!(compared, 9);
}

/// A key log's secrets (hex), to check none reaches any output.
fn secrets_of(keys: &Path) -> Vec<String> {
    std::fs::read_to_string(keys)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_lowercase))
        .collect()
}

#[test]
fn key_material_never_appears_even_with_show_secrets() {
    for (name, ..) in PSQL {
        let (pcap, keys) = tls(name);
        let secrets = secrets_of(&keys);
        assert!(!secrets.is_empty());
        let p = pcap.to_str().unwrap();
        let k = keys.to_str().unwrap();
        for args in [
            &[
                "-o",
                "json",
                "--records",
                "message,query,session,anomaly",
                "--show-secrets",
            ][..],
            &["-o", "text", "--show-secrets"],
            &["-o", "summary"],
        ] {
            let mut all = vec!["-r", p, "-p", "5432", "-p", "5433", "--tls-keylog", k];
            all.extend_from_slice(args);
            let run = pgscope(&all);
            assert_eq!(run.status, 0, "{}", run.stderr);
            let out = String::from_utf8_lossy(&run.stdout).to_lowercase();
            assert!(out.contains("select"), "{name} {args:?}: decrypted");
            for s in &secrets {
                assert!(
                    !out.contains(s.as_str()),
                    "{name} {args:?}: a secret is out"
                );
                assert!(!run.stderr.to_lowercase().contains(s.as_str()));
            }
        }
    }
}

fn temp_keys(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("k.log");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn missing_key_names_the_client_random() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ..) in PSQL {
        let (pcap, keys) = tls(name);
        let random = std::fs::read_to_string(&keys)
            .unwrap()
            .lines()
            .find(|l| !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_lowercase))
            .unwrap();
        // Another connection's keys only.
        let (_, other) = tls("tls13-aes256");
        let empty = temp_keys(dir.path(), &std::fs::read_to_string(other).unwrap());
        let recs = decrypted(&pcap, &empty, "message,query,session,anomaly");
        let a = anomalies(&recs);
        assert_eq!(a.len(), 1, "{name}: {a:?}");
        assert_eq!(a[0].0, "tls_no_key", "{name}");
        assert!(a[0].1.contains(&random), "{name}: {a:?}");
        // Nothing decoded past the encryption switch, nothing made up.
        assert_eq!(queries(&recs), Vec::<String>::new());
        let s = session(&recs);
        assert!(s["user.name"].is_null(), "{name}");
        assert_eq!(s["tls.decrypted"], false, "{name}");
    }
}

#[test]
fn wrong_key_does_not_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ..) in PSQL {
        let (pcap, keys) = tls(name);
        // Every secret's first byte changed.
        let text: String = std::fs::read_to_string(&keys)
            .unwrap()
            .lines()
            .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [label, random, secret] if !l.starts_with('#') => {
                    let first = if secret.starts_with("00") { "11" } else { "00" };
                    format!("{label} {random} {first}{}\n", &secret[2..])
                }
                _ => format!("{l}\n"),
            })
            .collect();
        let wrong = temp_keys(dir.path(), &text);
        let recs = decrypted(&pcap, &wrong, "message,query,session,anomaly");
        let a = anomalies(&recs);
        assert_eq!(a.len(), 1, "{name}: {a:?}");
        assert_eq!(a[0].0, "tls_auth_failed", "{name}: {a:?}");
        assert_eq!(queries(&recs), Vec::<String>::new());
        assert!(session(&recs)["user.name"].is_null(), "{name}");
    }
}

/// An owned frame of a capture.
struct Frame {
    ts: i64,
    data: Vec<u8>,
}

fn read_frames(p: &Path) -> Vec<Frame> {
    let mut v = Vec::new();
    let f = std::fs::File::open(p).unwrap();
    pgscope::capture::read_file("t", f, &AtomicBool::new(false), &mut |pkt| {
        assert_eq!(pkt.data.len() as u32, pkt.orig_len);
        v.push(Frame {
            ts: pkt.ts_ns,
            data: pkt.data.to_vec(),
        });
        pgscope::capture::Flow::Continue(())
    })
    .unwrap();
    v
}

fn write_frames(frames: &[Frame], p: &Path) {
    let mut w =
        pgscope::synth::PcapWriter::new(std::fs::File::create(p).unwrap(), 1, 262144).unwrap();
    for f in frames {
        w.record(f.ts, &f.data, f.data.len() as u32).unwrap();
    }
}

/// Where the TCP payload of an Ethernet/IPv4 frame starts, and its destination port.
fn payload_at(f: &[u8]) -> (usize, u16) {
    let ip = 14;
    let tcp = ip + (f[ip] & 0x0f) as usize * 4;
    let dport = u16::from_be_bytes([f[tcp + 2], f[tcp + 3]]);
    (tcp + (f[tcp + 12] >> 4) as usize * 4, dport)
}

/// The frames carrying client TLS application data records, in order.
fn client_records(frames: &[Frame]) -> Vec<usize> {
    (0..frames.len())
        .filter(|&i| {
            let (at, dport) = payload_at(&frames[i].data);
            dport == 5432 && frames[i].data.get(at..at + 3) == Some(&[0x17, 3, 3])
        })
        .collect()
}

#[test]
fn corrupted_record_stops_decryption_there() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, keys) = tls("tls13-pg15-sslrequest");
    let mut frames = read_frames(&pcap);
    let recs = client_records(&frames);
    // The 1st is the client's Finished, the 2nd its StartupMessage, then a query each.
    assert!(recs.len() >= 6, "{recs:?}");
    let victim = &mut frames[recs[4]].data;
    let n = victim.len();
    victim[n - 3] ^= 0x40;
    let bad = dir.path().join("bad.pcap");
    write_frames(&frames, &bad);
    let out = decrypted(&bad, &keys, "message,query,session,anomaly");
    let a = anomalies(&out);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].0, "tls_auth_failed");
    // The statements before the damage are whole; none after.
    let full = queries(&decrypted(&pcap, &keys, "query"));
    let got = queries(&out);
    assert!(!got.is_empty() && got.len() < full.len(), "{got:?}");
    assert_eq!(got[..], full[..got.len()]);
}

#[test]
fn truncated_record_is_an_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, keys) = tls("tls13-pg15-sslrequest");
    let mut frames = read_frames(&pcap);
    let recs = client_records(&frames);
    // The last query (before Terminate and close_notify): those before it are whole.
    let cut_at = recs[recs.len() - 3];
    frames.truncate(cut_at + 1);
    let f = &mut frames[cut_at].data;
    let (at, _) = payload_at(f);
    let keep = at + (f.len() - at) / 2;
    f.truncate(keep);
    // The IPv4 total length follows, so the frame is a short segment, not a cut one.
    let total = (keep - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    let bad = dir.path().join("cut.pcap");
    write_frames(&frames, &bad);
    let out = decrypted(&bad, &keys, "message,query,session,anomaly");
    let a = anomalies(&out);
    assert!(
        a.iter()
            .any(|(k, m)| k == "tls_truncated" && m.contains("ends inside a TLS record")),
        "{a:?}"
    );
    assert!(a.iter().all(|(k, _)| k.starts_with("tls_")), "{a:?}");
    let full = queries(&decrypted(&pcap, &keys, "query"));
    assert_eq!(queries(&out)[..], full[..full.len() - 1]);
}

/// Records wait for a key a live client has not logged yet: here the whole key log
/// comes one line at a time, in a file being appended to, read by the library.
#[test]
fn key_log_followed_as_it_grows() {
    use pgscope::tls::{KeyFiles, KeySource};
    let dir = tempfile::tempdir().unwrap();
    let (_, keys) = tls("tls13-pg15-sslrequest");
    let path = dir.path().join("live.log");
    std::fs::write(&path, "").unwrap();
    let mut files = KeyFiles::open(std::slice::from_ref(&path), true).unwrap();
    assert_eq!(files.wait_ns(), 2_000_000_000);
    let text = std::fs::read_to_string(&keys).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("SERVER_HANDSHAKE"))
        .unwrap();
    let random: [u8; 32] = (0..32)
        .map(|i| {
            u8::from_str_radix(&line.split(' ').nth(1).unwrap()[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    assert!(files.secrets(&random).is_none());
    // Half a line: not taken until its end is written.
    let (a, b) = line.split_at(40);
    std::fs::write(&path, a).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert!(files.secrets(&random).is_none());
    std::fs::write(&path, format!("{a}{b}\n")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let s = files.secrets(&random).expect("read once appended");
    assert!(s.server_handshake.is_some() && s.client_handshake.is_none());
}

/// Live: `pgscope -i lo --tls-keylog F` while libpq 18 appends the connection's
/// secrets to F as it connects; the statements come out decrypted.
#[test]
#[ignore = "needs root, a PostgreSQL server and libpq 18: run scripts/test.sh"]
fn live_capture_follows_the_key_log() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let port = std::env::var("PG15_PORT").expect("PG15_PORT: source scripts/pg-setup.sh's env");
    let lib = std::env::var("PG18_LIB").expect("PG18_LIB: libpq 18");
    let dir = tempfile::tempdir().unwrap();
    let keys = temp_keys(dir.path(), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgscope"))
        .args([
            "-i",
            "lo",
            "-p",
            &port,
            "-o",
            "json",
            "--records",
            "query,session,anomaly",
        ])
        .arg("--tls-keylog")
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let marker = format!("tls_live_{}", std::process::id());
    let conn = format!(
        "host=127.0.0.1 port={port} user=trust_user dbname=pgscope sslmode=require sslkeylogfile={}",
        keys.display()
    );
    let status = Command::new(std::env::var("PSQL").unwrap_or_else(|_| "psql".into()))
        .env("LD_LIBRARY_PATH", lib)
        .args(["-X", "-q", &conn, "-c", &format!("select '{marker}'")])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read_to_string(&keys)
            .unwrap()
            .contains("CLIENT_TRAFFIC_SECRET_0")
    );
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = common::read_pipe(child.stdout.take());
    let _ = child.wait();
    let recs = parse_lines(out.as_bytes(), &keys);
    let mine = of_kind(&recs, "pgwire.query")
        .into_iter()
        .find(|q| {
            q["db.query.text"]
                .as_str()
                .is_some_and(|t| t.contains(&marker))
        })
        .unwrap_or_else(|| panic!("marker query not decrypted: {out}"));
    let id = &mine["pgwire.conn_id"];
    let s = of_kind(&recs, "pgwire.session")
        .into_iter()
        .find(|s| &s["pgwire.conn_id"] == id)
        .expect("session record");
    assert_eq!(s["tls.decrypted"], true);
    assert_eq!(s["pgwire.encryption"], "tls");
}

/// The server-side key log (tools/keylog-preload): a throwaway PostgreSQL 15 with the
/// library preloaded logs the secrets of a psql 15 session (whose libpq cannot), and
/// pgscope decrypts the capture with them.
#[test]
#[ignore = "needs root, cc, tcpdump and PostgreSQL 15: run scripts/test.sh"]
fn server_side_key_log_library() {
    let out = std::process::Command::new(root().join("tools/keylog-preload/test.sh"))
        .arg(env!("CARGO_BIN_EXE_pgscope"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let recs = parse_lines(&out.stdout, Path::new("keylog-preload"));
    assert_eq!(anomalies(&recs), [], "{err}");
    assert_eq!(
        queries(&recs),
        ["\"SELECT 'through the server key log' AS how\" | \"SELECT 1\" | null | 1"]
    );
    let s = session(&recs);
    assert_eq!(s["tls.decrypted"], true);
    assert_eq!(s["pgwire.encryption.negotiation"][0], "SSLRequest:S");
}

/// The TUI and the summary see the decrypted statements too.
#[test]
fn tui_and_summary_show_decrypted_statements() {
    use pgscope::tui::app::App;
    use pgscope::tui::state::{State, TuiSink, lock};
    use pgscope::tui::ui::{Theme, draw};
    use ratatui::{Terminal, backend::TestBackend};
    use std::sync::{Arc, Mutex};

    let (pcap, keys) = tls("tls13-pg18-direct-scram32");
    let shared = Arc::new(Mutex::new(State::new(Default::default(), "t".into(), None)));
    let mut sink = TuiSink::new(shared.clone());
    let mut pipe = pgscope::pipeline::Pipeline::new(&mut sink, vec![5433], Default::default());
    pipe.decrypt_tls(pgscope::tls::KeyFiles::open(std::slice::from_ref(&keys), false).unwrap());
    let file = std::fs::File::open(&pcap).unwrap();
    pgscope::capture::read_file("t", file, &AtomicBool::new(false), &mut |p| {
        pipe.packet(&p).unwrap();
        pgscope::capture::Flow::Continue(())
    })
    .unwrap();
    pipe.finish().unwrap();
    let mut app = App::new(Default::default());
    let screen = |app: &mut App| -> String {
        app.refresh(&lock(&shared), std::time::Instant::now());
        let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap();
        t.draw(|f| draw(f, app, Theme { color: false })).unwrap();
        t.backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect()
    };
    let sessions = screen(&mut app);
    assert!(
        sessions.contains("scram_user") && sessions.contains("SCRAM-SHA-256-PLUS"),
        "{sessions}"
    );
    // The queries view.
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('3'),
        crossterm::event::KeyModifiers::NONE,
    ));
    let queries = screen(&mut app);
    assert!(queries.contains("generate_series"), "{queries}");

    // The summary's statements: those of the plaintext twin.
    let statements = |args: &[&str]| -> Vec<String> {
        summary_top_rows(&[&["-p", "5433"], args].concat())
            .iter()
            // calls … rows errors statement: the timing columns vary.
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}", f[0], f[7..].join(" "))
            })
            .collect()
    };
    let ours = statements(&[
        "-r",
        pcap.to_str().unwrap(),
        "--tls-keylog",
        keys.to_str().unwrap(),
    ]);
    let twin = statements(&["-r", pcap.with_extension("plain.pcap").to_str().unwrap()]);
    // Ordered by time, which differs between the two runs.
    let (mut ours, mut twin) = (ours, twin);
    ours.sort();
    twin.sort();
    assert_eq!(ours.len(), 5, "{ours:?}");
    assert_eq!(ours, twin);
}
