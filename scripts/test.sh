#!/usr/bin/env bash
# Runs every test of pgscope on a fresh Debian machine (as root): installs what the
# tests need, starts real PostgreSQL 15 and 18 servers on loopback, then runs the
# whole suite including the live-capture test.
set -euo pipefail
cd "$(dirname "$0")/.."
# No module names a later one in the layer order (docs/architecture.md, "Layering").
scripts/layers.sh

# libclang-dev: bindgen, for the pg_query dev-dependency (tests/normalize_pg_query.rs);
# chromium: the HTML report is checked in a real headless browser (tests/html_report.rs).
need=()
# gzip and zstd: tests/cli.rs compresses captures with the real tools.
# prometheus: its server and promtool check --metrics (tests/metrics.rs).
# valgrind: memcheck of the modules that keep `unsafe` (below).
for pkg in libpcap-dev tcpdump tshark tmux postgresql postgresql-contrib python3-venv gcc gzip zstd \
    prometheus libclang-dev chromium valgrind; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need[@]}"
fi

# asyncpg (tests/driver_params.rs) in a venv of its own: Debian's Python is
# externally managed, and Debian 12's python3-asyncpg is older than the PyPI one.
py=/opt/pgscope-py
[ -x "$py/bin/python3" ] || /usr/bin/python3 -m venv "$py"
"$py/bin/python3" -c 'import asyncpg' 2>/dev/null || "$py/bin/pip" install -q asyncpg

scripts/pg-setup.sh start
# Debian's pgbouncer, for the pooler correlation tests (tests/pooler.rs)
scripts/pgbouncer-setup.sh install
# psycopg 3 and asyncpg, for re-recording captures/trust-driver-*.pcap (captures/driver.py)
scripts/py-drivers.sh >/dev/null
# shellcheck disable=SC1091
. "${PGSCOPE_PG_BASE:-/tmp/pgscope-pg}/env"
export PG15_PORT PSQL PG18_LIB

cargo build --release
cargo test --release -- --include-ignored
# The unit tests of the modules that keep `unsafe` under valgrind's memcheck, as
# Miri's run below may not be possible (docs/architecture.md, "unsafe"). Only
# those: on output::json's optimised code memcheck flags a branch on an unset stack
# slot, which a debug build and Miri do not. A half-hour zone for localtime_r.
lib_tests=$(cargo test --release --lib --no-run --message-format=json |
    grep '"kind":\["lib"\]' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
TZ=America/St_Johns valgrind -q --error-exitcode=1 --leak-check=no "$lib_tests" \
    output::jsonw:: output::text:: session::shared::
# And under Miri (undefined behaviour, data races), from rustup's nightly channel
# where it can be had. Isolation off for localtime_r; leaks allowed, as a handle
# dropped on a foreign thread is leaked by design (session/shared.rs).
if rustup toolchain list | grep -q '^nightly'; then
    rustup component add --toolchain nightly miri rust-src || true
else
    rustup toolchain install nightly --profile minimal --component miri,rust-src || true
fi
if cargo +nightly miri --version >/dev/null 2>&1; then
    TZ=America/St_Johns MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-ignore-leaks" \
        cargo +nightly miri test --lib -- output::jsonw:: output::text:: session::shared::
else
    echo "scripts/test.sh: no nightly toolchain with Miri here: the unsafe modules were checked by memcheck only" >&2
fi
# Parameter rendering over random bytes again in a debug build, where arithmetic
# overflow panics instead of wrapping.
cargo test --test properties binary_parameters
# The statement normaliser against libpg_query (PostgreSQL's parser): a feature of its
# own, so that only this run builds the C library.
cargo test --release --features pg-query --test normalize_pg_query
# The profile-guided build the README installs (scripts/build-pgo.sh) must decode
# exactly as the plain one: every shipped capture, -o json and -o text, byte for byte.
scripts/build-pgo.sh --check
