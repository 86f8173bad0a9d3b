//! The rows of the sessions and top-queries tables: their columns, how a cell reads
//! and how rows compare, copied out of the shared state by [`super::app::App::refresh`].

use super::state::SessionEntry;
use crate::output::summary::{StmtStats, percentile};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Columns of the sessions table, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessCol {
    Conn,
    Client,
    Server,
    User,
    Db,
    App,
    Proto,
    Enc,
    Auth,
    State,
    /// How long the running statement has run.
    Running,
    /// What it waits on.
    Wait,
    /// The running statement's SQL.
    Query,
    Queries,
    Errors,
    Bytes,
    Duration,
}

impl SessCol {
    pub(crate) const ALL: [SessCol; 17] = [
        SessCol::Conn,
        SessCol::Client,
        SessCol::Server,
        SessCol::User,
        SessCol::Db,
        SessCol::App,
        SessCol::Proto,
        SessCol::Enc,
        SessCol::Auth,
        SessCol::State,
        SessCol::Running,
        SessCol::Wait,
        SessCol::Query,
        SessCol::Queries,
        SessCol::Errors,
        SessCol::Bytes,
        SessCol::Duration,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            SessCol::Conn => "#",
            SessCol::Client => "client",
            SessCol::Server => "server",
            SessCol::Running => "running",
            SessCol::Wait => "wait",
            SessCol::Query => "query",
            SessCol::User => "user",
            SessCol::Db => "db",
            SessCol::App => "app",
            SessCol::Proto => "proto",
            SessCol::Enc => "enc",
            SessCol::Auth => "auth",
            SessCol::State => "state",
            SessCol::Queries => "queries",
            SessCol::Errors => "errors",
            SessCol::Bytes => "bytes",
            SessCol::Duration => "duration",
        }
    }
}

/// One sessions row, copied out of the shared state.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionRow {
    pub(crate) conn: u64,
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) user: Option<String>,
    pub(crate) db: Option<String>,
    pub(crate) app: Option<String>,
    pub(crate) proto: Option<String>,
    pub(crate) enc: Option<crate::pgwire::Encryption>,
    pub(crate) auth: Option<String>,
    pub(crate) state: &'static str,
    /// The running statement: elapsed, what it waits on, its SQL.
    pub(crate) running_ns: Option<i64>,
    pub(crate) wait: Option<&'static str>,
    pub(crate) query: Option<std::sync::Arc<str>>,
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) bytes: u64,
    pub(crate) duration_ns: i64,
}

impl SessionRow {
    /// The row of a session; `now` gives the elapsed time of a running statement.
    pub(super) fn from_entry(e: &SessionEntry, now: i64) -> Self {
        let r = &e.rec;
        let running = e.running.as_ref();
        SessionRow {
            conn: e.meta.id,
            client: addr(e.meta.client),
            server: addr(e.meta.server),
            running_ns: running.map(|x| now.saturating_sub(x.start_ns).max(0)),
            wait: running.map(|x| x.wait),
            query: running.and_then(|x| x.text.clone()),
            user: r.user.clone(),
            db: r.database.clone(),
            app: r.application.clone(),
            proto: r
                .protocol_negotiated
                .clone()
                .or_else(|| r.protocol_requested.clone()),
            enc: r.encryption,
            auth: r.auth_method.clone(),
            state: e.state(),
            queries: r.queries,
            errors: r.errors,
            bytes: r.bytes_client + r.bytes_server,
            duration_ns: e.end_ns().saturating_sub(r.start_ns),
        }
    }

    /// Cell text (raw; the drawing code escapes it).
    pub(crate) fn cell(&self, c: SessCol) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        match c {
            SessCol::Conn => self.conn.to_string(),
            SessCol::Client => self.client.clone(),
            SessCol::Server => self.server.clone(),
            SessCol::Running => self.running_ns.map(human_ns).unwrap_or_default(),
            SessCol::Wait => self.wait.unwrap_or_default().to_string(),
            SessCol::Query => self.query.as_deref().unwrap_or_default().to_string(),
            SessCol::User => opt(&self.user),
            SessCol::Db => opt(&self.db),
            SessCol::App => self.app.clone().unwrap_or_default(),
            SessCol::Proto => opt(&self.proto),
            SessCol::Enc => self
                .enc
                .map_or("?", crate::pgwire::Encryption::as_str)
                .to_string(),
            SessCol::Auth => opt(&self.auth),
            SessCol::State => self.state.to_string(),
            SessCol::Queries => self.queries.to_string(),
            SessCol::Errors => self.errors.to_string(),
            SessCol::Bytes => human_bytes(self.bytes),
            SessCol::Duration => human_ns(self.duration_ns),
        }
    }

    pub(super) fn cmp_by(&self, o: &Self, c: SessCol) -> Ordering {
        match c {
            SessCol::Conn => self.conn.cmp(&o.conn),
            SessCol::Queries => self.queries.cmp(&o.queries),
            SessCol::Errors => self.errors.cmp(&o.errors),
            SessCol::Bytes => self.bytes.cmp(&o.bytes),
            SessCol::Duration => self.duration_ns.cmp(&o.duration_ns),
            SessCol::Running => self.running_ns.cmp(&o.running_ns),
            _ => self.cell(c).cmp(&o.cell(c)),
        }
    }
}

