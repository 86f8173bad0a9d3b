//! Light lexical work on SQL text: split a simple-query string into statements, name
//! the operation, and fingerprint a statement with its literals normalised.
//!
//! One small scanner serves all three, so quoting rules (strings, E'' strings,
//! quoted identifiers, dollar quotes, comments) are handled in one place.

use std::fmt::Write as _;

/// A lexical piece of SQL as the scanner sees it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Tok {
    Word,
    Number,
    Str,
    QuotedIdent,
    Param,
    Space,
    Comment,
    Semicolon,
    Other,
}

/// Byte classes for the scanner's loops (one table load instead of a chain of
/// comparisons per byte).
const SPACE: u8 = 1;
/// Continues a word: ASCII alphanumerics, `_`, `$` and every non-ASCII byte.
const WORD: u8 = 2;
/// A token of its own whatever follows, never a literal's start nor a comment's
/// (the scanner's `Other` and `Semicolon` bytes but `-`, `/`, `.`, `$` and 0; `_` is a word's).
const PUNCT: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
            t[i] |= SPACE;
        }
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[i] |= WORD;
        }
        if c == b'$' || c >= 0x80 {
            t[i] |= WORD;
        }
        if c.is_ascii_punctuation() && !matches!(c, b'-' | b'/' | b'.' | b'$' | b'_' | b'\'' | b'"')
        {
            t[i] |= PUNCT;
        }
        i += 1;
    }
    t
};

/// The first index from `j` whose byte is not of `class` (or the end).
#[inline]
fn skip(s: &[u8], mut j: usize, class: u8) -> usize {
    while j < s.len() && CLASS[s[j] as usize] & class != 0 {
        j += 1;
    }
    j
}

/// Yields (token kind, start, end) over `sql`; never fails, never panics.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Iterator for Scanner<'_> {
    type Item = (Tok, usize, usize);

    // Inlined: the call was a third of a token's cost.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let start = self.i;
        let c = *s.get(start)?;
        let at = |j: usize| s.get(j).copied().unwrap_or(0);
        let mut j = start + 1;
        // Words and white space, most tokens, first: a word's first byte is a
        // string's prefix only before a quote or `&`, a number's or parameter's never.
        let class = CLASS[c as usize];
        if class & SPACE != 0 {
            self.i = skip(s, j, SPACE);
            return Some((Tok::Space, start, self.i));
        }
        if class & WORD != 0 && !c.is_ascii_digit() && c != b'$' && !matches!(at(j), b'\'' | b'&') {
            self.i = skip(s, j, WORD);
            return Some((Tok::Word, start, self.i));
        }
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                j = skip(s, j, SPACE);
                Tok::Space
            }
            b'-' if at(j) == b'-' => {
                while j < s.len() && s[j] != b'\n' {
                    j += 1;
                }
                Tok::Comment
            }
            b'/' if at(j) == b'*' => {
                // Nested block comments, as PostgreSQL allows.
                let mut depth = 1;
                j += 1;
                while j < s.len() && depth > 0 {
                    if s[j] == b'*' && at(j + 1) == b'/' {
                        depth -= 1;
                        j += 2;
                    } else if s[j] == b'/' && at(j + 1) == b'*' {
                        depth += 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                Tok::Comment
            }
            b'\'' => {
                j = end_of_quoted(s, j, b'\'', false);
                Tok::Str
            }
            b'e' | b'E' if at(j) == b'\'' => {
                j = end_of_quoted(s, j + 1, b'\'', true);
                Tok::Str
            }
            // Bit strings, hexadecimal bit strings, Unicode-escaped strings: one
            // constant with their prefix (N'' is the NCHAR keyword then a string).
            b'b' | b'B' | b'x' | b'X' if at(j) == b'\'' => {
                j = end_of_quoted(s, j + 1, b'\'', false);
                Tok::Str
            }
            b'u' | b'U' if at(j) == b'&' && at(j + 1) == b'\'' => {
                j = end_of_quoted(s, j + 2, b'\'', false);
                Tok::Str
            }
            b'"' => {
                j = end_of_quoted(s, j, b'"', false);
                Tok::QuotedIdent
            }
            b'$' if at(j).is_ascii_digit() => {
                while at(j).is_ascii_digit() {
                    j += 1;
                }
                Tok::Param
            }
            b'$' => match dollar_tag_end(s, start) {
                Some(tag_end) => {
                    let tag = &s[start..tag_end];
                    j = find(s, tag_end, tag).map_or(s.len(), |k| k + tag.len());
                    Tok::Str
                }
                None => Tok::Other,
            },
            b';' => Tok::Semicolon,
            b'0'..=b'9' | b'.' if c != b'.' || at(j).is_ascii_digit() => {
                j = end_of_number(s, start);
                Tok::Number
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                j = skip(s, j, WORD);
                Tok::Word
            }
            _ => Tok::Other,
        };
        self.i = j.min(s.len());
        Some((tok, start, self.i))
    }
}

/// Index just past a numeric literal: digits, `.`, `_` separators, `0x`-style
/// prefixes and an exponent with its sign (`1.5e-3`).
fn end_of_number(s: &[u8], mut j: usize) -> usize {
    let at = |j: usize| s.get(j).copied().unwrap_or(0);
    let hex = at(j) == b'0' && matches!(at(j + 1), b'x' | b'X');
    while at(j).is_ascii_alphanumeric() || at(j) == b'.' || at(j) == b'_' {
        let exp = !hex && matches!(at(j), b'e' | b'E');
        j += 1;
        if exp && matches!(at(j), b'+' | b'-') && at(j + 1).is_ascii_digit() {
            j += 1;
        }
    }
    j
}

