#!/usr/bin/env bash
# run.sh — speed benchmark of pgscope against tshark and tcpdump (not run in CI).
#
#   bench/run.sh [FILE...]
#
# Default files: the mixes of `bench/make-capture.sh mixes` (bench/data/mix-*.pcap,
# in recording order, then bench/data/mixes.pcap, all of them) when present, else
# bench/data/pgbench.pcap (`bench/make-capture.sh`).
#
# Environment:
#   BENCH_PORT=5432           server port (tshark decode-as)
#   BENCH_RUNS=3              runs per tool and file (best taken); tshark runs once
#   PGSCOPE_ARGS="-o json"    extra pgscope arguments after "-r FILE"
#   BUILD=pgo                 pgo: scripts/build-pgo.sh, the build the README installs
#                             (target/pgo/release/pgscope); plain: cargo build --release
#                             (target/release/pgscope)
#   SKIP_BUILD=1              do not build
#   SKIP_TSHARK=1             skip the (slow) tshark runs
#   PGSCOPE=path              the pgscope binary (default: the one BUILD makes)
#   BENCH_STAGE=/dev/shm      where each file is copied before it is measured (a tmpfs:
#                             the page cache of this VM loses pages of a file within
#                             seconds, so disk reads came into some runs and not others);
#                             BENCH_STAGE= measures the file where it is
#
# For each file, in the same run, measures wall time (clock, ms) and peak RSS
# (/usr/bin/time -f '%M') of
#   target/release/pgscope -r F -o json > /dev/null    (default records)
#   tcpdump -r F -w /dev/null
#   tshark -r F -d tcp.port==5432,pgsql -Y pgsql > /dev/null
# and prints one line per file: seconds, packets/s, the throughput ratios of
# pgscope to tcpdump and to tshark, and peak RSS; then the same ratios in CPU time.
# pgscope's and tcpdump's runs alternate, so a slow stretch of the machine falls on
# both rather than on one tool's whole series.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PORT=${BENCH_PORT:-5432}
RUNS=${BENCH_RUNS:-3}
STAGE=${BENCH_STAGE-/dev/shm}
BUILD=${BUILD:-pgo}
case $BUILD in
pgo) PGSCOPE=${PGSCOPE:-$ROOT/target/pgo/release/pgscope} ;;
plain) PGSCOPE=${PGSCOPE:-$ROOT/target/release/pgscope} ;;
*) echo "[bench] ERROR: BUILD=$BUILD: pgo or plain" >&2; exit 2 ;;
esac
read -r -a PGSCOPE_EXTRA <<<"${PGSCOPE_ARGS:--o json}"

die() { echo "[bench] ERROR: $*" >&2; exit 1; }

