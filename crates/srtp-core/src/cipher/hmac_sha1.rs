//! HMAC-SHA1 (RFC 2104) with the inner and outer states computed once per key, so that a
//! packet costs only the compression of its own blocks plus one outer block.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::backend::{self, Backend, BLOCK, IV, LANES};
use crate::cipher::AesCm;

/// HMAC-SHA1 keyed once: the states after the key's inner and outer pads, and the backend
/// that computes SHA-1 for it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
    #[zeroize(skip)]
    backend: Backend,
}

/// One MAC of a batch for [`mac_lanes`]: the MAC of `msg` followed by `suffix`
/// (at most [`MAX_SUFFIX`] bytes: SRTP's rollover counter) under `key`.
pub(crate) struct LaneJob<'a> {
    pub(crate) key: &'a HmacSha1,
    pub(crate) msg: &'a [u8],
    pub(crate) suffix: &'a [u8],
}

/// The longest suffix a [`LaneJob`] may have.
pub(crate) const MAX_SUFFIX: usize = 8;

/// A message absorbed up to its last whole block: the inner state and the bytes after it.
/// Finishing it with several suffixes (the SRTP receiver's rollover-counter candidates) hashes
/// the message once.
///
/// Per-packet values like this one (and the stack copies of the keyed states the MAC
/// functions make) are not scrubbed (as in RustCrypto's and libsrtp's MACs): scrubbing cost a
/// third of a packet's time. The keyed states inside [`HmacSha1`], which live as long as the
/// key, are zeroized when it is dropped.
pub(crate) struct Absorbed {
    state: [u32; 5],
    rest: [u8; BLOCK],
    rest_len: usize,
    msg_len: usize,
}

impl Absorbed {
    /// `msg` with its whole blocks absorbed into `state`: the state and the bytes after them.
    fn new(state: [u32; 5], msg: &[u8]) -> Self {
        let whole = msg.len() - msg.len() % BLOCK;
        let mut rest = [0u8; BLOCK];
        rest[..msg.len() - whole].copy_from_slice(&msg[whole..]);
        Absorbed {
            state,
            rest,
            rest_len: msg.len() - whole,
            msg_len: msg.len(),
        }
    }
}

/// SHA-1 over a message given in pieces of any length (keys longer than a block, and suffixes
/// longer than [`MAX_SUFFIX`]).
struct Partial {
    state: [u32; 5],
    tail: [u8; BLOCK],
    tail_len: usize,
    total: u64,
    backend: Backend,
}

impl HmacSha1 {
    /// Keys the MAC. Keys longer than a block are hashed first (RFC 2104 §2); SRTP's are 20
    /// bytes.
    pub(crate) fn new(key: &[u8], backend: Backend) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            let mut p = Partial::start(IV, 0, backend);
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
            backend.compress(&mut s, &pad);
            s
        };
        let inner = state(0x36);
        let outer = state(0x5c);
        pad.zeroize();
        k.zeroize();
        Self {
            inner,
            outer,
            backend,
        }
    }

    /// Computes this MAC with `backend` from now on (the results do not change).
    pub(crate) fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// Absorbs `msg`'s whole blocks, straight from the message, into the inner state, and
    /// keeps the bytes after them for [`finish`](Self::finish).
    pub(crate) fn absorb(&self, msg: &[u8]) -> Absorbed {
        let whole = msg.len() - msg.len() % BLOCK;
        let mut state = self.inner;
        self.backend.compress(&mut state, &msg[..whole]);
        Absorbed::new(state, msg)
    }

    /// As [`absorb`](Self::absorb), decrypting the AES-CM payload `msg[start..]` (counter
    /// blocks from `iv`) behind the hash where the backend can run the two together: returns
    /// the absorbed message and how far the payload is decrypted (the rest still encrypted),
    /// or `None` with nothing done where it cannot.
    pub(crate) fn absorb_decrypting(
        &self,
        msg: &mut [u8],
        start: usize,
        aes: &AesCm,
        iv: &[u8; 16],
    ) -> Option<(Absorbed, usize)> {
        let key = aes.fast_key()?;
        let mut state = self.inner;
        let done = backend::absorb_ctr(
            self.backend,
            &mut state,
            msg,
            start,
            key,
            u128::from_be_bytes(*iv),
        )?;
        Some((Absorbed::new(state, msg), done))
    }

    /// The MAC of the absorbed message followed by `suffix` (at most [`MAX_SUFFIX`] bytes):
    /// the message's end, the suffix and the padding from one stack buffer, then the outer
    /// block. `absorbed` is left as it was, for another suffix.
    pub(crate) fn finish(&self, absorbed: &Absorbed, suffix: &[u8]) -> [u8; 20] {
        assert!(
            suffix.len() <= MAX_SUFFIX,
            "suffix of {} bytes",
            suffix.len()
        );
        let mut state = absorbed.state;
        let mut tail = [0u8; 2 * BLOCK];
        let rest = &absorbed.rest[..absorbed.rest_len];
        let len = padded_tail(rest, suffix, absorbed.msg_len, &mut tail);
        let mut outer = self.outer;
        self.backend
            .hmac_finish(&mut state, &tail[..len], &mut outer);
        digest(&outer)
    }

    /// The MAC of `msg` followed by `suffix`.
    pub(crate) fn mac(&self, msg: &[u8], suffix: &[u8]) -> [u8; 20] {
        if suffix.len() <= MAX_SUFFIX {
            return self.finish(&self.absorb(msg), suffix);
        }
        let mut p = Partial::start(self.inner, BLOCK as u64, self.backend);
        p.update(msg);
        p.update(suffix);
        let inner = p.finish_raw();
        let mut o = Partial::start(self.outer, BLOCK as u64, self.backend);
        o.update(&inner);
        o.finish_raw()
    }
}