/// Index just past the closing quote (a doubled quote is an escaped one; in E''
/// strings a backslash escapes the next byte too).
fn end_of_quoted(s: &[u8], mut j: usize, q: u8, backslash: bool) -> usize {
    while j < s.len() {
        if backslash && s[j] == b'\\' {
            j += 2;
        } else if s[j] == q {
            if s.get(j + 1) == Some(&q) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    s.len()
}

/// `$tag$` at `start`: the index after its closing `$`.
fn dollar_tag_end(s: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
        j += 1;
    }
    (s.get(j) == Some(&b'$')).then_some(j + 1)
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn scan(s: &[u8]) -> Scanner<'_> {
    Scanner { s, i: 0 }
}

/// Splits a simple-query string into its statements (trimmed, without the `;`);
/// empty statements are kept as empty strings, as the server answers them with
/// EmptyQueryResponse only when the whole string is empty.
pub(crate) fn split_statements(sql: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut begin = 0;
    for (tok, start, end) in scan(sql) {
        if tok == Tok::Semicolon {
            out.push(trim(&sql[begin..start]));
            begin = end;
        }
    }
    let tail = trim(&sql[begin..]);
    if !tail.is_empty() || out.is_empty() {
        out.push(tail);
    }
    // The server skips statements that hold nothing but whitespace and comments.
    out.retain(|s| !is_blank(s));
    out
}

fn is_blank(s: &[u8]) -> bool {
    scan(s).all(|(t, _, _)| matches!(t, Tok::Space | Tok::Comment))
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(a, |p| p + 1);
    &s[a..b.max(a)]
}

/// The statement's first keyword, upper-cased (`SELECT`, `INSERT`, `WITH`, ...).
pub(crate) fn operation(sql: &[u8]) -> Option<String> {
    scan(sql)
        .find(|(t, _, _)| !matches!(t, Tok::Space | Tok::Comment | Tok::Other))
        .filter(|(t, _, _)| *t == Tok::Word)
        .map(|(_, a, b)| String::from_utf8_lossy(&sql[a..b]).to_ascii_uppercase())
}

/// Whether a statement whose tag is COMMIT or ROLLBACK leaves a transaction open:
/// `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] s`, or `… AND CHAIN`.
pub(crate) fn keeps_transaction(sql: &[u8]) -> bool {
    // Compared as written, without a lower-cased copy per word: this runs on every
    // COMMIT inside a transaction (once a pgbench TPC-B transaction).
    let is = |w: &[u8], k: &[u8]| w.eq_ignore_ascii_case(k);
    let mut words = scan(sql)
        .filter(|(t, _, _)| *t == Tok::Word)
        .map(|(_, a, b)| &sql[a..b])
        .skip(1)
        .skip_while(|w| is(w, b"work") || is(w, b"transaction"));
    match words.next() {
        Some(w) if is(w, b"to") => true,
        Some(w) if is(w, b"and") => words.next().is_some_and(|w| is(w, b"chain")),
        _ => false,
    }
}

/// First words of the statements whose constants pg_stat_statements replaces: the
/// planned ones. Utility statements (SET, BEGIN, DDL, COPY, CALL, EXPLAIN...) keep
/// their text as written, as PostgreSQL up to 15 shows them (16 to 18 replace the
/// constants of some of them: see docs/cli.md).
const PLANNED: [&[u8]; 8] = [
    b"select", b"insert", b"update", b"delete", b"with", b"values", b"merge", b"table",
];

/// Words after which a `-` is a sign, not a subtraction (an operand comes next).
const BEFORE_OPERAND: [&[u8]; 21] = [
    b"select",
    b"where",
    b"and",
    b"or",
    b"not",
    b"when",
    b"then",
    b"else",
    b"case",
    b"limit",
    b"offset",
    b"having",
    b"on",
    b"between",
    b"like",
    b"ilike",
    b"by",
    b"returning",
    b"distinct",
    b"all",
    b"is",
];

/// Type names of two words (`character varying(10)`, `double precision`).
const TWO_WORD_TYPES: [&[u8]; 5] = [b"character", b"char", b"bit", b"double", b"national"];

/// Clauses that end an ORDER BY or GROUP BY list.
const CLAUSES: [&[u8]; 9] = [
    b"limit",
    b"offset",
    b"having",
    b"window",
    b"for",
    b"union",
    b"intersect",
    b"except",
    b"fetch",
];

/// The statement as pg_stat_statements shows it: its text up to its `;`, trimmed,
/// with each constant (number, string, bit string, typed literal's string,
/// `true`/`false`/`null`, `LIMIT ALL`, a negative number with its sign) replaced by `$n`,
/// numbered in order of appearance after the highest parameter the text already
/// has. Everything else is kept as written: case, spacing, comments, and lists (an
/// `IN (1, 2, 3)` becomes `IN ($1, $2, $3)`, as PostgreSQL 15 to 17 show it; 18
/// squashes such lists). Left alone, as the server leaves them: `ORDER BY 1` and
/// `GROUP BY 1`, type modifiers (`::numeric(10,2)`), and utility statements.
pub fn normalize(sql: &[u8]) -> String {
    let mut shape = Shape::default();
    shape.read(sql);
    shape.render(sql)
}

/// What normalising a text finds, kept apart from its rendering so that a fingerprint
/// is hashed from it without writing the normalised text and scanning it again, and
/// so that a cache reuses its buffers (every text of simple-protocol traffic with
/// literals is new: normalising it was a quarter of such a run).
#[derive(Default)]
struct Shape {
    /// The text's tokens up to its first `;`, white space and comments left out (a
    /// comment always leaves a gap between its neighbours, which is all the hash
    /// needs of it).
    toks: Vec<(Tok, usize, usize)>,
    /// The text's byte range: its tokens' with comments.
    span: (usize, usize),
    /// Byte ranges of the constants that become `$n`, in order of the text.
    consts: Vec<(usize, usize)>,
    /// The `n` of the first constant.
    first_param: u64,
    /// Whether a number or string token up to the `;` was left as written (`ORDER
    /// BY 1`, a type modifier, any literal of a utility statement): then the
    /// fingerprint depends on a literal's value, not only on the text's skeleton.
    kept_literal: bool,
}

impl Shape {
    /// The text as pg_stat_statements shows it.
    fn render(&self, sql: &[u8]) -> String {
        let (start, end) = self.span;
        let mut out = String::with_capacity(end - start);
        let mut copied = start;
        for (n, &(a, b)) in (self.first_param..).zip(&self.consts) {
            out.push_str(&String::from_utf8_lossy(&sql[copied..a]));
            let _ = write!(out, "${n}");
            copied = b;
        }
        out.push_str(&String::from_utf8_lossy(&sql[copied..end]));
        out
    }

    /// FNV-1a of the rendered text's tokens, words lower-cased, comments dropped and
    /// spacing folded, computed from the tokens already read: the same value as
    /// [`fingerprint_of_text`] over [`Shape::render`]'s text (a unit test holds
    /// them together), for text that is valid UTF-8.
    fn hash(&self, sql: &[u8]) -> u64 {
        let (start, _) = self.span;
        let mut h = FNV_OFFSET;
        let mut emitted = false;
        let mut last = 0u8;
        let mut prev_end = start;
        let mut gap = false;
        let mut consts = self.consts.iter().peekable();
        let mut n = self.first_param;
        let mut digits = [0u8; 21];
        let mut k = 0;
        while k < self.toks.len() {
            let (tok, a, b) = self.toks[k];
            let (t, end, lower): (&[u8], usize, bool) = match consts.peek() {
                Some(&&(ca, cb)) if a >= ca => {
                    while k < self.toks.len() && self.toks[k].1 < cb {
                        k += 1;
                    }
                    consts.next();
                    let t = write_param(&mut digits, n);
                    n = n.saturating_add(1);
                    gap |= ca > prev_end;
                    (t, cb, false)
                }
                _ => {
                    k += 1;
                    gap |= a > prev_end;
                    (&sql[a..b], b, tok == Tok::Word)
                }
            };
            if gap && emitted && last != b'(' && t != b")" && t != b"," {
                h = fnv1a_step(h, b' ');
            }
            for &c in t {
                h = fnv1a_step(h, if lower { c.to_ascii_lowercase() } else { c });
            }
            emitted = true;
            gap = false;
            last = t.last().copied().unwrap_or(last);
            prev_end = end;
        }
        h
    }

    /// Finds the tokens and the constants of `sql` (the buffers reused).
    fn read(&mut self, sql: &[u8]) {
        // Every token's neighbours are compared with keywords: `Kw` keeps that free of
        // allocations.
        self.toks.clear();
        self.consts.clear();
        self.first_param = 1;
        self.kept_literal = false;
        let mut span: Option<(usize, usize)> = None;
        for t in scan(sql) {
            match t.0 {
                Tok::Semicolon => break,
                Tok::Space => continue,
                Tok::Comment => {}
                _ => self.toks.push(t),
            }
            span = Some((span.map_or(t.1, |s| s.0), t.2));
        }
        self.span = span.unwrap_or_default();
        let toks = &self.toks;
        let word = |k: usize| match toks.get(k) {
            Some(&(Tok::Word, a, b)) => Kw(&sql[a..b]),
            _ => Kw::NONE,
        };
        let byte = |k: usize| match toks.get(k) {
            Some(&(Tok::Other, a, _)) => sql[a],
            _ => 0,
        };
        let first = (0..toks.len())
            .find(|&k| byte(k) != b'(')
            .map_or(Kw::NONE, word);
        let literals = toks
            .iter()
            .filter(|t| matches!(t.0, Tok::Number | Tok::Str))
            .count();
        if !first.any(&PLANNED) {
            self.kept_literal = literals > 0;
            return;
        }
        self.first_param = 1 + toks
            .iter()
            .filter(|t| t.0 == Tok::Param)
            .map(|&(_, a, b)| {
                std::str::from_utf8(&sql[a + 1..b])
                    .ok()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(u64::MAX - 1)
            })
            .max()
            .unwrap_or(0)
            .min(u64::MAX - 1);
        // Comments are copied with the text between the constants.
        let mut copied = self.span.0;
        // Paren depth, and where a typmod's parentheses end (their numbers are kept).
        let mut depth = 0usize;
        let mut typmod_until: Option<usize> = None;
        // `CAST(` parens still open, by depth: their `AS` is followed by a type.
        let mut casts: Vec<usize> = Vec::new();
        // Depth of an ORDER BY / GROUP BY list being read (bare integers are kept).
        let mut by_list: Option<usize> = None;
        let mut type_next = false;
        let mut typmod_next = false;
        // Number and string tokens made constants.
        let mut replaced = 0;
        for (k, &(tok, a, b)) in toks.iter().enumerate() {
            let prev = k.checked_sub(1);
            let next = (k + 1 < toks.len()).then_some(k + 1);
            let w = word(k);
            match (tok, byte(k)) {
                (Tok::Other, b'(') => {
                    if prev.is_some_and(|p| word(p) == b"cast") {
                        casts.push(depth);
                    }
                    if typmod_next && typmod_until.is_none() {
                        typmod_until = Some(depth);
                    }
                    typmod_next = false;
                    depth += 1;
                }
                (Tok::Other, b')') => {
                    depth = depth.saturating_sub(1);
                    if typmod_until == Some(depth) {
                        typmod_until = None;
                    }
                    if casts.last() == Some(&depth) {
                        casts.pop();
                    }
                    if by_list.is_some_and(|d| depth < d) {
                        by_list = None;
                    }
                }
                _ => {}
            }
            // After `::` or a cast's AS comes a type name (one or two words, maybe
            // schema-qualified), then maybe its modifiers in parentheses.
            let starts_type = (byte(k) == b':' && prev.is_some_and(|p| byte(p) == b':'))
                || (w == b"as" && casts.last() == Some(&depth.saturating_sub(1)));
            if starts_type {
                type_next = true;
                continue;
            }
            if type_next {
                if matches!(tok, Tok::Word | Tok::QuotedIdent) || byte(k) == b'.' {
                    let after = next.map_or(0, byte);
                    let two =
                        w.any(&TWO_WORD_TYPES) && next.is_some_and(|n| toks[n].0 == Tok::Word);
                    type_next = byte(k) == b'.' || after == b'.' || two;
                    typmod_next = after == b'(';
                    continue;
                }
                type_next = false;
            }
            if w == b"by" && prev.is_some_and(|p| word(p).any(&[b"order", b"group"])) {
                by_list = Some(depth);
                continue;
            }
            if by_list.is_some() && w.any(&CLAUSES) {
                by_list = None;
            }
            let constant = match tok {
                Tok::Str => true,
                Tok::Number => {
                    typmod_until.is_none()
                        && !(by_list == Some(depth)
                            && sql[a..b].iter().all(u8::is_ascii_digit)
                            && prev.is_some_and(|p| word(p) == b"by" || byte(p) == b',')
                            && next.is_none_or(|n| {
                                toks[n].0 == Tok::Word || matches!(byte(n), b',' | b')')
                            }))
                }
                Tok::Word => {
                    // `LIMIT ALL` is a null constant to the server.
                    (w == b"all" && prev.is_some_and(|p| word(p) == b"limit"))
                        || w.any(&[b"true", b"false", b"null"])
                            && !prev.is_some_and(|p| {
                                word(p) == b"is"
                                    || (word(p) == b"not" && k >= 2 && word(k - 2) == b"is")
                            })
                }
                _ => false,
            };
            if !constant {
                continue;
            }
            // A sign belongs to the number when nothing it could subtract from precedes it
            // and no cast binds the number first (`-1::int` is `-(1::int)`).
            let mut from = a;
            if tok == Tok::Number
                && let Some(p) = prev
                && byte(p) == b'-'
                && !next.is_some_and(|n| byte(n) == b':' && byte(k + 2) == b':')
            {
                let before = k.checked_sub(2);
                let operand = before.is_some_and(|q| match toks[q].0 {
                    Tok::Word => !word(q).any(&BEFORE_OPERAND),
                    Tok::Other => matches!(byte(q), b')' | b']'),
                    _ => true,
                });
                if !operand && toks[p].1 >= copied {
                    from = toks[p].1;
                }
            }
            self.consts.push((from, b));
            replaced += usize::from(tok != Tok::Word);
            copied = b;
        }
        self.kept_literal = replaced < literals;
    }
}
/// A word, compared with (lower-case) keywords without regard to case, in place:
/// no copy, and a length that differs ends the comparison at once.
#[derive(Clone, Copy)]
struct Kw<'a>(&'a [u8]);

