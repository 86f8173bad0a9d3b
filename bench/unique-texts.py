#!/usr/bin/env python3
"""unique-texts.py — a pcap of many simple-protocol statements, each a text of its own.

    bench/unique-texts.py N [SHAPES] | pgscope -r - ...

Writes to stdout a classic pcap (Ethernet) of one PostgreSQL connection on port 5432
whose client sends N Query messages, 100 per segment, each with unique literals:
    SELECT abalance, c<i % SHAPES> FROM pgbench_accounts WHERE aid = <i> AND filler = '<hex>'
SHAPES (default 1) is how many distinct fingerprints they make. The server answers each
with RowDescription, DataRow, CommandComplete and ReadyForQuery, 100 per segment.
For the memory bound (docs/benchmark.md): peak RSS must not grow with N.
"""
import struct
import sys

N = int(sys.argv[1])
SHAPES = int(sys.argv[2]) if len(sys.argv) > 2 else 1
PER = 100
out = sys.stdout.buffer
CLI, SRV = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
CPORT, SPORT = 40000, 5432
seq = {"c": 1000, "s": 5000}
ts = [1_700_000_000, 0]


def msg(typ, body):
    return typ + struct.pack(">I", len(body) + 4) + body


def packet(frm, payload, flags=0x18):
    src, dst, sp, dp = (CLI, SRV, CPORT, SPORT) if frm == "c" else (SRV, CLI, SPORT, CPORT)
    other = "s" if frm == "c" else "c"
    tcp = struct.pack(">HHIIBBHHH", sp, dp, seq[frm], seq[other], 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 20 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    eth = b"\x00" * 12 + b"\x08\x00"
    frame = eth + ip + tcp + payload
    seq[frm] = (seq[frm] + len(payload) + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
    ts[1] += 10
    if ts[1] >= 1_000_000:
        ts[0] += 1
        ts[1] -= 1_000_000
    out.write(struct.pack("<IIII", ts[0], ts[1], len(frame), len(frame)) + frame)


out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
packet("c", b"", 0x02)
packet("s", b"", 0x12)
packet("c", b"", 0x10)
params = b"user\0bench\0database\0bench\0\0"
packet("c", struct.pack(">II", len(params) + 8, 3 << 16) + params)
packet("s", msg(b"R", struct.pack(">I", 0)) + msg(b"Z", b"I"))
field = b"abalance\0" + struct.pack(">IhIhih", 0, 0, 23, 4, -1, 0)
answer = (msg(b"T", struct.pack(">h", 1) + field) + msg(b"D", struct.pack(">hi", 1, 4) + b"1234")
          + msg(b"C", b"SELECT 1\0") + msg(b"Z", b"I"))
for start in range(0, N, PER):
    n = min(PER, N - start)
    qs = b"".join(
        msg(b"Q", b"SELECT abalance, c%d FROM pgbench_accounts WHERE aid = %d AND filler = '%x'\0"
            % (i % SHAPES, i, i * 2654435761 & 0xFFFFFFFF))
        for i in range(start, start + n))
    packet("c", qs)
    packet("s", answer * n)
packet("c", msg(b"X", b""))
packet("c", b"", 0x11)
packet("s", b"", 0x11)
