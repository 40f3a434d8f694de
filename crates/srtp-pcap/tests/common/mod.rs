//! Helpers shared by the integration tests: frames built with etherparse (an independent
//! implementation of the headers and checksums), captures written and read with pcap-file.

#![allow(dead_code)] // each test binary uses a part

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{LinuxSllPacketType, PacketBuilder, SlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// The link types the tests write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    Sll,
    Sll2,
    Raw,
}

impl Link {
    pub const ALL: [Link; 4] = [Link::Ethernet, Link::Sll, Link::Sll2, Link::Raw];

    pub fn linktype(self) -> u32 {
        match self {
            Link::Ethernet => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Raw => 101,
        }
    }
}

/// The capture formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

/// A packet record: timestamp and frame (captured whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub time: Duration,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl Record {
    pub fn new(time: Duration, data: Vec<u8>) -> Self {
        let orig_len = data.len() as u32;
        Self {
            time,
            data,
            orig_len,
        }
    }
}

fn ip_step(src: IpAddr, dst: IpAddr) -> etherparse::IpHeaders {
    use etherparse::{IpHeaders, Ipv4Header, Ipv6Header};
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, s.octets(), d.octets())
                .expect("header");
            h.identification = 0x1234;
            h.dont_fragment = true;
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0xB8,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: etherparse::IpNumber::UDP,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => panic!("mixed address families"),
    }
}

/// A frame of `link` carrying a UDP datagram.
pub fn udp_frame(link: Link, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    transport_frame(link, src, dst, payload, false)
}

/// A frame of `link` carrying a TCP segment.
pub fn tcp_frame(link: Link, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    transport_frame(link, src, dst, payload, true)
}

fn transport_frame(
    link: Link,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    tcp: bool,
) -> Vec<u8> {
    let ip = ip_step(src.ip(), dst.ip());
    let mut out = Vec::new();
    macro_rules! finish {
        ($step:expr) => {{
            let step = $step.ip(ip);
            if tcp {
                step.tcp(src.port(), dst.port(), 1000, 65535)
                    .ack(1)
                    .psh()
                    .write(&mut out, payload)
                    .expect("tcp frame");
            } else {
                step.udp(src.port(), dst.port())
                    .write(&mut out, payload)
                    .expect("udp frame");
            }
        }};
    }
    match link {
        Link::Ethernet => finish!(PacketBuilder::ethernet2(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2]
        )),
        Link::Sll => finish!(PacketBuilder::linux_sll(
            LinuxSllPacketType::OUTGOING,
            6,
            [2, 0, 0, 0, 0, 1, 0, 0]
        )),
        Link::Sll2 | Link::Raw => {
            let step = PacketBuilder::ip(ip);
            if tcp {
                step.tcp(src.port(), dst.port(), 1000, 65535)
                    .ack(1)
                    .psh()
                    .write(&mut out, payload)
                    .expect("tcp packet");
            } else {
                step.udp(src.port(), dst.port())
                    .write(&mut out, payload)
                    .expect("udp packet");
            }
            if link == Link::Sll2 {
                let ethertype: u16 = if src.is_ipv4() { 0x0800 } else { 0x86DD };
                let mut h = Vec::with_capacity(20 + out.len());
                h.extend_from_slice(&ethertype.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                h.extend_from_slice(&out);
                out = h;
            }
        }
    }
    out
}

/// A non-IP frame (ARP) for the link types that carry one; `None` for raw IP.
pub fn arp_frame(link: Link) -> Option<Vec<u8>> {
    let arp = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
    ];
    let mut f = match link {
        Link::Ethernet => vec![
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
        ],
        Link::Sll => vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x06],
        Link::Sll2 => vec![
            0x08, 0x06, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ],
        Link::Raw => return None,
    };
    f.extend_from_slice(&arp);
    Some(f)
}

/// Adds an 802.1Q tag (VLAN 100) to an Ethernet frame.
pub fn vlan_tagged(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
    f.extend_from_slice(&frame[12..]);
    f
}