impl Kw<'_> {
    const NONE: Kw<'static> = Kw(b"");

    /// Whether the word is one of `keywords`.
    fn any(self, keywords: &[&[u8]]) -> bool {
        keywords.iter().any(|k| self.0.eq_ignore_ascii_case(k))
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Kw<'_> {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0.eq_ignore_ascii_case(other.as_slice())
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| fnv1a_step(h, b))
}

/// `$n`, written at the end of `buf`.
fn write_param(buf: &mut [u8; 21], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    i -= 1;
    buf[i] = b'$';
    &buf[i..]
}

/// 64-bit FNV-1a of the normalised text's shape, as 16 hex digits: words
/// lower-cased, comments dropped, spacing folded, so the texts pg_stat_statements
/// counts as one statement share it however they were typed.
pub(crate) fn fingerprint(sql: &[u8]) -> String {
    Shape::default().fingerprint(sql).as_str().to_owned()
}

/// A fingerprint's 16 hex digits, held without an allocation: a text seen once
/// needs them for its record alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digits([u8; 16]);

impl Digits {
    pub(crate) fn as_str(&self) -> &str {
        // Hex digits are ASCII: the check cannot fail.
        crate::text::ascii(&self.0).unwrap_or_default()
    }
}

impl Shape {
    fn fingerprint(&mut self, sql: &[u8]) -> Digits {
        match std::str::from_utf8(sql) {
            Ok(s) => self.fingerprint_str(s),
            Err(_) => {
                // Invalid UTF-8 is replaced in the normalised text: hashed from it, as written.
                self.read(sql);
                hex16(fingerprint_of_text(self.render(sql).as_bytes()))
            }
        }
    }

