//! AES-CTR keystreams with the CPU's AES instructions: the key schedule expanded here once per
//! key (FIPS 197 §5.2), the blocks encrypted by the kernels in [`super::x86`] — eight blocks in
//! flight with AES-NI, sixteen (two per 256-bit register) with VAES.
//!
//! The `aes` crate does the same job portably, but on this code's hot path it leaves speed
//! behind: its wide VAES path is enabled only on CPUs whose AVX-512 state the OS has switched
//! on (so never on AVX2-only CPUs such as AMD Zen 3), and a packet's last blocks go through
//! one block at a time. SRTP packets are short, so both matter.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The AES S-box (FIPS 197 §5.1.1), computed at compile time: the multiplicative inverse in
/// GF(2^8) followed by the affine transformation.
const SBOX: [u8; 256] = sbox();

const fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

const fn sbox() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        // x^254 is the inverse of x (and maps 0 to 0).
        let mut inv = 1u8;
        let mut i = 0;
        while i < 254 {
            inv = gf_mul(inv, x as u8);
            i += 1;
        }
        let b = inv;
        table[x] =
            b ^ b.rotate_left(1) ^ b.rotate_left(2) ^ b.rotate_left(3) ^ b.rotate_left(4) ^ 0x63;
        x += 1;
    }
    table
}

/// Round keys for AES-128, -192 or -256, as the AES instructions take them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct AesKey {
    round_keys: [[u8; 16]; 15],
    #[zeroize(skip)]
    rounds: usize,
}

impl AesKey {
    /// Expands a 16-, 24- or 32-byte key (FIPS 197 §5.2).
    ///
    /// # Panics
    /// On any other length; callers pass lengths fixed by the profile.
    pub(crate) fn new(key: &[u8]) -> Self {
        assert!(
            matches!(key.len(), 16 | 24 | 32),
            "AES key of {} bytes",
            key.len()
        );
        let nk = key.len() / 4;
        let rounds = nk + 6;
        let mut w = [[0u8; 4]; 60];
        for (w, k) in w.iter_mut().zip(key.chunks_exact(4)) {
            w.copy_from_slice(k);
        }
        let mut rcon = 1u8;
        for i in nk..4 * (rounds + 1) {
            let mut t = w[i - 1];
            if i % nk == 0 {
                t = [t[1], t[2], t[3], t[0]].map(|b| SBOX[usize::from(b)]);
                t[0] ^= rcon;
                rcon = gf_mul(rcon, 2);
            } else if nk > 6 && i % nk == 4 {
                t = t.map(|b| SBOX[usize::from(b)]);
            }
            for j in 0..4 {
                w[i][j] = w[i - nk][j] ^ t[j];
            }
        }
        let mut round_keys = [[0u8; 16]; 15];
        for (rk, words) in round_keys.iter_mut().zip(w.chunks_exact(4)) {
            for (dst, word) in rk.chunks_exact_mut(4).zip(words) {
                dst.copy_from_slice(word);
            }
        }
        w.zeroize();
        Self { round_keys, rounds }
    }

    /// The round keys 0..=rounds.
    pub(crate) fn round_keys(&self) -> &[[u8; 16]] {
        &self.round_keys[..=self.rounds]
    }
}

/// An AES-CTR keystream generator on the CPU's AES instructions.
#[derive(Clone)]
pub(crate) struct AesCtr {
    key: AesKey,
    #[cfg(target_arch = "x86_64")]
    vaes: bool,
}

