//! `--filter` for the record presenters (JSON, text, summary): statements, sessions
//! and wire messages are passed on only when the filter is true for them
//! ([`Filter::keeps`]; which fields each kind has is in `crate::filter`). Anomalies
//! are always passed on: they say what the capture may have lost.

use super::Sink;
use super::wrap::Wrap;
use crate::filter::{Filter, MessageView, SessionView, StatementView, Who};
use crate::pgwire::{Body, Msg, startup_params};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use rustc_hash::FxHashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::DerefMut;

type Owned = Box<QueryRecord>;

pub(crate) struct Filtered<S> {
    inner: S,
    filter: Filter,
    /// Per open connection, what its messages are filtered by.
    conns: FxHashMap<u64, Known>,
}

/// A connection's fields, as far as known.
#[derive(Default)]
struct Known {
    client: String,
    server: String,
    user: Option<String>,
    database: Option<String>,
    application: Option<String>,
}

impl Known {
    fn new(conn: &ConnMeta) -> Self {
        Known {
            client: SocketAddr::from(conn.client).to_string(),
            server: SocketAddr::from(conn.server).to_string(),
            ..Known::default()
        }
    }

    fn who(&self) -> Who<'_> {
        Who {
            client: &self.client,
            server: Some(&self.server),
            user: self.user.as_deref(),
            database: self.database.as_deref(),
            application: self.application.as_deref(),
        }
    }

    /// The session's view once it has one (later `SET application_name` included).
    fn update(&mut self, s: &SessionRecord) {
        for (mine, theirs) in [
            (&mut self.user, &s.user),
            (&mut self.database, &s.database),
            (&mut self.application, &s.application),
        ] {
            if theirs.is_some() && mine != theirs {
                mine.clone_from(theirs);
            }
        }
    }
}

impl<S> Filtered<S> {
    pub(crate) fn new(inner: S, filter: Filter) -> Self {
        Filtered {
            inner,
            filter,
            conns: FxHashMap::default(),
        }
    }
}

/// `conn`'s entry, made on its first record.
fn known<'a>(conns: &'a mut FxHashMap<u64, Known>, conn: &ConnMeta) -> &'a mut Known {
    conns.entry(conn.id).or_insert_with(|| Known::new(conn))
}

impl<S: DerefMut> Wrap for Filtered<S>
where
    S::Target: Sink,
{
    super::wrap::inner_deref!();

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        let known = known(&mut self.conns, conn);
        // The startup packet names the user before the session reports it, so that
        // the packet itself is judged with them. The database defaults to the user.
        if let Body::Startup { params, .. } = msg.body {
            for (k, v) in startup_params(params) {
                let v = Some(String::from_utf8_lossy(v).into_owned());
                match k {
                    b"user" => known.user = v,
                    b"database" => known.database = v,
                    b"application_name" => known.application = v,
                    _ => {}
                }
            }
            if known.database.is_none() {
                known.database.clone_from(&known.user);
            }
        }
        if self.filter.keeps(&MessageView(known.who())) {
            self.inner.message(conn, ts, msg)
        } else {
            Ok(())
        }
    }

    fn query(
        &mut self,
        conn: &ConnMeta,
        session: &SessionRecord,
        q: &QueryRecord,
    ) -> io::Result<()> {
        let known = known(&mut self.conns, conn);
        known.update(session);
        if self.filter.keeps(&StatementView {
            who: known.who(),
            query: q,
        }) {
            self.inner.query(conn, session, q)
        } else {
            Ok(())
        }
    }

    /// Filtered as `query` is.
    fn query_owned(&mut self, c: &ConnMeta, s: &SessionRecord, q: Owned) -> io::Result<()> {
        Wrap::query(self, c, s, &q)
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        let mut known = self
            .conns
            .remove(&conn.id)
            .unwrap_or_else(|| Known::new(conn));
        known.update(s);
        if self.filter.keeps(&SessionView {
            who: known.who(),
            errors: s.errors,
        }) {
            self.inner.session(conn, s)
        } else {
            Ok(())
        }
    }

    fn session_update(&mut self, conn: &ConnMeta, s: &SessionRecord) {
        known(&mut self.conns, conn).update(s);
        self.inner.session_update(conn, s)
    }
}
