//! Statistics summary printed at the end of a run (or on Ctrl-C): who connected and
//! how, the top statements by total time with percentiles, errors by SQLSTATE, a
//! latency histogram and the capture's anomalies.

use super::fmt::push_sanitized;
use super::{AnomalyView, RunStats, Sink};
use crate::session::record::{AuthOutcome, Outcome, QueryRecord, SessionRecord};
use crate::session::sql::{FingerprintCache, normalize};
use crate::tcp::ConnMeta;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Durations kept per statement for exact percentiles; beyond, a reservoir sample.
/// The TUI keeps as many by default, so both show the same percentiles.
pub(crate) const MAX_SAMPLES: usize = 10_000;
/// Durations kept over all statements (8 bytes each): once reached, each statement
/// keeps a reservoir of the samples it has, or of [`MIN_SAMPLES`] if fewer, so memory
/// stays bounded however many distinct statements run many times each.
const SAMPLE_BUDGET: usize = 2 << 20;
const MIN_SAMPLES: usize = 100;
/// Bytes of a statement's text kept as its example (a statement can be megabytes).
const MAX_TEXT: usize = 4096;
/// Distinct fingerprints tracked; later ones are counted under "(other)".
const MAX_FINGERPRINTS: usize = 10_000;
/// Rows of the top statements by default (`--top`) and of the other tables.
pub(crate) const TOP: usize = 15;

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
        reservoir(&mut self.samples, self.seen, d, rng, max_samples)
    }
}

