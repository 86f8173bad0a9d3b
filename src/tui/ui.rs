//! Drawing: turns an [`App`] into a frame. Reads only the app's copies, never the
//! shared state, so it runs without the lock. Every string from the wire is escaped
//! (`esc`) before it reaches a cell.

use super::app::{App, GLOBAL_HELP, InputKind, View};
use super::rows::{SessCol, TopCol, human_bytes, human_ns};
use super::state::{Bucket, QueryEntry};
use crate::output::fields::REDACTED;
use crate::output::fmt::{push_sanitized, rfc3339, time_of_day};
use crate::pgwire::Dir;
use crate::session::record::Outcome;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

/// Styles, with or without colour (NO_COLOR).
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless NO_COLOR is set to anything non-empty (no-color.org).
    pub fn from_env() -> Self {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    fn hit(self) -> Style {
        if self.color {
            Style::new().bg(Color::Yellow).fg(Color::Black)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
        }
    }

    fn dir(self, d: Option<Dir>) -> Style {
        match d {
            Some(Dir::Frontend) => self.fg(Color::Cyan),
            Some(Dir::Backend) => self.fg(Color::Green),
            None => self.bad(),
        }
    }
}

/// Wire text made safe for the terminal. Cells are not quoted, so quotes stay as
/// sent (`"u_pkey"`, not `\"u_pkey\"`); control characters are escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_sanitized(&mut out, s.as_bytes(), false);
    out
}

fn esc_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "?".into(), esc)
}

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of the last `width` values, scaled to their maximum.
pub fn sparkline(values: &[u64], width: usize) -> String {
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().max().unwrap_or(0).max(1);
    tail.iter()
        // Zero is the lowest bar; anything above it shows at least the second.
        .map(|&v| {
            SPARK[if v == 0 {
                0
            } else {
                1 + ((v * 6).div_ceil(max) as usize).min(6)
            }]
        })
        .collect()
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = (done as u128 * width as u128 / total.max(1) as u128) as usize;
    format!(
        "{}{}",
        "█".repeat(filled.min(width)),
        "░".repeat(width - filled.min(width))
    )
}

pub fn draw(f: &mut Frame<'_>, app: &mut App, theme: Theme) {
    let [head, tabs, title, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, head, app, theme);
    draw_tabs(f, tabs, app, theme);
    // One line for the table header; the rest are rows.
    app.page = (body.height as usize).saturating_sub(2).max(1);
    let heading = match app.view {
        View::Sessions => draw_sessions(f, body, app, theme),
        View::Timeline => draw_timeline(f, body, app, theme),
        View::Queries => draw_queries(f, body, app, theme),
        View::Detail => draw_detail(f, body, app, theme),
        View::Top => draw_top(f, body, app, theme),
        View::Errors => draw_errors(f, body, app, theme),
    };
    f.render_widget(Paragraph::new(heading).style(theme.title()), title);
    draw_footer(f, foot, app, theme);
    if app.help {
        draw_help(f, app, theme);
    }
}