    /// [`Shape::fingerprint`] of a text already known to be UTF-8 (the caches' texts
    /// are `str`): validating it again was a tenth of the fingerprint's cost.
    fn fingerprint_str(&mut self, sql: &str) -> Digits {
        self.read(sql.as_bytes());
        hex16(self.hash(sql.as_bytes()))
    }
}

/// `h` as 16 lower-case hex digits (what `format!("{h:016x}")` writes, for less
/// than the formatting machinery costs once per new text).
fn hex16(h: u64) -> Digits {
    let mut buf = [0u8; 16];
    for (i, d) in buf.iter_mut().enumerate() {
        *d = crate::text::HEX_DIGITS[(h >> (60 - 4 * i)) as usize & 15];
    }
    Digits(buf)
}

/// The fingerprint's definition: FNV-1a over the tokens of a normalised text.
fn fingerprint_of_text(s: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    let mut space = false;
    let mut last = None;
    for (tok, a, b) in scan(s) {
        if matches!(tok, Tok::Space | Tok::Comment) {
            space = last.is_some();
            continue;
        }
        let t = &s[a..b];
        if space && last != Some(b'(') && t != b")" && t != b"," {
            h = fnv1a_step(h, b' ');
        }
        space = false;
        let lower = tok == Tok::Word;
        for &c in t {
            h = fnv1a_step(h, if lower { c.to_ascii_lowercase() } else { c });
        }
        last = t.last().copied();
    }
    h
}

