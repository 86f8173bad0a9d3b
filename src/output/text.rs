//! pgproto-style trace: one line per message, `FE=> Query(query="select 1")` and
//! `<= BE CommandComplete(tag="SELECT 1")`, with time and connection. Every byte
//! from the wire is escaped before it reaches the terminal.

use super::fields::{FieldOut, visit};
use super::fmt::{civil_from_days, push_escaped, push_hex, time_of_day};
use super::redact::REDACTED;
use super::{AnomalyView, RunStats, Sink};
use crate::pgwire::{Dir, Msg};
use crate::session::record::{QueryRecord, SessionRecord};
use crate::tcp::ConnMeta;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// The `-o text` presenter: one line per message, tcpdump style.
pub struct TextSink<W: Write> {
    out: W,
    line: String,
    flush_each: bool,
    clock: Clock,
}

/// The time at the start of a line, as tcpdump's `-t` options count: 0 local time of
/// day, 1 none, 2 seconds since the epoch, 3 delta from the previous line, 4 date,
/// time and zone offset, 5 delta from the first line.
#[derive(Default)]
struct Clock {
    mode: u8,
    first: Option<i64>,
    prev: Option<i64>,
    /// The local offset of a quarter hour (zone changes fall on quarter hours):
    /// (quarter since the epoch, offset in seconds).
    offset: Option<(i64, i64)>,
}

impl Clock {
    fn push(&mut self, ts: i64, out: &mut String) {
        match self.mode {
            0 => time_of_day(ts + self.local_offset(ts) * 1_000_000_000, out),
            1 => {}
            2 => {
                let _ = write!(
                    out,
                    "{}.{:06}",
                    ts.div_euclid(1_000_000_000),
                    ts.rem_euclid(1_000_000_000) / 1000
                );
            }
            4 => {
                let off = self.local_offset(ts);
                let local = ts + off * 1_000_000_000;
                let (y, m, d) = civil_from_days(local.div_euclid(86_400 * 1_000_000_000));
                let _ = write!(out, "{y:04}-{m:02}-{d:02} ");
                time_of_day(local, out);
                let sign = if off < 0 { '-' } else { '+' };
                let off = off.abs() / 60;
                let _ = write!(out, " {sign}{:02}{:02}", off / 60, off % 60);
            }
            mode => {
                let since = if mode == 3 { self.prev } else { self.first };
                let delta = ts - since.unwrap_or(ts);
                if delta < 0 {
                    out.push('-');
                }
                time_of_day(delta.abs(), out);
            }
        }
        self.first.get_or_insert(ts);
        self.prev = Some(ts);
    }

    /// Seconds east of UTC at `ts` in the local zone (TZ, /etc/localtime), as
    /// tcpdump prints local time.
    fn local_offset(&mut self, ts: i64) -> i64 {
        let secs = ts.div_euclid(1_000_000_000);
        let quarter = secs.div_euclid(900);
        match self.offset {
            Some((q, off)) if q == quarter => off,
            _ => {
                let off = local_offset_at(secs);
                self.offset = Some((quarter, off));
                off
            }
        }
    }
}

/// The local zone's offset at `secs` since the epoch (0 when libc cannot say).
#[allow(
    unsafe_code,
    reason = "localtime_r: time, the one date crate here, refuses with threads"
)]
fn local_offset_at(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain integers (and a `tm_zone` pointer) for which all zeroes
    // is valid; localtime_r writes only the `tm` it is given and reads `t`, both live
    // for the call. It reads TZ from the environment, which nothing modifies while
    // pgscope runs (`std::env::set_var` is called nowhere in src/).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

impl<W: Write> TextSink<W> {
    /// Writes to `out`, flushing after each line if `flush_each` (live).
    pub fn new(out: W, flush_each: bool) -> Self {
        TextSink {
            out,
            line: String::with_capacity(256),
            flush_each,
            clock: Clock::default(),
        }
    }

    /// Timestamps as tcpdump's `-t` count (see [`Clock`]).
    pub fn timestamps(mut self, mode: u8) -> Self {
        self.clock.mode = mode.min(5);
        self
    }

    fn prefix(&mut self, ts: i64, conn: Option<&ConnMeta>) {
        self.line.clear();
        self.clock.push(ts, &mut self.line);
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        match conn {
            Some(c) => {
                let _ = write!(self.line, "#{} ", c.id);
            }
            None => self.line.push_str("-- "),
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
        self.line.push_str(a.kind.as_str());
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
            "-- closed ({}): {} -> {}, {} queries, {} errors",
            s.close_reason_str(),
            std::net::SocketAddr::from(conn.client),
            std::net::SocketAddr::from(conn.server),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_modes() {
        let line = |mode: u8, ts: &[i64]| {
            let mut c = Clock {
                mode,
                ..Clock::default()
            };
            ts.iter()
                .map(|&t| {
                    let mut s = String::new();
                    c.push(t, &mut s);
                    s
                })
                .collect::<Vec<_>>()
        };
        let t0 = 1_700_000_000_123_456_789;
        let ts = [t0, t0 + 1_500_000, t0 + 61_000_000_000, t0 + 60_000_000_000];
        assert_eq!(line(1, &ts), ["", "", "", ""]);
        assert_eq!(
            line(2, &ts)[..2],
            ["1700000000.123456", "1700000000.124956"]
        );
        assert_eq!(
            line(3, &ts),
            [
                "00:00:00.000000",
                "00:00:00.001500",
                "00:01:00.998500",
                "-00:00:01.000000"
            ]
        );
        assert_eq!(line(5, &ts)[2], "00:01:01.000000");
    }

    /// `-tttt`: the zone's wall time and its offset (from localtime_r, in whatever
    /// zone the test runs: UTC gives +0000).
    #[test]
    fn local_time_is_utc_shifted_by_the_zone_offset() {
        // 2023-11-14 22:13:20.123456 UTC, 80,000 s into its day.
        let secs = 1_700_000_000;
        let off = local_offset_at(secs);
        assert!(off.abs() <= 18 * 3600 && off % 60 == 0, "offset {off}");
        let mut c = Clock {
            mode: 4,
            ..Clock::default()
        };
        let mut s = String::new();
        c.push(secs * 1_000_000_000 + 123_456_789, &mut s);
        let wall = (80_000 + off).rem_euclid(86_400);
        let (sign, m) = (if off < 0 { '-' } else { '+' }, off.abs() / 60);
        let want = format!(
            " {:02}:{:02}:{:02}.123456 {sign}{:02}{:02}",
            wall / 3600,
            wall / 60 % 60,
            wall % 60,
            m / 60,
            m % 60
        );
        assert!(
            s.len() == 10 + want.len() && s.ends_with(&want),
            "{s:?}, want ..{want:?}"
        );
    }
}