fn draw_header(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let h = &app.header;
    // Counts first: the source name is the part that may be cut on narrow screens.
    let open = if h.finished {
        String::new()
    } else {
        format!(" ({} open)", h.open_sessions)
    };
    let err_style = if h.errors > 0 {
        theme.bad()
    } else {
        Style::new()
    };
    let mut l1 = vec![
        Span::styled("pgscope ", theme.title()),
        Span::raw(format!(
            "{} sessions{open} {} queries ",
            h.sessions, h.queries
        )),
        Span::styled(format!("{} errors", h.errors), err_style),
        Span::raw(" │ "),
    ];
    match (h.progress, h.finished) {
        (Some((done, total)), false) => l1.push(Span::raw(format!(
            "{} {:>3}% ",
            bar(done, total, 10),
            done * 100 / total.max(1)
        ))),
        (None, false) if h.bytes_read > 0 => {
            l1.push(Span::raw(format!("read {} ", human_bytes(h.bytes_read))))
        }
        (None, false) => {}
        (_, true) => l1.push(Span::styled("end of capture ", theme.warn())),
    }
    l1.push(Span::raw(esc(&h.source)));
    if app.paused {
        l1.insert(
            1,
            Span::styled("PAUSED", theme.bad().add_modifier(Modifier::REVERSED)),
        );
        l1.insert(2, Span::raw(" "));
    }
    // The newest second is still filling while the capture runs.
    let complete = if h.finished || h.rates.len() < 2 {
        &h.rates[..]
    } else {
        &h.rates[..h.rates.len() - 1]
    };
    // Short labels and sparklines below 130 columns so that the health part shows.
    let wide = area.width >= 130;
    let series = |get: fn(&Bucket) -> u64| -> (String, u64) {
        let v: Vec<u64> = complete.iter().map(get).collect();
        let spark = sparkline(&v, if wide { 12 } else { 5 });
        (spark, v.last().copied().unwrap_or(0))
    };
    let (qs, qn) = series(|b| b.queries);
    let (es, en) = series(|b| b.errors);
    let (bs, bn) = series(|b| b.bytes);
    let hl = &h.health;
    let mut l2 = vec![
        Span::raw(format!("q/s {qs} {qn} err/s ")),
        Span::styled(es, theme.bad()),
        Span::raw(format!(" {en} B/s {bs} {} │ ", human_bytes(bn))),
    ];
    let labels = if wide {
        ["drops", "gaps", "mid-stream", "encrypted", "anomalies"]
    } else {
        ["drops", "gaps", "joins", "enc", "anom"]
    };
    let figures = [
        h.dropped_packets,
        hl.gaps,
        hl.midstream,
        hl.encrypted,
        hl.anomalies,
    ];
    let health: Vec<String> = labels
        .iter()
        .zip(figures)
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    let troubled = h.dropped_packets + hl.gaps > 0;
    l2.push(Span::styled(
        health.join(" "),
        if troubled { theme.warn() } else { Style::new() },
    ));
    let lost = hl.sessions_dropped + hl.messages_dropped + hl.queries_dropped;
    if lost > 0 {
        l2.push(Span::styled(
            format!(
                " │ not kept: {} sessions {} messages {} queries",
                hl.sessions_dropped, hl.messages_dropped, hl.queries_dropped
            ),
            theme.warn(),
        ));
    }
    f.render_widget(Paragraph::new(vec![Line::from(l1), Line::from(l2)]), area);
}