/// The addresses and UDP payload of a frame, checking with etherparse that the IPv4 header
/// checksum and the UDP checksum verify; `None` for frames without UDP.
pub fn udp_payload(link: Link, frame: &[u8]) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
    let sliced = match link {
        Link::Ethernet => SlicedPacket::from_ethernet(frame),
        Link::Sll => SlicedPacket::from_linux_sll(frame),
        Link::Sll2 => SlicedPacket::from_ip(frame.get(20..)?),
        Link::Raw => SlicedPacket::from_ip(frame),
    }
    .ok()?;
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return None;
    };
    let payload = udp.payload();
    let header = udp.to_header();
    let (src, dst, checksum) = match sliced.net.as_ref()? {
        etherparse::NetSlice::Ipv4(ip) => {
            let h = ip.header().to_header();
            assert_eq!(
                h.calc_header_checksum(),
                h.header_checksum,
                "IPv4 header checksum"
            );
            (
                IpAddr::from(h.source),
                IpAddr::from(h.destination),
                header.calc_checksum_ipv4(&h, payload).expect("checksum"),
            )
        }
        etherparse::NetSlice::Ipv6(ip) => {
            let h = ip.header().to_header();
            (
                IpAddr::from(h.source),
                IpAddr::from(h.destination),
                header.calc_checksum_ipv6(&h, payload).expect("checksum"),
            )
        }
        _ => return None,
    };
    assert_eq!(header.checksum, checksum, "UDP checksum");
    Some((
        SocketAddr::new(src, header.source_port),
        SocketAddr::new(dst, header.destination_port),
        payload.to_vec(),
    ))
}

/// Writes a capture. pcapng interfaces get `if_tsresol` 9 (nanoseconds), so pcap-file's
/// nanosecond timestamps are the interface's ticks.
pub fn write_capture(
    format: Format,
    link: Link,
    endianness: Endianness,
    records: &[Record],
) -> Vec<u8> {
    match format {
        Format::Pcap => {
            let header = PcapHeader {
                datalink: DataLink::from(link.linktype()),
                ts_resolution: TsResolution::NanoSecond,
                endianness,
                snaplen: 65535,
                ..PcapHeader::default()
            };
            let mut w = PcapWriter::with_header(Vec::new(), header).expect("pcap header");
            for r in records {
                w.write_packet(&PcapPacket::new(r.time, r.orig_len, &r.data))
                    .expect("pcap record");
            }
            w.into_writer()
        }
        Format::PcapNg => {
            let mut w =
                PcapNgWriter::with_endianness(Vec::new(), endianness).expect("pcapng header");
            w.write_block(&Block::InterfaceDescription(InterfaceDescriptionBlock {
                linktype: DataLink::from(link.linktype()),
                snaplen: 65535,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Borrowed("any")),
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            }))
            .expect("idb");
            for r in records {
                w.write_block(&Block::EnhancedPacket(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: r.time,
                    original_len: r.orig_len,
                    data: Cow::Borrowed(&r.data),
                    options: vec![],
                }))
                .expect("epb");
            }
            w.into_inner()
        }
    }
}

/// Reads every packet record of a capture (the interfaces of a pcapng must use `if_tsresol` 9).
pub fn read_capture(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0A, 0x0D, 0x0D, 0x0A]) {
        let mut r = PcapNgReader::new(bytes).expect("pcapng");
        while let Some(block) = r.next_block() {
            if let Block::EnhancedPacket(p) = block.expect("pcapng block") {
                out.push(Record {
                    time: p.timestamp,
                    data: p.data.to_vec(),
                    orig_len: p.original_len,
                });
            }
        }
    } else {
        let mut r = PcapReader::new(bytes).expect("pcap");
        while let Some(p) = r.next_packet() {
            let p = p.expect("pcap record");
            out.push(Record {
                time: p.timestamp,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
            });
        }
    }
    out
}

/// Compares two record lists one record at a time, with a short message on the first
/// difference (a whole capture in an assertion message is unreadable).
pub fn assert_records_eq(got: &[Record], expected: &[Record], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: number of records");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g.time, e.time, "{what}: record {i} timestamp");
        assert_eq!(g.orig_len, e.orig_len, "{what}: record {i} original length");
        if g.data != e.data {
            let at = g.data.iter().zip(&e.data).position(|(a, b)| a != b);
            panic!(
                "{what}: record {i} differs (lengths {} and {}, first difference at byte {at:?})",
                g.data.len(),
                e.data.len()
            );
        }
    }
}
