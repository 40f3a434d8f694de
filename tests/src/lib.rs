//! Shared helpers for the end-to-end tests: deterministic pseudo-random RTP and RTCP packets
//! and key material, so every run checks the same bytes; and the srtp-core side of the
//! interoperability checks, with the verdicts both peers' tests share.

use core::fmt::Debug;

use srtp_core::{Error, Profile, Session, MAX_TRAILER_LEN};

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

/// Key material (master key || master salt) for `profile`, the same for the same `seed`.
pub fn key_material(profile: Profile, seed: u64) -> Vec<u8> {
    Lcg::new(seed ^ profile.key_material_len() as u64).bytes(profile.key_material_len())
}

/// RTP packets from two SSRCs taking random turns. The first SSRC's sequence numbers start 40
/// before 65535, so it rolls over early; sequence numbers sometimes skip one.
#[derive(Clone, Debug)]
pub struct RtpStreams {
    /// The generator behind the packets, free for other choices between them.
    pub rng: Lcg,
    /// The two SSRCs; the first is 0x12345678.
    pub ssrcs: [u32; 2],
    seqs: [u16; 2],
    ts: [u32; 2],
}

impl RtpStreams {
    /// The streams seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Lcg::new(seed);
        let ssrcs = [0x1234_5678u32, rng.next_u32()];
        let seqs = [65_535 - 40u16, rng.next_u32() as u16];
        let ts = [0u32, rng.next_u32()];
        Self {
            rng,
            ssrcs,
            seqs,
            ts,
        }
    }

    /// The next packet of one of the streams, of a random shape.
    pub fn next_packet(&mut self) -> Vec<u8> {
        let rng = &mut self.rng;
        let s = rng.below(2);
        self.seqs[s] = self.seqs[s].wrapping_add(if rng.chance(1, 10) { 2 } else { 1 });
        self.ts[s] = self.ts[s].wrapping_add(960);
        let shape = RtpShape::random(rng);
        rtp_packet(rng, self.ssrcs[s], self.seqs[s], self.ts[s], &shape)
    }
}

/// Delivery that sometimes swaps two packets: it holds one back and delivers it after the next.
#[derive(Clone, Debug)]
pub struct Reorder<T> {
    held: Option<T>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Self { held: None }
    }
}

impl<T> Reorder<T> {
    /// What to deliver now that `item` has been sent: nothing when `item` is held back (one
    /// time in eight, when nothing is held yet and `more` packets follow), else `item` and then
    /// the one held back, if any.
    pub fn deliver(&mut self, rng: &mut Lcg, item: T, more: bool) -> impl Iterator<Item = T> {
        if self.held.is_none() && rng.chance(1, 8) && more {
            self.held = Some(item);
            None.into_iter().chain(None)
        } else {
            Some(item).into_iter().chain(self.held.take())
        }
    }
}

/// srtp-core protects the RTP packet `plain`; panics on error.
pub fn core_protect_rtp(s: &mut Session, plain: &[u8]) -> Vec<u8> {
    core_protect(plain, "srtp-core protect_rtp", |buf, len| {
        s.protect_rtp(buf, len)
    })
}

/// srtp-core protects the RTCP packet `plain`; panics on error.
pub fn core_protect_rtcp(s: &mut Session, plain: &[u8]) -> Vec<u8> {
    core_protect(plain, "srtp-core protect_rtcp", |buf, len| {
        s.protect_rtcp(buf, len)
    })
}

/// srtp-core unprotects the SRTP packet `packet`.
pub fn core_unprotect_rtp(s: &mut Session, packet: &[u8]) -> Result<Vec<u8>, Error> {
    core_unprotect(packet, |buf| Ok(s.unprotect_rtp(buf)?.len()))
}

/// srtp-core unprotects the SRTCP packet `packet`.
pub fn core_unprotect_rtcp(s: &mut Session, packet: &[u8]) -> Result<Vec<u8>, Error> {
    core_unprotect(packet, |buf| Ok(s.unprotect_rtcp(buf)?.len()))
}

