#!/usr/bin/env bash
# record.sh — (re)record the TLS captures and their key logs in captures/tls/ from
# the real servers on loopback (scripts/pg-setup.sh: PG15 on 5432, PG18 on 5433).
# Run as root (tcpdump). Each scenario writes NAME.pcap and NAME.keys; the psql
# ones also NAME.plain.pcap, the same statements without TLS, to compare with.
#
#   captures/tls/record.sh            every scenario
#   captures/tls/record.sh NAME...    only these
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
"$ROOT/scripts/pg-setup.sh" start >/dev/null
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PGCONNECT_TIMEOUT=10 PGAPPNAME=pgscope-record
unset PGSSLMODE PGPASSWORD PGUSER PGDATABASE PGHOST PGPORT PGMAXPROTOCOLVERSION || true
TCPDUMP=
cleanup() { [ -n "$TCPDUMP" ] && kill -INT "$TCPDUMP" 2>/dev/null && wait "$TCPDUMP" 2>/dev/null; true; }
trap cleanup EXIT

start() { # file
    rm -f "$1"
    tcpdump -i lo -s 0 -U --immediate-mode -w "$1" 'tcp port 5432 or tcp port 5433' 2>/dev/null &
    TCPDUMP=$!
    sleep 1
}
stop() { sleep 0.5; kill -INT "$TCPDUMP"; wait "$TCPDUMP" 2>/dev/null || true; TCPDUMP=; }

# The statements every psql scenario runs: rows, a command tag, an error.
STATEMENTS=(-c "SELECT 1 AS one, 'tls' AS how" -c "SELECT n FROM generate_series(1,3) n"
            -c "CREATE TEMP TABLE t(x int)" -c "INSERT INTO t VALUES (1),(2)" -c "SELECT 1/0")

psql18() { # name conninfo [env...]: the TLS run with a key log, then the plain one
    local name=$1 conn=$2; shift 2
    rm -f "$HERE/$name.keys"
    start "$HERE/$name.pcap"
    env "$@" LD_LIBRARY_PATH="$PG18_LIB" "$PSQL" -X -q \
        "$conn sslmode=require sslkeylogfile=$HERE/$name.keys" "${STATEMENTS[@]}" >/dev/null 2>&1 || true
    stop
    start "$HERE/$name.plain.pcap"
    env "$@" LD_LIBRARY_PATH="$PG18_LIB" "$PSQL" -X -q "${conn/sslnegotiation=direct/} sslmode=disable" "${STATEMENTS[@]}" >/dev/null 2>&1 || true
    stop
}

sclient() { # name port pgmsgs-args -- s_client options
    local name=$1 port=$2; shift 2
    local args=()
    while [ "$1" != -- ]; do args+=("$1"); shift; done; shift
    rm -f "$HERE/$name.keys"
    start "$HERE/$name.pcap"
    python3 "$HERE/pgmsgs.py" "${args[@]}" |
        openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:"$port" -starttls postgres \
            -keylogfile "$HERE/$name.keys" "$@" >/dev/null 2>&1 || true
    stop
}

run() {
    case $1 in
    tls13-pg15-sslrequest) psql18 "$1" "host=127.0.0.1 port=$PG15_PORT user=trust_user dbname=pgscope" ;;
    tls12-pg15-sslrequest) psql18 "$1" "host=127.0.0.1 port=$PG15_PORT user=trust_user dbname=pgscope ssl_max_protocol_version=TLSv1.2" ;;
    tls13-pg18-sslrequest-scram32) psql18 "$1" "host=127.0.0.1 port=$PG18_PORT user=scram_user dbname=pgscope" \
        PGPASSWORD=scram-secret-pw PGMAXPROTOCOLVERSION=3.2 ;;
    tls13-pg18-direct-scram32) psql18 "$1" "host=127.0.0.1 port=$PG18_PORT user=scram_user dbname=pgscope sslnegotiation=direct" \
        PGPASSWORD=scram-secret-pw PGMAXPROTOCOLVERSION=3.2 ;;
    tls12-pg18-direct) psql18 "$1" "host=127.0.0.1 port=$PG18_PORT user=trust_user dbname=pgscope sslnegotiation=direct ssl_max_protocol_version=TLSv1.2" ;;
    tls13-aes128) sclient "$1" "$PG15_PORT" "SELECT 'aes128'" -- -ciphersuites TLS_AES_128_GCM_SHA256 ;;
    tls13-aes256) sclient "$1" "$PG15_PORT" "SELECT 'aes256'" -- -ciphersuites TLS_AES_256_GCM_SHA384 ;;
    tls13-chacha20) sclient "$1" "$PG15_PORT" "SELECT 'chacha20'" -- -ciphersuites TLS_CHACHA20_POLY1305_SHA256 ;;
    tls12-chacha20) sclient "$1" "$PG15_PORT" "SELECT 'chacha20'" -- -tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305 ;;
    tls12-aes128) sclient "$1" "$PG15_PORT" "SELECT 'aes128'" -- -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 ;;
    tls13-keyupdate) sclient "$1" "$PG15_PORT" "SELECT 'before'" k "SELECT 'after k'" K "SELECT 'after K'" -- ;;
    tls12-cbc) sclient "$1" "$PG15_PORT" "SELECT 'cbc'" -- -tls1_2 -cipher ECDHE-RSA-AES128-SHA ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
    echo "[record] $1: $(tcpdump -r "$HERE/$1.pcap" 2>/dev/null | wc -l) packets, $(wc -l <"$HERE/$1.keys") key lines"
}

ALL=(tls13-pg15-sslrequest tls12-pg15-sslrequest tls13-pg18-sslrequest-scram32 tls13-pg18-direct-scram32
     tls12-pg18-direct tls13-aes128 tls13-aes256 tls13-chacha20 tls12-chacha20 tls12-aes128 tls13-keyupdate tls12-cbc)
for s in "${@:-${ALL[@]}}"; do run "$s"; done
