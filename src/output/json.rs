//! JSON lines, one flat object per record, with ECS / OpenTelemetry field names
//! (see docs/schema.md).

use super::fields::{FieldOut, visit};
use super::fmt::TimeCache;
use super::jsonw::JsonObj;
use super::redact::REDACTED;
use super::{AnomalyView, RunStats, Sink, dir_str, same};
use crate::pgwire::Msg;
use crate::session::record::{
    AuthOutcome, CopyDirection, Leg, Link, Outcome, Protocol, QueryRecord, ServerMessage,
    SessionRecord,
};
use crate::session::shared::Text;
use crate::session::sql::FingerprintCache;
use crate::tcp::ConnMeta;
use clap::ValueEnum;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::io::{self, Write};

/// The records `-o json` writes (`--records`).
// No doc comments on the variants: clap would show them in `--help`, which
// docs/cli.md pins.
#[allow(missing_docs)]
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Message,
    Query,
    Session,
    Anomaly,
}

const RECORD_KINDS: usize = 4;
const _: () = assert!(
    RecordKind::Anomaly as usize == RECORD_KINDS - 1,
    "the last kind"
);

/// The JSON Lines presenter (docs/schema.md): one record per line.
pub struct JsonSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    ts: TimeCache,
    /// The `--records` kinds, by `RecordKind as usize` (a lookup per record, not a
    /// search of the list).
    records: [bool; RECORD_KINDS],
    /// Live capture: flush every record so `| jq` sees it at once.
    flush_each: bool,
    fingerprints: FingerprintCache,
    texts: TextCache,
    tags: TagCache,
    /// The rendered connection fields of each open connection.
    conns: FxHashMap<u64, ConnFields>,
    /// The tail up to the transaction status of the last statement record of a text
    /// seen once, for what it shows (see [`Tail`]): the same for most of them.
    once_tail: Recent<Tail, Vec<u8>>,
    /// The last session record's startup and server parameters, rendered.
    startup: LastObject,
    server: LastObject,
}

/// Name/value pairs and their JSON object: a connection's startup and server
/// parameters are most often the previous one's (the same client, the same server),
/// so compared instead of sorted and written again.
#[derive(Default)]
struct LastObject {
    pairs: Vec<(String, String)>,
    json: Vec<u8>,
}

impl LastObject {
    /// Of owned or shared strings (startup or server parameters).
    fn json<S: std::ops::Deref<Target = str>>(&mut self, pairs: &[(S, S)]) -> &[u8] {
        let same = self.pairs.len() == pairs.len()
            && (self.pairs.iter().zip(pairs)).all(|(a, b)| a.0 == *b.0 && a.1 == *b.1);
        if !same {
            self.pairs = (pairs.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.json.clear();
            super::jsonw::write_object(&mut self.json, &self.pairs);
        }
        &self.json
    }
}

impl<W: Write> JsonSink<W> {
    /// Writes the `records` kinds to `out`, flushing after each record if `flush_each` (live).
    pub fn new(out: W, records: Vec<RecordKind>, flush_each: bool) -> Self {
        JsonSink {
            out,
            buf: Vec::with_capacity(64 << 10),
            ts: TimeCache::default(),
            records: std::array::from_fn(|i| records.iter().any(|&k| k as usize == i)),
            flush_each,
            fingerprints: FingerprintCache::default(),
            texts: TextCache::default(),
            tags: TagCache::default(),
            conns: FxHashMap::default(),
            once_tail: Recent::default(),
            startup: LastObject::default(),
            server: LastObject::default(),
        }
    }

    /// Fields every record starts with. The connection's part is rendered once per
    /// connection (formatting addresses is most of a record's cost otherwise).
    fn head<'b>(
        buf: &'b mut Vec<u8>,
        times: &mut TimeCache,
        ts: i64,
        dataset: &str,
        conn: Option<(&mut ConnFields, Option<&SessionRecord>)>,
    ) -> JsonObj<'b> {
        let mut o = JsonObj::begin(buf);
        o.time("@timestamp", &times.stamp(ts))
            .plain("event.dataset", dataset);
        if let Some((fields, origin)) = conn {
            o.raw(&fields.head);
            if let Some(s) = origin {
                o.raw(fields.origin(s));
            }
        }
        o
    }

    /// The rendered fields of a connection, made at its first record.
    fn fields<'c>(conns: &'c mut FxHashMap<u64, ConnFields>, c: &ConnMeta) -> &'c mut ConnFields {
        conns.entry(c.id).or_insert_with(|| ConnFields::new(c))
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.buf.len() >= 32 << 10 || self.flush_each {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
            if self.flush_each {
                self.out.flush()?;
            }
        }
        Ok(())
    }
}

/// A connection's fields, rendered once: its addresses, and who it is (as of the
/// last statement; that changes only with a new login on the same connection).
struct ConnFields {
    /// Kept as rendered: a boxed slice shrank it by a reallocation per connection.
    head: Vec<u8>,
    /// Rendered for this `SessionRecord::origin_version`.
    origin: Option<(u32, Vec<u8>)>,
    /// The statement fields of the statements this connection runs (a few, again
    /// and again), rendered once each.
    statements: Vec<StatementPart>,
    /// The `SessionRecord::origin_version` the statement parts were rendered with.
    statements_origin: u32,
    /// The part around the text of the last statement record of a text seen once.
    once: Option<OncePart>,
}

