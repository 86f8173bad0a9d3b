//! Helpers shared by the integration tests: run the real binary on real captures.
#![allow(dead_code)]

pub mod tshark;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every capture the project ships: its own recordings and the peers' ones.
pub fn all_captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut dirs = vec![root().join("captures")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng")
            ) {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Server ports of a capture (most use the defaults; a few peers' captures do not).
pub fn ports_of(p: &Path) -> Vec<u16> {
    let name = p.file_name().unwrap().to_string_lossy();
    if name.contains("15432") {
        vec![15432]
    } else if name == "pgsql-all.pcap" {
        vec![8000]
    } else if name == "pgsql2.pcapng" {
        vec![60102]
    } else {
        vec![5432, 5433]
    }
}

pub struct Run {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

pub fn pgscope(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_pgscope"))
        .args(args)
        .output()
        .expect("run pgscope");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// JSON records of a capture, with the given record kinds.
pub fn records(p: &Path, kinds: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["-r", p.to_str().unwrap(), "-o", "json", "--records", kinds];
    let ports: Vec<String> = ports_of(p).iter().map(|x| x.to_string()).collect();
    for port in &ports {
        args.push("-p");
        args.push(port);
    }
    args.extend_from_slice(extra);
    let run = pgscope(&args);
    assert_eq!(run.status, 0, "{}: {}", p.display(), run.stderr);
    parse_lines(&run.stdout, p)
}

/// Parses JSON lines, failing on invalid JSON and on a key that appears twice in one
/// object (serde_json would silently keep the last one).
pub fn parse_lines(out: &[u8], p: &Path) -> Vec<Value> {
    let text =
        std::str::from_utf8(out).unwrap_or_else(|e| panic!("{}: not UTF-8: {e}", p.display()));
    text.lines()
        .map(|l| {
            let keys: KeyList = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad JSON {e}: {l}", p.display()));
            let mut sorted = keys.0.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                keys.0.len(),
                "{}: duplicate key in {l}",
                p.display()
            );
            serde_json::from_str(l).unwrap()
        })
        .collect()
}

/// The top-level keys of a JSON object, in order, duplicates kept.
struct KeyList(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(KeyList(keys))
            }
        }
        d.deserialize_map(V)
    }
}

pub fn of_kind<'a>(recs: &'a [Value], dataset: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["event.dataset"] == dataset)
        .collect()
}

pub fn capture(rel: &str) -> PathBuf {
    root().join("captures").join(rel)
}

/// Everything a child's piped stdout or stderr still has to say.
pub fn read_pipe(pipe: Option<impl std::io::Read>) -> String {
    let mut s = String::new();
    pipe.expect("piped")
        .read_to_string(&mut s)
        .expect("read the pipe");
    s
}

/// The rows of `-o summary`'s top statements table, run with these arguments.
pub fn summary_top_rows(args: &[&str]) -> Vec<String> {
    let run = pgscope(&[&["-o", "summary"], args].concat());
    assert_eq!(run.status, 0, "{}", run.stderr);
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .skip_while(|l| !l.starts_with("Top statements"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
