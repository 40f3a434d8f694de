//! The RTCP the relay reads, rewrites and writes: the sequence numbers named in what it
//! forwards, moved back into the numbering of the stream's sender; the sender's CNAME; and
//! the relay's own compound report.
//!
//! A bridge or transcrypt call re-protects what it forwards, and when a sender restarts its
//! sequence numbers (a PBX on hold and resume) the relay re-bases the stream so that no index
//! is used twice under one key (srtp-core's `Policy::sequence_continuity`). The receiver then
//! reports on numbers the sender never used, so before its RTCP goes upstream the numbers it
//! names are moved back by the stream's offset, in place:
//!
//! - the extended highest sequence number received of each report block of a sender or
//!   receiver report (RFC 3550 §6.4.1, §6.4.2), the borrow carried into its cycle count;
//! - the packet id (PID) of each entry of a generic NACK (RFC 4585 §6.2.1); its bitmask of
//!   following lost packets is relative to the PID and stays as it is.
//!
//! Everything else (SDES, BYE, APP, extended reports, other feedback) passes unchanged. The
//! walk follows the length fields of the compound packet (RFC 3550 §6.1) and stops at the
//! first that does not fit: what follows is forwarded as it came, never read out of bounds.

/// Sender report (RFC 3550 §6.4.1).
const SR: u8 = 200;
/// Receiver report (RFC 3550 §6.4.2).
const RR: u8 = 201;
/// Transport-layer feedback (RFC 4585 §6.2); format 1 is the generic NACK.
const RTPFB: u8 = 205;
const GENERIC_NACK: u8 = 1;
/// A report block: SSRC, loss, extended highest sequence number, jitter, LSR, DLSR.
const REPORT_BLOCK: usize = 24;

/// Source description (RFC 3550 §6.5).
const SDES: u8 = 202;
/// The CNAME item of an SDES chunk.
const CNAME: u8 = 1;

/// The SSRC and CNAME of the first chunk of the first SDES packet in `compound`, if that
/// chunk has a CNAME item (RFC 3550 §6.5.1: the sender's own, in every compound packet).
pub(super) fn cname(compound: &[u8]) -> Option<(u32, &[u8])> {
    let mut at = 0;
    while let Some(header) = compound.get(at..at + 4) {
        if header[0] >> 6 != 2 {
            return None;
        }
        let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let packet = compound.get(at..at + len)?;
        if header[1] == SDES && header[0] & 0x1f > 0 {
            let ssrc = packet.get(4..8).map(|_| word(packet, 4))?;
            let mut item = 8;
            while let (Some(&kind), Some(&n)) = (packet.get(item), packet.get(item + 1)) {
                let text = packet.get(item + 2..item + 2 + usize::from(n))?;
                match kind {
                    0 => return None,
                    CNAME => return Some((ssrc, text)),
                    _ => item += 2 + usize::from(n),
                }
            }
            return None;
        }
        at += len;
    }
    None
}

