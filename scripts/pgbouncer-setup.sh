#!/usr/bin/env bash
# pgbouncer-setup.sh — install Debian's pgbouncer (idempotent) and run one instance
# in front of the local PostgreSQL 15 (scripts/pg-setup.sh), for the pooler tests.
#
#   scripts/pgbouncer-setup.sh install
#   scripts/pgbouncer-setup.sh start DIR PORT MODE ADD_HOST [POOL_SIZE]
#       writes DIR/pgbouncer.ini and starts pgbouncer as the postgres user, listening
#       on 127.0.0.1:PORT, pool_mode MODE (session|transaction),
#       application_name_add_host ADD_HOST (0|1), POOL_SIZE server connections
#       (default 2) to database pgscope as trust_user; prints its pid
#   scripts/pgbouncer-setup.sh stop DIR
#
# Must run as root (installs the package; pgbouncer refuses to run as root).
set -euo pipefail

die() { echo "[pgbouncer-setup] ERROR: $*" >&2; exit 1; }
BIN=/usr/sbin/pgbouncer
RUN_AS=${PGSCOPE_OS_USER:-postgres}

install() {
    [ -x "$BIN" ] && return 0
    [ "$(id -u)" = 0 ] || die "must run as root to install pgbouncer"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run may hold the lock: wait for it rather than fail.
    apt-get -o DPkg::Lock::Timeout=600 install -y -q pgbouncer >/dev/null \
        || { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null;
             apt-get -o DPkg::Lock::Timeout=600 install -y -q pgbouncer >/dev/null; }
    # The package's own service (port 6432) is not used: tests run their own.
    if command -v service >/dev/null 2>&1; then service pgbouncer stop >/dev/null 2>&1 || true; fi
}

start() {
    local dir=$1 port=$2 mode=$3 add_host=$4 pool=${5:-2}
    install
    # shellcheck disable=SC1091
    . "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
pgscope = host=127.0.0.1 port=$PG15_PORT dbname=pgscope user=trust_user

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = $mode
default_pool_size = $pool
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
server_reset_query = DISCARD ALL
application_name_add_host = $add_host
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo '"trust_user" ""' >"$dir/userlist.txt"
    chown -R "$RUN_AS" "$dir"
    runuser -u "$RUN_AS" -- "$BIN" -d "$dir/pgbouncer.ini" >/dev/null
    for _ in $(seq 100); do
        [ -s "$dir/pgbouncer.pid" ] && break
        sleep 0.05
    done
    [ -s "$dir/pgbouncer.pid" ] || die "pgbouncer did not start: $(tail -5 "$dir/pgbouncer.log" 2>/dev/null)"
    cat "$dir/pgbouncer.pid"
}

stop() {
    local dir=$1 pid
    [ -s "$dir/pgbouncer.pid" ] || return 0
    pid=$(cat "$dir/pgbouncer.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
}

case "${1:-install}" in
    install) install ;;
    start) shift; [ $# -ge 4 ] || die "start DIR PORT MODE ADD_HOST [POOL_SIZE]"; start "$@" ;;
    stop) shift; [ $# -ge 1 ] || die "stop DIR"; stop "$1" ;;
    *) die "unknown command $1" ;;
esac
