//! pgscope's statement normaliser held against libpg_query's (PostgreSQL's own parser,
//! through the `pg_query` crate), which replaces constants the way pg_stat_statements
//! does. The corpus: every statement text in the shipped captures (psql, pgbench's
//! three protocols, drivers, the peers' captures) and the hand-written cases below,
//! chosen for the lexical corners (comments, quotes, dollar quoting, E'' and B''/X''
//! strings, casts, signs, lists, typed literals, identifiers with digits).
//!
//! Planned statements (SELECT, INSERT, UPDATE, DELETE, WITH, VALUES, MERGE, TABLE)
//! must come out exactly as libpg_query writes them. Utility statements are kept as
//! written, as pg_stat_statements up to PostgreSQL 15 shows them; libpg_query replaces
//! the constants of a few (SET, CALL, DO, NOTIFY), as 16 to 18 partly do: those are
//! counted and printed, not failed.
//!
//! Built only with `--features pg-query` (scripts/test.sh runs it so).
#![cfg(feature = "pg-query")]

mod common;

use common::*;
use pgscope::session::sql::normalize;
use std::collections::BTreeSet;

const HAND_WRITTEN: &[&str] = &[
    "SELECT 1",
    "select -1, - 2, 3 - 4, a-5, -6::int, (-7), x * -8.5 from t",
    "select 1.5e-3, 1E+10, .5, 6., 1_000, 0x1F, 0o17, 0b101",
    "select 'it''s', E'a\\'b', E'\\\\', B'0101', X'1F', b'1', x'ff', N'nat', U&'d\\0061t'",
    "select $$dollar ' quoted$$, $tag$ with $$ inside $tag$, $a$$a$",
    "select interval '1 day', date '2020-01-01', timestamp '2020-01-01 00:00', time with time zone '04:05'",
    "select interval '1' day, '1 hour'::interval, cast('5' as integer), int4 '7'",
    "select x::numeric(10,2), cast(y as varchar(3)), 3::character varying(4), z::pg_catalog.varchar(8)",
    "select 1::int, '{1,2}'::int[], 2.5::float8, 'a'::text || 'b'",
    "select * from t where id in (1, 2, 3) and name in ('a','b') and z not in (-1, 2)",
    "select * from t where id = any('{1,2,3}') and x = any(array[1, 2])",
    "SELECT col1, t2.c3 FROM t2 JOIN t3 ON t2.id = t3.id WHERE c3 = 4 AND col1 <> 'x'",
    "select a, count(*) from t1 group by 1 order by 2 desc, 1 limit 10 offset 5",
    "select a from t order by a + 1 nulls last",
    "select true, false, null where a is null and b is not null and c is not true and d is false",
    "select * from t where a is distinct from null",
    "/* app:web */ select col1 from t2 where c3 = 4 -- trailing",
    "select /* inline 1 */ 2 /* nested /* 3 */ comment */ + 4",
    "with x as materialized (select 1 as one) select one, 2 from x",
    "with recursive r(n) as (select 1 union all select n + 1 from r where n < 10) select * from r",
    "insert into t (a, b, c) values (1, 'two', 3.0), (4, 'five', -6) returning id",
    "insert into t values (default, null, true) on conflict (a) do update set b = 'x'",
    "update t set a = a + 1, b = 'y' where id = 42",
    "delete from t where created < now() - interval '7 days'",
    "select * from t where name like 'a%' escape '\\' and x between 1 and 10",
    "select case when x > 0 then 'pos' when x < 0 then -1 else 0 end from t",
    "select \"Weird \"\"Name\"\", 1\" from \"T1\" where \"c2\" = 3",
    "select f(1, 'a'), g(-2), h(x => 3)",
    "select 1 from t where x = $1 and y = 2",
    "select $2, 1, $1",
    "values (1, 'a'), (2, 'b')",
    "table t",
    "select coalesce(a, 0), nullif(b, '') from t fetch first 5 rows only",
    "select * from t limit all",
    "select array[1, 2, 3], row(1, 'a'), (1, 2)",
    "select x from t where x ~ '^a.*' and y ilike '%b%'",
    "select now() at time zone 'utc'",
    "select 1 where exists (select 2 from t where t.a = 3)",
    "select pg_sleep(0.1)",
    "select * from generate_series(1, 10) as g(i)",
    "select 1;",
    "select 1 ;  ",
    "  select 1  ",
    "merge into t using s on t.id = s.id when matched then update set v = 1 when not matched then insert values (s.id, 2)",
    "select a::text, b from t where c = 'x'::text",
    "select 'a' 'b'",
    "SET statement_timeout = 5000",
    "SET application_name TO 'psql'",
    "BEGIN",
    "COMMIT",
    "create table t (a int default 5 not null, b varchar(10) default 'x')",
    "explain select 1",
    "copy t from stdin with (format csv, delimiter ',')",
    "call p(1, 'a')",
    "do $$ begin perform 1; end $$",
    "notify ch, 'payload'",
    "prepare p as select 1",
    "execute p(1)",
];

