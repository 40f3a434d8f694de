//! AES-CTR (FIPS 197 §5.1, RFC 3711 §4.1.1) with AES-NI, up to eight blocks in flight, and
//! with VAES, up to sixteen in flight two per 256-bit register. AES rounds have a latency of
//! several cycles but a throughput of one or two per cycle, so only many independent counter
//! blocks keep the units busy; the round keys stay in registers, and the keystream is XORed
//! into the data straight from the registers.
//!
//! Each call takes one stretch of at most [`WIDE`] blocks and encrypts exactly as many
//! counter blocks as the stretch needs, all in flight at once: one kernel per register count,
//! so a 160-byte audio payload is one pass of ten blocks, not a pass of eight and one of four.

use core::arch::x86_64::*;

use crate::backend::aes::AesKey;

/// The most keystream blocks one call produces.
pub(in crate::backend) const WIDE: usize = 16;

/// The counter block for block `i` after `counter`: the last two bytes of `base` replaced by
/// the 16-bit block counter, as RFC 3711 §4.1.1 lays it out.
fn counter_block(base: u128, counter: u16, i: usize) -> [u8; 16] {
    ((base & !0xffff) | u128::from(counter.wrapping_add(i as u16))).to_be_bytes()
}

/// The most blocks one call of [`ctr_xor_aesni`] takes.
pub(in crate::backend) const NARROW: usize = 8;

/// XORs `data` (at most [`NARROW`] blocks, the last maybe partial) with the keystream blocks
/// from `counter` on, with AES-NI.
///
/// # Safety
/// The CPU must have AES-NI.
pub(super) unsafe fn ctr_xor_aesni(key: &AesKey, base: u128, counter: u16, data: &mut [u8]) {
    debug_assert!(data.len() <= NARROW * 16);
    // SAFETY: in every arm, the caller guarantees AES-NI (SSE2 is part of x86-64), the kernels'
    // only features; `data` holds at most as many blocks as the kernel encrypts.
    unsafe {
        match data.len().div_ceil(16) {
            0 => {}
            1 => aesni::<1>(key, base, counter, data),
            2 => aesni::<2>(key, base, counter, data),
            3 => aesni::<3>(key, base, counter, data),
            4 => aesni::<4>(key, base, counter, data),
            5 => aesni::<5>(key, base, counter, data),
            6 => aesni::<6>(key, base, counter, data),
            7 => aesni::<7>(key, base, counter, data),
            _ => aesni::<8>(key, base, counter, data),
        }
    }
}

/// As [`ctr_xor_aesni`] with VAES, for at most [`WIDE`] blocks.
///
/// # Safety
/// The CPU must have VAES, AVX2 and AES-NI.
pub(super) unsafe fn ctr_xor_vaes(key: &AesKey, base: u128, counter: u16, data: &mut [u8]) {
    debug_assert!(data.len() <= WIDE * 16);
    // SAFETY: in every arm, the caller guarantees VAES, AVX2 and AES-NI, the kernels' only
    // features; `data` holds at most twice as many blocks as the kernel has registers.
    unsafe {
        match data.len().div_ceil(32) {
            0 => {}
            1 => vaes::<1>(key, base, counter, data),
            2 => vaes::<2>(key, base, counter, data),
            3 => vaes::<3>(key, base, counter, data),
            4 => vaes::<4>(key, base, counter, data),
            5 => vaes::<5>(key, base, counter, data),
            6 => vaes::<6>(key, base, counter, data),
            7 => vaes::<7>(key, base, counter, data),
            _ => vaes::<8>(key, base, counter, data),
        }
    }
}

