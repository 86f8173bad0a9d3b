//! The filter language shared by the TUI and `--filter`. Pure (no terminal, no
//! pipeline) so every presenter uses the same one.
//!
//! ```text
//! user=alice db=shop                       terms side by side must all hold (an implicit and)
//! db=shop and (duration>1s or failed)      and, or, not (also !), parentheses
//! app~^psql text~'from orders'             ~ regex, case-insensitive; !~ its negation
//! client=10.0.0.0/8 server=[::1]:5433      addresses: IP, IP/prefix, IP:port, [IPv6]:port, :port
//! sqlstate=23 duration>=10ms rows>100      = != on names (exact), codes (class prefix); numbers > >= < <= = !=
//! ```
//! Values holding spaces or parentheses are quoted, with '…' or "…" (`\'`, `\"` and
//! `\\` inside). Field names and keywords are case-insensitive.
//!
//! Record kinds do not all have every field: a statement has all of them; a session
//! has user, db, app, client, server and failed (it had an error), not sqlstate,
//! text, duration or rows; a wire message has only the connection's fields (user, db,
//! app, client, server). A term about a field the record does not have is unknown,
//! and unknown combines as SQL's NULL (`false and unknown` is false, `true or
//! unknown` is true, `not unknown` is unknown). The record presenters keep a record
//! only when the filter is true for it ([`Filter::keeps`]): `duration>1s` keeps
//! statements, never sessions. The TUI's session list uses [`Filter::matches`], which
//! lets unknown through: a session shows when its own fields do not rule it out.
//! A field a record could have but does not know (the user of a connection joined
//! mid-stream) makes its term false.

use crate::session::record::{Outcome, QueryRecord, SessionRecord};
use regex::Regex;
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    User,
    Db,
    App,
    Client,
    Server,
    Sqlstate,
    Text,
    Duration,
    Rows,
    Failed,
}

/// The field names, for error messages.
const FIELDS: &str = "user db app client server sqlstate text duration rows failed";

/// How a field's values compare.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Names and texts: `=` exact.
    Name,
    /// SQLSTATE: `=` a code or a class prefix, any case.
    Code,
    Addr,
    Num,
    Flag,
}

impl Key {
    fn parse(s: &str) -> Option<Key> {
        Some(match s.to_ascii_lowercase().as_str() {
            "user" => Key::User,
            "db" | "database" => Key::Db,
            "app" | "application" => Key::App,
            "client" => Key::Client,
            "server" => Key::Server,
            "sqlstate" | "code" => Key::Sqlstate,
            "text" | "sql" => Key::Text,
            "duration" => Key::Duration,
            "rows" => Key::Rows,
            "failed" => Key::Failed,
            _ => return None,
        })
    }

    fn kind(self) -> Kind {
        match self {
            Key::User | Key::Db | Key::App | Key::Text => Kind::Name,
            Key::Sqlstate => Kind::Code,
            Key::Client | Key::Server => Kind::Addr,
            Key::Duration | Key::Rows => Kind::Num,
            Key::Failed => Kind::Flag,
        }
    }

    /// Whether only statements have it (`failed` also applies to sessions).
    fn statement_only(self) -> bool {
        matches!(self, Key::Sqlstate | Key::Text | Key::Duration | Key::Rows)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Match,
    NotMatch,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Operators, longest first so that `>=` is not read as `>`.
const OPS: [(&str, Op); 9] = [
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("!=", Op::Ne),
    ("!~", Op::NotMatch),
    ("==", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("=", Op::Eq),
    ("~", Op::Match),
];

/// What a subject answers for one key.
pub(crate) enum Val<'a> {
    /// The subject has no such thing (a session has no duration): the term is unknown.
    NotApplicable,
    /// It could have one but it is unknown (user of a mid-stream session): the term
    /// is false.
    Missing,
    /// A text; for client and server an address, `IP` or `IP:port` (`[IPv6]:port`).
    Str(&'a str),
    Num(i64),
    Bool(bool),
}

/// Anything a filter can be applied to.
pub(crate) trait Subject {
    fn get(&self, key: Key) -> Val<'_>;
}

/// Who ran a statement: the connection's fields.
#[derive(Clone, Copy)]
pub(crate) struct Who<'a> {
    /// `IP` or `IP:port`.
    pub(crate) client: &'a str,
    /// `IP:port`, when known.
    pub(crate) server: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) database: Option<&'a str>,
    pub(crate) application: Option<&'a str>,
}

impl<'a> Who<'a> {
    pub(crate) fn of(client: &'a str, s: &'a SessionRecord) -> Self {
        Who {
            client,
            server: None,
            user: s.user.as_deref(),
            database: s.database.as_deref(),
            application: s.application.as_deref(),
        }
    }

