//! The UI state: which view, what is selected, sorted and filtered, and the copies of
//! shared data the views draw. Key handling is pure; data arrives through [`App::refresh`],
//! which the caller runs under the shared lock. No terminal needed, so all of it is
//! unit-tested.

use super::rows::{SessCol, SessionRow, TopCol, TopRow, top_rows};
use super::state::{
    AnomalyLine, Bucket, ErrorGroup, Health, Limits, MsgLine, QueryEntry, SessionEntry, State,
    Stmt, add_error, pad_rates,
};
use crate::filter::{self, Filter};
use crate::output::summary::{StmtStats, add_statement};
use crate::session::record::{Outcome, QueryRecord};
use crate::session::sql::FingerprintCache;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering as AtOrd;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    Sessions,
    Timeline,
    Queries,
    Detail,
    Top,
    Errors,
    Anomalies,
}

impl View {
    pub(crate) const ALL: [View; 7] = [
        View::Sessions,
        View::Timeline,
        View::Queries,
        View::Detail,
        View::Top,
        View::Errors,
        View::Anomalies,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            View::Sessions => "Sessions",
            View::Timeline => "Timeline",
            View::Queries => "Queries",
            View::Detail => "Query",
            View::Top => "Top",
            View::Errors => "Errors",
            View::Anomalies => "Anomalies",
        }
    }

    pub(crate) fn key(self) -> char {
        match self {
            View::Sessions => '1',
            View::Timeline => '2',
            View::Queries => '3',
            View::Detail => '4',
            View::Top => '5',
            View::Errors => '6',
            View::Anomalies => '7',
        }
    }

    /// Lines for the `?` popup: the keys of this view.
    pub(crate) fn help(self) -> &'static [(&'static str, &'static str)] {
        match self {
            View::Sessions => &[
                ("↑↓ PgUp PgDn g G", "move"),
                ("Enter", "timeline of the session"),
                ("← →", "sort column (running: longest running statement)"),
                ("r", "reverse sort"),
            ],
            View::Timeline => &[
                ("↑↓ PgUp PgDn g", "scroll (stops following)"),
                ("End G", "follow the tail"),
                ("Enter", "statement of the message"),
                ("/", "search; n N next/previous"),
                ("Esc", "back to sessions"),
            ],
            View::Queries => &[
                ("↑↓ PgUp PgDn g G", "move"),
                ("← →", "sort: start time, duration, rows"),
                ("r", "reverse sort"),
                ("Enter", "statement detail (running: its timeline)"),
                ("", "running statements come first, longest running on top"),
            ],
            View::Detail => &[
                ("↑↓ PgUp PgDn g G", "scroll"),
                ("t", "its session's timeline, at the statement"),
                ("F", "follow its session"),
                ("Esc", "back"),
            ],
            View::Top => &[
                ("↑↓ PgUp PgDn g G", "move"),
                ("← →", "sort column"),
                ("r", "reverse sort"),
                ("Enter", "latest call"),
            ],
            View::Errors => &[("↑↓ PgUp PgDn g G", "move"), ("Enter", "failing statement")],
            View::Anomalies => &[
                ("↑↓ PgUp PgDn g G", "move"),
                ("Enter", "its session's timeline, at the anomaly"),
            ],
        }
    }
}

pub(crate) const GLOBAL_HELP: &[(&str, &str)] = &[
    ("1-7 Tab", "views (the tabs above)"),
    ("f", "filter: user= db= app= sqlstate= (= != ~regex !~)"),
    ("", "client=10.0.0.0/8 server=[::1]:5432 duration>10ms"),
    ("", "rows>N text~'a b' failed; and or not ( ) (docs/cli.md)"),
    ("F", "follow one session / stop following"),
    ("p Space", "pause the view (capture goes on)"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
];

/// Where one table is: selected row, first visible row, sort column and direction.
/// The app keeps it (drawing only reads it), so scrolling moves as little as possible.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Nav {
    pub(crate) selected: usize,
    pub(crate) offset: usize,
    pub(crate) sort: usize,
    pub(crate) desc: bool,
}

impl Nav {
    fn sorted(sort: usize, desc: bool) -> Self {
        Nav {
            sort,
            desc,
            ..Nav::default()
        }
    }

    fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// Moves the selection by a key; returns whether the key was a movement.
    fn movement(&mut self, k: KeyCode, len: usize, page: usize) -> bool {
        let last = len.saturating_sub(1);
        let sel = self.selected;
        self.selected = match k {
            KeyCode::Up | KeyCode::Char('k') => sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => (sel + 1).min(last),
            KeyCode::PageUp => sel.saturating_sub(page),
            KeyCode::PageDown => (sel + page).min(last),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => last,
            _ => return false,
        };
        true
    }

    /// Left/Right pick the sort column, `r` reverses; returns whether it was one of them.
    fn sort_key(&mut self, k: KeyCode, ncols: usize) -> bool {
        match k {
            KeyCode::Left | KeyCode::Char('<') => self.sort = (self.sort + ncols - 1) % ncols,
            KeyCode::Right | KeyCode::Char('>') => self.sort = (self.sort + 1) % ncols,
            KeyCode::Char('r') => self.desc = !self.desc,
            _ => return false,
        }
        true
    }