/// Everything of a statement record between `@timestamp` and its parameters, which
/// is the same for every run of a statement on a connection: `event.dataset`, the
/// connection's and session's fields, `db.query.text` to `pgwire.portal`; with the
/// text's fingerprint and what they came from.
struct StatementPart {
    /// The id of its text.
    text: Option<u64>,
    key: PartKey,
    json: Vec<u8>,
    fingerprint: Option<String>,
    /// The record's fields from its command tag to the end, rendered for the
    /// outcome they show (see [`Tail`]); empty until one is.
    tail: Vec<u8>,
    tail_key: Option<Tail>,
}

/// What a statement record's fields after its times show, when they are only its
/// tag, row counts, outcome, transaction status and fingerprint (no error, notice,
/// COPY, cancel or pooler fields): the same again and again for one statement on a
/// connection, so written once and copied.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Tail {
    tag: Option<u64>,
    rows_returned: u64,
    rows_affected: Option<u64>,
    outcome: Outcome,
    tx_status: Option<u8>,
}

impl Tail {
    /// `q`'s, when its tail is only these fields.
    fn of(q: &QueryRecord) -> Option<Tail> {
        let plain = q.error.is_none()
            & q.cancelled_by.is_none()
            & q.notices.is_empty()
            & (q.notifications == 0)
            & q.copy.is_none()
            & !q.skipped
            & !q.suspended
            & !q.rolled_back
            & !q.unsure
            & q.pooler.is_none();
        plain.then(|| Tail {
            tag: q.command_tag.as_ref().map(Text::id),
            rows_returned: q.rows_returned,
            rows_affected: q.rows_affected,
            outcome: q.outcome,
            tx_status: q.tx_status,
        })
    }
}

/// What a statement record's part shows besides its text and the connection's and
/// session's fields.
struct PartKey {
    operation: Option<String>,
    protocol: Protocol,
    statement: Option<String>,
    portal: Option<String>,
}

impl PartKey {
    fn of(q: &QueryRecord, operation: Option<&str>) -> Self {
        PartKey {
            operation: operation.map(str::to_owned),
            protocol: q.protocol,
            statement: q.statement().map(str::to_owned),
            portal: q.portal.as_deref().map(str::to_owned),
        }
    }

    fn matches(&self, q: &QueryRecord, operation: Option<&str>) -> bool {
        self.protocol == q.protocol
            && same(self.operation.as_deref(), operation)
            && same(self.statement.as_deref(), q.statement())
            && same(self.portal.as_deref(), q.portal.as_deref())
    }
}

impl StatementPart {
    fn matches(&self, q: &QueryRecord, operation: Option<&str>) -> bool {
        self.text == q.text.as_ref().map(Text::id) && self.key.matches(q, operation)
    }
}

/// A statement record's part from `event.dataset` to its portal for a text seen once
/// (written per record): the fields before the text and after it, rendered for the
/// last such record's connection, session and [`PartKey`], the same for most of them.
struct OncePart {
    origin: u32,
    key: PartKey,
    /// `event.dataset` to `"db.query.text":`.
    before: Vec<u8>,
    /// `db.operation.name` to the portal.
    after: Vec<u8>,
}

impl ConnFields {
    fn new(c: &ConnMeta) -> Self {
        let mut v = Vec::with_capacity(192);
        let mut f = JsonObj::fragment(&mut v);
        f.num("pgwire.conn_id", c.id)
            .ip("source.ip", &c.client.0)
            .num("source.port", c.client.1)
            .ip("destination.ip", &c.server.0)
            .num("destination.port", c.server.1)
            .str("network.community_id", &c.community_id);
        ConnFields {
            head: v,
            origin: None,
            statements: Vec::new(),
            statements_origin: 0,
            once: None,
        }
    }

    /// The fields of `q` from `event.dataset` to its portal, and its text's
    /// fingerprint, for a text worth caching (or none).
    fn statement(
        &mut self,
        s: &SessionRecord,
        q: &QueryRecord,
        texts: &mut TextCache,
        fingerprints: &mut FingerprintCache,
        operation: Option<Cow<'_, str>>,
    ) -> &mut StatementPart {
        const MAX: usize = 64;
        if self.statements_origin != s.origin_version {
            // Who the session is changed (a new login): every part has the old one.
            self.statements.clear();
            self.statements_origin = s.origin_version;
        }
        let i = match self
            .statements
            .iter()
            .position(|p| p.matches(q, operation.as_deref()))
        {
            Some(i) => i,
            None => {
                let text = q.text.as_ref().map(|t| {
                    let (json, fingerprint) =
                        texts.get(t, |s| (json_string(s), fingerprints.get(s).into()));
                    (&json[..], &fingerprint[..])
                });
                let mut json = Vec::with_capacity(512);
                let mut o = JsonObj::fragment(&mut json);
                self.render(&mut o, s, q, text.map(|t| t.0), operation.as_deref());
                json.shrink_to_fit();
                if self.statements.len() >= MAX {
                    self.statements.clear();
                }
                self.statements.push(StatementPart {
                    text: q.text.as_ref().map(Text::id),
                    key: PartKey::of(q, operation.as_deref()),
                    json,
                    fingerprint: text.map(|t| t.1.to_owned()),
                    tail: Vec::new(),
                    tail_key: None,
                });
                self.statements.len() - 1
            }
        };
        &mut self.statements[i]
    }

