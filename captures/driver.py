#!/usr/bin/env python3
"""Real drivers that pipeline and send binary parameters, for captures/record.sh
(scenarios trust-driver-15 and trust-driver-18). Run with the venv python that
scripts/py-drivers.sh prints:

  driver.py PORT

1. psycopg 3 (libpq, extended protocol): pipeline mode with binary parameters
   (%b), a pipeline whose middle statement fails (23505: the server skips to the
   Sync, and the implicit transaction rolls back the statement before it), and
   executemany (pipelined by psycopg).
2. asyncpg (its own protocol code, binary parameters and results): executemany
   of a batch that succeeds and of one where a row fails (one Sync: the whole
   batch rolls back), prepared statements, an error with a binary parameter.

Connects as trust_user to database pgscope on 127.0.0.1 (no TLS).
"""
import asyncio
import datetime
import sys

import asyncpg
import psycopg

PORT = int(sys.argv[1])
DSN = f"host=127.0.0.1 port={PORT} dbname=pgscope user=trust_user sslmode=disable application_name=pgscope-driver"


def run_psycopg():
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("drop table if exists drv_p")
        conn.execute("create table drv_p (id int primary key, v text, d date, f float8, b bytea)")
        with conn.pipeline():
            with conn.cursor() as cur:
                for i in range(1, 21):
                    cur.execute(
                        "insert into drv_p values (%b, %b, %b, %b, %b)",
                        (i, f"row {i}", datetime.date(2020, 1, i), i / 4, bytes([i, 0, 255])),
                    )
                cur.execute("select count(*) from drv_p where id <= %b", (10,))
        # One Sync for all three: the duplicate fails, the one before it is rolled
        # back, the one after it is skipped.
        try:
            with conn.pipeline():
                conn.execute("insert into drv_p (id, v) values (%b, %b)", (100, "kept?"))
                conn.execute("insert into drv_p (id, v) values (%b, %b)", (1, "duplicate"))
                conn.execute("insert into drv_p (id, v) values (%b, %b)", (101, "skipped"))
        except psycopg.errors.UniqueViolation as e:
            print("psycopg pipeline:", e.sqlstate, file=sys.stderr)
        with conn.cursor() as cur:
            cur.executemany(
                "update drv_p set f = f + %b where id = %b", [(0.5, i) for i in range(1, 11)]
            )
            cur.execute("select id, v, d, f from drv_p where id > %b order by id", (15,))
            cur.fetchall()
            try:
                cur.execute("select %b::int / 0", (7,))
            except psycopg.errors.DivisionByZero as e:
                print("psycopg:", e.sqlstate, file=sys.stderr)
            cur.execute("select count(*) from drv_p where id >= 100")
            print("psycopg rows kept from the failed pipeline:", cur.fetchone()[0], file=sys.stderr)


async def run_asyncpg():
    conn = await asyncpg.connect(
        host="127.0.0.1", port=PORT, user="trust_user", database="pgscope", ssl=False,
        server_settings={"application_name": "pgscope-driver"},
    )
    await conn.execute("drop table if exists drv_a")
    await conn.execute("create table drv_a (id int8 primary key, v text, d date, n numeric, f float8)")
    ins = "insert into drv_a values ($1, $2, $3, $4, $5)"
    await conn.executemany(
        ins, [(i, f"a{i}", datetime.date(1999, 12, 1 + i % 28), i * 1.25, i / 3) for i in range(1, 31)]
    )
    # Row 4 collides: asyncpg sends every Bind/Execute and one Sync, so the whole
    # batch is rolled back.
    try:
        await conn.executemany(
            ins, [(i, f"b{i}", datetime.date(2024, 2, 29), -i, float(i)) for i in (40, 41, 42, 4, 43, 44)]
        )
    except asyncpg.UniqueViolationError as e:
        print("asyncpg executemany:", e.sqlstate, file=sys.stderr)
    stmt = await conn.prepare("select id, v, d, n from drv_a where id between $1 and $2 order by id")
    for lo in (1, 10, 20):
        await stmt.fetch(lo, lo + 5)
    await conn.fetchval("select $1::int8 * 2", 21)
    try:
        await conn.fetchval("select $1::int / 0", 3)
    except asyncpg.DivisionByZeroError as e:
        print("asyncpg:", e.sqlstate, file=sys.stderr)
    n = await conn.fetchval("select count(*) from drv_a where id >= 40")
    print("asyncpg rows kept from the failed batch:", n, file=sys.stderr)
    await conn.close()


run_psycopg()
asyncio.run(run_asyncpg())
