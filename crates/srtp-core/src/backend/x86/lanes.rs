//! Eight SHA-1 computations at once, one per 32-bit lane of the AVX2 registers
//! ("multi-buffer" hashing).
//!
//! SHA-1's rounds are a serial chain within one message, so one message cannot use wide
//! vectors well; eight independent messages can: every operation of a round (FIPS 180-4
//! §6.1.2) runs on eight words at once, one per message. Per step, each lane's next 64-byte
//! block is loaded, byte-swapped to big-endian words and transposed so that vector `t` holds
//! word `t` of every lane; lanes with no block left compute on a zero block and keep their
//! state (a blend at the end of the step).

use core::arch::x86_64::*;

use crate::backend::{BLOCK, LANES};

/// A block that idle lanes hash (and throw away), so that every load is in bounds.
static IDLE: [u8; BLOCK] = [0; BLOCK];

/// Lane `i`'s `step`-th block: from `heads[i]`, then from `tails[i]`; `None` once both are
/// used up.
fn block<'a>(head: &'a [u8], tail: &'a [u8], step: usize) -> Option<&'a [u8]> {
    let at = step * BLOCK;
    if at < head.len() {
        head.get(at..at + BLOCK)
    } else {
        tail.get(at - head.len()..at - head.len() + BLOCK)
    }
}

