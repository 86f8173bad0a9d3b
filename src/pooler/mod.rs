//! Pooler correlation (`--pooler-port`): when both legs of a connection pooler such
//! as pgbouncer are captured, each statement the pooler sends to the server is
//! linked to the client statement that caused it.
//!
//! A stage of its own between the session stage and the presenters: a [`Sink`] that
//! takes the finished records of every connection, holds them for a bounded window
//! of capture time, links them, and hands them on in the order they came. It sees
//! records only, never messages, so a sharded pipeline can run it where the shards'
//! records are merged.
//!
//! A link is made only when the evidence decides it (a wrong link is worse than
//! none). A server-leg statement and a client-leg statement fit when their texts and
//! bind parameters are identical (never statement names: pgbouncer ≥ 1.21 renames
//! prepared statements) and the client's span contains the server's; among the
//! client statements that fit, the server leg's current `application_name` keeps
//! those of the client it names (pgbouncer sets it to the client's, with
//! `application_name_add_host = 1` followed by the client's address), and inside a
//! server transaction only the client already linked to it is kept (a server
//! connection serves one client for a whole transaction). A link needs exactly one
//! client statement left, and that statement must fit no other server statement.

use crate::anomaly::AnomalyKind;
use crate::output::wrap;
use crate::output::{AnomalyView, OwnedAnomaly, RunStats, Sink};
use crate::session::record::{Leg, Link, Match, QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::DerefMut;
use std::sync::Arc;

/// Capture time a server-leg statement waits, after it ends, for the client
/// statements that could contain it (they end when the pooler has forwarded the
/// answer, normally within a millisecond). Records are handed on after twice this.
pub(crate) const WINDOW_NS: i64 = 500_000_000;
/// Records held at most; beyond, the oldest go out before their window has passed,
/// unlinked (counted in a `pooler_window_full` anomaly).
pub(crate) const MAX_HELD: usize = 65_536;

/// A connection as its statement records need it, shared by its held records.
type Origin = Arc<(ConnMeta, SessionRecord)>;

struct Held {
    origin: Origin,
    q: QueryRecord,
    /// Text and parameters, hashed.
    key: u64,
    /// Known at once for the client leg; a server leg is confirmed when decided.
    client_leg: bool,
    /// Server leg: its server transaction (see `Correlator::runs`).
    run: u64,
    decided: bool,
    link: Option<Link>,
    /// Client leg: ambiguous decisions it was a candidate of (the largest count).
    ambiguous: u32,
}

enum Item {
    Query(Box<Held>),
    Session(Box<(ConnMeta, SessionRecord)>),
    Anomaly(Box<OwnedAnomaly>),
}

/// A server transaction: statements of one server connection from one idle
/// ReadyForQuery to the next, all sent for one client.
#[derive(Default)]
struct Run {
    /// Its statements still held, in order.
    members: VecDeque<u64>,
    owner: Option<u64>,
}

pub(crate) struct Correlator<S> {
    inner: S,
    ports: Vec<u16>,
    /// Addresses the pooler ports were reached at: connections from them to other
    /// ports are its server legs.
    pooler_ips: FxHashSet<IpAddr>,
    /// Held items; `held[i]` has sequence number `base + i`.
    held: VecDeque<(i64, Item)>,
    base: u64,
    /// Items before this sequence number are decided.
    next_decide: u64,
    /// The latest record end seen: the window's clock.
    clock: i64,
    origins: FxHashMap<u64, Origin>,
    /// Held client-leg and possible server-leg statements by key, in order.
    clients: FxHashMap<u64, VecDeque<u64>>,
    servers: FxHashMap<u64, VecDeque<u64>>,
    /// Per server connection: its current run and whether it is inside a transaction.
    conn_run: FxHashMap<u64, (u64, bool)>,
    runs: FxHashMap<u64, Run>,
    next_run: u64,
    /// Server-leg statements decided before their window passed (too many held).
    early: u64,
}

impl<S: DerefMut> Correlator<S>
where
    S::Target: Sink,
{
    pub(crate) fn new(inner: S, ports: Vec<u16>) -> Self {
        Correlator {
            inner,
            ports,
            pooler_ips: FxHashSet::default(),
            held: VecDeque::new(),
            base: 0,
            next_decide: 0,
            clock: i64::MIN,
            origins: FxHashMap::default(),
            clients: FxHashMap::default(),
            servers: FxHashMap::default(),
            conn_run: FxHashMap::default(),
            runs: FxHashMap::default(),
            next_run: 0,
            early: 0,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.held.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Held> {
        match self.held.get(seq.checked_sub(self.base)? as usize) {
            Some((_, Item::Query(h))) => Some(h),
            _ => None,
        }
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Held> {
        match self.held.get_mut(seq.checked_sub(self.base)? as usize) {
            Some((_, Item::Query(h))) => Some(h),
            _ => None,
        }
    }

    fn origin(&mut self, conn: &ConnMeta, s: &SessionRecord) -> Origin {
        match self.origins.get(&conn.id) {
            Some(o) if o.1.origin_version == s.origin_version => o.clone(),
            _ => {
                let light = s.origin();
                let o = Arc::new((conn.clone(), light));
                self.origins.insert(conn.id, o.clone());
                o
            }
        }
    }

    fn push(&mut self, time: i64, item: Item) -> io::Result<()> {
        self.held.push_back((time, item));
        self.advance(false)
    }

    /// Decides what is due, then hands on what is due; everything with `all`.
    fn advance(&mut self, all: bool) -> io::Result<()> {
        while self.next_decide < self.end() {
            let time = self.held[(self.next_decide - self.base) as usize].0;
            let due = time.saturating_add(WINDOW_NS) <= self.clock;
            let full = self.held.len() > MAX_HELD && self.next_decide == self.base;
            if !(all || due || full) {
                break;
            }
            self.decide(self.next_decide, !(all || due));
            self.next_decide += 1;
        }
        while let Some((time, _)) = self.held.front() {
            let due = time.saturating_add(2 * WINDOW_NS) <= self.clock;
            if !(all || due || self.held.len() > MAX_HELD) {
                break;
            }
            if self.next_decide == self.base {
                self.decide(self.base, true);
                self.next_decide += 1;
            }
            self.emit()?;
        }
        Ok(())
    }

    fn emit(&mut self) -> io::Result<()> {
        let Some((_, item)) = self.held.pop_front() else {
            return Ok(());
        };
        let seq = self.base;
        self.base += 1;
        match item {
            Item::Query(mut h) => {
                let index = if h.client_leg {
                    &mut self.clients
                } else {
                    &mut self.servers
                };
                unindex(index, h.key, seq);
                if !h.client_leg
                    && let Some(run) = self.runs.get_mut(&h.run)
                {
                    if run.members.front() == Some(&seq) {
                        run.members.pop_front();
                    }
                    if run.members.is_empty() {
                        self.runs.remove(&h.run);
                    }
                }
                h.q.pooler = match h.link.take() {
                    Some(l) => Some(Box::new(l)),
                    None if h.client_leg => {
                        let m = if h.ambiguous > 0 {
                            Match::Ambiguous
                        } else {
                            Match::None
                        };
                        Some(Box::new(Link::unlinked(Leg::Client, m, h.ambiguous)))
                    }
                    None => None,
                };
                self.inner.query(&h.origin.0, &h.origin.1, &h.q)
            }
            Item::Session(b) => self.inner.session(&b.0, &b.1),
            Item::Anomaly(a) => a.replay(&mut *self.inner),
        }
    }

    /// Whether `c` (client leg) can be the statement that caused `s` (server leg).
    fn fits(&self, s: &Held, c: &Held) -> bool {
        if c.link.is_some() || c.q.unsure || c.q.start_ns > s.q.start_ns || c.q.end_ns < s.q.end_ns
        {
            return false;
        }
        if c.q.text.as_deref() != s.q.text.as_deref() || c.q.params != s.q.params {
            return false;
        }
        if let Some(owner) = self.runs.get(&s.run).and_then(|r| r.owner)
            && owner != c.origin.0.id
        {
            return false;
        }
        app_fits(&app_evidence(s), c)
    }

    fn is_server_leg(&self, h: &Held) -> bool {
        !h.client_leg && self.pooler_ips.contains(&h.origin.0.client.0)
    }

    /// Links the server-leg statement `seq`, or says why not. `early`: its window
    /// has not passed (too many records held), so some candidates may be missing.
    fn decide(&mut self, seq: u64, early: bool) {
        let Some(s) = self.get(seq) else { return };
        if s.decided || s.client_leg {
            return;
        }
        if !self.is_server_leg(s) {
            if let Some(s) = self.get_mut(seq) {
                s.decided = true;
            }
            return;
        }
        let none = |n| Link::unlinked(Leg::Server, Match::None, n);
        let link = if early {
            self.early += 1;
            none(0)
        } else if s.q.unsure || s.q.text.is_none() {
            none(0)
        } else {
            let empty = VecDeque::new();
            let keyed = self.clients.get(&s.key).unwrap_or(&empty);
            let fit: Vec<u64> = keyed
                .iter()
                .copied()
                .filter(|&c| self.get(c).is_some_and(|c| self.fits(s, c)))
                .collect();
            match fit[..] {
                [] => none(0),
                [c] if self.fits_no_other(seq, c) => {
                    self.link(seq, c);
                    return;
                }
                _ => {
                    let n = fit.len().max(2) as u32;
                    for &c in &fit {
                        if let Some(c) = self.get_mut(c) {
                            c.ambiguous = c.ambiguous.max(n);
                        }
                    }
                    Link::unlinked(Leg::Server, Match::Ambiguous, n)
                }
            }
        };
        if let Some(s) = self.get_mut(seq) {
            s.decided = true;
            s.link = Some(link);
        }
    }

    /// Whether the client statement `c` fits no other server statement still open
    /// to linking (else neither can be told apart).
    fn fits_no_other(&self, seq: u64, c: u64) -> bool {
        let (Some(s), Some(ch)) = (self.get(seq), self.get(c)) else {
            return false;
        };
        let others = self.servers.get(&s.key).into_iter().flatten();
        !others.copied().any(|o| {
            o != seq
                && self.get(o).is_some_and(|o| {
                    !o.link.as_ref().is_some_and(|l| l.matched.linked())
                        && self.is_server_leg(o)
                        && self.fits(o, ch)
                })
        })
    }

    fn link(&mut self, seq: u64, c: u64) {
        let (Some(s), Some(ch)) = (self.get(seq), self.get(c)) else {
            return;
        };
        let run = s.run;
        let matched = self.label(s);
        let wait = s.q.start_ns.saturating_sub(ch.q.start_ns);
        let server_ns = s.q.duration_ns();
        let client_conn = ch.origin.0.id;
        let server_link = Link {
            leg: Leg::Server,
            matched,
            candidates: 0,
            peer_conn_id: Some(client_conn),
            client: Some(ch.origin.0.client),
            client_application: ch.origin.1.application.clone(),
            backend_pid: None,
            wait_ns: Some(wait),
            server_ns: Some(server_ns),
        };
        let client_link = Link {
            leg: Leg::Client,
            matched,
            candidates: 0,
            peer_conn_id: Some(s.origin.0.id),
            client: None,
            client_application: None,
            backend_pid: s.origin.1.backend_pid,
            wait_ns: Some(wait),
            server_ns: Some(server_ns),
        };
        if let Some(s) = self.get_mut(seq) {
            s.decided = true;
            s.link = Some(server_link);
        }
        if let Some(ch) = self.get_mut(c) {
            ch.link = Some(client_link);
        }
        // The rest of the server transaction belongs to the same client: earlier
        // statements of it left unlinked are looked at again with that evidence.
        let run = self.runs.entry(run).or_default();
        if run.owner.is_none() {
            run.owner = Some(client_conn);
            let members = run.members.clone();
            for m in members {
                let again = self.get(m).is_some_and(|h| {
                    h.decided && !h.link.as_ref().is_some_and(|l| l.matched.linked())
                });
                if m < self.next_decide && m != seq && again {
                    if let Some(h) = self.get_mut(m) {
                        h.decided = false;
                        h.link = None;
                    }
                    self.decide(m, false);
                }
            }
        }
    }

    /// The strongest evidence that alone tells `s`'s client statement from the
    /// others around it: the application_name, else text, parameters and time, else
    /// (with those) the server transaction.
    fn label(&self, s: &Held) -> Match {
        let app = app_evidence(s);
        if matches!(app, AppEvidence::Address(_)) {
            return Match::ApplicationName;
        }
        let (mut loose, mut by_app) = (0, 0);
        for &c in self.clients.get(&s.key).into_iter().flatten() {
            let Some(c) = self.get(c) else { continue };
            if c.link.is_none()
                && !c.q.unsure
                && c.q.start_ns <= s.q.start_ns
                && c.q.end_ns >= s.q.end_ns
                && c.q.text.as_deref() == s.q.text.as_deref()
                && c.q.params == s.q.params
            {
                loose += 1;
                by_app += app_fits(&app, c) as u32;
            }
        }
        if by_app == 1 && !matches!(app, AppEvidence::Unknown) && loose > 1 {
            Match::ApplicationName
        } else if loose == 1 {
            Match::TextParamsTime
        } else if by_app == 1 {
            Match::ApplicationName
        } else {
            Match::Transaction
        }
    }

    fn finish_anomaly(&mut self) -> io::Result<()> {
        if self.early == 0 {
            return Ok(());
        }
        let message = format!(
            "{} server-leg statements were not linked: more than {MAX_HELD} records were waiting for their {} ms window",
            self.early,
            WINDOW_NS / 1_000_000
        );
        let view = AnomalyView {
            kind: AnomalyKind::PoolerWindowFull,
            dir: None,
            message: &message,
        };
        self.inner.anomaly(None, self.clock.max(0), &view)
    }
}

enum AppEvidence<'a> {
    /// `application_name_add_host`: the client's address.
    Address(SocketAddr),
    Name(&'a str),
    Unknown,
}

/// What the server leg's application_name says of the client: pgbouncer's
/// `application_name_add_host` appends ` - ADDRESS:PORT` to the client's name.
fn app_evidence(s: &Held) -> AppEvidence<'_> {
    let Some(app) = s.origin.1.application.as_deref() else {
        return AppEvidence::Unknown;
    };
    if let Some((_, host)) = app.rsplit_once(" - ")
        && let Some(a) = parse_host_port(host)
    {
        return AppEvidence::Address(a);
    }
    AppEvidence::Name(app)
}

/// Whether the client-leg statement `c` fits what the server leg's application_name says.
fn app_fits(app: &AppEvidence<'_>, c: &Held) -> bool {
    match app {
        AppEvidence::Address(a) => {
            let (ip, port) = c.origin.0.client;
            *a == SocketAddr::new(ip, port)
        }
        AppEvidence::Name(n) => c.origin.1.application.as_deref().unwrap_or("") == *n,
        AppEvidence::Unknown => true,
    }
}

/// `127.0.0.1:5000` or `[::1]:5000` (or, as pgbouncer writes IPv6, `::1:5000`).
fn parse_host_port(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let (ip, port) = s.rsplit_once(':')?;
    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
}

fn key(q: &QueryRecord) -> u64 {
    let mut h = FxHasher::default();
    q.text.as_deref().hash(&mut h);
    q.params.hash(&mut h);
    h.finish()
}

fn unindex(index: &mut FxHashMap<u64, VecDeque<u64>>, key: u64, seq: u64) {
    if let Some(v) = index.get_mut(&key) {
        if v.front() == Some(&seq) {
            v.pop_front();
        }
        if v.is_empty() {
            index.remove(&key);
        }
    }
}

/// Messages borrow the capture buffer, and live views want the running statements
/// now: they go on at once, ahead of the held records.
impl<S: DerefMut> wrap::Wrap for Correlator<S>
where
    S::Target: Sink,
{
    wrap::inner_deref!();

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        // Anomalies do not move the clock: a run-level one may carry the wall clock.
        self.push(self.clock, Item::Anomaly(Box::new(a.owned(conn, ts))))
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        let origin = self.origin(conn, s);
        let client_leg = self.ports.contains(&conn.server.1);
        let seq = self.end();
        let mut run = 0;
        if client_leg {
            self.pooler_ips.insert(conn.server.0);
        } else {
            // An unsure statement may hide a transaction's end: it starts a run of its own.
            let state = self.conn_run.entry(conn.id).or_insert((0, false));
            if !state.1 || q.unsure {
                state.0 = self.next_run;
                self.next_run += 1;
            }
            state.1 = !q.unsure && matches!(q.tx_status, Some(b'T' | b'E'));
            run = state.0;
            self.runs.entry(run).or_default().members.push_back(seq);
        }
        // Held records may be dropped on another thread: they share nothing.
        let q = q.detached();
        let key = key(&q);
        let index = if client_leg {
            &mut self.clients
        } else {
            &mut self.servers
        };
        index.entry(key).or_default().push_back(seq);
        self.clock = self.clock.max(q.end_ns);
        let held = Held {
            origin,
            key,
            client_leg,
            run,
            decided: false,
            link: None,
            ambiguous: 0,
            q,
        };
        self.push(held.q.end_ns, Item::Query(Box::new(held)))
    }

    /// Held as `query` holds it.
    fn query_owned(
        &mut self,
        c: &ConnMeta,
        s: &SessionRecord,
        q: Box<QueryRecord>,
    ) -> io::Result<()> {
        wrap::Wrap::query(self, c, s, &q)
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        self.origins.remove(&conn.id);
        self.conn_run.remove(&conn.id);
        if self.ports.contains(&conn.server.1) {
            self.pooler_ips.insert(conn.server.0);
        }
        self.clock = self.clock.max(s.end_ns);
        let item = Item::Session(Box::new((conn.clone(), s.clone())));
        self.push(s.end_ns, item)
    }

    /// Live, on a quiet link: the wall clock moves the window on, so held records go
    /// on once their window has passed instead of waiting for the next record.
    fn tick(&mut self, now_ns: i64) -> io::Result<()> {
        self.clock = self.clock.max(now_ns);
        self.advance(false)?;
        self.inner.tick(now_ns)
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        self.advance(true)?;
        self.finish_anomaly()?;
        self.inner.finish(run)
    }
}

#[cfg(test)]
mod tests;
