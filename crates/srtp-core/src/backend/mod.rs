//! Where the SHA-1 compression runs: the CPU-specific code, chosen once per session.
//!
//! HMAC-SHA1 is most of an `AES_CM_*_HMAC_SHA1_*` packet's cost, and how fast SHA-1 can go
//! depends on the CPU: SHA extensions where the CPU has them, a vectorised message schedule
//! with AVX2 where it does not, and, for batches of packets, eight packets hashed at once in
//! the eight 32-bit lanes of AVX2 registers. This module is the only place in the crate with
//! `unsafe` code and `cfg(target_arch)` (in [`x86`]); everything else calls the safe functions
//! here, which check the CPU feature before entering a `#[target_feature]` function.
//!
//! AES-CTR has its own fast path here too ([`aes`]): the key schedule expanded once, the
//! counter blocks encrypted eight (AES-NI) or sixteen (VAES) at a time. It follows the CPU
//! alone, not the [`Backend`] (which chooses SHA-1 code); the `portable` feature turns it off
//! with the rest.
//!
//! The portable code is always built and is what runs on other CPUs. [`Backend::detect`] picks
//! the fastest backend the CPU supports; the `portable` cargo feature forces the portable one
//! at build time, and the `SRTP_CORE_BACKEND` environment variable (`portable`, `avx2`,
//! `sha-ext`) may select another *supported* backend at run time, for testing and benchmarking
//! each backend on one machine.

use std::sync::OnceLock;

/// SHA-1's 80 rounds as straight-line code (FIPS 180-4 §6.1.2 step 3): the caller's one-round
/// macro `$round!(a, b, c, d, e, t)` for `t` in 0..80, the caller's five working variables
/// changing roles from one round to the next instead of being moved.
macro_rules! sha1_rounds {
    ($round:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 0);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 5);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 10);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 15);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 20);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 25);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 30);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 35);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 40);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 45);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 50);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 55);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 60);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 65);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 70);
        sha1_rounds!(@five $round, $a, $b, $c, $d, $e, 75);
    };
    (@five $round:ident, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $t:expr) => {
        $round!($a, $b, $c, $d, $e, $t);
        $round!($e, $a, $b, $c, $d, $t + 1);
        $round!($d, $e, $a, $b, $c, $t + 2);
        $round!($c, $d, $e, $a, $b, $t + 3);
        $round!($b, $c, $d, $e, $a, $t + 4);
    };
}

pub(crate) mod aes;
mod portable;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

/// SHA-1 block size in bytes.
pub(crate) const BLOCK: usize = 64;

/// SHA-1 initial state (FIPS 180-4 §5.3.1).
pub(crate) const IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// How many messages [`compress_lanes`] hashes at once.
pub(crate) const LANES: usize = 8;

/// The code that computes SHA-1 (and so HMAC-SHA1) for a session.
///
/// Every backend gives the same results, bit for bit; they differ in speed only. A session
/// records its backend when it is built ([`Session::backend`](crate::Session::backend)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Plain Rust, on any CPU: one block at a time, eight messages of a batch one after the
    /// other.
    Portable,
    /// x86-64 with AVX2 (and BMI2): the message schedule computed four words at a time in
    /// vector registers; batches hashed eight messages at once, one per 32-bit lane.
    Avx2,
    /// The CPU's SHA-1 instructions (x86-64 SHA extensions) for one packet; with AVX2,
    /// batches of at least [`Backend::min_lanes`] packets are hashed in eight AVX2 lanes,
    /// which is faster still.
    ShaExt,
}

impl Backend {
    /// Every backend, slowest first.
    pub const ALL: [Backend; 3] = [Backend::Portable, Backend::Avx2, Backend::ShaExt];

    /// The backend this process uses for new sessions: the fastest this CPU supports, unless
    /// the `portable` feature or the `SRTP_CORE_BACKEND` environment variable says otherwise.
    /// Detected once per process.
    pub fn detect() -> Backend {
        static CHOSEN: OnceLock<Backend> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            if cfg!(feature = "portable") {
                return Backend::Portable;
            }
            let wanted = std::env::var("SRTP_CORE_BACKEND").ok();
            match wanted.as_deref().and_then(Backend::from_name) {
                Some(b) if b.is_supported() => b,
                _ => Backend::ALL
                    .into_iter()
                    .rev()
                    .find(|b| b.is_supported())
                    .unwrap_or(Backend::Portable),
            }
        })
    }

    /// Whether this CPU can run the backend (with the `portable` feature, only
    /// [`Backend::Portable`] runs).
    pub fn is_supported(self) -> bool {
        if cfg!(feature = "portable") {
            return self == Backend::Portable;
        }
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            Backend::ShaExt => x86::has_sha_ext(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The supported backends, slowest first.
    pub fn supported() -> impl Iterator<Item = Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_supported())
    }

    /// The backend's short name: `portable`, `avx2` or `sha-ext` (as `SRTP_CORE_BACKEND` and
    /// benchmark names spell it).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::Avx2 => "avx2",
            Backend::ShaExt => "sha-ext",
        }
    }

    /// The backend named `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The fewest packets of a batch worth hashing together in vector lanes: with fewer, the
    /// one-packet path is as fast. `None` when the backend never hashes in lanes.
    ///
    /// Eight lanes cost about 3.5 one-message AVX2 blocks per step, or 3.5 SHA-extension
    /// blocks (measured: 145 ns per eight-lane step, 67 and 42 ns per block one message at a
    /// time), so lanes pay from two packets against AVX2 and from about four (three for audio,
    /// four for video-sized packets) against the SHA extensions.
    pub fn min_lanes(self) -> Option<usize> {
        match self {
            Backend::Portable => None,
            Backend::Avx2 => Some(2),
            Backend::ShaExt => Backend::Avx2.is_supported().then_some(4),
        }
    }

    /// Absorbs whole 64-byte blocks into `state` (FIPS 180-4 §6.1.2).
    #[inline]
    pub(crate) fn compress(self, state: &mut [u32; 5], blocks: &[u8]) {
        debug_assert_eq!(blocks.len() % BLOCK, 0);
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::compress_avx2(state, blocks),
            #[cfg(target_arch = "x86_64")]
            Backend::ShaExt => x86::compress_sha_ext(state, blocks),
            _ => portable::compress(state, blocks),
        }
    }

    /// An HMAC-SHA1's last two steps (RFC 2104 §2): absorbs the inner hash's padded `tail`
    /// (whole blocks) into `inner`, then the outer hash's only block ([`outer_block`] of the
    /// inner digest) into `outer`, which then holds the MAC.
    #[inline]
    pub(crate) fn hmac_finish(self, inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
        debug_assert_eq!(tail.len() % BLOCK, 0);
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::hmac_finish_avx2(inner, tail, outer),
            #[cfg(target_arch = "x86_64")]
            Backend::ShaExt => x86::hmac_finish_sha_ext(inner, tail, outer),
            _ => portable::hmac_finish(inner, tail, outer),
        }
    }
}