/// Fingerprints of recently seen texts. Prepared and ORM statements repeat, so most
/// lookups cost one hash of the raw text instead of a normalisation.
#[derive(Default)]
pub(crate) struct FingerprintCache {
    map: std::collections::HashMap<u64, Digits>,
    fresh: Fresh,
}

/// Fingerprints of texts not seen before, by skeleton: the texts a statement is sent
/// as with different literals (simple-protocol traffic: every text new) share one,
/// and finding it costs a scan instead of a normalisation (two thirds of its cost).
#[derive(Default)]
struct Fresh {
    /// Skeletons (see [`skeleton`]) of texts whose every literal became a constant.
    by_skeleton: rustc_hash::FxHashMap<Box<[u8]>, Digits>,
    /// The skeletons' bytes, bounded as their number is.
    bytes: usize,
    /// Lookups since the cache started over, and how many found their skeleton.
    lookups: usize,
    found: usize,
    /// Texts to normalise without a lookup: when a full cache's lookups mostly
    /// missed (every text a shape of its own), skeletons cost more than they save.
    pause: usize,
    /// The last skeleton found or cached, and its fingerprint: consecutive texts
    /// mostly share one, and comparing it costs less than hashing it for the map.
    last: (Vec<u8>, Option<Digits>),
    /// The last text's skeleton, the next one's starting point.
    key: Skeleton,
    /// Reused from one text to the next.
    shape: Shape,
    #[cfg(test)]
    hits: usize,
}

impl Fresh {
    const MAX: usize = 4096;
    const MAX_BYTES: usize = 4 << 20;
    /// Longer texts are normalised each time (a skeleton is at most twice its text).
    const MAX_TEXT: usize = 16 << 10;

    fn fingerprint(&mut self, text: &str) -> Digits {
        let sql = text.as_bytes();
        if sql.len() > Self::MAX_TEXT || self.pause > 0 {
            self.pause = self.pause.saturating_sub(1);
            return self.shape.fingerprint_str(text);
        }
        self.key.read(sql);
        let key = &self.key.out;
        self.lookups += 1;
        let found = match self.last {
            (ref last, Some(fp)) if last == key => {
                // The next text may take up from this one's marks (after a miss,
                // the skeleton went to `last`, and a text of another shape rarely
                // shares one with the next).
                self.key.keep(sql);
                return self.hit(fp);
            }
            _ => self.by_skeleton.get(&key[..]).copied(),
        };
        if let Some(fp) = found {
            self.remember(fp);
            return self.hit(fp);
        }
        let fp = self.shape.fingerprint_str(text);
        if !self.shape.kept_literal {
            let key = &self.key.out;
            if self.by_skeleton.len() >= Self::MAX || self.bytes + key.len() > Self::MAX_BYTES {
                if self.found < self.lookups / 8 {
                    self.pause = 4 * Self::MAX;
                }
                self.by_skeleton.clear();
                (self.bytes, self.lookups, self.found) = (0, 0, 0);
            }
            self.bytes += key.len();
            self.by_skeleton.insert(key[..].into(), fp);
            self.remember(fp);
        }
        fp
    }

    fn hit(&mut self, fp: Digits) -> Digits {
        self.found += 1;
        #[cfg(test)]
        {
            self.hits += 1;
        }
        fp
    }

    /// Keeps the skeleton in `key` as the last one, with its fingerprint (swapped,
    /// not copied: `key` is written afresh for the next text).
    fn remember(&mut self, fp: Digits) {
        std::mem::swap(&mut self.last.0, &mut self.key.out);
        self.last.1 = Some(fp);
    }
}

/// Where a literal starts in a text read by [`Skeleton::read`], and the loop's state
/// there: `out` holds the skeleton of the text up to `run`.
#[derive(Clone, Copy, Default)]
struct Mark {
    i: usize,
    run: usize,
    out: usize,
}

/// The skeleton of the last text read, with its literals' marks and, when
/// [`Skeleton::keep`] kept it, that text.
#[derive(Default)]
struct Skeleton {
    out: Vec<u8>,
    marks: Vec<Mark>,
    text: Vec<u8>,
}

impl Skeleton {
    /// `sql`'s skeleton into `out`. A statement sent again with other literals
    /// parts from the last text at a literal: the loop read the same bytes up to
    /// there, so it takes up from that literal's mark instead of the start. Before a
    /// token the loop reads at most the class of the next byte (space, word,
    /// alphanumeric, digit, or one punctuation byte), which never tells two digits
    /// apart: a mark at the first differing byte holds when both bytes are digits.
    fn read(&mut self, sql: &[u8]) {
        let common = common_prefix(sql, &self.text);
        let digits = |i: usize| {
            (sql.get(i).zip(self.text.get(i)))
                .is_some_and(|(a, b)| a.is_ascii_digit() && b.is_ascii_digit())
        };
        let from = match self
            .marks
            .iter()
            .rposition(|m| m.i < common || (m.i == common && digits(m.i)))
        {
            Some(k) => {
                let m = self.marks[k];
                self.marks.truncate(k);
                m
            }
            None => {
                self.marks.clear();
                Mark::default()
            }
        };
        self.out.truncate(from.out);
        skeleton(sql, from, &mut self.out, &mut self.marks);
        self.text.clear();
    }

