//! HMAC-SHA1 (RFC 2104) with the inner and outer states computed once per key, so that a
//! packet costs only the compression of its own blocks plus one outer block.

use sha1::digest::generic_array::GenericArray;
use zeroize::{Zeroize, ZeroizeOnDrop};

const BLOCK: usize = 64;
/// SHA-1 initial state (FIPS 180-4 §5.3.1).
const IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

fn compress(state: &mut [u32; 5], block: &[u8]) {
    sha1::compress(
        state,
        core::slice::from_ref(GenericArray::from_slice(block)),
    );
}

/// HMAC-SHA1 keyed once: the states after the key's inner and outer pads.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

/// The MAC of a message whose trailing bytes are still to come: lets the SRTP receiver try
/// several rollover counters while hashing the packet only once.
///
/// A per-packet value on the stack, not scrubbed on drop (as in RustCrypto's and libsrtp's
/// MACs): scrubbing it byte by byte cost a third of a packet's time. The keyed pads, which
/// live as long as the key, are zeroized.
pub(crate) struct Partial {
    state: [u32; 5],
    tail: [u8; BLOCK],
    tail_len: usize,
    total: u64,
}

impl HmacSha1 {
    /// Keys the MAC. Keys longer than a block are hashed first (RFC 2104 §2); SRTP's are 20
    /// bytes.
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            let mut p = Partial::start(IV, 0);
            p.update(key);
            k[..20].copy_from_slice(&p.finish_raw());
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut pad = [0u8; BLOCK];
        let mut state = |x: u8| {
            for (p, k) in pad.iter_mut().zip(k.iter()) {
                *p = k ^ x;
            }
            let mut s = IV;
            compress(&mut s, &pad);
            s
        };
        let inner = state(0x36);
        let outer = state(0x5c);
        pad.zeroize();
        k.zeroize();
        Self { inner, outer }
    }

    /// Starts a MAC over a message and absorbs `msg`.
    pub(crate) fn begin(&self, msg: &[u8]) -> Partial {
        let mut p = Partial::start(self.inner, BLOCK as u64);
        p.update(msg);
        p
    }

    /// The MAC of `msg` followed by `suffix`.
    pub(crate) fn mac(&self, msg: &[u8], suffix: &[u8]) -> [u8; 20] {
        self.finish(self.begin(msg), suffix)
    }

    /// Completes a MAC begun with [`begin`](Self::begin) by absorbing `suffix` (a clone of the
    /// partial state, so the same partial can be finished several ways).
    pub(crate) fn finish(&self, partial: Partial, suffix: &[u8]) -> [u8; 20] {
        let mut p = partial;
        p.update(suffix);
        let inner = p.finish_raw();
        let mut o = Partial::start(self.outer, BLOCK as u64);
        o.update(&inner);
        o.finish_raw()
    }
}

impl Partial {
    fn start(state: [u32; 5], total: u64) -> Self {
        Self {
            state,
            tail: [0; BLOCK],
            tail_len: 0,
            total,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.tail_len > 0 {
            let take = (BLOCK - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < BLOCK {
                return;
            }
            compress(&mut self.state, &self.tail);
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// Pads (FIPS 180-4 §5.1.1) in the tail block and returns the digest.
    fn finish_raw(&mut self) -> [u8; 20] {
        let bits = self.total * 8;
        let n = self.tail_len;
        self.tail[n] = 0x80;
        self.tail[n + 1..].fill(0);
        if n + 9 > BLOCK {
            compress(&mut self.state, &self.tail);
            self.tail.fill(0);
        }
        self.tail[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &self.tail);
        let mut out = [0u8; 20];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_be_bytes());
        }
        out
    }
}

impl Clone for Partial {
    fn clone(&self) -> Self {
        Self {
            state: self.state,
            tail: self.tail,
            tail_len: self.tail_len,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2202 §3 test cases 1, 2, 3, 6 and 7.
    #[test]
    fn rfc2202_vectors() {
        let cases: [(&[u8], &[u8], &str); 5] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
                "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
            ),
        ];
        for (key, data, want) in cases {
            let mac = HmacSha1::new(key);
            assert_eq!(hex::encode(mac.mac(data, &[])), want);
            // Splitting the message anywhere gives the same MAC.
            for cut in 0..data.len() {
                assert_eq!(hex::encode(mac.mac(&data[..cut], &data[cut..])), want);
            }
        }
    }

    #[test]
    fn every_length_matches_a_straight_computation() {
        let mac = HmacSha1::new(&[7u8; 20]);
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..data.len() {
            let one = mac.mac(&data[..len], &[]);
            let split = mac.finish(mac.begin(&data[..len / 2]), &data[len / 2..len]);
            assert_eq!(one, split, "length {len}");
        }
    }
}
