//! The streaming driver: reads a pcap or pcapng capture from any [`Read`], runs every packet
//! record through an [`Engine`] and writes the result, in the same format, to any [`Write`].
//!
//! Records the engine leaves alone are written back byte for byte (pcap records and pcapng
//! blocks are copied raw); rewritten records keep their timestamp and get the new captured and
//! original lengths. The first pcapng section header block is re-encoded (the reader consumes
//! it); later ones are copied. Encrypting raises the snapshot length of the file header (pcap)
//! or of each interface (pcapng) by [`MAX_TRAILER_LEN`], so grown packets still fit it.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::time::Duration;

use byteorder::{BigEndian, ByteOrder, LittleEndian};
use pcap_file::pcap::{PcapReader, RawPcapPacket};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::packet::PacketBlock;
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::{Block, PcapNgReader, RawBlock};
use pcap_file::{Endianness, PcapError, TsResolution};
use srtp_core::MAX_TRAILER_LEN;

use crate::engine::{Engine, Mode, Verdict};
use crate::error::{Error, Position};
use crate::net::LinkType;

/// The two capture file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// libpcap's format: one link type, one timestamp resolution.
    Pcap,
    /// pcapng: sections, interfaces, blocks.
    PcapNg,
}

/// Reads the capture in `input`, passes every packet record through `engine` and writes the
/// capture that results to `output` (give [`io::sink`] to only count). Returns the format.
///
/// # Errors
/// An [`Error`] naming the record when the input is not a capture, is cut short or holds a
/// malformed record or an unsupported link type; [`Error::Read`] or [`Error::Write`] on I/O
/// errors. What was processed before stays in `engine`'s report and in `output`.
pub fn run<R: Read, W: Write>(
    engine: &mut Engine,
    mut input: R,
    output: W,
) -> Result<Format, Error> {
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut input, &mut magic).map_err(Error::Read)?;
    let format = match (n, magic) {
        (0, _) => return Err(Error::Empty),
        (4, [0x0A, 0x0D, 0x0D, 0x0A]) => Format::PcapNg,
        (
            4,
            [0xA1, 0xB2, 0xC3, 0xD4]
            | [0xD4, 0xC3, 0xB2, 0xA1]
            | [0xA1, 0xB2, 0x3C, 0x4D]
            | [0x4D, 0x3C, 0xB2, 0xA1],
        ) => Format::Pcap,
        _ => {
            let hex: String = magic[..n].iter().map(|b| format!("{b:02x}")).collect();
            return Err(Error::NotACapture(hex));
        }
    };
    let input = (&magic[..]).chain(input);
    match format {
        Format::Pcap => pcap(engine, input, output)?,
        Format::PcapNg => pcapng(engine, input, output)?,
    }
    Ok(format)
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the input.
fn read_prefix(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

// ------------------------------------------------------------------ pcap

fn pcap<R: Read, W: Write>(engine: &mut Engine, input: R, mut out: W) -> Result<(), Error> {
    let mut reader = PcapReader::new(input).map_err(|e| read_error(e, Position::FileHeader))?;
    let header = reader.header();
    // The upper bits of the field carry FCS information (pcap-savefile §"LinkType").
    let linktype = u32::from(header.datalink) & 0xFFFF;
    let link = LinkType::from_linktype(linktype).ok_or(Error::UnsupportedLinkType {
        at: Position::FileHeader,
        link: linktype,
    })?;
    let mut out_header = header;
    if engine.mode() == Mode::Encrypt {
        out_header.snaplen = grown_snaplen(header.snaplen);
    }
    out_header.write_to(&mut out).map_err(write_error)?;
    let nanos_per_tick = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    let endianness = header.endianness;
    let mut frame_no = 0u64;
    let mut frame = Vec::new();
    while let Some(next) = reader.next_raw_packet() {
        frame_no += 1;
        let raw = next.map_err(|e| read_error(e, Position::Frame(frame_no)))?;
        let time = Duration::from_secs(raw.ts_sec.into())
            + Duration::from_nanos(u64::from(raw.ts_frac) * nanos_per_tick);
        if raw.incl_len != raw.orig_len || raw.data.len() != raw.incl_len as usize {
            engine.truncated(Some(time));
            write_pcap(&mut out, endianness, &raw)?;
            continue;
        }
        frame.clear();
        frame.extend_from_slice(&raw.data);
        match engine.process(link, Some(time), &mut frame) {
            Verdict::Keep => write_pcap(&mut out, endianness, &raw)?,
            Verdict::Rewritten => {
                let len = u32::try_from(frame.len()).map_err(|_| too_long())?;
                let new = RawPcapPacket {
                    ts_sec: raw.ts_sec,
                    ts_frac: raw.ts_frac,
                    incl_len: len,
                    orig_len: len,
                    data: Cow::Borrowed(&frame),
                };
                write_pcap(&mut out, endianness, &new)?;
            }
            Verdict::Drop => {}
        }
    }
    out.flush().map_err(Error::Write)
}

fn write_pcap<W: Write>(out: &mut W, e: Endianness, raw: &RawPcapPacket<'_>) -> Result<(), Error> {
    match e {
        Endianness::Big => raw.write_to::<_, BigEndian>(out),
        Endianness::Little => raw.write_to::<_, LittleEndian>(out),
    }
    .map(drop)
    .map_err(write_error)
}

// ------------------------------------------------------------------ pcapng

/// What a packet block needs to know about its interface.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// `if_tsresol`: bit 7 clear, 10^-n seconds per tick; set, 2^-n (default 10^-6).
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: u64,
}

