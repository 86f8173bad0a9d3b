//! `--metrics` for real: a Prometheus server (Debian's `prometheus` package) scrapes
//! pgscope while it captures psql traffic of known shape on loopback, and its HTTP
//! API's answers (histogram_quantile over rate, increase, errors by SQLSTATE,
//! sessions by application) are checked against that workload; `promtool check
//! metrics` lints the exposition. An offline run with `--metrics-linger` must expose
//! the same statement count as the file's JSON records.
//!
//! The live test needs root, a PostgreSQL server and prometheus: `scripts/test.sh`
//! installs and starts them and runs it with `--include-ignored`. Other tests may use
//! the server meanwhile, so everything checked is made unique to this run: statement
//! texts (an alias with the pid), application names and custom SQLSTATEs.

mod common;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, passed or not.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET over a plain socket: (status line and headers, body); `None` if nothing
/// listens yet.
fn get(port: u16, path: &str, accept: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// Polls `f` every 200 ms until it gives a value, failing after `secs` with `what`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's result vector (empty when nothing matches yet).
fn query(prom: u16, q: &str) -> Vec<Value> {
    let (head, body) = get(
        prom,
        &format!("/api/v1/query?query={}", urlencode(q)),
        "*/*",
    )
    .unwrap_or_else(|| panic!("prometheus not answering {q}"));
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {head}\n{body}"));
    assert_eq!(v["status"], "success", "{q}: {body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The single value of an instant query, if it has one.
fn scalar(prom: u16, q: &str) -> Option<f64> {
    let r = query(prom, q);
    let v = r.first()?["value"][1].as_str()?.parse().ok()?;
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    Some(v)
}

/// The value of `name{labels}` in a Prometheus text exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `cmd` with `input` on its standard input; its output.
fn with_input(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("spawn");
    // Dropped after writing: the child sees the end of its input.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// psql with this application name, running `sql` (one statement a line, each its
/// own Query; errors do not stop it).
fn psql(port: &str, app: &str, sql: &str) {
    with_input(
        common::psql(port).args(["-f", "-"]).env("PGAPPNAME", app),
        sql,
    );
}

fn promtool_check(exposition: &str) -> (bool, String) {
    let out = with_input(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        exposition,
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[ignore = "needs root, a PostgreSQL server and prometheus: run scripts/test.sh"]
fn prometheus_scrapes_a_live_capture_of_known_traffic() {
    let port = std::env::var("PG15_PORT").expect("PG15_PORT: source scripts/pg-setup.sh's env");
    let pid = std::process::id();
    let metrics_port = free_port();
    let pgscope = Reaped(
        Command::new(env!("CARGO_BIN_EXE_pgscope"))
            .args(["-i", "lo", "-p", &port])
            .args(["-o", "json", "--records", "session"])
            .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
            // Other tests' statements must not take the series of this one's.
            .args(["--metrics-top", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgscope"),
    );
    wait_for(10, "pgscope's /metrics", || {
        get(metrics_port, "/metrics", "*/*")
    });

    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: pgscope\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Reaped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (Debian package prometheus)"),
    );
    wait_for(60, "prometheus scraping pgscope", || {
        get(prom_port, "/-/ready", "*/*")?;
        (scalar(prom_port, "up{job=\"pgscope\"}")? == 1.0).then_some(())
    });

    // Unique to this run: texts (the alias survives normalisation), SQLSTATEs, apps.
    let fast = format!("SELECT pg_sleep(0.05) AS fast_{pid}");
    let slow = format!("SELECT pg_sleep(0.3) AS slow_{pid}");
    let code_a = format!("Q{:04}", pid % 10_000);
    let code_b = format!("R{:04}", pid % 10_000);
    let raise = |code: &str| {
        format!("DO $$ BEGIN RAISE EXCEPTION 'metrics test' USING ERRCODE = '{code}'; END $$")
    };
    let app = format!("metrics-test-{pid}");
    let batch = |n_fast: usize, n_slow: usize, n_a: usize, n_b: usize| {
        let mut sql = String::new();
        for (stmt, n) in [
            (&fast, n_fast),
            (&slow, n_slow),
            (&raise(&code_a), n_a),
            (&raise(&code_b), n_b),
        ] {
            for _ in 0..n {
                sql.push_str(stmt);
                sql.push_str(";\n");
            }
        }
        sql
    };
    // One of each first, so that every series exists in Prometheus before the
    // measured statements: rate() counts no increase into a series' first sample.
    psql(&port, &app, &batch(1, 1, 1, 1));
    let errors = |code: &str| {
        scalar(
            prom_port,
            &format!("pgscope_statement_errors_total{{sqlstate=\"{code}\"}}"),
        )
    };
    wait_for(30, "the first statements scraped", || {
        (errors(&code_b)? == 1.0).then_some(())
    });
    let (n_fast, n_slow, n_a, n_b) = (20, 4, 7, 3);
    psql(&port, &app, &batch(n_fast, n_slow, n_a, n_b));
    // A hostile application name: quotes, a backslash and 300 bytes.
    let hostile = format!("x\"y\\z{}", "w".repeat(300));
    psql(&port, &hostile, "SELECT 1;\n");
    wait_for(30, "the measured statements scraped", || {
        (errors(&code_b)? == (1 + n_b) as f64).then_some(())
    });

    // Errors by SQLSTATE: exact, and as increase() over the run (extrapolated by
    // Prometheus to the window's edges, hence the tolerance).
    assert_eq!(errors(&code_a), Some((1 + n_a) as f64));
    let inc = scalar(
        prom_port,
        &format!("increase(pgscope_statement_errors_total{{sqlstate=\"{code_a}\"}}[1m])"),
    )
    .expect("increase of errors");
    assert!(
        (n_a as f64 - 0.5..=n_a as f64 * 1.6).contains(&inc),
        "increase {inc}, {n_a} errors made"
    );

    // The fingerprints, found by their normalised text.
    let fingerprint = |text: &str| {
        let r = query(
            prom_port,
            &format!("pgscope_statement_info{{query=\"{}\"}}", text),
        );
        assert_eq!(r.len(), 1, "{text}: {r:?}");
        r[0]["metric"]["fingerprint"].as_str().unwrap().to_string()
    };
    let fp_fast = fingerprint(&format!("SELECT pg_sleep($1) AS fast_{pid}"));
    let fp_slow = fingerprint(&format!("SELECT pg_sleep($1) AS slow_{pid}"));
    let count = |fp: &str| {
        scalar(
            prom_port,
            &format!("pgscope_statement_duration_seconds_count{{fingerprint=\"{fp}\"}}"),
        )
    };
    assert_eq!(count(&fp_fast), Some((1 + n_fast) as f64));
    assert_eq!(count(&fp_slow), Some((1 + n_slow) as f64));
    // Quantiles over rate(): pg_sleep(0.05) lies in the (0.05, 0.1] bucket and
    // pg_sleep(0.3) in (0.25, 0.5], which is what histogram_quantile interpolates in.
    let quantile = |q: f64, fp: &str| {
        scalar(
            prom_port,
            &format!(
                "histogram_quantile({q}, sum by (le) (rate(pgscope_statement_duration_seconds_bucket{{fingerprint=\"{fp}\"}}[1m])))"
            ),
        )
        .expect("a quantile")
    };
    for q in [0.5, 0.9, 0.99] {
        let f = quantile(q, &fp_fast);
        assert!(f > 0.05 && f <= 0.1, "p{q} of pg_sleep(0.05): {f}");
        let s = quantile(q, &fp_slow);
        assert!(s > 0.25 && s <= 0.5, "p{q} of pg_sleep(0.3): {s}");
    }
    // The mean from the histogram's sum and count.
    let mean = scalar(
        prom_port,
        &format!(
            "pgscope_statement_duration_seconds_sum{{fingerprint=\"{fp_fast}\"}} / pgscope_statement_duration_seconds_count{{fingerprint=\"{fp_fast}\"}}"
        ),
    )
    .unwrap();
    assert!(
        (0.05..0.08).contains(&mean),
        "mean of pg_sleep(0.05): {mean}"
    );

    // Sessions by application: the two psql runs, trust, unencrypted, protocol 3.0.
    let sessions = query(
        prom_port,
        &format!("pgscope_sessions_total{{application=\"{app}\"}}"),
    );
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(s["value"][1], "2", "{s}");
    assert_eq!(s["metric"]["user"], "trust_user");
    assert_eq!(s["metric"]["database"], "pgscope");
    assert_eq!(s["metric"]["auth_method"], "trust");
    assert_eq!(s["metric"]["encryption"], "none");
    assert_eq!(s["metric"]["protocol"], "3.0");
    // The hostile name arrives cut to 64 bytes, quotes and backslash intact.
    let cut: String = hostile.chars().take(64).collect();
    let hostile_sessions = query(
        prom_port,
        "pgscope_sessions_total{application=~\"x.y.z.*\"}",
    );
    assert_eq!(hostile_sessions.len(), 1, "{hostile_sessions:?}");
    assert_eq!(hostile_sessions[0]["metric"]["application"], cut.as_str());

    let packets = scalar(prom_port, "rate(pgscope_capture_packets_total[1m])").unwrap();
    assert!(packets > 0.0, "packet rate {packets}");

    // The exposition as promtool sees it (Prometheus text format), and OpenMetrics.
    let (head, text) = get(metrics_port, "/metrics", "text/plain").unwrap();
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let (ok, report) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {report}\n{text}");
    assert!(
        sample(
            &text,
            &format!("pgscope_statement_errors_total{{sqlstate=\"{code_a}\"}}")
        ) == Some((1 + n_a) as f64)
    );
    let (head, open) = get(
        metrics_port,
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    )
    .unwrap();
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(open.ends_with("# EOF\n"));
    drop(pgscope);
}

/// A lint failure is caught: the check above could not pass on anything.
#[test]
#[ignore = "needs prometheus's promtool: run scripts/test.sh"]
fn promtool_rejects_a_bad_exposition() {
    let (ok, _) = promtool_check("# TYPE requests counter\nrequests 1\n");
    assert!(!ok, "a counter without _total passed promtool");
}

/// Offline with `--metrics-linger`: once the file is read (pgscope_input_finished
/// 1), the statements counted are those of the file's JSON records, and the
/// endpoint stays up until SIGINT, which ends the run with status 0.
#[test]
fn offline_metrics_linger_with_the_files_figures() {
    let cap = common::capture("external/zeek/greenhouse-app.pcap");
    let recs = common::records(&cap, "query", &[]);
    let statements = common::of_kind(&recs, "pgwire.query")
        .iter()
        .filter(|q| q["pgwire.skipped"] != true)
        .count();
    assert!(statements > 0);
    let port = free_port();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_pgscope"))
            .args([
                "-r",
                cap.to_str().unwrap(),
                "-o",
                "summary",
                "-p",
                "5432",
                "-p",
                "5433",
            ])
            .args([
                "--metrics",
                &format!("127.0.0.1:{port}"),
                "--metrics-linger",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = wait_for(20, "the file read", || {
        let (_, body) = get(port, "/metrics", "*/*")?;
        (sample(&body, "pgscope_input_finished") == Some(1.0)).then_some(body)
    });
    let counted: f64 = body
        .lines()
        .filter(|l| l.starts_with("pgscope_statements_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, statements as f64, "{body}");
    assert!(sample(&body, "pgscope_capture_packets_total").unwrap() > 0.0);
    // Still serving after the end of the file.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "exited despite --metrics-linger"
    );
    assert!(get(port, "/metrics", "*/*").is_some());
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGINT) };
    let status = wait_for(10, "exit after SIGINT", || child.0.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
}

/// Stuck scrapers (connected, sending nothing; or asking and never reading) hold
/// up neither the capture nor, once they time out, later scrapes. The capture comes
/// on standard input only after they are connected, so it is read while they hang.
#[test]
fn stuck_scrapers_stall_neither_the_capture_nor_later_scrapes() {
    use std::io::BufRead;
    let cap = std::fs::read(common::capture("trust-pgbench-extended.pcap")).unwrap();
    let port = free_port();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_pgscope"))
            .args(["-r", "-", "-o", "json", "--metrics-linger"])
            .args(["--metrics", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for(10, "the endpoint", || get(port, "/", "*/*"));
    let mut stuck: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut asking = TcpStream::connect(("127.0.0.1", port)).unwrap();
    asking.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    stuck.push(asking);
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(&cap).unwrap();
    drop(stdin);
    let said = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the capture was not read");
    assert!(said.contains("serving the final metrics"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The stuck clients still hold every slot; they are let go after the timeout.
    let body = wait_for(15, "a scrape after the stuck ones", || {
        let (_, body) = get(port, "/metrics", "*/*")?;
        (sample(&body, "pgscope_input_finished") == Some(1.0)).then_some(body)
    });
    let ok = sample(&body, "pgscope_statements_total{outcome=\"success\"}").unwrap();
    assert!(ok > 1000.0, "{ok} statements");
    drop(stuck);
}