fn draw_tabs(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let mut spans = Vec::new();
    for v in View::ALL {
        let label = format!(" {} {} ", v.key(), v.title());
        let style = if v == app.view {
            theme.selected().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, style));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let line = if let Some(input) = &app.input {
        let prompt = match input.kind {
            InputKind::Filter => "filter> ",
            InputKind::Search => "search> ",
        };
        let mut spans = vec![
            Span::styled(prompt, theme.title()),
            Span::raw(esc(&input.text)),
            Span::styled("▏", theme.title()),
        ];
        match (&input.error, input.kind) {
            (Some(e), _) => spans.push(Span::styled(format!("  ✗ {}", esc(e)), theme.bad())),
            (None, InputKind::Filter) => spans.push(Span::styled(
                "  ✓ Enter apply, Esc cancel",
                theme.fg(Color::Green),
            )),
            (None, InputKind::Search) => spans.push(Span::raw("  Enter search, Esc cancel")),
        }
        Line::from(spans)
    } else if let Some(s) = &app.status {
        Line::styled(s.clone(), theme.warn())
    } else if let Some(e) = &app.header.fatal {
        Line::styled(format!("capture failed: {}", esc(e)), theme.bad())
    } else {
        let hints = "? help  q quit  f filter  p pause  1-6/Tab views  Enter open  Esc back";
        if app.filter.is_empty() {
            Line::raw(hints)
        } else {
            Line::from(vec![
                Span::styled(
                    format!("filter: {}", esc(app.filter.source())),
                    theme.warn(),
                ),
                Span::raw(format!(" │ {hints}")),
            ])
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

/// First visible row so that `selected` shows, moving as little as possible.
fn scroll(offset: &mut usize, selected: usize, len: usize, height: usize) -> usize {
    let height = height.max(1);
    if selected < *offset {
        *offset = selected;
    } else if selected >= *offset + height {
        *offset = selected + 1 - height;
    }
    *offset = (*offset).min(len.saturating_sub(height));
    *offset
}

/// Picks which columns fit: in priority order, each taking its width plus one space;
/// `rest` is kept free for a trailing flexible column.
fn fit<T: Copy>(cols: &[(T, u16)], width: u16, rest: u16, must: Option<usize>) -> Vec<usize> {
    let mut used = rest;
    let mut chosen = Vec::new();
    let order = must.into_iter().chain(0..cols.len());
    for i in order {
        if chosen.contains(&i) {
            continue;
        }
        if used + cols[i].1 < width || chosen.is_empty() {
            used += cols[i].1 + 1;
            chosen.push(i);
        }
    }
    chosen
}

/// Where a table is: its length, the selected row and the first row shown.
struct Scroll<'o> {
    len: usize,
    selected: usize,
    offset: &'o mut usize,
}

/// Draws a table of the rows in view; `row` builds one row by index.
fn table<'a>(
    f: &mut Frame<'_>,
    area: Rect,
    theme: Theme,
    header: Vec<Cell<'a>>,
    widths: Vec<Constraint>,
    Scroll {
        len,
        selected,
        offset,
    }: Scroll<'_>,
    mut row: impl FnMut(usize) -> Row<'a>,
) {
    let height = (area.height as usize).saturating_sub(1);
    let first = scroll(offset, selected, len, height);
    let rows: Vec<Row<'a>> = (first..len.min(first + height)).map(&mut row).collect();
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .row_highlight_style(theme.selected())
        .column_spacing(1);
    let mut state = TableState::new().with_selected((len > 0).then(|| selected - first));
    f.render_stateful_widget(t, area, &mut state);
}

fn sort_mark(desc: bool) -> &'static str {
    if desc { "▼" } else { "▲" }
}

fn sess_width(c: SessCol) -> u16 {
    match c {
        SessCol::Conn => 4,
        SessCol::Client => 21,
        SessCol::User | SessCol::Db | SessCol::App | SessCol::Auth => 10,
        SessCol::Proto => 5,
        SessCol::Enc => 4,
        SessCol::State => 14,
        SessCol::Queries => 7,
        SessCol::Errors | SessCol::Bytes => 7,
        SessCol::Duration => 8,
    }
}

fn draw_sessions(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) -> String {
    use SessCol::*;
    // Most useful first: what is dropped on narrow terminals comes last.
    let prio = [
        Conn, User, Db, State, Queries, Errors, Duration, Client, Bytes, App, Auth, Enc, Proto,
    ];
    let sort = app.sess_col();
    let cols: Vec<(SessCol, u16)> = prio.iter().map(|&c| (c, sess_width(c))).collect();
    let must = prio.iter().position(|&c| c == sort);
    let mut shown: Vec<SessCol> = fit(&cols, area.width, 0, must)
        .into_iter()
        .map(|i| prio[i])
        .collect();
    shown.sort_by_key(|c| SessCol::ALL.iter().position(|x| x == c));
    let header = shown
        .iter()
        .map(|&c| {
            let mark = if c == sort {
                sort_mark(app.sess_nav.desc)
            } else {
                ""
            };
            Cell::from(format!("{}{mark}", c.name()))
        })
        .collect();
    // Text columns take what is left on wide screens; numbers keep their width.
    let widths = shown
        .iter()
        .map(|&c| match c {
            SessCol::Client | SessCol::User | SessCol::Db | SessCol::App | SessCol::Auth => {
                Constraint::Min(sess_width(c))
            }
            _ => Constraint::Length(sess_width(c)),
        })
        .collect();
    let rows = &app.sessions;
    let mut offset = app.offsets[0];
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: rows.len(),
            selected: app.sess_nav.selected,
            offset: &mut offset,
        },
        |i| {
            let r = &rows[i];
            let cells = shown.iter().map(|&c| Cell::from(esc(&r.cell(c))));
            let style = match (r.state, r.errors) {
                ("closed", _) => theme.fg(Color::DarkGray),
                (_, e) if e > 0 => theme.warn(),
                _ => Style::new(),
            };
            Row::new(cells).style(style)
        },
    );
    app.offsets[0] = offset;
    format!(
        "Sessions: {} shown │ sort {} {} (←→ r) │ Enter: timeline",
        rows.len(),
        sort.name(),
        sort_mark(app.sess_nav.desc)
    )
}