impl Interface {
    fn new(idb: &InterfaceDescriptionBlock<'_>) -> Self {
        let mut iface = Self {
            linktype: u32::from(idb.linktype),
            snaplen: idb.snaplen,
            tsresol: 6,
            tsoffset: 0,
        };
        for option in &idb.options {
            match option {
                InterfaceDescriptionOption::IfTsResol(r) => iface.tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(s) => iface.tsoffset = *s,
                _ => {}
            }
        }
        iface
    }

    /// The time of a timestamp of `ticks` units, saturating rather than overflowing.
    fn time(&self, ticks: u64) -> Duration {
        let exp = u32::from(self.tsresol & 0x7F);
        let nanos: u128 = if self.tsresol & 0x80 != 0 {
            (u128::from(ticks) * 1_000_000_000)
                .checked_shr(exp)
                .unwrap_or(0)
        } else if exp <= 9 {
            u128::from(ticks) * 10u128.pow(9 - exp)
        } else {
            10u128
                .checked_pow(exp - 9)
                .map_or(0, |d| u128::from(ticks) / d)
        };
        let secs = nanos / 1_000_000_000;
        let secs = u64::try_from(secs)
            .unwrap_or(u64::MAX / 2)
            .saturating_add(self.tsoffset);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }
}

fn pcapng<R: Read, W: Write>(engine: &mut Engine, input: R, mut out: W) -> Result<(), Error> {
    let mut reader = PcapNgReader::new(input).map_err(|e| read_error(e, Position::Block(1)))?;
    let section = reader.section().clone();
    write_block(&mut out, section.endianness, &Block::SectionHeader(section))?;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut block_no = 1u64;
    let mut frame_no = 0u64;
    let mut body = Vec::new();
    while let Some(next) = reader.next_raw_block() {
        block_no += 1;
        let at = Position::Block(block_no);
        let raw = next.map_err(|e| read_error(e, at))?;
        let (type_, initial_len) = (raw.type_, raw.initial_len);
        body.clear();
        body.extend_from_slice(&raw.body);
        // The reader has taken in this block: for a section header, its byte order is current.
        let endianness = reader.section().endianness;
        match type_ {
            SECTION_HEADER_BLOCK => {
                interfaces.clear();
                write_raw(&mut out, endianness, type_, initial_len, &body)?;
            }
            INTERFACE_DESCRIPTION_BLOCK => {
                let Block::InterfaceDescription(idb) =
                    parse_block(type_, initial_len, &body, endianness, at)?
                else {
                    return Err(malformed(at, "not an interface description block"));
                };
                let iface = Interface::new(&idb);
                interfaces.push(iface);
                if engine.mode() == Mode::Encrypt && iface.snaplen != 0 {
                    put_u32(&mut body, 4, grown_snaplen(iface.snaplen), endianness);
                }
                write_raw(&mut out, endianness, type_, initial_len, &body)?;
            }
            ENHANCED_PACKET_BLOCK | SIMPLE_PACKET_BLOCK | PACKET_BLOCK => {
                frame_no += 1;
                let block = parse_block(type_, initial_len, &body, endianness, at)?;
                let packet = Packet::new(block, &interfaces, Position::Frame(frame_no))?;
                let link = LinkType::from_linktype(packet.iface.linktype & 0xFFFF).ok_or(
                    Error::UnsupportedLinkType {
                        at: Position::Frame(frame_no),
                        link: packet.iface.linktype,
                    },
                )?;
                let time = packet.ticks(endianness).map(|t| packet.iface.time(t));
                if !packet.whole() {
                    engine.truncated(time);
                    write_raw(&mut out, endianness, type_, initial_len, &body)?;
                    continue;
                }
                let mut frame = packet.data().to_vec();
                match engine.process(link, time, &mut frame) {
                    Verdict::Keep => write_raw(&mut out, endianness, type_, initial_len, &body)?,
                    Verdict::Rewritten => {
                        let block = packet.with_data(frame).map_err(|_| too_long())?;
                        write_block(&mut out, endianness, &block)?;
                    }
                    Verdict::Drop => {}
                }
            }
            _ => write_raw(&mut out, endianness, type_, initial_len, &body)?,
        }
    }
    out.flush().map_err(Error::Write)
}

