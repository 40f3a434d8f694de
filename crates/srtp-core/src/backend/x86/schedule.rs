//! SHA-1 of one message with the message schedule in AVX2 registers, for x86-64 CPUs that
//! have AVX2 and BMI but not the SHA extensions (Intel Haswell to Cascade Lake and Comet Lake).
//!
//! SHA-1's compression (FIPS 180-4 §6.1.2) has two parts. The message schedule (step 1,
//! `W[t] = ROTL¹(W[t-3] ⊕ W[t-8] ⊕ W[t-14] ⊕ W[t-16])`) is data-parallel, so it is computed
//! here in vector registers, four words of a block per 128-bit half and two blocks at once in
//! the two halves of a 256-bit register; the round constant `K[t]` (§4.2.1) is added there too,
//! and the sums `W[t] + K[t]` of both blocks are stored to a buffer on the stack. The 80 rounds
//! (steps 2-4) are one long dependency chain through `a`, so they stay in scalar code, where
//! BMI2's `rorx` rotates without touching the flags and BMI1's `andn` shortens the choice
//! function; each round then costs one load for `W[t] + K[t]` instead of the loads, xors and
//! rotation of a scalar schedule.
//!
//! Words 16 to 31 use the recurrence as written; because `W[t]` needs `W[t-3]`, the fourth word
//! of each group of four depends on the first and is patched after the vector step. From word
//! 32 on, the schedule uses the equivalent recurrence
//! `W[t] = ROTL²(W[t-6] ⊕ W[t-16] ⊕ W[t-28] ⊕ W[t-32])` (the original one applied to each of
//! its own four terms), in which a group of four words depends only on earlier groups.
//!
//! Blocks go two at a time. Groups 0-7 of the schedule (the loads and the patched groups) are
//! computed first; groups 8-19 are computed during the rounds of the first block, one after
//! every five rounds and at least fifteen rounds before any of their words is needed, so the
//! vector units work beside the scalar ones instead of before them, and the second block's
//! rounds find their schedule complete. A final odd block is loaded into both halves and only
//! one half's words are used, so no read ever goes past the end of `blocks`.

use core::arch::x86_64::{
    __m256i, _mm256_add_epi32, _mm256_alignr_epi8, _mm256_castsi128_si256, _mm256_castsi256_si128,
    _mm256_extracti128_si256, _mm256_inserti128_si256, _mm256_or_si256, _mm256_set1_epi32,
    _mm256_setr_epi32, _mm256_setr_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8,
    _mm256_slli_epi32, _mm256_slli_si256, _mm256_srli_epi32, _mm256_srli_si256, _mm256_xor_si256,
    _mm_loadu_si128, _mm_storeu_si128,
};

use super::super::portable::K;
use super::super::BLOCK;

/// `W[t] + K[t]` for `t` in 0..80 (FIPS 180-4 §6.1.2 step 1, §4.2.1) of one block, in groups
/// of four words as a 128-bit store leaves them.
type Schedule = [[u32; 4]; 20];

/// The schedules of two blocks, computed together in the two halves of 256-bit registers.
type Pair = [Schedule; 2];

/// The schedules of two blocks being computed: group `j` (words `4j..4j+4`) of both, without
/// `K`, in the halves of `w[j]`.
type Words = [__m256i; 20];

/// Absorbs the whole blocks of `blocks` into `state`.
///
/// # Safety
/// The CPU must have AVX2 and BMI2 (BMI1 is checked here).
pub(super) unsafe fn compress(state: &mut [u32; 5], blocks: &[u8]) {
    // Every CPU with BMI2 has BMI1 too, but checking costs next to nothing and keeps the
    // `unsafe` call below independent of that fact.
    if !is_x86_feature_detected!("bmi1") {
        super::super::portable::compress(state, blocks);
        return;
    }
    // SAFETY: `compress_avx2` needs AVX2, BMI1 and BMI2 and has no other precondition; the
    // caller guarantees AVX2 and BMI2, and BMI1 is checked just above.
    unsafe { compress_avx2(state, blocks) }
}

