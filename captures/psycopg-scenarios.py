#!/usr/bin/env python3
"""Scenarios driven by a real driver, psycopg 3 (its bundled libpq, protocol 3.0),
for captures/record.sh: what psql cannot send (big Parse and Bind messages,
pipelines of many statements before one Sync).

  psycopg-scenarios.py oversize PORT        a small parameterised statement, a 1.1 MB Parse,
                                 a 1.5 MB Bind parameter (named statement), then
                                 a small statement
  psycopg-scenarios.py rollback PORT        pipelines in autocommit mode (one Sync each): two
                                 inserts then a duplicate key (the inserts are
                                 rolled back, the statement after it skipped); the
                                 same inside BEGIN ... (nothing rolled back yet)
  psycopg-scenarios.py long-pipeline PORT   5000 inserts in one pipeline, one Sync, then a count
Connects as trust_user to database pgscope on 127.0.0.1 (sslmode=disable).
"""
import sys

import psycopg


def connect(port):
    return psycopg.connect(
        f"host=127.0.0.1 port={port} user=trust_user dbname=pgscope "
        "sslmode=disable application_name=pgscope-driver",
        autocommit=True,
    )


def oversize(port):
    with connect(port) as c:
        c.execute("select %s::int as small", (1,))
        big_text = "x" * 1_100_000
        row = c.execute(
            f"select %s::int as big_parse, length('{big_text}') as n", (2,)
        ).fetchone()
        assert row == (2, 1_100_000), row
        row = c.execute(
            "select length(%s) as big_bind", ("y" * 1_500_000,), prepare=True
        ).fetchone()
        assert row == (1_500_000,), row
        c.execute("select 4 as after_big")


def rollback(port):
    with connect(port) as c:
        c.execute("drop table if exists rb_t")
        c.execute("create table rb_t (id int primary key)")
        for explicit in (False, True):
            try:
                with c.pipeline():
                    if explicit:
                        c.execute("begin")
                    c.execute("insert into rb_t values (1)")
                    c.execute("insert into rb_t values (2)")
                    c.execute("insert into rb_t values (1)")
                    c.execute("insert into rb_t values (4)")
            except psycopg.errors.UniqueViolation:
                pass
            if explicit:
                c.execute("rollback")
        n = c.execute("select count(*) from rb_t").fetchone()[0]
        assert n == 0, n


def long_pipeline(port):
    with connect(port) as c:
        c.execute("drop table if exists lp_t")
        c.execute("create table lp_t (id int)")
        with c.pipeline():
            for i in range(5000):
                c.execute("insert into lp_t values (%s)", (i,))
        n = c.execute("select count(*) from lp_t").fetchone()[0]
        assert n == 5000, n


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    what, port = sys.argv[1], int(sys.argv[2])
    {"oversize": oversize, "rollback": rollback, "long-pipeline": long_pipeline}[what](port)


if __name__ == "__main__":
    main()