    /// First visible row so that the selection shows in `height` rows.
    fn scroll(&mut self, len: usize, height: usize) {
        self.clamp(len);
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
    }
}

/// One table view: its rows (copies of the shared state) and where it is.
#[derive(Clone, Debug)]
pub struct TableView<R> {
    /// The rows, in display order.
    pub rows: Vec<R>,
    pub(crate) nav: Nav,
}

impl<R> TableView<R> {
    fn new(nav: Nav) -> Self {
        TableView {
            rows: Vec::new(),
            nav,
        }
    }

    pub(crate) fn selected(&self) -> Option<&R> {
        self.rows.get(self.nav.selected)
    }

    /// Sorts the rows and keeps the selection on the row with id `keep`.
    fn resort<K: PartialEq>(
        &mut self,
        keep: Option<K>,
        id: impl Fn(&R) -> K,
        cmp: impl Fn(&R, &R) -> Ordering,
    ) {
        self.rows.sort_by(cmp);
        if let Some(k) = keep {
            self.nav.selected = self.rows.iter().position(|r| id(r) == k).unwrap_or(0);
        }
        self.nav.clamp(self.rows.len());
    }
}

/// A line being typed in the footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) kind: InputKind,
    pub(crate) text: String,
    /// Live validation of a filter.
    pub(crate) error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputKind {
    Filter,
    Search,
}

/// The session shown in the timeline.
#[derive(Clone, Debug)]
pub(crate) struct Timeline {
    pub(crate) conn: Option<u64>,
    pub(crate) title: String,
    pub(crate) lines: TableView<MsgLine>,
    pub(crate) dropped: u64,
    /// Sticks to the newest line; scrolling up stops it.
    pub(crate) follow: bool,
    pub(crate) search: String,
    /// Land on the first line at or after this time at the next refresh (a statement's start).
    goto: Option<i64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            conn: None,
            title: String::new(),
            lines: TableView::new(Nav::default()),
            dropped: 0,
            follow: true,
            search: String::new(),
            goto: None,
        }
    }
}

impl Timeline {
    pub(crate) fn matches(&self, l: &MsgLine) -> bool {
        !self.search.is_empty()
            && (contains_ci(l.name, &self.search) || contains_ci(&l.summary, &self.search))
    }

    fn find(&mut self, forward: bool) -> bool {
        let n = self.lines.rows.len();
        let sel = self.lines.nav.selected;
        for step in 1..=n {
            let i = if forward {
                (sel + step) % n
            } else {
                (sel + n - step) % n
            };
            if self.matches(&self.lines.rows[i]) {
                self.lines.nav.selected = i;
                self.follow = false;
                return true;
            }
        }
        false
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// Header figures, refreshed even while paused.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeaderInfo {
    pub(crate) source: String,
    pub(crate) progress: Option<(u64, u64)>,
    pub(crate) bytes_read: u64,
    pub(crate) rates: Vec<Bucket>,
    pub(crate) health: Health,
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) sessions: usize,
    pub(crate) open_sessions: usize,
    pub(crate) running: usize,
    pub(crate) finished: bool,
    pub(crate) dropped_packets: u64,
    pub(crate) fatal: Option<String>,
    /// "Now" for elapsed times: the wall clock of a live capture, else the latest
    /// capture time.
    pub(crate) now_ns: i64,
    pub(crate) limits: Limits,
}

/// Work that needs the shared state, done at the next refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Open {
    /// A statement by sequence number (queries, errors).
    Seq(u64),
    /// The statement of a connection around a time (timeline).
    At { conn: u64, ts: i64 },
    /// The latest call of a fingerprint (top queries).
    Latest(String),
}

/// Columns the Queries view sorts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QCol {
    Start,
    Duration,
    Rows,
}

impl QCol {
    pub(crate) const ALL: [QCol; 3] = [QCol::Start, QCol::Duration, QCol::Rows];

    fn key(self, s: &Stmt) -> (i64, u64) {
        let v = match self {
            QCol::Start => s.start_ns,
            QCol::Duration => s.duration_ns(),
            QCol::Rows => s.rows.min(i64::MAX as u64) as i64,
        };
        (v, s.seq)
    }
}

/// One visible row of the Queries view: a running statement (`seq` none) or a
/// finished one, copied for drawing.
#[derive(Clone, Debug)]
pub(crate) struct QRow {
    pub(crate) seq: Option<u64>,
    pub(crate) conn: u64,
    pub(crate) user: Option<String>,
    pub(crate) start_ns: i64,
    /// Elapsed so far for a running statement.
    pub(crate) duration_ns: i64,
    pub(crate) rows: u64,
    /// `None` while running.
    pub(crate) outcome: Option<Outcome>,
    pub(crate) code: Option<String>,
    pub(crate) text: Option<Arc<str>>,
    /// What a running statement waits on.
    pub(crate) wait: Option<&'static str>,
}