/// [`compress`] on a CPU with AVX2 and BMI, two blocks at a time.
///
/// # Safety
///
/// The CPU must support AVX2, BMI1 and BMI2.
#[target_feature(enable = "avx2,bmi1,bmi2")]
unsafe fn compress_avx2(state: &mut [u32; 5], blocks: &[u8]) {
    let mut rest = blocks;
    while let Some((lo, tail)) = rest.split_first_chunk::<BLOCK>() {
        // The second block, or the first again if it is the last one.
        let (hi, n, tail) = match tail.split_first_chunk::<BLOCK>() {
            Some((hi, tail)) => (hi, 2, tail),
            None => (lo, 1, tail),
        };
        let first = [0, 1, 2, 3].map(|i| load(lo, hi, i));
        pair(state, first, n);
        rest = tail;
    }
}

/// An HMAC's last two steps (RFC 2104 §2): the inner hash's padded tail (`tail`, one or two
/// blocks) into `inner`, then the outer hash's only block into `outer`. That block's message
/// is the inner digest, `0x80`, zeros and the length (672 bits: 20 bytes after the 64-byte
/// key block, FIPS 180-4 §5.1.1); its words are put into the schedule's registers as they
/// are, instead of being written out as bytes and loaded back.
///
/// # Safety
/// The CPU must have AVX2 and BMI2 (BMI1 is checked here).
pub(super) unsafe fn hmac_finish(inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
    if !is_x86_feature_detected!("bmi1") {
        super::super::portable::hmac_finish(inner, tail, outer);
        return;
    }
    // SAFETY: as in `compress`: AVX2 and BMI2 from the caller, BMI1 just checked.
    unsafe { hmac_finish_avx2(inner, tail, outer) }
}

/// [`hmac_finish`] on a CPU with AVX2 and BMI.
///
/// # Safety
///
/// The CPU must support AVX2, BMI1 and BMI2.
#[target_feature(enable = "avx2,bmi1,bmi2")]
unsafe fn hmac_finish_avx2(inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
    // SAFETY: the same features as this function's.
    unsafe { compress_avx2(inner, tail) };
    let [a, b, c, d, e] = inner.map(|w| w as i32);
    // Only the low half's schedule is used for a single block; the high half repeats it.
    let first = [
        _mm256_setr_epi32(a, b, c, d, a, b, c, d),
        _mm256_setr_epi32(
            e,
            0x8000_0000u32 as i32,
            0,
            0,
            e,
            0x8000_0000u32 as i32,
            0,
            0,
        ),
        _mm256_setzero_si256(),
        _mm256_setr_epi32(0, 0, 0, OUTER_BITS, 0, 0, 0, OUTER_BITS),
    ];
    pair(outer, first, 1);
}

/// The bit length of an HMAC-SHA1 outer message: the 64-byte key block and a 20-byte digest.
const OUTER_BITS: i32 = ((BLOCK + 20) * 8) as i32;

/// How many groups of the schedule [`pair`] computes before the rounds: the four loaded ones
/// and the four that need patching. Group `j + AHEAD` is computed after the `j`-th five rounds
/// (round `5j + 4`) and first read by round `4(j + AHEAD)`, which leaves the vector units at
/// least fifteen rounds to finish it; with fewer groups ahead the rounds end up waiting for
/// the schedule, with more they start later.
const AHEAD: usize = 8;

/// Absorbs `n` blocks (1 or 2), `lo` and `hi`, into `state` (`hi` is ignored if `n` is 1).
///
/// The schedule of both blocks is computed beside the rounds of the first (see [`AHEAD`]).
/// Left alone, the compiler would move all the vector work back ahead of the rounds (it sees
/// two independent computations), and the rounds would wait for it; so after each group the
/// schedule buffer goes through [`core::hint::black_box`], which the compiler must assume
/// reads and writes it: the group's stores stay before that point and the later rounds' loads
/// after it, which keeps the two interleaved. `black_box` costs no instruction and only
/// affects speed, never results.
#[target_feature(enable = "avx2,bmi1,bmi2")]
#[inline]
fn pair(state: &mut [u32; 5], first: [__m256i; 4], n: usize) {
    let mut wk: Pair = [[[0; 4]; 20]; 2];
    let mut w: Words = [_mm256_setzero_si256(); 20];
    w[..4].copy_from_slice(&first);
    for j in 0..AHEAD {
        step(j, &mut w, &mut wk);
    }
    rounds::<0>(state, &mut wk, |j, wk| {
        if j + AHEAD < 20 {
            step(j + AHEAD, &mut w, wk);
            core::hint::black_box(wk);
        }
    });
    if n == 2 {
        rounds::<1>(state, &mut wk, |_, _| {});
    }
}

