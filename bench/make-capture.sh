#!/usr/bin/env bash
# make-capture.sh — record real pgbench captures for bench/run.sh.
#
#   bench/make-capture.sh [PACKETS]   one capture, default 2000000 packets
#   bench/make-capture.sh mixes       one capture per traffic mix, and all of them
#
# Starts the servers with scripts/pg-setup.sh and initialises a pgbench database
# (pgscope_bench, scale $BENCH_SCALE, not captured). Captures are straight
# tcpdump -s 0 recordings of PG15 on 127.0.0.1:5432 (plaintext), written under
# bench/data/ (gitignored). Must run as root.
#
# Default: pgbench -M $BENCH_MODE (extended) -c 4 -j 2, TPC-B, until tcpdump has
# written PACKETS packets -> bench/data/pgbench.pcap.
#
# mixes: each mix is recorded for at most $MIX_SECONDS (8) seconds (connect: twice that) or
# $MIX_PACKETS (400000) packets, whichever comes first, into bench/data/mix-NAME.pcap:
#   simple    pgbench -S -M simple     select-only, every statement a text with its literal
#   extended  pgbench -S -M extended   unnamed statement, Parse/Bind/Execute each time
#   prepared  pgbench -S -M prepared   named statement, Bind/Execute
#   tpcb      pgbench -M prepared      TPC-B, 7 statements per transaction
#   copy      psql: COPY FROM STDIN and COPY TO STDOUT of $COPY_MB MB, repeated
#   connect   pgbench -C -S -M simple  a connection per transaction (startup, one query, Terminate)
# and bench/data/mixes.pcap, all of them merged in recording order (mergecap).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DATA=$HERE/data
SCALE=${BENCH_SCALE:-4}

log() { echo "[make-capture] $*" >&2; }

"$ROOT/scripts/pg-setup.sh" start >/dev/null
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PGSSLMODE=disable
unset PGMAXPROTOCOLVERSION PGOPTIONS || true
mkdir -p "$DATA"

PSQL="$PG15_BIN/psql -X -q -h $PG15_SOCKDIR -p $PG15_PORT"
if ! $PSQL -U postgres -d postgres -Atc "select 1 from pg_database where datname='pgscope_bench'" | grep -q 1; then
    $PSQL -U postgres -d postgres -c "create database pgscope_bench owner trust_user"
fi
if ! $PSQL -U trust_user -d pgscope_bench -Atc "select count(*) from pgbench_branches" 2>/dev/null | grep -qx "$SCALE"; then
    log "pgbench -i -s $SCALE pgscope_bench (not captured)"
    "$PG15_BIN/pgbench" -i -q -s "$SCALE" -h "$PG15_SOCKDIR" -p "$PG15_PORT" -U trust_user pgscope_bench >/dev/null 2>&1
fi

count() { capinfos -M -c "$1" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}'; }

# record OUT MAX_PACKETS CMD... — capture port 5432 on lo into OUT while CMD runs
# in the background; stops when CMD ends or tcpdump has MAX_PACKETS packets.
record() {
    local out=$1 max=$2; shift 2
    local err tpid bpid start
    rm -f "$out"
    err=$(mktemp)
    tcpdump -i lo -s 0 -B 262144 -U -Z root -c "$max" -w "$out" "tcp port $PG15_PORT" 2>"$err" &
    tpid=$!
    for _ in $(seq 1 100); do grep -q "listening on" "$err" && break; sleep 0.05; done
    sleep 0.3
    start=$(date +%s.%N)
    "$@" >"${out%.pcap}.log" 2>&1 &
    bpid=$!
    while kill -0 "$tpid" 2>/dev/null; do
        if ! kill -0 "$bpid" 2>/dev/null; then
            sleep 0.5
            kill -INT "$tpid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$tpid" || true
    kill -TERM "$bpid" 2>/dev/null || true # background jobs ignore SIGINT in scripts
    wait "$bpid" 2>/dev/null || true
    if grep -E "packets dropped by kernel" "$err" | grep -qv '^0 '; then
        log "WARNING: $(grep 'dropped by kernel' "$err")"
    fi
    rm -f "$err"
    log "$(basename "$out"): $(count "$out") packets, $(du -h "$out" | cut -f1), $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")s"
}

