//! The UI state: which view, what is selected, sorted and filtered, and the copies of
//! shared data the views draw. Key handling is pure; data arrives through [`App::refresh`],
//! which the caller runs under the shared lock. No terminal needed, so all of it is
//! unit-tested.

use super::rows::{SessCol, SessionRow, TopCol, TopRow, top_rows};
use super::state::{Bucket, ErrorGroup, Health, MsgLine, QueryEntry, State, add_error, pad_rates};
use crate::filter::{self, Filter};
use crate::output::summary::add_statement;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering as AtOrd;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Sessions,
    Timeline,
    Queries,
    Detail,
    Top,
    Errors,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Sessions,
        View::Timeline,
        View::Queries,
        View::Detail,
        View::Top,
        View::Errors,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Sessions => "Sessions",
            View::Timeline => "Timeline",
            View::Queries => "Queries",
            View::Detail => "Query",
            View::Top => "Top queries",
            View::Errors => "Errors",
        }
    }

    pub fn key(self) -> char {
        match self {
            View::Sessions => '1',
            View::Timeline => '2',
            View::Queries => '3',
            View::Detail => '4',
            View::Top => '5',
            View::Errors => '6',
        }
    }

    /// Lines for the `?` popup: the keys of this view.
    pub fn help(self) -> &'static [(&'static str, &'static str)] {
        match self {
            View::Sessions => &[
                ("↑↓ PgUp PgDn g G", "move"),
                ("Enter", "timeline of the session"),
                ("← →", "sort column"),
                ("r", "reverse sort"),
            ],
            View::Timeline => &[
                ("↑↓ PgUp PgDn g", "scroll (stops following)"),
                ("End G", "follow the tail"),
                ("Enter", "statement of the message"),
                ("/", "search; n N next/previous"),
                ("Esc", "back to sessions"),
            ],
            View::Queries => &[("↑↓ PgUp PgDn g G", "move"), ("Enter", "statement detail")],
            View::Detail => &[
                ("↑↓ PgUp PgDn g G", "scroll"),
                ("t", "timeline of its session"),
                ("Esc", "back"),
            ],
            View::Top => &[
                ("↑↓ PgUp PgDn g G", "move"),
                ("← →", "sort column"),
                ("r", "reverse sort"),
                ("Enter", "latest call"),
            ],
            View::Errors => &[("↑↓ PgUp PgDn g G", "move"), ("Enter", "failing statement")],
        }
    }
}

pub const GLOBAL_HELP: &[(&str, &str)] = &[
    (
        "1-6 Tab",
        "views: sessions timeline queries query top errors",
    ),
    ("f", "filter: user= db= app= sqlstate= (= != ~regex !~)"),
    ("", "client=10.0.0.0/8 server=[::1]:5432 duration>10ms"),
    ("", "rows>N text~'a b' failed; and or not ( ) (docs/cli.md)"),
    ("p Space", "pause the view (capture goes on)"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
];

/// Selection, sort column and direction of one table.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableNav {
    pub selected: usize,
    pub sort: usize,
    pub desc: bool,
}

impl TableNav {
    fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }
}

/// A line being typed in the footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
    /// Live validation of a filter.
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    Search,
}

/// The session shown in the timeline.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub conn: Option<u64>,
    pub title: String,
    pub lines: Vec<MsgLine>,
    pub dropped: u64,
    pub selected: usize,
    /// Sticks to the newest line; scrolling up stops it.
    pub follow: bool,
    pub search: String,
}

impl Timeline {
    pub fn matches(&self, l: &MsgLine) -> bool {
        !self.search.is_empty()
            && (contains_ci(l.name, &self.search) || contains_ci(&l.summary, &self.search))
    }

    fn find(&mut self, forward: bool) -> bool {
        let n = self.lines.len();
        for step in 1..=n {
            let i = if forward {
                (self.selected + step) % n
            } else {
                (self.selected + n - step) % n
            };
            if self.matches(&self.lines[i]) {
                self.selected = i;
                self.follow = false;
                return true;
            }
        }
        false
    }
}

