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

/// See [`crate::backend::compress_lanes`]. The caller has checked AVX2 and BMI2.
pub(super) fn compress(
    states: &mut [[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) {
    let steps = heads
        .iter()
        .zip(tails)
        .map(|(h, t)| (h.len() + t.len()) / BLOCK)
        .max()
        .unwrap_or(0);
    // Vector `j` holds word `j` of every lane's state.
    let mut v = [[0u32; LANES]; 5];
    for (lane, s) in states.iter().enumerate() {
        for (j, w) in s.iter().enumerate() {
            v[j][lane] = *w;
        }
    }
    for step in 0..steps {
        let mut blocks = [&IDLE[..]; LANES];
        let mut active = [0u32; LANES];
        for lane in 0..LANES {
            if let Some(b) = block(heads[lane], tails[lane], step) {
                blocks[lane] = b;
                active[lane] = u32::MAX;
            }
        }
        let blocks: [&[u8; BLOCK]; LANES] =
            blocks.map(|b| b.try_into().expect("blocks are 64 bytes"));
        // SAFETY: the caller checked that the CPU has AVX2 (the function's only target
        // feature); the arguments are references to arrays of the sizes the function reads.
        unsafe { step_avx2(&mut v, &blocks, &active) };
    }
    for (lane, s) in states.iter_mut().enumerate() {
        for (j, w) in s.iter_mut().enumerate() {
            *w = v[j][lane];
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

/// One block per lane: `v` is the transposed state, `active` all-ones for lanes whose state
/// takes the result.
#[target_feature(enable = "avx2")]
fn step_avx2(v: &mut [[u32; LANES]; 5], blocks: &[&[u8; BLOCK]; LANES], active: &[u32; LANES]) {
    let mut rows = [_mm256_setzero_si256(); 8];
    for (r, b) in rows.iter_mut().zip(blocks) {
        *r = load(&b[..32]);
    }
    let lo = load_transposed(rows);
    for (r, b) in rows.iter_mut().zip(blocks) {
        *r = load(&b[32..]);
    }
    let hi = load_transposed(rows);
    let mut w = [_mm256_setzero_si256(); 16];
    w[..8].copy_from_slice(&lo);
    w[8..].copy_from_slice(&hi);

    let mut a = load(bytes_of(&v[0]));
    let mut b = load(bytes_of(&v[1]));
    let mut c = load(bytes_of(&v[2]));
    let mut d = load(bytes_of(&v[3]));
    let mut e = load(bytes_of(&v[4]));

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
    macro_rules! five {
        ($t:expr) => {
            round!(a, b, c, d, e, $t);
            round!(e, a, b, c, d, $t + 1);
            round!(d, e, a, b, c, $t + 2);
            round!(c, d, e, a, b, $t + 3);
            round!(b, c, d, e, a, $t + 4);
        };
    }
    five!(0);
    five!(5);
    five!(10);
    five!(15);
    five!(20);
    five!(25);
    five!(30);
    five!(35);
    five!(40);
    five!(45);
    five!(50);
    five!(55);
    five!(60);
    five!(65);
    five!(70);
    five!(75);

    let mask = load(bytes_of(active));
    for (s, x) in v.iter_mut().zip([a, b, c, d, e]) {
        let old = load(bytes_of(s));
        let new = _mm256_blendv_epi8(old, _mm256_add_epi32(old, x), mask);
        let mut out = [0u8; 32];
        // SAFETY: `out` is 32 bytes, exactly what an unaligned 256-bit store writes.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), new) };
        for (w, b) in s.iter_mut().zip(out.chunks_exact(4)) {
            *w = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
}

/// Eight words as their 32 bytes in memory order.
fn bytes_of(words: &[u32; LANES]) -> &[u8] {
    let ptr = words.as_ptr().cast::<u8>();
    // SAFETY: a `[u32; 8]` is 32 initialised bytes with no padding; `u8` has no alignment
    // requirement and no invalid values; the borrow keeps `words` alive and unmodified.
    unsafe { core::slice::from_raw_parts(ptr, 32) }
}