    /// Writes `q`'s fields from `event.dataset` to its portal.
    fn render(
        &mut self,
        o: &mut JsonObj<'_>,
        s: &SessionRecord,
        q: &QueryRecord,
        text: Option<&[u8]>,
        operation: Option<&str>,
    ) {
        self.render_before_text(o, s);
        o.opt_rendered("db.query.text", text);
        render_after_text(o, q, operation);
    }

    /// `event.dataset` to the session's fields.
    fn render_before_text(&mut self, o: &mut JsonObj<'_>, s: &SessionRecord) {
        o.plain("event.dataset", "pgwire.query");
        o.raw(&self.head);
        o.raw(self.origin(s));
    }

    /// The part of `q`'s record around its text, a text seen once.
    fn once(&mut self, s: &SessionRecord, q: &QueryRecord, operation: Option<&str>) -> &OncePart {
        let fresh = self
            .once
            .as_ref()
            .is_some_and(|p| p.origin == s.origin_version && p.key.matches(q, operation));
        if !fresh {
            // The connection's fields and the names: no reallocation for most.
            let mut before = Vec::with_capacity(512);
            let mut o = JsonObj::fragment(&mut before);
            self.render_before_text(&mut o, s);
            o.rendered("db.query.text", b"");
            let mut after = Vec::with_capacity(96);
            render_after_text(&mut JsonObj::fragment(&mut after), q, operation);
            self.once = Some(OncePart {
                origin: s.origin_version,
                key: PartKey::of(q, operation),
                before,
                after,
            });
        }
        self.once.as_ref().expect("rendered above")
    }

    fn origin(&mut self, s: &SessionRecord) -> &[u8] {
        if self
            .origin
            .as_ref()
            .is_none_or(|(v, _)| *v != s.origin_version)
        {
            let names = [&s.user, &s.database, &s.application];
            let len: usize = names
                .iter()
                .map(|n| n.as_ref().map_or(0, String::len))
                .sum();
            // The keys take under 96 bytes: one allocation unless names need escaping.
            let mut v = Vec::with_capacity(96 + len);
            let mut f = JsonObj::fragment(&mut v);
            f.plain("db.system.name", "postgresql")
                .opt_str("user.name", s.user.as_deref())
                .opt_str("db.namespace", s.database.as_deref())
                .opt_str("service.name", s.application.as_deref());
            self.origin = Some((s.origin_version, v));
        }
        self.origin.as_ref().map_or(&[], |(_, v)| v)
    }
}

/// `q`'s fields after its text: `db.operation.name` to its portal.
fn render_after_text(o: &mut JsonObj<'_>, q: &QueryRecord, operation: Option<&str>) {
    o.opt_str("db.operation.name", operation)
        .plain("pgwire.protocol", q.protocol.as_str());
    if let Some(st) = q.statement() {
        o.str("pgwire.statement", st);
    }
    if let Some(p) = &q.portal {
        o.str("pgwire.portal", p);
    }
}

/// A statement record's part from `event.dataset` to its portal: kept for its
/// statement and connection, or written for this record (a text seen once), with its
/// fingerprint.
enum Part<'p> {
    Cached(&'p mut StatementPart),
    Once(crate::session::sql::Digits),
}

/// What is rendered of a shared string (a statement text or a command tag), by its
/// id, once instead of per record. Keyed by id, a record's string is not read on
/// this thread: its memory shares a cache line with its count, which the decoding
/// thread changes on every statement.
struct ById<V> {
    map: FxHashMap<u64, V>,
    /// What was rendered of the last strings not worth keeping, by their ids: a
    /// command tag the decoder keeps in its front table stays one uncached string,
    /// met again on every record (one per decoding thread).
    once: Recent<u64, V>,
}

impl<V: Default> Default for ById<V> {
    fn default() -> Self {
        ById {
            map: FxHashMap::default(),
            once: Recent::default(),
        }
    }
}

/// The last few keys met and what was rendered for each: records of `--threads N`
/// come from N decoding threads in turn, each with its own shared strings (ids),
/// and a single slot was rendered again at every turn (a tenth of the writing
/// thread's instructions with two).
struct Recent<K, V> {
    keys: [Option<K>; RECENT],
    values: [V; RECENT],
    /// The slot of the last key met, looked at first.
    last: usize,
    /// The slot the next new key takes.
    next: usize,
}

const RECENT: usize = 8;

impl<K, V: Default> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            keys: std::array::from_fn(|_| None),
            values: std::array::from_fn(|_| V::default()),
            last: 0,
            next: 0,
        }
    }
}

impl<K: PartialEq + Copy, V> Recent<K, V> {
    /// The value kept for `key`; `fill` writes it first when `key` is not kept,
    /// into the slot of the oldest key (whose value it may reuse).
    fn get(&mut self, key: K, fill: impl FnOnce(&mut V)) -> &mut V {
        let i = if self.keys[self.last] == Some(key) {
            self.last
        } else if let Some(i) = self.keys.iter().position(|k| *k == Some(key)) {
            i
        } else {
            let i = self.next;
            self.next = (i + 1) % RECENT;
            self.keys[i] = Some(key);
            fill(&mut self.values[i]);
            i
        };
        self.last = i;
        &mut self.values[i]
    }
}

