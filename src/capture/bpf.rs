//! `-f` on files, as tcpdump applies its filter to `-r`: the expression is compiled
//! by libpcap for each link type met (a pcapng file may mix them) and run on every
//! packet (`pcap_offline_filter`). Also the interface list (`-D`).

use super::{CaptureError, Packet};

/// A `-f` BPF filter applied to packets read from files.
pub struct OfflineFilter {
    expr: String,
    /// One program per link type, compiled on its first packet.
    programs: Vec<(i32, pcap::BpfProgram)>,
}

fn compile(expr: &str, linktype: i32) -> Result<pcap::BpfProgram, CaptureError> {
    // Files hold LINKTYPE_ values, libpcap compiles for DLT_ ones: they differ for
    // raw IP (LINKTYPE_RAW 101 is DLT_RAW 12 on Linux) among the types net reads.
    let dlt = if linktype == 101 { 12 } else { linktype };
    let dead =
        pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| CaptureError(format!("-f: {e}")))?;
    dead.compile(expr, true).map_err(|e| {
        let e = e.to_string();
        // libpcap's message starts with its own "can't parse filter expression: ".
        CaptureError(format!("bad capture filter {expr:?}: {e}"))
    })
}

impl OfflineFilter {
    /// Checks the expression at once (against Ethernet, the common link type), so
    /// that a typo fails before anything is read.
    pub fn new(expr: &str) -> Result<OfflineFilter, CaptureError> {
        let eth = super::LINKTYPE_ETHERNET;
        let program = compile(expr, eth)?;
        Ok(OfflineFilter {
            expr: expr.to_string(),
            programs: vec![(eth, program)],
        })
    }

    /// Whether the packet passes. A link type the expression cannot apply to (`ether
    /// host` on raw IP) is an error, as it is for tcpdump.
    pub(crate) fn matches(&mut self, p: &Packet<'_>) -> Result<bool, CaptureError> {
        let i = match self.programs.iter().position(|(lt, _)| *lt == p.linktype) {
            Some(i) => i,
            None => {
                let program = compile(&self.expr, p.linktype)?;
                self.programs.push((p.linktype, program));
                self.programs.len() - 1
            }
        };
        Ok(self.programs[i].1.filter(p.data))
    }
}

/// The interfaces libpcap can capture on, numbered as `tcpdump -D` prints them:
/// `1.eth0 [Up, Running, Connected]`.
pub(crate) fn interface_list() -> Result<Vec<String>, CaptureError> {
    let devices = pcap::Device::list().map_err(|e| CaptureError(format!("-D: {e}")))?;
    Ok(devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut line = format!("{}.{}", i + 1, d.name);
            if let Some(desc) = &d.desc {
                line.push_str(&format!(" ({desc})"));
            }
            let f = &d.flags;
            let mut flags = Vec::new();
            if f.is_loopback() {
                flags.push("Loopback");
            }
            if f.is_up() {
                flags.push("Up");
            }
            if f.is_running() {
                flags.push("Running");
            }
            if f.is_wireless() {
                flags.push("Wireless");
            }
            match f.connection_status {
                pcap::ConnectionStatus::Connected => flags.push("Connected"),
                pcap::ConnectionStatus::Disconnected => flags.push("Disconnected"),
                _ => {}
            }
            if !flags.is_empty() {
                line.push_str(&format!(" [{}]", flags.join(", ")));
            }
            line
        })
        .collect())
}

/// What to add to libpcap's message when opening an interface failed.
pub(crate) fn open_hint(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("permission") || m.contains("not permitted") {
        " (capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities: \
         run with sudo, or once: sudo setcap cap_net_raw,cap_net_admin=eip $(command -v pgscope))"
    } else if m.contains("no such device") || m.contains("doesn't exist") {
        " (pgscope -D lists the interfaces)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(linktype: i32, data: &[u8]) -> Packet<'_> {
        Packet {
            ts_ns: 0,
            linktype,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn compiles_per_link_type_and_rejects_bad_expressions() {
        assert!(OfflineFilter::new("tcp port").is_err());
        let e = OfflineFilter::new("host nosuchthing..").err().unwrap().0;
        assert!(e.starts_with("bad capture filter"), "{e}");
        let mut f = OfflineFilter::new("ip").unwrap();
        // An Ethernet frame carrying IPv4, and one carrying IPv6.
        let mut v4 = vec![0u8; 14 + 20];
        v4[12..14].copy_from_slice(&[0x08, 0x00]);
        v4[14] = 0x45;
        let mut v6 = v4.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(f.matches(&packet(1, &v4)).unwrap());
        assert!(!f.matches(&packet(1, &v6)).unwrap());
        // Raw IP (101): the same expression, compiled for that type.
        assert!(f.matches(&packet(101, &v4[14..])).unwrap());
        assert_eq!(f.programs.len(), 2);
        let mut eth_only = OfflineFilter::new("ether host 01:02:03:04:05:06").unwrap();
        assert!(eth_only.matches(&packet(101, &v4[14..])).is_err());
    }

    #[test]
    fn hints_name_the_fix() {
        assert!(
            open_hint("eth0: You don't have permission to perform this capture on that device")
                .contains("CAP_NET_RAW")
        );
        assert!(open_hint("socket: Operation not permitted").contains("sudo"));
        assert!(open_hint("No such device exists").contains("-D"));
        assert_eq!(open_hint("something else"), "");
    }
}
