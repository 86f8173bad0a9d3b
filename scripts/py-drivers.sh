#!/usr/bin/env bash
# Makes (once) a Python venv with the PostgreSQL drivers that captures/driver.py uses
# (psycopg 3 for its pipeline mode, asyncpg for binary parameters and executemany),
# and prints the venv's python. Debian's python refuses system-wide pip installs, so
# they live in their own venv. Needs python3-venv (installed here if missing).
set -euo pipefail
VENV=${PGSCOPE_PYVENV:-/opt/pgscope/pyvenv}
if ! "$VENV/bin/python" -c "import psycopg, asyncpg" >/dev/null 2>&1; then
    if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! dpkg -s python3-venv >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
    fi
    /usr/bin/python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q "psycopg>=3.1,<4" "asyncpg>=0.29,<1" >&2
fi
echo "$VENV/bin/python"
