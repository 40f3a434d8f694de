//! SHA-1 with the CPU's SHA extensions (Intel Goldmont and Ice Lake on, AMD Zen on).
//!
//! `sha1rnds4` does four rounds (FIPS 180-4 §6.1.2 step 3) on `a, b, c, d` held in one
//! register, `a` in the top lane, given the four message words of those rounds with `e`
//! already added to the first; `sha1nexte` makes that `e` (the `ROTL³⁰` of the `a` four
//! rounds back) and adds it; `sha1msg1` and `sha1msg2` compute the message schedule (step 1)
//! four words at a time. A block is twenty such steps, one chain through the `a, b, c, d`
//! register, so its time is the latency of twenty `sha1rnds4`.
//!
//! What this module adds to a plain compression function is the HMAC's end in one call: the
//! inner hash's padded tail, then the outer block straight from the registers, since the
//! inner digest in its registers is already laid out as the outer block's first message words
//! (word 0 in the top lane, as a big-endian load with its bytes reversed puts it).

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_extract_epi32,
    _mm_loadu_si128, _mm_or_si128, _mm_set_epi32, _mm_set_epi64x, _mm_setzero_si128,
    _mm_sha1msg1_epu32, _mm_sha1msg2_epu32, _mm_sha1nexte_epu32, _mm_sha1rnds4_epu32,
    _mm_shuffle_epi8, _mm_storeu_si128, _mm_xor_si128,
};

use super::super::BLOCK;

/// A SHA-1 state in registers: `a, b, c, d` (a in the top lane) and `e` (top lane, the
/// others zero).
#[derive(Clone, Copy)]
struct State {
    abcd: __m128i,
    e: __m128i,
}

impl State {
    #[inline]
    #[target_feature(enable = "sse4.1")]
    fn load(s: &[u32; 5]) -> State {
        // The words' bits, reinterpreted as the intrinsics' `i32`.
        let w = s.map(|x| x as i32);
        State {
            abcd: _mm_set_epi32(w[0], w[1], w[2], w[3]),
            e: _mm_set_epi32(w[4], 0, 0, 0),
        }
    }

    #[inline]
    #[target_feature(enable = "sse4.1")]
    fn store(self, s: &mut [u32; 5]) {
        // Lane 3 is `a`; `as u32` takes back the bits `load` gave as `i32`.
        *s = [
            _mm_extract_epi32::<3>(self.abcd) as u32,
            _mm_extract_epi32::<2>(self.abcd) as u32,
            _mm_extract_epi32::<1>(self.abcd) as u32,
            _mm_extract_epi32::<0>(self.abcd) as u32,
            _mm_extract_epi32::<3>(self.e) as u32,
        ];
    }
}

/// Message words `4i..4i+4` of a block from its bytes: big-endian words (FIPS 180-4 §3.1),
/// word `4i` in the top lane.
#[inline]
#[target_feature(enable = "ssse3")]
fn load_words(block: &[u8; BLOCK], i: usize) -> __m128i {
    let bytes = &block[16 * i..16 * i + 16];
    // SAFETY: `bytes` is 16 bytes long, which the unaligned 16-byte load reads exactly; SSE2
    // (for the load) is part of x86-64.
    let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
    // All sixteen bytes reversed: each word's bytes in host order, word 0 in the top lane.
    let reverse = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0A0B_0C0D_0E0F);
    _mm_shuffle_epi8(v, reverse)
}

