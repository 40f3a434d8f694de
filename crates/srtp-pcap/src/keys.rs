//! Keys as an operator gives them: SDES `a=crypto` lines or `PROFILE:BASE64`.

use std::fmt;

use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Policy, Profile, Session, MAX_REPLAY_WINDOW};

/// Streams one session tracks per direction offline: more than any call has, so that no
/// stream of a capture is evicted.
const MAX_STREAMS: usize = 4096;

/// One master key (or set of master keys with MKIs) to try on packets, ready to make sessions.
#[derive(Clone)]
pub struct Key {
    policy: Policy,
    label: String,
}

impl Key {
    /// Parses a key in one of the accepted forms:
    ///
    /// - an SDES line or attribute value: `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^31|1:1`,
    ///   `crypto:…` or `1 AES_CM_128_HMAC_SHA1_80 inline:…`, with every parameter RFC 4568
    ///   allows (several keys with MKIs, `UNENCRYPTED_SRTP`, `KDR=`…);
    /// - `PROFILE:BASE64`, the suite name then the base64 of key‖salt, optionally followed by
    ///   `|MKI:LENGTH`: `AEAD_AES_128_GCM:…`.
    ///
    /// The session is set up for captures rather than live traffic: the largest replay window
    /// ([`MAX_REPLAY_WINDOW`]), room for many streams, and no key lifetime (a capture shows what
    /// was sent, also past a lifetime).
    ///
    /// # Errors
    /// A [`KeyError`] that names what is wrong without repeating the key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let attr: CryptoAttribute = if is_sdes(text) {
            text.parse().map_err(|e| KeyError::Sdes(format!("{e}")))?
        } else {
            let (name, material) = text.split_once(':').ok_or(KeyError::Form)?;
            let name = name.trim();
            let profile = Profile::from_sdes_name(name)
                .ok_or_else(|| KeyError::UnknownProfile(shown(name)))?;
            format!("1 {} inline:{}", profile.sdes_name(), material.trim())
                .parse()
                .map_err(|e| KeyError::Sdes(format!("{e}")))?
        };
        let mut policy = attr.policy().map_err(|e| KeyError::Sdes(format!("{e}")))?;
        policy.keys = policy
            .keys
            .iter()
            .map(without_lifetime)
            .collect::<Result<_, _>>()?;
        policy.replay_window = MAX_REPLAY_WINDOW;
        policy.max_streams = MAX_STREAMS;
        policy.roc_recovery = true;
        // A capture is decrypted as it was sent: packets encrypted with cryptex (RFC 9335)
        // come out with their CSRCs and header extensions in clear.
        policy.cryptex = true;
        Session::new(&policy).map_err(|e| KeyError::Policy(e.to_string()))?;
        let label = match policy.keys.first().and_then(MasterKey::mki) {
            Some(mki) => format!("{} (MKI {mki})", attr.profile.sdes_name()),
            None => attr.profile.sdes_name().to_owned(),
        };
        Ok(Self { policy, label })
    }

    /// A fresh session for this key, to decrypt with (cryptex packets included).
    pub(crate) fn session(&self) -> Option<Session> {
        Session::new(&self.policy).ok()
    }

    /// A fresh session for this key, to encrypt with: plain RFC 3711, header extensions and
    /// CSRCs left in clear as most senders leave them.
    pub(crate) fn sending_session(&self) -> Option<Session> {
        let mut s = self.session()?;
        s.set_cryptex(false);
        Some(s)
    }

    /// The key's profile.
    pub fn profile(&self) -> Profile {
        self.policy.profile
    }

    /// The profile and MKI, for messages: never key material.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Key material never reaches `Debug` output.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("label", &self.label).finish()
    }
}

/// Why a key could not be used. Messages never contain key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Neither an `a=crypto` line nor `PROFILE:BASE64`.
    #[error(
        "expected an SDES line ('a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...') or \
         PROFILE:BASE64 ('AES_CM_128_HMAC_SHA1_80:...')"
    )]
    Form,
    /// The part before `:` names no profile.
    #[error("unknown profile '{0}'; the profiles are {profiles}", profiles = profile_names())]
    UnknownProfile(String),
    /// The SDES parser refused it.
    #[error("{0}")]
    Sdes(String),
    /// The session could not be built.
    #[error("{0}")]
    Policy(String),
}

fn is_sdes(text: &str) -> bool {
    let lower = text.get(..9).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("a=crypto:")
        || lower.starts_with("crypto:")
        || text.starts_with(|c: char| c.is_ascii_digit())
}

/// A token as it may appear in a message: a suite-like name as is, anything else (perhaps a
/// misplaced key) only by its length.
fn shown(token: &str) -> String {
    let name_like = token.len() <= 40
        && token
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if name_like {
        token.to_owned()
    } else {
        format!("<{} characters>", token.len())
    }
}

fn without_lifetime(key: &MasterKey) -> Result<MasterKey, KeyError> {
    let plain =
        MasterKey::new(key.key(), key.salt()).map_err(|e| KeyError::Policy(e.to_string()))?;
    Ok(match key.mki() {
        Some(mki) => plain.with_mki(mki),
        None => plain,
    })
}

fn profile_names() -> String {
    Profile::ALL
        .iter()
        .map(|p| p.sdes_name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1";

    #[test]
    fn sdes_line_and_short_form_are_accepted() {
        let k = Key::parse(LINE).unwrap();
        assert_eq!(k.label(), "AES_CM_128_HMAC_SHA1_80 (MKI 1:1)");
        let k =
            Key::parse("AES_CM_128_HMAC_SHA1_32:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz").unwrap();
        assert_eq!(k.profile(), Profile::Aes128CmHmacSha1_32);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in [
            "",
            "garbage",
            "NOPE_SUITE:AAAA",
            "AES_CM_128_HMAC_SHA1_80:AAAA",
            "AES_CM_128_HMAC_SHA1_80:!!!!",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNf",
        ] {
            let e = Key::parse(bad).unwrap_err().to_string();
            assert!(!e.is_empty());
            assert!(!e.contains("WVNf"), "{e}");
        }
    }
}