/// Absorbs `msg`'s whole blocks into `state` while decrypting, behind the hash, the AES-CTR
/// payload `msg[start..]` (key `key`, first counter block `base`): each of its 16-byte blocks
/// once every byte of it is hashed. Returns how far the payload is decrypted (its whole
/// blocks inside the hashed part; the rest is the caller's), or `None` with nothing done
/// where the backend has no such kernel (only the SHA extensions with AES-NI have one: their
/// hash is a latency-bound chain that leaves the AES units idle).
#[inline]
pub(crate) fn absorb_ctr(
    backend: Backend,
    state: &mut [u32; 5],
    msg: &mut [u8],
    start: usize,
    key: &aes::AesKey,
    base: u128,
) -> Option<usize> {
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::ShaExt => x86::absorb_ctr_sha_ext(state, msg, start, key, base),
        _ => {
            let _ = (state, msg, start, key, base);
            None
        }
    }
}

/// The outer hash's only block of an HMAC-SHA1 (RFC 2104 §2): the inner digest `inner` as
/// big-endian bytes and its padding (a 20-byte message after the 64-byte key block, FIPS
/// 180-4 §5.1.1).
pub(crate) fn outer_block(inner: &[u32; 5]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    for (o, w) in block.chunks_exact_mut(4).zip(inner) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    block[20] = 0x80;
    block[BLOCK - 8..].copy_from_slice(&((BLOCK as u64 + 20) * 8).to_be_bytes());
    block
}

/// Asks the CPU to bring `value`'s memory (at most its first 32 cache lines) into the cache,
/// for code that will read it after other work: a hint, with no effect on any result
/// (nothing where the CPU has no such instruction this code uses, or with the `portable`
/// feature, under which none of this crate's own `unsafe` code runs).
#[inline]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
    x86::prefetch(value);
    #[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
    let _ = value;
}

/// Eight independent SHA-1 computations. Lane `i` starts from `states[i]` and absorbs the
/// whole blocks of `heads[i]` then those of `tails[i]` (either may be empty; lengths are
/// multiples of 64). Lanes may differ in length: a lane that has no more blocks keeps its
/// state while the others go on.
pub(crate) fn compress_lanes(
    backend: Backend,
    states: &mut [[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) {
    debug_assert!(heads.iter().chain(tails).all(|m| m.len() % BLOCK == 0));
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 | Backend::ShaExt if x86::has_avx2() => {
            x86::compress_lanes_avx2(states, heads, tails);
        }
        _ => {
            for ((s, h), t) in states.iter_mut().zip(heads).zip(tails) {
                backend.compress(s, h);
                backend.compress(s, t);
            }
        }
    }
}

/// Eight HMAC-SHA1 computations (RFC 2104) from their keyed states: lane `i` starts from
/// `inner[i]`, absorbs `heads[i]` and `tails[i]` as [`compress_lanes`] does (the tail holding
/// the padded end of the inner message), then hashes its 20-byte inner digest from
/// `outer[i]`. Returns each lane's final state (the MAC as big-endian words). A lane with
/// nothing to absorb gives a meaningless result, for the caller to ignore.
pub(crate) fn hmac_lanes(
    backend: Backend,
    inner: &[[u32; 5]; LANES],
    outer: &[[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) -> [[u32; 5]; LANES] {
    debug_assert!(heads.iter().chain(tails).all(|m| m.len() % BLOCK == 0));
    #[cfg(target_arch = "x86_64")]
    if matches!(backend, Backend::Avx2 | Backend::ShaExt) && x86::has_avx2() {
        return x86::hmac_lanes_avx2(inner, outer, heads, tails);
    }
    let mut states = *inner;
    compress_lanes(backend, &mut states, heads, tails);
    let mut blocks = [[0u8; BLOCK]; LANES];
    for (b, s) in blocks.iter_mut().zip(&states) {
        for (o, w) in b.chunks_exact_mut(4).zip(s) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        b[20] = 0x80;
        b[BLOCK - 8..].copy_from_slice(&((BLOCK as u64 + 20) * 8).to_be_bytes());
    }
    let mut states = *outer;
    let blocks: [&[u8]; LANES] = core::array::from_fn(|i| &blocks[i][..]);
    compress_lanes(backend, &mut states, &[&[]; LANES], &blocks);
    states
}

#[cfg(test)]
mod tests;