/// Keeps `d`, the `seen`-th value, in a uniform sample of at most `max` values
/// (fewer if the sample is already smaller: it never grows past `max`): reservoir
/// sampling keeps the percentiles fair and the memory fixed. True if the sample grew.
fn reservoir(samples: &mut Vec<i64>, seen: u64, d: i64, rng: &mut u64, max: usize) -> bool {
    if samples.len() < max {
        samples.push(d);
        return true;
    }
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let j = (*rng % seen) as usize;
    if j < samples.len() {
        samples[j] = d;
    }
    false
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
    // Its duration is not known (lost packets): it would skew the figures.
    if q.unsure {
        return false;
    }
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
pub(crate) struct Counter(pub(crate) BTreeMap<String, u64>);

impl Counter {
    fn add(&mut self, k: &str) {
        *self.0.entry(k.to_string()).or_default() += 1;
    }

    /// Entries by count, largest first, at most `n`.
    pub(crate) fn top(&self, n: usize) -> Vec<(&String, u64)> {
        let mut v: Vec<(&String, u64)> = self.0.iter().map(|(k, n)| (k, *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

/// How the closing report is laid out.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Rows of the top statements table.
    pub top: usize,
    /// Characters a line may take; `None`: statement texts are not cut.
    pub width: Option<usize>,
    /// A self-contained HTML page instead of text.
    pub html: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top: TOP,
            width: Some(160),
            html: false,
        }
    }
}

/// Statements, failures and a sample of durations per interval of capture time, for
/// the HTML report's charts. Intervals start at a millisecond and double whenever
/// there would be more than [`Timeline::MAX_POINTS`], so a long capture costs no more;
/// the report merges them further into at most [`Timeline::SHOWN`].
pub(crate) struct Timeline {
    pub(crate) step_ns: i64,
    pub(crate) points: BTreeMap<i64, Point>,
    rng: u64,
}

#[derive(Default)]
pub(crate) struct Point {
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) samples: Vec<i64>,
    seen: u64,
}

impl Timeline {
    const MAX_POINTS: usize = 2_000;
    const SAMPLES: usize = 512;
    pub(crate) const SHOWN: i64 = 120;

    fn new() -> Self {
        Timeline {
            step_ns: 1_000_000,
            points: BTreeMap::new(),
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    fn add(&mut self, end_ns: i64, d: i64, failed: bool) {
        let slot = end_ns.div_euclid(self.step_ns);
        if self.points.len() >= Self::MAX_POINTS && !self.points.contains_key(&slot) {
            self.coarsen();
            return self.add(end_ns, d, failed);
        }
        let p = self.points.entry(slot).or_default();
        p.queries += 1;
        p.errors += failed as u64;
        p.seen += 1;
        reservoir(&mut p.samples, p.seen, d, &mut self.rng, Self::SAMPLES);
    }

    /// Intervals twice as long: neighbours merged, their samples thinned to the cap.
    pub(crate) fn coarsen(&mut self) {
        self.step_ns *= 2;
        let old = std::mem::take(&mut self.points);
        for (slot, p) in old {
            let q = self.points.entry(slot.div_euclid(2)).or_default();
            q.queries += p.queries;
            q.errors += p.errors;
            q.seen += p.seen;
            q.samples.extend(p.samples);
            if q.samples.len() > Self::SAMPLES {
                // Every other one: both halves keep their share.
                let mut i = 0;
                q.samples.retain(|_| {
                    i += 1;
                    i % 2 == 0
                });
            }
        }
    }
}

/// The `-o summary` presenter: statistics written at the end of the run.
pub struct SummarySink<W: Write> {
    out: W,
    pub(crate) opts: Options,
    pub(crate) users: Counter,
    pub(crate) databases: Counter,
    pub(crate) apps: Counter,
    pub(crate) clients: Counter,
    pub(crate) auth: Counter,
    pub(crate) encryption: Counter,
    pub(crate) protocols: Counter,
    pub(crate) sessions: u64,
    pub(crate) midstream: u64,
    pub(crate) stmts: HashMap<String, StmtStats>,
    pub(crate) errors: BTreeMap<String, (u64, String)>,
    pub(crate) anomalies: Counter,
    /// Statement latencies in decade buckets: <10µs, <100µs, ..., ≥10s.
    pub(crate) histogram: [u64; 8],
    pub(crate) queries: u64,
    /// Statements whose result could not be paired for sure (after lost packets).
    pub(crate) unsure: u64,
    pub(crate) failed: u64,
    pub(crate) timeline: Option<Timeline>,
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
    #[cfg(test)]
    pub(crate) fn new(out: W) -> Self {
        Self::with_options(out, Options::default())
    }

    /// Writes the summary to `out`, shaped by `opts`.
    pub fn with_options(out: W, opts: Options) -> Self {
        SummarySink {
            out,
            opts,
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
            timeline: opts.html.then(Timeline::new),
            rng: 0x9e37_79b9_7f4a_7c15,
            fingerprints: FingerprintCache::default(),
            samples: 0,
            pooler: PoolerStats::default(),
        }
    }

    /// The top statements by total time, their samples ready for [`percentile`].
    pub(crate) fn top_statements(&mut self) -> Vec<(&String, &mut StmtStats)> {
        let mut stmts: Vec<(&String, &mut StmtStats)> = self.stmts.iter_mut().collect();
        stmts.sort_by(|a, b| b.1.total_ns.cmp(&a.1.total_ns).then(a.0.cmp(b.0)));
        stmts.truncate(self.opts.top);
        stmts
    }
}

pub(crate) fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// The `p` percentile (0..=1) of `samples` by the nearest-rank method: the smallest
/// sample that at least a fraction `p` of them do not exceed, always a duration
/// that was seen (PostgreSQL's `percentile_disc`). The summary, the HTML report and
/// the TUI all use this one; it reorders `samples` (a selection, not a full sort).
pub(crate) fn percentile(samples: &mut [i64], p: f64) -> i64 {
    if samples.is_empty() {
        return 0;
    }
    let rank = (p.clamp(0.0, 1.0) * samples.len() as f64).ceil() as usize;
    *samples
        .select_nth_unstable(rank.clamp(1, samples.len()) - 1)
        .1
}

/// Escaped, runs of white space folded into one space (a table row is one line), and
/// cut to `width` characters when given.
fn cell(s: &str, width: Option<usize>) -> String {
    let mut e = String::new();
    let folded = s.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
    push_sanitized(&mut e, folded.as_bytes(), false);
    match width {
        Some(w) if e.chars().count() > w => {
            let mut cut: String = e.chars().take(w.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
        _ => e,
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
            let _ = writeln!(
                o,
                "  {:<18} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                name,
                st.total_ns as f64 / 1e6 / st.calls.max(1) as f64,
                ms(percentile(&mut st.samples, 0.50)),
                ms(percentile(&mut st.samples, 0.95)),
                ms(percentile(&mut st.samples, 0.99)),
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
    for (k, n) in c.top(TOP) {
        let _ = writeln!(out, "  {n:>8}  {}", cell(k, Some(60)));
    }
}

/// Capture time span and rate, e.g. `2026-11-24T02:34:56.1Z to …Z (6.331 s), 12.3
/// statements/s`.
pub(crate) fn span_line(run: &RunStats, queries: u64) -> Option<String> {
    let (a, b) = run.span?;
    let (mut from, mut to) = (String::new(), String::new());
    super::fmt::rfc3339(a, &mut from);
    super::fmt::rfc3339(b, &mut to);
    let secs = (b - a) as f64 / 1e9;
    let rate = if secs > 0.0 {
        format!("{:.1} statements/s", queries as f64 / secs)
    } else {
        "statements/s: n/a (one instant)".into()
    };
    Some(format!("{from} to {to} ({secs:.3} s), {rate}"))
}

/// What TCP reassembly saw and lost.
pub(crate) fn capture_line(run: &RunStats, midstream: u64) -> String {
    format!(
        "Capture: {} TCP segments, {} gaps ({} bytes), {} out of order, {} retransmitted bytes, {} evicted, {} mid-stream joins, {} dropped by libpcap",
        run.tcp.segments,
        run.tcp.gaps,
        run.tcp.gap_bytes,
        run.tcp.out_of_order,
        run.tcp.retransmitted_bytes,
        run.tcp.evicted,
        midstream,
        run.dropped
    )
}

impl<W: Write> Sink for SummarySink<W> {
    fn anomaly(&mut self, _: Option<&ConnMeta>, _: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        self.anomalies.add(a.kind.as_str());
        Ok(())
    }

    fn query(&mut self, conn: &ConnMeta, _: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        if q.skipped {
            return Ok(());
        }
        if let Some(link) = &q.pooler {
            let p = &mut self.pooler;
            // Statements reach the summary linked: no ports needed.
            if !q.counted_once(conn, &[]) {
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
        if let Some(t) = &mut self.timeline {
            t.add(q.end_ns, d, failed);
        }
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
            s.auth_outcome.map_or("(unknown)", AuthOutcome::as_str)
        );
        self.auth.add(&auth);
        self.encryption.add(
            s.encryption
                .map_or("(unknown)", crate::pgwire::Encryption::as_str),
        );
        let proto = match (&s.protocol_requested, &s.protocol_negotiated) {
            (Some(r), Some(n)) if r != n => format!("{n} (asked {r})"),
            (_, Some(n)) => n.clone(),
            _ => "(unknown)".into(),
        };
        self.protocols.add(&proto);
        Ok(())
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        let o = if self.opts.html {
            super::html::render(self, run)
        } else {
            self.text(run)
        };
        self.out.write_all(o.as_bytes())?;
        self.out.flush()
    }
}

impl<W: Write> SummarySink<W> {
    fn text(&mut self, run: &RunStats) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "pgscope summary: {} packets, {} connections, {} messages, {} statements ({} failed)",
            run.packets, self.sessions, run.messages, self.queries, self.failed
        );
        if let Some(span) = span_line(run, self.queries) {
            let _ = writeln!(o, "  {span}");
        }
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

        let width = self.opts.width;
        let distinct = self.stmts.len();
        let stmts = self.top_statements();
        if !stmts.is_empty() {
            let _ = writeln!(
                o,
                "\nTop statements by total time ({} of {distinct}; ms, percentiles by nearest rank):\n  {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  statement",
                stmts.len(),
                "calls",
                "total",
                "mean",
                "p50",
                "p95",
                "p99",
                "max",
                "rows",
                "errors"
            );
        }
        for (_, st) in stmts {
            let total = st.total_ns as f64 / 1e6;
            let row = format!(
                "  {:>7} {:>10.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>6}  ",
                st.calls,
                total,
                total / st.calls.max(1) as f64,
                ms(percentile(&mut st.samples, 0.50)),
                ms(percentile(&mut st.samples, 0.95)),
                ms(percentile(&mut st.samples, 0.99)),
                ms(st.max_ns),
                st.rows,
                st.errors,
            );
            // The text takes what the line has left, at least 20 characters.
            let room = width.map(|w| w.saturating_sub(row.chars().count()).max(20));
            let _ = writeln!(o, "{row}{}", cell(&st.text, room));
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
                let room = width.map(|w| w.saturating_sub(19).max(20));
                let _ = writeln!(o, "  {n:>8}  {}  {}", cell(code, Some(5)), cell(msg, room));
            }
        }
        if self.queries > 0 {
            let _ = writeln!(o, "\nStatement latency:");
            let max = *self.histogram.iter().max().unwrap_or(&1);
            for (label, n) in LATENCY_LABELS.iter().zip(self.histogram) {
                let bar = (n * 50).div_ceil(max.max(1)) as usize;
                let _ = writeln!(o, "  {label:>8} {:>8} {}", n, "█".repeat(bar));
            }
        }
        self.pooler.write(&mut o);
        let _ = writeln!(o, "\n{}", capture_line(run, self.midstream));
        section(&mut o, "Anomalies", &self.anomalies);
        for w in &run.warnings {
            let _ = writeln!(o, "warning: {}", cell(w, Some(200)));
        }
        o
    }
}

/// The latency histogram's decade buckets.
pub(crate) const LATENCY_LABELS: [&str; 8] = [
    "<10µs", "<100µs", "<1ms", "<10ms", "<100ms", "<1s", "<10s", "≥10s",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<i64> = (1..=100).rev().collect();
        for (p, want) in [
            (0.0, 1),
            (0.01, 1),
            (0.5, 50),
            (0.95, 95),
            (0.99, 99),
            (1.0, 100),
        ] {
            assert_eq!(percentile(&mut v, p), want, "p{p}");
        }
        assert_eq!(percentile(&mut [10, 20], 0.5), 10);
        assert_eq!(percentile(&mut [10, 20], 0.51), 20);
        assert_eq!(percentile(&mut [], 0.5), 0);
        // Against the definition on a sorted copy, over random lengths and values.
        let mut rng = 7u64;
        for len in [1usize, 2, 19, 100, 1001] {
            let mut v: Vec<i64> = (0..len)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (rng >> 40) as i64
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_unstable();
            for p in [0.5, 0.9, 0.95, 0.99] {
                let want = *sorted
                    .iter()
                    .find(|&&x| sorted.iter().filter(|&&y| y <= x).count() as f64 >= p * len as f64)
                    .unwrap();
                assert_eq!(percentile(&mut v, p), want, "len {len} p{p}");
            }
        }
    }

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
            let mut q = QueryRecord::new(1, crate::session::record::Protocol::Simple, 0);
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