/// A packet-carrying pcapng block and its interface.
struct Packet<'a> {
    block: Block<'a>,
    iface: Interface,
    /// Bytes of the packet in the block (a simple packet block's data includes its padding).
    captured: usize,
}

impl<'a> Packet<'a> {
    fn new(block: Block<'a>, interfaces: &[Interface], at: Position) -> Result<Self, Error> {
        let interface = match &block {
            Block::EnhancedPacket(b) => b.interface_id,
            Block::Packet(b) => u32::from(b.interface_id),
            _ => 0, // a simple packet block belongs to the first interface
        };
        let iface = *interfaces
            .get(interface as usize)
            .ok_or(Error::UnknownInterface {
                at,
                interface,
                count: interfaces.len(),
            })?;
        let captured = match &block {
            Block::EnhancedPacket(b) => b.data.len(),
            Block::Packet(b) => b.data.len(),
            Block::SimplePacket(b) => {
                // RFC draft-ietf-opsawg-pcapng §4.4: the captured length is the original
                // length cut to the interface's snapshot length; the rest is padding.
                let snap = if iface.snaplen == 0 {
                    u32::MAX
                } else {
                    iface.snaplen
                };
                let n = b.original_len.min(snap) as usize;
                if n > b.data.len() {
                    return Err(malformed(at, "simple packet block shorter than its packet"));
                }
                n
            }
            _ => return Err(malformed(at, "not a packet block")),
        };
        Ok(Self {
            block,
            iface,
            captured,
        })
    }

    fn data(&self) -> &[u8] {
        let data = match &self.block {
            Block::EnhancedPacket(b) => &b.data,
            Block::Packet(b) => &b.data,
            Block::SimplePacket(b) => &b.data,
            _ => return &[],
        };
        data.get(..self.captured).unwrap_or(&[])
    }

    /// Whether the whole packet was captured.
    fn whole(&self) -> bool {
        let original = match &self.block {
            Block::EnhancedPacket(b) => b.original_len,
            Block::Packet(b) => b.original_len,
            Block::SimplePacket(b) => b.original_len,
            _ => return false,
        };
        original as usize == self.captured
    }

