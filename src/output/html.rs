//! The summary as one self-contained HTML page (`-o html`), as pgbadger users expect:
//! statements per second, latency percentiles and errors over the capture's time,
//! the top statements, sessions and errors. Charts are inline SVG drawn here; the
//! page loads nothing (no scripts, fonts or styles from elsewhere). Every text from
//! the wire is escaped for the terminal's rules first (controls, bidi overrides) and
//! then for HTML.

use super::RunStats;
use super::fmt::{push_sanitized, rfc3339, time_of_day};
use super::summary::{
    Counter, LATENCY_LABELS, SummarySink, TOP, Timeline, capture_line, ms, percentile, span_line,
};
use std::fmt::Write as _;
use std::io::Write;

const W: f64 = 960.0;
const H: f64 = 220.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 28.0;
const TOP_PAD: f64 = 12.0;

/// Wire text made safe for an HTML element or attribute.
fn esc(s: &str) -> String {
    let mut clean = String::new();
    push_sanitized(&mut clean, s.as_bytes(), false);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn clock(ns: i64) -> String {
    let mut s = String::new();
    time_of_day(ns, &mut s);
    s.truncate(12); // milliseconds are enough on an axis
    s
}

/// Chart frame: the SVG element, its axes, and the y axis' top value.
fn frame(id: &str, title: &str, y_max: f64, y_label: &str, t0: i64, t1: i64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<h2>{title}</h2><svg class="chart" id="{id}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{title}">"#
    );
    let (x0, y0, y1) = (LEFT, H - BOTTOM, TOP_PAD);
    let _ = write!(
        s,
        r##"<line class="axis" x1="{x0}" y1="{y0}" x2="{W}" y2="{y0}"/><line class="axis" x1="{x0}" y1="{y1}" x2="{x0}" y2="{y0}"/><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0</text><text x="{x0}" y="{}">{}</text><text x="{W}" y="{}" text-anchor="end">{}</text>"##,
        x0 - 4.0,
        y1 + 10.0,
        esc(&format!("{} {y_label}", fmt_num(y_max))),
        x0 - 4.0,
        y0,
        H - 8.0,
        clock(t0),
        H - 8.0,
        clock(t1),
    );
    s
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Maps capture time and a value onto the chart's area.
struct Scale {
    t0: i64,
    span: f64,
    y_max: f64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.t0) as f64 / self.span * (W - LEFT - 4.0)
    }
    fn y(&self, v: f64) -> f64 {
        let h = H - BOTTOM - TOP_PAD;
        H - BOTTOM - (v / self.y_max).min(1.0) * h
    }
}