/// Every statement text of the shipped captures.
fn captured() -> BTreeSet<String> {
    let mut texts = BTreeSet::new();
    for p in all_captures() {
        let keylog = p.with_extension("keys");
        let mut extra: Vec<&str> = Vec::new();
        let k = keylog.to_string_lossy().into_owned();
        if keylog.exists() {
            extra.extend(["--tls-keylog", &k]);
        }
        for r in records(&p, "query", &extra) {
            if let Some(t) = r["db.query.text"].as_str()
                && t.len() < 64 << 10
            {
                texts.insert(t.to_string());
            }
        }
    }
    texts
}

/// `$n` placeholders of a text: (start, end, n), those inside quotes too (good enough
/// for placeholders, which libpg_query writes outside them).
fn placeholders(s: &str) -> Vec<(usize, usize, u64)> {
    let b = s.as_bytes();
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let j = i + 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if let Ok(n) = s[i + 1..j].parse() {
                v.push((i, j, n));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    v
}

/// libpg_query numbers the constants in the order it walks the tree (a SELECT's
/// OFFSET before its LIMIT, a WITH clause last); pg_stat_statements numbers them in
/// the order of the text. Its placeholders renumbered so.
fn in_text_order(original: &str, theirs: &str) -> String {
    let highest = placeholders(original)
        .iter()
        .map(|p| p.2)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let mut last = 0;
    let mut next = highest + 1;
    for (a, b, n) in placeholders(theirs) {
        if n > highest {
            out.push_str(&theirs[last..a]);
            out.push_str(&format!("${next}"));
            next += 1;
            last = b;
        }
    }
    out.push_str(&theirs[last..]);
    out
}

/// pg_stat_statements' text: the statement up to its `;`, trimmed.
fn trimmed(s: &str) -> &str {
    s.trim().trim_end_matches(';').trim_end()
}

#[test]
fn normalises_as_libpg_query_does() {
    let captured = captured();
    assert!(captured.len() > 100, "{} texts", captured.len());
    let corpus: BTreeSet<String> = HAND_WRITTEN
        .iter()
        .map(|s| s.to_string())
        .chain(captured)
        .collect();
    let (mut planned, mut utility, mut unparsed) = (0, 0, 0);
    let mut utility_diffs = Vec::new();
    let mut failures = Vec::new();
    for sql in &corpus {
        let ours = normalize(sql.as_bytes());
        let Ok(theirs) = pg_query::normalize(sql) else {
            unparsed += 1;
            continue;
        };
        let theirs = in_text_order(sql, trimmed(&theirs));
        let first = pg_query::parse(sql)
            .ok()
            .and_then(|p| p.statement_types().first().map(|s| s.to_string()));
        let is_planned = matches!(
            first.as_deref(),
            Some("SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt")
        );
        if is_planned {
            planned += 1;
            if ours != theirs {
                failures.push(format!(
                    "\n  sql:       {sql:?}\n  pgscope:   {ours:?}\n  libpg_query: {theirs:?}"
                ));
            }
        } else {
            utility += 1;
            // Kept as written.
            if ours != trimmed(sql) {
                failures.push(format!("\n  utility changed: {sql:?} -> {ours:?}"));
            }
            if ours != theirs {
                utility_diffs.push(format!("{ours:?} (libpg_query: {theirs:?})"));
            }
        }
    }
    eprintln!(
        "{} statements: {planned} planned, {utility} utility ({} that libpg_query normalises), {unparsed} libpg_query cannot parse",
        corpus.len(),
        utility_diffs.len()
    );
    for d in &utility_diffs {
        eprintln!("  utility kept as written: {d}");
    }
    assert!(planned > 100, "{planned} planned statements");
    assert!(
        failures.is_empty(),
        "{} differences:{}",
        failures.len(),
        failures.join("")
    );
}