impl AesCtr {
    /// The generator for `key`, or `None` where this CPU has no AES instructions this code
    /// uses (or the `portable` feature is on): the caller then uses the `aes` crate.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        if cfg!(feature = "portable") {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if super::x86::has_aes_ni() {
            return Some(Self {
                key: AesKey::new(key),
                vaes: super::x86::has_vaes(),
            });
        }
        let _ = key;
        None
    }

    /// The expanded key (for kernels that run AES beside other work).
    pub(crate) fn key(&self) -> &AesKey {
        &self.key
    }

    /// XORs `data` with the keystream that starts at counter block `iv` (whose last two bytes
    /// are zero and count the blocks, RFC 3711 §4.1.1), from block `counter` of it on.
    pub(crate) fn apply_keystream_from(&self, iv: &[u8; 16], counter: u16, data: &mut [u8]) {
        let base = u128::from_be_bytes(*iv);
        #[cfg(target_arch = "x86_64")]
        {
            let width = if self.vaes {
                super::x86::AES_WIDE
            } else {
                super::x86::AES_NARROW
            };
            let mut counter = counter;
            for chunk in data.chunks_mut(width * 16) {
                super::x86::aes_ctr_xor(&self.key, base, counter, chunk, self.vaes);
                counter = counter.wrapping_add(width as u16);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (base, counter, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbox_matches_fips_197() {
        assert_eq!(SBOX[0x00], 0x63);
        assert_eq!(SBOX[0x01], 0x7c);
        assert_eq!(SBOX[0x53], 0xed);
        assert_eq!(SBOX[0xff], 0x16);
        let mut seen = [false; 256];
        for v in SBOX {
            seen[usize::from(v)] = true;
        }
        assert!(seen.iter().all(|&s| s), "the S-box is a permutation");
    }

    /// FIPS 197 Appendix A: the last round key of each key size.
    #[test]
    fn key_expansion_matches_fips_197_appendix_a() {
        let cases: [(&str, &str); 3] = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "d014f9a8c9ee2589e13f0cc8b6630ca6",
            ),
            (
                "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
                "e98ba06f448c773c8ecc720401002202",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "fe4890d1e6188d0b046df344706c631e",
            ),
        ];
        for (key, last) in cases {
            let k = AesKey::new(&hex::decode(key).unwrap());
            assert_eq!(hex::encode(k.round_keys().last().unwrap()), last);
        }
    }

    /// Both kernels (AES-NI and VAES, where the CPU has them) against the `aes` crate, for
    /// every length up to 40 blocks and every key size.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_kernels_match_the_aes_crate() {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let mut kernels = Vec::new();
        if super::super::x86::has_aes_ni() {
            kernels.push(false);
        }
        if super::super::x86::has_vaes() {
            kernels.push(true);
        }
        for key_len in [16usize, 24, 32] {
            let key: Vec<u8> = (0..key_len as u8).map(|i| i ^ 0x5c).collect();
            let iv: [u8; 16] = core::array::from_fn(|i| if i < 14 { 0xf0 ^ i as u8 } else { 0 });
            let mut want = vec![0u8; 40 * 16];
            for (c, block) in want.chunks_exact_mut(16).enumerate() {
                let mut b = aes::Block::from(iv);
                b[14..].copy_from_slice(&(c as u16).to_be_bytes());
                match key_len {
                    16 => aes::Aes128Enc::new_from_slice(&key)
                        .unwrap()
                        .encrypt_block(&mut b),
                    24 => aes::Aes192Enc::new_from_slice(&key)
                        .unwrap()
                        .encrypt_block(&mut b),
                    _ => aes::Aes256Enc::new_from_slice(&key)
                        .unwrap()
                        .encrypt_block(&mut b),
                }
                block.copy_from_slice(&b);
            }
            for &vaes in &kernels {
                let ctr = AesCtr {
                    key: AesKey::new(&key),
                    vaes,
                };
                // Every length, from the first block and from blocks inside and across the
                // kernels' widths.
                for from in [0usize, 1, 7, 8, 16, 17] {
                    for len in from * 16..=want.len() {
                        let mut got = vec![0u8; len - from * 16];
                        ctr.apply_keystream_from(&iv, from as u16, &mut got);
                        assert_eq!(
                            got,
                            want[from * 16..len],
                            "AES-{} vaes={vaes} from block {from}, to byte {len}",
                            key_len * 8
                        );
                    }
                }
                // The keystream is XORed into the data, not written over it.
                let data: Vec<u8> = (0..want.len()).map(|i| (i * 31 + 7) as u8).collect();
                let mut got = data.clone();
                ctr.apply_keystream_from(&iv, 0, &mut got);
                let xored: Vec<u8> = data.iter().zip(&want).map(|(d, k)| d ^ k).collect();
                assert_eq!(got, xored, "AES-{} vaes={vaes}: XOR", key_len * 8);
            }
        }
    }

    /// The block counter is the IV's last 16 bits and wraps within them (RFC 3711 §4.1.1):
    /// from near 0xFFFF on, both kernels agree with the `aes` crate block by block.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn block_counter_wraps_in_16_bits() {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let key = [0x2bu8; 16];
        let iv: [u8; 16] = core::array::from_fn(|i| if i < 14 { 0x0f ^ i as u8 } else { 0 });
        let aes = aes::Aes128Enc::new_from_slice(&key).unwrap();
        let from = 0xFFF3u16;
        let want: Vec<u8> = (0..40u16)
            .flat_map(|c| {
                let mut b = aes::Block::from(iv);
                b[14..].copy_from_slice(&from.wrapping_add(c).to_be_bytes());
                aes.encrypt_block(&mut b);
                b.to_vec()
            })
            .collect();
        for vaes in [false, true] {
            let ok = if vaes {
                super::super::x86::has_vaes()
            } else {
                super::super::x86::has_aes_ni()
            };
            if !ok {
                continue;
            }
            let ctr = AesCtr {
                key: AesKey::new(&key),
                vaes,
            };
            for len in [16, 200, 40 * 16] {
                let mut got = vec![0u8; len];
                ctr.apply_keystream_from(&iv, from, &mut got);
                assert_eq!(got, want[..len], "vaes={vaes}, {len} bytes");
            }
        }
    }
}