/// Statements that pass the filter (and the followed session), over the whole kept
/// capture, found incrementally: each refresh looks only at statements it has not
/// seen, a bounded number at a time, so a new filter never holds the lock for long.
#[derive(Default)]
pub(crate) struct Matched {
    /// Next sequence number to look at.
    next: u64,
    /// Matching statements in the view's order (ascending by its key).
    pub(crate) order: Vec<u64>,
    /// Sessions with a matching statement.
    conns: HashSet<u64>,
    /// Statistics of the matching statements (with a filter only).
    stmts: HashMap<String, StmtStats>,
    errors: HashMap<(String, String), ErrorGroup>,
    fingerprints: FingerprintCache,
    rng: u64,
    /// Statements not yet looked at.
    pub(crate) pending: u64,
    /// Oldest kept seq seen, to forget statements dropped from the state.
    first: u64,
}

/// Statements looked at per refresh.
const MATCH_CHUNK: usize = 200_000;

/// The Queries view: running statements first, then the matching finished ones.
#[derive(Default)]
pub(crate) struct QueriesView {
    pub(crate) nav: Nav,
    /// Connections running a statement, longest running first.
    pub(crate) running: Vec<u64>,
    pub(crate) matched: Matched,
    /// The rows in view (from `nav.offset`), copied for drawing.
    pub(crate) visible: Vec<QRow>,
    /// The row to select again after the order changed.
    keep: Option<Result<u64, u64>>,
}

impl QueriesView {
    pub(crate) fn len(&self) -> usize {
        self.running.len() + self.matched.order.len()
    }

    /// The statement at row `i`: a running connection or a finished seq.
    fn at(&self, i: usize) -> Option<Result<u64, u64>> {
        if i < self.running.len() {
            return Some(Err(self.running[i]));
        }
        let o = &self.matched.order;
        let j = i - self.running.len();
        (j < o.len()).then(|| {
            Ok(if self.nav.desc {
                o[o.len() - 1 - j]
            } else {
                o[j]
            })
        })
    }

    fn position(&self, id: Result<u64, u64>) -> Option<usize> {
        match id {
            Err(conn) => self.running.iter().position(|c| *c == conn),
            Ok(seq) => {
                let o = &self.matched.order;
                let j = o.iter().position(|s| *s == seq)?;
                Some(self.running.len() + if self.nav.desc { o.len() - 1 - j } else { j })
            }
        }
    }

    pub(crate) fn col(&self) -> QCol {
        QCol::ALL[self.nav.sort % QCol::ALL.len()]
    }
}

/// The TUI's view state: which view, selections, scroll offsets, filter.
pub struct App {
    pub(crate) view: View,
    back: Vec<View>,
    pub(crate) paused: bool,
    pub(crate) help: bool,
    pub(crate) quit: bool,
    pub(crate) filter: Filter,
    /// `F`: only this connection's statements (Queries, Top, Errors) and timeline.
    pub(crate) follow: Option<u64>,
    pub(crate) input: Option<Input>,
    /// A one-line notice in the footer (e.g. "statement no longer kept").
    pub(crate) status: Option<String>,
    pub(crate) header: HeaderInfo,
    pub(crate) sessions: TableView<SessionRow>,
    pub(crate) timeline: Timeline,
    pub(crate) queries: QueriesView,
    pub(crate) detail: Option<Arc<QueryEntry>>,
    pub(crate) detail_scroll: usize,
    detail_len: usize,
    /// The top-statements table.
    pub top: TableView<TopRow>,
    /// The top/errors tables are costly (percentiles): rebuilt at most this often.
    top_built: Option<Instant>,
    /// The state's version they were built from.
    top_version: u64,
    /// What the last refresh copied from (see [`App::outdated`]).
    seen: Option<Seen>,
    pub(crate) errors: TableView<ErrorGroup>,
    pub(crate) anomalies: TableView<AnomalyLine>,
    request: Option<Open>,
    /// Data must be refreshed at the next opportunity, even while paused.
    force: bool,
    /// Table rows that fit on the screen, from [`App::resize`].
    pub(crate) page: usize,
}

pub(crate) const STATS_REFRESH: Duration = Duration::from_secs(1);

/// What a refresh copies from: when none of it moved, a refresh would copy the same
/// rows and a frame draw the same screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    version: u64,
    bytes_read: u64,
    fatal: bool,
    /// Live and capturing: the wall clock's second, since the header's rates and
    /// running statements' elapsed times move with it.
    second: Option<i64>,
}

impl Seen {
    fn of(st: &State, wall_ns: i64) -> Seen {
        Seen {
            version: st.version,
            bytes_read: st.input_read.load(AtOrd::Relaxed),
            fatal: st.fatal.is_some(),
            second: (st.live && st.finished.is_none()).then(|| wall_ns.div_euclid(1_000_000_000)),
        }
    }
}

/// The wall clock, in nanoseconds since the epoch.
pub(crate) fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Lines around a table: header (2), tabs, title, footer, the table's header row.
const CHROME_ROWS: u16 = 6;

