//! AES in counter mode (RFC 3711 §4.1.1, RFC 6188 §3) for packets and for the key derivation
//! PRF.

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::{Aes128Enc, Aes192Enc, Aes256Enc};

use crate::backend::aes::AesCtr;

/// Counter blocks encrypted per call into the block cipher: a whole 1500-byte packet, so
/// that the `aes` crate's widest path (30 blocks at a time with VAES, 8 with AES-NI) runs
/// over as many of its blocks as it can.
const PAR_BLOCKS: usize = 96;

/// The keystream buffer for packets of up to 256 bytes (a G.711 or Opus packet).
const SMALL_BLOCKS: usize = 16;

/// An expanded AES key used as a keystream generator: srtp-core's own AES-NI/VAES code where
/// the CPU has it ([`AesCtr`]), the `aes` crate otherwise. Key schedules zeroize on drop.
#[derive(Clone)]
pub(crate) struct AesCm {
    soft: Soft,
    fast: Option<AesCtr>,
}

/// The `aes` crate's key schedule.
#[derive(Clone)]
enum Soft {
    Aes128(Aes128Enc),
    Aes192(Aes192Enc),
    Aes256(Aes256Enc),
}

impl AesCm {
    /// Expands `key` (16, 24 or 32 bytes).
    ///
    /// # Panics
    /// On any other key length; callers pass lengths fixed by the profile.
    pub(crate) fn new(key: &[u8]) -> Self {
        let soft = match key.len() {
            16 => Soft::Aes128(Aes128Enc::new_from_slice(key).expect("16 bytes")),
            24 => Soft::Aes192(Aes192Enc::new_from_slice(key).expect("24 bytes")),
            32 => Soft::Aes256(Aes256Enc::new_from_slice(key).expect("32 bytes")),
            n => panic!("AES key of {n} bytes"),
        };
        Self {
            soft,
            fast: AesCtr::new(key),
        }
    }

    /// The same key on the `aes` crate only (to compare the two paths).
    #[cfg(test)]
    fn soft_only(&self) -> Self {
        Self {
            soft: self.soft.clone(),
            fast: None,
        }
    }

    /// The key expanded for the CPU's AES instructions, where srtp-core runs them.
    pub(crate) fn fast_key(&self) -> Option<&crate::backend::aes::AesKey> {
        self.fast.as_ref().map(AesCtr::key)
    }