/// The last one or two blocks of an inner hash: `rest` (the message's bytes after its whole
/// blocks), `suffix`, and the padding for a message of `msg_len + suffix.len()` bytes after
/// the 64-byte key block (FIPS 180-4 §5.1.1), written into `buf` (zeroed by the caller).
/// Returns how much of it to hash.
fn padded_tail(rest: &[u8], suffix: &[u8], msg_len: usize, buf: &mut [u8; 2 * BLOCK]) -> usize {
    buf[..rest.len()].copy_from_slice(rest);
    let n = rest.len() + suffix.len();
    buf[rest.len()..n].copy_from_slice(suffix);
    buf[n] = 0x80;
    let len = if n + 9 > BLOCK { 2 * BLOCK } else { BLOCK };
    let bits = (BLOCK + msg_len + suffix.len()) as u64 * 8;
    buf[len - 8..len].copy_from_slice(&bits.to_be_bytes());
    len
}

/// A SHA-1 state as its 20-byte digest.
fn digest(state: &[u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_be_bytes());
    }
    out
}

/// Computes up to [`LANES`] MACs together, in the vector lanes of `backend`: `out[i]`
/// becomes `jobs[i].key.mac(jobs[i].msg, jobs[i].suffix)`, bit for bit, for every job that is
/// `Some` (the lanes of `None` idle).
///
/// Each lane hashes its message's whole blocks straight from the message, then one or two
/// blocks built here (the message's last bytes, the suffix and the padding), then, in a second
/// pass, its outer block.
pub(crate) fn mac_lanes(
    backend: Backend,
    jobs: &[Option<LaneJob<'_>>; LANES],
    out: &mut [[u8; 20]; LANES],
) {
    let mut states = [[0u32; 5]; LANES];
    let mut heads: [&[u8]; LANES] = [&[]; LANES];
    let mut tail_bufs = [[0u8; 2 * BLOCK]; LANES];
    let mut tail_lens = [0usize; LANES];
    for (i, job) in jobs.iter().enumerate() {
        let Some(job) = job else { continue };
        assert!(job.suffix.len() <= MAX_SUFFIX);
        states[i] = job.key.inner;
        let whole = job.msg.len() - job.msg.len() % BLOCK;
        heads[i] = &job.msg[..whole];
        let len = padded_tail(
            &job.msg[whole..],
            job.suffix,
            job.msg.len(),
            &mut tail_bufs[i],
        );
        tail_lens[i] = len;
    }
    let tails: [&[u8]; LANES] = core::array::from_fn(|i| &tail_bufs[i][..tail_lens[i]]);
    let mut outer = [[0u32; 5]; LANES];
    for (o, job) in outer.iter_mut().zip(jobs) {
        if let Some(job) = job {
            *o = job.key.outer;
        }
    }
    let states = backend::hmac_lanes(backend, &states, &outer, &heads, &tails);
    for ((o, s), job) in out.iter_mut().zip(&states).zip(jobs) {
        if job.is_some() {
            *o = digest(s);
        }
    }
}

impl Partial {
    fn start(state: [u32; 5], total: u64, backend: Backend) -> Self {
        Self {
            state,
            tail: [0; BLOCK],
            tail_len: 0,
            total,
            backend,
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
            self.backend.compress(&mut self.state, &self.tail);
            self.tail_len = 0;
        }
        let whole = data.len() - data.len() % BLOCK;
        let (blocks, rest) = data.split_at(whole);
        self.backend.compress(&mut self.state, blocks);
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
            self.backend.compress(&mut self.state, &self.tail);
            self.tail.fill(0);
        }
        self.tail[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        self.backend.compress(&mut self.state, &self.tail);
        digest(&self.state)
    }
}

impl Clone for Partial {
    fn clone(&self) -> Self {
        Self {
            state: self.state,
            tail: self.tail,
            tail_len: self.tail_len,
            total: self.total,
            backend: self.backend,
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
            for backend in Backend::supported() {
                let mac = HmacSha1::new(key, backend);
                assert_eq!(hex::encode(mac.mac(data, &[])), want);
                // Splitting the message anywhere gives the same MAC.
                for cut in 0..data.len() {
                    assert_eq!(hex::encode(mac.mac(&data[..cut], &data[cut..])), want);
                }
                let mut jobs: [Option<LaneJob<'_>>; LANES] = Default::default();
                jobs[3] = Some(LaneJob {
                    key: &mac,
                    msg: data,
                    suffix: &[],
                });
                let mut out = [[0u8; 20]; LANES];
                mac_lanes(backend, &jobs, &mut out);
                assert_eq!(hex::encode(out[3]), want, "{backend:?} lanes");
            }
        }
    }

    /// The fast path (whole blocks in place, one padded tail) against the general one (the
    /// message fed in pieces), and one absorbed message finished with several suffixes.
    #[test]
    fn every_length_matches_a_straight_computation() {
        let mac = HmacSha1::new(&[7u8; 20], Backend::Portable);
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in MAX_SUFFIX + 1..data.len() {
            let msg = &data[..len];
            let fast = mac.mac(msg, &[]);
            // A suffix longer than MAX_SUFFIX takes the general path.
            assert_eq!(fast, mac.mac(&[], msg), "length {len}");
            assert_eq!(
                fast,
                mac.mac(&msg[..len / 3], &msg[len / 3..]),
                "length {len}"
            );
            let absorbed = mac.absorb(&msg[..len - 4]);
            for _ in 0..2 {
                assert_eq!(fast, mac.finish(&absorbed, &msg[len - 4..]), "length {len}");
            }
            let other = [0xff; 4];
            let mut joined = msg[..len - 4].to_vec();
            joined.extend_from_slice(&other);
            assert_eq!(
                mac.finish(&absorbed, &other),
                mac.mac(&[], &joined),
                "length {len}"
            );
        }
    }

    #[test]
    fn lanes_match_one_at_a_time_for_every_length() {
        let data: Vec<u8> = (0..1600u32).map(|i| (i * 131 % 251) as u8).collect();
        let keys: Vec<HmacSha1> = (0..3u8)
            .flat_map(|k| Backend::supported().map(move |b| HmacSha1::new(&[k; 20], b)))
            .collect();
        let roc = [1u8, 2, 3, 4];
        let mut len = 0;
        while len <= data.len() {
            for backend in Backend::supported() {
                // Eight lanes of different lengths around `len`, some with a suffix, and every
                // pattern of idle lanes.
                for idle in [0u32, 0b1111_1110, 0b0101_0101, 0b1000_0001, 0b0111_1111] {
                    let jobs: [Option<LaneJob<'_>>; LANES] = core::array::from_fn(|i| {
                        (idle & (1 << i) == 0).then(|| LaneJob {
                            key: &keys[i % keys.len()],
                            msg: &data[..(len + i * 67) % (data.len() + 1)],
                            suffix: if i % 2 == 0 { &roc } else { &[] },
                        })
                    });
                    let mut out = [[0u8; 20]; LANES];
                    mac_lanes(backend, &jobs, &mut out);
                    for (j, o) in jobs.iter().zip(out) {
                        if let Some(j) = j {
                            let want = j.key.mac(j.msg, j.suffix);
                            assert_eq!(o, want, "{backend:?} len {len} idle {idle:b}");
                        }
                    }
                }
            }
            len += 1 + len / 8;
        }
    }
}
