#!/usr/bin/env bash
# record.sh — (re)record pgscope's test captures from real PostgreSQL servers on
# loopback with tcpdump.  Must run as root (installs packages, runs tcpdump).
#
#   captures/record.sh                 record every scenario
#   captures/record.sh NAME...         record only these (e.g. simple-queries cancel-32)
#   captures/record.sh --list          list scenario names
#
# Servers come from scripts/pg-setup.sh (PG15 on 5432, PG18 on 5433). Each
# scenario writes captures/NAME.pcap. Afterwards every pcap is checked with
# tshark (see verify at the end); the summary is printed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${PGSCOPE_CAPTURE_DIR:-$HERE}
WORK=$(mktemp -d /tmp/pgscope-rec.XXXXXX)
TCPDUMP_PID=
BB_DATA=   # data dir of replication-basebackup's throwaway cluster, once started

log() { echo "[record] $*" >&2; }
die() { echo "[record] ERROR: $*" >&2; exit 1; }

cleanup() {
    if [ -n "$TCPDUMP_PID" ] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
        kill -INT "$TCPDUMP_PID" 2>/dev/null || true
        wait "$TCPDUMP_PID" 2>/dev/null || true
    fi
    if [ -n "$BB_DATA" ] && [ -f "$BB_DATA/postmaster.pid" ]; then
        (cd / && runuser -u postgres -- "$PG15_BIN/pg_ctl" -D "$BB_DATA" -m immediate -w stop >/dev/null 2>&1) || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

ALL_SCENARIOS=(
    pg18-proto32 pg15-proto32-negotiate pq-unknown-option
    simple-queries pgbench-extended pgbench-prepared pipeline-error copy
    listen-notify large-result
    auth-trust auth-scram auth-md5 auth-cleartext auth-failures
    tls-sslrequest tls-direct gssenc-refused
    cancel-30 cancel-32 replication replication-basebackup ipv6-simple midstream
    trust-psql-15 trust-psql-18 trust-pgbench-simple trust-pgbench-extended trust-pgbench-prepared
    trust-driver-15 trust-driver-18
    oversize-statements rollback-batches long-pipeline copy-binary-appname
)

if [ "${1:-}" = "--list" ]; then printf '%s\n' "${ALL_SCENARIOS[@]}"; exit 0; fi

"$ROOT/scripts/pg-setup.sh" start >/dev/null
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"

export PGSSLMODE=disable PGCONNECT_TIMEOUT=10 PGAPPNAME=pgscope-record
unset PGPASSWORD PGUSER PGDATABASE PGHOST PGPORT PGMAXPROTOCOLVERSION PGMINPROTOCOLVERSION PGOPTIONS || true
H4=127.0.0.1

psql15() { "$PG15_BIN/psql" -X -q "$@"; }                          # system libpq (15, protocol 3.0)
psql18() { LD_LIBRARY_PATH="$PG18_LIB" "$PG15_BIN/psql" -X -q "$@"; } # libpq 18 from the npm package
admin15() { PGOPTIONS="-c client_min_messages=warning" psql15 -h "$PG15_SOCKDIR" -p "$PG15_PORT" -U postgres -d pgscope -v ON_ERROR_STOP=1 "$@" >/dev/null; }

# ------------------------------------------------------------ capture helpers
cap_start() { # name filter
    local name=$1 filter=$2
    rm -f "$OUT/$name.pcap"
    : >"$WORK/tcpdump.err"
    tcpdump -i lo -s 0 -B 65536 -U --immediate-mode -Z root -w "$OUT/$name.pcap" "$filter" 2>"$WORK/tcpdump.err" &
    TCPDUMP_PID=$!
    local i
    for i in $(seq 1 100); do
        grep -q "listening on" "$WORK/tcpdump.err" && break
        kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$WORK/tcpdump.err" >&2; die "tcpdump died"; }
        sleep 0.05
    done
    sleep 0.3
}

cap_stop() {
    sleep 0.5
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    grep -E "packets (captured|dropped)" "$WORK/tcpdump.err" | sed 's/^/    /' >&2 || true
}

port_filter() { echo "tcp port $1"; }

# ------------------------------------------------------------ scenarios
rec_pg18-proto32() {
    cap_start pg18-proto32 "$(port_filter "$PG18_PORT")"
    PGMAXPROTOCOLVERSION=3.2 psql18 -h $H4 -p "$PG18_PORT" -U trust_user -d pgscope \
        -c "select 1 as one"
    cap_stop
}

rec_pg15-proto32-negotiate() {
    cap_start pg15-proto32-negotiate "$(port_filter "$PG15_PORT")"
    PGMAXPROTOCOLVERSION=3.2 psql18 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "select 1 as one"
    cap_stop
}

rec_pq-unknown-option() {
    cap_start pq-unknown-option "$(port_filter "$PG15_PORT")"
    python3 "$HERE/pgwire.py" unknown-option "$PG15_PORT"
    cap_stop
}

rec_simple-queries() {
    admin15 -c "drop table if exists simple_t" -c "drop table if exists nonexistent_table"
    cap_start simple-queries "$(port_filter "$PG15_PORT")"
    # every -c is sent as ONE simple Query message (so "select 1; select 2;"
    # is a multi-statement query string)
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope -v ON_ERROR_STOP=0 \
        -c "select 1 as one, 'hello' as greeting" \
        -c "select 1; select 2;" \
        -c ";" \
        -c "create table simple_t (id int primary key, v text)" \
        -c "insert into simple_t select g, 'v' || g from generate_series(1, 5) g" \
        -c "update simple_t set v = 'updated' where id <= 2" \
        -c "delete from simple_t where id = 5" \
        -c "select id, v from simple_t order by id" \
        -c "drop table if exists nonexistent_table" \
        -c "select 1/0" \
        -c "selec 1" \
        -c "begin" \
        -c "insert into simple_t values (10, 'in tx')" \
        -c "commit" \
        -c "begin" \
        -c "insert into simple_t values (1, 'duplicate')" \
        -c "select 1" \
        -c "rollback" \
        -c "select count(*) from simple_t" \
        >/dev/null 2>"$WORK/psql.err" || true
    cap_stop
    sed 's/^/    psql: /' "$WORK/psql.err" >&2
}

pgbench_init_once() {
    if ! psql15 -h "$PG15_SOCKDIR" -p "$PG15_PORT" -U trust_user -d pgscope -Atc \
            "select 1 from pgbench_accounts limit 1" >/dev/null 2>&1; then
        log "pgbench -i -s 1 (not captured)"
        "$PG15_BIN/pgbench" -i -s 1 -q -h "$PG15_SOCKDIR" -p "$PG15_PORT" -U trust_user pgscope >/dev/null 2>&1
    fi
}

rec_pgbench-extended() {
    pgbench_init_once
    cap_start pgbench-extended "$(port_filter "$PG15_PORT")"
    "$PG15_BIN/pgbench" -n -M extended -t 20 -c 2 -h $H4 -p "$PG15_PORT" -U trust_user pgscope \
        >"$WORK/pgbench.out" 2>&1
    cap_stop
    grep -E "transactions actually processed" "$WORK/pgbench.out" | sed 's/^/    /' >&2
}

rec_pgbench-prepared() {
    pgbench_init_once
    cap_start pgbench-prepared "$(port_filter "$PG15_PORT")"
    "$PG15_BIN/pgbench" -n -M prepared -t 20 -c 2 -h $H4 -p "$PG15_PORT" -U trust_user pgscope \
        >"$WORK/pgbench.out" 2>&1
    cap_stop
    grep -E "transactions actually processed" "$WORK/pgbench.out" | sed 's/^/    /' >&2
}

rec_pipeline-error() {
    cap_start pipeline-error "$(port_filter "$PG15_PORT")"
    python3 "$HERE/pgwire.py" pipeline "$PG15_PORT"
    cap_stop
}

rec_copy() {
    admin15 -c "drop table if exists copy_t" -c "create table copy_t (id int, name text)" \
        -c "alter table copy_t owner to trust_user"
    cap_start copy "$(port_filter "$PG15_PORT")"
    printf '1\talpha\n2\tbeta\n3\tgamma\n4\tdelta\n5\tepsilon\n\\.\n' |
        psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
            -c "copy copy_t from stdin" \
            -c "copy copy_t to stdout" >/dev/null
    cap_stop
}

rec_listen-notify() {
    local fifo=$WORK/listen.fifo pid
    mkfifo "$fifo"
    cap_start listen-notify "$(port_filter "$PG15_PORT")"
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope <"$fifo" >"$WORK/listener.out" 2>&1 &
    pid=$!
    exec 3>"$fifo"
    echo "LISTEN pgscope_chan;" >&3
    sleep 1
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "NOTIFY pgscope_chan, 'hello from notifier'" \
        -c "select pg_notify('pgscope_chan', 'second payload')" >/dev/null
    sleep 1
    echo "select 'listener done';" >&3
    echo '\q' >&3
    exec 3>&-
    wait "$pid"
    cap_stop
    sed 's/^/    listener: /' "$WORK/listener.out" >&2
}

rec_large-result() {
    cap_start large-result "$(port_filter "$PG15_PORT")"
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "select repeat('x', 1000) from generate_series(1, 300)" \
        -c "select repeat('y', 3000000)" >/dev/null
    cap_stop
}

rec_auth-trust() {
    cap_start auth-trust "$(port_filter "$PG15_PORT")"
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope -c "select 1" >/dev/null
    cap_stop
}

rec_auth-scram() {
    cap_start auth-scram "$(port_filter "$PG15_PORT")"
    PGPASSWORD=scram-secret-pw psql15 -h $H4 -p "$PG15_PORT" -U scram_user -d pgscope -c "select 1" >/dev/null
    cap_stop
}

rec_auth-md5() {
    cap_start auth-md5 "$(port_filter "$PG15_PORT")"
    PGPASSWORD=md5-secret-pw psql15 -h $H4 -p "$PG15_PORT" -U md5_user -d pgscope -c "select 1" >/dev/null
    cap_stop
}

rec_auth-cleartext() {
    cap_start auth-cleartext "$(port_filter "$PG15_PORT")"
    PGPASSWORD=clear-secret-pw psql15 -h $H4 -p "$PG15_PORT" -U clear_user -d pgscope -c "select 1" >/dev/null
    cap_stop
}

rec_auth-failures() {
    cap_start auth-failures "$(port_filter "$PG15_PORT")"
    # 28P01: wrong password (SCRAM exchange completes, server rejects the proof)
    PGPASSWORD=wrong-password-pw psql15 -h $H4 -p "$PG15_PORT" -U scram_user -d pgscope -c "select 1" 2>&1 | sed 's/^/    /' >&2 || true
    sleep 0.2
    # 28000: role does not exist (pg_hba trust for unknown roles)
    psql15 -h $H4 -p "$PG15_PORT" -U no_such_role -d pgscope -c "select 1" 2>&1 | sed 's/^/    /' >&2 || true
    sleep 0.2
    # 3D000: database does not exist
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d no_such_db -c "select 1" 2>&1 | sed 's/^/    /' >&2 || true
    cap_stop
}

rec_tls-sslrequest() {
    cap_start tls-sslrequest "$(port_filter "$PG15_PORT")"
    PGSSLMODE=require psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -Atc "select 'tls', ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
    cap_stop
}

rec_tls-direct() {
    cap_start tls-direct "$(port_filter "$PG18_PORT")"
    psql18 "host=$H4 port=$PG18_PORT user=trust_user dbname=pgscope sslmode=require sslnegotiation=direct" \
        -Atc "select 'tls', ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
    cap_stop
}

rec_gssenc-refused() {
    # Debian's PG15 is built with GSSAPI and answers 'G'; the npm PG18 build
    # has no GSSAPI and answers 'N', so this one goes to PG18.
    cap_start gssenc-refused "$(port_filter "$PG18_PORT")"
    python3 "$HERE/pgwire.py" gssenc "$PG18_PORT"
    cap_stop
}

rec_cancel-30() {
    cap_start cancel-30 "$(port_filter "$PG15_PORT")"
    timeout --foreground -s INT 1 "$PG15_BIN/psql" -X -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "select pg_sleep(10)" 2>&1 | sed 's/^/    /' >&2 || true
    cap_stop
}

rec_cancel-32() {
    cap_start cancel-32 "$(port_filter "$PG18_PORT")"
    PGMAXPROTOCOLVERSION=3.2 LD_LIBRARY_PATH="$PG18_LIB" timeout --foreground -s INT 1 "$PG15_BIN/psql" -X \
        -h $H4 -p "$PG18_PORT" -U trust_user -d pgscope \
        -c "select pg_sleep(10)" 2>&1 | sed 's/^/    /' >&2 || true
    cap_stop
}

rec_replication() {
    admin15 -c "select pg_drop_replication_slot('pgscope_slot') from pg_replication_slots where slot_name = 'pgscope_slot'" \
        -c "drop table if exists repl_t" -c "create table repl_t (id int, v text)" \
        -c "alter table repl_t owner to trust_user"
    local rpid
    cap_start replication "$(port_filter "$PG15_PORT")"
    # physical/logical replication connection: IDENTIFY_SYSTEM
    psql15 "host=$H4 port=$PG15_PORT user=repl_user dbname=pgscope replication=database" \
        -c "IDENTIFY_SYSTEM" >/dev/null
    # CREATE_REPLICATION_SLOT ... LOGICAL test_decoding, then START_REPLICATION (CopyBoth)
    "$PG15_BIN/pg_recvlogical" -h $H4 -p "$PG15_PORT" -U repl_user -d pgscope \
        -S pgscope_slot --create-slot -P test_decoding
    "$PG15_BIN/pg_recvlogical" -h $H4 -p "$PG15_PORT" -U repl_user -d pgscope \
        -S pgscope_slot --start -s 1 -f "$WORK/decoded.txt" &
    rpid=$!
    sleep 1
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "insert into repl_t select g, 'row ' || g from generate_series(1, 3) g" \
        -c "update repl_t set v = 'changed' where id = 2" >/dev/null
    sleep 2
    kill -INT "$rpid"
    wait "$rpid" || true
    cap_stop
    admin15 -c "select pg_drop_replication_slot('pgscope_slot')"
    sed 's/^/    decoded: /' "$WORK/decoded.txt" >&2
}

# pg_basebackup (physical replication: BASE_BACKUP's tar stream in CopyOut, and with
# -X stream a second walsender connection streaming WAL in CopyBoth). The shared
# PG15 cluster holds pgscope_bench (~80 MB, bench/make-capture.sh), whose backup
# is ~8 MB even compressed, so this backs up a fresh throwaway cluster instead:
# same PG15 binaries, initdb'd here, listening on 127.0.0.2 with the PG15 port
# (the shared server listens on 127.0.0.1 and ::1 only), removed afterwards.
# Its WAL segments are 1 MB (the minimum): -X stream streams from the start of
# the segment holding the backup's checkpoint, and the WAL switch at the end of
# the backup makes the walsender send the rest of that segment (zeros) until it
# reads the client's CopyDone, i.e. up to a whole segment (16 MB by default).
BB_HOST=127.0.0.2
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
admin15bb() { PGOPTIONS="-c client_min_messages=warning" psql15 -h "$BB_DATA" -p "$PG15_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@" >/dev/null; }
rec_replication-basebackup() {
    local d=$WORK/bb15 out=$WORK/bb-out
    if [ -z "$BB_DATA" ]; then
        chmod 711 "$WORK"
        mkdir -p "$d"
        chown postgres: "$d"
        chmod 700 "$d"
        as_postgres "$PG15_BIN/initdb" -D "$d" -U postgres --auth=trust --encoding=UTF8 --locale=C \
            --wal-segsize=1 >/dev/null
        cat >"$d/postgresql.auto.conf" <<EOF
listen_addresses = '$BB_HOST'
port = $PG15_PORT
unix_socket_directories = '$d'
ssl = off
wal_level = replica
max_wal_senders = 4
shared_buffers = 32MB
fsync = off
logging_collector = off
lc_messages = 'C'
EOF
        # the client's address is still 127.0.0.1 (the kernel's source for 127.0.0.2)
        printf 'local all all trust\nhost replication repl_user %s/32 trust\n' "$H4" >"$d/pg_hba.conf"
        chown postgres: "$d/postgresql.auto.conf" "$d/pg_hba.conf"
        BB_DATA=$d
        as_postgres "$PG15_BIN/pg_ctl" -D "$d" -l "$d/server.log" -w -t 60 start >/dev/null \
            || { tail -20 "$d/server.log" >&2; die "throwaway PG15 cluster failed to start"; }
        admin15bb -c "create role repl_user login replication"
    fi
    # start the backup near the beginning of a fresh WAL segment
    admin15bb -c "select pg_switch_wal()"
    rm -rf "$out"
    cap_start replication-basebackup "$(port_filter "$PG15_PORT") and host $BB_HOST"
    "$PG15_BIN/pg_basebackup" -h $BB_HOST -p "$PG15_PORT" -U repl_user -D "$out" -Ft -X stream \
        --checkpoint=fast --compress=server-zstd:level=19 -P 2>"$WORK/bb.err" \
        || { cat "$WORK/bb.err" >&2; die "pg_basebackup failed"; }
    cap_stop
    tr '\r' '\n' <"$WORK/bb.err" | grep . | tail -1 | sed 's/^/    pg_basebackup: /' >&2
    ls -l "$out" | sed 's/^/    /' >&2
}

rec_ipv6-simple() {
    [ "${PG_IPV6:-0}" = 1 ] || { log "skip ipv6-simple: server not on ::1"; return 0; }
    cap_start ipv6-simple "$(port_filter "$PG15_PORT")"
    psql15 -h ::1 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "select inet_server_addr()" \
        -c "select 'over ipv6' as msg" \
        -c "select g from generate_series(1, 3) g" >/dev/null
    cap_stop
}

rec_midstream() {
    local fifo=$WORK/mid.fifo pid
    mkfifo "$fifo"
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope <"$fifo" >"$WORK/mid.out" 2>&1 &
    pid=$!
    exec 3>"$fifo"
    echo "select 'before capture';" >&3
    sleep 2
    cap_start midstream "$(port_filter "$PG15_PORT")"
    echo "select 42;" >&3
    sleep 0.3
    echo "select 'after join';" >&3
    sleep 0.3
    echo '\q' >&3
    exec 3>&-
    wait "$pid"
    cap_stop
}

# ------------------------------------------------------------ trust-*: longer real sessions
# for tests/trust.rs, which damages them (loss, swaps, duplicates, cuts, a late start)
# and compares every query record with the clean capture's. Each mixes successes,
# errors and cancels so that a result moved to a neighbour shows.
libpq_of() { # port: libpq 15 (system) for PG15, libpq 18 for PG18
    if [ "$1" = "$PG18_PORT" ]; then echo "$PG18_LIB"; fi
}
sock_of() { if [ "$1" = "$PG18_PORT" ]; then echo "$PG18_SOCKDIR"; else echo "$PG15_SOCKDIR"; fi; }
# Cancels (server side, pg_cancel_backend over the unix socket: not captured) the
# running `select pg_sleep(5)` of application pgscope-trust; retries until it is seen.
cancel_sleep() { # port
    local i n
    for i in $(seq 1 50); do
        n=$("$PG15_BIN/psql" -X -Atq -h "$(sock_of "$1")" -p "$1" -U postgres -d pgscope -c \
            "select count(pg_cancel_backend(pid)) from pg_stat_activity
             where application_name = 'pgscope-trust' and query like 'select pg_sleep(5)%'")
        [ "$n" = 1 ] && return 0
        sleep 0.1
    done
    die "no pg_sleep to cancel on port $1"
}
# One psql session (script read from a fifo: psql sends each statement as one
# Query, and statements joined by \; as one multi-statement Query) with errors,
# multi-statement queries, COPY in/out in text and binary, a server-side
# cancel in the middle and, at the end, a cancel by SIGINT (psql sends a
# CancelRequest on a second connection, then leaves: a script stops on SIGINT).
rec_trust_psql() { # name port
    local name=$1 port=$2 fifo=$WORK/trust.fifo pid i
    rm -f "$fifo" "$WORK/trust.bin"
    mkfifo "$fifo"
    cap_start "$name" "$(port_filter "$port")"
    # env execs psql itself, so that $! is psql's PID for the SIGINT below
    env LD_LIBRARY_PATH="$(libpq_of "$port")" PGAPPNAME=pgscope-trust "$PG15_BIN/psql" -X -q -h $H4 -p "$port" -U trust_user -d pgscope <"$fifo" >"$WORK/trust.out" 2>&1 &
    pid=$!
    exec 3>"$fifo"
    cat >&3 <<SQL
drop table if exists trust_t, trust_c;
create table trust_t (id int primary key, v text);
create table trust_c (like trust_t);
insert into trust_t select g, 'v' || g from generate_series(1, 20) g;
select * from trust_t where id <= 5;
update trust_t set v = 'u' where id % 3 = 0;
select 1/0;
insert into trust_t values (1, 'dup');
selec 1;
select 1 \\; select 1/0 \\; select 3;
insert into trust_t values (100, 'a') \\; insert into trust_t values (1, 'dup') \\; insert into trust_t values (101, 'b');
select count(*) from trust_t where id >= 100;
begin;
insert into trust_t values (200, 'tx');
insert into trust_t values (2, 'dup');
select 1;
rollback;
SQL
    for i in $(seq 1 30); do
        case $((i % 10)) in
            3) echo "select $i / 0;" ;;
            7) echo "insert into trust_t values ($i, 'dup $i');" ;;
            *) echo "select $i as n, repeat('r', $i) from generate_series(1, $i);" ;;
        esac >&3
        sleep 0.01
    done
    echo "select pg_sleep(5);" >&3
    sleep 0.5
    cancel_sleep "$port"
    cat >&3 <<SQL
