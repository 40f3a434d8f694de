//! SRTP protection profiles (crypto suites).

use core::fmt;

/// An SRTP protection profile: the cipher, the authentication transform and their key and tag
/// lengths, as named by SDES (RFC 4568 §6.2, RFC 6188 §5, RFC 7714 §14.1) and DTLS-SRTP
/// (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 3711, RFC 4568).
    Aes128CmHmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (80-bit SRTCP tag).
    Aes128CmHmacSha1_32,
    /// AES-192 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 6188).
    Aes192CmHmacSha1_80,
    /// AES-192 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (RFC 6188).
    Aes192CmHmacSha1_32,
    /// AES-256 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 6188).
    Aes256CmHmacSha1_80,
    /// AES-256 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (RFC 6188).
    Aes256CmHmacSha1_32,
    /// AES-128 in Galois/counter mode with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 in Galois/counter mode with a 128-bit tag (RFC 7714).
    AeadAes256Gcm,
    /// No encryption, HMAC-SHA1 with an 80-bit tag (RFC 5764 `SRTP_NULL_HMAC_SHA1_80`).
    NullHmacSha1_80,
    /// No encryption, HMAC-SHA1 with a 32-bit SRTP tag (RFC 5764 `SRTP_NULL_HMAC_SHA1_32`).
    NullHmacSha1_32,
}

/// The confidentiality transform of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CipherKind {
    /// AES in counter mode with a key of this many bytes (RFC 3711 §4.1.1).
    AesCm(usize),
    /// AES-GCM with a key of this many bytes (RFC 7714).
    AesGcm(usize),
    /// The NULL cipher (RFC 3711 §4.1.3).
    Null,
}

impl Profile {
    /// Every profile, strongest AES-CM first as an offer would list them.
    pub const ALL: [Profile; 10] = [
        Profile::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32,
        Profile::Aes192CmHmacSha1_80,
        Profile::Aes192CmHmacSha1_32,
        Profile::Aes256CmHmacSha1_80,
        Profile::Aes256CmHmacSha1_32,
        Profile::AeadAes128Gcm,
        Profile::AeadAes256Gcm,
        Profile::NullHmacSha1_80,
        Profile::NullHmacSha1_32,
    ];

    pub(crate) const fn cipher(self) -> CipherKind {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 => CipherKind::AesCm(16),
            Self::Aes192CmHmacSha1_80 | Self::Aes192CmHmacSha1_32 => CipherKind::AesCm(24),
            Self::Aes256CmHmacSha1_80 | Self::Aes256CmHmacSha1_32 => CipherKind::AesCm(32),
            Self::AeadAes128Gcm => CipherKind::AesGcm(16),
            Self::AeadAes256Gcm => CipherKind::AesGcm(32),
            Self::NullHmacSha1_80 | Self::NullHmacSha1_32 => CipherKind::Null,
        }
    }

    /// Whether the profile is an AEAD (AES-GCM) profile, which authenticates without HMAC.
    pub const fn is_aead(self) -> bool {
        matches!(self.cipher(), CipherKind::AesGcm(_))
    }

    /// Whether the profile encrypts payloads: false for the NULL-cipher profiles
    /// (`NULL_HMAC_SHA1_80`, `NULL_HMAC_SHA1_32`), which only authenticate.
    pub const fn encrypts(self) -> bool {
        !matches!(self.cipher(), CipherKind::Null)
    }

    /// Length of the master key in bytes.
    pub const fn master_key_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesCm(n) | CipherKind::AesGcm(n) => n,
            CipherKind::Null => 16,
        }
    }

    /// Length of the master salt in bytes: 14 (112 bits), or 12 for AES-GCM (RFC 7714 §11).
    pub const fn master_salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Length of the SDES `inline:` key material, master key followed by master salt.
    pub const fn key_material_len(self) -> usize {
        self.master_key_len() + self.master_salt_len()
    }

    /// Length of the session authentication key in bytes (RFC 3711 §4.2.1: 160 bits), or zero
    /// for AEAD profiles.
    pub(crate) const fn auth_key_len(self) -> usize {
        if self.is_aead() {
            0
        } else {
            20
        }
    }

    /// Length of the SRTP authentication tag in bytes.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
            Self::Aes128CmHmacSha1_32
            | Self::Aes192CmHmacSha1_32
            | Self::Aes256CmHmacSha1_32
            | Self::NullHmacSha1_32 => 4,
            _ => 10,
        }
    }

    /// Length of the SRTCP authentication tag in bytes: the `_32` profiles still use an 80-bit
    /// tag for SRTCP (RFC 4568 §6.2.2, RFC 5764 §4.1.2).
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }

    /// The crypto-suite name used in SDES `a=crypto` lines.
    ///
    /// The NULL profiles have no registered SDES name; the names returned for them are the
    /// ones some implementations use.
    pub const fn sdes_name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Self::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Self::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Self::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
            Self::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            Self::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
        }
    }

    /// The profile for an SDES crypto-suite name (case-sensitive, as RFC 4568 §9.2 registers
    /// them).
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.sdes_name() == name)
    }

    /// The DTLS-SRTP protection profile identifier (RFC 5764 §4.1.2, RFC 7714 §14.2), if one is
    /// registered. AES-192/256-CM have none.
    pub const fn dtls_id(self) -> Option<u16> {
        match self {
            Self::Aes128CmHmacSha1_80 => Some(0x0001),
            Self::Aes128CmHmacSha1_32 => Some(0x0002),
            Self::NullHmacSha1_80 => Some(0x0005),
            Self::NullHmacSha1_32 => Some(0x0006),
            Self::AeadAes128Gcm => Some(0x0007),
            Self::AeadAes256Gcm => Some(0x0008),
            _ => None,
        }
    }

    /// The profile for a DTLS-SRTP protection profile identifier.
    pub fn from_dtls_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.dtls_id() == Some(id))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdes_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_sdes_name(p.sdes_name()), Some(p));
            if let Some(id) = p.dtls_id() {
                assert_eq!(Profile::from_dtls_id(id), Some(p));
            }
        }
        assert_eq!(Profile::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
        assert_eq!(Profile::from_dtls_id(0x0003), None);
    }

    #[test]
    fn lengths_follow_the_rfcs() {
        assert_eq!(Profile::Aes128CmHmacSha1_80.key_material_len(), 30);
        assert_eq!(Profile::Aes256CmHmacSha1_80.key_material_len(), 46);
        assert_eq!(Profile::Aes192CmHmacSha1_32.key_material_len(), 38);
        assert_eq!(Profile::AeadAes128Gcm.key_material_len(), 28);
        assert_eq!(Profile::AeadAes256Gcm.key_material_len(), 44);
        assert_eq!(Profile::Aes128CmHmacSha1_32.rtp_tag_len(), 4);
        assert_eq!(Profile::Aes128CmHmacSha1_32.rtcp_tag_len(), 10);
    }
}