/// `ip:port`, IPv6 in brackets.
fn addr((ip, port): (std::net::IpAddr, u16)) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

/// Columns of the top-queries table that can be sorted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TopCol {
    Calls,
    Total,
    Mean,
    P95,
    P99,
    Max,
    Rows,
    Errors,
    Share,
}

impl TopCol {
    pub(crate) const ALL: [TopCol; 9] = [
        TopCol::Calls,
        TopCol::Total,
        TopCol::Mean,
        TopCol::P95,
        TopCol::P99,
        TopCol::Max,
        TopCol::Rows,
        TopCol::Errors,
        TopCol::Share,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            TopCol::Calls => "calls",
            TopCol::Total => "total",
            TopCol::Mean => "mean",
            TopCol::P95 => "p95",
            TopCol::P99 => "p99",
            TopCol::Max => "max",
            TopCol::Rows => "rows",
            TopCol::Errors => "errors",
            TopCol::Share => "share",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TopRow {
    pub(crate) fingerprint: String,
    pub text: String,
    pub calls: u64,
    pub(crate) total_ns: i64,
    pub(crate) mean_ns: i64,
    pub p95_ns: i64,
    pub p99_ns: i64,
    pub(crate) max_ns: i64,
    pub(crate) rows: u64,
    pub(crate) errors: u64,
    /// Per mille of the total time of all statements.
    pub(crate) share: f64,
}

impl TopRow {
    pub(super) fn value(&self, c: TopCol) -> f64 {
        match c {
            TopCol::Calls => self.calls as f64,
            TopCol::Total => self.total_ns as f64,
            TopCol::Mean => self.mean_ns as f64,
            TopCol::P95 => self.p95_ns as f64,
            TopCol::P99 => self.p99_ns as f64,
            TopCol::Max => self.max_ns as f64,
            TopCol::Rows => self.rows as f64,
            TopCol::Errors => self.errors as f64,
            TopCol::Share => self.share,
        }
    }

    pub(crate) fn cell(&self, c: TopCol) -> String {
        match c {
            TopCol::Calls => self.calls.to_string(),
            TopCol::Rows => self.rows.to_string(),
            TopCol::Errors => self.errors.to_string(),
            TopCol::Share => format!("{:.1}%", self.share * 100.0),
            TopCol::Total => human_ns(self.total_ns),
            TopCol::Mean => human_ns(self.mean_ns),
            TopCol::P95 => human_ns(self.p95_ns),
            TopCol::P99 => human_ns(self.p99_ns),
            TopCol::Max => human_ns(self.max_ns),
        }
    }
}

pub(super) fn top_rows(stmts: &HashMap<String, StmtStats>) -> Vec<TopRow> {
    let all: i128 = stmts.values().map(|s| s.total_ns).sum();
    stmts
        .iter()
        .map(|(fp, s)| {
            let mut samples = s.samples.clone();
            let total = s.total_ns.min(i64::MAX as i128) as i64;
            TopRow {
                fingerprint: fp.clone(),
                // Normalised already: the shape shared by the calls.
                text: s.text.clone(),
                calls: s.calls,
                total_ns: total,
                mean_ns: total / s.calls.max(1) as i64,
                p95_ns: percentile(&mut samples, 0.95),
                p99_ns: percentile(&mut samples, 0.99),
                max_ns: s.max_ns,
                rows: s.rows,
                errors: s.errors,
                share: if all > 0 {
                    s.total_ns as f64 / all as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}

pub(crate) fn human_ns(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1}ms", ns / 1e6)
    } else if ns < 600e9 {
        format!("{:.2}s", ns / 1e9)
    } else {
        format!("{:.1}m", ns / 60e9)
    }
}

pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}
