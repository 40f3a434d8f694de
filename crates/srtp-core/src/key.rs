//! Master keys, their identifiers (MKI) and lifetimes.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{PolicyError, Profile};

/// Largest master key (AES-256) in bytes.
pub(crate) const MAX_KEY_LEN: usize = 32;
/// Largest master salt in bytes.
pub(crate) const MAX_SALT_LEN: usize = 14;
/// Largest MKI in bytes: RFC 4568 §6.1 allows 1 to 128 (its own example line uses 32), as
/// does libsrtp (`SRTP_MAX_MKI_LEN`).
pub const MAX_MKI_LEN: usize = 128;

/// A master key identifier (RFC 3711 §3.1): 1 to [`MAX_MKI_LEN`] bytes carried in every packet
/// to select the master key, as in the Microsoft form `|2^31|1:1` (MKI value 1, 1 byte).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mki {
    bytes: [u8; MAX_MKI_LEN],
    len: u8,
}

impl Mki {
    /// An MKI with `value` written big-endian into `len` bytes (zeros before it when `len` is
    /// more than 4), as SDES `MKI:length` gives it.
    ///
    /// # Errors
    /// [`PolicyError::MkiLength`] if `len` is not 1 to [`MAX_MKI_LEN`] or `value` does not fit
    /// in `len` bytes.
    pub fn new(value: u32, len: usize) -> Result<Self, PolicyError> {
        if !(1..=MAX_MKI_LEN).contains(&len) || (len < 4 && value >> (8 * len) != 0) {
            return Err(PolicyError::MkiLength(len));
        }
        let mut bytes = [0; MAX_MKI_LEN];
        let n = len.min(4);
        bytes[len - n..len].copy_from_slice(&value.to_be_bytes()[4 - n..]);
        Ok(Self {
            bytes,
            len: len as u8,
        })
    }

    /// An MKI from its bytes on the wire.
    ///
    /// # Errors
    /// [`PolicyError::MkiLength`] if `bytes` is empty or longer than [`MAX_MKI_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PolicyError> {
        if !(1..=MAX_MKI_LEN).contains(&bytes.len()) {
            return Err(PolicyError::MkiLength(bytes.len()));
        }
        let mut b = [0; MAX_MKI_LEN];
        b[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            bytes: b,
            len: bytes.len() as u8,
        })
    }

    /// The bytes as they appear in a packet.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The MKI value as an integer: exact for every MKI SDES can describe here (values up to
    /// 2^32 - 1, in any length); for a longer value (from the wire or DTLS-SRTP), its low 32
    /// bits. `Display` always prints the whole value.
    pub fn value(&self) -> u32 {
        self.as_bytes()
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
    }

    /// The value in decimal, however long: base-256 digits divided down by 10.
    fn write_decimal(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = [0u8; MAX_MKI_LEN];
        let len = self.len as usize;
        n[..len].copy_from_slice(self.as_bytes());
        let mut digits = [0u8; 3 * MAX_MKI_LEN]; // 256^128 < 10^309
        let mut count = 0;
        loop {
            let mut rem = 0u32;
            let mut nonzero = false;
            for b in &mut n[..len] {
                let cur = (rem << 8) | u32::from(*b);
                *b = (cur / 10) as u8;
                rem = cur % 10;
                nonzero |= *b != 0;
            }
            digits[count] = b'0' + rem as u8;
            count += 1;
            if !nonzero {
                break;
            }
        }
        for d in digits[..count].iter().rev() {
            fmt::Write::write_char(f, char::from(*d))?;
        }
        Ok(())
    }

    /// Length in bytes.
    #[allow(clippy::len_without_is_empty)] // an MKI is never empty
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

impl fmt::Debug for Mki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mki(")?;
        self.write_decimal(f)?;
        write!(f, ":{})", self.len)
    }
}

impl fmt::Display for Mki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_decimal(f)?;
        write!(f, ":{}", self.len)
    }
}

/// A master key and master salt with its optional MKI and lifetime.
///
/// The key bytes are zeroized on drop and never printed: `Debug` shows only the MKI and
/// lifetime.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; MAX_KEY_LEN],
    salt: [u8; MAX_SALT_LEN],
    key_len: u8,
    salt_len: u8,
    #[zeroize(skip)]
    mki: Option<Mki>,
    #[zeroize(skip)]
    lifetime: Option<u64>,
}

impl MasterKey {
    /// A master key from its key and salt.
    ///
    /// # Errors
    /// [`PolicyError::KeyLength`] or [`PolicyError::SaltLength`] if either is longer than any
    /// profile uses (the exact lengths are checked against the profile when the session is
    /// built).
    pub fn new(key: &[u8], salt: &[u8]) -> Result<Self, PolicyError> {
        if key.len() > MAX_KEY_LEN || key.len() < 16 {
            return Err(PolicyError::KeyLength {
                expected: 16,
                actual: key.len(),
            });
        }
        if salt.len() > MAX_SALT_LEN || salt.len() < 12 {
            return Err(PolicyError::SaltLength {
                expected: 14,
                actual: salt.len(),
            });
        }
        let mut k = Self {
            key: [0; MAX_KEY_LEN],
            salt: [0; MAX_SALT_LEN],
            key_len: key.len() as u8,
            salt_len: salt.len() as u8,
            mki: None,
            lifetime: None,
        };
        k.key[..key.len()].copy_from_slice(key);
        k.salt[..salt.len()].copy_from_slice(salt);
        Ok(k)
    }