select 'after cancel';
copy trust_c from stdin;
1	one
2	two
3	three
\\.
copy trust_c to stdout;
\\copy trust_t to '$WORK/trust.bin' (format binary)
\\copy trust_c from '$WORK/trust.bin' (format binary)
copy (select g, repeat('z', 100) from generate_series(1, 200) g) to stdout;
;
delete from trust_c where id > 10;
select g, md5(g::text) from generate_series(1, 2000) g;
select count(*) from trust_c;
select pg_sleep(5);
SQL
    sleep 1
    kill -INT "$pid"
    exec 3>&-
    wait "$pid" || true
    cap_stop
    grep -E "ERROR" "$WORK/trust.out" | sed 's/^/    psql: /' >&2 || true
}
rec_trust-psql-15() { rec_trust_psql trust-psql-15 "$PG15_PORT"; }
rec_trust-psql-18() { rec_trust_psql trust-psql-18 "$PG18_PORT"; }

pgbench_init_port() { # port
    if ! psql15 -h "$(sock_of "$1")" -p "$1" -U trust_user -d pgscope -Atc \
            "select 1 from pgbench_accounts limit 1" >/dev/null 2>&1; then
        log "pgbench -i -s 1 on port $1 (not captured)"
        "$PG15_BIN/pgbench" -i -s 1 -q -h "$(sock_of "$1")" -p "$1" -U trust_user pgscope >/dev/null 2>&1
    fi
}
# Rate-limited so that a capture stays around 1 MB: TPC-B for 2 s, then -S for 1 s,
# 3 clients each (pgbench opens one more connection first).
rec_trust_pgbench() { # name mode port
    local name=$1 mode=$2 port=$3
    pgbench_init_port "$port"
    cap_start "$name" "$(port_filter "$port")"
    "$PG15_BIN/pgbench" -n -M "$mode" -c 3 -T 2 -R 150 -h $H4 -p "$port" -U trust_user pgscope \
        >"$WORK/pgbench.out" 2>&1
    "$PG15_BIN/pgbench" -n -M "$mode" -S -c 3 -T 1 -R 300 -h $H4 -p "$port" -U trust_user pgscope \
        >>"$WORK/pgbench.out" 2>&1
    cap_stop
    grep -E "transactions actually processed" "$WORK/pgbench.out" | sed 's/^/    /' >&2
}
rec_trust-pgbench-simple() { rec_trust_pgbench trust-pgbench-simple simple "$PG15_PORT"; }
rec_trust-pgbench-extended() { rec_trust_pgbench trust-pgbench-extended extended "$PG18_PORT"; }
rec_trust-pgbench-prepared() { rec_trust_pgbench trust-pgbench-prepared prepared "$PG15_PORT"; }

