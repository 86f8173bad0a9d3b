//! The filter language shared by the TUI and `--filter`: whitespace-separated terms,
//! all of which must hold. Pure (no terminal, no pipeline) so other presenters can use it.
//!
//! ```text
//! user=alice db=shop app~^psql client=10.0.0.5 sqlstate=23   strings: = exact, != not, ~ regex
//! duration>10ms duration<=2s rows>100                        numbers: > >= < <= = !=
//! text~'(?i)select .* from orders' failed !failed            free text (regex), flag, negation
//! ```
//! `sqlstate=` also matches a class prefix (`sqlstate=23` is every integrity violation).
//! A term about something the subject does not have (`duration>` for a session) holds.

use crate::session::record::{Outcome, QueryRecord, SessionRecord};
use regex::Regex;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    User,
    Db,
    App,
    Client,
    Sqlstate,
    Text,
    Duration,
    Rows,
    Failed,
}

impl Key {
    fn parse(s: &str) -> Option<Key> {
        Some(match s {
            "user" => Key::User,
            "db" | "database" => Key::Db,
            "app" | "application" => Key::App,
            "client" => Key::Client,
            "sqlstate" | "code" => Key::Sqlstate,
            "text" | "sql" => Key::Text,
            "duration" => Key::Duration,
            "rows" => Key::Rows,
            "failed" => Key::Failed,
            _ => return None,
        })
    }

    fn numeric(self) -> bool {
        matches!(self, Key::Duration | Key::Rows)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Match,
    Gt,
    Ge,
    Lt,
    Le,
}

/// What a subject answers for one key.
pub enum Val<'a> {
    /// The subject has no such thing (a session has no duration): the term holds.
    NotApplicable,
    /// It could have one but it is unknown (user of a mid-stream session): no match.
    Missing,
    Str(&'a str),
    Num(i64),
    Bool(bool),
}

/// Anything a filter can be applied to.
pub trait Subject {
    fn get(&self, key: Key) -> Val<'_>;
}

/// Who ran a statement: the fields the session-level keys look at.
#[derive(Clone, Copy)]
pub struct Who<'a> {
    pub client: &'a str,
    pub user: Option<&'a str>,
    pub database: Option<&'a str>,
    pub application: Option<&'a str>,
}

impl<'a> Who<'a> {
    pub fn of(client: &'a str, s: &'a SessionRecord) -> Self {
        Who {
            client,
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
            _ => return None,
        })
    }
}

/// A statement's value for `key`, the same for every presenter.
pub fn statement_value<'a>(key: Key, who: Who<'a>, q: &'a QueryRecord) -> Val<'a> {
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
pub fn session_value<'a>(key: Key, who: Who<'a>, errors: u64) -> Val<'a> {
    if let Some(v) = who.value(key) {
        return v;
    }
    match key {
        Key::Failed => Val::Bool(errors > 0),
        _ => Val::NotApplicable,
    }
}

/// A statement with its session, as the record presenters see it.
pub struct StatementView<'a> {
    pub client: &'a str,
    pub session: &'a SessionRecord,
    pub query: &'a QueryRecord,
}

impl Subject for StatementView<'_> {
    fn get(&self, key: Key) -> Val<'_> {
        statement_value(key, Who::of(self.client, self.session), self.query)
    }
}

/// A session record alone.
pub struct SessionView<'a> {
    pub client: &'a str,
    pub session: &'a SessionRecord,
}

impl Subject for SessionView<'_> {
    fn get(&self, key: Key) -> Val<'_> {
        session_value(key, Who::of(self.client, self.session), self.session.errors)
    }
}

#[derive(Clone, Debug)]
enum Test {
    Str(Op, String),
    Regex(Regex),
    Num(Op, i64),
    Flag,
}

#[derive(Clone, Debug)]
struct Term {
    key: Key,
    negated: bool,
    test: Test,
}

/// A parsed filter; the empty filter matches everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    terms: Vec<Term>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Character offset of the offending term.
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.pos + 1, self.message)
    }
}

impl std::error::Error for FilterError {}

