//! One connection's TLS, decrypted: the record layer of both directions, the
//! handshake messages that say which keys apply when, and the plaintext out.

use super::crypto::{self, Alg, Cipher, Suite};
use super::keylog::Secrets;
use crate::anomaly::AnomalyKind;
use crate::pgwire::Dir;
use std::mem;

/// Where the secrets come from: a key log read up front, or one being followed.
pub trait KeySource {
    /// The secrets known now for the handshake with this client_random.
    fn secrets(&mut self, client_random: &[u8; 32]) -> Option<&Secrets>;
    /// How long (capture time) a connection's records are held while its key is
    /// missing, for a key log that may still be written: 0 when it is complete.
    fn wait_ns(&self) -> i64;
    /// Reads what was appended since, now: the last look before giving up on a key.
    fn reread(&mut self) {}
}

/// Why a connection is not (or no longer) decrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The key log has no secrets for the handshake.
    NoKey,
    /// A record failed authentication: wrong key or corrupted bytes.
    AuthFailed,
    /// The stream ended inside a record, or lost bytes.
    Truncated,
    /// A cipher suite (or protocol version) pgscope does not decrypt.
    Unsupported,
    /// Not a well-formed TLS stream.
    Malformed,
}

impl Problem {
    /// The anomaly the connection's records get.
    pub(crate) fn kind(self) -> AnomalyKind {
        match self {
            Problem::NoKey => AnomalyKind::TlsNoKey,
            Problem::AuthFailed => AnomalyKind::TlsAuthFailed,
            Problem::Truncated => AnomalyKind::TlsTruncated,
            Problem::Unsupported => AnomalyKind::TlsUnsupported,
            Problem::Malformed => AnomalyKind::TlsMalformed,
        }
    }
}

pub(crate) enum Out<'a> {
    /// Decrypted application data of one direction, in order.
    Plain(Dir, &'a [u8]),
    Anomaly(Dir, Problem, String),
}

/// What the session record says about the TLS of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Info {
    /// `1.2`, `1.3`…, from the ServerHello.
    pub(crate) version: Option<&'static str>,
    /// IANA name of the suite, or its code in hex when it has none here.
    pub(crate) cipher: Option<String>,
    /// The first protocol the client offered by ALPN (`postgresql` for direct TLS).
    pub(crate) alpn: Option<String>,
    /// At least one record was decrypted (so the keys were right).
    pub(crate) decrypted: bool,
}

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEADER: usize = 5;
/// Largest record body accepted: 2^14 plus the most TLS 1.2 allows for expansion.
const MAX_RECORD: usize = (1 << 14) + 2048;
const TAG: usize = 16;
/// Handshake messages pgscope reads are small, but a certificate chain sits in the
/// same stream (TLS 1.2 in clear, 1.3 encrypted): buffered up to this to be skipped.
const MAX_HANDSHAKE: usize = 256 << 10;
/// Encrypted bytes held per connection while its key is awaited: the key is logged
/// during the handshake, before the client has sent more than its startup and a few
/// statements.
const MAX_HELD: usize = 256 << 10;
/// The ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// One direction's record protection.
#[derive(Debug)]
struct Keys {
    cipher: Cipher,
    iv: [u8; 12],
    /// TLS 1.2 AES-GCM: 4 implicit nonce bytes, 8 carried in the record.
    explicit: bool,
    seq: u64,
}

impl Keys {
    /// TLS 1.3 traffic keys from a traffic secret (RFC 8446 §7.3).
    fn tls13(suite: &Suite, alg: Alg, secret: &[u8]) -> Option<Keys> {
        let key = crypto::expand_label(suite.hash, secret, "key", &[], alg.key_len());
        let iv = crypto::expand_label(suite.hash, secret, "iv", &[], 12);
        Some(Keys {
            cipher: Cipher::new(alg, &key)?,
            iv: iv.try_into().ok()?,
            explicit: false,
            seq: 0,
        })
    }

    fn nonce(&self) -> [u8; 12] {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }
}