impl<V: Default> ById<V> {
    const MAX: usize = 4096;

    fn get(&mut self, s: &Text, render: impl FnOnce(&str) -> V) -> &V {
        let key = s.id();
        if !s.cacheable() {
            return self.once.get(key, |v| *v = render(s));
        }
        if self.map.len() >= Self::MAX && !self.map.contains_key(&key) {
            self.map.clear();
        }
        self.map.entry(key).or_insert_with(|| render(s))
    }
}

/// A statement text as a JSON string, and its fingerprint.
type TextCache = ById<(Box<[u8]>, Box<str>)>;

/// A command tag as a JSON string, and its first word.
#[derive(Default)]
struct CachedTag {
    json: Box<[u8]>,
    operation: Box<str>,
}

type TagCache = ById<CachedTag>;

fn json_string(s: &str) -> Box<[u8]> {
    let mut v = Vec::with_capacity(s.len() + 2);
    super::jsonw::write_str(&mut v, s);
    v.into()
}

/// Message fields under `pgwire.msg.`.
struct MsgFields<'o, 'b> {
    o: &'o mut JsonObj<'b>,
    key: String,
}

impl<'b> MsgFields<'_, 'b> {
    /// The object and the full key `pgwire.msg.<k>`, borrowed apart so that writing a
    /// field does not copy its key.
    fn at(&mut self, k: &str) -> (&mut JsonObj<'b>, &str) {
        self.key.truncate("pgwire.msg.".len());
        self.key.push_str(k);
        (&mut *self.o, &self.key)
    }
}

impl FieldOut for MsgFields<'_, '_> {
    fn text(&mut self, key: &'static str, v: &[u8]) {
        let (o, k) = self.at(key);
        o.bytes(k, v);
    }
    fn num(&mut self, key: &'static str, v: i64) {
        let (o, k) = self.at(key);
        o.num(k, v);
    }
    fn hex(&mut self, key: &'static str, v: &[u8]) {
        let mut s = String::with_capacity(v.len() * 2);
        super::fmt::push_hex(&mut s, v);
        let (o, k) = self.at(key);
        o.str(k, &s);
    }
    fn redacted(&mut self, key: &'static str) {
        let (o, k) = self.at(key);
        o.str(k, REDACTED);
    }
    fn list(&mut self, key: &'static str, items: &mut dyn Iterator<Item = Option<Cow<'_, str>>>) {
        let v: Vec<Option<Cow<'_, str>>> = items.collect();
        let (o, k) = self.at(key);
        o.value(k, &v);
    }
    fn pairs(
        &mut self,
        key: &'static str,
        items: &mut dyn Iterator<Item = (Cow<'_, str>, Cow<'_, str>)>,
    ) {
        let map: serde_json::Map<String, serde_json::Value> = items
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        let (o, k) = self.at(key);
        o.value(k, &map);
    }
}

/// The record key of an ErrorResponse field beyond severity, code and message.
fn error_key(code: u8) -> Option<&'static str> {
    Some(match code {
        b'D' => "error.detail",
        b'H' => "error.hint",
        b'P' => "error.position",
        b'p' => "error.internal_position",
        b'q' => "error.internal_query",
        b'W' => "error.where",
        b's' => "error.schema",
        b't' => "error.table",
        b'c' => "error.column",
        b'd' => "error.data_type",
        b'n' => "error.constraint",
        b'F' => "error.file",
        b'L' => "error.line",
        b'R' => "error.routine",
        _ => return None,
    })
}

fn server_message_json(m: &ServerMessage) -> serde_json::Value {
    serde_json::json!({"severity": m.severity, "code": m.code, "message": m.message})
}

impl<W: Write> Sink for JsonSink<W> {
    fn wants_messages(&self) -> bool {
        self.records[RecordKind::Message as usize]
    }

    fn message(&mut self, conn: &ConnMeta, ts: i64, msg: &Msg<'_>) -> io::Result<()> {
        let fields = Self::fields(&mut self.conns, conn);
        let mut o = Self::head(
            &mut self.buf,
            &mut self.ts,
            ts,
            "pgwire.message",
            Some((fields, None)),
        );
        o.str("pgwire.msg.dir", dir_str(msg.dir));
        match msg.typ {
            Some(t) => o.bytes("pgwire.msg.type", &[t]),
            None => o.null("pgwire.msg.type"),
        };
        o.str("pgwire.msg.name", msg.name())
            .num("pgwire.msg.len", msg.len);
        let mut f = MsgFields {
            o: &mut o,
            key: String::from("pgwire.msg."),
        };
        visit(msg, &mut f);
        o.end();
        self.emit()
    }

    fn anomaly(&mut self, conn: Option<&ConnMeta>, ts: i64, a: &AnomalyView<'_>) -> io::Result<()> {
        if !self.records[RecordKind::Anomaly as usize] {
            return Ok(());
        }
        let fields = conn.map(|c| (Self::fields(&mut self.conns, c), None));
        let mut o = Self::head(&mut self.buf, &mut self.ts, ts, "pgwire.anomaly", fields);
        o.str("pgwire.anomaly.kind", a.kind.as_str());
        if let Some(d) = a.dir {
            o.str("pgwire.anomaly.dir", dir_str(d));
        }
        o.str("message", a.message);
        o.end();
        self.emit()
    }