impl App {
    /// Starts on the sessions view, showing what `filter` lets through.
    pub fn new(filter: Filter) -> Self {
        App {
            view: View::Sessions,
            back: Vec::new(),
            paused: false,
            help: false,
            quit: false,
            filter,
            follow: None,
            input: None,
            status: None,
            header: HeaderInfo::default(),
            sessions: TableView::new(Nav::default()),
            timeline: Timeline::default(),
            queries: QueriesView {
                nav: Nav::sorted(0, true),
                ..QueriesView::default()
            },
            detail: None,
            detail_scroll: 0,
            detail_len: 0,
            top: TableView::new(Nav::sorted(1, true)),
            top_built: None,
            top_version: 0,
            seen: None,
            errors: TableView::new(Nav::default()),
            anomalies: TableView::new(Nav::sorted(0, true)),
            request: None,
            force: true,
            page: 10,
        }
    }

    /// The screen's size, before a refresh: how many rows a page has.
    pub(crate) fn resize(&mut self, height: u16) {
        self.page = height.saturating_sub(CHROME_ROWS).max(1) as usize;
        self.scroll();
    }

    /// Brings the current view's selection into view.
    fn scroll(&mut self) {
        let page = self.page;
        match self.view {
            View::Sessions => self.sessions.nav.scroll(self.sessions.rows.len(), page),
            View::Timeline => {
                let l = &mut self.timeline.lines;
                l.nav.scroll(l.rows.len(), page)
            }
            View::Queries => {
                let len = self.queries.len();
                self.queries.nav.scroll(len, page)
            }
            View::Detail => {
                self.detail_scroll = self.detail_scroll.min(self.detail_len.saturating_sub(1))
            }
            View::Top => self.top.nav.scroll(self.top.rows.len(), page),
            View::Errors => self.errors.nav.scroll(self.errors.rows.len(), page),
            View::Anomalies => self.anomalies.nav.scroll(self.anomalies.rows.len(), page),
        }
    }

    fn go(&mut self, v: View) {
        if v != self.view {
            self.back.push(self.view);
            self.back.truncate(16);
            self.view = v;
        }
        self.force = true;
    }

    fn go_back(&mut self) {
        let v = self.back.pop().unwrap_or(View::Sessions);
        self.view = v;
        self.force = true;
    }

    /// Handles one key press.
    pub fn on_key(&mut self, k: KeyEvent) {
        self.on_key_inner(k);
        self.scroll();
    }

    fn on_key_inner(&mut self, k: KeyEvent) {
        self.status = None;
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.input.is_some() {
            self.on_input_key(k);
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.paused = !self.paused;
                self.force = true;
            }
            KeyCode::Char('f') => {
                let text = self.filter.source().to_string();
                self.input = Some(Input {
                    kind: InputKind::Filter,
                    text,
                    error: None,
                });
            }
            KeyCode::Char('F') => self.toggle_follow(),
            KeyCode::Char(c @ '1'..='7') => {
                let v = View::ALL[(c as u8 - b'1') as usize];
                self.go(v);
            }
            KeyCode::Tab | KeyCode::BackTab => {
                let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
                let n = View::ALL.len();
                let j = if k.code == KeyCode::Tab {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.go(View::ALL[j]);
            }
            KeyCode::Esc => self.go_back(),
            _ => self.on_view_key(k),
        }
    }

    /// `F`: follows the session under the cursor (Sessions, Timeline, the detail's
    /// session), or stops following.
    fn toggle_follow(&mut self) {
        if self.follow.take().is_some() {
            self.status = Some("following stopped: all sessions".into());
        } else {
            let conn = match self.view {
                View::Sessions => self.sessions.selected().map(|r| r.conn),
                View::Timeline => self.timeline.conn,
                View::Detail => self.detail.as_ref().map(|q| q.rec.conn_id),
                View::Queries => self.queries.visible_selected().map(|r| r.conn),
                _ => None,
            };
            let Some(conn) = conn else {
                self.status = Some("F follows a session: select one first".into());
                return;
            };
            self.follow = Some(conn);
            self.status = Some(format!(
                "following session #{conn}: Queries, Top, Errors and its timeline (F stops)"
            ));
            self.open_timeline(conn, None);
            self.view = View::Queries;
        }
        self.reset_matches();
    }

    fn reset_matches(&mut self) {
        self.queries.matched = Matched::default();
        self.queries.nav.selected = 0;
        self.top_built = None;
        self.force = true;
    }

