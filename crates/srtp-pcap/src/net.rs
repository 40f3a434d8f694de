//! The few link, IP and UDP headers a capture of RTP holds: found, and fixed after the UDP
//! payload changed length.
//!
//! Only what the tools need is parsed: Ethernet II (with up to four VLAN tags), Linux cooked
//! capture v1 and v2, and raw IP; IPv4 (not fragmented) and IPv6 (with hop-by-hop and
//! destination options headers); UDP. Anything else is reported as a [`Skip`] reason and left
//! alone. Every read is bounds-checked: no input panics.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

/// A link-layer header type this crate reads, by its pcap `LINKTYPE_` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, also what Linux captures on `lo` with.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2 (`tcpdump -i any`, `dumpcap -i any`).
    LinuxSll2,
    /// `LINKTYPE_RAW` (101): raw IPv4 or IPv6, no link header.
    Raw,
    /// `LINKTYPE_IPV4` (228): raw IPv4.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): raw IPv6.
    Ipv6,
}

impl LinkType {
    /// Every supported link type, for messages.
    pub const ALL: [LinkType; 6] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
    ];

    /// The link type for a pcap/pcapng `LINKTYPE_` value, if supported.
    pub fn from_linktype(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.linktype() == value)
    }

    /// The pcap/pcapng `LINKTYPE_` value.
    pub const fn linktype(self) -> u32 {
        match self {
            Self::Ethernet => 1,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::Raw => 101,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
        }
    }

    /// The `LINKTYPE_` name without its prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ethernet => "ETHERNET",
            Self::LinuxSll => "LINUX_SLL",
            Self::LinuxSll2 => "LINUX_SLL2",
            Self::Raw => "RAW",
            Self::Ipv4 => "IPV4",
            Self::Ipv6 => "IPV6",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.linktype())
    }
}

/// One direction of a UDP conversation: source and destination address and port (the protocol
/// of the 5-tuple is always UDP here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)
    }
}

/// Why a frame is not a UDP datagram the tools can work on. Such frames are written unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// The link layer carries something other than IPv4 or IPv6 (ARP, say).
    NotIp,
    /// IP, but not UDP (TCP, ICMP, SCTP...).
    NotUdp,
    /// An IP fragment, or an IPv6 packet with a routing or fragment header.
    Fragment,
    /// A header is cut short or its length fields do not add up.
    Malformed,
}

impl Skip {
    /// A short description for the summary.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::NotIp => "not IP",
            Self::NotUdp => "IP but not UDP",
            Self::Fragment => "IP fragments",
            Self::Malformed => "malformed headers",
        }
    }
}

/// Where the IP header of a datagram sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpHeader {
    V4 { at: usize, len: usize },
    V6 { at: usize },
}

/// A UDP datagram found in a frame: its addresses and where its headers and payload sit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDatagram {
    /// Addresses and ports.
    pub flow: Flow,
    ip: IpHeader,
    udp_at: usize,
    /// The UDP payload's position in the frame.
    pub payload: Range<usize>,
}

/// Why a datagram could not be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// The new payload does not fit in a UDP datagram or in the IP packet's length field.
    TooLong,
    /// The datagram was not parsed from this frame.
    Stale,
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => f.write_str("the new payload does not fit in a UDP datagram"),
            Self::Stale => f.write_str("the frame changed since it was parsed"),
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
const MAX_VLAN_TAGS: usize = 4;
const PROTO_UDP: u8 = 17;
const UDP_HEADER_LEN: usize = 8;
const IPV6_HEADER_LEN: usize = 40;
/// IPv6 extension headers walked over before giving up.
const MAX_IPV6_EXTENSIONS: usize = 8;

