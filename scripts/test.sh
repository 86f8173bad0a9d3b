#!/usr/bin/env bash
# Runs every test of pgscope on a fresh Debian machine (as root): installs what the
# tests need, starts real PostgreSQL 15 and 18 servers on loopback, then runs the
# whole suite including the live-capture test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libpcap-dev tcpdump tshark tmux postgresql postgresql-contrib gcc; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need[@]}"
fi

scripts/pg-setup.sh start
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PG15_PORT PSQL PG18_LIB

cargo build --release
cargo test --release -- --include-ignored