fn draw_timeline(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) -> String {
    let tl = &app.timeline;
    let header = ["time", "", "message", "fields"]
        .into_iter()
        .map(Cell::from)
        .collect();
    let widths = vec![
        Constraint::Length(15),
        Constraint::Length(2),
        Constraint::Length(18),
        Constraint::Fill(1),
    ];
    let mut offset = app.offsets[1];
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: tl.lines.len(),
            selected: tl.selected,
            offset: &mut offset,
        },
        |i| {
            let l = &tl.lines[i];
            let mut t = String::new();
            time_of_day(l.ts, &mut t);
            let arrow = match l.dir {
                Some(Dir::Frontend) => "FE",
                Some(Dir::Backend) => "BE",
                None => "!!",
            };
            let row = Row::new(vec![
                Cell::from(t),
                Cell::from(arrow).style(theme.dir(l.dir)),
                Cell::from(l.name).style(theme.dir(l.dir)),
                // Already escaped when it was recorded.
                Cell::from(l.summary.clone()),
            ]);
            if tl.matches(l) {
                row.style(theme.hit())
            } else {
                row
            }
        },
    );
    app.offsets[1] = offset;
    // What changes (following, search) first: the session's details may be cut.
    let mut title = String::from(if tl.follow {
        "Timeline [following]"
    } else {
        "Timeline [End/G: follow]"
    });
    if !tl.search.is_empty() {
        title.push_str(&format!(" /{} (n N)", esc(&tl.search)));
    }
    title.push(' ');
    title.push_str(&esc(&tl.title));
    if tl.dropped > 0 {
        title.push_str(&format!(" │ {} older messages not kept", tl.dropped));
    }
    title
}

fn outcome_cell(q: &QueryEntry, theme: Theme) -> Cell<'static> {
    match (&q.rec.error, q.rec.outcome) {
        (Some(e), _) => Cell::from(esc(&e.code)).style(theme.bad()),
        (None, Outcome::Failure) => Cell::from("ERR").style(theme.bad()),
        (None, Outcome::Success) => Cell::from("ok"),
        (None, Outcome::Unknown) => Cell::from("?").style(theme.warn()),
    }
}

fn draw_queries(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) -> String {
    let header = [
        "time",
        "#",
        "user",
        "duration",
        "rows",
        "result",
        "statement",
    ]
    .into_iter()
    .map(Cell::from)
    .collect();
    let widths = vec![
        Constraint::Length(15),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let qs = &app.queries;
    let mut offset = app.offsets[2];
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: qs.len(),
            selected: app.query_nav.selected,
            offset: &mut offset,
        },
        |i| {
            let q = &qs[i];
            let mut t = String::new();
            time_of_day(q.rec.start_ns, &mut t);
            let rows = q.rec.rows_returned.max(q.rec.rows_affected.unwrap_or(0));
            Row::new(vec![
                Cell::from(t),
                Cell::from(q.rec.conn_id.to_string()),
                Cell::from(esc_opt(q.who.user.as_deref())),
                Cell::from(human_ns(q.rec.duration_ns())),
                Cell::from(rows.to_string()),
                outcome_cell(q, theme),
                Cell::from(esc_opt(q.rec.text.as_deref())),
            ])
        },
    );
    app.offsets[2] = offset;
    format!(
        "Queries: {} most recent first{} │ Enter: detail",
        qs.len(),
        if app.filter.is_empty() {
            ""
        } else {
            " (filtered)"
        }
    )
}