    fn on_input_key(&mut self, k: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.input = None,
            KeyCode::Enter => {
                let input = self.input.take().expect("checked above");
                match input.kind {
                    InputKind::Filter => match filter::parse(&input.text) {
                        Ok(f) => {
                            self.filter = f;
                            self.reset_matches();
                        }
                        Err(e) => {
                            // Keep the line open so the user can fix it.
                            self.input = Some(Input {
                                error: Some(e.to_string()),
                                ..input
                            });
                        }
                    },
                    InputKind::Search => {
                        self.timeline.search = input.text;
                        if !self.timeline.search.is_empty() && !self.timeline.find(true) {
                            self.status = Some("no match".into());
                        }
                    }
                }
                return;
            }
            KeyCode::Backspace => {
                input.text.pop();
            }
            KeyCode::Char(c) => input.text.push(c),
            _ => return,
        }
        if let Some(i) = self.input.as_mut().filter(|i| i.kind == InputKind::Filter) {
            i.error = filter::parse(&i.text).err().map(|e| e.to_string());
        }
    }

    fn on_view_key(&mut self, k: KeyEvent) {
        let page = self.page.max(1);
        match self.view {
            View::Sessions => {
                let t = &mut self.sessions;
                if t.nav.movement(k.code, t.rows.len(), page) {
                    return;
                }
                if t.nav.sort_key(k.code, SessCol::ALL.len()) {
                    self.sort_sessions(self.selected_conn());
                } else if k.code == KeyCode::Enter
                    && let Some(r) = self.sessions.selected()
                {
                    self.open_timeline(r.conn, None);
                }
            }
            View::Timeline => {
                let tl = &mut self.timeline;
                let len = tl.lines.rows.len();
                match k.code {
                    KeyCode::End | KeyCode::Char('G') => {
                        tl.follow = true;
                        tl.lines.nav.selected = len.saturating_sub(1);
                    }
                    KeyCode::Char('/') => {
                        self.input = Some(Input {
                            kind: InputKind::Search,
                            text: String::new(),
                            error: None,
                        })
                    }
                    KeyCode::Char(c @ ('n' | 'N')) => {
                        if !tl.find(c == 'n') {
                            self.status = Some("no match".into());
                        }
                    }
                    KeyCode::Enter => {
                        if let (Some(conn), Some(l)) = (tl.conn, tl.lines.selected()) {
                            self.request = Some(Open::At { conn, ts: l.ts });
                            self.force = true;
                        }
                    }
                    code => {
                        if tl.lines.nav.movement(code, len, page) {
                            tl.follow = tl.follow && tl.lines.nav.selected + 1 >= len;
                        }
                    }
                }
            }
            View::Queries => {
                let len = self.queries.len();
                if self.queries.nav.movement(k.code, len, page) {
                    // The rows now in view are copied at the next refresh.
                    self.force = true;
                    return;
                }
                let keep = self.queries.visible_selected().map(QRow::id);
                if self.queries.nav.sort_key(k.code, QCol::ALL.len()) {
                    // Ordered by the new key from the next refresh on.
                    self.reset_matches();
                    self.queries.keep = keep;
                } else if k.code == KeyCode::Enter
                    && let Some(r) = self.queries.visible_selected()
                {
                    match r.seq {
                        Some(seq) => self.request = Some(Open::Seq(seq)),
                        // Still running: its session's timeline shows it as it goes.
                        None => {
                            let (conn, ts) = (r.conn, r.start_ns);
                            self.open_timeline(conn, Some(ts));
                        }
                    }
                    self.force = true;
                }
            }
            View::Detail => {
                if k.code == KeyCode::Char('t')
                    && let Some(q) = &self.detail
                {
                    let (conn, ts) = (q.rec.conn_id, q.rec.start_ns);
                    self.open_timeline(conn, Some(ts));
                    return;
                }
                let mut nav = Nav {
                    selected: self.detail_scroll,
                    ..Nav::default()
                };
                nav.movement(k.code, self.detail_len, page);
                self.detail_scroll = nav.selected;
            }
            View::Top => {
                let t = &mut self.top;
                if t.nav.movement(k.code, t.rows.len(), page) {
                    return;
                }
                if t.nav.sort_key(k.code, TopCol::ALL.len()) {
                    self.sort_top(self.selected_fingerprint());
                } else if k.code == KeyCode::Enter
                    && let Some(r) = self.top.selected()
                {
                    self.request = Some(Open::Latest(r.fingerprint.clone()));
                    self.force = true;
                }
            }
            View::Errors => {
                let t = &mut self.errors;
                if t.nav.movement(k.code, t.rows.len(), page) {
                    return;
                }
                if k.code == KeyCode::Enter
                    && let Some(g) = self.errors.selected()
                {
                    self.request = Some(Open::Seq(g.last_seq));
                    self.force = true;
                }
            }
            View::Anomalies => {
                let t = &mut self.anomalies;
                if t.nav.movement(k.code, t.rows.len(), page) {
                    return;
                }
                if k.code == KeyCode::Enter
                    && let Some(a) = self.anomalies.selected()
                {
                    match a.conn {
                        Some(conn) => {
                            let ts = a.ts;
                            self.open_timeline(conn, Some(ts));
                        }
                        None => self.status = Some("a run-level anomaly: no session".into()),
                    }
                }
            }
        }
    }

    /// Opens a session's timeline, at the line of time `at` (a statement's start) or
    /// following its tail.
    fn open_timeline(&mut self, conn: u64, at: Option<i64>) {
        if self.timeline.conn != Some(conn) {
            self.timeline = Timeline {
                conn: Some(conn),
                ..Timeline::default()
            };
        }
        if at.is_some() {
            self.timeline.follow = false;
            self.timeline.goto = at;
        }
        self.go(View::Timeline);
    }

    pub(crate) fn sess_col(&self) -> SessCol {
        SessCol::ALL[self.sessions.nav.sort % SessCol::ALL.len()]
    }

    pub(crate) fn top_col(&self) -> TopCol {
        TopCol::ALL[self.top.nav.sort % TopCol::ALL.len()]
    }

    fn sort_sessions(&mut self, keep: Option<u64>) {
        let (col, desc) = (self.sess_col(), self.sessions.nav.desc);
        self.sessions.resort(
            keep,
            |r| r.conn,
            |a, b| {
                let o = a.cmp_by(b, col).then(a.conn.cmp(&b.conn));
                if desc { o.reverse() } else { o }
            },
        );
    }

    fn sort_top(&mut self, keep: Option<String>) {
        let (col, desc) = (self.top_col(), self.top.nav.desc);
        self.top.resort(
            keep,
            |r| r.fingerprint.clone(),
            |a, b| {
                let o = a
                    .value(col)
                    .total_cmp(&b.value(col))
                    .then_with(|| a.fingerprint.cmp(&b.fingerprint));
                if desc { o.reverse() } else { o }
            },
        );
    }

    fn selected_conn(&self) -> Option<u64> {
        self.sessions.selected().map(|r| r.conn)
    }

    fn selected_fingerprint(&self) -> Option<String> {
        self.top.selected().map(|r| r.fingerprint.clone())
    }

    /// Copies what the current view needs from the shared state. Runs under the lock,
    /// so it only copies, filters and sorts. While paused only the header moves.
    pub fn refresh(&mut self, st: &State, now: Instant) {
        self.refresh_at(st, now, wall_ns());
    }

    /// Whether a refresh would show anything new: the state changed since the last
    /// one, a key asked for data, the wall clock ticked a second on a live capture,
    /// or work was left for later (statements not yet matched against the filter, top
    /// tables built before the last change). When not, the UI neither copies nor draws.
    pub(crate) fn outdated(&self, st: &State, wall_ns: i64) -> bool {
        self.force
            || self.request.is_some()
            || self.seen != Some(Seen::of(st, wall_ns))
            || (!self.paused && self.unfinished(st))
    }

    /// The current view left work for a later refresh.
    fn unfinished(&self, st: &State) -> bool {
        match self.view {
            View::Sessions | View::Queries => self.queries.matched.pending > 0,
            View::Top | View::Errors => {
                self.queries.matched.pending > 0 || self.top_version != st.version
            }
            View::Timeline | View::Detail | View::Anomalies => false,
        }
    }

    /// [`App::refresh`] with the wall clock given: live "now" for elapsed times.
    pub(crate) fn refresh_at(&mut self, st: &State, now: Instant, wall_ns: i64) {
        self.seen = Some(Seen::of(st, wall_ns));
        self.refresh_header(st, wall_ns);
        if let Some(r) = self.request.take() {
            self.serve(r, st);
        }
        if !self.paused || self.force {
            let forced = std::mem::take(&mut self.force);
            match self.view {
                View::Sessions => self.refresh_sessions(st),
                View::Timeline => self.refresh_timeline(st),
                View::Queries => self.refresh_queries(st),
                View::Detail => {}
                View::Top | View::Errors => {
                    let stale = self
                        .top_built
                        .is_none_or(|t| now.duration_since(t) >= STATS_REFRESH);
                    if forced || stale {
                        self.top_built = Some(now);
                        self.top_version = st.version;
                        self.refresh_stats(st);
                    }
                }
                View::Anomalies => {
                    let keep = self.anomalies.nav.selected;
                    self.anomalies.rows = st.anomalies.iter().rev().cloned().collect();
                    self.anomalies.nav.selected = keep;
                }
            }
        }
        self.scroll();
        if self.view == View::Queries {
            self.copy_visible(st);
        }
    }

    fn refresh_header(&mut self, st: &State, wall_ns: i64) {
        let read = st.input_read.load(AtOrd::Relaxed);
        let h = &mut self.header;
        h.source.clone_from(&st.source);
        h.bytes_read = read;
        h.progress = st.input_size.map(|t| (read.min(t), t));
        h.rates.clear();
        h.rates.extend(st.rates.iter().copied());
        h.now_ns = st.last_ts;
        if st.live && st.finished.is_none() {
            pad_rates(&mut h.rates, wall_ns.div_euclid(1_000_000_000));
            h.now_ns = h.now_ns.max(wall_ns);
        }
        h.health.clone_from(&st.health);
        h.queries = st.total_queries;
        h.errors = st.total_errors;
        h.sessions = st.sessions.len();
        h.open_sessions = st.sessions.values().filter(|s| !s.closed).count();
        h.running = st.sessions.values().filter(|s| s.running.is_some()).count();
        h.finished = st.finished.is_some();
        h.dropped_packets = st
            .finished
            .as_ref()
            .map_or(st.health.dropped_packets, |r| r.dropped);
        h.fatal.clone_from(&st.fatal);
        h.limits = st.limits;
    }

    fn refresh_sessions(&mut self, st: &State) {
        self.update_matches(st);
        let keep = self.selected_conn();
        let with_match = (self.filter.has_query_terms()).then_some(&self.queries.matched.conns);
        let now = self.header.now_ns;
        self.sessions.rows = st
            .sessions
            .values()
            .filter(|e| {
                self.filter.matches(*e) && with_match.is_none_or(|m| m.contains(&e.meta.id))
            })
            .map(|e| SessionRow::from_entry(e, now))
            .collect();
        self.sort_sessions(keep);
    }

    /// Looks at the statements not yet seen (a bounded number) and adds those that
    /// match to the Queries order, the sessions with a match and the filtered stats.
    fn update_matches(&mut self, st: &State) {
        let col = self.queries.col();
        let stats = !self.filter.is_empty() || self.follow.is_some();
        let m = &mut self.queries.matched;
        // Statements dropped from the state are forgotten here too.
        if let Some(first) = st.stmts_all.front().map(|s| s.seq)
            && first > m.first
        {
            m.first = first;
            m.order.retain(|s| *s >= first);
            m.next = m.next.max(first);
        }
        let first = st.stmts_all.front().map_or(0, |s| s.seq);
        let start = m.next.saturating_sub(first) as usize;
        let mut new: Vec<(i64, u64)> = Vec::new();
        let mut seen = 0;
        for s in st
            .stmts_all
            .range(start.min(st.stmts_all.len())..)
            .take(MATCH_CHUNK)
        {
            seen += 1;
            if !(self.follow.is_none_or(|c| c == s.conn) && self.filter.matches(s)) {
                continue;
            }
            new.push(col.key(s));
            m.conns.insert(s.conn);
            if stats && s.counted {
                add_statement(
                    &mut m.stmts,
                    &mut m.fingerprints,
                    &compact_record(s),
                    &mut m.rng,
                    st.limits.samples_per_statement,
                );
                add_error(&mut m.errors, s, st.limits.error_groups);
            }
        }
        m.next = m.next.max(first) + seen as u64;
        m.pending = st
            .stmts_all
            .back()
            .map_or(0, |l| (l.seq + 1).saturating_sub(m.next));
        if new.is_empty() {
            return;
        }
        new.sort_unstable();
        let key = |seq: u64| st.stmt_by_seq(seq).map_or((i64::MIN, seq), |s| col.key(s));
        // New statements mostly sort after the others (times grow): append then.
        if m.order.last().is_none_or(|&l| key(l) <= new[0]) {
            m.order.extend(new.iter().map(|k| k.1));
        } else {
            let old = std::mem::take(&mut m.order);
            let mut merged = Vec::with_capacity(old.len() + new.len());
            let (mut i, mut j) = (0, 0);
            while i < old.len() || j < new.len() {
                if j >= new.len() || (i < old.len() && key(old[i]) <= new[j]) {
                    merged.push(old[i]);
                    i += 1;
                } else {
                    merged.push(new[j].1);
                    j += 1;
                }
            }
            m.order = merged;
        }
    }

    fn refresh_queries(&mut self, st: &State) {
        let keep = self
            .queries
            .keep
            .take()
            .or_else(|| self.queries.visible_selected().map(QRow::id));
        self.update_matches(st);
        // Running statements of the shown sessions, longest running first.
        let mut running: Vec<(i64, u64)> = st
            .sessions
            .values()
            .filter(|e| self.follow.is_none_or(|c| c == e.meta.id))
            .filter_map(|e| Some((e.running.as_ref()?.start_ns, e.meta.id)))
            .filter(|&(_, conn)| {
                let e = &st.sessions[&conn];
                self.filter.matches(&running_stmt(e, self.header.now_ns))
            })
            .collect();
        running.sort_unstable();
        self.queries.running = running.into_iter().map(|r| r.1).collect();
        if let Some(id) = keep
            && let Some(i) = self.queries.position(id)
        {
            self.queries.nav.selected = i;
        }
    }

    /// Copies the rows in view of the Queries table.
    fn copy_visible(&mut self, st: &State) {
        let q = &mut self.queries;
        let now = self.header.now_ns;
        let end = (q.nav.offset + self.page).min(q.len());
        q.visible = (q.nav.offset..end)
            .filter_map(|i| match q.at(i)? {
                Err(conn) => {
                    let e = st.sessions.get(&conn)?;
                    let r = e.running.as_ref()?;
                    Some(QRow {
                        seq: None,
                        conn,
                        user: e.rec.user.clone(),
                        start_ns: r.start_ns,
                        duration_ns: now.saturating_sub(r.start_ns).max(0),
                        rows: 0,
                        outcome: None,
                        code: None,
                        text: r.text.clone(),
                        wait: Some(r.wait),
                    })
                }
                Ok(seq) => {
                    let s = st.stmt_by_seq(seq)?;
                    Some(QRow {
                        seq: Some(seq),
                        conn: s.conn,
                        user: s.who.user.clone(),
                        start_ns: s.start_ns,
                        duration_ns: s.duration_ns(),
                        rows: s.rows,
                        outcome: Some(s.outcome),
                        code: s.error.as_ref().map(|e| e.code.clone()),
                        text: s.text.clone(),
                        wait: None,
                    })
                }
            })
            .collect();
    }

    fn refresh_timeline(&mut self, st: &State) {
        let tl = &mut self.timeline;
        let Some(e) = tl.conn.and_then(|c| st.sessions.get(&c)) else {
            tl.title = match tl.conn {
                Some(c) => format!("#{c} (no longer kept)"),
                None => "no session selected: pick one in Sessions (1) with Enter".into(),
            };
            return;
        };
        let r = &e.rec;
        tl.title = format!(
            "#{} {} user={} db={} {}:{}",
            e.meta.id,
            e.state(),
            r.user.as_deref().unwrap_or("?"),
            r.database.as_deref().unwrap_or("?"),
            e.meta.client.0,
            e.meta.client.1,
        );
        let lines = &mut tl.lines;
        // Lines only ever get appended (or dropped at the front), so the copy is
        // redone only when the count moved.
        let total = e.messages_dropped + e.messages.len() as u64;
        if total != tl.dropped + lines.rows.len() as u64 {
            let shift = e.messages_dropped.saturating_sub(tl.dropped) as usize;
            lines.rows.clear();
            lines.rows.extend(e.messages.iter().cloned());
            tl.dropped = e.messages_dropped;
            lines.nav.selected = lines.nav.selected.saturating_sub(shift);
        }
        if let Some(ts) = tl.goto.take() {
            // The statement's first line: the first at or after its start.
            let i = lines
                .rows
                .iter()
                .position(|l| l.ts >= ts)
                .unwrap_or(lines.rows.len());
            lines.nav.selected = i;
            if i >= lines.rows.len() {
                self.status = Some("the statement's messages are no longer kept".into());
            }
        } else if tl.follow {
            lines.nav.selected = lines.rows.len().saturating_sub(1);
        }
        lines.nav.clamp(lines.rows.len());
    }

    fn refresh_stats(&mut self, st: &State) {
        self.update_matches(st);
        let m = &self.queries.matched;
        let (top, mut errors) = if self.filter.is_empty() && self.follow.is_none() {
            (top_rows(&st.stmts), st.errors.values().cloned().collect())
        } else {
            (
                top_rows(&m.stmts),
                m.errors.values().cloned().collect::<Vec<_>>(),
            )
        };
        let keep = self.selected_fingerprint();
        self.top.rows = top;
        self.sort_top(keep);
        errors.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.last_ns.cmp(&a.last_ns))
                .then_with(|| a.code.cmp(&b.code))
        });
        self.errors.rows = errors;
        self.errors.nav.clamp(self.errors.rows.len());
    }

    /// Filtered statistics still being computed (statements not yet looked at).
    pub(crate) fn stats_pending(&self) -> u64 {
        self.queries.matched.pending
    }

    fn serve(&mut self, r: Open, st: &State) {
        let found = match &r {
            Open::Seq(seq) => st.detail_of(*seq),
            Open::At { conn, ts } => st
                .stmts_all
                .iter()
                .rev()
                .filter(|q| q.conn == *conn)
                .find(|q| q.start_ns <= *ts && *ts <= q.end_ns)
                .and_then(|q| st.detail_of(q.seq)),
            Open::Latest(fp) => st
                .queries
                .iter()
                .rev()
                .find(|q| q.fingerprint == *fp)
                .cloned(),
        };
        match found {
            Some(q) => {
                self.detail_len =
                    super::ui::detail_lines(&q, super::ui::Theme { color: false }).len();
                self.detail = Some(q);
                self.detail_scroll = 0;
                self.go(View::Detail);
            }
            None => {
                self.status = Some(match r {
                    Open::At { .. } => "no statement around this message".into(),
                    _ => "that statement is no longer kept (older than the window)".into(),
                })
            }
        }
    }
}

