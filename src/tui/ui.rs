//! Drawing: turns an [`App`] into a frame. Reads only the app's copies, never the
//! shared state, so it runs without the lock. Every string from the wire is escaped
//! (`esc`) before it reaches a cell.

use super::app::{App, GLOBAL_HELP, InputKind, Nav, QCol, QRow, View};
use super::rows::{SessCol, TopCol, human_bytes, human_ns};
use super::state::{Bucket, QueryEntry};
use crate::output::fmt::{push_sanitized, rfc3339, time_of_day};
use crate::output::params::Render as _;
use crate::output::redact::REDACTED;
use crate::pgwire::Dir;
use crate::session::record::{Leg, Link, Match, Outcome};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Styles, with or without colour (NO_COLOR).
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    /// Draw with colours.
    pub color: bool,
}

impl Theme {
    /// Colour unless NO_COLOR is set to anything non-empty (no-color.org).
    pub(crate) fn from_env() -> Self {
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
pub(crate) fn sparkline(values: &[u64], width: usize) -> String {
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

/// Draws the app; reads it only (its pages come from [`App::resize`]).
pub fn draw(f: &mut Frame<'_>, app: &App, theme: Theme) {
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
    let heading = match app.view {
        View::Sessions => draw_sessions(f, body, app, theme),
        View::Timeline => draw_timeline(f, body, app, theme),
        View::Queries => draw_queries(f, body, app, theme),
        View::Detail => draw_detail(f, body, app, theme),
        View::Top => draw_top(f, body, app, theme),
        View::Errors => draw_errors(f, body, app, theme),
        View::Anomalies => draw_anomalies(f, body, app, theme),
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
        Span::styled(
            if h.running > 0 {
                format!("{} running ", h.running)
            } else {
                String::new()
            },
            theme.fg(Color::Green),
        ),
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
    let lost = hl.sessions_dropped + hl.messages_dropped + hl.statements_dropped;
    if lost > 0 {
        l2.push(Span::styled(
            format!(
                " │ not kept: {} sessions {} messages {} statements",
                hl.sessions_dropped, hl.messages_dropped, hl.statements_dropped
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
        let hints = "? help  q quit  f filter  p pause  1-7/Tab views  Enter open  Esc back";
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

/// Where a table is: its length and navigation (selection, first row shown).
struct Scroll {
    len: usize,
    nav: Nav,
}

/// Draws a table of the rows in view; `row` builds one row by index.
fn table<'a>(
    f: &mut Frame<'_>,
    area: Rect,
    theme: Theme,
    header: Vec<Cell<'a>>,
    widths: Vec<Constraint>,
    Scroll { len, nav }: Scroll,
    mut row: impl FnMut(usize) -> Option<Row<'a>>,
) {
    let height = (area.height as usize).saturating_sub(1);
    // The app scrolled for its page; a smaller area (a test) still shows the selection.
    let first = nav
        .offset
        .max((nav.selected + 1).saturating_sub(height.max(1)));
    let selected = nav.selected.min(len.saturating_sub(1));
    let rows: Vec<Row<'a>> = (first..len.min(first + height))
        .map_while(&mut row)
        .collect();
    let t = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .row_highlight_style(theme.selected())
        .column_spacing(1);
    let mut state =
        TableState::new().with_selected(selected.checked_sub(first).filter(|_| len > 0));
    f.render_stateful_widget(t, area, &mut state);
}

/// A table of fixed columns: (name, width), width 0 for the one taking the rest.
fn fixed_table<'a>(
    f: &mut Frame<'_>,
    area: Rect,
    theme: Theme,
    cols: &[(&'static str, u16)],
    scroll: Scroll,
    row: impl FnMut(usize) -> Option<Row<'a>>,
) {
    let header = cols.iter().map(|(n, _)| Cell::from(*n)).collect();
    let widths = cols
        .iter()
        .map(|&(_, w)| match w {
            0 => Constraint::Fill(1),
            w => Constraint::Length(w),
        })
        .collect();
    table(f, area, theme, header, widths, scroll, row);
}

fn sort_mark(desc: bool) -> &'static str {
    if desc { "▼" } else { "▲" }
}

fn sess_width(c: SessCol) -> u16 {
    match c {
        SessCol::Conn => 4,
        SessCol::Client | SessCol::Server => 15,
        SessCol::User | SessCol::Db | SessCol::App => 8,
        // SCRAM-SHA-256-PLUS whole.
        SessCol::Auth => 18,
        SessCol::Proto => 5,
        SessCol::Enc => 4,
        SessCol::State => 11,
        SessCol::Running => 8,
        SessCol::Wait => 6,
        SessCol::Query => 12,
        SessCol::Queries => 7,
        SessCol::Errors | SessCol::Bytes => 7,
        SessCol::Duration => 8,
    }
}

fn draw_sessions(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
    use SessCol::*;
    // Most useful first: what is dropped on narrow terminals comes last. Client and
    // app stay at 80 columns; text columns are cut with an ellipsis.
    let prio = [
        Conn, Client, User, App, State, Running, Db, Query, Server, Wait, Queries, Errors,
        Duration, Bytes, Auth, Enc, Proto,
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
                sort_mark(app.sessions.nav.desc)
            } else {
                ""
            };
            Cell::from(format!("{}{mark}", c.name()))
        })
        .collect();
    // What is left goes to the running statement's text, or else to the text
    // columns; cells longer than their column end in an ellipsis.
    let used: u16 = shown.iter().map(|&c| sess_width(c) + 1).sum();
    let spare = area.width.saturating_sub(used);
    let texts = [Client, Server, User, Db, App];
    let growing: Vec<SessCol> = shown
        .iter()
        .copied()
        .filter(|c| texts.contains(c))
        .collect();
    // The running statement's text, when shown, takes half.
    let for_query = if shown.contains(&Query) { spare / 2 } else { 0 };
    let per_text = (spare - for_query) / growing.len().max(1) as u16;
    let cut: Vec<usize> = shown
        .iter()
        .map(|&c| {
            let extra = match c {
                Query => spare - per_text * growing.len() as u16,
                c if growing.contains(&c) => per_text,
                _ => 0,
            };
            (sess_width(c) + extra) as usize
        })
        .collect();
    let widths: Vec<Constraint> = cut.iter().map(|&w| Constraint::Length(w as u16)).collect();
    let rows = &app.sessions.rows;
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: rows.len(),
            nav: app.sessions.nav,
        },
        |i| {
            let r = &rows[i];
            let cells = shown
                .iter()
                .zip(&cut)
                .map(|(&c, &w)| Cell::from(elide(&esc(&r.cell(c)), w)));
            let style = match (r.state, r.errors) {
                ("closed", _) => theme.fg(Color::DarkGray),
                ("active", _) => theme.fg(Color::Green),
                (_, e) if e > 0 => theme.warn(),
                _ => Style::new(),
            };
            Some(Row::new(cells).style(style))
        },
    );
    format!(
        "Sessions: {} shown │ sort {} {} (←→ r) │ Enter: timeline │ F: follow",
        rows.len(),
        sort.name(),
        sort_mark(app.sessions.nav.desc)
    )
}

/// Cuts `s` to `w` characters, the last one an ellipsis when something was cut.
fn elide(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn draw_timeline(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
    let tl = &app.timeline;
    let lines = &tl.lines.rows;
    fixed_table(
        f,
        area,
        theme,
        &[("time", 15), ("", 2), ("message", 18), ("fields", 0)],
        Scroll {
            len: lines.len(),
            nav: tl.lines.nav,
        },
        |i| {
            let l = &lines[i];
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
            Some(if tl.matches(l) {
                row.style(theme.hit())
            } else {
                row
            })
        },
    );
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
        title.push_str(&format!(
            " │ {} older messages not kept (the last {} per session: --tui-messages)",
            tl.dropped, app.header.limits.messages_per_session
        ));
    }
    title
}

fn outcome_cell(r: &QRow, theme: Theme) -> Cell<'static> {
    match (&r.code, r.outcome) {
        (_, None) => Cell::from("run").style(theme.fg(Color::Green)),
        (Some(code), _) => Cell::from(esc(code)).style(theme.bad()),
        (None, Some(Outcome::Failure)) => Cell::from("ERR").style(theme.bad()),
        (None, Some(Outcome::Success)) => Cell::from("ok"),
        (None, Some(Outcome::Unknown)) => Cell::from("?").style(theme.warn()),
    }
}

fn draw_queries(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
    let q = &app.queries;
    let sort = q.col();
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
    .map(|h| {
        let sorted = match sort {
            QCol::Start => h == "time",
            QCol::Duration => h == "duration",
            QCol::Rows => h == "rows",
        };
        if sorted {
            Cell::from(format!("{h}{}", sort_mark(q.nav.desc)))
        } else {
            Cell::from(h)
        }
    })
    .collect();
    let widths = vec![
        Constraint::Length(15),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: q.len(),
            nav: q.nav,
        },
        |i| {
            let r = q.visible.get(i.checked_sub(q.nav.offset)?)?;
            let mut t = String::new();
            time_of_day(r.start_ns, &mut t);
            let text = match (r.wait, &r.text) {
                (Some(w), t) => format!("[{w}] {}", esc_opt(t.as_deref())),
                (None, t) => esc_opt(t.as_deref()),
            };
            let row = Row::new(vec![
                Cell::from(t),
                Cell::from(r.conn.to_string()),
                Cell::from(esc_opt(r.user.as_deref())),
                Cell::from(human_ns(r.duration_ns)),
                Cell::from(if r.outcome.is_some() {
                    r.rows.to_string()
                } else {
                    String::new()
                }),
                outcome_cell(r, theme),
                Cell::from(text),
            ]);
            Some(row)
        },
    );
    let h = &app.header;
    let mut title = format!(
        "Queries: {} running, {} done{}{} │ by {} {} (←→ r) │ Enter: detail",
        q.running.len(),
        q.matched.order.len(),
        if app.filter.is_empty() {
            ""
        } else {
            " (filtered)"
        },
        app.follow
            .map_or(String::new(), |c| format!(" of session #{c} (F: all)")),
        match sort {
            QCol::Start => "start time",
            QCol::Duration => "duration",
            QCol::Rows => "rows",
        },
        sort_mark(q.nav.desc),
    );
    if q.matched.pending > 0 {
        title.push_str(&format!(
            " │ {} statements still to look at",
            q.matched.pending
        ));
    }
    if h.health.statements_dropped > 0 {
        title.push_str(&format!(
            " │ {} oldest not kept (the last {}: --tui-statements)",
            h.health.statements_dropped, h.limits.statements
        ));
    }
    title
}

/// `--pooler-port`: which leg the statement is on and the other leg's statement, as
/// the `pgwire.pooler.*` fields of the JSON records say it (docs/pooler.md).
fn pooler_line(link: &Link) -> String {
    let mut s = format!("{} leg", link.leg.as_str());
    match link.matched {
        Match::Ambiguous => {
            let _ = write!(s, ", not linked: {} statements fit", link.candidates);
        }
        Match::None => s.push_str(", not linked"),
        m => {
            let _ = write!(s, ", linked by {}", m.as_str());
        }
    }
    if let Some(id) = link.peer_conn_id {
        let _ = match link.leg {
            Leg::Server => write!(s, " to client connection #{id}"),
            Leg::Client => write!(s, " to server connection #{id}"),
        };
    }
    if let Some((ip, port)) = link.client {
        let _ = write!(s, " from {}", esc(&SocketAddr::new(ip, port).to_string()));
    }
    if let Some(app) = &link.client_application {
        let _ = write!(s, " app {}", esc(app));
    }
    if let Some(pid) = link.backend_pid {
        let _ = write!(s, " backend pid {pid}");
    }
    if let Some(w) = link.wait_ns {
        let _ = write!(s, "  pool wait {}", human_ns(w));
    }
    if let Some(d) = link.server_ns {
        let _ = write!(s, "  on the server {}", human_ns(d));
    }
    s
}

/// The lines of the query detail view.
pub(crate) fn detail_lines(q: &QueryEntry, theme: Theme) -> Vec<Line<'static>> {
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
                if q.compact { "" } else { r.protocol.as_str() },
                r.statement()
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
    if let Some(link) = &r.pooler {
        out.push(kv("pooler", pooler_line(link)));
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
        for (i, p) in r.params.texts().enumerate() {
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

fn draw_detail(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
    let Some(q) = &app.detail else {
        f.render_widget(
            Paragraph::new("No statement open: press Enter in Queries (3), Top (5) or Errors (6)."),
            area,
        );
        return "Query".into();
    };
    let mut lines = detail_lines(q, theme);
    if q.compact {
        lines.insert(
            0,
            Line::styled(
                format!(
                    "(only its compact form is kept: parameters, notices and error fields \
                     are kept for the last {} statements)",
                    app.header.limits.queries
                ),
                theme.warn(),
            ),
        );
    }
    let scroll = app.detail_scroll.min(lines.len().saturating_sub(1));
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((scroll.min(u16::MAX as usize) as u16, 0));
    f.render_widget(p, area);
    format!(
        "Query #{} of session #{} │ ↑↓ scroll │ t: timeline at it │ F: follow │ Esc: back",
        q.seq + 1,
        q.rec.conn_id
    )
}

/// What the statistics cover, for the titles of Top and Errors.
fn stats_scope(app: &App) -> String {
    let mut s = String::new();
    if !app.filter.is_empty() || app.follow.is_some() {
        s.push_str(", filtered over the kept statements");
    }
    if let Some(c) = app.follow {
        s.push_str(&format!(" of session #{c}"));
    }
    if app.stats_pending() > 0 {
        s.push_str(&format!(" ({} still to look at)", app.stats_pending()));
    }
    s
}

fn draw_top(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
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
                sort_mark(app.top.nav.desc)
            } else {
                ""
            };
            Cell::from(format!("{}{mark}", c.name()))
        })
        .collect();
    header.push(Cell::from("statement"));
    let mut widths: Vec<Constraint> = shown.iter().map(|_| Constraint::Length(8)).collect();
    widths.push(Constraint::Fill(1));
    let rows = &app.top.rows;
    table(
        f,
        area,
        theme,
        header,
        widths,
        Scroll {
            len: rows.len(),
            nav: app.top.nav,
        },
        |i| {
            let r = &rows[i];
            let mut cells: Vec<Cell> = shown.iter().map(|&c| Cell::from(r.cell(c))).collect();
            cells.push(Cell::from(esc(&r.text)));
            let row = Row::new(cells);
            Some(if r.errors > 0 {
                row.style(theme.warn())
            } else {
                row
            })
        },
    );
    format!(
        "Top queries: {} fingerprints{} │ sort {} {} (←→ r) │ Enter: latest call",
        rows.len(),
        stats_scope(app),
        sort.name(),
        sort_mark(app.top.nav.desc)
    )
}

fn draw_errors(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
    let rows = &app.errors.rows;
    fixed_table(
        f,
        area,
        theme,
        &[
            ("count", 7),
            ("sqlstate", 8),
            ("last seen", 15),
            ("message", 0),
        ],
        Scroll {
            len: rows.len(),
            nav: app.errors.nav,
        },
        |i| {
            let g = &rows[i];
            let mut t = String::new();
            time_of_day(g.last_ns, &mut t);
            Some(Row::new(vec![
                Cell::from(g.count.to_string()),
                Cell::from(esc(&g.code)).style(theme.bad()),
                Cell::from(t),
                Cell::from(esc(&g.message)),
            ]))
        },
    );
    format!(
        "Errors: {} groups by SQLSTATE and message{} │ Enter: failing statement",
        rows.len(),
        stats_scope(app)
    )
}

fn draw_anomalies(f: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) -> String {
    let rows = &app.anomalies.rows;
    fixed_table(
        f,
        area,
        theme,
        &[("time", 15), ("#", 4), ("kind", 16), ("what happened", 0)],
        Scroll {
            len: rows.len(),
            nav: app.anomalies.nav,
        },
        |i| {
            let a = &rows[i];
            let mut t = String::new();
            time_of_day(a.ts, &mut t);
            Some(Row::new(vec![
                Cell::from(t),
                Cell::from(a.conn.map_or("-".into(), |c| c.to_string())),
                Cell::from(a.kind.as_str()).style(theme.warn()),
                // Escaped when it was recorded.
                Cell::from(a.message.clone()),
            ]))
        },
    );
    format!(
        "Anomalies: {} of {} kept (the last {}), newest first │ Enter: timeline at it",
        rows.len(),
        app.header.health.anomalies,
        app.header.limits.anomalies
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