#[derive(Default)]
struct Side {
    /// A record cut by the end of the fed data.
    buf: Vec<u8>,
    /// Handshake bytes not yet a whole message.
    hs: Vec<u8>,
    keys: Option<Keys>,
    /// TLS 1.2: this side's keys, in force from its ChangeCipherSpec.
    pending: Option<Keys>,
    /// TLS 1.3: the traffic secret in force and its generation (KeyUpdates).
    secret: Option<Vec<u8>>,
    generation: u32,
    records: u64,
}

enum State {
    Running,
    /// The key is not in the log yet: what arrived since, in order.
    Holding {
        since: i64,
        held: Vec<(Dir, Vec<u8>)>,
        bytes: usize,
    },
    /// Given up on (reported once): the rest is not decrypted.
    Failed,
}

pub(crate) struct Conn {
    sides: [Side; 2],
    client_random: Option<[u8; 32]>,
    server_random: [u8; 32],
    tls13: bool,
    suite: Option<&'static Suite>,
    alg: Option<Alg>,
    /// The key log's entry, for the traffic secrets taken up after the handshake.
    secrets: Option<Secrets>,
    state: State,
    /// Where records are decrypted.
    scratch: Vec<u8>,
    pub(crate) info: Info,
}

impl Default for Conn {
    fn default() -> Self {
        Self::new()
    }
}