    fn query(&mut self, conn: &ConnMeta, s: &SessionRecord, q: &QueryRecord) -> io::Result<()> {
        if !self.records[RecordKind::Query as usize] {
            return Ok(());
        }
        let tag = q.command_tag.as_ref().map(|t| {
            self.tags.get(t, |t| CachedTag {
                json: json_string(t),
                operation: crate::session::record::tag_operation(t).into(),
            })
        });
        let operation = q.operation_from(tag.map(|t| &*t.operation));
        let fields = Self::fields(&mut self.conns, conn);
        let mut o = JsonObj::begin(&mut self.buf);
        // The end twice (`@timestamp`, `event.end`), formatted once.
        let end = self.ts.stamp(q.end_ns);
        o.time("@timestamp", &end);
        let part = match q.text.as_ref().filter(|t| !t.cacheable()) {
            // A text seen once (literals inline): written straight from the record
            // between the connection's fields around such texts, with its
            // fingerprint, for this record alone.
            Some(t) => {
                let part = fields.once(s, q, operation.as_deref());
                o.raw(&part.before).string(t).raw(&part.after);
                Part::Once(self.fingerprints.once(t))
            }
            None => {
                let part =
                    fields.statement(s, q, &mut self.texts, &mut self.fingerprints, operation);
                o.raw(&part.json);
                Part::Cached(part)
            }
        };
        if q.params_withheld {
            o.str("db.query.parameters", REDACTED);
        } else if !q.params.is_empty() {
            o.params("db.query.parameters", &q.params);
        }
        if q.text_truncated {
            o.bool("pgwire.query.truncated", true);
        }
        if let Some(n) = q.text_length {
            o.num("pgwire.query.length", n);
        }
        if q.params_missing {
            o.bool("pgwire.query.parameters_missing", true);
        }
        o.time("event.start", &self.ts.stamp(q.start_ns))
            .time("event.end", &end)
            .num("event.duration", q.duration_ns());
        let tag = tag.map(|t| &*t.json);
        match (Tail::of(q), part) {
            (Some(key), Part::Cached(part)) => {
                if part.tail_key != Some(key) {
                    part.tail.clear();
                    let mut t = JsonObj::fragment(&mut part.tail);
                    tail(&mut t, q, tag, part.fingerprint.as_deref());
                    part.tail_key = Some(key);
                }
                o.raw(&part.tail);
            }
            (Some(key), Part::Once(fingerprint)) => {
                // Up to the fingerprint, which is this text's alone.
                let to_status = self.once_tail.get(key, |v| {
                    v.clear();
                    tail_to_status(&mut JsonObj::fragment(v), q, tag);
                });
                o.raw(to_status);
                o.plain("pgwire.fingerprint", fingerprint.as_str());
            }
            (None, Part::Cached(part)) => tail(&mut o, q, tag, part.fingerprint.as_deref()),
            (None, Part::Once(fingerprint)) => tail(&mut o, q, tag, Some(fingerprint.as_str())),
        }
        o.end();
        self.emit()
    }

    fn session(&mut self, conn: &ConnMeta, s: &SessionRecord) -> io::Result<()> {
        if !self.records[RecordKind::Session as usize] {
            self.conns.remove(&conn.id);
            return Ok(());
        }
        let fields = Self::fields(&mut self.conns, conn);
        let mut o = Self::head(
            &mut self.buf,
            &mut self.ts,
            s.end_ns,
            "pgwire.session",
            Some((fields, Some(s))),
        );
        if let Some(r) = &s.replication {
            o.str("pgwire.replication", r);
        }
        if !s.startup_params.is_empty() {
            o.rendered(
                "pgwire.startup_params",
                self.startup.json(&s.startup_params),
            );
        }
        o.opt_str("pgwire.protocol.requested", s.protocol_requested.as_deref())
            .opt_str(
                "pgwire.protocol.negotiated",
                s.protocol_negotiated.as_deref(),
            );
        if !s.unsupported_options.is_empty() {
            o.value(
                "pgwire.negotiation.unsupported_options",
                &s.unsupported_options,
            );
        }
        o.opt_str(
            "pgwire.encryption",
            s.encryption.map(crate::pgwire::Encryption::as_str),
        );
        if !s.negotiation.is_empty() {
            o.value("pgwire.encryption.negotiation", &s.negotiation);
        }
        if let Some(t) = &s.tls {
            o.opt_str("tls.version", t.version)
                .opt_str("tls.cipher", t.cipher.as_deref())
                .opt_str("tls.next_protocol", t.alpn.as_deref())
                .bool("tls.decrypted", t.decrypted);
        }
        o.opt_str("pgwire.auth.method", s.auth_method.as_deref())
            .opt_str(
                "pgwire.auth.outcome",
                s.auth_outcome.map(AuthOutcome::as_str),
            );
        if let Some(e) = &s.auth_error {
            o.str("db.response.status_code", &e.code)
                .str("error.message", &e.message);
        }
        if let Some(pid) = s.backend_pid {
            o.num("pgwire.backend_pid", pid);
        }
        if let Some(n) = s.cancel_key_len {
            o.num("pgwire.cancel_key_len", n);
        }
        if let Some(t) = s.tx_status {
            o.bytes("pgwire.tx_status", &[t]);
        }
        if let Some(c) = &s.cancel_request {
            o.num("pgwire.cancel.pid", c.pid)
                .num("pgwire.cancel.key_len", c.key_len);
            match c.target_conn_id {
                Some(t) => o.num("pgwire.cancel.target_conn_id", t),
                None => o.null("pgwire.cancel.target_conn_id"),
            };
        }
        if !s.server_params.is_empty() {
            o.rendered("pgwire.server_params", self.server.json(&s.server_params));
        }
        if !s.notification_list.is_empty() {
            o.value("pgwire.notification_list", &s.notification_list);
        }
        o.num("pgwire.queries", s.queries)
            .num("pgwire.errors", s.errors)
            .num("pgwire.rows", s.rows)
            .num("source.bytes", s.bytes_client)
            .num("destination.bytes", s.bytes_server)
            .num("pgwire.messages.frontend", s.messages_client)
            .num("pgwire.messages.backend", s.messages_server)
            .num("pgwire.notices", s.notices)
            .num("pgwire.notifications", s.notifications)
            .num("pgwire.parameter_changes", s.parameter_changes)
            .bool("pgwire.midstream", s.midstream)
            .num("pgwire.gaps", s.gaps)
            .num("pgwire.resyncs", s.resyncs)
            .num("pgwire.unsure_records", s.unsure_records)
            .num("pgwire.out_of_step", s.unsure_pairings)
            .time("event.start", &self.ts.stamp(s.start_ns))
            .time("event.end", &self.ts.stamp(s.end_ns))
            .num("event.duration", s.end_ns.saturating_sub(s.start_ns))
            .str("pgwire.close_reason", s.close_reason_str())
            .bool("pgwire.terminated", s.terminated);
        o.end();
        // The connection's last record: its rendered fields are not needed any more.
        self.conns.remove(&conn.id);
        self.emit()
    }