    /// XORs `data` with the keystream that starts at counter block `iv` (whose last two bytes
    /// are zero and count the blocks, RFC 3711 §4.1.1).
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        self.apply_keystream_from(iv, 0, data);
    }

    /// As [`apply_keystream`](Self::apply_keystream), for the part of a payload that starts
    /// at block `counter` (`data` begins `16 × counter` bytes into the payload).
    pub(crate) fn apply_keystream_from(&self, iv: &[u8; 16], counter: u16, data: &mut [u8]) {
        if let Some(fast) = &self.fast {
            fast.apply_keystream_from(iv, counter, data);
            return;
        }
        // Audio packets fit the small buffer, which costs little to set up; video packets
        // the large one, whose length lets the widest AES path run.
        if data.len() <= SMALL_BLOCKS * 16 {
            self.keystream::<SMALL_BLOCKS>(iv, counter, data);
        } else {
            self.keystream::<PAR_BLOCKS>(iv, counter, data);
        }
    }

    fn keystream<const N: usize>(&self, iv: &[u8; 16], mut counter: u16, data: &mut [u8]) {
        let mut blocks = [Array::default(); N];
        // The counter occupies the low 16 bits of the big-endian block, zero in `iv`.
        let base = u128::from_be_bytes(*iv);
        for chunk in data.chunks_mut(N * 16) {
            let n = chunk.len().div_ceil(16);
            for block in &mut blocks[..n] {
                *block = ((base & !0xffff) | u128::from(counter))
                    .to_be_bytes()
                    .into();
                counter = counter.wrapping_add(1);
            }
            self.encrypt_blocks(&mut blocks[..n]);
            xor_blocks(chunk, &blocks[..n]);
        }
    }

    /// XORs each packet `(iv, data)` of `jobs` with its own keystream, as
    /// [`apply_keystream`](Self::apply_keystream) on each would, but with the counter blocks
    /// of several packets encrypted in one pass: the AES pipeline stays full across packets
    /// instead of draining at the end of each.
    pub(crate) fn apply_keystreams(&self, jobs: &mut [Option<(&[u8; 16], &mut [u8])>]) {
        if let Some(fast) = &self.fast {
            // Sixteen blocks in flight already fill the pipeline within a packet.
            for (iv, data) in jobs.iter_mut().flatten() {
                fast.apply_keystream_from(iv, 0, data);
            }
            return;
        }
        let mut blocks = [Array::default(); PAR_BLOCKS];
        let mut jobs = jobs.iter_mut().flatten().peekable();
        while jobs.peek().is_some() {
            // As many whole packets as the buffer holds; a packet larger than it on its own.
            let mut group: [Option<&mut (&[u8; 16], &mut [u8])>; 16] = Default::default();
            let (mut n, mut count) = (0, 0);
            while let Some(job) = jobs.next_if(|(_, d)| {
                count == 0 || (n + d.len().div_ceil(16) <= PAR_BLOCKS && count < group.len())
            }) {
                if job.1.len() > PAR_BLOCKS * 16 {
                    self.apply_keystream(job.0, job.1);
                    continue;
                }
                let base = u128::from_be_bytes(*job.0);
                for (c, block) in (0..job.1.len().div_ceil(16)).zip(&mut blocks[n..]) {
                    *block = ((base & !0xffff) | c as u128).to_be_bytes().into();
                    n += 1;
                }
                group[count] = Some(job);
                count += 1;
            }
            self.encrypt_blocks(&mut blocks[..n]);
            let mut at = 0;
            for (_, data) in group.into_iter().flatten() {
                let k = data.len().div_ceil(16);
                xor_blocks(data, &blocks[at..at + k]);
                at += k;
            }
        }
    }

    fn encrypt_blocks(&self, blocks: &mut [aes::Block]) {
        match &self.soft {
            Soft::Aes128(c) => c.encrypt_blocks(blocks),
            Soft::Aes192(c) => c.encrypt_blocks(blocks),
            Soft::Aes256(c) => c.encrypt_blocks(blocks),
        }
    }

    /// Encrypts one block (the reference the tests compare the keystream with).
    #[cfg(test)]
    fn encrypt_block(&self, block: &mut aes::Block) {
        self.encrypt_blocks(core::slice::from_mut(block));
    }
}