/// One block's 80 rounds from its sixteen message words, and the addition to the state
/// (FIPS 180-4 §6.1.2 steps 2–4).
#[inline]
#[target_feature(enable = "sha,sse4.1")]
fn block(state: State, w: [__m128i; 4]) -> State {
    let [mut w0, mut w1, mut w2, mut w3] = w;
    let mut abcd = state.abcd;
    // Step 0's `e` is the state's; every later step's is `ROTL³⁰` of the `a` that entered
    // the step before (`before`).
    let mut before = abcd;
    abcd = _mm_sha1rnds4_epu32::<0>(abcd, _mm_add_epi32(state.e, w0));
    /// Four rounds with function `$f` (0 choice, 1 parity, 2 majority, 3 parity) on the
    /// message group in `$w`.
    macro_rules! step {
        ($f:literal, $w:expr) => {
            let e_w = _mm_sha1nexte_epu32(before, $w);
            before = abcd;
            abcd = _mm_sha1rnds4_epu32::<$f>(abcd, e_w);
        };
    }
    /// The next message group into `$w` (which holds the group four back) from the three
    /// after it, then four rounds on it.
    macro_rules! next {
        ($f:literal, $w:ident, $w1:ident, $w2:ident, $w3:ident) => {
            $w = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32($w, $w1), $w2), $w3);
            step!($f, $w);
        };
    }
    step!(0, w1);
    step!(0, w2);
    step!(0, w3);
    next!(0, w0, w1, w2, w3);
    next!(1, w1, w2, w3, w0);
    next!(1, w2, w3, w0, w1);
    next!(1, w3, w0, w1, w2);
    next!(1, w0, w1, w2, w3);
    next!(1, w1, w2, w3, w0);
    next!(2, w2, w3, w0, w1);
    next!(2, w3, w0, w1, w2);
    next!(2, w0, w1, w2, w3);
    next!(2, w1, w2, w3, w0);
    next!(2, w2, w3, w0, w1);
    next!(3, w3, w0, w1, w2);
    next!(3, w0, w1, w2, w3);
    next!(3, w1, w2, w3, w0);
    next!(3, w2, w3, w0, w1);
    next!(3, w3, w0, w1, w2);
    State {
        abcd: _mm_add_epi32(abcd, state.abcd),
        e: _mm_sha1nexte_epu32(before, state.e),
    }
}

/// Absorbs the whole blocks of `blocks` into `state`.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn absorb(mut state: State, blocks: &[u8]) -> State {
    for b in blocks.chunks_exact(BLOCK) {
        let b: &[u8; BLOCK] = b.try_into().expect("a whole block");
        state = block(state, [0, 1, 2, 3].map(|i| load_words(b, i)));
    }
    state
}

/// Absorbs the whole blocks of `blocks` into `state`.
///
/// # Safety
/// The CPU must have the SHA extensions, SSSE3 and SSE4.1.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn compress(state: &mut [u32; 5], blocks: &[u8]) {
    absorb(State::load(state), blocks).store(state);
}

/// An HMAC's last two steps: the inner hash's padded `tail` into `inner`, then the outer
/// hash's only block into `outer` (see [`super::super::Backend::hmac_finish`]), its message
/// words taken from the inner digest's registers.
///
/// # Safety
/// The CPU must have the SHA extensions, SSSE3 and SSE4.1.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn hmac_finish(inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
    let digest = absorb(State::load(inner), tail);
    digest.store(inner);
    // The outer message: the digest (`a..d` as they lie, `e` in the top lane of the second
    // group with `0x80` after it), zeros, and the length, 672 bits (64 + 20 bytes).
    let pad = _mm_set_epi32(0, 0x8000_0000u32 as i32, 0, 0);
    let words = [
        digest.abcd,
        _mm_or_si128(digest.e, pad),
        _mm_setzero_si128(),
        _mm_set_epi32(0, 0, 0, ((BLOCK + 20) * 8) as i32),
    ];
    block(State::load(outer), words).store(outer);
}

/// Counter block `counter` of the keystream whose first block is `base` (RFC 3711 §4.1.1:
/// the low 16 bits count), as the AES instructions take it (the block's bytes in memory
/// order), made in registers.
#[inline]
#[target_feature(enable = "sse2")]
fn counter_block(base: u128, counter: u16) -> __m128i {
    let v = (base & !0xffff) | u128::from(counter);
    // Big-endian bytes, loaded little-endian: the first eight bytes are the low lane.
    let lo = ((v >> 64) as u64).swap_bytes();
    let hi = (v as u64).swap_bytes();
    _mm_set_epi64x(hi as i64, lo as i64)
}

/// XORs `N` keystream blocks, from counter `counter` on, into `data` (`16 N` bytes).
#[inline]
#[target_feature(enable = "sse2,aes")]
fn ctr_xor<const N: usize>(rk: &[__m128i], base: u128, counter: u16, data: &mut [u8]) {
    let rounds = rk.len() - 1;
    let mut x: [__m128i; N] = core::array::from_fn(|i| {
        _mm_xor_si128(counter_block(base, counter.wrapping_add(i as u16)), rk[0])
    });
    for k in &rk[1..rounds] {
        for b in &mut x {
            *b = _mm_aesenc_si128(*b, *k);
        }
    }
    for (b, d) in x.iter_mut().zip(data.chunks_exact_mut(16)) {
        let ks = _mm_aesenclast_si128(*b, rk[rounds]);
        // SAFETY: `d` is 16 bytes, read and written whole by these unaligned accesses.
        unsafe {
            let p = d.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), ks));
        }
    }
}