    fn value(self, key: Key) -> Option<Val<'a>> {
        let opt = |v: Option<&'a str>| v.map_or(Val::Missing, Val::Str);
        Some(match key {
            Key::User => opt(self.user),
            Key::Db => opt(self.database),
            Key::App => opt(self.application),
            Key::Client => Val::Str(self.client),
            Key::Server => opt(self.server),
            _ => return None,
        })
    }
}

/// A statement's value for `key`, the same for every presenter.
pub(crate) fn statement_value<'a>(key: Key, who: Who<'a>, q: &'a QueryRecord) -> Val<'a> {
    if let Some(v) = who.value(key) {
        return v;
    }
    match key {
        Key::Sqlstate => q.error.as_ref().map_or(Val::Missing, |e| Val::Str(&e.code)),
        Key::Text => q.text.as_deref().map_or(Val::Missing, Val::Str),
        Key::Duration => Val::Num(q.duration_ns()),
        Key::Rows => Val::Num(q.rows_returned.max(q.rows_affected.unwrap_or(0)) as i64),
        Key::Failed => Val::Bool(q.outcome == Outcome::Failure),
        _ => Val::NotApplicable,
    }
}

/// A session's value for `key`: statement keys do not apply to it.
pub(crate) fn session_value<'a>(key: Key, who: Who<'a>, errors: u64) -> Val<'a> {
    if let Some(v) = who.value(key) {
        return v;
    }
    match key {
        Key::Failed => Val::Bool(errors > 0),
        _ => Val::NotApplicable,
    }
}

/// A statement with its connection, as the record presenters see it.
pub(crate) struct StatementView<'a> {
    pub(crate) who: Who<'a>,
    pub(crate) query: &'a QueryRecord,
}

impl Subject for StatementView<'_> {
    fn get(&self, key: Key) -> Val<'_> {
        statement_value(key, self.who, self.query)
    }
}

/// A session record.
pub(crate) struct SessionView<'a> {
    pub(crate) who: Who<'a>,
    pub(crate) errors: u64,
}

impl Subject for SessionView<'_> {
    fn get(&self, key: Key) -> Val<'_> {
        session_value(key, self.who, self.errors)
    }
}

/// A wire message: only its connection's fields.
pub(crate) struct MessageView<'a>(pub(crate) Who<'a>);

impl Subject for MessageView<'_> {
    fn get(&self, key: Key) -> Val<'_> {
        self.0.value(key).unwrap_or(Val::NotApplicable)
    }
}

/// An address pattern: a network (an IP is a /32 or /128) and/or a port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AddrPattern {
    net: Option<(IpAddr, u8)>,
    port: Option<u16>,
}

impl AddrPattern {
    /// `IP`, `IP/prefix`, `IPv4:port`, `[IPv6]:port`, `[IPv6]`, `:port`.
    fn parse(v: &str) -> Option<AddrPattern> {
        let net = |s: &str| -> Option<(IpAddr, u8)> {
            let (ip, len) = match s.split_once('/') {
                Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?)),
                None => (s.parse::<IpAddr>().ok()?, None),
            };
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            (len <= max).then_some((ip, len))
        };
        let port = |s: &str| s.parse::<u16>().ok();
        if let Some(rest) = v.strip_prefix('[') {
            let (ip, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(port(p.strip_prefix(':')?)?),
            };
            return Some(AddrPattern {
                net: Some(net(ip)?),
                port,
            });
        }
        if let Some(p) = v.strip_prefix(':').filter(|p| !p.contains(':')) {
            return Some(AddrPattern {
                net: None,
                port: Some(port(p)?),
            });
        }
        // One colon is IPv4 with a port; more is a bare IPv6 address.
        if let Some((ip, p)) = v.split_once(':').filter(|(_, p)| !p.contains(':')) {
            return Some(AddrPattern {
                net: Some(net(ip)?),
                port: Some(port(p)?),
            });
        }
        Some(AddrPattern {
            net: Some(net(v)?),
            port: None,
        })
    }

    /// Whether the address `have` (`IP` or `IP:port`, `[IPv6]:port`) is in the
    /// pattern; a pattern with a port needs an address with one.
    fn matches(&self, have: &str) -> bool {
        let (ip, port) = match have.parse::<std::net::SocketAddr>() {
            Ok(sa) => (sa.ip(), Some(sa.port())),
            Err(_) => match have.parse::<IpAddr>() {
                Ok(ip) => (ip, None),
                Err(_) => return false,
            },
        };
        if self.port.is_some() && self.port != port {
            return false;
        }
        self.net.is_none_or(|(net, len)| in_net(ip, net, len))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let shift = bits - u32::from(len);
    shift >= bits || (a >> shift) == (b >> shift)
}

