//! AES-CTR keystream blocks (FIPS 197 §5.1, RFC 3711 §4.1.1) with AES-NI, eight blocks in
//! flight, and with VAES, sixteen in flight two per 256-bit register. AES rounds have a
//! latency of several cycles but a throughput of one or two per cycle, so only many
//! independent counter blocks keep the units busy; the round keys stay in registers.

use core::arch::x86_64::*;

use crate::backend::aes::AesKey;

/// The most keystream blocks one call produces.
pub(in crate::backend) const WIDE: usize = 16;

/// The counter block for block `i` after `counter`: the last two bytes of `base` replaced by
/// the 16-bit block counter, as RFC 3711 §4.1.1 lays it out.
fn counter_block(base: u128, counter: u16, i: usize) -> [u8; 16] {
    ((base & !0xffff) | u128::from(counter.wrapping_add(i as u16))).to_be_bytes()
}

/// Fills `ks` with the keystream blocks from `counter` on with AES-NI and returns how many it
/// made: up to 8, and `blocks` if fewer are needed.
///
/// # Safety
/// The CPU must have AES-NI.
pub(super) unsafe fn ctr_aesni(
    key: &AesKey,
    base: u128,
    counter: u16,
    blocks: usize,
    ks: &mut [[u8; 16]; WIDE],
) -> usize {
    if blocks > 4 {
        // SAFETY: the caller guarantees AES-NI (SSE2 is part of x86-64), the only features.
        unsafe { aesni::<8>(key, base, counter, ks) };
        blocks.min(8)
    } else {
        // SAFETY: as above.
        unsafe { aesni::<4>(key, base, counter, ks) };
        blocks
    }
}

/// As [`ctr_aesni`] with VAES: up to 16 blocks.
///
/// # Safety
/// The CPU must have VAES, AVX2 and AES-NI.
pub(super) unsafe fn ctr_vaes(
    key: &AesKey,
    base: u128,
    counter: u16,
    blocks: usize,
    ks: &mut [[u8; 16]; WIDE],
) -> usize {
    if blocks >= 12 {
        // SAFETY: the caller guarantees VAES, AVX2 and AES-NI, the function's only features.
        unsafe { vaes::<8>(key, base, counter, ks) };
        blocks.min(16)
    } else if blocks > 4 {
        // SAFETY: as above.
        unsafe { vaes::<4>(key, base, counter, ks) };
        blocks.min(8)
    } else {
        // SAFETY: as above.
        unsafe { vaes::<2>(key, base, counter, ks) };
        blocks
    }
}

#[inline]
#[target_feature(enable = "sse2")]
fn load128(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 bytes, exactly what an unaligned 128-bit load reads.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "sse2")]
fn store128(b: &mut [u8; 16], v: __m128i) {
    // SAFETY: `b` is 16 bytes, exactly what an unaligned 128-bit store writes.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
}

/// `N` counter blocks encrypted side by side into `ks[..N]`.
#[target_feature(enable = "aes")]
fn aesni<const N: usize>(key: &AesKey, base: u128, counter: u16, ks: &mut [[u8; 16]; WIDE]) {
    let rk = key.round_keys();
    let (first, rest) = rk.split_first().expect("round keys");
    let (last, middle) = rest.split_last().expect("round keys");
    let k0 = load128(first);
    let mut b = [_mm_setzero_si128(); N];
    for (i, b) in b.iter_mut().enumerate() {
        *b = _mm_xor_si128(load128(&counter_block(base, counter, i)), k0);
    }
    for k in middle {
        let k = load128(k);
        for b in &mut b {
            *b = _mm_aesenc_si128(*b, k);
        }
    }
    let k = load128(last);
    for (o, b) in ks.iter_mut().zip(b) {
        store128(o, _mm_aesenclast_si128(b, k));
    }
}

/// `2N` counter blocks encrypted side by side, two per 256-bit register, into `ks[..2N]`.
#[target_feature(enable = "vaes,avx2,aes")]
fn vaes<const N: usize>(key: &AesKey, base: u128, counter: u16, ks: &mut [[u8; 16]; WIDE]) {
    let rk = key.round_keys();
    let (first, rest) = rk.split_first().expect("round keys");
    let (last, middle) = rest.split_last().expect("round keys");
    let k0 = _mm256_broadcastsi128_si256(load128(first));
    let mut b = [_mm256_setzero_si256(); N];
    for (i, b) in b.iter_mut().enumerate() {
        let lo = load128(&counter_block(base, counter, 2 * i));
        let hi = load128(&counter_block(base, counter, 2 * i + 1));
        let pair = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi);
        *b = _mm256_xor_si256(pair, k0);
    }
    for k in middle {
        let k = _mm256_broadcastsi128_si256(load128(k));
        for b in &mut b {
            *b = _mm256_aesenc_epi128(*b, k);
        }
    }
    let k = _mm256_broadcastsi128_si256(load128(last));
    for (i, b) in b.into_iter().enumerate() {
        let x = _mm256_aesenclast_epi128(b, k);
        store128(&mut ks[2 * i], _mm256_castsi256_si128(x));
        store128(&mut ks[2 * i + 1], _mm256_extracti128_si256::<1>(x));
    }
}