    /// Keeps `sql`, the text just read, for the next [`Skeleton::read`] to start
    /// where the two part.
    fn keep(&mut self, sql: &[u8]) {
        self.text.extend_from_slice(sql);
    }
}

/// How many bytes `a` and `b` begin with alike, compared by 8.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
    let mut i = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let d = word(x) ^ word(y);
        if d != 0 {
            return i + d.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + a[i..]
        .iter()
        .zip(&b[i..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// `sql` with each number and string literal's value left out (a tag byte for its
/// kind in its place; whether a number is all digits counts, as `ORDER BY` reads
/// it), into `out`. Two texts with one skeleton differ only in literal values, and
/// every decision the normaliser takes reads the tokens around literals, never their
/// values: so when no literal of one of them was kept as written, both have the same
/// fingerprint. The encoding is exact (no hash), so it cannot confuse two texts.
///
/// Starts at `from` (`out` holding the skeleton up to its `run`); each literal's
/// start goes to `marks`.
fn skeleton(sql: &[u8], from: Mark, out: &mut Vec<u8>, marks: &mut Vec<Mark>) {
    // The text up to `i` is in `out` but from `run`.
    let Mark { mut i, mut run, .. } = from;
    // White space, punctuation, words, numbers and plain strings (nearly every token)
    // read here as the scanner reads them, without its other cases' tests; the rest
    // by the scanner.
    while let Some(&c) = sql.get(i) {
        let start = i;
        let class = CLASS[c as usize];
        let tag = if class & SPACE != 0 {
            i = skip(sql, i + 1, SPACE);
            continue;
        } else if class & PUNCT != 0 {
            i += 1;
            continue;
        } else if c.is_ascii_digit() {
            i = end_of_number(sql, i);
            number_tag(&sql[start..i])
        } else if c == b'\'' {
            i = end_of_quoted(sql, i + 1, b'\'', false);
            1
        } else if class & WORD != 0 && c != b'$' && !matches!(sql.get(i + 1), Some(b'\'' | b'&')) {
            i = skip(sql, i + 1, WORD);
            continue;
        } else {
            let Some((tok, _, end)) = (Scanner { s: sql, i }).next() else {
                break;
            };
            i = end;
            match tok {
                Tok::Str => 1,
                Tok::Number => number_tag(&sql[start..end]),
                // 0 introduces a tag: a 0 of the text is written twice (no other
                // token than these can hold one).
                _ if sql[start..end].contains(&0) => {
                    for piece in sql[run..end].split_inclusive(|&c| c == 0) {
                        out.extend_from_slice(piece);
                        if piece.last() == Some(&0) {
                            out.push(0);
                        }
                    }
                    run = end;
                    continue;
                }
                _ => continue,
            }
        };
        marks.push(Mark {
            i: start,
            run,
            out: out.len(),
        });
        out.extend_from_slice(&sql[run..start]);
        out.extend_from_slice(&[0, tag]);
        run = i;
    }
    out.extend_from_slice(&sql[run..]);
}

/// A number's tag in a skeleton: whether it is all digits counts.
fn number_tag(number: &[u8]) -> u8 {
    if number.iter().all(u8::is_ascii_digit) {
        2
    } else {
        3
    }
}

impl FingerprintCache {
    const MAX: usize = 4096;

    pub(crate) fn get(&mut self, text: &str) -> &str {
        let key = fnv1a(text.as_bytes());
        if self.map.len() >= Self::MAX && !self.map.contains_key(&key) {
            self.map.clear();
        }
        let fresh = &mut self.fresh;
        self.map
            .entry(key)
            .or_insert_with(|| fresh.fingerprint(text))
            .as_str()
    }

    /// The fingerprint of a text not worth caching (seen once).
    pub(crate) fn once(&mut self, text: &str) -> Digits {
        self.fresh.fingerprint(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respecting_quotes_and_comments() {
        let cases: [(&str, &[&str]); 7] = [
            ("select 1; select 2;", &["select 1", "select 2"]),
            (
                "select ';' as x; select 2",
                &["select ';' as x", "select 2"],
            ),
            (
                "select $$a;b$$; select $t$;$t$",
                &["select $$a;b$$", "select $t$;$t$"],
            ),
            (
                "select 1 -- c;\n; select \"a;b\"",
                &["select 1 -- c;", "select \"a;b\""],
            ),
            ("/* ; /* ; */ */ select 1", &["/* ; /* ; */ */ select 1"]),
            (";", &[]),
            ("select E'\\';'", &["select E'\\';'"]),
        ];
        for (sql, want) in cases {
            let got: Vec<String> = split_statements(sql.as_bytes())
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            assert_eq!(got, want, "{sql}");
        }
    }

    #[test]
    fn operations() {
        assert_eq!(operation(b"  /* hi */ select 1").as_deref(), Some("SELECT"));
        assert_eq!(
            operation(b"insert into t values (1)").as_deref(),
            Some("INSERT")
        );
        assert_eq!(operation(b"(select 1)"), Some("SELECT".into()));
        assert_eq!(operation(b""), None);
    }

    #[test]
    fn transaction_ends_and_continuations() {
        for (sql, keeps) in [
            ("commit", false),
            ("ROLLBACK WORK", false),
            ("abort", false),
            ("rollback to savepoint s", true),
            ("ROLLBACK TRANSACTION TO s", true),
            ("commit and chain", true),
            ("commit and no chain", false),
            ("Commit And CHAIN", true),
            ("end /* to */ work", false),
        ] {
            assert_eq!(keeps_transaction(sql.as_bytes()), keeps, "{sql}");
        }
    }

    #[test]
    fn normalises_as_pg_stat_statements() {
        let cases = [
            (
                "SELECT * FROM t WHERE id = 5 AND name = 'bob' -- x",
                "SELECT * FROM t WHERE id = $1 AND name = $2 -- x",
            ),
            (
                "select 1 from t where x in (1, 2, 3) and y = $1",
                "select $2 from t where x in ($3, $4, $5) and y = $1",
            ),
            (
                "  select -1, 2 - 1, a-1, -1::int;  ",
                "select $1, $2 - $3, a-$4, -$5::int",
            ),
            (
                "select E'it''s', B'0101', X'1F', U&'d\\0061t', $q$a'b$q$",
                "select $1, $2, $3, $4, $5",
            ),
            (
                "select interval '1 day', date '2020-01-01', N'x'",
                "select interval $1, date $2, N$3",
            ),
            ("select 1.5e-3, .5, 1_000, 0x1F", "select $1, $2, $3, $4"),
            (
                "select x::numeric(10,2), cast(y as varchar(3)), 3::character varying(4)",
                "select x::numeric(10,2), cast(y as varchar(3)), $1::character varying(4)",
            ),
            (
                "select a, count(*) from t1 group by 1 order by 2 desc, 1 limit 10",
                "select a, count(*) from t1 group by 1 order by 2 desc, 1 limit $1",
            ),
            (
                "select true, null where a is null and b is not true",
                "select $1, $2 where a is null and b is not true",
            ),
            (
                "/* app */ select col1 from t2 where c3 = 4",
                "/* app */ select col1 from t2 where c3 = $1",
            ),
            (
                "with x as materialized (select 1) select * from x",
                "with x as materialized (select $1) select * from x",
            ),
            (
                "SET statement_timeout = 5000",
                "SET statement_timeout = 5000",
            ),
            (
                "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
                "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(normalize(sql.as_bytes()), want, "{sql}");
        }
    }

    /// The fingerprint hashed from the tokens read equals its definition, the hash of
    /// the normalised text's tokens, over texts built at random from the fragments
    /// where the two could part: signs, casts, placeholders next to words and
    /// brackets, comments and white space or none between tokens.
    #[test]
    fn fingerprint_from_tokens_is_the_hash_of_the_normalised_text() {
        const PARTS: &[&str] = &[
            "select",
            "SELECT",
            "insert into t values",
            "update t set a =",
            "with x as",
            "where",
            "and",
            "x",
            "Ab",
            "a1",
            "-",
            "- ",
            "1",
            "2.5",
            "1e-3",
            "'s'",
            "E'q''r'",
            "$1",
            "$7",
            "(",
            ")",
            ",",
            "::",
            "int",
            "numeric(10,2)",
            "cast(",
            "as",
            "true",
            "null",
            "is",
            "not",
            "limit",
            "all",
            "order by",
            "group by",
            "in (1, 2)",
            "interval '1 day'",
            "/* c */",
            "-- d\n",
            " ",
            "  ",
            "\t",
            "\n",
            "",
            "=",
            "+",
            "||",
            "$$d$$",
            "\"Q\"",
            ".",
            "[",
            "]",
            "é",
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut shape = Shape::default();
        let mut sql = String::new();
        for _ in 0..20_000 {
            sql.clear();
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            sql.push_str(
                ["select ", "SELECT", "with x as (", "update t set ", ""][(rng >> 61) as usize % 5],
            );
            for _ in 0..(rng >> 58) % 12 + 1 {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                sql.push_str(PARTS[(rng >> 33) as usize % PARTS.len()]);
                if rng >> 63 == 1 {
                    sql.push(' ');
                }
            }
            shape.read(sql.as_bytes());
            let want = fingerprint_of_text(shape.render(sql.as_bytes()).as_bytes());
            assert_eq!(shape.hash(sql.as_bytes()), want, "{sql:?}");
        }
    }

    /// A fingerprint found by skeleton is the one normalising the text gives, over
    /// texts that share skeletons with different literal values (and kept ones:
    /// `ORDER BY 1`, type modifiers, utility statements, a 0 byte next to a tag).
    #[test]
    fn fingerprint_by_skeleton_is_the_normalised_one() {
        const PARTS: &[&str] = &[
            " where a = ",
            " and b in (",
            ", ",
            ")",
            " order by ",
            " limit ",
            " - ",
            "-",
            "::numeric(",
            "::int",
            " is ",
            " not ",
            "null",
            "true",
            " x ",
            "$1",
            "(",
            "\0",
            " /* c */ ",
            ";",
            " set ",
            "1e3",
        ];
        const LITERALS: &[&str] = &[
            "1", "42", "2.5", "0x1F", "'s'", "'it''s'", "E'\\n'", "$$d$$",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) as usize % n
        };
        let mut cache = FingerprintCache::default();
        let mut sql = String::new();
        for _ in 0..20_000 {
            sql.clear();
            sql.push_str(
                [
                    "select a from t",
                    "SELECT 1",
                    "update t set c = ",
                    "vacuum ",
                ][next(4)],
            );
            for _ in 0..next(4) + 1 {
                sql.push_str(PARTS[next(PARTS.len())]);
                sql.push_str(LITERALS[next(LITERALS.len())]);
            }
            assert_eq!(
                cache.once(&sql).as_str(),
                fingerprint(sql.as_bytes()),
                "{sql:?}"
            );
        }
        // Texts shared skeletons: thousands were found by theirs.
        assert!(cache.fresh.hits > 2_000, "{}", cache.fresh.hits);
    }

    /// The skeleton's definition: the text between literal tokens, 0 bytes doubled,
    /// and a tag for each literal.
    fn skeleton_by_tokens(sql: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let copy = |out: &mut Vec<u8>, part: &[u8]| {
            if !part.contains(&0) {
                return out.extend_from_slice(part);
            }
            // 0 introduces a tag: a 0 of the text is written twice.
            for piece in part.split_inclusive(|&c| c == 0) {
                out.extend_from_slice(piece);
                if piece.last() == Some(&0) {
                    out.push(0);
                }
            }
        };
        let mut run = 0;
        for (tok, a, b) in scan(sql) {
            let tag = match tok {
                Tok::Str => 1,
                Tok::Number if sql[a..b].iter().all(u8::is_ascii_digit) => 2,
                Tok::Number => 3,
                _ => continue,
            };
            copy(out, &sql[run..a]);
            out.extend_from_slice(&[0, tag]);
            run = b;
        }
        copy(out, &sql[run..]);
    }

    /// The skeleton read by its own loop is the one read token by token, over texts
    /// built at random from every kind of token and fragments of them.
    #[test]
    fn skeleton_is_the_one_read_token_by_token() {
        const PARTS: &[&str] = &[
            "select",
            " ",
            "\t\n",
            "x1",
            "_a$b",
            "é",
            "1",
            "42",
            "1.5e-3",
            ".5",
            "0x1F",
            "1_000",
            "1e+",
            "'s'",
            "'it''s'",
            "E'\\''",
            "e'",
            "b'01'",
            "X'1F'",
            "U&'d'",
            "u&",
            "N'x'",
            "$1",
            "$",
            "$$d$$",
            "$t$x$t$",
            "$q$",
            "\"Q\"\"\"",
            "\"",
            "-- c\n",
            "--",
            "-",
            "/* a /* b */ */",
            "/*",
            "/",
            "*",
            ".",
            "::",
            "(",
            ")",
            ",",
            ";",
            "=",
            "&",
            "\\",
            "\0",
            "'",
            "@",
            "a'",
            "1a",
            "9.",
            "..",
        ];
        let mut rng = 0x853c_49e6_748f_ea9bu64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            (rng >> 33) as usize
        };
        let (mut sql, mut parts, mut want) = (String::new(), Vec::new(), Vec::new());
        let mut got = Skeleton::default();
        for _ in 0..100_000 {
            // Half the texts are the last one with one part replaced, as a statement
            // sent again with another literal: the skeleton takes up from a mark.
            if parts.is_empty() || next() % 2 == 0 {
                parts.clear();
                for _ in 0..next() % 32 + 1 {
                    parts.push(next() % PARTS.len());
                }
            } else {
                let at = next() % parts.len();
                parts[at] = next() % PARTS.len();
            }
            sql.clear();
            parts.iter().for_each(|&p| sql.push_str(PARTS[p]));
            got.read(sql.as_bytes());
            skeleton_by_tokens(sql.as_bytes(), &mut want);
            assert_eq!(got.out, want, "{sql:?}");
            if next() % 8 != 0 {
                got.keep(sql.as_bytes());
            }
        }
    }

    /// Texts of distinct shapes fill the skeleton cache without a hit: it pauses
    /// (the fingerprints stay right), and comes back after the pause.
    #[test]
    fn skeleton_cache_pauses_when_it_never_hits() {
        let mut fresh = Fresh::default();
        for i in 0..=Fresh::MAX {
            let text = format!("select c{i} from t where a = {i}");
            assert_eq!(
                fresh.fingerprint(&text).as_str(),
                fingerprint(text.as_bytes())
            );
        }
        assert_eq!(fresh.pause, 4 * Fresh::MAX);
        for i in 0..4 * Fresh::MAX {
            fresh.fingerprint(&format!("select 1 where b = {i}"));
        }
        assert_eq!((fresh.pause, fresh.hits), (0, 0));
        for i in 0..3 {
            fresh.fingerprint(&format!("select 1 where b = {i}"));
        }
        assert_eq!(fresh.hits, 2);
    }

    #[test]
    fn fingerprints_follow_the_shape() {
        let a = b"SELECT * FROM t WHERE id = 5 AND name = 'bob' -- x";
        let b = b"select *  from t\nwhere id = 42 and name = 'alice'";
        assert_eq!(fingerprint(a), fingerprint(b));
        // A parameter and a constant in the same place: the same statement text.
        assert_eq!(fingerprint(b"select 1"), fingerprint(b"select $1"));
        // Lists are kept as written (PostgreSQL 15 to 17).
        assert_ne!(
            fingerprint(b"select 1 where x in (1, 2)"),
            fingerprint(b"select 1 where x in (1, 2, 3)")
        );
        assert_ne!(
            fingerprint(b"select a from t"),
            fingerprint(b"select b from t")
        );
        // Invalid UTF-8 replaced, the text around it as written; the cache gives
        // what a fresh fingerprint does.
        assert_eq!(
            normalize(b"SELECT \xffAB FROM T\xfe"),
            "SELECT \u{fffd}AB FROM T\u{fffd}"
        );
        let mut cache = FingerprintCache::default();
        assert_eq!(
            cache.once("SELECT 1 FROM T").as_str(),
            fingerprint(b"select 2 from t")
        );
        assert_eq!(cache.get("select 3"), fingerprint(b"select 4"));
    }

    #[test]
    fn hex16_writes_what_format_does() {
        for h in [
            0,
            1,
            0xa,
            0x8000_0000_0000_0000,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            assert_eq!(hex16(h).as_str(), format!("{h:016x}"));
        }
    }

    #[test]
    fn hostile_text_does_not_panic() {
        for s in [
            "'",
            "E'\\",
            "$a",
            "$a$ unterminated",
            "/*",
            "\"",
            "--",
            "$1$",
            "\u{0}",
        ] {
            let _ = split_statements(s.as_bytes());
            let _ = normalize(s.as_bytes());
            let _ = operation(s.as_bytes());
        }
    }
}