#[derive(Clone, Debug)]
enum Test {
    /// `=`: exact (names), class prefix (SQLSTATE).
    Str(String),
    Regex(Regex),
    Addr(AddrPattern),
    Num(Op, i64),
    Flag,
}

#[derive(Clone, Debug)]
struct Term {
    key: Key,
    test: Test,
    /// `!=` and `!~`: the test's answer inverted (an unknown value stays false).
    negated: bool,
}

#[derive(Clone, Debug)]
enum Node {
    Term(Term),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// A parsed filter; the empty filter matches everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    root: Option<Node>,
    source: String,
}

/// A `--filter` expression that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset of the offending term.
    pub(crate) pos: usize,
    pub(crate) message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.pos + 1, self.message)
    }
}

impl std::error::Error for FilterError {}

/// `10ms`, `1.5s`, `250us`, `2m`; a bare number is milliseconds. Returns nanoseconds.
pub(crate) fn parse_duration(v: &str) -> Option<i64> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "" | "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        _ => return None,
    };
    Some((n * scale).round() as i64)
}

/// One operand alone, or the group of several.
fn group(mut v: Vec<Node>, of: fn(Vec<Node>) -> Node) -> Node {
    if v.len() == 1 { v.remove(0) } else { of(v) }
}

/// Recursive descent over the source, by byte offset.
struct Parser<'s> {
    s: &'s str,
    at: usize,
    /// Parentheses open around the current position.
    depth: usize,
}

type Parsed<T> = Result<T, FilterError>;