/// Splits on whitespace outside double quotes; quotes are removed, `\"` and `\\` kept
/// literal. Returns each token with its start offset.
fn tokens(s: &str) -> Result<Vec<(usize, String)>, FilterError> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    let mut quote_start = None;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                cur.get_or_insert((i, String::new()));
                quote_start = if quote_start.is_some() { None } else { Some(i) };
            }
            '\\' if quote_start.is_some() => {
                let (_, t) = cur.get_or_insert((i, String::new()));
                match chars.next() {
                    Some((_, n @ ('"' | '\\'))) => t.push(n),
                    Some((_, n)) => {
                        t.push('\\');
                        t.push(n);
                    }
                    None => t.push('\\'),
                }
            }
            c if c.is_whitespace() && quote_start.is_none() => out.extend(cur.take()),
            c => cur.get_or_insert((i, String::new())).1.push(c),
        }
    }
    if let Some(pos) = quote_start {
        return Err(FilterError {
            pos,
            message: "unclosed quote".into(),
        });
    }
    out.extend(cur);
    Ok(out)
}

/// `10ms`, `1.5s`, `250us`, `2m`; a bare number is milliseconds. Returns nanoseconds.
fn parse_duration(v: &str) -> Option<i64> {
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

fn parse_term(pos: usize, tok: &str) -> Result<Term, FilterError> {
    let err = |message: String| FilterError { pos, message };
    let (negated, body) = match tok.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, tok),
    };
    let key_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (key_str, rest) = body.split_at(key_end);
    let key = Key::parse(&key_str.to_ascii_lowercase()).ok_or_else(|| {
        err(format!(
            "unknown key {key_str:?} (user db app client sqlstate text duration rows failed)"
        ))
    })?;
    if key == Key::Failed {
        if !rest.is_empty() {
            return Err(err("`failed` takes no value (use !failed to negate)".into()));
        }
        return Ok(Term {
            key,
            negated,
            test: Test::Flag,
        });
    }
    let ops = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
        ("~", Op::Match),
    ];
    let Some((op, value)) = ops
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v)))
    else {
        return Err(err(format!(
            "{key_str}: expected an operator (= != ~ > < >= <=)"
        )));
    };
    if value.is_empty() {
        return Err(err(format!("{key_str}: missing value")));
    }
    let test = match (key.numeric(), op) {
        (false, Op::Match) => Test::Regex(
            Regex::new(value).map_err(|e| err(format!("bad regex: {e}").replace('\n', " ")))?,
        ),
        (false, Op::Eq | Op::Ne) => Test::Str(op, value.to_string()),
        (false, _) => return Err(err(format!("{key_str} takes = != or ~"))),
        (true, Op::Match) => return Err(err(format!("{key_str} is a number: use > < = ..."))),
        (true, _) => {
            let n = if key == Key::Duration {
                parse_duration(value)
            } else {
                value.parse::<i64>().ok()
            };
            Test::Num(
                op,
                n.ok_or_else(|| err(format!("{key_str}: bad number {value:?}")))?,
            )
        }
    };
    Ok(Term { key, negated, test })
}

