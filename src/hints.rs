//! Hints for a user who is stuck: a capture in which no PostgreSQL was found names
//! the busiest TCP ports it saw, so that the right `-p PORT` is one step away.

use crate::capture::Packet;
use crate::output::Sink;
use crate::output::wrap::Wrap;
use crate::pgwire::Msg;
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use rustc_hash::FxHashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

type Owned = Box<QueryRecord>;

/// Packets per TCP port, counted until PostgreSQL is found (then it costs a load
/// per packet). Both ports of a packet count: a client's ephemeral port only gathers
/// its one connection's packets, a server's port all of them.
pub(crate) struct PortCensus {
    found: Arc<AtomicBool>,
    ports: FxHashMap<u16, u64>,
}

impl PortCensus {
    /// `found` is set by [`Noticing`] when the first PostgreSQL record comes out.
    pub(crate) fn new(found: Arc<AtomicBool>) -> Self {
        PortCensus {
            found,
            ports: FxHashMap::default(),
        }
    }

    pub(crate) fn packet(&mut self, p: &Packet<'_>) {
        if self.found.load(Ordering::Relaxed) {
            return;
        }
        if let Some(s) = crate::net::parse(p.linktype, p.data, p.orig_len) {
            *self.ports.entry(s.sport).or_default() += 1;
            if s.dport != s.sport {
                *self.ports.entry(s.dport).or_default() += 1;
            }
        }
    }

    /// The hint, when no PostgreSQL was found. `live_filter` is the capture filter
    /// built from the `-p` ports when capturing live without `-f`: nothing else was
    /// captured.
    pub(crate) fn hint(&self, live_filter: Option<&str>) -> Option<String> {
        if self.found.load(Ordering::Relaxed) {
            return None;
        }
        let mut msg = String::from("no PostgreSQL traffic found");
        if let Some(f) = live_filter {
            msg.push_str(&format!(
                " (only '{f}' was captured: give the server's port with -p PORT, or capture all TCP with -f tcp)"
            ));
            return Some(msg);
        }
        let mut top: Vec<(u16, u64)> = self.ports.iter().map(|(&p, &n)| (p, n)).collect();
        if top.is_empty() {
            msg.push_str(" (no TCP packets)");
            return Some(msg);
        }
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let list: Vec<String> = top
            .iter()
            .take(5)
            .map(|(p, n)| format!("{p} ({n} packets)"))
            .collect();
        msg.push_str(&format!(
            "; the busiest TCP ports: {}; if the server listens on one of them, add -p PORT",
            list.join(", ")
        ));
        Some(msg)
    }
}

/// Passes everything on, and sets `found` at the first PostgreSQL record.
pub(crate) struct Noticing<'a> {
    inner: Box<dyn Sink + Send + 'a>,
    found: Arc<AtomicBool>,
}

impl<'a> Noticing<'a> {
    pub(crate) fn new(inner: Box<dyn Sink + Send + 'a>, found: Arc<AtomicBool>) -> Self {
        Noticing { inner, found }
    }

    fn found(&self) {
        self.found.store(true, Ordering::Relaxed);
    }
}

impl<'a> Wrap for Noticing<'a> {
    type Inner = dyn Sink + Send + 'a;
    fn inner(&mut self) -> &mut Self::Inner {
        &mut *self.inner
    }
    fn inner_ref(&self) -> &Self::Inner {
        &*self.inner
    }

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        self.found();
        self.inner.message(conn, ts, msg)
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        self.found();
        self.inner.query(conn, s, q)
    }

    // Passed on owned: the threaded sink would copy a borrowed record.
    fn query_owned(&mut self, conn: &ConnMeta, s: &SessionRecord, q: Owned) -> io::Result<()> {
        self.found();
        self.inner.query_owned(conn, s, q)
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        // A connection that never carried a message (a lone SYN) says nothing.
        if s.messages_client + s.messages_server > 0 {
            self.found();
        }
        self.inner.session(conn, s)
    }
}