/// See [`crate::backend::compress_lanes`].
///
/// # Safety
/// The CPU must have AVX2.
pub(super) unsafe fn compress(
    states: &mut [[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) {
    // SAFETY: the caller guarantees AVX2, the function's only target feature.
    unsafe { compress_avx2(states, heads, tails) }
}

/// See [`crate::backend::hmac_lanes`].
///
/// # Safety
/// The CPU must have AVX2.
pub(super) unsafe fn hmac(
    inner: &[[u32; 5]; LANES],
    outer: &[[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) -> [[u32; 5]; LANES] {
    // SAFETY: the caller guarantees AVX2, the function's only target feature.
    unsafe { hmac_avx2(inner, outer, heads, tails) }
}

#[target_feature(enable = "avx2")]
fn compress_avx2(states: &mut [[u32; 5]; LANES], heads: &[&[u8]; LANES], tails: &[&[u8]; LANES]) {
    let mut v = load_states(states);
    absorb(&mut v, heads, tails);
    *states = store_states(&v);
}

/// The inner hashes of eight HMACs, then their outer hashes straight from the registers: the
/// inner digest's five words, transposed as they are, are the first five message words of the
/// outer block (RFC 2104 §2, FIPS 180-4 §5.1.1: a 20-byte message after the 64-byte key
/// block, so `0x80`, zeros and the length 672 bits).
#[target_feature(enable = "avx2")]
fn hmac_avx2(
    inner: &[[u32; 5]; LANES],
    outer: &[[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) -> [[u32; 5]; LANES] {
    let mut v = load_states(inner);
    absorb(&mut v, heads, tails);
    let mut w = [_mm256_setzero_si256(); 16];
    w[..5].copy_from_slice(&v);
    w[5] = _mm256_set1_epi32(0x8000_0000u32 as i32);
    w[15] = _mm256_set1_epi32(((BLOCK + 20) * 8) as i32);
    let o = load_states(outer);
    let done = rounds(&o, w);
    let mut out = [_mm256_setzero_si256(); 5];
    for ((r, s), x) in out.iter_mut().zip(o).zip(done) {
        *r = _mm256_add_epi32(s, x);
    }
    store_states(&out)
}

/// Vector `j` holds word `j` of every lane's state.
#[inline]
#[target_feature(enable = "avx2")]
fn load_states(states: &[[u32; 5]; LANES]) -> [__m256i; 5] {
    let mut t = [[0u32; LANES]; 5];
    for (lane, s) in states.iter().enumerate() {
        for (j, w) in s.iter().enumerate() {
            t[j][lane] = *w;
        }
    }
    let mut v = [_mm256_setzero_si256(); 5];
    for (v, t) in v.iter_mut().zip(&t) {
        *v = load(bytes_of(t));
    }
    v
}

/// The inverse of [`load_states`].
#[inline]
#[target_feature(enable = "avx2")]
fn store_states(v: &[__m256i; 5]) -> [[u32; 5]; LANES] {
    let mut states = [[0u32; 5]; LANES];
    for (j, x) in v.iter().enumerate() {
        let mut out = [0u8; 32];
        // SAFETY: `out` is 32 bytes, exactly what an unaligned 256-bit store writes.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), *x) };
        for (lane, b) in out.chunks_exact(4).enumerate() {
            states[lane][j] = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
    states
}

/// Absorbs each lane's blocks (its head's, then its tail's) into the transposed state `v`;
/// a lane whose blocks are used up keeps its state while the others go on.
#[inline]
#[target_feature(enable = "avx2")]
fn absorb(v: &mut [__m256i; 5], heads: &[&[u8]; LANES], tails: &[&[u8]; LANES]) {
    let steps = heads
        .iter()
        .zip(tails)
        .map(|(h, t)| (h.len() + t.len()) / BLOCK)
        .max()
        .unwrap_or(0);
    for step in 0..steps {
        let mut blocks: [&[u8; BLOCK]; LANES] = [&IDLE; LANES];
        let mut active = [0u32; LANES];
        for lane in 0..LANES {
            if let Some(b) = block(heads[lane], tails[lane], step) {
                blocks[lane] = b.try_into().expect("blocks are 64 bytes");
                active[lane] = u32::MAX;
            }
        }
        let mut rows = [_mm256_setzero_si256(); 8];
        for (r, b) in rows.iter_mut().zip(&blocks) {
            *r = load(&b[..32]);
        }
        let lo = load_transposed(rows);
        for (r, b) in rows.iter_mut().zip(&blocks) {
            *r = load(&b[32..]);
        }
        let hi = load_transposed(rows);
        let mut w = [_mm256_setzero_si256(); 16];
        w[..8].copy_from_slice(&lo);
        w[8..].copy_from_slice(&hi);
        let x = rounds(v, w);
        let mask = load(bytes_of(&active));
        for (s, x) in v.iter_mut().zip(x) {
            *s = _mm256_blendv_epi8(*s, _mm256_add_epi32(*s, x), mask);
        }
    }
}

macro_rules! rol {
    ($x:expr, $n:literal) => {
        _mm256_or_si256(
            _mm256_slli_epi32::<$n>($x),
            _mm256_srli_epi32::<{ 32 - $n }>($x),
        )
    };
}

/// Byte-swaps each 32-bit word and transposes eight rows of eight words (row `i`: eight
/// consecutive words of lane `i`) so that output `j` holds word `j` of every lane.
#[inline]
#[target_feature(enable = "avx2")]
fn load_transposed(rows: [__m256i; 8]) -> [__m256i; 8] {
    let swap = _mm256_setr_epi8(
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8,
        15, 14, 13, 12,
    );
    let r = rows.map(|r| _mm256_shuffle_epi8(r, swap));
    // Pairs of rows interleaved word by word, then pairs of pairs 64 bits at a time: each
    // 128-bit half then holds one word of four lanes; the halves are finally recombined.
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256::<0x20>(u0, u4),
        _mm256_permute2x128_si256::<0x20>(u1, u5),
        _mm256_permute2x128_si256::<0x20>(u2, u6),
        _mm256_permute2x128_si256::<0x20>(u3, u7),
        _mm256_permute2x128_si256::<0x31>(u0, u4),
        _mm256_permute2x128_si256::<0x31>(u1, u5),
        _mm256_permute2x128_si256::<0x31>(u2, u6),
        _mm256_permute2x128_si256::<0x31>(u3, u7),
    ]
}

/// An unaligned 256-bit load of exactly 32 bytes.
#[inline]
#[target_feature(enable = "avx2")]
fn load(p: &[u8]) -> __m256i {
    assert_eq!(p.len(), 32);
    // SAFETY: `p` is 32 bytes long, exactly what an unaligned 256-bit load reads.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

/// SHA-1's round functions and the four round constants (FIPS 180-4 §4.1.1, §4.2.1).
#[inline]
#[target_feature(enable = "avx2")]
fn ch(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
}

#[inline]
#[target_feature(enable = "avx2")]
fn parity(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_xor_si256(b, c), d)
}

#[inline]
#[target_feature(enable = "avx2")]
fn maj(b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    _mm256_or_si256(
        _mm256_and_si256(b, c),
        _mm256_and_si256(d, _mm256_or_si256(b, c)),
    )
}

const K: [i32; 4] = [
    0x5A82_7999,
    0x6ED9_EBA1,
    0x8F1B_BCDCu32 as i32,
    0xCA62_C1D6u32 as i32,
];

/// The 80 rounds of one block per lane (FIPS 180-4 §6.1.2 steps 1–3) from the transposed
/// state `v` and message words `w`; returns the working variables, for the caller to add to
/// the state.
#[inline]
#[target_feature(enable = "avx2")]
fn rounds(v: &[__m256i; 5], mut w: [__m256i; 16]) -> [__m256i; 5] {
    let [mut a, mut b, mut c, mut d, mut e] = *v;
    let k = [
        _mm256_set1_epi32(K[0]),
        _mm256_set1_epi32(K[1]),
        _mm256_set1_epi32(K[2]),
        _mm256_set1_epi32(K[3]),
    ];
    // Straight-line rounds (FIPS 180-4 §6.1.2 step 3): the five working variables change
    // roles from one round to the next instead of being moved.
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $t:expr) => {{
            let t: usize = $t;
            if t >= 16 {
                let x = _mm256_xor_si256(
                    _mm256_xor_si256(w[(t + 13) & 15], w[(t + 8) & 15]),
                    _mm256_xor_si256(w[(t + 2) & 15], w[t & 15]),
                );
                w[t & 15] = rol!(x, 1);
            }
            let f = match t / 20 {
                0 => ch($b, $c, $d),
                2 => maj($b, $c, $d),
                _ => parity($b, $c, $d),
            };
            $e = _mm256_add_epi32(
                _mm256_add_epi32($e, rol!($a, 5)),
                _mm256_add_epi32(_mm256_add_epi32(f, k[t / 20]), w[t & 15]),
            );
            $b = rol!($b, 30);
        }};
    }
    sha1_rounds!(round, a, b, c, d, e);

    [a, b, c, d, e]
}

/// Eight words as their 32 bytes in memory order.
fn bytes_of(words: &[u32; LANES]) -> &[u8] {
    let ptr = words.as_ptr().cast::<u8>();
    // SAFETY: a `[u32; 8]` is 32 initialised bytes with no padding; `u8` has no alignment
    // requirement and no invalid values; the borrow keeps `words` alive and unmodified.
    unsafe { core::slice::from_raw_parts(ptr, 32) }
}