/// Loads bytes `16i..16i+16` of `lo` and of `hi` (big-endian words, FIPS 180-4 §3.1) into the
/// low and high halves of a register, as host-order words.
#[target_feature(enable = "avx2")]
#[inline]
fn load(lo: &[u8; BLOCK], hi: &[u8; BLOCK], i: usize) -> __m256i {
    let (lo, hi) = (&lo[16 * i..16 * i + 16], &hi[16 * i..16 * i + 16]);
    // SAFETY: `lo` and `hi` are 16-byte slices, so each unaligned 16-byte load reads only bytes
    // inside them; AVX2 (and so SSE2) is enabled for this function.
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(lo.as_ptr().cast()),
            _mm_loadu_si128(hi.as_ptr().cast()),
        )
    };
    let v = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi);
    // Reverses the bytes of each 32-bit word, in both halves.
    let bswap = _mm256_setr_epi8(
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, //
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
    );
    _mm256_shuffle_epi8(v, bswap)
}

/// Rotates each 32-bit word of `x` left by `N` bits (`M` must be `32 - N`).
#[target_feature(enable = "avx2")]
#[inline]
fn rotl<const N: i32, const M: i32>(x: __m256i) -> __m256i {
    _mm256_or_si256(_mm256_slli_epi32::<N>(x), _mm256_srli_epi32::<M>(x))
}

/// Words `t..t+4` of the schedule for `16 ≤ t < 32` (FIPS 180-4 §6.1.2 step 1), from the
/// groups of four words that start at `t-16`, `t-12`, `t-8` and `t-4`.
#[target_feature(enable = "avx2")]
#[inline]
fn early(w16: __m256i, w12: __m256i, w8: __m256i, w4: __m256i) -> __m256i {
    // Words t-3, t-2, t-1 and (not known yet) t, as 0 for now.
    let w3 = _mm256_srli_si256::<4>(w4);
    // Words t-14..t-11: the top half of one group and the bottom half of the next.
    let w14 = _mm256_alignr_epi8::<8>(w12, w16);
    let x = _mm256_xor_si256(_mm256_xor_si256(w3, w8), _mm256_xor_si256(w14, w16));
    // Word t+3 lacked the term W[t] = ROTL¹(x₀): ROTL¹(x₃ ⊕ ROTL¹(x₀)) is
    // ROTL¹(x₃) ⊕ ROTL²(x₀).
    let fix = rotl::<2, 30>(_mm256_slli_si256::<12>(x));
    _mm256_xor_si256(rotl::<1, 31>(x), fix)
}

/// Words `t..t+4` of the schedule for `32 ≤ t < 80`, from the groups that start at `t-32`,
/// `t-28`, `t-16`, `t-8` and `t-4`, with the equivalent recurrence
/// `W[t] = ROTL²(W[t-6] ⊕ W[t-16] ⊕ W[t-28] ⊕ W[t-32])`, which holds for `t ≥ 32`.
#[target_feature(enable = "avx2")]
#[inline]
fn late(w32: __m256i, w28: __m256i, w16: __m256i, w8: __m256i, w4: __m256i) -> __m256i {
    // Words t-6..t-3: the top half of one group and the bottom half of the next.
    let w6 = _mm256_alignr_epi8::<8>(w4, w8);
    let x = _mm256_xor_si256(_mm256_xor_si256(w6, w16), _mm256_xor_si256(w28, w32));
    rotl::<2, 30>(x)
}

/// Computes group `j` of two blocks' schedules into `w[j]` and, with the round constant
/// added, into `wk[0][j]` and `wk[1][j]`; groups `0..j` must be in `w` already, and the
/// first four (the message words) are there from the start.
#[target_feature(enable = "avx2")]
#[inline]
fn step(j: usize, w: &mut Words, wk: &mut Pair) {
    match j {
        0..4 => {}
        4..8 => w[j] = early(w[j - 4], w[j - 3], w[j - 2], w[j - 1]),
        _ => w[j] = late(w[j - 8], w[j - 7], w[j - 4], w[j - 2], w[j - 1]),
    }
    // Group j holds words 4j..4j+4, all in the same stretch of 20 rounds; the constant is
    // reinterpreted as i32 for the intrinsic, the same bits.
    let sum = _mm256_add_epi32(w[j], _mm256_set1_epi32(K[j / 5] as i32));
    let [lo, hi] = wk;
    let (lo, hi) = (&mut lo[j], &mut hi[j]);
    // SAFETY: `lo` and `hi` are `[u32; 4]`, 16 bytes each, all written by these unaligned
    // 16-byte stores; AVX2 is enabled for this function.
    unsafe {
        _mm_storeu_si128(lo.as_mut_ptr().cast(), _mm256_castsi256_si128(sum));
        _mm_storeu_si128(hi.as_mut_ptr().cast(), _mm256_extracti128_si256::<1>(sum));
    }
}