    /// The raw timestamp in interface ticks (a simple packet block has none).
    fn ticks(&self, endianness: Endianness) -> Option<u64> {
        match &self.block {
            // pcap-file keeps the 64-bit tick count in a Duration's nanoseconds.
            Block::EnhancedPacket(b) => {
                Some(u64::try_from(b.timestamp.as_nanos()).unwrap_or(u64::MAX))
            }
            // pcap-file reads the two 32-bit halves (high first) as one u64 in the section's
            // byte order, which swaps them for little-endian files.
            Block::Packet(b) => Some(match endianness {
                Endianness::Big => b.timestamp,
                Endianness::Little => b.timestamp.rotate_left(32),
            }),
            _ => None,
        }
    }

    /// The block with `data` as its whole packet.
    fn with_data(self, data: Vec<u8>) -> Result<Block<'a>, std::num::TryFromIntError> {
        let len = u32::try_from(data.len())?;
        Ok(match self.block {
            Block::EnhancedPacket(b) => Block::EnhancedPacket(EnhancedPacketBlock {
                original_len: len,
                data: Cow::Owned(data),
                ..b
            }),
            Block::Packet(b) => Block::Packet(PacketBlock {
                captured_len: len,
                original_len: len,
                data: Cow::Owned(data),
                ..b
            }),
            Block::SimplePacket(_) => Block::SimplePacket(SimplePacketBlock {
                original_len: len,
                data: Cow::Owned(data),
            }),
            other => other,
        })
    }
}

fn parse_block<'a>(
    type_: u32,
    initial_len: u32,
    body: &'a [u8],
    e: Endianness,
    at: Position,
) -> Result<Block<'a>, Error> {
    let raw = RawBlock {
        type_,
        initial_len,
        body: Cow::Borrowed(body),
        trailer_len: initial_len,
    };
    match e {
        Endianness::Big => raw.try_into_block::<BigEndian>(),
        Endianness::Little => raw.try_into_block::<LittleEndian>(),
    }
    .map_err(|err| read_error(err, at))
}

fn write_raw<W: Write>(
    out: &mut W,
    e: Endianness,
    type_: u32,
    initial_len: u32,
    body: &[u8],
) -> Result<(), Error> {
    let raw = RawBlock {
        type_,
        initial_len,
        body: Cow::Borrowed(body),
        trailer_len: initial_len,
    };
    match e {
        Endianness::Big => raw.write_to::<BigEndian, _>(out),
        Endianness::Little => raw.write_to::<LittleEndian, _>(out),
    }
    .map(drop)
    .map_err(Error::Write)
}

fn write_block<W: Write>(out: &mut W, e: Endianness, block: &Block<'_>) -> Result<(), Error> {
    match e {
        Endianness::Big => block.write_to::<BigEndian, _>(out),
        Endianness::Little => block.write_to::<LittleEndian, _>(out),
    }
    .map(drop)
    .map_err(Error::Write)
}

fn put_u32(body: &mut [u8], at: usize, value: u32, e: Endianness) {
    if let Some(b) = body.get_mut(at..at + 4) {
        match e {
            Endianness::Big => BigEndian::write_u32(b, value),
            Endianness::Little => LittleEndian::write_u32(b, value),
        }
    }
}

// ------------------------------------------------------------------ helpers

/// The snapshot length for an encrypted capture: room for the trailer protect appends.
fn grown_snaplen(snaplen: u32) -> u32 {
    snaplen.saturating_add(MAX_TRAILER_LEN as u32)
}

fn read_error(e: PcapError, at: Position) -> Error {
    match e {
        PcapError::IncompleteBuffer => Error::Truncated(at),
        PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => Error::Truncated(at),
        PcapError::IoError(e) => Error::Read(e),
        PcapError::InvalidField(what) => malformed(at, what),
        other => malformed(at, &other.to_string()),
    }
}

fn write_error(e: PcapError) -> Error {
    match e {
        PcapError::IoError(e) => Error::Write(e),
        other => Error::Write(io::Error::other(other.to_string())),
    }
}

fn malformed(at: Position, reason: &str) -> Error {
    Error::Malformed {
        at,
        reason: reason.to_owned(),
    }
}

fn too_long() -> Error {
    Error::Write(io::Error::other("a rewritten packet is longer than 4 GiB"))
}
