//! From a captured frame to a TCP segment or UDP datagram: link layers, IP, and tunnels.
//!
//! Link layers handled: Ethernet (with any stack of 802.1Q/802.1ad tags), Linux SLL and SLL2,
//! raw IPv4/IPv6, BSD loopback/null. `etherparse` decodes IPv4/IPv6 (extension headers included),
//! TCP and UDP. Tunnels are unwrapped so the inner flow is seen: GRE (with ERSPAN type II and III,
//! and transparent Ethernet bridging), VXLAN (UDP 4789) and Geneve (UDP 6081), to a bounded depth.
//! A frame that cannot be decoded yields a [`Skip`] reason for the summary, never an error.

use std::net::IpAddr;

use etherparse::{IpNumber, IpSlice, TcpSlice, UdpSlice};

// LINKTYPE_ values (tcpdump.org/linktypes.html).
const LINK_NULL: u32 = 0;
const LINK_ETHERNET: u32 = 1;
const LINK_RAW: u32 = 101;
const LINK_LOOP: u32 = 108;
const LINK_LINUX_SLL: u32 = 113;
const LINK_IPV4: u32 = 228;
const LINK_IPV6: u32 = 229;
const LINK_LINUX_SLL2: u32 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

const PORT_VXLAN: u16 = 4789;
const PORT_GENEVE: u16 = 6081;
/// Tunnels inside tunnels beyond this depth are not unwrapped.
const MAX_DEPTH: u8 = 4;

/// Why a frame gave no segment or datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A link type this module does not decode.
    LinkType,
    /// Not IP (ARP, LLDP, …) or an encapsulation not unwrapped.
    NotIp,
    /// An IP fragment: the ClientHello fits in unfragmented packets on every real path.
    Fragment,
    /// Neither TCP nor UDP.
    NotTcpUdp,
    /// Headers cut short or invalid.
    Malformed,
}

impl Skip {
    /// The summary label.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::LinkType => "link_type",
            Skip::NotIp => "not_ip",
            Skip::Fragment => "ip_fragment",
            Skip::NotTcpUdp => "not_tcp_udp",
            Skip::Malformed => "malformed_packet",
        }
    }
}

/// The transport part of a decoded packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp { seq: u32, syn: bool, payload: &'a [u8] },
    Udp { payload: &'a [u8] },
}

/// A decoded TCP segment or UDP datagram (innermost, when tunnelled).
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport<'a>,
}

/// Decode one frame captured with link type `link`.
pub fn decode(link: u32, frame: &[u8]) -> Result<Packet<'_>, Skip> {
    let (ethertype, rest) = match link {
        LINK_ETHERNET => ethernet(frame)?,
        LINK_NULL | LINK_LOOP => {
            let rest = frame.get(4..).ok_or(Skip::Malformed)?;
            (ip_version(rest)?, rest)
        }
        LINK_RAW | LINK_IPV4 | LINK_IPV6 => (ip_version(frame)?, frame),
        // SLL: 16-byte header, protocol at 14. SLL2: 20-byte header, protocol at 0.
        LINK_LINUX_SLL => (be16(frame, 14)?, frame.get(16..).ok_or(Skip::Malformed)?),
        LINK_LINUX_SLL2 => (be16(frame, 0)?, frame.get(20..).ok_or(Skip::Malformed)?),
        _ => return Err(Skip::LinkType),
    };
    ether_payload(ethertype, rest, 0)
}

fn be16(b: &[u8], at: usize) -> Result<u16, Skip> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(Skip::Malformed),
    }
}

/// The ethertype of a bare IP packet, from its version nibble (null/loopback's family field is
/// in the capturing host's byte order and differs between BSDs, so the packet itself decides).
fn ip_version(packet: &[u8]) -> Result<u16, Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => Ok(ETHERTYPE_IPV4),
        Some(6) => Ok(ETHERTYPE_IPV6),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Malformed),
    }
}

/// An Ethernet II header and any VLAN tags: the inner ethertype and payload.
fn ethernet(frame: &[u8]) -> Result<(u16, &[u8]), Skip> {
    let mut ethertype = be16(frame, 12)?;
    let mut at = 14;
    while matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
        ethertype = be16(frame, at + 2)?;
        at += 4;
    }
    Ok((ethertype, frame.get(at..).ok_or(Skip::Malformed)?))
}

fn ether_payload(ethertype: u16, payload: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => ip(payload, depth),
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
            ether_payload(be16(payload, 2)?, payload.get(4..).ok_or(Skip::Malformed)?, depth)
        }
        _ => Err(Skip::NotIp),
    }
}

fn inner_ethernet(frame: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    let (ethertype, rest) = ethernet(frame)?;
    ether_payload(ethertype, rest, depth)
}