FILES=("$@")
if [ ${#FILES[@]} -eq 0 ]; then
    if [ -f "$HERE/data/mixes.pcap" ]; then
        for mix in simple extended prepared tpcb copy connect; do
            [ -f "$HERE/data/mix-$mix.pcap" ] && FILES+=("$HERE/data/mix-$mix.pcap")
        done
        FILES+=("$HERE/data/mixes.pcap")
    else
        FILES=("$HERE/data/pgbench.pcap")
    fi
fi
for f in "${FILES[@]}"; do
    [ -f "$f" ] || die "no capture $f (run bench/make-capture.sh first)"
done

need=()
[ -x /usr/bin/time ] || need+=(time)
[ -n "${SKIP_TSHARK:-}" ] || command -v tshark >/dev/null || need+=(tshark)
command -v capinfos >/dev/null || need+=(tshark)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    if [ "$BUILD" = pgo ]; then
        echo "[bench] scripts/build-pgo.sh" >&2
        "$ROOT/scripts/build-pgo.sh" || echo "[bench] WARNING: the PGO build failed" >&2
    else
        echo "[bench] cargo build --release" >&2
        (cd "$ROOT" && cargo build --release --quiet) || echo "[bench] WARNING: cargo build failed" >&2
    fi
fi
[ -x "$PGSCOPE" ] || die "$PGSCOPE not found"

tmp=$(mktemp)
staged=""
if [ -n "$STAGE" ]; then
    staged=$(mktemp -d "$STAGE/pgscope-bench.XXXXXX")
fi
trap 'rm -f "$tmp" "$tmp.err"; [ -z "$staged" ] || rm -rf "$staged"' EXIT

# run cmd... -> prints "ELAPSED RSS_KIB CPU" of one run: wall time, peak RSS and CPU
# time (user + system, 10 ms steps)
run() {
    local t0 t1 m u sy
    # Wall time to the millisecond from the clock (time's %e has 10 ms steps, as
    # coarse as the differences measured here); peak RSS from time's %M.
    t0=$(date +%s.%N)
    if ! /usr/bin/time -f '%M %U %S' -o "$tmp" "$@" >/dev/null 2>"$tmp.err"; then
        echo "[bench] command failed: $*" >&2
        tail -5 "$tmp.err" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    read -r m u sy <"$tmp"
    echo "$(printf '%.3f' "$(echo "$t1 - $t0" | bc)") $m $(echo "$u + $sy" | bc)"
}

# best BEST RUN -> the better of two "ELAPSED RSS_KIB CPU": the wall time and peak RSS
# of the faster run, the least CPU time of both
best() {
    local be bm bc e m c
    read -r be bm bc <<<"$1"
    read -r e m c <<<"$2"
    if [ -z "$be" ]; then echo "$2"; return; fi
    if [ "$(echo "$e < $be" | bc)" = 1 ]; then be=$e; bm=$m; fi
    if [ "$(echo "$c < $bc" | bc)" = 1 ]; then bc=$c; fi
    echo "$be $bm $bc"
}

# ratio TA TB -> throughput(a)/throughput(b) = time(b)/time(a)
ratio() {
    if [ -z "$1" ] || [ -z "$2" ] || [ "$(echo "$2 == 0" | bc)" = 1 ]; then echo "n/a"; return; fi
    local ta=$1
    if [ "$(echo "$ta == 0" | bc)" = 1 ]; then ta=0.001; fi
    printf '%.2fx' "$(echo "scale=4; $2 / $ta" | bc)"
}
pps() { # packets seconds
    if [ "$(echo "$2 == 0" | bc)" = 1 ]; then echo ">$1"; else echo "scale=0; $1 / $2" | bc; fi
}
mib() { echo "scale=1; $1 / 1024" | bc; }

echo "pgscope: $PGSCOPE -r F ${PGSCOPE_EXTRA[*]} > /dev/null; best of $RUNS (tshark: 1 run); files read from ${STAGE:-where they are}"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# Wall-time columns first; then CPU seconds (user + system), which a machine busy
# with other work disturbs less, and the ratios of CPU time.
fmt='%-10s %9s %6s | %8s %10s %8s | %8s %8s | %9s %9s | %8s %8s | %7s %7s %7s | %8s %8s\n'
# shellcheck disable=SC2059
printf "$fmt" file packets MiB "pgscope" "packets/s" "RSS MiB" tcpdump tshark "/tcpdump" "/tshark" "tcpd RSS" "tsh RSS" \
    "cpu pgs" "cpu tcpd" "cpu tsh" "cpu/tcpd" "cpu/tsh"
for f in "${FILES[@]}"; do
    name=$(basename "$f" .pcap)
    name=${name#mix-}
    packets=$(capinfos -M -c "$f" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
    size=$(($(stat -c %s "$f") / 1024 / 1024))
    echo "[bench] $name..." >&2
    src=$f
    if [ -n "$STAGE" ]; then
        src=$staged/$(basename "$f")
        cp "$f" "$src"
    fi
    bp="" bd=""
    for ((i = 0; i < RUNS; i++)); do
        bp=$(best "$bp" "$(run "$PGSCOPE" -r "$src" "${PGSCOPE_EXTRA[@]}")")
        bd=$(best "$bd" "$(run tcpdump -r "$src" -w /dev/null)")
    done
    read -r tp mp cp <<<"$bp"
    read -r td md cd <<<"$bd"
    ts="" ms="" cs=""
    if [ -z "${SKIP_TSHARK:-}" ]; then
        read -r ts ms cs <<<"$(run tshark -r "$src" -d "tcp.port==$PORT,pgsql" -Y pgsql)"
    fi
    [ "$src" = "$f" ] || rm -f "$src"
    # shellcheck disable=SC2059
    printf "$fmt" "$name" "$packets" "$size" "$tp" "$(pps "$packets" "$tp")" "$(mib "$mp")" \
        "$td" "${ts:-skipped}" "$(ratio "$tp" "$td")" "$(ratio "$tp" "$ts")" \
        "$(mib "$md")" "$([ -n "$ms" ] && mib "$ms" || echo -)" \
        "$cp" "$cd" "${cs:--}" "$(ratio "$cp" "$cd")" "$(ratio "$cp" "$cs")"
done
