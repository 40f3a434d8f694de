//! x86-64 SHA-1: AVX2 for one message and for eight lanes. The only `unsafe` code of the
//! crate lives below this module; each safe function here checks the CPU feature its
//! `#[target_feature]` code needs before calling it.

mod aes;
mod lanes;
mod schedule;
mod sha_ni;

use super::aes::AesKey;
use super::LANES;

pub(super) use aes::{NARROW as AES_NARROW, WIDE as AES_WIDE};

/// AES-NI (every x86-64 CPU with it has SSE2).
pub(super) fn has_aes_ni() -> bool {
    is_x86_feature_detected!("aes")
}

/// VAES with AVX2 and AES-NI (Ice Lake, Zen 3 and later).
pub(super) fn has_vaes() -> bool {
    is_x86_feature_detected!("vaes") && is_x86_feature_detected!("avx2") && has_aes_ni()
}

/// XORs `data` with the AES-CTR keystream blocks from `counter` on, with VAES if `vaes` (at
/// most [`AES_WIDE`] blocks) or else AES-NI (at most [`AES_NARROW`]); the last block may be
/// partial (see [`aes::ctr_xor_vaes`] and [`aes::ctr_xor_aesni`]).
pub(super) fn aes_ctr_xor(key: &AesKey, base: u128, counter: u16, data: &mut [u8], vaes: bool) {
    if vaes {
        assert!(has_vaes(), "callers check VAES first");
        assert!(data.len() <= AES_WIDE * 16, "at most {AES_WIDE} blocks");
        // SAFETY: VAES, AVX2 and AES-NI were just checked, what `aes::ctr_xor_vaes` requires.
        unsafe { aes::ctr_xor_vaes(key, base, counter, data) }
    } else {
        assert!(has_aes_ni(), "callers check AES-NI first");
        assert!(data.len() <= AES_NARROW * 16, "at most {AES_NARROW} blocks");
        // SAFETY: AES-NI was just checked, what `aes::ctr_xor_aesni` requires.
        unsafe { aes::ctr_xor_aesni(key, base, counter, data) }
    }
}

/// The most cache lines [`prefetch`] asks for at once (a session's keys take twelve).
#[cfg(not(feature = "portable"))]
const PREFETCH_LINES: usize = 32;

/// Asks the CPU to fetch the cache lines of `value` into the cache, at most
/// [`PREFETCH_LINES`] of them (see [`super::prefetch`]).
#[cfg(not(feature = "portable"))]
pub(super) fn prefetch<T: ?Sized>(value: &T) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    const LINE: usize = 64;
    let start = core::ptr::from_ref(value).cast::<i8>();
    let offset = start as usize % LINE;
    let lines = (offset + core::mem::size_of_val(value)).div_ceil(LINE);
    let first = start.wrapping_sub(offset);
    for k in 0..lines.min(PREFETCH_LINES) {
        // SAFETY: a prefetch neither reads into the program nor faults, whatever the address;
        // these are the lines of `value`, a live reference, and SSE (which `_mm_prefetch`
        // needs) is part of x86-64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(k * LINE)) };
    }
}

/// AVX2 and BMI2 (Haswell, Zen and later).
pub(super) fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("bmi2")
}

/// The SHA extensions with the SSE levels `sha_ni` uses with them.
pub(super) fn has_sha_ext() -> bool {
    is_x86_feature_detected!("sha")
        && is_x86_feature_detected!("sse4.1")
        && is_x86_feature_detected!("ssse3")
}

/// SHA-1 with the SHA extensions (`sha_ni`), a message's whole blocks in one call, the state
/// in registers from one block to the next.
pub(super) fn compress_sha_ext(state: &mut [u32; 5], blocks: &[u8]) {
    if has_sha_ext() {
        // SAFETY: the SHA extensions, SSSE3 and SSE4.1 were just detected, what
        // `sha_ni::compress` requires.
        unsafe { sha_ni::compress(state, blocks) };
    } else {
        super::portable::compress(state, blocks);
    }
}

/// An HMAC's padded inner tail and outer block with the SHA extensions, the outer block's
/// words from the inner digest's registers (see [`super::Backend::hmac_finish`]).
pub(super) fn hmac_finish_sha_ext(inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
    if has_sha_ext() {
        // SAFETY: the SHA extensions, SSSE3 and SSE4.1 were just detected, what
        // `sha_ni::hmac_finish` requires.
        unsafe { sha_ni::hmac_finish(inner, tail, outer) };
    } else {
        super::portable::hmac_finish(inner, tail, outer);
    }
}

/// [`super::absorb_ctr`] with the SHA extensions and AES-NI; `None` on a CPU without them.
pub(super) fn absorb_ctr_sha_ext(
    state: &mut [u32; 5],
    msg: &mut [u8],
    start: usize,
    key: &AesKey,
    base: u128,
) -> Option<usize> {
    if !(has_sha_ext() && has_aes_ni()) {
        return None;
    }
    // SAFETY: the SHA extensions, SSSE3, SSE4.1 and AES-NI were just detected, what
    // `sha_ni::absorb_ctr` requires.
    Some(unsafe { sha_ni::absorb_ctr(state, msg, start, key, base) })
}

/// One message, with the AVX2 message schedule.
pub(super) fn compress_avx2(state: &mut [u32; 5], blocks: &[u8]) {
    if has_avx2() {
        // SAFETY: AVX2 and BMI2 were just detected, what `schedule::compress` requires.
        unsafe { schedule::compress(state, blocks) };
    } else {
        super::portable::compress(state, blocks);
    }
}

/// An HMAC's padded inner tail and outer block, with the AVX2 message schedule (see
/// [`super::Backend::hmac_finish`]).
pub(super) fn hmac_finish_avx2(inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
    if has_avx2() {
        // SAFETY: AVX2 and BMI2 were just detected, what `schedule::hmac_finish` requires.
        unsafe { schedule::hmac_finish(inner, tail, outer) };
    } else {
        super::portable::hmac_finish(inner, tail, outer);
    }
}

/// Eight messages in the eight lanes of AVX2 registers (see [`super::compress_lanes`]).
pub(super) fn compress_lanes_avx2(
    states: &mut [[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) {
    if has_avx2() {
        // SAFETY: AVX2 was just detected, what `lanes::compress` requires.
        unsafe { lanes::compress(states, heads, tails) };
    } else {
        for ((s, h), t) in states.iter_mut().zip(heads).zip(tails) {
            super::portable::compress(s, h);
            super::portable::compress(s, t);
        }
    }
}

/// Eight HMACs in the eight lanes of AVX2 registers (see [`super::hmac_lanes`]).
pub(super) fn hmac_lanes_avx2(
    inner: &[[u32; 5]; LANES],
    outer: &[[u32; 5]; LANES],
    heads: &[&[u8]; LANES],
    tails: &[&[u8]; LANES],
) -> [[u32; 5]; LANES] {
    assert!(has_avx2(), "callers check AVX2 first");
    // SAFETY: AVX2 was just checked, what `lanes::hmac` requires.
    unsafe { lanes::hmac(inner, outer, heads, tails) }
}