/// Sorts rows and keeps the selection on the row with id `keep`, wherever it lands.
fn resort<T, K: PartialEq>(
    rows: &mut [T],
    nav: &mut TableNav,
    keep: Option<K>,
    id: impl Fn(&T) -> K,
    cmp: impl Fn(&T, &T) -> Ordering,
) {
    rows.sort_by(cmp);
    if let Some(k) = keep {
        nav.selected = rows.iter().position(|r| id(r) == k).unwrap_or(0);
    }
    nav.clamp(rows.len());
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// Header figures, refreshed even while paused.
#[derive(Clone, Debug, Default)]
pub struct HeaderInfo {
    pub source: String,
    pub progress: Option<(u64, u64)>,
    pub bytes_read: u64,
    pub rates: Vec<Bucket>,
    pub health: Health,
    pub queries: u64,
    pub errors: u64,
    pub sessions: usize,
    pub open_sessions: usize,
    pub finished: bool,
    pub dropped_packets: u64,
    pub fatal: Option<String>,
}

/// Work that needs the shared state, done at the next refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Open {
    /// A statement by sequence number (errors).
    Seq(u64),
    /// The statement of a connection around a time (timeline).
    At { conn: u64, ts: i64 },
    /// The latest call of a fingerprint (top queries).
    Latest(String),
}

pub struct App {
    pub view: View,
    back: Vec<View>,
    pub paused: bool,
    pub help: bool,
    pub quit: bool,
    pub filter: Filter,
    pub input: Option<Input>,
    /// A one-line notice in the footer (e.g. "statement no longer kept").
    pub status: Option<String>,
    pub header: HeaderInfo,
    pub sessions: Vec<SessionRow>,
    pub sess_nav: TableNav,
    pub timeline: Timeline,
    pub queries: Vec<Arc<QueryEntry>>,
    pub query_nav: TableNav,
    pub detail: Option<Arc<QueryEntry>>,
    pub detail_scroll: usize,
    pub top: Vec<TopRow>,
    pub top_nav: TableNav,
    /// The top/errors tables are costly (percentiles): rebuilt at most this often.
    top_built: Option<Instant>,
    pub errors: Vec<ErrorGroup>,
    pub err_nav: TableNav,
    /// Filtered statistics come from the retained window only.
    pub stats_from_window: bool,
    request: Option<Open>,
    /// Data must be refreshed at the next opportunity, even while paused.
    force: bool,
    /// Rows a page moves by; set by the drawing code from the visible height.
    pub page: usize,
    /// First visible row of each view's table (by `View::ALL` index), kept by the
    /// drawing code so that scrolling moves as little as possible.
    pub offsets: [usize; 6],
}

pub const STATS_REFRESH: Duration = Duration::from_secs(1);