/// The lines of the query detail view.
pub fn detail_lines(q: &QueryEntry, theme: Theme) -> Vec<Line<'static>> {
    let r = &q.rec;
    let label = |s: &str| Span::styled(format!("{s:<12}"), theme.title());
    let kv = |k: &str, v: String| Line::from(vec![label(k), Span::raw(v)]);
    let mut start = String::new();
    rfc3339(r.start_ns, &mut start);
    let mut end = String::new();
    time_of_day(r.end_ns, &mut end);
    let mut out = vec![
        kv(
            "session",
            format!(
                "#{} client {} user {} db {} app {}",
                r.conn_id,
                esc(&q.who.client),
                esc_opt(q.who.user.as_deref()),
                esc_opt(q.who.database.as_deref()),
                esc_opt(q.who.application.as_deref())
            ),
        ),
        kv(
            "timing",
            format!("{start} to {end}  duration {}", human_ns(r.duration_ns())),
        ),
        kv(
            "protocol",
            format!(
                "{}  statement {}  portal {}",
                r.protocol,
                r.statement
                    .as_deref()
                    .map_or("-".into(), |s| format!("\"{}\"", esc(s))),
                r.portal
                    .as_deref()
                    .map_or("-".into(), |s| format!("\"{}\"", esc(s)))
            ),
        ),
        kv(
            "result",
            format!(
                "{}  tag {}  rows returned {}  affected {}  tx {}{}{}",
                r.outcome.as_str(),
                esc_opt(r.command_tag.as_deref()),
                r.rows_returned,
                r.rows_affected.map_or("-".into(), |n| n.to_string()),
                r.tx_status.map_or('-', |b| b as char),
                if r.skipped { "  (skipped)" } else { "" },
                if r.suspended { "  (suspended)" } else { "" }
            ),
        ),
    ];
    if let Some(e) = &r.error {
        out.push(Line::from(vec![
            label("error"),
            Span::styled(
                format!("{} {} {}", esc(&e.severity), esc(&e.code), esc(&e.message)),
                theme.bad(),
            ),
        ]));
    }
    if let Some(e) = &r.error {
        // DETAIL, HINT, position and the object the error concerns, one per line.
        for (c, v) in &e.fields {
            if let Some(name) = crate::pgwire::error_field_name(*c) {
                out.push(kv(name.trim_end_matches("_name"), esc(v)));
            }
        }
    }
    if let Some(c) = r.cancelled_by {
        out.push(kv("cancelled", format!("by connection #{c}")));
    }
    for n in &r.notices {
        out.push(kv(
            "notice",
            format!("{} {} {}", esc(&n.severity), esc(&n.code), esc(&n.message)),
        ));
    }
    if q.params_redacted {
        out.push(kv("parameters", REDACTED.into()));
    } else if !r.params.is_empty() {
        out.push(Line::styled("parameters", theme.title()));
        for (i, p) in r.params.iter().enumerate() {
            let v = p.map_or("NULL".into(), |v| format!("'{}'", esc(&v)));
            out.push(Line::raw(format!("  ${} = {v}", i + 1)));
        }
    }
    out.push(Line::styled("SQL", theme.title()));
    match &r.text {
        // Real line breaks are kept; each line is escaped on its own.
        Some(sql) => out.extend(sql.split('\n').map(|l| {
            Line::raw(format!(
                "  {}",
                esc(&l.replace('\t', "    ").replace('\r', ""))
            ))
        })),
        None => out.push(Line::styled(
            "  (SQL not seen: joined mid-stream)",
            theme.warn(),
        )),
    }
    out
}

fn draw_detail(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) -> String {
    let Some(q) = &app.detail else {
        f.render_widget(
            Paragraph::new("No statement open: press Enter in Queries (3), Top (5) or Errors (6)."),
            area,
        );
        return "Query".into();
    };
    let lines = detail_lines(q, theme);
    app.detail_scroll = app.detail_scroll.min(lines.len().saturating_sub(1));
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((app.detail_scroll.min(u16::MAX as usize) as u16, 0));
    f.render_widget(p, area);
    format!(
        "Query #{} of session #{} │ ↑↓ scroll │ t: timeline │ Esc: back",
        q.seq + 1,
        q.rec.conn_id
    )
}