/// Runs `protect` (buffer, packet length; protected length) on a copy of `plain` with room for
/// any trailer; panics with `what` on error.
fn core_protect(
    plain: &[u8],
    what: &str,
    protect: impl FnOnce(&mut [u8], usize) -> Result<usize, Error>,
) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + MAX_TRAILER_LEN, 0);
    let n = protect(&mut buf, plain.len()).expect(what);
    buf.truncate(n);
    buf
}

/// Runs `unprotect` (packet; plain length) on a copy of `packet`.
fn core_unprotect(
    packet: &[u8],
    unprotect: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    let n = unprotect(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// How an unprotect went, for assertion messages: `ok`, wrong plaintext, or the error.
pub fn verdict<E: Debug>(r: &Result<Vec<u8>, E>, plain: &[u8]) -> String {
    match r {
        Ok(p) if p == plain => "ok".into(),
        Ok(p) => format!("WRONG PLAINTEXT ({})", first_difference(p, plain)),
        Err(e) => format!("{e:?}"),
    }
}

/// One packet's outcome both ways between srtp-core and the implementation called `peer`:
/// `core` and `theirs` are the two protected forms of `plain`, `peer_got` what the peer
/// unprotected from `core`, `core_got` what srtp-core unprotected from `theirs`. Panics with
/// everything known unless the protected forms are identical and both unprotects give `plain`.
#[allow(clippy::too_many_arguments)]
pub fn judge<E1: Debug, E2: Debug>(
    peer: &str,
    what: &str,
    profile: Profile,
    i: usize,
    plain: &[u8],
    core: &[u8],
    theirs: &[u8],
    peer_got: Result<Vec<u8>, E1>,
    core_got: Result<Vec<u8>, E2>,
) {
    let same = core == theirs;
    let peer_ok = peer_got.as_ref().is_ok_and(|p| p == plain);
    let core_ok = core_got.as_ref().is_ok_and(|p| p == plain);
    let w = peer.len().max("srtp-core".len()) + 1;
    assert!(
        same && peer_ok && core_ok,
        "{profile} {what} #{i}: identical: {same} ({diff}); {peer} unprotects srtp-core's: \
         {peer_v}; srtp-core unprotects {peer}'s: {core_v}\n {:w$}{p}\n {:w$}{c}\n {peer:w$}{t}",
        "plain",
        "srtp-core",
        diff = first_difference(core, theirs),
        peer_v = verdict(&peer_got, plain),
        core_v = verdict(&core_got, plain),
        p = hex::encode(plain),
        c = hex::encode(core),
        t = hex::encode(theirs),
    );
}

/// Flips the low bit of `good` at each of `positions` in turn: the implementation called
/// `peer` and srtp-core must both refuse every changed packet, and still unprotect `good` to
/// `plain` after. `what` starts the messages (`"{profile}: "`, say).
pub fn check_bit_flips<E1: Debug, E2: Debug>(
    peer: &str,
    what: &str,
    good: &[u8],
    plain: &[u8],
    positions: &[usize],
    mut peer_unprotect: impl FnMut(&[u8]) -> Result<Vec<u8>, E1>,
    mut core_unprotect: impl FnMut(&[u8]) -> Result<Vec<u8>, E2>,
) {
    for &at in positions {
        let mut bad = good.to_vec();
        bad[at] ^= 0x01;
        let theirs = peer_unprotect(&bad);
        let core = core_unprotect(&bad);
        assert!(
            theirs.is_err() && core.is_err(),
            "{what}byte {at} flipped: {peer} {theirs:?}, srtp-core {core:?}"
        );
    }
    assert_eq!(peer_unprotect(good).unwrap(), plain);
    assert_eq!(core_unprotect(good).unwrap(), plain);
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