/// Finds the UDP datagram in a frame of the given link type.
///
/// # Errors
/// The [`Skip`] reason when the frame holds no UDP datagram this crate can rewrite.
pub fn parse_udp(link: LinkType, frame: &[u8]) -> Result<UdpDatagram, Skip> {
    let (ip_at, ethertype) = match link {
        LinkType::Ethernet => ethernet(frame)?,
        // Linux cooked v1 (16 bytes): packet type, ARPHRD, address length, 8 address bytes,
        // then the protocol (an Ethertype).
        LinkType::LinuxSll => vlan(frame, 16, be16(frame, 14).ok_or(Skip::Malformed)?)?,
        // Linux cooked v2 (20 bytes): the protocol first, then reserved, interface index,
        // ARPHRD, packet type, address length and 8 address bytes.
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(Skip::Malformed);
            }
            vlan(frame, 20, be16(frame, 0).ok_or(Skip::Malformed)?)?
        }
        LinkType::Raw => match frame.first().map(|b| b >> 4) {
            Some(4) => (0, ETHERTYPE_IPV4),
            Some(6) => (0, ETHERTYPE_IPV6),
            Some(_) => return Err(Skip::NotIp),
            None => return Err(Skip::Malformed),
        },
        LinkType::Ipv4 => (0, ETHERTYPE_IPV4),
        LinkType::Ipv6 => (0, ETHERTYPE_IPV6),
    };
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(frame, ip_at),
        ETHERTYPE_IPV6 => ipv6(frame, ip_at),
        _ => Err(Skip::NotIp),
    }
}

/// Replaces the datagram's payload with `payload`, then fixes the UDP length, the IP length
/// field, the IPv4 header checksum and the UDP checksum (recomputed, also where IPv4 allowed
/// zero). Bytes after the IP packet (Ethernet padding) are kept.
///
/// # Errors
/// [`RewriteError::TooLong`] when the new lengths do not fit their fields,
/// [`RewriteError::Stale`] when `udp` was not parsed from this frame; the frame is then
/// unchanged.
pub fn replace_payload(
    frame: &mut Vec<u8>,
    udp: &UdpDatagram,
    payload: &[u8],
) -> Result<(), RewriteError> {
    if frame.get(udp.payload.clone()).is_none() || udp.payload.start != udp.udp_at + UDP_HEADER_LEN
    {
        return Err(RewriteError::Stale);
    }
    let old_len = udp.payload.len();
    let new_len = payload.len();
    let new_udp_len = resize(field16(frame, udp.udp_at + 4)?, old_len, new_len)?;
    let (len_at, new_ip_len) = match udp.ip {
        IpHeader::V4 { at, .. } => (at + 2, resize(field16(frame, at + 2)?, old_len, new_len)?),
        IpHeader::V6 { at } => (at + 4, resize(field16(frame, at + 4)?, old_len, new_len)?),
    };
    frame.splice(udp.payload.clone(), payload.iter().copied());
    put16(frame, udp.udp_at + 4, new_udp_len);
    put16(frame, len_at, new_ip_len);
    if let IpHeader::V4 { at, len } = udp.ip {
        put16(frame, at + 10, 0);
        let sum = frame.get(at..at + len).map_or(0, |h| sum_bytes(0, h));
        put16(frame, at + 10, !fold(sum));
    }
    let udp_end = udp.udp_at + usize::from(new_udp_len);
    put16(frame, udp.udp_at + 6, 0);
    let mut sum = pseudo_header_sum(frame, udp.ip, new_udp_len);
    sum = frame
        .get(udp.udp_at..udp_end)
        .map_or(sum, |d| sum_bytes(sum, d));
    let mut check = !fold(sum);
    if check == 0 {
        // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
        check = 0xFFFF;
    }
    put16(frame, udp.udp_at + 6, check);
    Ok(())
}

/// Checks the UDP checksum of a datagram: `true` when it verifies or is absent (IPv4 zero).
pub fn udp_checksum_ok(frame: &[u8], udp: &UdpDatagram) -> bool {
    let Some(udp_len) = be16(frame, udp.udp_at + 4) else {
        return false;
    };
    let Some(checksum) = be16(frame, udp.udp_at + 6) else {
        return false;
    };
    if checksum == 0 && matches!(udp.ip, IpHeader::V4 { .. }) {
        return true;
    }
    let Some(bytes) = frame.get(udp.udp_at..udp.udp_at + usize::from(udp_len)) else {
        return false;
    };
    fold(sum_bytes(pseudo_header_sum(frame, udp.ip, udp_len), bytes)) == 0xFFFF
}

/// Checks the IPv4 header checksum (`true` for IPv6, which has none).
pub fn ip_checksum_ok(frame: &[u8], udp: &UdpDatagram) -> bool {
    match udp.ip {
        IpHeader::V4 { at, len } => frame
            .get(at..at + len)
            .is_some_and(|h| fold(sum_bytes(0, h)) == 0xFFFF),
        IpHeader::V6 { .. } => true,
    }
}

// ------------------------------------------------------------------ link layer