/// The time charts: statements per second, latency percentiles, errors.
fn time_charts(o: &mut String, t: &mut Timeline) {
    let bounds = |t: &Timeline| {
        Some((
            *t.points.first_key_value()?.0,
            *t.points.last_key_value()?.0,
        ))
    };
    let Some((mut first, mut last)) = bounds(t) else {
        return;
    };
    while last - first + 1 > Timeline::SHOWN {
        t.coarsen();
        (first, last) = bounds(t).unwrap_or((first, last));
    }
    let step = t.step_ns;
    let secs = step as f64 / 1e9;
    let (t0, t1) = (first * step, (last + 1) * step);
    let span = ((last - first + 1) * step) as f64;
    // Statements per second: every interval, empty ones at 0.
    let rates: Vec<(i64, f64)> = (first..=last)
        .map(|k| (k, t.points.get(&k).map_or(0, |p| p.queries) as f64 / secs))
        .collect();
    let y_max = rates.iter().map(|r| r.1).fold(0.0, f64::max).max(1.0);
    let sc = Scale { t0, span, y_max };
    o.push_str(&frame("rate", "Statements per second", y_max, "/s", t0, t1));
    let pts: Vec<String> = rates
        .iter()
        .map(|&(k, v)| format!("{:.1},{:.1}", sc.x(k * step + step / 2), sc.y(v)))
        .collect();
    let _ = write!(
        o,
        r#"<polyline class="series" data-points="{}" points="{}"/>{}</svg>"#,
        pts.len(),
        pts.join(" "),
        markers(&pts, "")
    );
    let _ = write!(
        o,
        "<p class=\"note\">{} intervals of {} ms.</p>",
        rates.len(),
        fmt_num(secs * 1e3)
    );

    // Latency percentiles of the statements that ended in each interval.
    let mut lat: Vec<(i64, [f64; 3])> = Vec::new();
    for (&k, p) in t.points.iter_mut() {
        if p.samples.is_empty() {
            continue;
        }
        let v = [0.5, 0.95, 0.99].map(|q| ms(percentile(&mut p.samples, q)));
        lat.push((k, v));
    }
    let y_max = lat.iter().map(|l| l.1[2]).fold(0.0, f64::max).max(0.001);
    let sc = Scale { t0, span, y_max };
    o.push_str(&frame(
        "latency",
        "Latency percentiles (p50, p95, p99)",
        y_max,
        "ms",
        t0,
        t1,
    ));
    for (i, name) in ["p50", "p95", "p99"].iter().enumerate() {
        let pts: Vec<String> = lat
            .iter()
            .map(|(k, v)| format!("{:.1},{:.1}", sc.x(k * step + step / 2), sc.y(v[i])))
            .collect();
        let _ = write!(
            o,
            r#"<polyline class="series {name}" data-points="{}" points="{}"><title>{name}</title></polyline>{}"#,
            pts.len(),
            pts.join(" "),
            markers(&pts, name)
        );
    }
    o.push_str(r#"</svg><p class="note"><span class="p50">━ p50</span> <span class="p95">━ p95</span> <span class="p99">━ p99</span> (nearest rank, per interval)</p>"#);

    // Errors: a bar for each interval with failed statements.
    let errs: Vec<(i64, u64)> = t
        .points
        .iter()
        .filter(|(_, p)| p.errors > 0)
        .map(|(&k, p)| (k, p.errors))
        .collect();
    let y_max = errs.iter().map(|e| e.1).max().unwrap_or(1) as f64;
    let sc = Scale { t0, span, y_max };
    o.push_str(&frame("errors", "Errors", y_max, "failed", t0, t1));
    let bw = ((W - LEFT) / (last - first + 1) as f64).clamp(1.0, 40.0);
    for (k, n) in &errs {
        let y = sc.y(*n as f64);
        let _ = write!(
            o,
            r#"<rect class="bar err" x="{:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}"><title>{n} at {}</title></rect>"#,
            sc.x(k * step),
            H - BOTTOM - y,
            clock(k * step)
        );
    }
    o.push_str("</svg>");
    if errs.is_empty() {
        o.push_str("<p class=\"note\">No statement failed.</p>");
    }
}

/// A dot on each point: a lone point draws no line.
fn markers(pts: &[String], class: &str) -> String {
    pts.iter()
        .filter_map(|p| p.split_once(','))
        .map(|(x, y)| format!(r#"<circle class="dot {class}" cx="{x}" cy="{y}" r="2"/>"#))
        .collect()
}

/// Horizontal bars, one per label.
fn hbars(o: &mut String, id: &str, title: &str, items: &[(String, f64, String)]) {
    if items.is_empty() {
        return;
    }
    let row = 22.0;
    let h = items.len() as f64 * row + 8.0;
    let max = items
        .iter()
        .map(|i| i.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let _ = write!(
        o,
        r#"<h2>{title}</h2><svg class="chart" id="{id}" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img" aria-label="{title}">"#
    );
    let label_w = 300.0;
    for (i, (label, v, shown)) in items.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (v / max * (W - label_w - 120.0)).max(1.0);
        let short: String = label.chars().take(42).collect();
        let _ = write!(
            o,
            r#"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text><rect class="bar" x="{label_w}" y="{y:.1}" width="{w:.1}" height="{:.1}"><title>{}</title></rect><text x="{:.1}" y="{:.1}">{}</text>"#,
            label_w - 6.0,
            y + 14.0,
            esc(&short),
            row - 6.0,
            esc(label),
            label_w + w + 6.0,
            y + 14.0,
            esc(shown)
        );
    }
    o.push_str("</svg>");
}

fn counter_table(o: &mut String, title: &str, c: &Counter) {
    if c.0.is_empty() {
        return;
    }
    let _ = write!(o, "<div class=\"box\"><h3>{title}</h3><table>");
    for (k, n) in c.top(TOP) {
        let _ = write!(o, "<tr><td class=\"n\">{n}</td><td>{}</td></tr>", esc(k));
    }
    o.push_str("</table></div>");
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin:28px 0 6px}h3{font-size:14px;margin:4px 0}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.sql{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;max-width:60em}
.fp{font-family:ui-monospace,monospace;color:#666}
svg.chart{display:block;background:#fafafa;border:1px solid #e4e4e4}
svg text{font-size:11px;fill:#444}.axis{stroke:#999}
.series{fill:none;stroke:#2a6fdb;stroke-width:1.5}.p95{stroke:#e08a00;color:#e08a00}.p99{stroke:#d03030;color:#d03030}.p50{color:#2a6fdb}
.dot{fill:#2a6fdb}.dot.p95{fill:#e08a00}.dot.p99{fill:#d03030}.bar{fill:#2a6fdb}.bar.err{fill:#d03030}.note{color:#666;font-size:12px;margin:2px 0}
.boxes{display:flex;flex-wrap:wrap;gap:16px}.box{border:1px solid #e4e4e4;padding:6px 10px}";

/// Reads back what the browser drew: each chart's drawn size and its points and bars,
/// so a test (or a curious user) can tell the charts did render.
const CHECK: &str = "document.addEventListener('DOMContentLoaded',function(){var n=0;document.querySelectorAll('svg.chart').forEach(function(s){var b=s.getBBox();var p=0;s.querySelectorAll('polyline').forEach(function(l){p+=l.points.numberOfItems});s.dataset.drawn=Math.round(b.width)+'x'+Math.round(b.height);s.dataset.drawnPoints=p;s.dataset.drawnBars=s.querySelectorAll('rect').length;if(b.width>0&&b.height>0)n++});document.body.dataset.rendered=n})";

pub(crate) fn render<W: Write>(s: &mut SummarySink<W>, run: &RunStats) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pgscope report</title>");
    let _ = write!(
        o,
        "<style>{STYLE}</style><script>{CHECK}</script></head><body>"
    );
    o.push_str("<h1>pgscope report</h1>");
    let _ = write!(
        o,
        "<p>{} packets, {} connections, {} messages, {} statements ({} failed",
        run.packets, s.sessions, run.messages, s.queries, s.failed
    );
    if s.unsure > 0 {
        let _ = write!(
            o,
            ", {} unsure after lost packets, left out of the figures",
            s.unsure
        );
    }
    o.push_str(").</p>");
    if let Some(span) = span_line(run, s.queries) {
        let _ = write!(o, "<p>Capture: {}</p>", esc(&span));
    }
    if let Some(t) = s.timeline.as_mut() {
        time_charts(&mut o, t);
    }

    let distinct = s.stmts.len();
    let mut top = s.top_statements();
    let bars: Vec<(String, f64, String)> = top
        .iter()
        .map(|(_, st)| {
            let total = st.total_ns as f64 / 1e6;
            (
                st.text.clone(),
                total,
                format!("{total:.1} ms, {} calls", st.calls),
            )
        })
        .collect();
    hbars(
        &mut o,
        "top",
        &format!(
            "Top statements by total time ({} of {distinct})",
            bars.len()
        ),
        &bars,
    );
    if !top.is_empty() {
        o.push_str("<table id=\"top-table\"><tr><th class=\"n\">calls</th><th class=\"n\">total ms</th><th class=\"n\">mean</th><th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th><th class=\"n\">max</th><th class=\"n\">rows</th><th class=\"n\">errors</th><th>statement (as pg_stat_statements shows it) and fingerprint</th></tr>");
    }
    for (fp, st) in top.iter_mut() {
        let total = st.total_ns as f64 / 1e6;
        let p = [0.5, 0.95, 0.99].map(|q| ms(percentile(&mut st.samples, q)));
        let _ = write!(
            o,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{total:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><div class=\"sql\">{}</div><div class=\"fp\">{}</div></td></tr>",
            st.calls,
            total / st.calls.max(1) as f64,
            p[0],
            p[1],
            p[2],
            ms(st.max_ns),
            st.rows,
            st.errors,
            esc(&st.text),
            esc(fp)
        );
    }
    if !top.is_empty() {
        o.push_str("</table><p class=\"note\">Times in ms; percentiles by nearest rank.</p>");
    }

    if s.queries > 0 {
        let hist: Vec<(String, f64, String)> = LATENCY_LABELS
            .iter()
            .zip(s.histogram)
            .map(|(l, n)| (l.to_string(), n as f64, n.to_string()))
            .collect();
        hbars(&mut o, "histogram", "Statement latency", &hist);
    }
    if !s.errors.is_empty() {
        o.push_str("<h2>Errors by SQLSTATE</h2><table id=\"errors-table\">");
        for (code, (n, msg)) in &s.errors {
            let _ = write!(
                o,
                "<tr><td class=\"n\">{n}</td><td class=\"fp\">{}</td><td>{}</td></tr>",
                esc(code),
                esc(msg)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Sessions</h2><div class=\"boxes\">");
    for (title, c) in [
        ("By user", &s.users),
        ("By database", &s.databases),
        ("By application", &s.apps),
        ("By client", &s.clients),
        ("Authentication", &s.auth),
        ("Encryption", &s.encryption),
        ("Protocol versions", &s.protocols),
        ("Anomalies", &s.anomalies),
    ] {
        counter_table(&mut o, title, c);
    }
    o.push_str("</div>");
    let _ = write!(
        o,
        "<p class=\"note\">{}.</p>",
        capture_line(run, s.midstream)
    );
    for w in &run.warnings {
        let _ = write!(o, "<p class=\"note\">warning: {}</p>", esc(w));
    }
    let mut made = String::new();
    if let Some((_, b)) = run.span {
        rfc3339(b, &mut made);
    }
    let _ = writeln!(
        o,
        "<p class=\"note\">pgscope {} report{}</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        if made.is_empty() {
            String::new()
        } else {
            format!(", capture ending {made}")
        }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn wire_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        // Controls and bidi overrides as the terminal presenters show them.
        let e = esc("a\u{1b}[5m\u{202e}b");
        assert!(!e.contains('\u{1b}') && !e.contains('\u{202e}'), "{e}");
    }
}