impl Parser<'_> {
    fn err<T>(&self, pos: usize, message: String) -> Parsed<T> {
        Err(FilterError { pos, message })
    }

    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        let hit = self.rest().starts_with(c);
        if hit {
            self.at += c.len_utf8();
        }
        hit
    }

    /// Consumes the keyword `w` (any case) when it stands alone: followed by the end,
    /// a space or a parenthesis.
    fn keyword(&mut self, w: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let hit = rest.len() >= w.len()
            && rest.is_char_boundary(w.len())
            && rest[..w.len()].eq_ignore_ascii_case(w)
            && rest[w.len()..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '(' || c == ')');
        if hit {
            self.at += w.len();
        }
        hit
    }

    fn or(&mut self) -> Parsed<Node> {
        let mut v = vec![self.and()?];
        while self.keyword("or") {
            v.push(self.and()?);
        }
        Ok(group(v, Node::Or))
    }

    fn and(&mut self) -> Parsed<Node> {
        let mut v = vec![self.unary()?];
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.is_empty() || rest.starts_with(')') {
                break;
            }
            // `or` binds looser: leave it to the caller.
            let save = self.at;
            if self.keyword("or") {
                self.at = save;
                break;
            }
            self.keyword("and");
            v.push(self.unary()?);
        }
        Ok(group(v, Node::And))
    }

    fn unary(&mut self) -> Parsed<Node> {
        self.skip_ws();
        let start = self.at;
        if self.keyword("not") || self.eat('!') {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.eat('(') {
            self.depth += 1;
            let e = self.or()?;
            if !self.eat(')') {
                return self.err(start, "unclosed parenthesis".into());
            }
            self.depth -= 1;
            return Ok(e);
        }
        match self.rest().chars().next() {
            None => self.err(start, "expected a term after it".into()),
            Some(')') => self.err(start, "unexpected )".into()),
            Some(_) => self.term().map(Node::Term),
        }
    }

    fn term(&mut self) -> Parsed<Term> {
        let start = self.at;
        let name_len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        let name = &self.s[start..start + name_len];
        if name.is_empty() {
            let c = self.rest().chars().next().unwrap_or(' ');
            return self.err(start, format!("expected a field name, found {c:?}"));
        }
        let Some(key) = Key::parse(name) else {
            return self.err(start, format!("unknown key {name:?} (fields: {FIELDS})"));
        };
        self.at += name_len;
        let after_name = self.at;
        self.skip_ws();
        let op = OPS
            .iter()
            .find(|(s, _)| self.rest().starts_with(s))
            .map(|&(s, op)| (s.len(), op));
        if key == Key::Failed {
            if op.is_some() {
                return self.err(start, "`failed` takes no value (use `not failed`)".into());
            }
            self.at = after_name;
            return Ok(Term {
                key,
                test: Test::Flag,
                negated: false,
            });
        }
        let Some((op_len, op)) = op else {
            return self.err(
                start,
                format!("{name}: expected an operator (= != ~ !~ > >= < <=)"),
            );
        };
        self.at += op_len;
        self.skip_ws();
        let value = self.value()?;
        if value.is_empty() {
            return self.err(start, format!("{name}: missing value"));
        }
        let negated = matches!(op, Op::Ne | Op::NotMatch);
        let test = match (key.kind(), op) {
            (Kind::Num, Op::Match | Op::NotMatch) => {
                return self.err(start, format!("{name} is a number: use > >= < <= = !="));
            }
            (Kind::Num, _) => {
                let n = if key == Key::Duration {
                    parse_duration(&value)
                } else {
                    value.parse::<i64>().ok()
                };
                let Some(n) = n else {
                    return self.err(start, format!("{name}: bad number {value:?}"));
                };
                return Ok(Term {
                    key,
                    test: Test::Num(op, n),
                    negated: false,
                });
            }
            (_, Op::Match | Op::NotMatch) => match Regex::new(&format!("(?i){value}")) {
                Ok(re) => Test::Regex(re),
                Err(e) => {
                    let e = e.to_string().replace('\n', " ");
                    return self.err(start, format!("{name}: bad regex: {e}"));
                }
            },
            (_, Op::Gt | Op::Ge | Op::Lt | Op::Le) => {
                return self.err(start, format!("{name} takes = != ~ !~"));
            }
            (Kind::Addr, _) => match AddrPattern::parse(&value) {
                Some(p) => Test::Addr(p),
                None => {
                    return self.err(
                        start,
                        format!(
                            "{name}: {value:?} is not an address (IP, IP/prefix, IP:port, [IPv6]:port, :port)"
                        ),
                    );
                }
            },
            (Kind::Code, _) => Test::Str(value.to_ascii_uppercase()),
            _ => Test::Str(value),
        };
        Ok(Term { key, test, negated })
    }

    /// A quoted value, or the characters up to the next space, less the `)` that
    /// close enclosing groups (a regex's own balanced parentheses stay).
    fn value(&mut self) -> Parsed<String> {
        let start = self.at;
        let mut chars = self.rest().char_indices();
        match chars.next() {
            Some((_, q @ ('\'' | '"'))) => {
                let mut out = String::new();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, n)) if n == q || n == '\\' => out.push(n),
                            Some((_, n)) => {
                                out.push('\\');
                                out.push(n);
                            }
                            None => break,
                        },
                        c if c == q => {
                            self.at = start + i + 1;
                            return Ok(out);
                        }
                        c => out.push(c),
                    }
                }
                self.err(start, "unclosed quote".into())
            }
            _ => {
                let rest = self.rest();
                let mut v = &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())];
                let opens = v.matches('(').count();
                let mut excess = v.matches(')').count().saturating_sub(opens).min(self.depth);
                while excess > 0 && v.ends_with(')') {
                    v = &v[..v.len() - 1];
                    excess -= 1;
                }
                let v = v.to_string();
                self.at += v.len();
                Ok(v)
            }
        }
    }
}