/// Absorbs `msg`'s whole blocks into `state` and, behind the hashing, XORs the AES-CTR
/// keystream (key `key`, first counter block `base`) into the payload `msg[start..]`: each
/// 16-byte block of it as soon as the hash has read all of its bytes, so that the AES
/// instructions run beside the latency-bound chain of `sha1rnds4`. Returns where the payload
/// is decrypted up to (its whole AES blocks inside the hashed blocks); the rest is the
/// caller's.
///
/// # Safety
/// The CPU must have the SHA extensions, SSSE3, SSE4.1 and AES-NI.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1,aes")]
pub(super) unsafe fn absorb_ctr(
    state: &mut [u32; 5],
    msg: &mut [u8],
    start: usize,
    key: &crate::backend::aes::AesKey,
    base: u128,
) -> usize {
    let keys = key.round_keys();
    let mut rk = [_mm_setzero_si128(); 15];
    for (r, k) in rk.iter_mut().zip(keys) {
        // SAFETY: `k` is 16 bytes, which the unaligned load reads exactly.
        *r = unsafe { _mm_loadu_si128(k.as_ptr().cast()) };
    }
    let rk = &rk[..keys.len()];
    let mut st = State::load(state);
    let mut done = start;
    let mut counter = 0u16;
    let whole = msg.len() / BLOCK;
    for k in 0..whole {
        let w = {
            let b: &[u8; BLOCK] = msg[k * BLOCK..(k + 1) * BLOCK]
                .try_into()
                .expect("a whole block");
            [0, 1, 2, 3].map(|i| load_words(b, i))
        };
        // Every byte up to the end of this block is read: its AES blocks may change.
        let limit = (k + 1) * BLOCK;
        let mut n = limit.saturating_sub(done) / 16;
        while n >= 4 {
            ctr_xor::<4>(rk, base, counter, &mut msg[done..done + 64]);
            (done, counter, n) = (done + 64, counter.wrapping_add(4), n - 4);
        }
        while n > 0 {
            ctr_xor::<1>(rk, base, counter, &mut msg[done..done + 16]);
            (done, counter, n) = (done + 16, counter.wrapping_add(1), n - 1);
        }
        st = block(st, w);
    }
    st.store(state);
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::aes::AesKey;

    /// [`absorb_ctr`] against the two jobs done apart (the portable compression, then the
    /// AES-NI keystream): the same state and the same bytes, for messages of every length up
    /// to 23 blocks, payloads starting anywhere in the first two blocks, every key size.
    #[test]
    fn absorb_ctr_matches_hashing_then_decrypting() {
        if !(super::super::has_sha_ext() && super::super::has_aes_ni()) {
            eprintln!("skipped: no SHA extensions or AES-NI");
            return;
        }
        for key_len in [16, 24, 32] {
            let key = AesKey::new(&vec![0x5a; key_len]);
            let base = u128::from_be_bytes([0xc3; 16]) & !0xffff;
            for len in (0..1500).step_by(7) {
                for start in [0, 12, 16, 20, 63, 76].into_iter().filter(|&s| s <= len) {
                    let msg: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
                    let mut got = msg.clone();
                    let mut state = [1, 2, 3, 4, 5];
                    // SAFETY: the features were checked above.
                    let done = unsafe { absorb_ctr(&mut state, &mut got, start, &key, base) };
                    let whole = len / BLOCK * BLOCK;
                    let mut want_state = [1, 2, 3, 4, 5];
                    super::super::super::portable::compress(&mut want_state, &msg[..whole]);
                    assert_eq!(state, want_state, "len {len} start {start}");
                    assert!(done >= start && done <= whole.max(start));
                    assert_eq!((done - start) % 16, 0);
                    assert!(whole < start + 16 || done + 16 > whole, "all it could");
                    let mut want = msg.clone();
                    for (c, chunk) in want[start..done].chunks_mut(16 * 8).enumerate() {
                        super::super::aes_ctr_xor(&key, base, 8 * c as u16, chunk, false);
                    }
                    assert_eq!(got, want, "len {len} start {start} key {key_len}");
                }
            }
        }
    }
}