impl QueriesView {
    /// The selected row, if in view.
    pub(crate) fn visible_selected(&self) -> Option<&QRow> {
        self.visible
            .get(self.nav.selected.checked_sub(self.nav.offset)?)
    }
}

impl QRow {
    fn id(&self) -> Result<u64, u64> {
        self.seq.ok_or(self.conn)
    }
}

/// A running statement as the filter sees it: elapsed so far as its duration.
fn running_stmt(e: &SessionEntry, now: i64) -> Stmt {
    let r = e.running.as_ref();
    let start = r.map_or(now, |r| r.start_ns);
    Stmt {
        seq: u64::MAX,
        conn: e.meta.id,
        start_ns: start,
        end_ns: now.max(start),
        rows: 0,
        outcome: Outcome::Unknown,
        error: None,
        text: r.and_then(|r| r.text.clone()),
        who: e.who(),
        // Only matched against the filter, never counted.
        counted: false,
    }
}

/// A statement record with what the statistics read, from a compact statement.
fn compact_record(s: &Stmt) -> QueryRecord {
    let mut r = QueryRecord::new(s.conn, crate::session::record::Protocol::Simple, s.start_ns);
    r.end_ns = s.end_ns;
    r.text = s.text.as_deref().map(Into::into);
    r.rows_returned = s.rows;
    r.outcome = s.outcome;
    r
}

#[cfg(test)]
pub(crate) mod tests;
