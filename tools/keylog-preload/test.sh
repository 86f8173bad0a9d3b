#!/usr/bin/env bash
# test.sh — pgscope_keylog.so end to end, as root: builds it, starts a throwaway
# PostgreSQL 15 server with it preloaded (127.0.0.1:$PORT, TLS on), captures a
# session of Debian's psql 15 (its libpq cannot write a key log) with tcpdump, and
# prints pgscope's JSON records of the capture decrypted with the server's key log.
# Used by tests/tls.rs; prints the records on stdout, progress on stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PGSCOPE=${1:?usage: test.sh PATH-TO-PGSCOPE}
PORT=${PGSCOPE_KEYLOG_TEST_PORT:-5439}
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
W=$(mktemp -d /tmp/pgscope-keylog.XXXXXX)
chmod 755 "$W"
TCPDUMP=
cleanup() {
    [ -n "$TCPDUMP" ] && kill -INT "$TCPDUMP" 2>/dev/null && wait "$TCPDUMP" 2>/dev/null
    [ -f "$W/data/postmaster.pid" ] && (cd / && runuser -u postgres -- "$PG15_BIN/pg_ctl" -D "$W/data" -m immediate -w stop >/dev/null 2>&1)
    rm -rf "$W"
}
trap cleanup EXIT

cc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$W/pgscope_keylog.so" "$HERE/pgscope_keylog.c" -ldl
as_pg() { (cd / && runuser -u postgres -- "$@"); }
install -d -o postgres -m 700 "$W/data" && install -d -o postgres -m 755 "$W/keys"
as_pg "$PG15_BIN/initdb" -D "$W/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
install -o postgres -m 600 "$PG15_DATA/server.key" "$W/data/server.key"
install -o postgres -m 644 "$PG15_DATA/server.crt" "$W/data/server.crt"
cat >>"$W/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$W/data'
ssl = on
CONF
echo "[keylog-test] server on $PORT with the library preloaded" >&2
as_pg env LD_PRELOAD="$W/pgscope_keylog.so" PGSCOPE_KEYLOG="$W/keys/server.log" \
    "$PG15_BIN/pg_ctl" -D "$W/data" -l "$W/data/server.log" -w start >/dev/null
tcpdump -i lo -s 0 -U --immediate-mode -w "$W/cap.pcap" "tcp port $PORT" 2>/dev/null &
TCPDUMP=$!
sleep 1
PGSSLMODE=require "$PG15_BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -c "SELECT 'through the server key log' AS how" >/dev/null
sleep 0.5
kill -INT "$TCPDUMP"; wait "$TCPDUMP" 2>/dev/null || true; TCPDUMP=
echo "[keylog-test] key log: $(stat -c '%a %U' "$W/keys/server.log"), $(wc -l <"$W/keys/server.log") lines" >&2
[ "$(stat -c %a "$W/keys/server.log")" = 600 ]
"$PGSCOPE" -r "$W/cap.pcap" -p "$PORT" --tls-keylog "$W/keys/server.log" -o json --records query,session,anomaly
