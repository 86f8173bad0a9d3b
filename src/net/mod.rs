//! Link, IP and TCP headers: a frame becomes a [`Segment`] or nothing.
//!
//! Header parsing is etherparse's (zero copy, lax: tolerant of frames cut by the
//! snaplen); this module only maps capture link types onto it.

use etherparse::{
    EtherType, Ethernet2Slice, IpNumber, Ipv4HeaderSlice, LaxIpSlice, LaxNetSlice, LaxSlicedPacket,
    TcpSlice, TransportSlice,
};
use std::net::IpAddr;

use crate::capture::{
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, LINKTYPE_RAW_OLD1, LINKTYPE_RAW_OLD2,
};

/// TCP FIN flag.
pub const FLAG_FIN: u8 = 0x01;
/// TCP SYN flag.
pub const FLAG_SYN: u8 = 0x02;
pub(crate) const FLAG_RST: u8 = 0x04;
/// TCP ACK flag.
pub const FLAG_ACK: u8 = 0x10;

/// A TCP segment, borrowing its payload from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// TCP flags (`FLAG_*`).
    pub flags: u8,
    /// The captured TCP payload.
    pub payload: &'a [u8],
    /// Payload bytes the snaplen cut off (they follow `payload` in sequence space).
    pub missing: u32,
}

impl Segment<'_> {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Whether [`parse`] knows the link type: frames of any other are skipped, and the
/// capture loop reports them.
pub(crate) fn supported(linktype: i32) -> bool {
    matches!(
        linktype,
        LINKTYPE_ETHERNET
            | LINKTYPE_RAW
            | LINKTYPE_RAW_OLD1
            | LINKTYPE_RAW_OLD2
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_NULL
            | LINKTYPE_LOOP
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_LINUX_SLL2
    )
}

/// Decodes a frame of the given link type down to TCP. Anything else (ARP, UDP,
/// fragments, unknown link types, broken headers) gives `None`.
///
/// IP straight after the link header (nearly every frame) goes through etherparse's
/// IP and TCP slices alone; VLAN tags and other link extensions take its full packet
/// slicer, whose large result costs more to build than the rest of the parse.
pub fn parse(linktype: i32, frame: &[u8], orig_len: u32) -> Option<Segment<'_>> {
    let (ether_type, rest) = match linktype {
        LINKTYPE_ETHERNET => {
            let eth = Ethernet2Slice::from_slice_without_fcs(frame).ok()?;
            (eth.ether_type(), eth.payload_slice())
        }
        LINKTYPE_RAW | LINKTYPE_RAW_OLD1 | LINKTYPE_RAW_OLD2 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            return from_ip(frame, frame.len(), orig_len);
        }
        // BSD loopback: a 4-byte address family (host or network order); the IP
        // version nibble tells the family just as well.
        LINKTYPE_NULL | LINKTYPE_LOOP => return from_ip(frame.get(4..)?, frame.len(), orig_len),
        LINKTYPE_LINUX_SLL => {
            let proto = u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]);
            (EtherType(proto), frame.get(16..)?)
        }
        LINKTYPE_LINUX_SLL2 => {
            let proto = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            (EtherType(proto), frame.get(20..)?)
        }
        _ => return None,
    };
    match ether_type {
        EtherType::IPV4 | EtherType::IPV6 => from_ip(rest, frame.len(), orig_len),
        _ => from_sliced(
            LaxSlicedPacket::from_ether_type(ether_type, rest),
            frame.len(),
            orig_len,
        ),
    }
}

/// The TCP segment in an IP packet (`captured` is the whole frame's captured length).
/// Plain IPv4, the usual case, goes through etherparse's header slice alone: half
/// the work of its lax IP slicer. Other packets go to that slicer: not IPv4, or
/// lengths that need its rules (a zero total length from segmentation offload, a
/// total length shorter than the header). The choice is made here, not by a nested
/// `Option` returned from the IPv4 path, which cost a copy of the segment per packet.
fn from_ip(ip: &[u8], captured: usize, orig_len: u32) -> Option<Segment<'_>> {
    match plain_ipv4(ip) {
        Some(h) => from_ipv4(&h, ip, captured, orig_len),
        None => from_ip_lax(ip, captured, orig_len),
    }
}

/// The IPv4 header heading `ip` if `from_ipv4` can take the packet.
fn plain_ipv4(ip: &[u8]) -> Option<Ipv4HeaderSlice<'_>> {
    let h = Ipv4HeaderSlice::from_slice(ip).ok()?;
    (usize::from(h.total_len()) >= h.slice().len()).then_some(h)
}