rec_trust_driver() { # name port
    local py
    py=$("$ROOT/scripts/py-drivers.sh")
    cap_start "$1" "$(port_filter "$2")"
    "$py" "$HERE/driver.py" "$2" 2>&1 | sed 's/^/    driver: /' >&2
    cap_stop
}
rec_trust-driver-15() { rec_trust_driver trust-driver-15 "$PG15_PORT"; }
rec_trust-driver-18() { rec_trust_driver trust-driver-18 "$PG18_PORT"; }
# psycopg 3 (with its own libpq) for captures/psycopg-scenarios.py
need_psycopg() {
    python3 -c 'import psycopg' 2>/dev/null ||
        python3 -m pip install -q --break-system-packages 'psycopg[binary]' >&2
}

rec_oversize-statements() {
    need_psycopg
    # a file, not -c: an argument is limited to 128 KiB
    python3 -c "print(\"select length('\" + 'q' * 1200000 + \"') as big_query;\")" >"$WORK/big.sql"
    cap_start oversize-statements "$(port_filter "$PG15_PORT")"
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope -f "$WORK/big.sql" -c "select 2 as after_big" >/dev/null
    python3 "$HERE/psycopg-scenarios.py" oversize "$PG15_PORT"
    cap_stop
}

rec_rollback-batches() {
    need_psycopg
    cap_start rollback-batches "$(port_filter "$PG18_PORT")"
    python3 "$HERE/psycopg-scenarios.py" rollback "$PG18_PORT"
    psql18 -h $H4 -p "$PG18_PORT" -U trust_user -d pgscope -v ON_ERROR_STOP=0 \
        -c "insert into rb_t values (1); insert into rb_t values (2); select 1/0; select 3" \
        -c "insert into rb_t values (1); commit; insert into rb_t values (2); select 1/0" \
        -c "begin; insert into rb_t values (3); select 1/0; select 4" \
        -c "rollback" \
        -c "begin; savepoint s; insert into rb_t values (5); rollback to savepoint s; insert into rb_t values (6); select 1/0" \
        -c "rollback" \
        -c "select count(*) from rb_t" >/dev/null 2>"$WORK/psql.err" || true
    cap_stop
    sed 's/^/    psql: /' "$WORK/psql.err" >&2
}

