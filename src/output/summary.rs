//! Statistics summary printed at the end of a run (or on Ctrl-C): who connected and
//! how, the top statements by total time with percentiles, errors by SQLSTATE, a
//! latency histogram and the capture's anomalies.

use super::fmt::push_sanitized;
use super::{AnomalyView, RunStats, Sink};
use crate::pooler::Leg;
use crate::session::record::{Outcome, QueryRecord, SessionRecord};
use crate::session::sql::{FingerprintCache, normalize};
use crate::tcp::ConnMeta;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Durations kept per statement for exact percentiles; beyond, a reservoir sample.
const MAX_SAMPLES: usize = 10_000;
/// Durations kept over all statements (8 bytes each): once reached, each statement
/// keeps a reservoir of the samples it has, or of [`MIN_SAMPLES`] if fewer, so memory
/// stays bounded however many distinct statements run many times each.
const SAMPLE_BUDGET: usize = 2 << 20;
const MIN_SAMPLES: usize = 100;
/// Bytes of a statement's text kept as its example (a statement can be megabytes).
const MAX_TEXT: usize = 4096;
/// Distinct fingerprints tracked; later ones are counted under "(other)".
const MAX_FINGERPRINTS: usize = 10_000;
const TOP: usize = 15;

/// Per-statement figures (also the TUI's top queries).
#[derive(Default, Clone)]
pub(crate) struct StmtStats {
    pub(crate) text: String,
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) rows: u64,
    pub(crate) total_ns: i128,
    pub(crate) max_ns: i64,
    /// Unsorted duration samples.
    pub(crate) samples: Vec<i64>,
    seen: u64,
}

impl StmtStats {
    /// Counts a run; true if its duration was added to the samples (they grew).
    fn add(&mut self, d: i64, rows: u64, failed: bool, rng: &mut u64, max_samples: usize) -> bool {
        self.calls += 1;
        self.rows += rows;
        self.errors += failed as u64;
        self.total_ns += d as i128;
        self.max_ns = self.max_ns.max(d);
        self.seen += 1;
        if self.samples.len() < max_samples {
            self.samples.push(d);
            true
        } else {
            // Reservoir sampling keeps the percentiles fair and the memory fixed.
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            let j = (*rng % self.seen) as usize;
            if j < self.samples.len() {
                self.samples[j] = d;
            }
            false
        }
    }
}

/// Counts a statement under its fingerprint, at most [`MAX_FINGERPRINTS`] of them,
/// keeping up to `max_samples` durations of each for percentiles; true if the
/// samples grew.
pub(crate) fn add_statement(
    stmts: &mut HashMap<String, StmtStats>,
    fingerprints: &mut FingerprintCache,
    q: &QueryRecord,
    rng: &mut u64,
    max_samples: usize,
) -> bool {
    let fp = q.text.as_deref().map(|t| fingerprints.get(t));
    let key = match fp {
        Some(f) if stmts.len() < MAX_FINGERPRINTS || stmts.contains_key(f) => f.to_string(),
        Some(_) => "(other)".to_string(),
        None => "(unknown)".to_string(),
    };
    let st = stmts.entry(key).or_default();
    if st.text.is_empty() {
        // Shown normalised, as pg_stat_statements does: literals vary between calls.
        st.text = match q.text.as_deref() {
            Some(t) => {
                let n = normalize(t.as_bytes());
                n[..n.floor_char_boundary(MAX_TEXT)].to_string()
            }
            None => "(SQL not seen)".into(),
        };
    }
    st.add(
        q.duration_ns(),
        q.rows_returned.max(q.rows_affected.unwrap_or(0)),
        q.outcome == Outcome::Failure,
        rng,
        max_samples,
    )
}

#[derive(Default)]
struct Counter(BTreeMap<String, u64>);

impl Counter {
    fn add(&mut self, k: &str) {
        *self.0.entry(k.to_string()).or_default() += 1;
    }
}

