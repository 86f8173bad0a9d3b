//! pgproto-style trace: one line per message, `FE=> Query(query="select 1")` and
//! `<= BE CommandComplete(tag="SELECT 1")`, with time and connection. Every byte
//! from the wire is escaped before it reaches the terminal.

use super::fields::{FieldOut, visit};
use super::fmt::{push_escaped, push_hex, time_of_day};
use super::redact::REDACTED;
use super::{AnomalyView, RunStats, Sink};
use crate::pgwire::{Dir, Msg};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

pub struct TextSink<W: Write> {
    out: W,
    line: String,
    flush_each: bool,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, flush_each: bool) -> Self {
        TextSink {
            out,
            line: String::with_capacity(256),
            flush_each,
        }
    }

    fn prefix(&mut self, ts: i64, conn: Option<&ConnMeta>) {
        self.line.clear();
        time_of_day(ts, &mut self.line);
        match conn {
            Some(c) => {
                let _ = write!(self.line, " #{} ", c.id);
            }
            None => self.line.push_str(" -- "),
        }
    }

    fn write_line(&mut self) -> io::Result<()> {
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }
}

/// Renders `k=v, k=v` into a line (also the TUI timeline's summary column).
pub(crate) struct Args<'a> {
    line: &'a mut String,
    first: bool,
}

impl<'a> Args<'a> {
    pub(crate) fn new(line: &'a mut String) -> Self {
        Args { line, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.line.push_str(", ");
        }
        self.first = false;
        self.line.push_str(k);
        self.line.push('=');
    }

    fn quoted(&mut self, v: &[u8]) {
        self.line.push('"');
        push_escaped(self.line, v);
        self.line.push('"');
    }
}

impl FieldOut for Args<'_> {
    fn text(&mut self, key: &'static str, v: &[u8]) {
        self.key(key);
        self.quoted(v);
    }
    fn num(&mut self, key: &'static str, v: i64) {
        self.key(key);
        let _ = write!(self.line, "{v}");
    }
    fn hex(&mut self, key: &'static str, v: &[u8]) {
        self.key(key);
        push_hex(self.line, v);
    }
    fn redacted(&mut self, key: &'static str) {
        self.key(key);
        self.line.push_str(REDACTED);
    }
    fn list(&mut self, key: &'static str, items: &mut dyn Iterator<Item = Option<Cow<'_, str>>>) {
        self.key(key);
        self.line.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.line.push_str(", ");
            }
            match item {
                Some(s) => self.quoted(s.as_bytes()),
                None => self.line.push_str("NULL"),
            }
        }
        self.line.push(']');
    }
    fn pairs(
        &mut self,
        _key: &'static str,
        items: &mut dyn Iterator<Item = (Cow<'_, str>, Cow<'_, str>)>,
    ) {
        for (k, v) in items {
            if !self.first {
                self.line.push_str(", ");
            }
            self.first = false;
            push_escaped(self.line, k.as_bytes());
            self.line.push('=');
            self.quoted(v.as_bytes());
        }
    }
}

impl<W: Write> Sink for TextSink<W> {
    fn wants_messages(&self) -> bool {
        true
    }

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        self.prefix(ts, Some(conn));
        self.line.push_str(match msg.dir {
            Dir::Frontend => "FE=> ",
            Dir::Backend => "<= BE ",
        });
        self.line.push_str(msg.name());
        self.line.push('(');
        let mut args = Args::new(&mut self.line);
        visit(msg, &mut args);
        self.line.push(')');
        self.write_line()
    }

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        self.prefix(ts, conn);
        self.line.push_str("!! ");
        self.line.push_str(a.kind);
        self.line.push_str(": ");
        push_escaped(&mut self.line, a.message.as_bytes());
        self.write_line()
    }

    fn query(&mut self, _: &ConnMeta, _: &SessionRecord, _: &QueryRecord) -> io::Result<()> {
        Ok(())
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        self.prefix(s.end_ns, Some(conn));
        let _ = write!(
            self.line,
            "-- closed ({}): {}:{} -> {}:{}, {} queries, {} errors",
            s.close_reason,
            conn.client.0,
            conn.client.1,
            conn.server.0,
            conn.server.1,
            s.queries,
            s.errors
        );
        self.write_line()
    }

    fn finish(&mut self, run: &RunStats) -> io::Result<()> {
        for w in &run.warnings {
            self.line.clear();
            self.line.push_str("-- warning: ");
            push_escaped(&mut self.line, w.as_bytes());
            self.write_line()?;
        }
        self.out.flush()
    }
}
