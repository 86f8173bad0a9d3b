"""Sends many values as binary bind parameters with asyncpg (which sends binary for
every type it knows) and writes, per value, the server's own text of it.

Usage: binary_params.py PORT... OUT.jsonl. Each value goes as `$1` of
`select $2::int4, format('%s', $1::TYPE)`: `$2` is the value's index, so the test
finds its record in pgscope's output; format's `%s` is the type's output function.
Values Python cannot hold (BC dates, year 294276, months in intervals, PostgreSQL
16's infinite intervals) are first turned into their binary form by the server's
send function, then sent as they are through a pass-through binary codec.
"""

import asyncio
import datetime as dt
import ipaddress as ip
import json
import sys
import uuid
from decimal import Decimal

import asyncpg

D, T, UTC = dt.date, dt.datetime, dt.timezone.utc

NATIVE = [
    ("int2", [0, -32768, 32767]),
    ("int4", [-2147483648, 2147483647]),
    ("int8", [-9223372036854775808, 9223372036854775807]),
    ("oid", [4294967295]),
    ("bool", [True, False]),
    ("float8", [1e300, 5e-324, float("inf"), float("-inf"), float("nan"), -0.0, 0.1,
                1e-5, 0.0001, 1e15, 123456789012345.0, 1.7976931348623157e308, 100.0,
                -2.5e-7, 2.2250738585072014e-308]),
    ("float4", [1e6, 123456.0, 1.4e-45, 3.4028234663852886e38, 0.1, float("-inf"),
                float("nan"), 1e-5]),
    ("numeric", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("0"),
                 Decimal("0.000"), Decimal("-12345.678"), Decimal("0.0001"),
                 Decimal("1E-20"), Decimal("-1E+20"), Decimal("-0.00"),
                 Decimal("123456789.123456789")]),
    ("text", ["", "plain", "it's \"quoted\"", "é ☃", "tab\there", "back\\slash"]),
    ("varchar", ["v"]),
    ("name", ["pg_class"]),
    ("bpchar", ["a "]),
    ("bytea", [b"", b"\x00\xff\\"]),
    ("uuid", [uuid.UUID("12345678-9abc-def0-0001-020304050607")]),
    ("date", [D(1600, 2, 29), D(2000, 1, 1), D(1, 1, 1), D.max, D.min, D(1970, 1, 1)]),
    ("timestamp", [T(1600, 2, 29, 12, 34, 56, 500000), T(1969, 12, 31, 23, 59, 59, 1),
                   T(1, 1, 1, 0, 0, 0, 1), T.max, T.min, T(2024, 2, 29, 23, 59, 59, 990000)]),
    ("timestamptz", [T(2024, 2, 29, 23, 59, 59, 990000, tzinfo=UTC),
                     T(1600, 2, 29, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
                     T(1500, 1, 1, tzinfo=UTC)]),
    ("time", [dt.time(13, 5, 0, 250000), dt.time(0, 0), dt.time(23, 59, 59, 999999)]),
    ("timetz", [dt.time(13, 5, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
                dt.time(1, 2, 3, tzinfo=dt.timezone(-dt.timedelta(hours=15, minutes=59, seconds=59)))]),
    ("interval", [dt.timedelta(days=-1, seconds=1), dt.timedelta(microseconds=-1),
                  dt.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=700000),
                  dt.timedelta(0), dt.timedelta(days=-3, hours=-4)]),
    ("inet", [ip.ip_address("10.0.0.1"), ip.ip_interface("10.0.0.1/8"), ip.ip_address("::1"),
              ip.ip_interface("2001:db8::1:0:0:1/64"), ip.ip_address("::ffff:1.2.3.4"),
              ip.ip_address("::1.2.3.4"), ip.ip_address("1:0:0:1::"), ip.ip_address("::")]),
    ("cidr", [ip.ip_network("10.0.0.0/8"), ip.ip_network("10.1.2.3/32"),
              ip.ip_network("2001:db8::/32"), ip.ip_network("::/0"),
              ip.ip_network("::ffff:0.0.0.0/96"), ip.ip_network("fe80::/10")]),
    ("text[]", [[], ["", None, "NULL", "null", "a b", 'x"y', "c\\d", "{", "}", ",", "é",
                     "\t", "\x0b", "\x0c", "ok"], [None]]),
    ("int4[]", [[[1, 2, 3], [4, None, 6]], [[[1], [2]], [[3], [4]]], [1]]),
    ("int8[]", [[-9223372036854775808, 9223372036854775807]]),
    ("int2[]", [[1, -2]]),
    ("float8[]", [[1e300, 5e-324, float("nan"), float("-inf"), -0.0]]),
    ("float4[]", [[1e6, 0.1]]),
    ("bool[]", [[True, False, None]]),
    ("numeric[]", [[Decimal("1.50"), Decimal("NaN"), None]]),
    ("date[]", [[D.max, D(1600, 2, 29), D.min]]),
    ("timestamp[]", [[T(2000, 1, 1), T(1600, 2, 29, 1, 2, 3, 4)]]),
    ("timestamptz[]", [[T(2020, 1, 1, tzinfo=UTC)]]),
    ("time[]", [[dt.time(10, 0)]]),
    ("interval[]", [[dt.timedelta(days=1), dt.timedelta(seconds=-1)]]),
    ("bytea[]", [[b"\x01", None, b""]]),
    ("uuid[]", [[uuid.UUID(int=1)]]),
    ("inet[]", [[ip.ip_address("10.0.0.1"), ip.ip_interface("::1/64")]]),
    ("cidr[]", [[ip.ip_network("10.0.0.0/8")]]),
    ("varchar[]", [["a", "B C"]]),
    ("name[]", [["x"]]),
]