fn side_name(dir: Dir) -> &'static str {
    match dir {
        Dir::Frontend => "client",
        Dir::Backend => "server",
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

impl Conn {
    pub(crate) fn new() -> Conn {
        Conn {
            sides: Default::default(),
            client_random: None,
            server_random: [0; 32],
            tls13: false,
            suite: None,
            alg: None,
            secrets: None,
            state: State::Running,
            scratch: Vec::new(),
            info: Info::default(),
        }
    }

    /// Whether decryption stopped for good (an anomaly said why).
    pub(crate) fn failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// In-order TLS stream bytes of one direction. `ts` (capture time) bounds how
    /// long records are held for a key that may still be logged.
    pub(crate) fn feed(
        &mut self,
        dir: Dir,
        data: &[u8],
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        match &mut self.state {
            State::Failed => return,
            State::Holding { held, bytes, .. } => {
                *bytes += data.len();
                if *bytes > MAX_HELD {
                    return self.no_key(out);
                }
                held.push((dir, data.to_vec()));
                return self.retry(ts, keys, out);
            }
            State::Running => {}
        }
        self.records(dir, data, ts, keys, out);
    }

    /// The capture lost bytes of `dir`: record boundaries and sequence numbers are
    /// gone with them.
    pub(crate) fn gap(&mut self, dir: Dir, bytes: u64, out: &mut dyn FnMut(Out<'_>)) {
        self.fail(dir, Problem::Truncated, out, || {
            format!("{bytes} bytes of the TLS stream are missing from the capture; not decrypted further")
        });
    }

    /// The connection ended: a record cut short, or a key that never came (looked
    /// for once more: a short connection may end before the key log is read again).
    pub(crate) fn close(
        &mut self,
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        if matches!(self.state, State::Holding { .. }) {
            keys.reread();
            self.retry(ts, keys, out);
            if matches!(self.state, State::Holding { .. }) {
                return self.no_key(out);
            }
        }
        if self.failed() {
            return;
        }
        for dir in [Dir::Frontend, Dir::Backend] {
            let have = self.sides[dir as usize].buf.len();
            if have > 0 {
                let want = match self.sides[dir as usize].buf.get(3..5) {
                    Some(l) => format!("{}", u16::from_be_bytes([l[0], l[1]]) as usize + HEADER),
                    None => "?".into(),
                };
                self.fail(dir, Problem::Truncated, out, || {
                    format!(
                        "the {} stream ends inside a TLS record ({have} of {want} bytes)",
                        side_name(dir)
                    )
                });
            }
        }
    }

    fn fail(
        &mut self,
        dir: Dir,
        p: Problem,
        out: &mut dyn FnMut(Out<'_>),
        message: impl FnOnce() -> String,
    ) {
        if self.failed() {
            return;
        }
        self.state = State::Failed;
        for s in &mut self.sides {
            *s = Side::default();
        }
        self.scratch = Vec::new();
        out(Out::Anomaly(dir, p, message()));
    }

    fn no_key(&mut self, out: &mut dyn FnMut(Out<'_>)) {
        let random = self.client_random.map(|r| hex(&r)).unwrap_or_default();
        let what = if self.tls13 {
            "TLS 1.3 handshake secrets"
        } else {
            "CLIENT_RANDOM (master secret)"
        };
        self.fail(Dir::Backend, Problem::NoKey, out, || {
            format!("no key: the key log has no {what} for client_random {random}; not decrypted")
        });
    }

    /// Looks the held connection's key up again: replays what was held once it is
    /// there, gives up once it has been awaited long enough.
    fn retry(&mut self, ts: i64, keys: &mut dyn KeySource, out: &mut dyn FnMut(Out<'_>)) {
        let State::Holding { since, .. } = self.state else {
            return;
        };
        let lookup =
            |keys: &mut dyn KeySource| self.client_random.and_then(|r| keys.secrets(&r).cloned());
        let mut found = lookup(keys);
        if found.is_none() && ts.saturating_sub(since) > keys.wait_ns() {
            keys.reread();
            found = lookup(keys);
            if found.is_none() {
                return self.no_key(out);
            }
        }
        let Some(secrets) = found else {
            return;
        };
        let State::Holding { held, .. } = mem::replace(&mut self.state, State::Running) else {
            unreachable!("checked above")
        };
        if !self.install(secrets, out) {
            return;
        }
        // The rest of the ServerHello's flight, then what came while waiting.
        self.handshake(Dir::Backend, &[], ts, keys, out);
        for (dir, data) in held {
            if !matches!(self.state, State::Running) {
                break;
            }
            self.records(dir, &data, ts, keys, out);
        }
    }

    fn records(
        &mut self,
        dir: Dir,
        mut data: &[u8],
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        while !data.is_empty() {
            if let State::Holding { held, bytes, .. } = &mut self.state {
                *bytes += data.len();
                held.push((dir, data.to_vec()));
                return;
            }
            if self.failed() {
                return;
            }
            let side = &mut self.sides[dir as usize];
            // A whole record in the data is read in place; one cut by the end of
            // the data is put together in the side's buffer.
            let have = side.buf.len();
            let header = if have >= HEADER {
                side.buf[..HEADER].try_into().unwrap()
            } else if have + data.len() >= HEADER {
                let mut h = [0; HEADER];
                h[..have].copy_from_slice(&side.buf);
                h[have..].copy_from_slice(&data[..HEADER - have]);
                h
            } else {
                side.buf.extend_from_slice(data);
                return;
            };
            let len = u16::from_be_bytes([header[3], header[4]]) as usize;
            if !(CHANGE_CIPHER_SPEC..=24).contains(&header[0]) || header[1] != 3 || len > MAX_RECORD
            {
                return self.fail(dir, Problem::Malformed, out, || {
                    format!(
                        "the {} stream is not TLS (record header {})",
                        side_name(dir),
                        hex(&header)
                    )
                });
            }
            let total = HEADER + len;
            if have == 0 && data.len() >= total {
                self.record(dir, header, &data[HEADER..total], ts, keys, out);
                data = &data[total..];
                continue;
            }
            let take = (total - have).min(data.len());
            side.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if side.buf.len() < total {
                return;
            }
            let rec = mem::take(&mut side.buf);
            self.record(dir, header, &rec[HEADER..], ts, keys, out);
            let side = &mut self.sides[dir as usize];
            if side.buf.is_empty() {
                side.buf = rec;
                side.buf.clear();
            }
        }
    }

    fn record(
        &mut self,
        dir: Dir,
        header: [u8; HEADER],
        body: &[u8],
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        let typ = header[0];
        let side = &mut self.sides[dir as usize];
        side.records += 1;
        if typ == CHANGE_CIPHER_SPEC {
            // TLS 1.2: this side's protection starts; TLS 1.3: a no-op for middleboxes.
            if !self.tls13 && side.pending.is_some() {
                side.keys = side.pending.take();
            }
            return;
        }
        let Some(k) = side.keys.as_mut() else {
            if typ == APPLICATION_DATA {
                return self.fail(dir, Problem::Malformed, out, || {
                    format!(
                        "encrypted record from the {} before its keys are known",
                        side_name(dir)
                    )
                });
            }
            return self.content(dir, typ, body, ts, keys, out);
        };
        let mut scratch = mem::take(&mut self.scratch);
        scratch.clear();
        let (ok, inner) = open(k, self.tls13, header, body, &mut scratch);
        k.seq = k.seq.wrapping_add(1);
        let seq = k.seq;
        if !ok {
            self.scratch = scratch;
            return self.fail(dir, Problem::AuthFailed, out, || {
                format!(
                    "TLS record {seq} of the {} does not authenticate (wrong key or corrupted record); not decrypted further",
                    side_name(dir)
                )
            });
        }
        self.info.decrypted = true;
        let typ = inner.unwrap_or(typ);
        if self.tls13 && inner.is_none() {
            self.scratch = scratch;
            return self.fail(dir, Problem::Malformed, out, || {
                format!(
                    "decrypted TLS 1.3 record of the {} has no content type",
                    side_name(dir)
                )
            });
        }
        self.content(dir, typ, &scratch, ts, keys, out);
        if self.scratch.capacity() < scratch.capacity() {
            self.scratch = scratch;
        }
    }

    fn content(
        &mut self,
        dir: Dir,
        typ: u8,
        payload: &[u8],
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        match typ {
            APPLICATION_DATA if !payload.is_empty() => out(Out::Plain(dir, payload)),
            HANDSHAKE => self.handshake(dir, payload, ts, keys, out),
            // Alerts (close_notify, or a fatal one ending the connection) and empty
            // records carry nothing for the PostgreSQL stream.
            ALERT | APPLICATION_DATA | CHANGE_CIPHER_SPEC => {}
            _ => self.fail(dir, Problem::Malformed, out, || {
                format!("TLS record of unknown content type {typ}")
            }),
        }
    }

    /// Handshake bytes of `dir`: acts on each whole message.
    fn handshake(
        &mut self,
        dir: Dir,
        payload: &[u8],
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        let mut hs = mem::take(&mut self.sides[dir as usize].hs);
        hs.extend_from_slice(payload);
        let mut at = 0;
        while let Some(&[typ, a, b, c]) = hs.get(at..at + 4) {
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            let Some(body) = hs.get(at + 4..at + 4 + len) else {
                break;
            };
            at += 4 + len;
            self.message(dir, typ, body, ts, keys, out);
            if !matches!(self.state, State::Running) {
                break;
            }
        }
        hs.drain(..at);
        if hs.len() > MAX_HANDSHAKE {
            return self.fail(dir, Problem::Malformed, out, || {
                format!(
                    "TLS handshake message of the {} over {MAX_HANDSHAKE} bytes",
                    side_name(dir)
                )
            });
        }
        if !self.failed() {
            self.sides[dir as usize].hs = hs;
        }
    }

    fn message(
        &mut self,
        dir: Dir,
        typ: u8,
        body: &[u8],
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        match (dir, typ) {
            (Dir::Frontend, 1) => match parse_client_hello(body) {
                Some((random, alpn)) => {
                    self.client_random = Some(random);
                    self.info.alpn = alpn;
                }
                None => self.fail(dir, Problem::Malformed, out, || {
                    "malformed ClientHello".into()
                }),
            },
            (Dir::Backend, 2) => {
                let Some(sh) = parse_server_hello(body) else {
                    return self.fail(dir, Problem::Malformed, out, || {
                        "malformed ServerHello".into()
                    });
                };
                if sh.random == HRR_RANDOM {
                    // HelloRetryRequest: the real ServerHello follows a second ClientHello.
                    return;
                }
                self.server_hello(sh, ts, keys, out);
            }
            // Finished: in TLS 1.3 the sender's next records are under its traffic
            // secret.
            (_, 20) if self.tls13 => self.next_secret(dir, None, out),
            (_, 24) if self.tls13 => {
                let generation = self.sides[dir as usize].generation + 1;
                self.next_secret(dir, Some(generation), out);
            }
            _ => {}
        }
    }

    fn server_hello(
        &mut self,
        sh: ServerHello,
        ts: i64,
        keys: &mut dyn KeySource,
        out: &mut dyn FnMut(Out<'_>),
    ) {
        self.server_random = sh.random;
        self.tls13 = sh.version == 0x0304;
        self.info.version = Some(match sh.version {
            0x0304 => "1.3",
            0x0303 => "1.2",
            0x0302 => "1.1",
            0x0301 => "1.0",
            _ => "unknown",
        });
        let suite = crypto::suite(sh.suite);
        self.info.cipher = Some(match suite {
            Some(s) => s.name.to_string(),
            None => format!("0x{:04x}", sh.suite),
        });
        let name = self.info.cipher.clone().unwrap_or_default();
        let version = self.info.version.unwrap_or("?");
        let (Some(suite), true) = (suite, matches!(sh.version, 0x0303 | 0x0304)) else {
            return self.fail(Dir::Backend, Problem::Unsupported, out, || {
                format!("TLS {version} with {name} is not decryptable")
            });
        };
        let Some(alg) = suite.aead else {
            return self.fail(Dir::Backend, Problem::Unsupported, out, || {
                format!(
                    "cipher suite {name} is not decryptable (only AEAD suites with (EC)DHE are)"
                )
            });
        };
        self.suite = Some(suite);
        self.alg = Some(alg);
        let Some(random) = self.client_random else {
            return self.fail(Dir::Backend, Problem::Malformed, out, || {
                "ServerHello without a ClientHello".into()
            });
        };
        match keys.secrets(&random).cloned() {
            Some(s) => {
                self.install(s, out);
            }
            None if keys.wait_ns() > 0 => {
                self.state = State::Holding {
                    since: ts,
                    held: Vec::new(),
                    bytes: 0,
                };
            }
            None => self.no_key(out),
        }
    }

    /// Puts the handshake's keys in place. False if the log's entry lacks them.
    fn install(&mut self, s: Secrets, out: &mut dyn FnMut(Out<'_>)) -> bool {
        let (Some(suite), Some(alg)) = (self.suite, self.alg) else {
            return false;
        };
        if self.tls13 {
            let (Some(c), Some(sv)) = (&s.client_handshake, &s.server_handshake) else {
                self.no_key(out);
                return false;
            };
            let (c, sv) = (c.0.to_vec(), sv.0.to_vec());
            self.sides[0].keys = Keys::tls13(suite, alg, &c);
            self.sides[1].keys = Keys::tls13(suite, alg, &sv);
        } else {
            let Some(master) = &s.master else {
                self.no_key(out);
                return false;
            };
            let (k, iv) = (alg.key_len(), alg.fixed_iv_len());
            let mut seed = self.server_random.to_vec();
            seed.extend_from_slice(&self.client_random.unwrap_or_default());
            let block = crypto::prf(suite.hash, &master.0, b"key expansion", &seed, 2 * (k + iv));
            let (ck, rest) = block.split_at(k);
            let (sk, rest) = rest.split_at(k);
            let (civ, siv) = rest.split_at(iv);
            for (side, key, fixed) in [(0, ck, civ), (1, sk, siv)] {
                let mut iv = [0; 12];
                iv[..fixed.len()].copy_from_slice(fixed);
                self.sides[side].pending = Cipher::new(alg, key).map(|cipher| Keys {
                    cipher,
                    iv,
                    explicit: alg.explicit_nonce_len() > 0,
                    seq: 0,
                });
            }
        }
        self.secrets = Some(s);
        true
    }

    /// TLS 1.3: the sender of a Finished (`None`) or KeyUpdate (the new generation)
    /// moves to its next application traffic secret: as logged (some OpenSSL versions
    /// log `_1`, `_2`…), or derived from the current one (RFC 8446 §7.2).
    fn next_secret(&mut self, dir: Dir, generation: Option<u32>, out: &mut dyn FnMut(Out<'_>)) {
        let (Some(suite), Some(alg), Some(s)) = (self.suite, self.alg, &self.secrets) else {
            return;
        };
        let client = dir == Dir::Frontend;
        let side = &mut self.sides[dir as usize];
        let g = generation.unwrap_or(0);
        let secret = match (s.traffic(client, g), &side.secret) {
            (Some(logged), _) => logged.0.to_vec(),
            (None, Some(cur)) if generation.is_some() => {
                crypto::expand_label(suite.hash, cur, "traffic upd", &[], suite.hash.output_len())
            }
            _ => {
                let label = if client { "CLIENT" } else { "SERVER" };
                let random = self.client_random.map(|r| hex(&r)).unwrap_or_default();
                return self.fail(dir, Problem::NoKey, out, || {
                    format!("no key: the key log has no {label}_TRAFFIC_SECRET_0 for client_random {random}; not decrypted further")
                });
            }
        };
        side.keys = Keys::tls13(suite, alg, &secret);
        side.secret = Some(secret);
        side.generation = g;
    }
}

/// Decrypts one protected record into `buf`. Returns whether it authenticated and,
/// in TLS 1.3 (`tls13`), the inner content type, which `buf` is left without.
fn open(
    k: &Keys,
    tls13: bool,
    header: [u8; HEADER],
    body: &[u8],
    buf: &mut Vec<u8>,
) -> (bool, Option<u8>) {
    let explicit = if k.explicit { 8 } else { 0 };
    if body.len() < explicit + TAG {
        return (false, None);
    }
    let (carried, ct) = body.split_at(explicit);
    let (ct, tag) = ct.split_at(ct.len() - TAG);
    let mut nonce = k.nonce();
    if k.explicit {
        nonce[4..].copy_from_slice(carried);
    }
    buf.extend_from_slice(ct);
    if tls13 {
        if !k.cipher.open(&nonce, &header, buf, tag) {
            return (false, None);
        }
        // TLSInnerPlaintext: content, its type, then zero padding.
        let typ = match buf.iter().rposition(|&b| b != 0) {
            Some(at) => {
                let t = buf[at];
                buf.truncate(at);
                Some(t)
            }
            None => None,
        };
        return (true, typ);
    }
    // TLS 1.2 (RFC 5246 §6.2.3.3): seq_num, type, version, plaintext length.
    let mut aad = [0; 13];
    aad[..8].copy_from_slice(&k.seq.to_be_bytes());
    aad[8..11].copy_from_slice(&header[..3]);
    aad[11..].copy_from_slice(&(ct.len() as u16).to_be_bytes());
    (k.cipher.open(&nonce, &aad, buf, tag), None)
}

struct ServerHello {
    version: u16,
    random: [u8; 32],
    suite: u16,
}

/// A bounds-checked reader over a handshake message.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a one- or two-byte length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// Extensions as (type, data); stops at the first malformed one.
    fn extensions(mut self) -> impl Iterator<Item = (u16, &'a [u8])> {
        std::iter::from_fn(move || Some((self.u16()?, self.vec16()?)))
    }
}

/// client_random and the first ALPN protocol.
fn parse_client_hello(body: &[u8]) -> Option<([u8; 32], Option<String>)> {
    let mut r = Reader(body);
    r.u16()?;
    let random: [u8; 32] = r.take(32)?.try_into().ok()?;
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let alpn = Reader(r.vec16().unwrap_or_default())
        .extensions()
        .find(|(t, _)| *t == 0x0010)
        .and_then(|(_, d)| {
            let mut r = Reader(d);
            let mut list = Reader(r.vec16()?);
            let first = list.vec8()?;
            Some(String::from_utf8_lossy(first).into_owned())
        });
    Some((random, alpn))
}

fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader(body);
    let mut version = r.u16()?;
    let random: [u8; 32] = r.take(32)?.try_into().ok()?;
    r.vec8()?;
    let suite = r.u16()?;
    r.u8()?;
    // TLS 1.3 says so in supported_versions; the legacy field stays 1.2.
    if let Some((_, v)) = Reader(r.vec16().unwrap_or_default())
        .extensions()
        .find(|(t, _)| *t == 0x002b)
    {
        version = Reader(v).u16()?;
    }
    Some(ServerHello {
        version,
        random,
        suite,
    })
}