/// Ethernet II: destination (6), source (6), Ethertype (2), then VLAN tags if any.
fn ethernet(frame: &[u8]) -> Result<(usize, u16), Skip> {
    let ethertype = be16(frame, 12).ok_or(Skip::Malformed)?;
    vlan(frame, 14, ethertype)
}

/// Steps over 802.1Q / 802.1ad tags (tag control (2), Ethertype (2)) starting at `at`.
fn vlan(frame: &[u8], mut at: usize, mut ethertype: u16) -> Result<(usize, u16), Skip> {
    for _ in 0..MAX_VLAN_TAGS {
        if !ETHERTYPE_VLAN.contains(&ethertype) {
            return Ok((at, ethertype));
        }
        ethertype = be16(frame, at + 2).ok_or(Skip::Malformed)?;
        at += 4;
    }
    Err(Skip::NotIp)
}

// ------------------------------------------------------------------ IP

//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Version|  IHL  |Type of Service|          Total Length         |
// |         Identification        |Flags|      Fragment Offset    |
// |  Time to Live |    Protocol   |         Header Checksum       |
// |                       Source Address                          |
// |                    Destination Address                        |
// |                    Options (IHL > 5)                          |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  RFC 791 §3.1
fn ipv4(frame: &[u8], at: usize) -> Result<UdpDatagram, Skip> {
    let ip = frame.get(at..).ok_or(Skip::Malformed)?;
    let (&first, _) = ip.split_first().ok_or(Skip::Malformed)?;
    if first >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let header_len = usize::from(first & 0x0F) * 4;
    let total_len = usize::from(be16(ip, 2).ok_or(Skip::Malformed)?);
    if header_len < 20 || total_len < header_len || total_len > ip.len() {
        return Err(Skip::Malformed);
    }
    let fragment = be16(ip, 6).ok_or(Skip::Malformed)?;
    if fragment & 0x3FFF != 0 {
        return Err(Skip::Fragment); // more fragments, or not the first fragment
    }
    if ip[9] != PROTO_UDP {
        return Err(Skip::NotUdp);
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).map_err(|_| Skip::Malformed)?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).map_err(|_| Skip::Malformed)?);
    udp(
        frame,
        IpHeader::V4 {
            at,
            len: header_len,
        },
        IpAddr::V4(src),
        IpAddr::V4(dst),
        at + header_len,
        at + total_len,
    )
}

// |Version| Traffic Class |           Flow Label                  |
// |         Payload Length        |  Next Header  |   Hop Limit   |
// |                  Source Address (16 bytes)                    |
// |               Destination Address (16 bytes)                  |   RFC 8200 §3
fn ipv6(frame: &[u8], at: usize) -> Result<UdpDatagram, Skip> {
    let ip = frame.get(at..).ok_or(Skip::Malformed)?;
    if ip.len() < IPV6_HEADER_LEN || ip[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let payload_len = usize::from(be16(ip, 4).ok_or(Skip::Malformed)?);
    let end = IPV6_HEADER_LEN + payload_len;
    if payload_len == 0 || end > ip.len() {
        return Err(Skip::Malformed); // zero is a jumbogram (RFC 2675), not supported
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).map_err(|_| Skip::Malformed)?);
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).map_err(|_| Skip::Malformed)?);
    let mut next = ip[6];
    let mut pos = IPV6_HEADER_LEN;
    for _ in 0..MAX_IPV6_EXTENSIONS {
        match next {
            PROTO_UDP => {
                return udp(
                    frame,
                    IpHeader::V6 { at },
                    IpAddr::V6(src),
                    IpAddr::V6(dst),
                    at + pos,
                    at + end,
                );
            }
            // Hop-by-hop and destination options: next header, length in 8-byte units - 1.
            0 | 60 => {
                let len = usize::from(*ip.get(pos + 1).ok_or(Skip::Malformed)?) * 8 + 8;
                next = ip[pos];
                pos += len;
                if pos > end {
                    return Err(Skip::Malformed);
                }
            }
            // Routing (the UDP checksum would cover the final destination) and fragments.
            43 | 44 => return Err(Skip::Fragment),
            _ => return Err(Skip::NotUdp),
        }
    }
    Err(Skip::NotUdp)
}

// ------------------------------------------------------------------ UDP

