//! Classic pcap files read without pcap-parser's generic block reader: records are
//! parsed by pcap-parser's frame parser straight from a buffer of our own.
//!
//! The block reader wraps every record in an owned block enum behind a circular
//! buffer and a panic guard (for its pcapng parser); on a classic file that was
//! 180 instructions a packet, a fifth of the reading thread. Here a record costs its
//! header parse and one call. pcapng files keep the block reader.

use super::{
    CaptureError, Flow, MAX_SNAPLEN, READ_BUFFER, READ_BUFFER_START, SourceStats, corrupt, emit,
    truncated,
};
use pcap_parser::PcapError;
use pcap_parser::nom;
use pcap_parser::pcap::{
    LegacyPcapBlock, PcapHeader, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
};
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, Ordering};

/// The size of a classic pcap file header.
pub(crate) const HEADER_LEN: usize = 24;

type FrameParser = fn(&[u8]) -> nom::IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

/// Reads the records after `header`; `head` holds the bytes read so far (the header
/// and perhaps more).
pub(crate) fn read<R: Read>(
    name: &str,
    mut input: R,
    header: &PcapHeader,
    head: Vec<u8>,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(super::Packet<'_>) -> Flow,
) -> Result<SourceStats, CaptureError> {
    let parse: FrameParser = if header.is_modified_format() {
        parse_pcap_frame_modified
    } else if header.is_bigendian() {
        parse_pcap_frame_be
    } else {
        parse_pcap_frame
    };
    let tick_ns: i64 = if header.is_nanosecond_precision() {
        1
    } else {
        1000
    };
    let linktype = header.network.0;
    let max_caplen = header.snaplen.max(MAX_SNAPLEN);
    // The captured length of the record at `at`, from its header.
    let caplen_at = |buf: &[u8], at: usize| {
        let b: [u8; 4] = buf[at + 8..at + 12].try_into().unwrap();
        if header.is_bigendian() {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let too_long =
        |len: u32| format!("record of {len} bytes, more than the maximum of {max_caplen}");
    let mut stats = SourceStats::default();
    // The file offset of `buf[0]`, for the corruption message.
    let mut base = 0;
    let mut end = head.len();
    let mut buf = head;
    buf.resize(buf.len().max(READ_BUFFER_START), 0);
    let mut pos = HEADER_LEN;
    while !stop.load(Ordering::Relaxed) {
        match parse(&buf[pos..end]) {
            Ok((rest, b)) => {
                if b.caplen > max_caplen {
                    corrupt(name, &mut stats, base + pos, &too_long(b.caplen));
                    break;
                }
                let ts = i64::from(b.ts_sec) * 1_000_000_000 + i64::from(b.ts_usec) * tick_ns;
                let next = end - rest.len();
                let verdict = emit(&mut stats, on_packet, ts, linktype, b.data, b.origlen);
                pos = next;
                if verdict.is_break() {
                    break;
                }
            }
            Err(nom::Err::Incomplete(_)) => {
                if end - pos >= 16 && caplen_at(&buf, pos) > max_caplen {
                    // Corrupt, whether or not the file holds that many bytes.
                    let len = caplen_at(&buf, pos);
                    corrupt(name, &mut stats, base + pos, &too_long(len));
                    break;
                }
                if pos == 0 && end == buf.len() {
                    // One record fills the buffer and is still incomplete: grow, up
                    // to the cap (a record is at most a snaplen long).
                    if buf.len() >= READ_BUFFER {
                        corrupt(name, &mut stats, base, "record too large");
                        break;
                    }
                    buf.resize((buf.len() * 4).min(READ_BUFFER), 0);
                } else if pos > 0 {
                    // What is left is part of one record: move it to the front.
                    buf.copy_within(pos..end, 0);
                    end -= pos;
                    base += pos;
                    pos = 0;
                }
                let n = loop {
                    match input.read(&mut buf[end..]) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => {
                            return Err(CaptureError(format!("{name}: read error (read failed)")));
                        }
                    }
                };
                if n == 0 {
                    // A stop cuts the input short on purpose.
                    if end > pos && !stop.load(Ordering::Relaxed) {
                        stats.truncated = Some(truncated(name, &stats));
                    }
                    break;
                }
                end += n;
            }
            Err(_) => {
                corrupt(name, &mut stats, base + pos, "malformed block");
                break;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::super::{Packet, read_file};
    use super::*;
    use pcap_parser::{PcapBlockOwned, create_reader};

    /// A classic pcap file: `magic` as it is on disk, records as (sec, frac, data,
    /// origlen); the modified format has 8 more bytes per record header.
    fn file(magic: u32, big: bool, modified: bool, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let mut v = Vec::new();
        w32(&mut v, magic);
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, 1);
        for (sec, frac, data, orig) in recs {
            w32(&mut v, *sec);
            w32(&mut v, *frac);
            w32(&mut v, data.len() as u32);
            w32(&mut v, *orig);
            if modified {
                v.extend_from_slice(&[0; 8]);
            }
            v.extend_from_slice(data);
        }
        v
    }

    type Seen = Vec<(i64, i32, Vec<u8>, u32)>;

    fn fast(bytes: &[u8]) -> (Seen, SourceStats) {
        let mut seen = Vec::new();
        let stats = read_file("t", bytes, &AtomicBool::new(false), &mut |p: Packet<'_>| {
            seen.push((p.ts_ns, p.linktype, p.data.to_vec(), p.orig_len));
            Flow::Continue(())
        })
        .unwrap();
        (seen, stats)
    }

    /// What pcap-parser's own block reader makes of the same bytes.
    fn reference(bytes: &[u8]) -> Seen {
        let mut r = create_reader(1 << 20, bytes).unwrap();
        let (mut seen, mut unit, mut lt) = (Vec::new(), 1000, 0);
        loop {
            match r.next() {
                Ok((off, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            unit = if h.is_nanosecond_precision() { 1 } else { 1000 };
                            lt = h.network.0;
                        }
                        PcapBlockOwned::Legacy(b) => seen.push((
                            i64::from(b.ts_sec) * 1_000_000_000 + i64::from(b.ts_usec) * unit,
                            lt,
                            b.data.to_vec(),
                            b.origlen,
                        )),
                        PcapBlockOwned::NG(_) => unreachable!(),
                    }
                    r.consume(off);
                }
                Err(PcapError::Incomplete(_)) => r.refill().unwrap(),
                Err(_) => break,
            }
        }
        seen
    }

    #[test]
    fn every_classic_variant_reads_as_pcap_parser_reads_it() {
        let big = vec![7u8; 70_000];
        let recs: [(u32, u32, &[u8], u32); 4] = [
            (1_700_000_000, 999_999, b"abc", 3),
            (1_700_000_001, 5, b"", 60),
            (1_700_000_002, 123_456_789, &big, 70_000),
            (1_700_000_003, 1, b"x", 1500),
        ];
        // (magic written in the file's byte order, big-endian, modified format)
        let variants = [
            (0xa1b2_c3d4, false, false),
            (0xa1b2_c3d4, true, false),
            (0xa1b2_3c4d, false, false),
            (0xa1b2_3c4d, true, false),
            (0xa1b2_cd34, false, true),
        ];
        for (magic, big_endian, modified) in variants {
            let bytes = file(magic, big_endian, modified, &recs);
            let (seen, stats) = fast(&bytes);
            assert_eq!(seen.len(), 4, "{magic:x} {big_endian}");
            assert!(seen == reference(&bytes), "{magic:x} {big_endian}: differs");
            assert!(stats.truncated.is_none());
            // Cut anywhere inside the last record: the first three, and a warning.
            let (seen, stats) = fast(&bytes[..bytes.len() - 1]);
            assert_eq!(seen.len(), 3);
            assert!(stats.truncated.unwrap().contains("truncated capture"));
        }
    }

    #[test]
    fn header_arriving_in_pieces_is_read() {
        /// Hands out its bytes a few at a time, as a pipe may.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(5);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let bytes = file(0xa1b2_c3d4, false, false, &[(1, 2, &b"hello"[..], 5); 3]);
        let mut n = 0;
        let stats = read_file("t", Trickle(&bytes), &AtomicBool::new(false), &mut |p| {
            assert_eq!(p.data, b"hello");
            n += 1;
            Flow::Continue(())
        })
        .unwrap();
        assert_eq!((n, stats.packets), (3, 3));
    }
}