impl App {
    pub fn new(filter: Filter) -> Self {
        App {
            view: View::Sessions,
            back: Vec::new(),
            paused: false,
            help: false,
            quit: false,
            filter,
            input: None,
            status: None,
            header: HeaderInfo::default(),
            sessions: Vec::new(),
            sess_nav: TableNav {
                sort: 0,
                desc: false,
                selected: 0,
            },
            timeline: Timeline {
                follow: true,
                ..Timeline::default()
            },
            queries: Vec::new(),
            query_nav: TableNav::default(),
            detail: None,
            detail_scroll: 0,
            top: Vec::new(),
            top_nav: TableNav {
                sort: 1,
                desc: true,
                selected: 0,
            },
            top_built: None,
            errors: Vec::new(),
            err_nav: TableNav::default(),
            stats_from_window: false,
            request: None,
            force: true,
            page: 10,
            offsets: [0; 6],
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
            KeyCode::Char(c @ '1'..='6') => {
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
                            self.force = true;
                            self.top_built = None;
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

    /// Moves a selection by a key; returns whether the key was a movement.
    fn movement(k: KeyCode, sel: &mut usize, len: usize, page: usize) -> bool {
        let last = len.saturating_sub(1);
        *sel = match k {
            KeyCode::Up | KeyCode::Char('k') => sel.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => (*sel + 1).min(last),
            KeyCode::PageUp => sel.saturating_sub(page),
            KeyCode::PageDown => (*sel + page).min(last),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => last,
            _ => return false,
        };
        true
    }

    fn on_view_key(&mut self, k: KeyEvent) {
        let page = self.page.max(1);
        match self.view {
            View::Sessions => {
                if Self::movement(
                    k.code,
                    &mut self.sess_nav.selected,
                    self.sessions.len(),
                    page,
                ) {
                    return;
                }
                let n = SessCol::ALL.len();
                if Self::sort_key(k.code, &mut self.sess_nav, n) {
                    self.sort_sessions(self.selected_conn());
                } else if k.code == KeyCode::Enter
                    && let Some(r) = self.sessions.get(self.sess_nav.selected)
                {
                    self.open_timeline(r.conn);
                }
            }
            View::Timeline => {
                let tl = &mut self.timeline;
                let len = tl.lines.len();
                match k.code {
                    KeyCode::End | KeyCode::Char('G') => {
                        tl.follow = true;
                        tl.selected = len.saturating_sub(1);
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
                        if let (Some(conn), Some(l)) = (tl.conn, tl.lines.get(tl.selected)) {
                            self.request = Some(Open::At { conn, ts: l.ts });
                            self.force = true;
                        }
                    }
                    code => {
                        if Self::movement(code, &mut tl.selected, len, page) {
                            tl.follow = tl.follow && tl.selected + 1 >= len;
                        }
                    }
                }
            }
            View::Queries => {
                if Self::movement(
                    k.code,
                    &mut self.query_nav.selected,
                    self.queries.len(),
                    page,
                ) {
                    return;
                }
                if k.code == KeyCode::Enter
                    && let Some(q) = self.queries.get(self.query_nav.selected)
                {
                    self.detail = Some(q.clone());
                    self.detail_scroll = 0;
                    self.go(View::Detail);
                }
            }
            View::Detail => {
                if k.code == KeyCode::Char('t')
                    && let Some(q) = &self.detail
                {
                    let conn = q.rec.conn_id;
                    self.open_timeline(conn);
                    return;
                }
                // The drawing code clamps the scroll to the text height.
                Self::movement(k.code, &mut self.detail_scroll, usize::MAX, page);
            }
            View::Top => {
                if Self::movement(k.code, &mut self.top_nav.selected, self.top.len(), page) {
                    return;
                }
                if Self::sort_key(k.code, &mut self.top_nav, TopCol::ALL.len()) {
                    self.sort_top(self.selected_fingerprint());
                } else if k.code == KeyCode::Enter
                    && let Some(r) = self.top.get(self.top_nav.selected)
                {
                    self.request = Some(Open::Latest(r.fingerprint.clone()));
                    self.force = true;
                }
            }
            View::Errors => {
                if Self::movement(k.code, &mut self.err_nav.selected, self.errors.len(), page) {
                    return;
                }
                if k.code == KeyCode::Enter
                    && let Some(g) = self.errors.get(self.err_nav.selected)
                {
                    self.request = Some(Open::Seq(g.last_seq));
                    self.force = true;
                }
            }
        }
    }

    /// Left/Right pick the sort column, `r` reverses; returns whether it was one of them.
    fn sort_key(k: KeyCode, nav: &mut TableNav, ncols: usize) -> bool {
        match k {
            KeyCode::Left | KeyCode::Char('<') => nav.sort = (nav.sort + ncols - 1) % ncols,
            KeyCode::Right | KeyCode::Char('>') => nav.sort = (nav.sort + 1) % ncols,
            KeyCode::Char('r') => nav.desc = !nav.desc,
            _ => return false,
        }
        true
    }

    fn open_timeline(&mut self, conn: u64) {
        if self.timeline.conn != Some(conn) {
            self.timeline = Timeline {
                conn: Some(conn),
                follow: true,
                ..Timeline::default()
            };
        }
        self.go(View::Timeline);
    }

    pub fn sess_col(&self) -> SessCol {
        SessCol::ALL[self.sess_nav.sort % SessCol::ALL.len()]
    }

    pub fn top_col(&self) -> TopCol {
        TopCol::ALL[self.top_nav.sort % TopCol::ALL.len()]
    }

    fn sort_sessions(&mut self, keep: Option<u64>) {
        let (col, desc) = (self.sess_col(), self.sess_nav.desc);
        resort(
            &mut self.sessions,
            &mut self.sess_nav,
            keep,
            |r| r.conn,
            |a, b| {
                let o = a.cmp_by(b, col).then(a.conn.cmp(&b.conn));
                if desc { o.reverse() } else { o }
            },
        );
    }

    fn sort_top(&mut self, keep: Option<String>) {
        let (col, desc) = (self.top_col(), self.top_nav.desc);
        resort(
            &mut self.top,
            &mut self.top_nav,
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
        self.sessions.get(self.sess_nav.selected).map(|r| r.conn)
    }

    fn selected_fingerprint(&self) -> Option<String> {
        self.top
            .get(self.top_nav.selected)
            .map(|r| r.fingerprint.clone())
    }

    /// Copies what the current view needs from the shared state. Runs under the lock,
    /// so it only copies, filters and sorts. While paused only the header moves.
    pub fn refresh(&mut self, st: &State, now: Instant) {
        self.refresh_header(st);
        if let Some(r) = self.request.take() {
            self.serve(r, st);
        }
        if self.paused && !self.force {
            return;
        }
        let forced = std::mem::take(&mut self.force);
        match self.view {
            View::Sessions => {
                let keep = self.selected_conn();
                let with_match = self.sessions_with_matching_queries(st);
                self.sessions = st
                    .sessions
                    .values()
                    .filter(|e| {
                        self.filter.matches(*e)
                            && with_match.as_ref().is_none_or(|m| m.contains(&e.meta.id))
                    })
                    .map(SessionRow::from_entry)
                    .collect();
                self.sort_sessions(keep);
            }
            View::Timeline => self.refresh_timeline(st),
            View::Queries => {
                let keep = self.queries.get(self.query_nav.selected).map(|q| q.seq);
                self.queries = st
                    .queries
                    .iter()
                    .rev()
                    .filter(|q| self.filter.matches(q.as_ref()))
                    .cloned()
                    .collect();
                if let Some(seq) = keep {
                    self.query_nav.selected =
                        self.queries.iter().position(|q| q.seq == seq).unwrap_or(0);
                }
                self.query_nav.clamp(self.queries.len());
            }
            View::Detail => {}
            View::Top | View::Errors => {
                let stale = self
                    .top_built
                    .is_none_or(|t| now.duration_since(t) >= STATS_REFRESH);
                if forced || stale {
                    self.top_built = Some(now);
                    self.refresh_stats(st);
                }
            }
        }
    }

    fn refresh_header(&mut self, st: &State) {
        let read = st.input_read.load(AtOrd::Relaxed);
        let h = &mut self.header;
        h.source.clone_from(&st.source);
        h.bytes_read = read;
        h.progress = st.input_size.map(|t| (read.min(t), t));
        h.rates.clear();
        h.rates.extend(st.rates.iter().copied());
        if st.live && st.finished.is_none() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            pad_rates(&mut h.rates, now);
        }
        h.health.clone_from(&st.health);
        h.queries = st.total_queries;
        h.errors = st.total_errors;
        h.sessions = st.sessions.len();
        h.open_sessions = st.sessions.values().filter(|s| !s.closed).count();
        h.finished = st.finished.is_some();
        h.dropped_packets = st
            .finished
            .as_ref()
            .map_or(st.health.dropped_packets, |r| r.dropped);
        h.fatal.clone_from(&st.fatal);
    }

    /// With statement terms in the filter, a session shows when one of its retained
    /// statements matches: the set of those sessions (one pass over the window).
    fn sessions_with_matching_queries(&self, st: &State) -> Option<HashSet<u64>> {
        self.filter.has_query_terms().then(|| {
            st.queries
                .iter()
                .filter(|q| self.filter.matches(q.as_ref()))
                .map(|q| q.rec.conn_id)
                .collect()
        })
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
        // Lines only ever get appended (or dropped at the front), so the copy is
        // redone only when the count moved.
        let total = e.messages_dropped + e.messages.len() as u64;
        if total != tl.dropped + tl.lines.len() as u64 {
            let shift = e.messages_dropped.saturating_sub(tl.dropped) as usize;
            tl.lines.clear();
            tl.lines.extend(e.messages.iter().cloned());
            tl.dropped = e.messages_dropped;
            tl.selected = tl.selected.saturating_sub(shift);
        }
        if tl.follow {
            tl.selected = tl.lines.len().saturating_sub(1);
        }
        tl.selected = tl.selected.min(tl.lines.len().saturating_sub(1));
    }

    fn refresh_stats(&mut self, st: &State) {
        self.stats_from_window = !self.filter.is_empty();
        let (top, mut errors) = if self.stats_from_window {
            let mut stmts = HashMap::new();
            let mut groups = HashMap::new();
            let mut rng = 1;
            let mut fingerprints = crate::session::sql::FingerprintCache::default();
            for q in st
                .queries
                .iter()
                .filter(|q| self.filter.matches(q.as_ref()))
            {
                add_statement(
                    &mut stmts,
                    &mut fingerprints,
                    &q.rec,
                    &mut rng,
                    st.limits.samples_per_statement,
                );
                add_error(&mut groups, q, st.limits.error_groups);
            }
            (top_rows(&stmts), groups.into_values().collect::<Vec<_>>())
        } else {
            (top_rows(&st.stmts), st.errors.values().cloned().collect())
        };
        let keep = self.selected_fingerprint();
        self.top = top;
        self.sort_top(keep);
        errors.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.last_ns.cmp(&a.last_ns))
                .then_with(|| a.code.cmp(&b.code))
        });
        self.errors = errors;
        self.err_nav.clamp(self.errors.len());
    }

    fn serve(&mut self, r: Open, st: &State) {
        let found = match &r {
            Open::Seq(seq) => st.query_by_seq(*seq),
            Open::At { conn, ts } => st
                .queries
                .iter()
                .rev()
                .filter(|q| q.rec.conn_id == *conn)
                .find(|q| q.rec.start_ns <= *ts && *ts <= q.rec.end_ns),
            Open::Latest(fp) => st.queries.iter().rev().find(|q| q.fingerprint == *fp),
        };
        match found {
            Some(q) => {
                self.detail = Some(q.clone());
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

#[cfg(test)]
pub(crate) mod tests;
