//! Session key derivation (RFC 3711 §4.3, RFC 6188 §4, RFC 7714 §11).
//!
//! The PRF is AES-CM keyed with the master key. Its IV is the master salt XOR `key_id`, where
//! `key_id = label || r` is right-aligned in the 112-bit salt and `r = index DIV kdr` is 48
//! bits wide. For SRTCP, `r` is formed from the 31-bit SRTCP index padded to 48 bits, so the
//! label sits in the same octet as for SRTP (RFC 3711 errata 3712, as libsrtp does). The
//! 96-bit AES-GCM master salt is extended with two zero octets to 112 bits before it enters
//! the PRF (as libsrtp does).

use zeroize::Zeroize;

use crate::backend::Backend;
use crate::cipher::{AesCm, AesGcm, HmacSha1};
use crate::key::{MasterKey, MAX_KEY_LEN, MAX_SALT_LEN};
use crate::profile::CipherKind;
use crate::Profile;

/// Label for the SRTP encryption key (RFC 3711 §4.3.2).
pub(crate) const LABEL_RTP_ENCRYPTION: u8 = 0x00;
/// Label for the SRTCP encryption key; authentication and salt follow as +1 and +2.
pub(crate) const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
const AUTH_OFFSET: u8 = 1;
const SALT_OFFSET: u8 = 2;

/// The transform that encrypts packet payloads.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // inline, so keys re-derived per `kdr` need no allocation
pub(crate) enum PacketCipher {
    Null,
    Cm(AesCm),
    Gcm(AesGcm),
}

/// Expanded session keys for one direction of SRTP or SRTCP: derived once per master key (or
/// once per `kdr` packets), then used by every packet.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    pub(crate) cipher: PacketCipher,
    /// `None` for AEAD profiles, whose tag comes from GCM.
    pub(crate) auth: Option<HmacSha1>,
    /// Session salt: 14 bytes, or 12 (zero-padded to 14) for AES-GCM.
    pub(crate) salt: [u8; MAX_SALT_LEN],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl SessionKeys {
    /// Session keys from raw session key material, for the RFC 7714 vectors that give session
    /// keys rather than master keys.
    #[cfg(test)]
    pub(crate) fn from_raw(profile: Profile, enc_key: &[u8], auth_key: &[u8], salt: &[u8]) -> Self {
        let mut s = [0u8; MAX_SALT_LEN];
        s[..salt.len()].copy_from_slice(salt);
        Self {
            cipher: match profile.cipher() {
                CipherKind::AesCm(_) => PacketCipher::Cm(AesCm::new(enc_key)),
                CipherKind::AesGcm(_) => PacketCipher::Gcm(AesGcm::new(enc_key)),
                CipherKind::Null => PacketCipher::Null,
            },
            auth: (!profile.is_aead()).then(|| HmacSha1::new(auth_key, Backend::detect())),
            salt: s,
        }
    }
}

/// Derives the session keys for SRTP (`base_label` [`LABEL_RTP_ENCRYPTION`]) or SRTCP
/// ([`LABEL_RTCP_ENCRYPTION`]) with `r = index DIV kdr` (zero when `kdr` is zero).
pub(crate) fn derive(
    profile: Profile,
    master: &MasterKey,
    base_label: u8,
    r: u64,
    backend: Backend,
) -> SessionKeys {
    let prf = AesCm::new(master.key());
    let mut salt = [0u8; MAX_SALT_LEN];
    salt[..master.salt().len()].copy_from_slice(master.salt());

    let mut enc = [0u8; MAX_KEY_LEN];
    let enc = &mut enc[..profile.master_key_len()];
    let mut auth_key = [0u8; 20];
    let mut session_salt = [0u8; MAX_SALT_LEN];

    let cipher = match profile.cipher() {
        CipherKind::AesCm(_) => {
            prf_output(&prf, &salt, base_label, r, enc);
            PacketCipher::Cm(AesCm::new(enc))
        }
        CipherKind::AesGcm(_) => {
            prf_output(&prf, &salt, base_label, r, enc);
            PacketCipher::Gcm(AesGcm::new(enc))
        }
        CipherKind::Null => PacketCipher::Null,
    };
    let auth = (profile.auth_key_len() > 0).then(|| {
        prf_output(&prf, &salt, base_label + AUTH_OFFSET, r, &mut auth_key);
        HmacSha1::new(&auth_key, backend)
    });
    let salt_len = profile.master_salt_len();
    prf_output(
        &prf,
        &salt,
        base_label + SALT_OFFSET,
        r,
        &mut session_salt[..salt_len],
    );
    enc.zeroize();
    auth_key.zeroize();
    salt.zeroize();
    let keys = SessionKeys {
        cipher,
        auth,
        salt: session_salt,
    };
    session_salt.zeroize();
    keys
}

/// The PRF of RFC 3711 §4.3.3: AES-CM keystream from IV `(master_salt XOR key_id) * 2^16`.
fn prf_output(prf: &AesCm, salt: &[u8; MAX_SALT_LEN], label: u8, r: u64, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MAX_SALT_LEN].copy_from_slice(salt);
    iv[7] ^= label;
    for (b, r) in iv[8..14].iter_mut().zip(&r.to_be_bytes()[2..]) {
        *b ^= r;
    }
    out.fill(0);
    prf.apply_keystream(&iv, out);
    iv.zeroize();
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(char::is_whitespace, "")).unwrap()
    }

    /// Runs the PRF directly, for comparing with the published derivation vectors.
    pub(crate) fn prf(master_key: &str, master_salt: &str, label: u8, r: u64, n: usize) -> String {
        let key = unhex(master_key);
        let mut salt = [0u8; MAX_SALT_LEN];
        let s = unhex(master_salt);
        salt[..s.len()].copy_from_slice(&s);
        let mut out = vec![0u8; n];
        prf_output(&AesCm::new(&key), &salt, label, r, &mut out);
        hex::encode_upper(out)
    }

    /// RFC 3711 Appendix B.3.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let (k, s) = (
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        assert_eq!(prf(k, s, 0, 0, 16), "C61E7A93744F39EE10734AFE3FF7A087");
        assert_eq!(prf(k, s, 2, 0, 14), "30CBBC08863D8C85D49DB34A9AE1");
        assert_eq!(
            prf(k, s, 1, 0, 94),
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE\
             E049646C43D9327AD175578EF7227098\
             6371C10C9A369AC2F94A8C5FBCDDDC256D6E919A48B610EF17C2041E47403576\
             6B68642C59BBFC2F34DB60DBDFB2"
        );
    }
}