// |          Source Port          |       Destination Port        |
// |            Length             |           Checksum            |   RFC 768
fn udp(
    frame: &[u8],
    ip: IpHeader,
    src: IpAddr,
    dst: IpAddr,
    at: usize,
    ip_end: usize,
) -> Result<UdpDatagram, Skip> {
    let header = frame.get(at..at + UDP_HEADER_LEN).ok_or(Skip::Malformed)?;
    let len = usize::from(be16(header, 4).ok_or(Skip::Malformed)?);
    if len < UDP_HEADER_LEN || at + len > ip_end {
        return Err(Skip::Malformed);
    }
    let src_port = be16(header, 0).ok_or(Skip::Malformed)?;
    let dst_port = be16(header, 2).ok_or(Skip::Malformed)?;
    Ok(UdpDatagram {
        flow: Flow {
            src: SocketAddr::new(src, src_port),
            dst: SocketAddr::new(dst, dst_port),
        },
        ip,
        udp_at: at,
        payload: at + UDP_HEADER_LEN..at + len,
    })
}

// ------------------------------------------------------------------ helpers

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn field16(frame: &[u8], at: usize) -> Result<u16, RewriteError> {
    // The parse already checked every field the rewrite touches; a miss means a frame that
    // changed in between, which is refused rather than indexed.
    be16(frame, at).ok_or(RewriteError::Stale)
}

/// Writes a big-endian u16 the parse has already shown to be in bounds.
fn put16(frame: &mut [u8], at: usize, value: u16) {
    if let Some(b) = frame.get_mut(at..at + 2) {
        b.copy_from_slice(&value.to_be_bytes());
    }
}

/// `field - old + new`, if it still fits a u16.
fn resize(field: u16, old: usize, new: usize) -> Result<u16, RewriteError> {
    (usize::from(field) + new)
        .checked_sub(old)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(RewriteError::TooLong)
}

/// Adds `bytes` as big-endian 16-bit words (a last odd byte padded with zero) to `sum`.
fn sum_bytes(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a one's-complement sum to 16 bits (RFC 1071).
fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// The UDP pseudo-header's sum: addresses, protocol and UDP length (RFC 768; RFC 8200 §8.1).
fn pseudo_header_sum(frame: &[u8], ip: IpHeader, udp_len: u16) -> u64 {
    let (addrs, at) = match ip {
        IpHeader::V4 { at, .. } => (8, at + 12),
        IpHeader::V6 { at } => (32, at + 8),
    };
    let mut sum = frame.get(at..at + addrs).map_or(0, |a| sum_bytes(0, a));
    sum += u64::from(PROTO_UDP) + u64::from(udp_len);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame carrying `payload`, checksums right.
    fn v4_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = 20 + 8 + payload.len();
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            17,
        ]);
        f.extend_from_slice(&[0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let udp_len = 8 + payload.len();
        f.extend_from_slice(&[
            0x13,
            0x88,
            0x13,
            0x8a,
            (udp_len >> 8) as u8,
            udp_len as u8,
            0,
            0,
        ]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn rewrite_fixes_lengths_and_checksums() {
        let mut frame = v4_frame(&[0x80; 30]);
        frame.extend_from_slice(&[0; 6]); // Ethernet padding survives the rewrite
        let udp = parse_udp(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(udp.flow.to_string(), "10.0.0.1:5000 -> 10.0.0.2:5002");
        replace_payload(&mut frame, &udp, &[0x80; 20]).unwrap();
        let again = parse_udp(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(again.payload.len(), 20);
        assert!(ip_checksum_ok(&frame, &again));
        assert!(udp_checksum_ok(&frame, &again));
        assert_eq!(frame.len(), 14 + 20 + 8 + 20 + 6);
    }

    #[test]
    fn fragments_and_short_frames_are_skipped() {
        let mut frame = v4_frame(&[0x80; 30]);
        frame[14 + 6] = 0x20; // more fragments
        assert_eq!(parse_udp(LinkType::Ethernet, &frame), Err(Skip::Fragment));
        for n in 0..34 {
            assert!(parse_udp(LinkType::Ethernet, &frame[..n]).is_err());
        }
    }

    #[test]
    fn rewrite_refuses_a_payload_beyond_64k() {
        let mut frame = v4_frame(&[0x80; 30]);
        let udp = parse_udp(LinkType::Ethernet, &frame).unwrap();
        let before = frame.clone();
        let big = vec![0u8; 70_000];
        assert_eq!(
            replace_payload(&mut frame, &udp, &big),
            Err(RewriteError::TooLong)
        );
        assert_eq!(frame, before);
    }
}