fn draw_top(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) -> String {
    use TopCol::*;
    let prio = [Total, Calls, Mean, P95, Share, P99, Max, Rows, Errors];
    let sort = app.top_col();
    let cols: Vec<(TopCol, u16)> = prio.iter().map(|&c| (c, 8)).collect();
    let must = prio.iter().position(|&c| c == sort);
    let mut shown: Vec<TopCol> = fit(&cols, area.width, 24, must)
        .into_iter()
        .map(|i| prio[i])
        .collect();
    shown.sort_by_key(|c| TopCol::ALL.iter().position(|x| x == c));
    let mut header: Vec<Cell> = shown
        .iter()
        .map(|&c| {
            let mark = if c == sort {
                sort_mark(app.top_nav.desc)
            } else {
                ""
            };
            Cell::from(format!("{}{mark}", c.name()))
        })
        .collect();
    header.push(Cell::from("statement"));
    let mut widths: Vec<Constraint> = shown.iter().map(|_| Constraint::Length(8)).collect();
    widths.push(Constraint::Fill(1));
    let rows = &app.top;
    let mut offset = app.offsets[4];
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: rows.len(),
            selected: app.top_nav.selected,
            offset: &mut offset,
        },
        |i| {
            let r = &rows[i];
            let mut cells: Vec<Cell> = shown.iter().map(|&c| Cell::from(r.cell(c))).collect();
            cells.push(Cell::from(esc(&r.text)));
            let row = Row::new(cells);
            if r.errors > 0 {
                row.style(theme.warn())
            } else {
                row
            }
        },
    );
    app.offsets[4] = offset;
    format!(
        "Top queries: {} fingerprints{} │ sort {} {} (←→ r) │ Enter: latest call",
        rows.len(),
        if app.stats_from_window {
            ", filtered over the retained statements"
        } else {
            ""
        },
        sort.name(),
        sort_mark(app.top_nav.desc)
    )
}

fn draw_errors(f: &mut Frame<'_>, area: Rect, app: &mut App, theme: Theme) -> String {
    let header = ["count", "sqlstate", "last seen", "message"]
        .into_iter()
        .map(Cell::from)
        .collect();
    let widths = vec![
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(15),
        Constraint::Fill(1),
    ];
    let rows = &app.errors;
    let mut offset = app.offsets[5];
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: rows.len(),
            selected: app.err_nav.selected,
            offset: &mut offset,
        },
        |i| {
            let g = &rows[i];
            let mut t = String::new();
            time_of_day(g.last_ns, &mut t);
            Row::new(vec![
                Cell::from(g.count.to_string()),
                Cell::from(esc(&g.code)).style(theme.bad()),
                Cell::from(t),
                Cell::from(esc(&g.message)),
            ])
        },
    );
    app.offsets[5] = offset;
    format!(
        "Errors: {} groups by SQLSTATE and message{} │ Enter: failing statement",
        rows.len(),
        if app.stats_from_window {
            ", filtered over the retained statements"
        } else {
            ""
        }
    )
}

fn draw_help(f: &mut Frame<'_>, app: &App, theme: Theme) {
    let mut lines = vec![Line::styled(
        format!("{} keys", app.view.title()),
        theme.title(),
    )];
    let entry = |(k, v): &(&str, &str)| Line::raw(format!("  {k:<18} {v}"));
    lines.extend(app.view.help().iter().map(entry));
    lines.push(Line::styled("Everywhere", theme.title()));
    lines.extend(GLOBAL_HELP.iter().map(entry));
    lines.push(Line::raw("any key closes this help"));
    let area = f.area();
    let w = area.width.min(90);
    let h = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" help ")),
        popup,
    );
}

#[cfg(test)]
mod tests;