/// The TCP segment of a plain IPv4 packet whose header `h` heads `ip`.
fn from_ipv4<'a>(
    h: &Ipv4HeaderSlice<'_>,
    ip: &'a [u8],
    captured: usize,
    orig_len: u32,
) -> Option<Segment<'a>> {
    let (header, total) = (h.slice().len(), usize::from(h.total_len()));
    if h.protocol() != IpNumber::TCP || h.is_fragmenting_payload() {
        return None;
    }
    // Ethernet padding past the total length is not payload; a snaplen may cut it.
    let tcp = TcpSlice::from_slice(&ip[header..total.min(ip.len())]).ok()?;
    segment(
        IpAddr::V4(h.source_addr()),
        IpAddr::V4(h.destination_addr()),
        &tcp,
        missing(total > ip.len(), captured, orig_len),
    )
}

/// The general path (IPv6 and its extension headers, unusual IPv4 lengths).
fn from_ip_lax(ip: &[u8], captured: usize, orig_len: u32) -> Option<Segment<'_>> {
    let (ip, None) = LaxIpSlice::from_slice(ip).ok()? else {
        return None; // broken IPv6 extension headers
    };
    let payload = ip.payload();
    if payload.ip_number != IpNumber::TCP || payload.fragmented {
        return None;
    }
    let tcp = TcpSlice::from_slice(payload.payload).ok()?;
    segment(
        ip.source_addr(),
        ip.destination_addr(),
        &tcp,
        missing(payload.incomplete, captured, orig_len),
    )
}

/// The TCP segment of a packet sliced whole (after VLAN tags and the like).
fn from_sliced(pkt: LaxSlicedPacket<'_>, captured: usize, orig_len: u32) -> Option<Segment<'_>> {
    let (src, dst, incomplete) = match &pkt.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                ip.payload().incomplete,
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                ip.payload().incomplete,
            )
        }
        _ => return None,
    };
    let Some(TransportSlice::Tcp(tcp)) = &pkt.transport else {
        return None;
    };
    segment(src, dst, tcp, missing(incomplete, captured, orig_len))
}

/// Payload bytes the snaplen cut off.
fn missing(incomplete: bool, captured: usize, orig_len: u32) -> u32 {
    if incomplete {
        orig_len.saturating_sub(captured as u32)
    } else {
        0
    }
}

