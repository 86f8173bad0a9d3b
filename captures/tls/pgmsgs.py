#!/usr/bin/env python3
"""Writes a PostgreSQL session's client bytes to stdout, for `openssl s_client
-starttls postgres` to carry inside TLS: a StartupMessage (trust_user), then the
extended-protocol statements given, one write each after a pause, then Terminate.
An argument `k` or `K` writes that s_client command line instead (KeyUpdate; `K`
also asks the server to update its keys)."""
import struct, sys, time

def msg(tag, body=b""):
    return tag + struct.pack("!I", len(body) + 4) + body

def cstr(s):
    return s.encode() + b"\0"

def out(b):
    sys.stdout.buffer.write(b)
    sys.stdout.buffer.flush()
    time.sleep(0.4)

params = cstr("user") + cstr("trust_user") + cstr("database") + cstr("pgscope") + \
    cstr("application_name") + cstr("pgscope-record") + b"\0"
time.sleep(1.0)  # let the handshake finish
out(struct.pack("!II", len(params) + 8, 3 << 16) + params)
for arg in sys.argv[1:]:
    if arg in ("k", "K"):
        out(arg.encode() + b"\n")
        continue
    # Parse, Bind, Describe portal, Execute, Sync: starts with 'P', which s_client
    # does not take for a command letter.
    out(msg(b"P", b"\0" + cstr(arg) + b"\0\0") + msg(b"B", b"\0\0" + b"\0\0\0\0\0\0")
        + msg(b"D", b"P\0") + msg(b"E", b"\0" + b"\0\0\0\0") + msg(b"S"))
out(msg(b"X"))
