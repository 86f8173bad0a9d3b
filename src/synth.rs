//! Synthetic traffic for tests, fuzzing and the damaged-capture tool: PostgreSQL
//! messages, TCP connections as Ethernet frames, and a streaming pcap writer.

use etherparse::PacketBuilder;
use std::io::{self, Write};

/// A typed message: type byte, length, body.
pub fn msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 5);
    v.push(typ);
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A NUL-terminated string field.
pub fn cstr(s: &[u8]) -> Vec<u8> {
    [s, b"\0"].concat()
}

/// A protocol 3.0 StartupMessage with the given parameter pairs.
pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = (3u32 << 16).to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend(cstr(k.as_bytes()));
        body.extend(cstr(v.as_bytes()));
    }
    body.push(0);
    let mut v = (body.len() as u32 + 4).to_be_bytes().to_vec();
    v.extend(body);
    v
}

/// Query (`Q`) of `sql`.
pub fn query(sql: &[u8]) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

/// ReadyForQuery (`Z`) with transaction status `status`.
pub fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

/// CommandComplete (`C`) with command tag `tag`.
pub fn command_complete(tag: &[u8]) -> Vec<u8> {
    msg(b'C', &cstr(tag))
}

/// AuthenticationOk (`R`, 0).
pub fn auth_ok() -> Vec<u8> {
    msg(b'R', &0u32.to_be_bytes())
}

/// DataRow with the given columns (`None` is SQL NULL).
pub fn data_row(cols: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = (cols.len() as u16).to_be_bytes().to_vec();
    for c in cols {
        match c {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &b)
}

/// Writes a classic pcap file (microsecond timestamps) record by record.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header: `linktype` and `snaplen` as given.
    pub fn new(mut out: W, linktype: u32, snaplen: u32) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&linktype.to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    /// One record holding `data`, of `orig_len` bytes on the wire.
    pub fn record(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = ts_ns.div_euclid(1_000_000_000) as u32;
        let usecs = (ts_ns.rem_euclid(1_000_000_000) / 1000) as u32;
        for v in [secs, usecs, data.len() as u32, orig_len] {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.out.write_all(data)
    }

    /// The writer, to flush or read back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Largest TCP payload put in one synthetic frame (IPv4 total length is 16 bits).
pub const MAX_SEGMENT: usize = 32 << 10;

/// One TCP connection between 10.x.y.z client and 10.0.0.1:5432, as Ethernet frames.
/// Sequence numbers advance with the payload; every frame carries an ACK of the peer.
#[derive(Clone, Debug)]
pub struct TcpConn {
    client: [u8; 4],
    cport: u16,
    server: [u8; 4],
    sport: u16,
    cseq: u32,
    sseq: u32,
}

/// Which end sends a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The client.
    Client,
    /// The server.
    Server,
}

impl TcpConn {
    /// Connection number `n` gets its own client address and port.
    pub fn new(n: u32) -> Self {
        let [_, a, b, c] = n.to_be_bytes();
        TcpConn {
            client: [10, a.wrapping_add(1), b, c],
            cport: 40000 + (n % 20000) as u16,
            server: [10, 0, 0, 1],
            sport: 5432,
            cseq: n.wrapping_mul(7919),
            sseq: n.wrapping_mul(104_729) ^ 0x8000_0000,
        }
    }

    fn frame(&self, from: From, flags: &[u8], seq: u32, payload: &[u8]) -> Vec<u8> {
        let (src, dst, sp, dp, ack) = match from {
            From::Client => (self.client, self.server, self.cport, self.sport, self.sseq),
            From::Server => (self.server, self.client, self.sport, self.cport, self.cseq),
        };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        for f in flags {
            b = match f {
                b'S' => b.syn(),
                b'F' => b.fin(),
                b'R' => b.rst(),
                _ => b,
            };
        }
        if !flags.contains(&b'S') || from == From::Server {
            b = b.ack(ack);
        }
        let mut out = Vec::with_capacity(payload.len() + 54);
        b.write(&mut out, payload).expect("writing to a Vec");
        out
    }

    fn seq_mut(&mut self, from: From) -> &mut u32 {
        match from {
            From::Client => &mut self.cseq,
            From::Server => &mut self.sseq,
        }
    }

    /// A segment with `flags` (S, F, R); SYN and FIN take a sequence number.
    pub fn control(&mut self, from: From, flags: &[u8]) -> Vec<u8> {
        let seq = *self.seq_mut(from);
        let f = self.frame(from, flags, seq, &[]);
        if flags.iter().any(|c| matches!(c, b'S' | b'F')) {
            *self.seq_mut(from) = seq.wrapping_add(1);
        }
        f
    }

    /// SYN, SYN-ACK.
    pub fn handshake(&mut self) -> [Vec<u8>; 2] {
        [
            self.control(From::Client, b"S"),
            self.control(From::Server, b"S"),
        ]
    }

    /// One data segment (at most [`MAX_SEGMENT`] bytes).
    pub fn data(&mut self, from: From, payload: &[u8]) -> Vec<u8> {
        let seq = *self.seq_mut(from);
        *self.seq_mut(from) = seq.wrapping_add(payload.len() as u32);
        self.frame(from, &[], seq, payload)
    }

    /// Data cut into segments of at most [`MAX_SEGMENT`] bytes.
    pub fn stream(&mut self, from: From, bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .chunks(MAX_SEGMENT)
            .map(|c| self.data(from, c))
            .collect()
    }

    /// FIN from both ends.
    pub fn close(&mut self) -> [Vec<u8>; 2] {
        [
            self.control(From::Client, b"F"),
            self.control(From::Server, b"F"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LINKTYPE_ETHERNET;
    use crate::net;

    #[test]
    fn frames_parse_back() {
        let mut c = TcpConn::new(70_000);
        let [syn, _] = c.handshake();
        let s = net::parse(LINKTYPE_ETHERNET, &syn, syn.len() as u32).unwrap();
        assert!(s.has(net::FLAG_SYN) && !s.has(net::FLAG_ACK));
        let q = query(b"select 1");
        let d = c.data(From::Client, &q);
        let s = net::parse(LINKTYPE_ETHERNET, &d, d.len() as u32).unwrap();
        assert_eq!(s.payload, &q[..]);
        assert_eq!((s.dport, s.seq), (5432, 70_000u32.wrapping_mul(7919) + 1));
    }
}
