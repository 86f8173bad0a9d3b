#!/usr/bin/env bash
# make-capture.sh — record a large real pgbench capture for bench/run.sh.
#
#   bench/make-capture.sh [PACKETS]     default 2000000 packets
#
# Starts the servers with scripts/pg-setup.sh, initialises a pgbench database
# (pgscope_bench, scale $BENCH_SCALE, not captured), then records
#   pgbench -M extended -c 4 -j 2 -T 900  against PG15 on 127.0.0.1:5432
# with tcpdump -s 0 -c PACKETS, i.e. a straight recording that stops by itself
# once PACKETS packets are written; pgbench is then stopped.
# Output: bench/data/pgbench.pcap (gitignored). Must run as root.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PACKETS=${1:-2000000}
OUT=${BENCH_PCAP:-$HERE/data/pgbench.pcap}
SCALE=${BENCH_SCALE:-4}
MODE=${BENCH_MODE:-extended}
MAX_SECONDS=${BENCH_MAX_SECONDS:-900}

log() { echo "[make-capture] $*" >&2; }

"$ROOT/scripts/pg-setup.sh" start >/dev/null
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PGSSLMODE=disable
unset PGMAXPROTOCOLVERSION PGOPTIONS || true
mkdir -p "$(dirname "$OUT")"

PSQL="$PG15_BIN/psql -X -q -h $PG15_SOCKDIR -p $PG15_PORT"
if ! $PSQL -U postgres -d postgres -Atc "select 1 from pg_database where datname='pgscope_bench'" | grep -q 1; then
    $PSQL -U postgres -d postgres -c "create database pgscope_bench owner trust_user"
fi
if ! $PSQL -U trust_user -d pgscope_bench -Atc "select count(*) from pgbench_branches" 2>/dev/null | grep -qx "$SCALE"; then
    log "pgbench -i -s $SCALE pgscope_bench (not captured)"
    "$PG15_BIN/pgbench" -i -q -s "$SCALE" -h "$PG15_SOCKDIR" -p "$PG15_PORT" -U trust_user pgscope_bench >/dev/null 2>&1
fi

rm -f "$OUT"
err=$(mktemp)
tcpdump -i lo -s 0 -B 262144 -U -Z root -c "$PACKETS" -w "$OUT" "tcp port $PG15_PORT" 2>"$err" &
tpid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$err" && break; sleep 0.05; done
sleep 0.3

log "recording $PACKETS packets of pgbench -M $MODE -c 4 -j 2 (max ${MAX_SECONDS}s)"
start=$(date +%s)
"$PG15_BIN/pgbench" -n -M "$MODE" -c 4 -j 2 -T "$MAX_SECONDS" -P 10 \
    -h 127.0.0.1 -p "$PG15_PORT" -U trust_user pgscope_bench >"$HERE/data/pgbench.log" 2>&1 &
bpid=$!

# tcpdump exits by itself after PACKETS packets; stop pgbench then.
while kill -0 "$tpid" 2>/dev/null; do
    if ! kill -0 "$bpid" 2>/dev/null; then
        log "pgbench ended before $PACKETS packets; stopping tcpdump"
        sleep 1
        kill -INT "$tpid" 2>/dev/null || true
        break
    fi
    sleep 1
done
wait "$tpid" || true
kill -TERM "$bpid" 2>/dev/null || true   # background jobs ignore SIGINT in scripts
wait "$bpid" 2>/dev/null || true
log "took $(( $(date +%s) - start ))s"
grep -E "packets (captured|dropped)" "$err" >&2 || true
rm -f "$err"

n=$(capinfos -M -c "$OUT" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
log "$OUT: $n packets, $(du -h "$OUT" | cut -f1)"
if [ "$n" -lt "$PACKETS" ]; then
    log "WARNING: only $n packets (< $PACKETS)"
    exit 1
fi