/// Parses a filter expression; an empty or blank string gives the match-all filter.
pub fn parse(s: &str) -> Result<Filter, FilterError> {
    let mut p = Parser { s, at: 0, depth: 0 };
    p.skip_ws();
    let root = if p.rest().is_empty() {
        None
    } else {
        let root = p.or()?;
        p.skip_ws();
        if !p.rest().is_empty() {
            return p.err(p.at, "unexpected )".into());
        }
        Some(root)
    };
    Ok(Filter {
        root,
        source: s.trim().to_string(),
    })
}

fn cmp(op: Op, a: i64, b: i64) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Match | Op::NotMatch => false,
    }
}

impl Term {
    /// True, false, or `None` when the subject does not have the field.
    fn eval(&self, s: &dyn Subject) -> Option<bool> {
        let hit = match (&self.test, s.get(self.key)) {
            (_, Val::NotApplicable) => return None,
            (Test::Str(want), Val::Str(have)) => {
                if self.key == Key::Sqlstate {
                    have.len() >= want.len()
                        && have.as_bytes()[..want.len()].eq_ignore_ascii_case(want.as_bytes())
                } else {
                    have == want
                }
            }
            (Test::Regex(re), Val::Str(have)) => re.is_match(have),
            (Test::Addr(p), Val::Str(have)) => p.matches(have),
            (Test::Num(op, want), Val::Num(have)) => cmp(*op, have, *want),
            (Test::Flag, Val::Bool(b)) => b,
            // Not known: no comparison holds, `!=` included.
            _ => return Some(false),
        };
        Some(hit != self.negated)
    }
}

/// `and` (decided by a false operand) or `or` (by a true one), three-valued.
fn combine(v: &[Node], s: &dyn Subject, decisive: bool) -> Option<bool> {
    let mut r = Some(!decisive);
    for n in v {
        match n.eval(s) {
            Some(b) if b == decisive => return Some(decisive),
            None => r = None,
            Some(_) => {}
        }
    }
    r
}

impl Node {
    /// Three-valued, as SQL's NULL: `None` is unknown.
    fn eval(&self, s: &dyn Subject) -> Option<bool> {
        match self {
            Node::Term(t) => t.eval(s),
            Node::Not(n) => n.eval(s).map(|b| !b),
            Node::And(v) => combine(v, s, false),
            Node::Or(v) => combine(v, s, true),
        }
    }

    fn any_term(&self, f: &dyn Fn(&Term) -> bool) -> bool {
        match self {
            Node::Term(t) => f(t),
            Node::Not(n) => n.any_term(f),
            Node::And(v) | Node::Or(v) => v.iter().any(|n| n.any_term(f)),
        }
    }
}

impl Filter {
    pub(crate) fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The text the filter was parsed from (trimmed).
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether the filter does not rule `s` out: true, or unknown because it names a
    /// field `s` does not have (the TUI's session list).
    pub(crate) fn matches(&self, s: &dyn Subject) -> bool {
        self.root.as_ref().is_none_or(|n| n.eval(s) != Some(false))
    }

    /// Whether the filter is true for `s` (the record presenters: a record without a
    /// field the filter needs is not kept).
    pub(crate) fn keeps(&self, s: &dyn Subject) -> bool {
        self.root.as_ref().is_none_or(|n| n.eval(s) == Some(true))
    }

