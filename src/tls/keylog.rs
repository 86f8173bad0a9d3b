//! NSS key log files (the SSLKEYLOGFILE format): `LABEL <client_random hex> <secret hex>`
//! a line. Read incrementally, so a file a client is still appending to can be followed.

use rustc_hash::FxHashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::KeySource;

/// Key material. Its `Debug` never shows the bytes, so no log or panic message can.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) Box<[u8]>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// Traffic secrets past this generation (KeyUpdates) are not kept from the log;
/// they are derived instead.
const MAX_GENERATION: u32 = 1024;

/// What a key log says about one handshake (keyed by its client_random).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    /// TLS 1.2: `CLIENT_RANDOM`.
    pub(crate) master: Option<Secret>,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET` (TLS 1.3).
    pub client_handshake: Option<Secret>,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET` (TLS 1.3).
    pub server_handshake: Option<Secret>,
    /// TLS 1.3 application traffic secrets by generation: `CLIENT_TRAFFIC_SECRET_0`,
    /// and the `_1`, `_2`… some OpenSSL versions log after a KeyUpdate.
    pub(crate) client_traffic: Vec<(u32, Secret)>,
    pub(crate) server_traffic: Vec<(u32, Secret)>,
}

impl Secrets {
    pub(crate) fn traffic(&self, client: bool, generation: u32) -> Option<&Secret> {
        let list = if client {
            &self.client_traffic
        } else {
            &self.server_traffic
        };
        list.iter().find(|(g, _)| *g == generation).map(|(_, s)| s)
    }
}

/// Secrets by client_random, from any number of key log texts.
#[derive(Default)]
pub struct KeyLog {
    map: FxHashMap<[u8; 32], Secrets>,
    /// Lines that are not `LABEL hex hex` with a 32-byte client_random.
    pub(crate) bad_lines: u64,
    /// Well-formed lines with a label that carries nothing to decrypt with
    /// (e.g. `EXPORTER_SECRET`, `CLIENT_EARLY_TRAFFIC_SECRET`).
    pub(crate) ignored_lines: u64,
}

impl KeyLog {
    pub(crate) fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.map.get(client_random)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// No secrets read.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds every line of `text` (complete lines; `#` comments and blank lines skipped).
    pub(crate) fn add_text(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            self.add_line(line);
        }
    }

    fn add_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            return;
        }
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            self.bad_lines += 1;
            return;
        };
        let (Some(random), Some(secret)) = (unhex(random), unhex(secret)) else {
            self.bad_lines += 1;
            return;
        };
        let (Ok(random), true) = (
            <[u8; 32]>::try_from(random),
            (1..=64).contains(&secret.len()),
        ) else {
            self.bad_lines += 1;
            return;
        };
        let secret = Secret(secret.into_boxed_slice());
        let slot = match label {
            b"CLIENT_RANDOM" if secret.0.len() == 48 => Slot::Master,
            b"CLIENT_RANDOM" => {
                self.bad_lines += 1;
                return;
            }
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Slot::ClientHandshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Slot::ServerHandshake,
            // OpenSSL 3.0 logs each KeyUpdate's secret under a literal `_N`: the
            // n-th such line of a side is generation n.
            b"CLIENT_TRAFFIC_SECRET_N" | b"SERVER_TRAFFIC_SECRET_N" => {
                let client = label[0] == b'C';
                let e = self.map.get(&random);
                let have = e.map_or(0, |e| {
                    let list = if client {
                        &e.client_traffic
                    } else {
                        &e.server_traffic
                    };
                    list.iter().filter(|(g, _)| *g > 0).count() as u32
                });
                Slot::Traffic(client, have + 1)
            }
            _ => match generation(label) {
                Some((client, g)) => Slot::Traffic(client, g),
                None => {
                    self.ignored_lines += 1;
                    return;
                }
            },
        };
        let entry = self.map.entry(random).or_default();
        match slot {
            Slot::Master => entry.master = Some(secret),
            Slot::ClientHandshake => entry.client_handshake = Some(secret),
            Slot::ServerHandshake => entry.server_handshake = Some(secret),
            Slot::Traffic(client, g) => {
                let list = if client {
                    &mut entry.client_traffic
                } else {
                    &mut entry.server_traffic
                };
                list.retain(|(have, _)| *have != g);
                list.push((g, secret));
            }
        }
    }
}

