#!/usr/bin/env python3
"""Tiny raw PostgreSQL wire-protocol client used by captures/record.sh for the
scenarios that psql/libpq cannot produce on demand. It talks to a real server;
every response in the recordings is the server's own.

  pgwire.py unknown-option PORT   StartupMessage 3.0 + _pq_.pgscope_test=1
                                  -> NegotiateProtocolVersion, then Terminate
  pgwire.py gssenc PORT           GSSENCRequest -> 'N', StartupMessage on the
                                  same connection, SELECT 1, Terminate
  pgwire.py pipeline PORT         extended-protocol pipeline: 3x Parse/Bind/
                                  Describe/Execute (middle = SELECT 1/0), one
                                  Sync; then one more statement + Sync
Connects as trust_user to database pgscope on 127.0.0.1 (no TLS).
"""
import socket
import struct
import sys

HOST = "127.0.0.1"
USER = "trust_user"
DB = "pgscope"


def msg(tag, body=b""):
    return tag + struct.pack("!i", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def startup(params, major=3, minor=0):
    body = struct.pack("!hh", major, minor)
    for k, v in params:
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("server closed connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_msg(self):
        tag = self.recv_exact(1)
        (ln,) = struct.unpack("!i", self.recv_exact(4))
        return tag, self.recv_exact(ln - 4)

    def until_ready(self, verbose=True):
        msgs = []
        while True:
            tag, body = self.read_msg()
            msgs.append((tag, body))
            if verbose:
                show(tag, body)
            if tag == b"Z":
                return msgs
            if tag == b"E" and not self.started:
                return msgs

    started = False

    def close(self):
        self.send(msg(b"X"))
        self.s.close()


def show(tag, body):
    t = tag.decode()
    if t == "E" or t == "N":
        fields = {}
        for part in body.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode(errors="replace")
        print(f"  <- {t} {fields.get('S')} {fields.get('C')} {fields.get('M')}")
    elif t == "v":
        minor, n = struct.unpack("!ii", body[:8])
        opts = [o.decode() for o in body[8:].split(b"\0") if o]
        print(f"  <- NegotiateProtocolVersion newest_minor={minor:#010x} unsupported={opts}")
    elif t == "K":
        print(f"  <- BackendKeyData pid={struct.unpack('!i', body[:4])[0]} key_len={len(body) - 4}")
    elif t == "C":
        print(f"  <- CommandComplete {body.rstrip(bytes(1)).decode()}")
    elif t == "Z":
        print(f"  <- ReadyForQuery {body.decode()}")
    elif t == "S":
        pass
    else:
        print(f"  <- {t} ({len(body)} bytes)")


def do_startup(c, extra=()):
    c.send(startup([("user", USER), ("database", DB), ("application_name", "pgscope-pgwire")] + list(extra)))
    msgs = c.until_ready()
    c.started = True
    return msgs


def unknown_option(port):
    c = Conn(port)
    print("-> StartupMessage 3.0 with _pq_.pgscope_test=1")
    do_startup(c, [("_pq_.pgscope_test", "1")])
    print("-> Terminate")
    c.close()


def gssenc(port):
    c = Conn(port)
    print("-> GSSENCRequest")
    c.send(struct.pack("!ii", 8, 80877104))
    ans = c.recv_exact(1)
    print(f"  <- {ans!r}")
    if ans != b"N":
        sys.exit(f"expected 'N', got {ans!r}")
    print("-> StartupMessage on the same connection")
    do_startup(c)
    print("-> Query SELECT 1")
    c.send(msg(b"Q", cstr("SELECT 1")))
    c.until_ready()
    print("-> Terminate")
    c.close()


def ext_stmt(sql):
    parse = msg(b"P", cstr("") + cstr(sql) + struct.pack("!h", 0))
    bind = msg(b"B", cstr("") + cstr("") + struct.pack("!hhh", 0, 0, 0))
    describe = msg(b"D", b"P" + cstr(""))
    execute = msg(b"E", cstr("") + struct.pack("!i", 0))
    return parse + bind + describe + execute


def pipeline(port):
    c = Conn(port)
    do_startup(c)
    stmts = ["SELECT 1 AS first", "SELECT 1/0 AS boom", "SELECT 3 AS skipped"]
    print("-> pipeline: " + " | ".join(stmts) + " | Sync")
    c.send(b"".join(ext_stmt(s) for s in stmts) + msg(b"S"))
    c.until_ready()
    print("-> SELECT 4 AS after_sync | Sync")
    c.send(ext_stmt("SELECT 4 AS after_sync") + msg(b"S"))
    c.until_ready()
    print("-> Terminate")
    c.close()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    what, port = sys.argv[1], int(sys.argv[2])
    {"unknown-option": unknown_option, "gssenc": gssenc, "pipeline": pipeline}[what](port)


if __name__ == "__main__":
    main()
