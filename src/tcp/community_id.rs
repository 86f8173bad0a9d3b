//! Community ID v1 (https://github.com/corelight/community-id-spec): a flow hash that
//! Zeek, Suricata and Elastic share, so records can be joined across tools.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// `1:` + base64(SHA1(seed(0) ‖ lower endpoint ‖ higher endpoint ‖ proto ‖ pad ‖ ports)).
pub(crate) fn community_id(a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> String {
    // Endpoints ordered by address bytes, then port: `IpAddr`'s order within a family
    // (a flow's two ends are of one), without copying the addresses to compare them.
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    ordered_id(lo, hi, proto)
}

/// The id of endpoints already in order.
fn ordered_id(lo: (IpAddr, u16), hi: (IpAddr, u16), proto: u8) -> String {
    let mut h = Sha1::new();
    h.update(0u16.to_be_bytes());
    put_ip(&mut h, lo.0);
    put_ip(&mut h, hi.0);
    h.update([proto, 0]);
    h.update(lo.1.to_be_bytes());
    h.update(hi.1.to_be_bytes());
    let digest = h.finalize();
    // "1:" and 28 base64 characters, in one allocation.
    let mut id = String::with_capacity(30);
    id.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut id);
    id
}

fn put_ip(h: &mut Sha1, ip: IpAddr) {
    match ip {
        IpAddr::V4(v) => h.update(v.octets()),
        IpAddr::V6(v) => h.update(v.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_baseline() {
        // From the community-id-spec baseline (tcp, seed 0).
        let id = community_id(
            ("128.232.110.120".parse().unwrap(), 34855),
            ("66.35.250.204".parse().unwrap(), 80),
            6,
        );
        assert_eq!(id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let rev = community_id(
            ("66.35.250.204".parse().unwrap(), 80),
            ("128.232.110.120".parse().unwrap(), 34855),
            6,
        );
        assert_eq!(rev, id);
    }

    #[test]
    fn endpoints_are_ordered_by_address_bytes_then_port() {
        // The spec's order, as bytes: what `IpAddr`'s order must agree with.
        let bytes = |e: &(IpAddr, u16)| {
            let a = match e.0 {
                IpAddr::V4(v) => v.octets().to_vec(),
                IpAddr::V6(v) => v.octets().to_vec(),
            };
            (a, e.1)
        };
        let families: [&[&str]; 2] = [
            &[
                "127.0.0.1",
                "9.255.255.255",
                "10.0.0.2",
                "10.0.1.1",
                "255.0.0.0",
            ],
            &[
                "::1",
                "fe80::1",
                "fe80::1:0",
                "2001:db8::ff00",
                "ff02::1",
                "::",
            ],
        ];
        for addrs in families {
            let ends: Vec<(IpAddr, u16)> = (addrs.iter())
                .flat_map(|a| [(a.parse().unwrap(), 5432), (a.parse().unwrap(), 40000)])
                .collect();
            for a in &ends {
                for b in &ends {
                    let (lo, hi) = if bytes(a) <= bytes(b) { (a, b) } else { (b, a) };
                    assert_eq!(
                        community_id(*a, *b, 6),
                        ordered_id(*lo, *hi, 6),
                        "{a:?} {b:?}"
                    );
                }
            }
        }
    }
}
