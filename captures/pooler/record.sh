#!/usr/bin/env bash
# Records both legs of pgbouncer on loopback: psql clients with distinct application
# names and pgbench runs, all through Debian's pgbouncer in front of PostgreSQL 15.
# Every statement the clients send that is not BEGIN/COMMIT/SET returns
# pg_backend_pid(), so the client leg's DataRow says which server backend ran it (the
# ground truth of tests/pooler.rs). Most also return a number unique to them; the last
# pgbench run (application pgbench-dup) repeats the same three statements.
#
#   captures/pooler/record.sh OUT.pcap PORT MODE ADD_HOST [PGBENCH_TX] [PSQL_ROUNDS]
#
# Exit status 3: tcpdump lost packets (a loaded machine); record again.
# MODE: transaction | session; ADD_HOST: pgbouncer's application_name_add_host (0|1).
# pgbouncer has 2 server connections. Needs root (tcpdump, runs pgbouncer as postgres)
# and scripts/pg-setup.sh's servers.
set -euo pipefail
out=$1 port=$2 mode=$3 add_host=$4 tx=${5:-60} rounds=${6:-6}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PGSSLMODE=disable
dir=$(mktemp -d /tmp/pgscope-pooler.XXXXXX)
tpid=
cleanup() {
    [ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
    "$root/scripts/pgbouncer-setup.sh" stop "$dir"
    rm -rf "$dir"
}
trap cleanup EXIT
"$root/scripts/pgbouncer-setup.sh" start "$dir" "$port" "$mode" "$add_host" 2 >/dev/null
chmod 755 "$dir"

# Not --immediate-mode: then every ring block is handed over almost empty and a
# starved tcpdump runs out of blocks long before the 64 MB are used.
tcpdump -i lo -B 65536 -U -s 0 -w "$out" "tcp port $PG15_PORT or tcp port $port" 2>"$dir/tcpdump.err" &
tpid=$!
for _ in $(seq 100); do grep -q listening "$dir/tcpdump.err" 2>/dev/null && break; sleep 0.05; done
sleep 0.2

conn=(-h 127.0.0.1 -p "$port" -U trust_user -d pgscope)
# psql clients, concurrently: plain statements, transactions, and a change of
# application_name half way.
for c in 1 2 3 4; do
    {
        for r in $(seq "$rounds"); do
            n=$((c * 1000000 + r * 10))
            echo "SELECT pg_backend_pid(), $((n + 1));"
            echo "BEGIN;"
            echo "SELECT pg_backend_pid(), $((n + 2));"
            echo "SELECT pg_backend_pid(), $((n + 3));"
            echo "COMMIT;"
            [ "$r" = $((rounds / 2)) ] && echo "SET application_name = 'client-$c-renamed';"
        done
    } >"$dir/client-$c.sql"
    PGAPPNAME=client-$c "$PSQL" "${conn[@]}" -X -q -v ON_ERROR_STOP=1 -f "$dir/client-$c.sql" >/dev/null &
done
wait %2 %3 %4 %5

printf '\\set n random(1, 2000000000)\nSELECT pg_backend_pid(), :n;\n' >"$dir/bench.sql"
bench() { "$PG15_BIN/pgbench" -n "${conn[@]}" -f "$dir/bench.sql" "$@" >>"$dir/pgbench.out" 2>"$dir/pgbench.err" || { cat "$dir/pgbench.err" >&2; exit 1; }; }
bench -c 8 -j 2 -t "$tx" -M simple
bench -c 4 -j 2 -t $((tx / 2)) -M extended
# The same few statements from several clients at once: text, parameters and time
# alone often cannot tell them apart (ambiguous, never a wrong link).
printf '\\set n random(1, 3)\nSELECT pg_backend_pid(), :n;\n' >"$dir/bench.sql"
PGAPPNAME=pgbench-dup bench -c 4 -j 2 -t $((tx / 2)) -M simple
# Everything is captured once tcpdump has written a last statement sent straight to
# the server after the workload (a busy machine may keep tcpdump from reading the
# ring for a while: wait for the marker, not for a fixed time).
marker="pgscope-record-end-$$"
"$PSQL" -h 127.0.0.1 -p "$PG15_PORT" -U trust_user -d pgscope -X -q -c "SELECT '$marker'" >/dev/null
for _ in $(seq 600); do grep -aq "$marker" "$out" && break; sleep 0.1; done
grep -aq "$marker" "$out" || { echo "tcpdump did not write the end marker within 60 s" >&2; exit 1; }
# Other programs may talk to the same server meanwhile: keep pgbouncer's own server
# connections (still open: server_idle_timeout is 10 minutes) and its clients only.
pid=$(cat "$dir/pgbouncer.pid")
legs=$(ss -tnpH state established "( dport = :$PG15_PORT )" | grep "pid=$pid," |
    awk '{split($3, a, ":"); print "tcp port " a[length(a)]}' | paste -sd '|' | sed 's/|/ or /g')
[ -n "$legs" ] || { echo "no pgbouncer server connection found" >&2; exit 1; }
kill "$tpid"; wait "$tpid" 2>/dev/null || true
tpid=
# A full ring is counted as dropped by the kernel: the truth would be incomplete.
# (Packets after the marker may still be unread in the ring when tcpdump is stopped:
# they are not the workload's, so "received by filter" cannot be compared.)
dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$dir/tcpdump.err")
if [ "${dropped:-1}" != 0 ]; then
    echo "tcpdump lost packets (${dropped:-?} dropped by kernel): record again" >&2
    exit 3
fi
tcpdump -Z root -r "$out" -w "$dir/kept.pcap" "tcp port $port or $legs" 2>/dev/null
mv "$dir/kept.pcap" "$out"
grep -E "dropped by kernel" "$dir/tcpdump.err" >&2 || true
[ -z "${POOLER_RECORD_VERBOSE:-}" ] || cat "$dir/pgbench.out" "$dir/tcpdump.err" >&2
