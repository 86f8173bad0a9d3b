#!/usr/bin/env bash
# live.sh — the largest loopback pgbench rate captured live without a libpcap drop,
# for pgscope (JSON records to a file) and for tcpdump -B 32768 -w /dev/null, side by
# side; for pgscope also whether every pgbench transaction is a query record.
#
#   bench/live.sh [SECONDS]     default 20 s per run. As root; not part of CI.
#
# Load: pgbench -S -c 8 -j 2 (select-only, simple protocol) against PG15 on
# 127.0.0.1, first unthrottled (the highest rate the machine reaches), then, while
# a tool drops, throttled (-R) by bisection between 0 and that rate. Each run:
# start the tool, wait for it to listen, run pgbench, stop the tool with SIGINT.
# pgbench connects with its own application_name, so the count of query records
# ignores anybody else's traffic on the port (which still loads the capture).
# A run is clean when libpcap reports 0 drops (pgscope: no capture_drops record;
# tcpdump: "0 packets dropped by kernel"). Prints one line per run and a summary.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SECS=${1:-20}
STEPS=${LIVE_STEPS:-4}
PGSCOPE=${PGSCOPE:-$ROOT/target/release/pgscope}
APP=pgscope_live_$$
OUT=${LIVE_DIR:-$(mktemp -d)}
mkdir -p "$OUT"

log() { echo "[live] $*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root (live capture)"; exit 1; }
[ -x "$PGSCOPE" ] || (cd "$ROOT" && cargo build --release >/dev/null)
"$ROOT/scripts/pg-setup.sh" start >/dev/null
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PGSSLMODE=disable PGAPPNAME=$APP
unset PGMAXPROTOCOLVERSION PGOPTIONS || true
PSQL="$PG15_BIN/psql -X -q -h $PG15_SOCKDIR -p $PG15_PORT"
if ! $PSQL -U postgres -d postgres -Atc "select 1 from pg_database where datname='pgscope_bench'" | grep -q 1; then
    $PSQL -U postgres -d postgres -c "create database pgscope_bench owner trust_user"
fi
if ! $PSQL -U trust_user -d pgscope_bench -Atc "select count(*) from pgbench_branches" >/dev/null 2>&1; then
    "$PG15_BIN/pgbench" -i -q -s 4 -h "$PG15_SOCKDIR" -p "$PG15_PORT" -U trust_user pgscope_bench >/dev/null 2>&1
fi

# run TOOL RATE: one run (RATE 0: unthrottled). Sets TPS, TXNS, DROPS, RECORDS.
run() {
    local tool=$1 rate=$2 err=$OUT/$1.err json=$OUT/$1.json pid
    case $tool in
    pgscope) "$PGSCOPE" -i lo -p "$PG15_PORT" -o json >"$json" 2>"$err" & ;;
    tcpdump) tcpdump -i lo -B 32768 -w /dev/null "tcp port $PG15_PORT" 2>"$err" & ;;
    esac
    pid=$!
    sleep 2
    local throttle=()
    [ "$rate" = 0 ] || throttle=(-R "$rate")
    "$PG15_BIN/pgbench" -n -S -c 8 -j 2 -T "$SECS" "${throttle[@]}" \
        -h 127.0.0.1 -p "$PG15_PORT" -U trust_user pgscope_bench >"$OUT/pgbench.log" 2>&1
    sleep 1
    kill -INT "$pid"
    wait "$pid" || true
    TXNS=$(awk -F': ' '/actually processed/ {print $2}' "$OUT/pgbench.log" | cut -d/ -f1)
    TPS=$(awk '/^tps = / {printf "%d", $3}' "$OUT/pgbench.log")
    if [ "$tool" = pgscope ]; then
        # libpcap's final total is in the last capture_drops record.
        DROPS=$(grep '"capture_drops"' "$json" | tail -1 | grep -o '([0-9]* in all)' | tr -dc 0-9 || true)
        RECORDS=$(grep '"event.dataset":"pgwire.query"' "$json" | grep "\"service.name\":\"$APP\"" |
            grep -c 'pgbench_accounts WHERE aid' || true)
    else
        DROPS=$(awk '/packets dropped by kernel/ {print $1}' "$err")
        RECORDS=-
    fi
    DROPS=${DROPS:-0}
    printf '%-8s rate %-7s tps %-7s transactions %-9s drops %-9s records %s\n' \
        "$tool" "${rate/#0/max}" "$TPS" "$TXNS" "$DROPS" "$RECORDS"
}

# clean TOOL: the last run dropped nothing (and, for pgscope, lost no transaction).
clean() { [ "$DROPS" = 0 ] && { [ "$1" = tcpdump ] || [ "$RECORDS" = "$TXNS" ]; }; }

for tool in pgscope tcpdump; do
    run "$tool" 0
    if clean "$tool"; then
        echo "RESULT $tool: no drop at the highest rate reached, $TPS tps ($TXNS transactions)"
        continue
    fi
    lo=0 hi=$TPS best=none
    for _ in $(seq 1 "$STEPS"); do
        mid=$(( (lo + hi) / 2 ))
        run "$tool" "$mid"
        if clean "$tool"; then lo=$mid best="$TPS tps ($TXNS transactions)"; else hi=$mid; fi
    done
    echo "RESULT $tool: drops at the highest rate; largest clean rate found: $best"
done
log "outputs in $OUT"