pub struct SummarySink<W: Write> {
    out: W,
    users: Counter,
    databases: Counter,
    apps: Counter,
    clients: Counter,
    auth: Counter,
    encryption: Counter,
    protocols: Counter,
    sessions: u64,
    midstream: u64,
    stmts: HashMap<String, StmtStats>,
    errors: BTreeMap<String, (u64, String)>,
    anomalies: Counter,
    /// Statement latencies in decade buckets: <10µs, <100µs, ..., ≥10s.
    histogram: [u64; 8],
    queries: u64,
    /// Statements whose result could not be paired for sure (after lost packets).
    unsure: u64,
    failed: u64,
    rng: u64,
    fingerprints: FingerprintCache,
    /// Duration samples kept over all statements.
    samples: usize,
    pooler: PoolerStats,
}

/// `--pooler-port`: statements are counted once, on the client leg; what the
/// links say about the pool is summed here.
#[derive(Default)]
struct PoolerStats {
    client: u64,
    linked: u64,
    by_match: Counter,
    /// Pool wait and server time of the linked client statements.
    wait: StmtStats,
    server: StmtStats,
    server_leg: u64,
    server_unlinked: u64,
}

impl<W: Write> SummarySink<W> {
    pub fn new(out: W) -> Self {
        SummarySink {
            out,
            users: Counter::default(),
            databases: Counter::default(),
            apps: Counter::default(),
            clients: Counter::default(),
            auth: Counter::default(),
            encryption: Counter::default(),
            protocols: Counter::default(),
            sessions: 0,
            midstream: 0,
            stmts: HashMap::new(),
            errors: BTreeMap::new(),
            anomalies: Counter::default(),
            histogram: [0; 8],
            queries: 0,
            unsure: 0,
            failed: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            fingerprints: FingerprintCache::default(),
            samples: 0,
            pooler: PoolerStats::default(),
        }
    }
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

pub(crate) fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Escaped and cut to `width` characters, for one table cell.
fn cell(s: &str, width: usize) -> String {
    let mut e = String::new();
    push_sanitized(&mut e, s.as_bytes(), false);
    if e.chars().count() > width {
        let mut cut: String = e.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        e
    }
}

impl PoolerStats {
    fn write(&mut self, o: &mut String) {
        if self.client + self.server_leg == 0 {
            return;
        }
        let _ = writeln!(
            o,
            "\nPooler: {} client statements (counted above), {} linked to the server statement they caused ({:.1}%); {} server-leg statements not counted above, {} of them unlinked",
            self.client,
            self.linked,
            100.0 * self.linked as f64 / self.client.max(1) as f64,
            self.server_leg,
            self.server_unlinked
        );
        let mut by: Vec<String> = self
            .by_match
            .0
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        by.sort();
        let _ = writeln!(o, "  client statements by match: {}", by.join(", "));
        if self.linked == 0 {
            return;
        }
        let _ = writeln!(
            o,
            "  {:<18} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "(ms, linked)", "mean", "p50", "p95", "p99", "max"
        );
        for (name, st) in [
            ("pool wait", &mut self.wait),
            ("server time", &mut self.server),
        ] {
            st.samples.sort_unstable();
            let _ = writeln!(
                o,
                "  {:<18} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                name,
                st.total_ns as f64 / 1e6 / st.calls.max(1) as f64,
                ms(percentile(&st.samples, 0.50)),
                ms(percentile(&st.samples, 0.95)),
                ms(percentile(&st.samples, 0.99)),
                ms(st.max_ns),
            );
        }
    }
}

fn section(out: &mut String, title: &str, c: &Counter) {
    if c.0.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    let mut v: Vec<(&String, &u64)> = c.0.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, n) in v.into_iter().take(TOP) {
        let _ = writeln!(out, "  {n:>8}  {}", cell(k, 60));
    }
}

