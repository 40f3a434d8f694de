//! AES-GCM for SRTP and SRTCP (RFC 7714).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};

/// Length of the GCM tag SRTP uses (RFC 7714 §14.1: only 16-byte tags are defined).
pub(crate) const TAG_LEN: usize = 16;

/// An AES-GCM key with its expanded schedule and GHASH key. Zeroized on drop.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // kept inline: no allocation when keys are derived
pub(crate) enum AesGcm {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

/// The tag did not verify; the buffer was not touched.
#[derive(Debug)]
pub(crate) struct TagMismatch;

impl AesGcm {
    /// # Panics
    /// On a key that is neither 16 nor 32 bytes; callers pass lengths fixed by the profile.
    pub(crate) fn new(key: &[u8]) -> Self {
        match key.len() {
            16 => Self::Aes128(Aes128Gcm::new_from_slice(key).expect("16 bytes")),
            32 => Self::Aes256(Aes256Gcm::new_from_slice(key).expect("32 bytes")),
            n => panic!("AES-GCM key of {n} bytes"),
        }
    }

    /// Encrypts `data` in place and returns the tag over `aad` and the ciphertext.
    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = aes_gcm::Nonce::from(*nonce);
        let tag = match self {
            Self::Aes128(c) => c.encrypt_inout_detached(&nonce, aad, data.into()),
            Self::Aes256(c) => c.encrypt_inout_detached(&nonce, aad, data.into()),
        };
        // Only lengths beyond 2^36 bytes fail, and packets are far shorter.
        tag.map(Into::into).unwrap_or([0; TAG_LEN])
    }

    /// Verifies `tag` over `aad` and `data` and, only if it matches, decrypts `data` in place.
    /// The tag comparison is constant-time.
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), TagMismatch> {
        let nonce = aes_gcm::Nonce::from(*nonce);
        let tag = aes_gcm::Tag::try_from(tag).map_err(|_| TagMismatch)?;
        match self {
            Self::Aes128(c) => c.decrypt_inout_detached(&nonce, aad, data.into(), &tag),
            Self::Aes256(c) => c.decrypt_inout_detached(&nonce, aad, data.into(), &tag),
        }
        .map_err(|_| TagMismatch)
    }
}
