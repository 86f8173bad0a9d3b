#!/usr/bin/env bash
# build-pgo.sh — the profile-guided release build of pgscope.
#
#   scripts/build-pgo.sh [--install] [--check]
#
# `cargo build --release` is enough to run pgscope; this build is the fast one
# (docs/benchmark.md: 8–14% fewer instructions than the plain build per mix). It
#   1. builds pgscope instrumented (-Cprofile-generate, target dir target/pgo-gen),
#   2. runs it over the shipped captures (captures/: every protocol path the tests
#      know, -o json, text and summary) to record which branches are hot,
#   3. merges the profiles with llvm-profdata (rustup's llvm-tools component, added
#      here when missing),
#   4. builds with -Cprofile-use into target/pgo: target/pgo/release/pgscope.
# The training captures are the project's own, not the benchmark's (bench/data).
#
#   --install  also installs that build into ~/.cargo/bin (cargo install --path .)
#   --check    then runs target/release/pgscope (built first when missing) and the
#              PGO build over every capture, -o json and -o text, and fails unless
#              their outputs are byte-identical (scripts/test.sh runs this)
#
# Without llvm-profdata (a cargo not from rustup) it says so and builds without
# profiles, so --install still installs a working pgscope.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
install=0 check=0
for a in "$@"; do
    case $a in
    --install) install=1 ;;
    --check) check=1 ;;
    *) echo "usage: scripts/build-pgo.sh [--install] [--check]" >&2; exit 2 ;;
    esac
done
log() { echo "[pgo] $*" >&2; }

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ] && command -v rustup >/dev/null; then
    log "rustup component add llvm-tools"
    rustup component add llvm-tools >&2 || true
fi

# All captures the project ships, compressed ones included.
captures=()
for f in captures/*; do
    case $f in *.pcap | *.pcapng | *.gz | *.zst) captures+=("$f") ;; esac
done

if [ -x "$profdata" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    log "instrumented build (target/pgo-gen)"
    RUSTFLAGS="-Cprofile-generate=$work/raw" cargo build --release --quiet --target-dir target/pgo-gen
    log "training on ${#captures[@]} captures"
    # As root, -Z root: pgscope would otherwise become nobody and could not write
    # the profile. Errors are part of the training: some captures are damaged.
    stay=()
    [ "$(id -u)" != 0 ] || stay=(-Z root)
    for f in "${captures[@]}"; do
        for o in json text summary; do
            LLVM_PROFILE_FILE="$work/raw/%m_%p.profraw" \
                target/pgo-gen/release/pgscope "${stay[@]}" -r "$f" -o "$o" >/dev/null 2>&1 || true
        done
    done
    if compgen -G "$work/raw/*.profraw" >/dev/null; then
        "$profdata" merge -o "$ROOT/target/pgo.profdata" "$work"/raw/*.profraw
        flags="-Cprofile-use=$ROOT/target/pgo.profdata"
    else
        log "the training runs wrote no profile: building without profiles"
        flags=""
    fi
else
    log "no llvm-profdata (rustup's llvm-tools): building without profiles"
    flags=""
fi
log "release build${flags:+ with profiles} (target/pgo)"
RUSTFLAGS="$flags" cargo build --release --quiet --target-dir target/pgo
log "built target/pgo/release/pgscope"

if [ $install = 1 ]; then
    # Same flags and target dir: cargo install reuses the build above.
    RUSTFLAGS="$flags" cargo install --quiet --locked --path . --target-dir target/pgo
fi

if [ $check = 1 ]; then
    [ -x target/release/pgscope ] || cargo build --release --quiet
    out=$(mktemp -d)
    n=0
    for f in "${captures[@]}"; do
        for o in json text; do
            target/release/pgscope -r "$f" -o "$o" >"$out/plain" 2>&1 || true
            target/pgo/release/pgscope -r "$f" -o "$o" >"$out/pgo" 2>&1 || true
            if ! cmp -s "$out/plain" "$out/pgo"; then
                log "FAIL: $f -o $o differs between target/release and the PGO build"
                diff "$out/plain" "$out/pgo" | head -5 >&2
                exit 1
            fi
            n=$((n + 1))
        done
    done
    rm -rf "$out"
    log "check: $n outputs identical to target/release/pgscope's"
fi