PGBENCH=("$PG15_BIN/pgbench" -n -h 127.0.0.1 -p "$PG15_PORT" -U trust_user)

if [ "${1:-}" != mixes ]; then
    PACKETS=${1:-2000000}
    OUT=${BENCH_PCAP:-$DATA/pgbench.pcap}
    MODE=${BENCH_MODE:-extended}
    MAX_SECONDS=${BENCH_MAX_SECONDS:-900}
    log "recording $PACKETS packets of pgbench -M $MODE -c 4 -j 2 (max ${MAX_SECONDS}s)"
    record "$OUT" "$PACKETS" "${PGBENCH[@]}" -M "$MODE" -c 4 -j 2 -T "$MAX_SECONDS" -P 10 pgscope_bench
    n=$(count "$OUT")
    if [ "$n" -lt "$PACKETS" ]; then
        log "WARNING: only $n packets (< $PACKETS)"
        exit 1
    fi
    exit 0
fi

SECS=${MIX_SECONDS:-8}
MAXP=${MIX_PACKETS:-400000}
COPY_MB=${COPY_MB:-4}
COPY_ROUNDS=${COPY_ROUNDS:-10}

# The COPY mix: a table of about COPY_MB MB loaded from a file generated here
# (not captured), then COPY_ROUNDS times: truncate, COPY FROM STDIN, COPY TO STDOUT.
copy_data=$DATA/copy-input.tsv
rows=$((COPY_MB * 1024 * 1024 / 64))
$PSQL -U trust_user -d pgscope_bench -c "drop table if exists bench_copy" \
    -c "create table bench_copy (id int, name text, amount numeric, at timestamptz)"
$PSQL -U trust_user -d pgscope_bench -Atc \
    "copy (select i, md5(i::text), i * 1.25, timestamptz '2026-01-01' + i * interval '1 s' from generate_series(1, $rows) i) to stdout" \
    >"$copy_data"
copy_script=$DATA/copy.sql
{
    for ((i = 0; i < COPY_ROUNDS; i++)); do
        echo "truncate bench_copy;"
        echo "\\copy bench_copy from '$copy_data'"
        echo "\\copy bench_copy to '/dev/null'"
    done
} >"$copy_script"

mixes=(simple extended prepared tpcb copy connect)
for mix in "${mixes[@]}"; do
    out=$DATA/mix-$mix.pcap
    case $mix in
    simple | extended | prepared)
        record "$out" "$MAXP" "${PGBENCH[@]}" -S -M "$mix" -c 4 -j 2 -T "$SECS" pgscope_bench ;;
    tpcb)
        record "$out" "$MAXP" "${PGBENCH[@]}" -M prepared -c 4 -j 2 -T "$SECS" pgscope_bench ;;
    copy)
        record "$out" "$MAXP" "$PG15_BIN/psql" -X -q -h 127.0.0.1 -p "$PG15_PORT" -U trust_user \
            -d pgscope_bench -f "$copy_script" ;;
    connect)
        record "$out" "$MAXP" "${PGBENCH[@]}" -C -S -M simple -c 4 -j 2 -T "$((2 * SECS))" pgscope_bench ;;
    esac
done
rm -f "$copy_data" "$copy_script"

# Recorded one after the other, so merging by time is their concatenation.
files=()
for mix in "${mixes[@]}"; do files+=("$DATA/mix-$mix.pcap"); done
mergecap -F pcap -w "$DATA/mixes.pcap" "${files[@]}"
log "mixes.pcap: $(count "$DATA/mixes.pcap") packets, $(du -h "$DATA/mixes.pcap" | cut -f1)"