    fn finish(&mut self, _run: &RunStats) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

/// A statement record's fields from its command tag (`tag`, as JSON) to the end.
fn tail(o: &mut JsonObj<'_>, q: &QueryRecord, tag: Option<&[u8]>, fingerprint: Option<&str>) {
    tail_to_status(o, q, tag);
    if let Some(by) = q.cancelled_by {
        o.num("pgwire.cancelled_by", by);
    }
    if let Some(fingerprint) = fingerprint {
        o.plain("pgwire.fingerprint", fingerprint);
    }
    tail_after_fingerprint(o, q);
}

/// A statement record's fields from its command tag to its transaction status.
fn tail_to_status(o: &mut JsonObj<'_>, q: &QueryRecord, tag: Option<&[u8]>) {
    o.opt_rendered("pgwire.command_tag", tag)
        .num("db.response.returned_rows", q.rows_returned);
    if let Some(n) = q.rows_affected {
        o.num("pgwire.rows_affected", n);
    }
    o.plain("event.outcome", q.outcome.as_str());
    if let Some(e) = &q.error {
        o.str("db.response.status_code", &e.code)
            .str("error.code", &e.code)
            .str("error.message", &e.message)
            .str("pgwire.error.severity", &e.severity);
        for (c, v) in &e.fields {
            if let Some(k) = error_key(*c) {
                o.str(k, v);
            }
        }
    }
    if let Some(t) = q.tx_status {
        // `I`, `T` or `E` from the wire: anything else is escaped.
        let mut c = [0; 4];
        if t.is_ascii_alphabetic() {
            o.plain("pgwire.tx_status", char::from(t).encode_utf8(&mut c));
        } else {
            o.bytes("pgwire.tx_status", &[t]);
        }
    }
}

/// A statement record's fields after its fingerprint.
fn tail_after_fingerprint(o: &mut JsonObj<'_>, q: &QueryRecord) {
    if !q.notices.is_empty() {
        let v: Vec<serde_json::Value> = q.notices.iter().map(server_message_json).collect();
        o.value("pgwire.notices", &v);
    }
    if q.notifications > 0 {
        o.num("pgwire.notifications", q.notifications);
    }
    if let Some(c) = &q.copy {
        // Unknown when no CopyIn/Out/BothResponse was seen (joined mid-COPY).
        if let Some(d) = c.direction {
            o.str("pgwire.copy.direction", d.as_str());
        }
        o.num("pgwire.copy.messages_in", c.messages_in)
            .num("pgwire.copy.bytes_in", c.bytes_in)
            .num("pgwire.copy.messages_out", c.messages_out)
            .num("pgwire.copy.bytes_out", c.bytes_out);
        if c.direction == Some(CopyDirection::Both) {
            o.num("pgwire.copy.xlog_data", c.xlog_data)
                .num("pgwire.copy.keepalives", c.keepalives);
        }
    }
    if q.skipped {
        o.bool("pgwire.skipped", true);
    }
    if q.suspended {
        o.bool("pgwire.suspended", true);
    }
    if q.rolled_back {
        o.bool("pgwire.rolled_back", true);
    }
    if q.unsure {
        o.bool("pgwire.unsure", true);
    }
    if let Some(p) = &q.pooler {
        pooler_fields(o, p);
    }
}

/// `pgwire.pooler.*` (docs/schema.md).
fn pooler_fields(o: &mut JsonObj<'_>, p: &Link) {
    o.plain("pgwire.pooler.leg", p.leg.as_str())
        .plain("pgwire.pooler.match", p.matched.as_str());
    if p.candidates > 0 {
        o.num("pgwire.pooler.candidates", p.candidates);
    }
    match p.leg {
        Leg::Server => {
            if let Some(id) = p.peer_conn_id {
                o.num("pgwire.pooler.client_conn_id", id);
            }
            if let Some((ip, port)) = p.client {
                o.ip("pgwire.pooler.client.ip", &ip)
                    .num("pgwire.pooler.client.port", port);
            }
            if p.peer_conn_id.is_some() {
                o.opt_str(
                    "pgwire.pooler.client.application",
                    p.client_application.as_deref(),
                );
            }
        }
        Leg::Client => {
            if let Some(id) = p.peer_conn_id {
                o.num("pgwire.pooler.server_conn_id", id);
            }
            if let Some(pid) = p.backend_pid {
                o.num("pgwire.pooler.backend_pid", pid);
            }
        }
    }
    if let Some(w) = p.wait_ns {
        o.num("pgwire.pooler.wait", w);
    }
    if let Some(d) = p.server_ns {
        o.num("pgwire.pooler.server_duration", d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_renders_each_of_keys_in_turn_once() {
        let mut r: Recent<u64, String> = Recent::default();
        let renders = std::cell::Cell::new(0);
        let get = |r: &mut Recent<u64, String>, k: u64| {
            r.get(k, |v| {
                renders.set(renders.get() + 1);
                *v = format!("v{k}");
            })
            .clone()
        };
        // Two decoding threads' tags, in turn: rendered once each.
        for _ in 0..3 {
            assert_eq!(get(&mut r, 1), "v1");
            assert_eq!(get(&mut r, 2), "v2");
        }
        // More keys than slots: the oldest goes first and is rendered again.
        for k in 3..=RECENT as u64 + 1 {
            assert_eq!(get(&mut r, k), format!("v{k}"));
        }
        assert_eq!(get(&mut r, 2), "v2");
        assert_eq!(get(&mut r, 1), "v1");
        assert_eq!(renders.get(), RECENT + 2);
    }

    fn records(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    /// A string not worth caching is rendered once while it comes again (a command
    /// tag from the decoder's front table is one such string), and kept while a few
    /// others come in turn (one such tag from each decoding thread).
    #[test]
    fn an_uncached_string_is_rendered_once_while_it_repeats() {
        let mut cache = ById::<u32>::default();
        let (a, b) = (Text::from("SELECT 1"), Text::from("SELECT 1"));
        assert!(!a.cacheable());
        let mut renders = 0;
        let got: Vec<u32> = [&a, &a, &b, &b, &a]
            .into_iter()
            .map(|t| {
                *cache.get(t, |_| {
                    renders += 1;
                    renders
                })
            })
            .collect();
        assert_eq!(got, [1, 1, 2, 2, 1]);
    }

    /// Writes `items` through one sink, checks that each record is the one a sink
    /// that saw no other writes, and returns the whole output.
    fn each_as_alone<T>(
        items: &[T],
        kind: RecordKind,
        put: impl Fn(&mut JsonSink<&mut Vec<u8>>, &T),
    ) -> String {
        let write = |items: &[T]| {
            let mut out = Vec::new();
            let mut sink = JsonSink::new(&mut out, vec![kind], false);
            for item in items {
                put(&mut sink, item);
            }
            sink.finish(&RunStats::default()).unwrap();
            drop(sink);
            String::from_utf8(out).unwrap()
        };
        let all = write(items);
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), items.len());
        for (item, line) in items.iter().zip(&lines) {
            assert_eq!(write(std::slice::from_ref(item)).trim_end(), *line);
        }
        all
    }

    /// A statement's tail (tag to fingerprint), kept per statement and connection
    /// or, up to the fingerprint, for texts seen once, follows what each record
    /// shows: every record is written as by a sink that never saw the statement.
    #[test]
    fn statement_tail_follows_each_record() {
        let text = "select a from t where b = $1";
        for text in [Text::new_cacheable(text), Text::from(text)] {
            let conn = ConnMeta::for_test(1);
            let s = SessionRecord {
                origin_version: 1,
                ..SessionRecord::default()
            };
            let mut q = QueryRecord::new(1, Protocol::Extended, 1_000);
            // A text kept (a part per statement) and one seen once (written per record).
            q.text = Some(text);
            q.command_tag = Some(Text::new_cacheable("SELECT 1"));
            q.rows_returned = 1;
            q.tx_status = Some(b'I');
            let mut recs = vec![q.clone()];
            let mut next = |change: &dyn Fn(&mut QueryRecord)| {
                change(&mut q);
                recs.push(q.clone());
            };
            next(&|q| q.rows_returned = 5);
            next(&|q| q.command_tag = Some(Text::new_cacheable("SELECT 5")));
            next(&|q| q.tx_status = Some(b'T'));
            next(&|q| {
                q.outcome = Outcome::Failure;
                q.error = Some(Box::new(ServerMessage {
                    severity: "ERROR".into(),
                    code: "57014".into(),
                    message: "canceling statement".into(),
                    fields: vec![],
                }));
            });
            next(&|q| {
                q.outcome = Outcome::Success;
                q.error = None;
                q.rows_affected = Some(3);
            });
            next(&|q| q.notifications = 1);
            next(&|q| q.notifications = 0);
            next(&|q| q.text = Some(Text::from("select b from u")));
            let all = each_as_alone(&recs, RecordKind::Query, |sink, q| {
                sink.query(&conn, &s, q).unwrap()
            });
            let field = |k: &str| -> Vec<serde_json::Value> {
                records(all.as_bytes())
                    .iter()
                    .map(|r| r[k].clone())
                    .collect()
            };
            let (tags, fingerprints) = (field("pgwire.command_tag"), field("pgwire.fingerprint"));
            assert_eq!(tags[1], "SELECT 1");
            assert_eq!(tags[2], "SELECT 5");
            assert_eq!(fingerprints[0], fingerprints[7]);
            assert_ne!(fingerprints[7], fingerprints[8]);
        }
    }

    /// Texts seen once take the fields around them from what the connection's last
    /// such record showed: each record is written as by a sink that saw no other, when
    /// its operation, protocol, statement or portal, or the session, differ.
    #[test]
    fn fields_around_a_text_seen_once_follow_each_record() {
        let conn = ConnMeta::for_test(1);
        let s = SessionRecord {
            user: Some("u".into()),
            origin_version: 1,
            ..SessionRecord::default()
        };
        let mut q = QueryRecord::new(1, Protocol::Simple, 1_000);
        q.text = Some(Text::from("select 1"));
        let mut recs = vec![q.clone()];
        let mut next = |change: &dyn Fn(&mut QueryRecord)| {
            change(&mut q);
            recs.push(q.clone());
        };
        next(&|q| q.text = Some(Text::from("select \"é\"\n")));
        next(&|q| q.operation = Some("INSERT"));
        next(&|q| q.protocol = Protocol::Extended);
        next(&|q| q.unnamed_statement = true);
        next(&|q| q.portal = Some("p1".into()));
        next(&|q| q.portal = Some("p2".into()));
        next(&|q| q.text = None);
        next(&|q| q.text = Some(Text::from("select 2")));
        let all = each_as_alone(&recs, RecordKind::Query, |sink, q| {
            sink.query(&conn, &s, q).unwrap()
        });
        let recs = records(all.as_bytes());
        assert_eq!(recs[1]["db.query.text"], "select \"é\"\n");
        assert_eq!(recs[2]["db.operation.name"], "INSERT");
        assert_eq!(recs[6]["pgwire.portal"], "p2");
        assert_eq!(recs[8]["pgwire.statement"], "");
        assert_eq!(recs[8]["user.name"], "u");
    }

    /// Startup and server parameters are compared with the previous session's, and
    /// each session record is written as by a sink that saw no other.
    #[test]
    fn session_parameters_follow_each_session() {
        use crate::output::jsonw::pairs;
        let (a, b) = (
            pairs(&[("user", "u"), ("application_name", "x")]),
            pairs(&[("user", "v")]),
        );
        let sessions: Vec<SessionRecord> = [(&a, &b), (&a, &b), (&b, &b), (&a, &a), (&a, &vec![])]
            .into_iter()
            .map(|(startup, server)| SessionRecord {
                startup_params: startup.clone(),
                server_params: (server.iter())
                    .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                    .collect(),
                ..SessionRecord::default()
            })
            .collect();
        let all = each_as_alone(&sessions, RecordKind::Session, |sink, s| {
            sink.session(&ConnMeta::for_test(1), s).unwrap()
        });
        let recs = records(all.as_bytes());
        assert_eq!(recs[2]["pgwire.startup_params"]["user"], "v");
        assert_eq!(recs[3]["pgwire.server_params"]["application_name"], "x");
        assert!(recs[4].get("pgwire.server_params").is_none());
    }

    /// A statement's cached prefix holds the session's user: after a new login on
    /// the same connection, the same statement is written with the new one.
    #[test]
    fn statement_prefix_follows_the_session_origin() {
        let mut out = Vec::new();
        {
            let mut sink = JsonSink::new(&mut out, vec![RecordKind::Query], false);
            let conn = ConnMeta::for_test(1);
            let mut s = SessionRecord {
                user: Some("alice".into()),
                origin_version: 1,
                ..SessionRecord::default()
            };
            let mut q = QueryRecord::new(1, crate::session::record::Protocol::Simple, 1_000);
            q.text = Some("select 1".into());
            sink.query(&conn, &s, &q).unwrap();
            sink.query(&conn, &s, &q).unwrap();
            s.user = Some("bob".into());
            s.origin_version = 2;
            sink.query(&conn, &s, &q).unwrap();
            q.text = Some("select a from t".into());
            sink.query(&conn, &s, &q).unwrap();
            sink.finish(&RunStats::default()).unwrap();
        }
        let recs = records(&out);
        let users: Vec<_> = recs
            .iter()
            .map(|r| r["user.name"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["alice", "alice", "bob", "bob"]);
        let texts: Vec<_> = recs
            .iter()
            .map(|r| r["db.query.text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            ["select 1", "select 1", "select 1", "select a from t"]
        );
        for r in &recs {
            assert_eq!(r["event.dataset"], "pgwire.query");
            assert_eq!(r["pgwire.conn_id"], 1);
            assert!(r["pgwire.fingerprint"].is_string());
        }
        assert_ne!(recs[2]["pgwire.fingerprint"], recs[3]["pgwire.fingerprint"]);
    }
}
