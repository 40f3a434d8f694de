//! Shared helpers for the end-to-end tests: deterministic pseudo-random RTP and RTCP packets
//! and key material, so every run checks the same bytes.

/// A 64-bit linear congruential generator (Knuth's MMIX constants): tiny, deterministic, and
/// plenty for picking packet shapes and bytes.
#[derive(Clone, Debug)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 32 pseudo-random bits (the high half of the state).
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u64::from(self.next_u32()) * n as u64) >> 32) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u32() as u8).collect()
    }
}

/// An RTP header extension to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    /// RFC 8285 one-byte elements (profile 0xBEDE): this many elements, zero-padded.
    OneByte(usize),
    /// RFC 8285 two-byte elements (profile 0x1000): this many elements, zero-padded.
    TwoByte(usize),
    /// An RFC 3550 extension with another profile and this many words of opaque data.
    Opaque(usize),
}

/// The shape of an RTP packet to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpShape {
    /// Number of CSRCs, 0 to 15.
    pub csrcs: usize,
    /// Header extension, if any.
    pub extension: Option<Extension>,
    /// Payload length in bytes.
    pub payload: usize,
}

impl RtpShape {
    /// A random shape: payload 0..=1400 bytes, a third of the packets with CSRCs, a third
    /// with a header extension (one-byte, two-byte or opaque).
    pub fn random(rng: &mut Lcg) -> Self {
        let csrcs = if rng.chance(1, 3) {
            rng.range(1, 15)
        } else {
            0
        };
        let extension = if rng.chance(1, 3) {
            Some(match rng.below(3) {
                0 => Extension::OneByte(rng.range(0, 4)),
                1 => Extension::TwoByte(rng.range(0, 4)),
                _ => Extension::Opaque(rng.range(0, 6)),
            })
        } else {
            None
        };
        let payload = if rng.chance(1, 20) {
            // Some edge sizes every run: empty, one byte, one AES block boundary.
            [0, 1, 15, 16, 17, 1400][rng.below(6)]
        } else {
            rng.range(0, 1400)
        };
        Self {
            csrcs,
            extension,
            payload,
        }
    }
}

/// An RTP packet (version 2, no padding) with the given shape and random contents.
pub fn rtp_packet(rng: &mut Lcg, ssrc: u32, seq: u16, ts: u32, shape: &RtpShape) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + 4 * shape.csrcs + 1500);
    let x = if shape.extension.is_some() { 0x10 } else { 0 };
    p.push(0x80 | x | shape.csrcs as u8);
    // Dynamic payload types only, so the second byte never looks like RTCP (RFC 5761).
    let marker = if rng.chance(1, 8) { 0x80 } else { 0 };
    p.push(marker | (96 + rng.below(32) as u8));
    p.extend(seq.to_be_bytes());
    p.extend(ts.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    for _ in 0..shape.csrcs {
        p.extend(rng.next_u32().to_be_bytes());
    }
    if let Some(ext) = shape.extension {
        let (profile, mut body) = match ext {
            Extension::OneByte(n) => {
                let mut body = Vec::new();
                for _ in 0..n {
                    let len = rng.range(1, 16);
                    body.push(((rng.range(1, 14) as u8) << 4) | (len - 1) as u8);
                    body.extend(rng.bytes(len));
                }
                (0xBEDE, body)
            }
            Extension::TwoByte(n) => {
                let mut body = Vec::new();
                for _ in 0..n {
                    let len = rng.range(0, 20);
                    body.push(rng.range(1, 255) as u8);
                    body.push(len as u8);
                    body.extend(rng.bytes(len));
                }
                (0x1000, body)
            }
            Extension::Opaque(words) => (0xABAC, rng.bytes(4 * words)),
        };
        while body.len() & 3 != 0 {
            body.push(0);
        }
        p.extend(u16::to_be_bytes(profile));
        p.extend(((body.len() / 4) as u16).to_be_bytes());
        p.extend(body);
    }
    p.extend(rng.bytes(shape.payload));
    p
}

/// A compound RTCP packet from `ssrc`: an SR or RR with 0 to 3 report blocks, then an SDES
/// with a CNAME, sometimes a BYE or an APP packet. All lengths are consistent.
pub fn rtcp_packet(rng: &mut Lcg, ssrc: u32) -> Vec<u8> {
    let mut p = Vec::new();
    let blocks = rng.below(4);
    let sr = rng.chance(1, 2);
    let words = 1 + if sr { 5 } else { 0 } + 6 * blocks; // after the first word
    p.push(0x80 | blocks as u8);
    p.push(if sr { 200 } else { 201 });
    p.extend((words as u16).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend(rng.bytes(4 * (words - 1)));

    // SDES: one chunk with a CNAME item, padded with zeros to a 32-bit boundary.
    let cname = rng.range(1, 40);
    let mut chunk = ssrc.to_be_bytes().to_vec();
    chunk.push(1);
    chunk.push(cname as u8);
    chunk.extend((0..cname).map(|_| b'a' + rng.below(26) as u8));
    chunk.push(0);
    while chunk.len() & 3 != 0 {
        chunk.push(0);
    }
    p.push(0x81);
    p.push(202);
    p.extend(((chunk.len() / 4) as u16).to_be_bytes());
    p.extend(chunk);

    if rng.chance(1, 4) {
        let app = rng.range(0, 8);
        p.push(0x80);
        p.push(204);
        p.extend(((2 + app) as u16).to_be_bytes());
        p.extend(ssrc.to_be_bytes());
        p.extend(*b"TEST");
        p.extend(rng.bytes(4 * app));
    }
    if rng.chance(1, 8) {
        p.extend([0x81, 203, 0, 1]);
        p.extend(ssrc.to_be_bytes());
    }
    p
}

/// The first difference between two byte strings, for assertion messages.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at byte {i} of {} / {}", a.len(), b.len()),
        None => format!("equal prefix; lengths {} / {}", a.len(), b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_well_formed() {
        let mut rng = Lcg::new(1);
        for _ in 0..200 {
            let shape = RtpShape::random(&mut rng);
            let p = rtp_packet(&mut rng, 5, 7, 9, &shape);
            let header = 12 + 4 * shape.csrcs;
            let ext = match shape.extension {
                None => 0,
                Some(_) => 4 + 4 * usize::from(u16::from_be_bytes([p[header + 2], p[header + 3]])),
            };
            assert_eq!(p.len(), header + ext + shape.payload);
            let c = rtcp_packet(&mut rng, 5);
            // Walk the compound packet by its length fields.
            let mut at = 0;
            while at < c.len() {
                assert_eq!(c[at] >> 6, 2);
                at += 4 + 4 * usize::from(u16::from_be_bytes([c[at + 2], c[at + 3]]));
            }
            assert_eq!(at, c.len());
        }
    }
}