rec_copy-binary-appname() {
    cap_start copy-binary-appname "$(port_filter "$PG15_PORT")"
    psql15 -h $H4 -p "$PG15_PORT" -U trust_user -d pgscope \
        -c "copy (select g from generate_series(1, 30) g) to stdout (format binary)" \
        -c "select 'before rename'" \
        -c "set application_name = 'renamed-app'" \
        -c "select 'after rename'" >/dev/null
    cap_stop
}

rec_long-pipeline() {
    need_psycopg
    cap_start long-pipeline "$(port_filter "$PG15_PORT")"
    python3 "$HERE/psycopg-scenarios.py" long-pipeline "$PG15_PORT"
    cap_stop
}

# ------------------------------------------------------------ verification
port_of() { # name -> port used
    case "$1" in
        pg18-proto32|tls-direct|gssenc-refused|cancel-32|trust-*-18|trust-pgbench-extended|rollback-batches) echo "$PG18_PORT" ;;
        *) echo "$PG15_PORT" ;;
    esac
}

verify() { # name
    local f=$OUT/$1.pcap port
    port=$(port_of "$1")
    [ -s "$f" ] || { echo "  $1: MISSING"; return 1; }
    local pk sz nmsg
    pk=$(capinfos -M -c "$f" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
    sz=$(stat -c %s "$f")
    nmsg=$(tshark -r "$f" -d "tcp.port==$port,pgsql" -Y pgsql -T fields -e pgsql.type 2>/dev/null | tr ',' '\n' | grep -c . || true)
    printf '  %-24s %8s bytes %6s packets %6s pgsql msgs\n' "$1" "$sz" "$pk" "$nmsg"
}

# captures/secrets.txt: every secret string that must never appear in pgscope
# output, including the per-recording MD5 response and SCRAM proofs/signatures
# (these change with every recording, so the file is regenerated here).
write_secrets() {
    local f=$OUT/secrets.txt
    {
        echo "# Strings that must not appear in pgscope output (one per line, exact)."
        echo "# Regenerated by captures/record.sh; '#' lines are comments."
        echo "scram-secret-pw"
        echo "md5-secret-pw"
        echo "clear-secret-pw"
        echo "wrong-password-pw"
        echo "# md5(password || user) for md5_user, i.e. the stored hash without the 'md5' prefix"
        printf '%s' "md5-secret-pwmd5_user" | md5sum | cut -d' ' -f1
        if [ -s "$OUT/auth-md5.pcap" ]; then
            echo "# PasswordMessage of auth-md5.pcap ('md5' + md5(stored hash || salt))"
            tshark -r "$OUT/auth-md5.pcap" -d "tcp.port==$PG15_PORT,pgsql" -Y 'pgsql.type == "Password message"' \
                -T fields -e pgsql.password 2>/dev/null | grep .
        fi
        local pc
        for pc in auth-scram auth-failures; do
            [ -s "$OUT/$pc.pcap" ] || continue
            echo "# SCRAM client proof (p=) and server signature (v=) values from $pc.pcap"
            tshark -r "$OUT/$pc.pcap" -d "tcp.port==$PG15_PORT,pgsql" -Y pgsql -T fields \
                -e pgsql.auth.sasl.data 2>/dev/null | tr ',' '\n' | grep . |
                python3 -c '
import sys
for line in sys.stdin:
    try:
        t = bytes.fromhex(line.strip()).decode()
    except ValueError:
        continue
    for part in t.split(","):
        if part.startswith(("p=", "v=")):
            print(part[2:])'
        done
    } >"$f"
}

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=("${ALL_SCENARIOS[@]}")
for s in "${scenarios[@]}"; do
    declare -F "rec_$s" >/dev/null || die "unknown scenario $s (see --list)"
done
# Number of TCP connections (client SYNs) each scenario makes. Other processes
# on this machine (e.g. live tests) may talk to the same servers while we
# record; a capture with a different count is thrown away and re-recorded.
declare -A EXPECT_SYN=(
    [auth-failures]=3 [cancel-30]=2 [cancel-32]=2 [listen-notify]=2
    [midstream]=0 [pgbench-extended]=3 [pgbench-prepared]=3 [replication]=4
    [replication-basebackup]=2 [trust-psql-15]=2 [trust-psql-18]=2
    [trust-pgbench-simple]=8 [trust-pgbench-extended]=8 [trust-pgbench-prepared]=8
    [trust-driver-15]=2 [trust-driver-18]=2
    [oversize-statements]=2 [rollback-batches]=2
)
syn_count() {
    tshark -r "$1" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e frame.number 2>/dev/null | grep -c . || true
}
for s in "${scenarios[@]}"; do
    want=${EXPECT_SYN[$s]:-1}
    for attempt in 1 2 3 4 5; do
        log "== $s${attempt:+ (attempt $attempt)}"
        "rec_$s"
        [ -s "$OUT/$s.pcap" ] || break   # skipped scenario
        got=$(syn_count "$OUT/$s.pcap")
        [ "$got" = "$want" ] && break
        log "$s: $got connections in the capture, expected $want (foreign traffic?); re-recording"
        [ "$attempt" = 5 ] && die "$s: could not get a clean capture"
        sleep 2
    done
done
write_secrets
log "summary:"
for s in "${scenarios[@]}"; do verify "$s" || true; done