/// Parses a filter expression; an empty or blank string gives the match-all filter.
pub fn parse(s: &str) -> Result<Filter, FilterError> {
    let terms = tokens(s)?
        .into_iter()
        .map(|(pos, t)| parse_term(pos, &t))
        .collect::<Result<_, _>>()?;
    Ok(Filter {
        terms,
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
        Op::Match => false,
    }
}

impl Term {
    fn holds(&self, s: &dyn Subject) -> bool {
        let v = s.get(self.key);
        if matches!(v, Val::NotApplicable) {
            return true;
        }
        let hit = match (&self.test, v) {
            (Test::Str(op, want), Val::Str(have)) => {
                let eq = if self.key == Key::Sqlstate {
                    have.starts_with(want.as_str())
                } else {
                    have == want
                };
                eq == (*op == Op::Eq)
            }
            (Test::Regex(re), Val::Str(have)) => re.is_match(have),
            (Test::Num(op, want), Val::Num(have)) => cmp(*op, have, *want),
            (Test::Flag, Val::Bool(b)) => b,
            _ => false,
        };
        hit != self.negated
    }
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The text the filter was parsed from (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, s: &dyn Subject) -> bool {
        self.terms.iter().all(|t| t.holds(s))
    }

    /// Whether any term is about statements rather than sessions.
    pub fn has_query_terms(&self) -> bool {
        self.terms.iter().any(|t| {
            matches!(
                t.key,
                Key::Sqlstate | Key::Text | Key::Duration | Key::Rows | Key::Failed
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Q {
        user: Option<&'static str>,
        sqlstate: Option<&'static str>,
        text: Option<&'static str>,
        duration: Option<i64>,
        rows: Option<i64>,
        failed: Option<bool>,
    }

    impl Subject for Q {
        fn get(&self, key: Key) -> Val<'_> {
            let s = |v: Option<&'static str>| v.map_or(Val::Missing, Val::Str);
            match key {
                Key::User => s(self.user),
                Key::Sqlstate => s(self.sqlstate),
                Key::Text => s(self.text),
                Key::Duration => self.duration.map_or(Val::NotApplicable, Val::Num),
                Key::Rows => self.rows.map_or(Val::NotApplicable, Val::Num),
                Key::Failed => self.failed.map_or(Val::NotApplicable, Val::Bool),
                _ => Val::Missing,
            }
        }
    }

    #[test]
    fn parses_and_matches() {
        let q = Q {
            user: Some("alice"),
            sqlstate: Some("23505"),
            text: Some("SELECT * FROM orders"),
            duration: Some(15_000_000),
            rows: Some(3),
            failed: Some(true),
        };
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("   ", true),
            ("user=alice", true),
            ("user=bob", false),
            ("user!=bob", true),
            ("!user=alice", false),
            ("user~^al", true),
            ("sqlstate=23", true),
            ("sqlstate=23505", true),
            ("sqlstate=42", false),
            ("duration>10ms", true),
            ("duration>15ms", false),
            ("duration>=15ms", true),
            ("duration<1s", true),
            ("duration>0.01s", true),
            ("duration>20000us", false),
            ("duration>14", true),
            ("rows>2", true),
            ("rows=3 failed", true),
            ("rows<3", false),
            ("!failed", false),
            ("text~orders", true),
            ("text~\"FROM orders\"", true),
            ("text~(?i)from", true),
            ("text~^select", false),
            ("user=alice db=shop", false),
            ("client=10.0.0.1", false),
        ];
        for (src, want) in cases {
            let f = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(f.matches(&q), *want, "{src}");
        }
    }

    #[test]
    fn terms_that_do_not_apply_hold() {
        let session = Q {
            user: Some("alice"),
            ..Q::default()
        };
        assert!(
            parse("duration>1s rows>5 failed")
                .unwrap()
                .matches(&session)
        );
        assert!(parse("!failed").unwrap().matches(&session));
        assert!(!parse("user=alice sqlstate=23").unwrap().matches(&session));
    }

    #[test]
    fn errors_point_at_the_term() {
        let cases: &[(&str, usize, &str)] = &[
            ("bogus=1", 0, "unknown key"),
            ("user=a duration>xyz", 7, "bad number"),
            ("rows~1", 0, "is a number"),
            ("user>3", 0, "takes = != or ~"),
            ("text~(", 0, "bad regex"),
            ("user=", 0, "missing value"),
            ("user", 0, "expected an operator"),
            ("failed=1", 0, "takes no value"),
            ("app=\"x y", 4, "unclosed quote"),
            ("duration>5h", 0, "bad number"),
        ];
        for (src, pos, msg) in cases {
            let e = parse(src).expect_err(src);
            assert_eq!(e.pos, *pos, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
    }

    #[test]
    fn quoting() {
        let t = tokens(r#"app="my app" text~"a \"b\" \\d""#).unwrap();
        assert_eq!(
            t,
            vec![(0, "app=my app".into()), (13, r#"text~a "b" \d"#.into())]
        );
        let q = Q {
            user: Some("a b"),
            ..Q::default()
        };
        assert!(parse("user=\"a b\"").unwrap().matches(&q));
        assert!(!parse("user=\"a b\"").unwrap().has_query_terms());
        assert!(parse("failed").unwrap().has_query_terms());
    }
}