/// The relay's compound RTCP from `ssrc`: an empty receiver report, then one SDES chunk
/// naming `ssrc` with the CNAME `cname` (at most 255 bytes are used), the end item and the
/// padding to the word (RFC 3550 §6.5).
pub(super) fn own_report(ssrc: u32, cname: &[u8]) -> Vec<u8> {
    let cname = &cname[..cname.len().min(255)];
    let mut p = Vec::with_capacity(8 + 12 + cname.len() + super::TAIL_ROOM);
    p.extend([0x80, RR, 0, 1]);
    p.extend(ssrc.to_be_bytes());
    // SDES header, SSRC, CNAME item (type 1, length, text), end item, padding.
    let chunk = 4 + 2 + cname.len() + 1;
    let words = chunk.div_ceil(4);
    p.extend([0x81, SDES]);
    p.extend((words as u16).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend([CNAME, cname.len() as u8]);
    p.extend(cname);
    p.resize(8 + 4 + 4 * words, 0);
    p
}

/// Moves the sequence numbers `compound` names back by `offset(ssrc)` for the SSRC each
/// refers to (the offset the relay adds to that stream toward this receiver; zero leaves a
/// field untouched).
pub(super) fn translate(compound: &mut [u8], offset: impl Fn(u32) -> u16) {
    let mut at = 0;
    while let Some(header) = compound.get(at..at + 4) {
        if header[0] >> 6 != 2 {
            return;
        }
        let count = usize::from(header[0] & 0x1f);
        let pt = header[1];
        let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let Some(packet) = compound.get_mut(at..at + len) else {
            return;
        };
        match pt {
            SR => report_blocks(packet, 28, count, &offset),
            RR => report_blocks(packet, 8, count, &offset),
            RTPFB if count == usize::from(GENERIC_NACK) => nack(packet, &offset),
            _ => {}
        }
        at += len;
    }
}

/// The `count` report blocks of `packet` from byte `first` (as many as it holds).
fn report_blocks(packet: &mut [u8], first: usize, count: usize, offset: &impl Fn(u32) -> u16) {
    let Some(blocks) = packet.get_mut(first..) else {
        return;
    };
    for block in blocks.chunks_exact_mut(REPORT_BLOCK).take(count) {
        let delta = offset(word(block, 0));
        if delta != 0 {
            let highest = word(block, 8).wrapping_sub(u32::from(delta));
            block[8..12].copy_from_slice(&highest.to_be_bytes());
        }
    }
}

/// The entries of a generic NACK: header, sender SSRC, media SSRC, then PID and BLP pairs.
fn nack(packet: &mut [u8], offset: &impl Fn(u32) -> u16) {
    if packet.len() < 12 {
        return;
    }
    let delta = offset(word(packet, 8));
    if delta == 0 {
        return;
    }
    for entry in packet[12..].chunks_exact_mut(4) {
        let pid = u16::from_be_bytes([entry[0], entry[1]]).wrapping_sub(delta);
        entry[..2].copy_from_slice(&pid.to_be_bytes());
    }
}

/// The big-endian word at `at` (the callers check that it is there).
fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOVED: u32 = 0x0b0b_0b0b;
    const OTHER: u32 = 0x0c0c_0c0c;

    fn offset(ssrc: u32) -> u16 {
        if ssrc == MOVED {
            10_000
        } else {
            0
        }
    }

    fn block(ssrc: u32, highest: u32) -> Vec<u8> {
        let mut b = ssrc.to_be_bytes().to_vec();
        b.extend([0x01, 0, 0, 7]); // fraction lost, cumulative lost
        b.extend(highest.to_be_bytes());
        b.extend([0xaa; 12]); // jitter, LSR, DLSR
        b
    }

    fn rr(blocks: &[Vec<u8>]) -> Vec<u8> {
        let words = 1 + blocks.len() * 6;
        let mut p = vec![0x80 | blocks.len() as u8, RR, 0, words as u8];
        p.extend(0x5151_5151u32.to_be_bytes());
        blocks.iter().for_each(|b| p.extend(b));
        p
    }

    fn sr(blocks: &[Vec<u8>]) -> Vec<u8> {
        let words = 6 + blocks.len() * 6;
        let mut p = vec![0x80 | blocks.len() as u8, SR, 0, words as u8];
        p.extend(0x5252_5252u32.to_be_bytes());
        p.extend([0x77; 20]); // NTP and RTP timestamps, packet and octet counts
        blocks.iter().for_each(|b| p.extend(b));
        p
    }

    fn nack_for(ssrc: u32, pids: &[u16]) -> Vec<u8> {
        let mut p = vec![0x80 | GENERIC_NACK, RTPFB, 0, 2 + pids.len() as u8];
        p.extend(0x5151_5151u32.to_be_bytes());
        p.extend(ssrc.to_be_bytes());
        for pid in pids {
            p.extend(pid.to_be_bytes());
            p.extend([0x00, 0x05]); // BLP: two more lost after the PID
        }
        p
    }

    #[test]
    fn moves_report_blocks_of_re_based_streams_only() {
        let mut p = rr(&[block(OTHER, 0x0001_2345), block(MOVED, 0x0001_2345)]);
        let before = p.clone();
        translate(&mut p, offset);
        // 0x2345 - 10000 borrows from the cycle count.
        assert_eq!(
            p[8..32],
            before[8..32],
            "the other stream's block is untouched"
        );
        assert_eq!(word(&p, 32 + 8), 0x0001_2345 - 10_000);
        assert_eq!(
            word(&p, 32 + 8) >> 16,
            0,
            "the borrow reached the cycle count"
        );
        assert_eq!(p[32..40], before[32..40]);
        assert_eq!(p[44..], before[44..]);
    }

    #[test]
    fn moves_sender_report_blocks_and_nack_ids_in_a_compound_packet() {
        let mut p = sr(&[block(MOVED, 30_000)]);
        p.extend(nack_for(MOVED, &[30_001, 5]));
        p.extend(nack_for(OTHER, &[30_001]));
        p.extend([0x81, 202, 0, 1, 1, 2, 3, 4]); // an SDES chunk's start, passed over
        let before = p.clone();
        translate(&mut p, offset);
        assert_eq!(p[..28], before[..28], "the sender info is untouched");
        assert_eq!(word(&p, 28 + 8), 20_000);
        let n = 52; // the first NACK
        assert_eq!(u16::from_be_bytes([p[n + 12], p[n + 13]]), 20_001);
        assert_eq!(
            u16::from_be_bytes([p[n + 16], p[n + 17]]),
            5u16.wrapping_sub(10_000)
        );
        assert_eq!(
            p[n + 14..n + 16],
            [0, 5],
            "the bitmask is relative: unchanged"
        );
        assert_eq!(
            p[n + 20..],
            before[n + 20..],
            "the other stream's NACK and SDES"
        );
    }

    #[test]
    fn stops_at_a_length_that_does_not_fit() {
        let mut p = rr(&[block(MOVED, 50_000)]);
        p[3] += 1; // one word longer than the packet
        let before = p.clone();
        translate(&mut p, offset);
        assert_eq!(p, before);
        // A report count larger than the blocks present rewrites the blocks there are.
        let mut p = rr(&[block(MOVED, 50_000)]);
        p[0] = 0x80 | 31;
        translate(&mut p, offset);
        assert_eq!(word(&p, 8 + 8), 40_000);
    }

    #[test]
    fn finds_the_first_chunks_cname() {
        let mut p = rr(&[]);
        // SDES: one chunk, SSRC, a NAME item, then the CNAME, the end item, padding.
        p.extend([0x81, SDES, 0, 5, 0, 0, 0, 0x0b]);
        p.extend([2, 3, b'B', b'o', b'b', CNAME, 5]);
        p.extend(b"gw@gw");
        p.extend([0, 0, 0, 0]);
        assert_eq!(cname(&p), Some((0x0b, &b"gw@gw"[..])));
        // No CNAME before the end item; a length past the packet; not RTCP at all.
        assert_eq!(cname(&[0x81, SDES, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]), None);
        assert_eq!(
            cname(&[0x81, SDES, 0, 2, 0, 0, 0, 1, CNAME, 9, b'x', 0]),
            None
        );
        assert_eq!(cname(&[0x00, SDES, 0, 0]), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..200 {
            for _ in 0..50 {
                let mut p: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                if let Some(b) = p.first_mut() {
                    *b = 0x80 | (*b & 0x3f); // version 2, so the walk goes on
                }
                if let (Some(hi), Some(lo)) = (p.get(2), p.get(3)) {
                    // Mostly short lengths, so that several packets are walked.
                    let (hi, lo) = (hi & 0x01, lo & 0x0f);
                    p[2] = hi;
                    p[3] = lo;
                }
                translate(&mut p, |_| 1);
                let _ = cname(&p);
            }
        }
    }
}
