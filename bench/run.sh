#!/usr/bin/env bash
# run.sh — speed benchmark of pgscope against tshark and tcpdump (not run in CI).
#
#   bench/run.sh [FILE]       default bench/data/pgbench.pcap (bench/make-capture.sh)
#
# Environment:
#   BENCH_PORT=5432           server port (tshark decode-as)
#   BENCH_RUNS=3              runs per tool (best taken); tshark runs once
#   PGSCOPE_ARGS="-o json"    extra pgscope arguments after "-r FILE"
#   SKIP_BUILD=1              do not run cargo build --release
#   SKIP_TSHARK=1             skip the (slow) tshark run
#
# Measures wall time (clock, ms) and peak RSS (/usr/bin/time -f '%M') of
#   target/release/pgscope -r F -o json > /dev/null
#   tshark -r F -d tcp.port==5432,pgsql -Y pgsql > /dev/null
#   tcpdump -r F -w /dev/null
# and prints packets/s for each, the throughput ratios and pgscope's peak RSS.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
F=${1:-$HERE/data/pgbench.pcap}
PORT=${BENCH_PORT:-5432}
RUNS=${BENCH_RUNS:-3}
PGSCOPE=$ROOT/target/release/pgscope
read -r -a PGSCOPE_EXTRA <<<"${PGSCOPE_ARGS:--o json}"

die() { echo "[bench] ERROR: $*" >&2; exit 1; }
[ -f "$F" ] || die "no capture $F (run bench/make-capture.sh first)"

need=()
[ -x /usr/bin/time ] || need+=(time)
command -v tshark >/dev/null || need+=(tshark)
command -v capinfos >/dev/null || need+=(tshark)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "[bench] cargo build --release" >&2
    (cd "$ROOT" && cargo build --release --quiet) || echo "[bench] WARNING: cargo build failed" >&2
fi

PACKETS=$(capinfos -M -c "$F" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
SIZE=$(stat -c %s "$F")
echo "capture: $F"
echo "packets: $PACKETS   size: $((SIZE / 1024 / 1024)) MiB"
echo

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# best_of N cmd... -> prints "ELAPSED RSS_KIB" of the fastest run
best_of() {
    local n=$1; shift
    local best_e="" best_m="" e m i
    for ((i = 0; i < n; i++)); do
        # Wall time to the millisecond from the clock (time's %e has 10 ms steps,
        # as coarse as the differences measured here); peak RSS from time's %M.
        local t0 t1
        t0=$(date +%s.%N)
        if ! /usr/bin/time -f '%M' -o "$tmp" "$@" >/dev/null 2>"$tmp.err"; then
            echo "[bench] command failed: $*" >&2
            tail -5 "$tmp.err" >&2
            rm -f "$tmp.err"
            return 1
        fi
        t1=$(date +%s.%N)
        e=$(printf '%.3f' "$(echo "$t1 - $t0" | bc)")
        read -r m <"$tmp"
        if [ -z "$best_e" ] || [ "$(echo "$e < $best_e" | bc)" = 1 ]; then
            best_e=$e
            best_m=$m
        fi
    done
    rm -f "$tmp.err"
    echo "$best_e $best_m"
}

declare -A T M
run_tool() { # name runs cmd...
    local name=$1 n=$2; shift 2
    local r
    echo "[bench] $name (best of $n)..." >&2
    if r=$(best_of "$n" "$@"); then
        read -r T[$name] M[$name] <<<"$r"
    fi
}

if [ -x "$PGSCOPE" ]; then
    run_tool pgscope "$RUNS" "$PGSCOPE" -r "$F" "${PGSCOPE_EXTRA[@]}"
else
    echo "[bench] $PGSCOPE not found, skipping pgscope" >&2
fi
run_tool tcpdump "$RUNS" tcpdump -r "$F" -w /dev/null
if [ -z "${SKIP_TSHARK:-}" ]; then
    run_tool tshark 1 tshark -r "$F" -d "tcp.port==$PORT,pgsql" -Y pgsql
fi

pps() { echo "scale=0; $PACKETS / $1" | bc 2>/dev/null || echo "-"; }
fmt_rate() { # t
    if [ "$(echo "$1 == 0" | bc)" = 1 ]; then echo ">$PACKETS"; else pps "$1"; fi
}

printf '%-10s %10s %14s %12s\n' tool "seconds" "packets/s" "peak RSS MiB"
for t in pgscope tshark tcpdump; do
    [ -n "${T[$t]:-}" ] || continue
    printf '%-10s %10s %14s %12s\n' "$t" "${T[$t]}" "$(fmt_rate "${T[$t]}")" \
        "$(echo "scale=1; ${M[$t]} / 1024" | bc)"
done
echo
ratio() { # a b -> throughput(a)/throughput(b) = time(b)/time(a)
    local ta=${T[$1]:-} tb=${T[$2]:-}
    if [ -z "$ta" ] || [ -z "$tb" ]; then printf "n/a "; return; fi
    if [ "$(echo "$ta == 0" | bc)" = 1 ]; then ta=0.01; fi
    printf '%.2f' "$(echo "scale=4; $tb / $ta" | bc)"
}
echo "throughput ratio pgscope/tshark:  $(ratio pgscope tshark)x"
echo "throughput ratio pgscope/tcpdump: $(ratio pgscope tcpdump)x"
if [ -n "${M[pgscope]:-}" ]; then
    echo "pgscope peak RSS: $(echo "scale=1; ${M[pgscope]} / 1024" | bc) MiB"
fi