/// XORs `data` with the keystream blocks, sixteen bytes at a time.
fn xor_blocks(data: &mut [u8], keystream: &[aes::Block]) {
    let full = data.len() / 16;
    let mut chunks = data.chunks_exact_mut(16);
    for (d, k) in (&mut chunks).zip(keystream) {
        let x =
            u128::from_ne_bytes(d.try_into().expect("16 bytes")) ^ u128::from_ne_bytes((*k).into());
        d.copy_from_slice(&x.to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    if let Some(k) = keystream.get(full) {
        for (d, k) in rest.iter_mut().zip(k.iter()) {
            *d ^= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(char::is_whitespace, "")).unwrap()
    }

    /// RFC 3711 Appendix B.2: AES-CM keystream for session key 2B7E1516..., salt F0F1...FD.
    #[test]
    fn rfc3711_b2_keystream() {
        let key = unhex("2B7E151628AED2A6ABF7158809CF4F3C");
        let iv: [u8; 16] = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
            .try_into()
            .unwrap();
        let mut ks = [0u8; 48];
        AesCm::new(&key).apply_keystream(&iv, &mut ks);
        assert_eq!(
            ks.to_vec(),
            unhex(
                "E03EAD0935C95E80E166B16DD92B4EB4
                 D23513162B02D0F72A43A2FE4A5F97AB
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
        // The keystream for counter 0xFEFF..0xFF01 must also match the RFC's last blocks.
        let mut long = vec![0u8; 0xff02 * 16];
        AesCm::new(&key).apply_keystream(&iv, &mut long);
        assert_eq!(
            long[0xfeff * 16..].to_vec(),
            unhex(
                "EC8CDF7398607CB0F2D21675EA9EA1E4
                 362B7C3C6773516318A077D7FC5073AE
                 6A2CC3787889374FBEB4C81B17BA6C44"
            )
        );
    }

    /// Every length, across the groups of eight blocks and the partial last group, against
    /// counter blocks encrypted one by one.
    #[test]
    fn keystream_of_every_length_matches_block_by_block() {
        for key_len in [16, 24, 32] {
            let key: Vec<u8> = (0..key_len as u8).collect();
            let aes = AesCm::new(&key);
            let iv: [u8; 16] = core::array::from_fn(|i| if i < 14 { 0xa0 ^ i as u8 } else { 0 });
            let mut reference = Vec::new();
            for counter in 0u16..130 {
                let mut block = aes::Block::from(iv);
                block[14..].copy_from_slice(&counter.to_be_bytes());
                aes.encrypt_block(&mut block);
                reference.extend_from_slice(&block);
            }
            for len in 0..=reference.len() {
                let mut data = vec![0u8; len];
                aes.apply_keystream(&iv, &mut data);
                assert_eq!(data, reference[..len], "AES-{} length {len}", key_len * 8);
            }
        }
    }

    /// Several packets' keystreams at once equal each packet's own, whatever their lengths
    /// (including one longer than the shared buffer and empty ones).
    #[test]
    fn keystreams_of_many_packets_match_one_at_a_time() {
        let aes = AesCm::new(&[9u8; 16]);
        let lens = [
            160usize, 0, 1, 15, 16, 17, 1200, 1600, 1536, 33, 160, 160, 160, 160, 7,
        ];
        let ivs: Vec<[u8; 16]> = (0..lens.len())
            .map(|i| core::array::from_fn(|j| if j < 14 { (i * 31 + j) as u8 } else { 0 }))
            .collect();
        for skip in [usize::MAX, 0, 3] {
            let mut want: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0x5a; n]).collect();
            for (w, iv) in want.iter_mut().zip(&ivs) {
                aes.apply_keystream(iv, w);
            }
            let mut got: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0x5a; n]).collect();
            let mut jobs: Vec<Option<(&[u8; 16], &mut [u8])>> = got
                .iter_mut()
                .zip(&ivs)
                .enumerate()
                .map(|(i, (g, iv))| (i != skip).then_some((iv, g.as_mut_slice())))
                .collect();
            aes.apply_keystreams(&mut jobs);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                if i == skip {
                    assert!(g.iter().all(|&b| b == 0x5a), "skipped job {i} untouched");
                } else {
                    assert_eq!(g, w, "job {i} of length {}", lens[i]);
                }
            }
        }
    }

    /// srtp-core's own AES-NI/VAES keystream against the `aes` crate's, for every length
    /// across its groups of 4, 8 and 16 blocks, every key size, counters near the 16-bit wrap.
    #[test]
    fn own_aes_instructions_match_the_aes_crate() {
        for key_len in [16, 24, 32] {
            let key: Vec<u8> = (0..key_len as u8)
                .map(|i| i.wrapping_mul(37) ^ 0xc3)
                .collect();
            let aes = AesCm::new(&key);
            if aes.fast.is_none() {
                continue; // no AES instructions here: nothing to compare
            }
            let soft = aes.soft_only();
            let iv: [u8; 16] = core::array::from_fn(|i| {
                if i < 14 {
                    0x17u8.wrapping_mul(i as u8)
                } else {
                    0
                }
            });
            for len in 0..=600 {
                let mut a = vec![0xa5u8; len];
                let mut b = a.clone();
                aes.apply_keystream(&iv, &mut a);
                soft.apply_keystream(&iv, &mut b);
                assert_eq!(a, b, "AES-{} length {len}", key_len * 8);
            }
            // A long one: the 16-bit block counter wraps after 65536 blocks.
            let mut a = vec![0u8; 65_600 * 16];
            let mut b = a.clone();
            aes.apply_keystream(&iv, &mut a);
            soft.apply_keystream(&iv, &mut b);
            assert!(a == b, "AES-{} across the counter wrap", key_len * 8);
            // From a block inside the payload, near the counter's wrap too.
            for from in [1u16, 9, 17, 65_530] {
                let mut a = vec![0x3cu8; 301];
                let mut b = a.clone();
                aes.apply_keystream_from(&iv, from, &mut a);
                soft.apply_keystream_from(&iv, from, &mut b);
                assert_eq!(a, b, "AES-{} from block {from}", key_len * 8);
            }
        }
    }
}