impl<W: Write> Sink for SummarySink<W> {
    fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        self.anomalies.add(a.kind);
        Ok(())
    }

    fn query(&mut self, _: &ConnMeta, _: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        if q.skipped {
            return Ok(());
        }
        if let Some(link) = &q.pooler {
            let p = &mut self.pooler;
            if link.leg == Leg::Server {
                // Counted on its client leg.
                p.server_leg += 1;
                p.server_unlinked += !link.matched.linked() as u64;
                return Ok(());
            }
            p.client += 1;
            p.by_match.add(link.matched.as_str());
            if let (true, Some(w), Some(d)) = (link.matched.linked(), link.wait_ns, link.server_ns)
            {
                p.linked += 1;
                p.wait.add(w, 0, false, &mut self.rng, MAX_SAMPLES);
                p.server.add(d, 0, false, &mut self.rng, MAX_SAMPLES);
            }
        }
        self.queries += 1;
        if q.unsure {
            // Its result and duration are not known: counted, kept out of the figures.
            self.unsure += 1;
            return Ok(());
        }
        let failed = q.outcome == Outcome::Failure;
        self.failed += failed as u64;
        let d = q.duration_ns();
        let bucket = (d.max(1) as f64 / 1e3).log10().floor().clamp(0.0, 7.0) as usize;
        self.histogram[bucket] += 1;
        if let Some(e) = &q.error {
            let slot = self
                .errors
                .entry(e.code.clone())
                .or_insert_with(|| (0, e.message.clone()));
            slot.0 += 1;
        }
        let max_samples = match self.samples < SAMPLE_BUDGET {
            true => MAX_SAMPLES,
            false => MIN_SAMPLES,
        };
        self.samples += add_statement(
            &mut self.stmts,
            &mut self.fingerprints,
            q,
            &mut self.rng,
            max_samples,
        ) as usize;
        Ok(())
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        self.sessions += 1;
        self.midstream += s.midstream as u64;
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unknown)".into());
        if s.cancel_request.is_some() {
            self.auth.add("(cancel request)");
            return Ok(());
        }
        self.users.add(&or_unknown(&s.user));
        self.databases.add(&or_unknown(&s.database));
        self.apps.add(&or_unknown(&s.application));
        self.clients.add(&conn.client.0.to_string());
        let auth = format!(
            "{} {}",
            s.auth_method.as_deref().unwrap_or("(unknown)"),
            s.auth_outcome.unwrap_or("(unknown)")
        );
        self.auth.add(&auth);
        self.encryption.add(s.encryption.unwrap_or("(unknown)"));
        let proto = match (&s.protocol_requested, &s.protocol_negotiated) {
            (Some(r), Some(n)) if r != n => format!("{n} (asked {r})"),
            (_, Some(n)) => n.clone(),
            _ => "(unknown)".into(),
        };
        self.protocols.add(&proto);
        Ok(())
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "pgscope summary: {} packets, {} connections, {} messages, {} statements ({} failed)",
            run.packets, self.sessions, run.messages, self.queries, self.failed
        );
        if self.unsure > 0 {
            let _ = writeln!(
                o,
                "  {} statements unsure after lost or out-of-step packets: left out of the figures",
                self.unsure
            );
        }
        o.push('\n');
        section(&mut o, "Sessions by user", &self.users);
        section(&mut o, "Sessions by database", &self.databases);
        section(&mut o, "Sessions by application", &self.apps);
        section(&mut o, "Sessions by client", &self.clients);
        section(&mut o, "Authentication", &self.auth);
        section(&mut o, "Encryption", &self.encryption);
        section(&mut o, "Protocol versions", &self.protocols);

        let mut stmts: Vec<(&String, &mut StmtStats)> = self.stmts.iter_mut().collect();
        stmts.sort_by(|a, b| b.1.total_ns.cmp(&a.1.total_ns).then(a.0.cmp(b.0)));
        if !stmts.is_empty() {
            let _ = writeln!(
                o,
                "\nTop statements by total time (ms):\n  {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  statement",
                "calls", "total", "mean", "p50", "p95", "p99", "max", "rows", "errors"
            );
        }
        for (_, st) in stmts.into_iter().take(TOP) {
            st.samples.sort_unstable();
            let total = st.total_ns as f64 / 1e6;
            let _ = writeln!(
                o,
                "  {:>7} {:>10.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>6}  {}",
                st.calls,
                total,
                total / st.calls.max(1) as f64,
                ms(percentile(&st.samples, 0.50)),
                ms(percentile(&st.samples, 0.95)),
                ms(percentile(&st.samples, 0.99)),
                ms(st.max_ns),
                st.rows,
                st.errors,
                cell(&st.text, 70)
            );
        }
        if self.samples >= SAMPLE_BUDGET {
            // The bound is visible: percentiles come from smaller samples from here on.
            let _ = writeln!(
                o,
                "  (durations kept for percentiles reached {SAMPLE_BUDGET}: later statements keep {MIN_SAMPLES} each)"
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(o, "\nErrors by SQLSTATE:");
            for (code, (n, msg)) in &self.errors {
                let _ = writeln!(o, "  {n:>8}  {}  {}", cell(code, 5), cell(msg, 70));
            }
        }
        if self.queries > 0 {
            let _ = writeln!(o, "\nStatement latency:");
            let labels = [
                "   <10µs",
                "  <100µs",
                "    <1ms",
                "   <10ms",
                "  <100ms",
                "     <1s",
                "    <10s",
                "    ≥10s",
            ];
            let max = *self.histogram.iter().max().unwrap_or(&1);
            for (label, n) in labels.iter().zip(self.histogram) {
                let bar = (n * 50).div_ceil(max.max(1)) as usize;
                let _ = writeln!(o, "  {label} {:>8} {}", n, "█".repeat(bar));
            }
        }
        self.pooler.write(&mut o);
        let _ = writeln!(
            o,
            "\nCapture: {} TCP segments, {} gaps ({} bytes), {} out of order, {} retransmitted bytes, {} evicted, {} mid-stream joins, {} dropped by libpcap",
            run.tcp.segments,
            run.tcp.gaps,
            run.tcp.gap_bytes,
            run.tcp.out_of_order,
            run.tcp.retransmitted_bytes,
            run.tcp.evicted,
            self.midstream,
            run.dropped
        );
        section(&mut o, "Anomalies", &self.anomalies);
        for w in &run.warnings {
            let _ = writeln!(o, "warning: {}", cell(w, 200));
        }
        self.out.write_all(o.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stop_growing_at_the_budget() {
        let mut sink = SummarySink::new(io::sink());
        let conn = ConnMeta::for_test(1);
        let session = SessionRecord::default();
        // More distinct statements, each run more often, than the budget holds.
        let per = 5 * MIN_SAMPLES;
        let n = MAX_FINGERPRINTS;
        assert!(
            n * per > 2 * SAMPLE_BUDGET,
            "the test must reach the budget"
        );
        for i in 0..n {
            let mut q = QueryRecord::new(1, "simple", 0);
            q.text = Some(format!("select c{i} from t").as_str().into());
            for _ in 0..per {
                sink.query(&conn, &session, &q).unwrap();
            }
        }
        let kept: usize = sink.stmts.values().map(|s| s.samples.len()).sum();
        assert_eq!(kept, sink.samples);
        assert!(kept >= SAMPLE_BUDGET, "{kept}");
        assert!(kept <= SAMPLE_BUDGET + n * MIN_SAMPLES, "{kept}");
        assert_eq!(sink.stmts.len(), n);
        assert!(sink.stmts.values().all(|s| s.calls == per as u64));
        let late = &sink.stmts[&crate::session::sql::fingerprint(b"select c9999 from t")];
        assert_eq!(late.samples.len(), MIN_SAMPLES);
    }
}