    /// A master key from concatenated key and salt, as SDES `inline:` and most APIs carry them.
    ///
    /// # Errors
    /// [`PolicyError::KeyLength`] if the length is not the profile's
    /// [`key_material_len`](Profile::key_material_len).
    pub fn from_key_material(profile: Profile, material: &[u8]) -> Result<Self, PolicyError> {
        if material.len() != profile.key_material_len() {
            return Err(PolicyError::KeyLength {
                expected: profile.key_material_len(),
                actual: material.len(),
            });
        }
        let (key, salt) = material.split_at(profile.master_key_len());
        Self::new(key, salt)
    }

    /// A fresh random master key for `profile` from the operating system's random source.
    ///
    /// # Panics
    /// If the operating system has no random source, which no supported platform lacks.
    pub fn generate(profile: Profile) -> Self {
        let mut material = [0u8; MAX_KEY_LEN + MAX_SALT_LEN];
        let material = &mut material[..profile.key_material_len()];
        getrandom::getrandom(material).expect("the OS random source failed");
        let key = Self::from_key_material(profile, material).expect("length matches profile");
        material.zeroize();
        key
    }

    /// This key with an MKI.
    #[must_use]
    pub fn with_mki(mut self, mki: Mki) -> Self {
        self.mki = Some(mki);
        self
    }

    /// This key with a lifetime: the most SRTP (or SRTCP) packets it may protect.
    #[must_use]
    pub fn with_lifetime(mut self, packets: u64) -> Self {
        self.lifetime = Some(packets);
        self
    }

    /// The master key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len as usize]
    }

    /// The master salt bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.salt_len as usize]
    }

    /// Writes key then salt into `out`, returning the number of bytes written.
    pub fn write_key_material(&self, out: &mut [u8; MAX_KEY_LEN + MAX_SALT_LEN]) -> usize {
        let (k, s) = (self.key(), self.salt());
        out[..k.len()].copy_from_slice(k);
        out[k.len()..k.len() + s.len()].copy_from_slice(s);
        k.len() + s.len()
    }

    /// The MKI, if any.
    pub fn mki(&self) -> Option<Mki> {
        self.mki
    }

    /// The MKI, borrowed (an [`Mki`] is up to 129 bytes: the packet path copies none).
    pub(crate) fn mki_ref(&self) -> Option<&Mki> {
        self.mki.as_ref()
    }

    /// The lifetime in packets, if one was set.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    pub(crate) fn check(&self, profile: Profile) -> Result<(), PolicyError> {
        if self.key().len() != profile.master_key_len() {
            return Err(PolicyError::KeyLength {
                expected: profile.master_key_len(),
                actual: self.key().len(),
            });
        }
        if self.salt().len() != profile.master_salt_len() {
            return Err(PolicyError::SaltLength {
                expected: profile.master_salt_len(),
                actual: self.salt().len(),
            });
        }
        if self.lifetime == Some(0) {
            return Err(PolicyError::ZeroLifetime);
        }
        Ok(())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("mki", &self.mki)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Whether `other` has the same key and salt (whatever its MKI and lifetime): packets
    /// protected under one authenticate under the other. In constant time.
    pub(crate) fn same_material(&self, other: &MasterKey) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.key().ct_eq(other.key()) & self.salt().ct_eq(other.salt()))
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.key().ct_eq(other.key()).into()
            && bool::from(self.salt().ct_eq(other.salt()))
            && self.mki == other.mki
            && self.lifetime == other.lifetime
    }
}

impl Eq for MasterKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mki_value_and_bytes() {
        let m = Mki::new(1, 1).unwrap();
        assert_eq!(m.as_bytes(), &[1]);
        assert_eq!(m.value(), 1);
        let m = Mki::new(0x0102, 4).unwrap();
        assert_eq!(m.as_bytes(), &[0, 0, 1, 2]);
        assert_eq!(Mki::new(256, 1), Err(PolicyError::MkiLength(1)));
        assert_eq!(Mki::new(1, 0), Err(PolicyError::MkiLength(0)));
        assert_eq!(Mki::new(1, 129), Err(PolicyError::MkiLength(129)));
        assert_eq!(Mki::new(u32::MAX, 4).unwrap().value(), u32::MAX);
        // Longer than four bytes: zeros, then the value (RFC 4568 §4's `1:32`).
        let m = Mki::new(0x0102, 32).unwrap();
        assert_eq!(m.as_bytes()[..30], [0; 30]);
        assert_eq!(m.as_bytes()[30..], [1, 2]);
        assert_eq!((m.value(), m.to_string()), (0x0102, "258:32".to_string()));
        assert_eq!(Mki::new(7, 128).unwrap().as_bytes().len(), 128);
        assert_eq!(Mki::from_bytes(&[0; 129]), Err(PolicyError::MkiLength(129)));
        // From the wire, a value past 32 bits prints whole.
        let mut wide = [0u8; 9];
        wide[0] = 1; // 2^64
        let m = Mki::from_bytes(&wide).unwrap();
        assert_eq!(m.to_string(), "18446744073709551616:9");
        assert_eq!(format!("{m:?}"), "Mki(18446744073709551616:9)");
        assert_eq!(Mki::from_bytes(&[0; 3]).unwrap().to_string(), "0:3");
    }

    #[test]
    fn debug_hides_key_bytes() {
        let k = MasterKey::new(&[0xab; 16], &[0xcd; 14]).unwrap();
        let s = format!("{k:?}");
        assert!(
            !s.contains("171") && !s.to_lowercase().contains("ab"),
            "{s}"
        );
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate(Profile::Aes128CmHmacSha1_80);
        let b = MasterKey::generate(Profile::Aes128CmHmacSha1_80);
        assert_ne!(a.key(), b.key());
        assert_eq!(a.salt().len(), 14);
    }
}