/// The 80 rounds of block `H` of `wk` and the addition to the state (FIPS 180-4 §6.1.2 steps
/// 2-4), with `W[t] + K[t]` from `wk[H][t / 4][t % 4]`. Between the `j`-th and the next five
/// rounds (`j` in 0..15), `side(j, wk)` does the caller's work beside the rounds (see
/// [`pair`]).
#[target_feature(enable = "avx2,bmi1,bmi2")]
#[inline]
fn rounds<const H: usize>(
    state: &mut [u32; 5],
    wk: &mut Pair,
    mut side: impl FnMut(usize, &mut Pair),
) {
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    /// One round with function `$f` (§4.1.1): `e` receives `T` and `b` becomes `ROTL³⁰(b)`,
    /// so the next round takes the variables renamed (`e, a, b, c, d`) instead of moved.
    macro_rules! round {
        ($f:ident, $t:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident) => {
            let t: usize = $t;
            $e = $e
                .wrapping_add(wk[H][t / 4][t % 4])
                .wrapping_add($f!($b, $c, $d))
                .wrapping_add($a.rotate_left(5));
            $b = $b.rotate_left(30);
        };
    }
    /// Five rounds from `$t`, after which the names are back in place.
    macro_rules! rounds5 {
        ($f:ident, $t:expr) => {
            round!($f, $t, a, b, c, d, e);
            round!($f, $t + 1, e, a, b, c, d);
            round!($f, $t + 2, d, e, a, b, c);
            round!($f, $t + 3, c, d, e, a, b);
            round!($f, $t + 4, b, c, d, e, a);
        };
    }
    /// Rounds 0-19: Ch(x, y, z). The two terms have no bit in common, so they can be added
    /// instead of or-ed, which lets each join the sum on its own.
    macro_rules! ch {
        ($x:ident, $y:ident, $z:ident) => {
            ($x & $y).wrapping_add(!$x & $z)
        };
    }
    /// Rounds 20-39 and 60-79: Parity(x, y, z).
    macro_rules! parity {
        ($x:ident, $y:ident, $z:ident) => {
            $x ^ $y ^ $z
        };
    }
    /// Rounds 40-59: Maj(x, y, z).
    macro_rules! maj {
        ($x:ident, $y:ident, $z:ident) => {
            ($x & $y) | ($z & ($x | $y))
        };
    }

    rounds5!(ch, 0);
    side(0, wk);
    rounds5!(ch, 5);
    side(1, wk);
    rounds5!(ch, 10);
    side(2, wk);
    rounds5!(ch, 15);
    side(3, wk);
    rounds5!(parity, 20);
    side(4, wk);
    rounds5!(parity, 25);
    side(5, wk);
    rounds5!(parity, 30);
    side(6, wk);
    rounds5!(parity, 35);
    side(7, wk);
    rounds5!(maj, 40);
    side(8, wk);
    rounds5!(maj, 45);
    side(9, wk);
    rounds5!(maj, 50);
    side(10, wk);
    rounds5!(maj, 55);
    side(11, wk);
    rounds5!(parity, 60);
    side(12, wk);
    rounds5!(parity, 65);
    side(13, wk);
    rounds5!(parity, 70);
    side(14, wk);
    rounds5!(parity, 75);
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::portable;
    use super::BLOCK;

    /// [`super::compress`] behind the feature check its callers make (the portable code
    /// where the CPU lacks AVX2 or BMI2).
    fn compress(state: &mut [u32; 5], blocks: &[u8]) {
        super::super::compress_avx2(state, blocks);
    }

    /// Whether this CPU can run [`compress`] (as its caller checks).
    fn supported() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("bmi2")
    }

    /// xorshift64 (Marsaglia), for reproducible test data without a dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn word(&mut self) -> u32 {
            (self.next() >> 32) as u32
        }
    }

    #[test]
    fn matches_portable() {
        if !supported() {
            eprintln!("skipped: no AVX2/BMI2");
            return;
        }
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..200 {
            for n in 0..=5 {
                let state: [u32; 5] = core::array::from_fn(|_| rng.word());
                // Random bytes, and a few patterned messages (all zero, all ones, a counter).
                let data: Vec<u8> = match round % 4 {
                    0 => vec![0; n * BLOCK],
                    1 => vec![0xFF; n * BLOCK],
                    2 => (0..n * BLOCK).map(|i| i as u8).collect(),
                    _ => (0..n * BLOCK).map(|_| rng.next() as u8).collect(),
                };
                let (mut ours, mut theirs) = (state, state);
                compress(&mut ours, &data);
                portable::compress(&mut theirs, &data);
                assert_eq!(ours, theirs, "round {round}, {n} blocks");
            }
        }
    }

    /// Longer messages: many pairs with the next schedule computed beside the rounds.
    #[test]
    fn long_messages() {
        if !supported() {
            eprintln!("skipped: no AVX2/BMI2");
            return;
        }
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        for n in [6, 7, 8, 16, 17, 33] {
            let state: [u32; 5] = core::array::from_fn(|_| rng.word());
            let data: Vec<u8> = (0..n * BLOCK).map(|_| rng.next() as u8).collect();
            let (mut ours, mut theirs) = (state, state);
            compress(&mut ours, &data);
            portable::compress(&mut theirs, &data);
            assert_eq!(ours, theirs, "{n} blocks");
        }
    }

    #[test]
    fn unaligned_input() {
        if !supported() {
            eprintln!("skipped: no AVX2/BMI2");
            return;
        }
        let mut rng = XorShift(42);
        let buf: Vec<u8> = (0..5 * BLOCK + 31).map(|_| rng.next() as u8).collect();
        for offset in 0..32 {
            for n in 0..=5 {
                let data = &buf[offset..offset + n * BLOCK];
                let state: [u32; 5] = core::array::from_fn(|_| rng.word());
                let (mut ours, mut theirs) = (state, state);
                compress(&mut ours, data);
                portable::compress(&mut theirs, data);
                assert_eq!(ours, theirs, "offset {offset}, {n} blocks");
            }
        }
    }

    /// FIPS 180-4 example "abc" (one block, padded as in §5.1.1).
    #[test]
    fn fips_abc() {
        if !supported() {
            eprintln!("skipped: no AVX2/BMI2");
            return;
        }
        let mut block = [0u8; BLOCK];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[63] = 24; // the length in bits
        let mut state = [
            0x6745_2301,
            0xEFCD_AB89,
            0x98BA_DCFE,
            0x1032_5476,
            0xC3D2_E1F0,
        ];
        compress(&mut state, &block);
        assert_eq!(
            state,
            [
                0xa999_3e36,
                0x4706_816a,
                0xba3e_2571,
                0x7850_c26c,
                0x9cd0_d89d
            ]
        );
    }

    /// Speed against the portable code, printed only (no assertion: timings vary by machine):
    /// `cargo test -p srtp-core --release --lib backend::x86::schedule -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn speed() {
        if !supported() {
            eprintln!("skipped: no AVX2/BMI2");
            return;
        }
        type Compress = fn(&mut [u32; 5], &[u8]);
        let fns: [(&str, Compress); 2] = [("avx2", compress), ("portable", portable::compress)];
        for n in [1, 2, 3, 16] {
            let data: Vec<u8> = (0..n * BLOCK).map(|i| (i * 7 + 3) as u8).collect();
            let calls = 4800 / n;
            for (name, f) in fns {
                // The best of many short runs, to see past other work on the machine.
                let mut best = f64::MAX;
                for _ in 0..200 {
                    let mut state = [1, 2, 3, 4, 5];
                    let start = std::time::Instant::now();
                    for _ in 0..calls {
                        f(&mut state, std::hint::black_box(&data));
                    }
                    let ns = start.elapsed().as_nanos() as f64 / (calls * n) as f64;
                    best = best.min(ns);
                    std::hint::black_box(state);
                }
                println!("{name:>8}, {n:2} blocks a call: {best:6.1} ns a block");
            }
        }
    }
}