fn ip(packet: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    let slice = IpSlice::from_slice(packet).map_err(|_| Skip::Malformed)?;
    let payload = slice.payload();
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    let (src, dst) = (slice.source_addr(), slice.destination_addr());
    match payload.ip_number {
        IpNumber::TCP => {
            let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| Skip::Malformed)?;
            let transport = Transport::Tcp { seq: tcp.sequence_number(), syn: tcp.syn(), payload: tcp.payload() };
            Ok(Packet { src, dst, src_port: tcp.source_port(), dst_port: tcp.destination_port(), transport })
        }
        IpNumber::UDP => {
            let udp = UdpSlice::from_slice(payload.payload).map_err(|_| Skip::Malformed)?;
            let (src_port, dst_port, data) = (udp.source_port(), udp.destination_port(), udp.payload());
            if depth < MAX_DEPTH {
                match dst_port {
                    PORT_VXLAN => return vxlan(data, depth + 1),
                    PORT_GENEVE => return geneve(data, depth + 1),
                    _ => {}
                }
            }
            Ok(Packet { src, dst, src_port, dst_port, transport: Transport::Udp { payload: data } })
        }
        IpNumber::GRE if depth < MAX_DEPTH => gre(payload.payload, depth + 1),
        IpNumber::IPV4 | IpNumber::IPV6 if depth < MAX_DEPTH => ip(payload.payload, depth + 1),
        IpNumber::GRE | IpNumber::IPV4 | IpNumber::IPV6 => Err(Skip::NotIp),
        _ => Err(Skip::NotTcpUdp),
    }
}

/// GRE (RFC 2784/2890): flags, protocol, then the optional checksum, key and sequence words.
fn gre(packet: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    let flags = be16(packet, 0)?;
    let protocol = be16(packet, 2)?;
    if flags & 0x0007 != 0 {
        // Version 1 is PPTP's enhanced GRE, which carries PPP.
        return Err(Skip::NotIp);
    }
    let optional = [0x8000u16, 0x2000, 0x1000].iter().filter(|&&bit| flags & bit != 0).count() * 4;
    let inner = packet.get(4 + optional..).ok_or(Skip::Malformed)?;
    match protocol {
        ETHERTYPE_TEB => inner_ethernet(inner, depth),
        // ERSPAN type II: an 8-byte header. Type III: 12 bytes, plus an 8-byte platform
        // subheader when its O flag (bit 0 of the last byte) is set.
        ETHERTYPE_ERSPAN_2 => inner_ethernet(inner.get(8..).ok_or(Skip::Malformed)?, depth),
        ETHERTYPE_ERSPAN_3 => {
            let o_flag = inner.get(11).ok_or(Skip::Malformed)? & 0x01 != 0;
            inner_ethernet(inner.get(if o_flag { 20 } else { 12 }..).ok_or(Skip::Malformed)?, depth)
        }
        other => ether_payload(other, inner, depth),
    }
}

/// VXLAN (RFC 7348): an 8-byte header, then an Ethernet frame.
fn vxlan(data: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    inner_ethernet(data.get(8..).ok_or(Skip::Malformed)?, depth)
}

/// Geneve (RFC 8926): 8 bytes plus options (length in 4-byte words), protocol type at byte 2.
fn geneve(data: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    let options = usize::from(data.first().ok_or(Skip::Malformed)? & 0x3f) * 4;
    let inner = data.get(8 + options..).ok_or(Skip::Malformed)?;
    match be16(data, 2)? {
        ETHERTYPE_TEB => inner_ethernet(inner, depth),
        other => ether_payload(other, inner, depth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_ipv4(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 443, 7, 1000);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn ethernet_frame(ethertype: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for &t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 1]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn expect_tcp(p: Result<Packet<'_>, Skip>) {
        let p = p.unwrap();
        assert_eq!((p.src.to_string().as_str(), p.dst_port), ("10.0.0.1", 443));
        assert!(matches!(p.transport, Transport::Tcp { seq: 7, payload: b"hi", .. }));
    }

    #[test]
    fn link_layers() {
        let ip = tcp_ipv4(b"hi");
        expect_tcp(decode(LINK_RAW, &ip));
        expect_tcp(decode(LINK_ETHERNET, &ethernet_frame(0x0800, &[], &ip)));
        expect_tcp(decode(LINK_ETHERNET, &ethernet_frame(0x0800, &[0x88a8, 0x8100], &ip)));
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        expect_tcp(decode(LINK_NULL, &null));
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        expect_tcp(decode(LINK_LINUX_SLL, &sll));
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&ip);
        expect_tcp(decode(LINK_LINUX_SLL2, &sll2));
        assert_eq!(decode(147, &ip), Err(Skip::LinkType));
        assert_eq!(decode(LINK_ETHERNET, &ethernet_frame(0x0806, &[], &[0; 28])), Err(Skip::NotIp));
        assert_eq!(decode(LINK_RAW, &ip[..30]), Err(Skip::Malformed));
        assert_eq!(decode(LINK_ETHERNET, &[0; 5]), Err(Skip::Malformed));
    }

    #[test]
    fn tunnels() {
        let inner = ethernet_frame(0x0800, &[], &tcp_ipv4(b"hi"));
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vxlan.extend_from_slice(&inner);
        let mut outer = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).udp(5555, PORT_VXLAN).write(&mut outer, &vxlan).unwrap();
        expect_tcp(decode(LINK_RAW, &outer));

        // GRE with a key, carrying ERSPAN type II.
        let mut gre = vec![0x20, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
        gre.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0]);
        gre.extend_from_slice(&inner);
        let mut outer = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).write(&mut outer, IpNumber::GRE, &gre).unwrap();
        expect_tcp(decode(LINK_RAW, &outer));

        let mut geneve = vec![0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 0, 0, 0];
        geneve.extend_from_slice(&inner);
        let mut outer = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64).udp(5555, PORT_GENEVE).write(&mut outer, &geneve).unwrap();
        expect_tcp(decode(LINK_RAW, &outer));
    }
}