#[inline]
#[target_feature(enable = "sse2")]
fn load128(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 bytes, exactly what an unaligned 128-bit load reads.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// XORs `data` (at most 16 bytes) with the block `ks`, with whole-block loads and stores when
/// `data` is a whole block.
#[inline]
#[target_feature(enable = "sse2")]
fn xor128(data: &mut [u8], ks: __m128i) {
    if let Ok(d) = <&mut [u8; 16]>::try_from(&mut *data) {
        let x = _mm_xor_si128(load128(d), ks);
        // SAFETY: `d` is 16 bytes, exactly what an unaligned 128-bit store writes.
        unsafe { _mm_storeu_si128(d.as_mut_ptr().cast(), x) };
    } else {
        let mut block = [0u8; 16];
        block[..data.len()].copy_from_slice(data);
        let x = _mm_xor_si128(load128(&block), ks);
        // SAFETY: as above, into the 16-byte `block`.
        unsafe { _mm_storeu_si128(block.as_mut_ptr().cast(), x) };
        data.copy_from_slice(&block[..data.len()]);
    }
}

/// XORs `data` (at most 32 bytes) with the two blocks of `ks`.
#[inline]
#[target_feature(enable = "avx2")]
fn xor256(data: &mut [u8], ks: __m256i) {
    if let Ok(d) = <&mut [u8; 32]>::try_from(&mut *data) {
        // SAFETY: `d` is 32 bytes, exactly what an unaligned 256-bit load and store touch.
        unsafe {
            let x = _mm256_xor_si256(_mm256_loadu_si256(d.as_ptr().cast()), ks);
            _mm256_storeu_si256(d.as_mut_ptr().cast(), x);
        }
    } else {
        let (lo, hi) = data.split_at_mut(data.len().min(16));
        xor128(lo, _mm256_castsi256_si128(ks));
        if !hi.is_empty() {
            xor128(hi, _mm256_extracti128_si256::<1>(ks));
        }
    }
}

/// `N` counter blocks encrypted side by side and XORed into `data` (more than `N - 1` and at
/// most `N` blocks).
#[target_feature(enable = "aes")]
fn aesni<const N: usize>(key: &AesKey, base: u128, counter: u16, data: &mut [u8]) {
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
    for (d, b) in data.chunks_mut(16).zip(b) {
        xor128(d, _mm_aesenclast_si128(b, k));
    }
}

/// `2N` counter blocks encrypted side by side, two per 256-bit register, and XORed into
/// `data` (more than `2N - 2` and at most `2N` blocks).
#[target_feature(enable = "vaes,avx2,aes")]
fn vaes<const N: usize>(key: &AesKey, base: u128, counter: u16, data: &mut [u8]) {
    let rk = key.round_keys();
    let (first, rest) = rk.split_first().expect("round keys");
    let (last, middle) = rest.split_last().expect("round keys");
    let k0 = _mm256_broadcastsi128_si256(load128(first));
    // The counter blocks are made in registers: the first one in both halves, with its
    // 16-bit block counter (the last two bytes, big-endian) turned little-endian so that a
    // 16-bit addition counts it on, modulo 2^16 as RFC 3711 §4.1.1 wants; then turned back.
    let swap = _mm256_setr_epi8(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 14, //
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 14,
    );
    let start = _mm256_broadcastsi128_si256(load128(&counter_block(base, counter, 0)));
    let start = _mm256_shuffle_epi8(start, swap);
    let mut b = [_mm256_setzero_si256(); N];
    for (i, b) in b.iter_mut().enumerate() {
        // Blocks 2i and 2i + 1: the 16-bit word 7 of each half counted on. The values are
        // below 16, so the casts to i16 are exact.
        let (lo, hi) = ((2 * i) as i16, (2 * i + 1) as i16);
        let step = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, lo, 0, 0, 0, 0, 0, 0, 0, hi);
        let pair = _mm256_shuffle_epi8(_mm256_add_epi16(start, step), swap);
        *b = _mm256_xor_si256(pair, k0);
    }
    for k in middle {
        let k = _mm256_broadcastsi128_si256(load128(k));
        for b in &mut b {
            *b = _mm256_aesenc_epi128(*b, k);
        }
    }
    let k = _mm256_broadcastsi128_si256(load128(last));
    for (d, b) in data.chunks_mut(32).zip(b) {
        xor256(d, _mm256_aesenclast_epi128(b, k));
    }
}