# Text the server turns into binary (its send function) for values Python cannot hold.
VIA_SERVER = [
    ("date", ["0044-03-15 BC", "4713-01-01 BC", "5874897-12-31", "9999-12-31"]),
    ("timestamp", ["294276-12-31 23:59:59.999999", "4713-01-01 00:00:00 BC",
                   "0044-03-15 12:00:00.123 BC"]),
    ("timestamptz", ["0044-03-15 12:00:00.123+00 BC", "294276-12-31 23:59:59.999999+00"]),
    ("interval", ["1 year 2 mons 3 days 04:05:06.7", "-1 year -2 mons +3 days -04:05:06.7",
                  "-178956970 years -7 mons -2147483647 days -2562047788:00:54.775807",
                  "1 mon", "-1 mon 1 day"]),
    ("numeric", ["-0.001", "1e-1000"]),
]
# PostgreSQL 16+ only.
VIA_SERVER_16 = [("interval", ["infinity", "-infinity"])]
RAW_TYPES = ["date", "timestamp", "timestamptz", "interval", "numeric"]


async def run(port, first, out):
    async def connect():
        return await asyncpg.connect(host="127.0.0.1", port=port, user="trust_user",
                                     database="pgscope", ssl=False)

    i = first

    async def send(conn, typ, v):
        nonlocal i
        text = await conn.fetchval(f"select $2::int4, format('%s', $1::{typ})", v, i, column=1)
        out.write(json.dumps({"i": i, "port": port, "type": typ, "text": text}) + "\n")
        i += 1

    conn = await connect()
    for typ, values in NATIVE:
        for v in values:
            await send(conn, typ, v)
    cases = VIA_SERVER + (VIA_SERVER_16 if conn.get_server_version().major >= 16 else [])
    raw = await connect()
    for typ in RAW_TYPES:
        await raw.set_type_codec(typ, schema="pg_catalog", encoder=bytes,
                                 decoder=bytes, format="binary")
    for typ, texts in cases:
        send_fn = await conn.fetchval("select typsend::text from pg_type where oid = $1::regtype", typ)
        wire = [await conn.fetchval(f"select {send_fn}($1::text::{typ})", t) for t in texts]
        for w in wire:
            await send(raw, typ, w)
        # The same values as one array, elements through the same codec.
        await send(raw, typ + "[]", wire)
    await conn.close()
    await raw.close()
    return i


async def main():
    *ports, path = sys.argv[1:]
    with open(path, "w") as out:
        i = 0
        for port in ports:
            i = await run(int(port), i, out)


asyncio.run(main())