enum Slot {
    Master,
    ClientHandshake,
    ServerHandshake,
    Traffic(bool, u32),
}

/// `CLIENT_TRAFFIC_SECRET_<n>` / `SERVER_TRAFFIC_SECRET_<n>`: (client?, n).
fn generation(label: &[u8]) -> Option<(bool, u32)> {
    let (client, n) = if let Some(n) = label.strip_prefix(b"CLIENT_TRAFFIC_SECRET_") {
        (true, n)
    } else {
        (false, label.strip_prefix(b"SERVER_TRAFFIC_SECRET_")?)
    };
    let n: u32 = std::str::from_utf8(n).ok()?.parse().ok()?;
    (n <= MAX_GENERATION).then_some((client, n))
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// Key log files given on the command line, read as they grow.
pub struct KeyFiles {
    files: Vec<Followed>,
    /// The secrets read so far.
    pub log: KeyLog,
    /// Live capture: clients append to the files while pgscope runs.
    follow: bool,
    last_read: Instant,
}

/// While following, a missing key makes the files be read again, at most this often.
const REREAD: Duration = Duration::from_millis(50);
/// While following, how long (capture time) a connection's records wait for its key.
const KEY_WAIT_NS: i64 = 2_000_000_000;

impl KeySource for KeyFiles {
    fn secrets(&mut self, client_random: &[u8; 32]) -> Option<&Secrets> {
        if self.follow
            && self.log.get(client_random).is_none()
            && self.last_read.elapsed() >= REREAD
        {
            self.refresh();
        }
        self.log.get(client_random)
    }

    fn wait_ns(&self) -> i64 {
        if self.follow { KEY_WAIT_NS } else { 0 }
    }

    fn reread(&mut self) {
        if self.follow {
            self.refresh();
        }
    }
}

struct Followed {
    path: PathBuf,
    /// Opened once, before a live capture drops its privileges.
    file: File,
    /// Bytes of the file already taken (complete lines only).
    offset: u64,
}

/// A key log line is under 300 bytes; a file growing faster than this between two
/// reads is read in several.
const READ_CHUNK: u64 = 4 << 20;

impl KeyFiles {
    /// Opens and reads every file now: a missing or unreadable one is an error.
    /// `follow`: read what is appended later, when a key is missing.
    pub fn open(paths: &[PathBuf], follow: bool) -> io::Result<Self> {
        let files = paths
            .iter()
            .map(|p| {
                let file = File::open(p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                Ok(Followed {
                    path: p.clone(),
                    file,
                    offset: 0,
                })
            })
            .collect::<io::Result<_>>()?;
        let mut me = KeyFiles {
            files,
            log: KeyLog::default(),
            follow,
            last_read: Instant::now(),
        };
        for i in 0..me.files.len() {
            // A file still being written may end inside a line.
            me.read(i, !follow).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: {e}", me.files[i].path.display()))
            })?;
        }
        Ok(me)
    }

    /// Takes the lines appended since the last read. Errors (a file removed since)
    /// leave the keys already read in place.
    pub(crate) fn refresh(&mut self) {
        self.last_read = Instant::now();
        for i in 0..self.files.len() {
            let _ = self.read(i, false);
        }
    }

    /// `to_end`: also a last line without its newline (a finished file).
    fn read(&mut self, i: usize, to_end: bool) -> io::Result<()> {
        let f = &mut self.files[i];
        let file = &mut f.file;
        let len = file.metadata()?.len();
        if len < f.offset {
            // Truncated and rewritten: read it again from the start.
            f.offset = 0;
        }
        while f.offset < len {
            file.seek(SeekFrom::Start(f.offset))?;
            let mut buf = Vec::new();
            (&mut *file).take(READ_CHUNK).read_to_end(&mut buf)?;
            // Only whole lines: the writer may be in the middle of one.
            let Some(end) = buf
                .iter()
                .rposition(|&b| b == b'\n')
                .or((to_end && !buf.is_empty()).then(|| buf.len() - 1))
            else {
                break;
            };
            self.log.add_text(&buf[..=end]);
            f.offset += end as u64 + 1;
            if buf.len() < READ_CHUNK as usize {
                break;
            }
        }
        Ok(())
    }
}
