//! Light lexical work on SQL text: split a simple-query string into statements, name
//! the operation, and fingerprint a statement with its literals normalised.
//!
//! One small scanner serves all three, so quoting rules (strings, E'' strings,
//! quoted identifiers, dollar quotes, comments) are handled in one place.

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
/// Continues a number: ASCII alphanumerics, `_` and `.`.
const NUM: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
            t[i] |= SPACE;
        }
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[i] |= WORD | NUM;
        }
        if c == b'$' || c >= 0x80 {
            t[i] |= WORD;
        }
        if c == b'.' {
            t[i] |= NUM;
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

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let start = self.i;
        let c = *s.get(start)?;
        let at = |j: usize| s.get(j).copied().unwrap_or(0);
        let mut j = start + 1;
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
            b'0'..=b'9' => {
                j = skip(s, j, NUM);
                Tok::Number
            }
            b'.' if at(j).is_ascii_digit() => {
                while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                    j += 1;
                }
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
pub fn split_statements(sql: &[u8]) -> Vec<&[u8]> {
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
pub fn operation(sql: &[u8]) -> Option<String> {
    scan(sql)
        .find(|(t, _, _)| !matches!(t, Tok::Space | Tok::Comment | Tok::Other))
        .filter(|(t, _, _)| *t == Tok::Word)
        .map(|(_, a, b)| String::from_utf8_lossy(&sql[a..b]).to_ascii_uppercase())
}

/// Whether a statement whose tag is COMMIT or ROLLBACK leaves a transaction open:
/// `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] s`, or `… AND CHAIN`.
pub fn keeps_transaction(sql: &[u8]) -> bool {
    let mut words = scan(sql)
        .filter(|(t, _, _)| *t == Tok::Word)
        .map(|(_, a, b)| sql[a..b].to_ascii_lowercase())
        .skip(1)
        .skip_while(|w| w == b"work" || w == b"transaction");
    match words.next().as_deref() {
        Some(b"to") => true,
        Some(b"and") => words.next().as_deref() == Some(b"chain"),
        _ => false,
    }
}

/// Statement text with literals and parameters replaced by `?`, lists of them
/// collapsed, comments dropped, whitespace folded and words lower-cased.
pub fn normalize(sql: &[u8]) -> String {
    let mut out = String::with_capacity(sql.len());
    normalize_into(sql, &mut out);
    out
}

/// [`normalize`] into `out` (cleared first), which keeps its allocation.
fn normalize_into(sql: &[u8], out: &mut String) {
    out.clear();
    let mut pending_space = false;
    for (tok, a, b) in scan(sql) {
        let text = &sql[a..b];
        match tok {
            Tok::Space | Tok::Comment => {
                pending_space = !out.is_empty();
                continue;
            }
            Tok::Semicolon => continue,
            _ => {}
        }
        if pending_space && !out.ends_with('(') && text != b")" && text != b"," {
            out.push(' ');
        }
        pending_space = false;
        match tok {
            Tok::Number | Tok::Str | Tok::Param => {
                // `?, ?, ?` → `?` so IN lists of any length share a fingerprint.
                if out.ends_with("?,") {
                    out.pop();
                } else if out.ends_with("?, ") {
                    out.truncate(out.len() - 2);
                } else {
                    out.push('?');
                }
            }
            Tok::Word => {
                let start = out.len();
                push_lossy(out, text);
                out[start..].make_ascii_lowercase();
            }
            _ => push_lossy(out, text),
        }
    }
}

/// Appends `b` as UTF-8, invalid sequences replaced (no allocation when valid).
fn push_lossy(out: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// 64-bit FNV-1a of the normalised text, as 16 hex digits.
pub fn fingerprint(sql: &[u8]) -> String {
    fingerprint_with(sql, &mut String::new())
}

fn fingerprint_with(sql: &[u8], scratch: &mut String) -> String {
    normalize_into(sql, scratch);
    format!("{:016x}", fnv1a(scratch.as_bytes()))
}

/// Fingerprints of recently seen texts. Prepared and ORM statements repeat, so most
/// lookups cost one hash of the raw text instead of a normalisation.
#[derive(Default)]
pub struct FingerprintCache {
    map: std::collections::HashMap<u64, String>,
    /// The normalised text being hashed, kept for its allocation.
    scratch: String,
}

impl FingerprintCache {
    const MAX: usize = 4096;

    pub fn get(&mut self, text: &str) -> &str {
        let key = fnv1a(text.as_bytes());
        if self.map.len() >= Self::MAX && !self.map.contains_key(&key) {
            self.map.clear();
        }
        let scratch = &mut self.scratch;
        self.map
            .entry(key)
            .or_insert_with(|| fingerprint_with(text.as_bytes(), scratch))
    }

    /// The fingerprint of a text not worth caching (seen once).
    pub fn once(&mut self, text: &str) -> String {
        fingerprint_with(text.as_bytes(), &mut self.scratch)
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
            ("end /* to */ work", false),
        ] {
            assert_eq!(keeps_transaction(sql.as_bytes()), keeps, "{sql}");
        }
    }

    #[test]
    fn fingerprints_ignore_literals() {
        let a = b"SELECT * FROM t WHERE id = 5 AND name = 'bob' -- x";
        let b = b"select *  from t\nwhere id = 42 and name = 'alice'";
        assert_eq!(normalize(a), "select * from t where id = ? and name = ?");
        assert_eq!(fingerprint(a), fingerprint(b));
        assert_eq!(
            normalize(b"select 1 from t where x in (1, 2, 3) and y = $1"),
            "select ? from t where x in (?) and y = ?"
        );
        assert_ne!(
            fingerprint(b"select a from t"),
            fingerprint(b"select b from t")
        );
        // Invalid UTF-8 replaced, words lower-cased around it; the scratch buffer of
        // a cache gives what a fresh one does.
        assert_eq!(
            normalize(b"SELECT \xffAB FROM T\xfe"),
            "select \u{fffd}ab from t\u{fffd}"
        );
        let mut cache = FingerprintCache::default();
        assert_eq!(
            cache.once("SELECT 1 FROM T"),
            fingerprint(b"select 2 from t")
        );
        assert_eq!(cache.get("select 3"), fingerprint(b"select 4"));
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