fn segment<'a>(src: IpAddr, dst: IpAddr, tcp: &TcpSlice<'a>, missing: u32) -> Option<Segment<'a>> {
    let bit = |on: bool, flag: u8| if on { flag } else { 0 };
    let flags = bit(tcp.fin(), FLAG_FIN)
        | bit(tcp.syn(), FLAG_SYN)
        | bit(tcp.rst(), FLAG_RST)
        | bit(tcp.ack(), FLAG_ACK);
    Some(Segment {
        src,
        dst,
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags,
        payload: tcp.payload(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 5432, 1000, 65535)
            .ack(77)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn tcp_v6(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6([0; 16], [1; 16], 64)
            .tcp(5432, 40000, 9, 100)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn with_prefix(prefix: &[u8], ip: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.extend_from_slice(ip);
        v
    }

    #[test]
    fn ipv4_fast_path_agrees_with_the_lax_slicer() {
        let base = tcp_v4(b"Qselect 1");
        let mut variants: Vec<Vec<u8>> = vec![base.clone()];
        // Ethernet padding after the packet.
        variants.push([&base[..], &[0u8; 6]].concat());
        // Fragments: more-fragments flag, then an offset.
        let mut mf = base.clone();
        mf[6] |= 0x20;
        variants.push(mf);
        let mut off = base.clone();
        off[7] = 1;
        variants.push(off);
        // Total length 0 (segmentation offload), shorter than the header, and short
        // of the TCP header.
        for total in [0u16, 10, 30] {
            let mut v = base.clone();
            v[2..4].copy_from_slice(&total.to_be_bytes());
            variants.push(v);
        }
        // Four bytes of IP options (NOPs).
        let mut opts = base[..20].to_vec();
        opts[0] = 0x46;
        opts[2..4].copy_from_slice(&((base.len() + 4) as u16).to_be_bytes());
        opts.extend_from_slice(&[1, 1, 1, 1]);
        opts.extend_from_slice(&base[20..]);
        variants.push(opts);
        // Not TCP.
        let mut udp = base.clone();
        udp[9] = 17;
        variants.push(udp);
        for v in &variants {
            // Whole, and cut by a snaplen anywhere.
            for cut in 0..=v.len() {
                let ip = &v[..cut];
                let orig = v.len() as u32;
                let lax = from_ip_lax(ip, ip.len(), orig);
                if let Some(h) = plain_ipv4(ip) {
                    let fast = from_ipv4(&h, ip, ip.len(), orig);
                    assert_eq!(fast, lax, "{v:02x?} cut at {cut}");
                }
            }
        }
        let h = plain_ipv4(&base).unwrap();
        assert!(from_ipv4(&h, &base, base.len(), base.len() as u32).is_some());
        assert!(from_ip(&base, base.len(), base.len() as u32).is_some());
    }

    #[test]
    fn every_link_type_reaches_tcp() {
        let ip = tcp_v4(b"Qabc");
        let eth = with_prefix(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00], &ip);
        let vlan = with_prefix(
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x81, 0x00, 0, 5, 0x08, 0x00,
            ],
            &ip,
        );
        let qinq = with_prefix(
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08,
                0x00,
            ],
            &ip,
        );
        let null = with_prefix(&[2, 0, 0, 0], &ip);
        let mut sll_hdr = [0u8; 16];
        sll_hdr[14] = 0x08;
        let sll = with_prefix(&sll_hdr, &ip);
        let mut sll2_hdr = [0u8; 20];
        sll2_hdr[0] = 0x08;
        let sll2 = with_prefix(&sll2_hdr, &ip);
        let cases: [(i32, &[u8]); 8] = [
            (LINKTYPE_RAW, &ip),
            (LINKTYPE_IPV4, &ip),
            (LINKTYPE_ETHERNET, &eth),
            (LINKTYPE_ETHERNET, &vlan),
            (LINKTYPE_ETHERNET, &qinq),
            (LINKTYPE_NULL, &null),
            (LINKTYPE_LINUX_SLL, &sll),
            (LINKTYPE_LINUX_SLL2, &sll2),
        ];
        for (lt, frame) in cases {
            assert!(supported(lt), "linktype {lt}");
            let s = parse(lt, frame, frame.len() as u32).unwrap_or_else(|| panic!("linktype {lt}"));
            assert_eq!(s.payload, b"Qabc", "linktype {lt}");
            assert_eq!((s.sport, s.dport, s.seq, s.ack), (40000, 5432, 1000, 77));
            assert!(s.has(FLAG_ACK) && !s.has(FLAG_SYN));
            assert_eq!(s.src, IpAddr::from([10, 0, 0, 1]));
            assert_eq!(s.missing, 0);
        }
    }

    /// `supported` says exactly which link types `parse` reads: every frame shape of
    /// the test above under any other link type gives nothing.
    #[test]
    fn unsupported_link_types_parse_nothing() {
        let ip = tcp_v4(b"Qabc");
        let eth = with_prefix(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00], &ip);
        let null = with_prefix(&[2, 0, 0, 0], &ip);
        for lt in (0..400).filter(|&lt| !supported(lt)) {
            for frame in [&ip, &eth, &null] {
                assert!(parse(lt, frame, frame.len() as u32).is_none(), "{lt}");
            }
        }
    }

    #[test]
    fn ipv6_and_flags() {
        let ip = tcp_v6(b"");
        let s = parse(LINKTYPE_RAW, &ip, ip.len() as u32).unwrap();
        assert!(s.has(FLAG_SYN));
        assert_eq!(s.dst, IpAddr::from([1u8; 16]));
        assert_eq!(s.payload, b"");
    }

    #[test]
    fn snaplen_cut_reports_missing_bytes() {
        let ip = tcp_v4(&[b'x'; 100]);
        let cut = &ip[..ip.len() - 30];
        let s = parse(LINKTYPE_RAW, cut, ip.len() as u32).unwrap();
        assert_eq!(s.payload.len(), 70);
        assert_eq!(s.missing, 30);
    }

    #[test]
    fn garbage_and_other_protocols_are_none() {
        assert!(parse(LINKTYPE_ETHERNET, &[0u8; 10], 10).is_none());
        assert!(parse(LINKTYPE_RAW, b"hello world, not ip", 19).is_none());
        assert!(parse(999, &tcp_v4(b""), 40).is_none());
        let udp = {
            let mut out = Vec::new();
            PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 5)
                .udp(1, 5432)
                .write(&mut out, b"x")
                .unwrap();
            out
        };
        assert!(parse(LINKTYPE_RAW, &udp, udp.len() as u32).is_none());
        let ip = tcp_v4(b"abc");
        for cut in 0..40 {
            assert!(parse(LINKTYPE_RAW, &ip[..cut], ip.len() as u32).is_none());
        }
    }
}