    /// Whether any term is about statements rather than sessions.
    pub(crate) fn has_query_terms(&self) -> bool {
        self.root
            .as_ref()
            .is_some_and(|n| n.any_term(&|t| t.key.statement_only() || t.key == Key::Failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subject with every field optional: `None` is a field it does not have.
    #[derive(Default)]
    struct S {
        user: Option<Option<&'static str>>,
        client: Option<&'static str>,
        server: Option<&'static str>,
        sqlstate: Option<Option<&'static str>>,
        text: Option<&'static str>,
        duration: Option<i64>,
        rows: Option<i64>,
        failed: Option<bool>,
    }

    impl Subject for S {
        fn get(&self, key: Key) -> Val<'_> {
            let s = |v: Option<Option<&'static str>>| match v {
                None => Val::NotApplicable,
                Some(None) => Val::Missing,
                Some(Some(v)) => Val::Str(v),
            };
            match key {
                Key::User => s(self.user),
                Key::Client => s(self.client.map(Some)),
                Key::Server => s(self.server.map(Some)),
                Key::Sqlstate => s(self.sqlstate),
                Key::Text => s(self.text.map(Some)),
                Key::Duration => self.duration.map_or(Val::NotApplicable, Val::Num),
                Key::Rows => self.rows.map_or(Val::NotApplicable, Val::Num),
                Key::Failed => self.failed.map_or(Val::NotApplicable, Val::Bool),
                Key::Db | Key::App => Val::Missing,
            }
        }
    }

    fn statement() -> S {
        S {
            user: Some(Some("alice")),
            client: Some("10.1.2.3:40001"),
            server: Some("[2001:db8::5]:5432"),
            sqlstate: Some(Some("23505")),
            text: Some("SELECT * FROM Orders WHERE id = 1"),
            duration: Some(15_000_000),
            rows: Some(3),
            failed: Some(true),
        }
    }

    fn session() -> S {
        S {
            user: Some(Some("alice")),
            client: Some("10.1.2.3:40001"),
            server: Some("[2001:db8::5]:5432"),
            failed: Some(false),
            ..S::default()
        }
    }

    /// (filter, kept for the statement, kept for the session, shown for the session
    /// in the TUI's lenient sense).
    #[test]
    fn evaluates_over_record_kinds() {
        let cases: &[(&str, bool, bool, bool)] = &[
            ("", true, true, true),
            ("   ", true, true, true),
            ("user=alice", true, true, true),
            ("USER=alice", true, true, true),
            ("user=Alice", false, false, false),
            ("user!=bob", true, true, true),
            ("!user=alice", false, false, false),
            ("not user=alice", false, false, false),
            ("user~^AL", true, true, true),
            ("user!~^al", false, false, false),
            ("sqlstate=23", true, false, true),
            ("sqlstate=23505", true, false, true),
            ("sqlstate=42", false, false, true),
            ("duration>10ms", true, false, true),
            ("duration>15ms", false, false, true),
            ("duration>=15ms", true, false, true),
            ("duration > 0.01s", true, false, true),
            ("duration<1s", true, false, true),
            ("duration>20000us", false, false, true),
            ("duration>14", true, false, true),
            ("not duration>1s", true, false, true),
            ("rows>2", true, false, true),
            ("rows=3 failed", true, false, false),
            ("rows<3", false, false, true),
            ("failed", true, false, false),
            ("!failed", false, true, true),
            ("text~orders", true, false, true),
            ("text~'from orders'", true, false, true),
            ("text~\"FROM Orders\"", true, false, true),
            ("text~(?-i)from", false, false, true),
            ("text~^select", true, false, true),
            ("text=select", false, false, true),
            ("client=10.1.2.3", true, true, true),
            ("client=10.0.0.0/8", true, true, true),
            ("client=10.1.2.0/24", true, true, true),
            ("client=10.1.3.0/24", false, false, false),
            ("client=0.0.0.0/0", true, true, true),
            ("client=10.1.2.3:40001", true, true, true),
            ("client=10.1.2.3:40002", false, false, false),
            ("client=:40001", true, true, true),
            ("client!=10.0.0.0/8", false, false, false),
            ("client=2001:db8::/32", false, false, false),
            ("server=2001:db8::/32", true, true, true),
            ("server=[2001:db8::5]:5432", true, true, true),
            ("server=[2001:db8::5]", true, true, true),
            ("server=:5433", false, false, false),
            ("client~^10\\.1", true, true, true),
            // and, or, not, parentheses; unknown combines as SQL's NULL.
            ("user=alice and duration>1s", false, false, true),
            ("user=alice and duration>1ms", true, false, true),
            ("user=bob or duration>1ms", true, false, true),
            ("user=alice or duration>1s", true, true, true),
            ("user=bob or duration>1s", false, false, true),
            ("not (user=bob or rows>5)", true, false, true),
            ("(user=bob or rows=3) and failed", true, false, false),
            ("user=bob or (rows=3 and failed)", true, false, false),
            ("((user=alice))", true, true, true),
            (
                "user=alice AND NOT (text~'x y' OR rows>100)",
                true,
                false,
                true,
            ),
            ("(text~(?i)from)", true, false, true),
            ("(text~a(b)c) or user=alice", true, true, true),
            ("db=shop", false, false, false),
            ("!db=shop", true, true, true),
            ("db!=shop", false, false, false),
        ];
        for &(src, stmt, sess, shown) in cases {
            let f = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(f.keeps(&statement()), stmt, "statement: {src}");
            assert_eq!(f.matches(&statement()), stmt, "statement, lenient: {src}");
            assert_eq!(f.keeps(&session()), sess, "session: {src}");
            assert_eq!(f.matches(&session()), shown, "session, lenient: {src}");
        }
    }

    #[test]
    fn messages_have_only_connection_fields() {
        let who = Who {
            client: "[::1]:50000",
            server: Some("[::1]:5432"),
            user: Some("bob"),
            database: None,
            application: None,
        };
        let m = MessageView(who);
        let keeps = |src: &str| parse(src).unwrap().keeps(&m);
        assert!(keeps("user=bob client=::1 server=[::1]:5432"));
        assert!(keeps("client=::/0"));
        assert!(!keeps("db=bob"), "a database not known");
        assert!(!keeps("duration>0"));
        assert!(!keeps("failed"));
        assert!(!keeps("not failed"));
        assert!(keeps("user=bob or failed"));
    }

    #[test]
    fn errors_point_at_the_term() {
        let cases: &[(&str, usize, &str)] = &[
            ("bogus=1", 0, "unknown key \"bogus\""),
            ("user=a duration>xyz", 7, "bad number"),
            ("rows~1", 0, "is a number"),
            ("user>3", 0, "takes = != ~"),
            ("text~(", 0, "bad regex"),
            ("user=", 0, "missing value"),
            ("user", 0, "expected an operator"),
            ("user:alice", 0, "expected an operator"),
            ("user<>alice", 0, "takes = != ~"),
            ("duration=>1s", 0, "bad number"),
            ("failed=1", 0, "takes no value"),
            ("app='x y", 4, "unclosed quote"),
            ("app=\"x y", 4, "unclosed quote"),
            ("duration>5h", 0, "bad number"),
            ("client=10.0.0.0/33", 0, "not an address"),
            ("client=alice", 0, "not an address"),
            ("server=[::1]:99999", 0, "not an address"),
            ("(user=a", 0, "unclosed parenthesis"),
            ("user=a )", 7, "unexpected )"),
            ("user=a and", 10, "expected a term"),
            ("user=a or or", 10, "unknown key \"or\""),
            ("not", 3, "expected a term"),
            ("()", 1, "unexpected )"),
            ("=3", 0, "expected a field name"),
        ];
        for (src, pos, msg) in cases {
            let e = parse(src).expect_err(src);
            assert_eq!(e.pos, *pos, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
    }

    #[test]
    fn quoting() {
        let q = S {
            user: Some(Some("a b")),
            text: Some(r#"it's "quoted" \d"#),
            ..S::default()
        };
        for src in [
            "user='a b'",
            "user=\"a b\"",
            r#"text~'it\'s'"#,
            r#"text~"\"quoted\"""#,
            r#"text~'\\\\d'"#,
            "(user='a b')",
        ] {
            assert!(parse(src).unwrap().keeps(&q), "{src}");
        }
        assert!(!parse("user='a b'").unwrap().has_query_terms());
        assert!(parse("failed").unwrap().has_query_terms());
        assert!(parse("user=x or not text~y").unwrap().has_query_terms());
    }

    #[test]
    fn address_patterns() {
        let p = |s| AddrPattern::parse(s);
        assert_eq!(p("10.0.0.0/8").unwrap().net.unwrap().1, 8);
        assert_eq!(p("::1").unwrap().net.unwrap().1, 128);
        assert_eq!(p("[::1]:5432").unwrap().port, Some(5432));
        assert_eq!(p("1.2.3.4:5").unwrap().port, Some(5));
        for bad in [
            "", "1.2.3", "[::1", "[::1]x", "1.2.3.4:", "1.2.3.4/", ":x", "::1/129",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert!(in_net(
            "192.168.1.7".parse().unwrap(),
            "192.168.0.0".parse().unwrap(),
            16
        ));
        assert!(!in_net(
            "192.169.1.7".parse().unwrap(),
            "192.168.0.0".parse().unwrap(),
            16
        ));
        assert!(!in_net(
            "::1".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
    }
}
