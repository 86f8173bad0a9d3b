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
    if p.parent().is_some_and(|d| d.ends_with("pooler")) {
        // pgbouncer on 6432 in front of PostgreSQL 15 (captures/pooler/record.sh).
        vec![5432, 6432]
    } else if name.contains("15432") {
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

/// The damage tool (examples/pgscope-damage.rs), built once per test binary in the
/// profile of the running tests. It is an example so that `cargo install` leaves it
/// out; a test cannot name an example's path at compile time (only binaries get
/// `CARGO_BIN_EXE_*`), so it asks cargo, which is a no-op when it is up to date.
pub fn damage_tool() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        // target/<profile>/deps/<test binary>: the profile is the directory above deps.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let profile = if profile == "debug" { "dev" } else { profile };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .current_dir(root())
            .args([
                "build",
                "--quiet",
                "--example",
                "pgscope-damage",
                "--profile",
            ])
            .arg(profile)
            .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
            .status()
            .expect("run cargo to build the damage tool");
        assert!(st.success(), "cargo build --example pgscope-damage: {st}");
        profile_dir.join("examples/pgscope-damage")
    })
}

/// psql as trust_user on the test server at `port`, in plain text, quiet, output
/// discarded (`PSQL` names the binary).
pub fn psql(port: &str) -> Command {
    let mut c = Command::new(std::env::var("PSQL").unwrap_or_else(|_| "psql".into()));
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-U",
        "trust_user",
        "-d",
        "pgscope",
    ])
    .args(["-X", "-q"])
    .env("PGSSLMODE", "disable")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    c
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
