//! DTLS-SRTP keying (RFC 5764 §4.2): from the keying material a DTLS handshake exports to the
//! two [`Policy`]s of an SRTP session.
//!
//! This crate does not run the handshake. The DTLS library negotiates a protection profile
//! (the `use_srtp` extension, RFC 5764 §4.1.2) and exports [`exporter_len`] bytes with the TLS
//! exporter (RFC 5705) under the label [`EXPORTER_LABEL`] and no context; [`policies`] splits
//! them into the keys each side sends and receives with.
//!
//! ```
//! use srtp_core::dtls::{self, Role};
//! use srtp_core::{Profile, Session, MAX_TRAILER_LEN};
//!
//! # let material = [7u8; 60];
//! // `material`: what the DTLS library exported for profile 0x0001
//! // (SRTP_AES128_CM_HMAC_SHA1_80): 60 bytes.
//! assert_eq!(material.len(), dtls::exporter_len(Profile::Aes128CmHmacSha1_80));
//! let client = dtls::policies(0x0001, &material, Role::Client)?;
//! let server = dtls::policies(0x0001, &material, Role::Server)?;
//!
//! let mut tx = Session::new(&client.outbound)?;
//! let mut rx = Session::new(&server.inbound)?;
//! let mut buf = [0u8; 100 + MAX_TRAILER_LEN];
//! buf[0] = 0x80;
//! let len = tx.protect_rtp(&mut buf, 100)?;
//! assert_eq!(rx.unprotect_rtp(&mut buf[..len])?.len(), 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::{MasterKey, Policy, Profile};

/// The TLS exporter label for DTLS-SRTP keying material (RFC 5764 §4.2, registered in RFC 5705
/// §4).
pub const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Which end of the DTLS handshake this endpoint was: it decides which half of the keying
/// material it sends with (RFC 5764 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The DTLS client: sends with `client_write_SRTP_master_key` and salt.
    Client,
    /// The DTLS server: sends with `server_write_SRTP_master_key` and salt.
    Server,
}

/// How many bytes of keying material to export for `profile`: a master key and a master salt
/// for each direction, `2 * (key length + salt length)` (RFC 5764 §4.2). 60 for the AES-CM-128
/// and NULL profiles, 56 for AEAD_AES_128_GCM, 88 for AEAD_AES_256_GCM (RFC 7714 §12).
pub const fn exporter_len(profile: Profile) -> usize {
    2 * (profile.master_key_len() + profile.master_salt_len())
}

/// The two policies of one endpoint's SRTP session.
///
/// Both carry the [`Policy::new`] defaults besides the keys: adjust the public fields (replay
/// window, stream limit) before building the sessions.
#[derive(Debug)]
pub struct DtlsPolicies {
    /// For what this endpoint sends: keyed with its own write key and salt.
    pub outbound: Policy,
    /// For what this endpoint receives: keyed with the peer's write key and salt.
    pub inbound: Policy,
}

/// The maximum lifetime of the AES-CM and NULL DTLS-SRTP profiles' keys, in packets
/// (RFC 5764 §4.1.2).
const DTLS_CM_LIFETIME: u64 = 1 << 31;

/// The policies for the DTLS-SRTP protection profile `profile_id` (RFC 5764 §4.1.2, RFC 7714
/// §14.2), as the DTLS library reports the negotiated profile.
///
/// # Errors
/// [`DtlsError::UnknownProfile`] for an identifier this crate does not implement;
/// otherwise as [`policies_for`].
pub fn policies(profile_id: u16, material: &[u8], role: Role) -> Result<DtlsPolicies, DtlsError> {
    let profile = Profile::from_dtls_id(profile_id).ok_or(DtlsError::UnknownProfile(profile_id))?;
    policies_for(profile, material, role)
}

/// The policies for `profile` from the exported keying material `material`.
///
/// The material is laid out as RFC 5764 §4.2 says: `client_write_SRTP_master_key ||
/// server_write_SRTP_master_key || client_write_SRTP_master_salt ||
/// server_write_SRTP_master_salt`. The client sends with the client's key and salt and
/// receives with the server's; the server does the reverse, so each side's `outbound` policy
/// matches the other side's `inbound` one.
///
/// Any profile is accepted, also those without a DTLS identifier (AES-192/256-CM), for callers
/// that agree on one by other means. The keys are copied straight from `material` into the
/// [`MasterKey`]s, which zeroize themselves; nothing else holds a copy. Zeroizing `material`
/// is the caller's business.
///
/// # Errors
/// [`DtlsError::MaterialLength`] if `material` is not [`exporter_len`] bytes.
pub fn policies_for(
    profile: Profile,
    material: &[u8],
    role: Role,
) -> Result<DtlsPolicies, DtlsError> {
    let expected = exporter_len(profile);
    let wrong_length = DtlsError::MaterialLength {
        expected,
        actual: material.len(),
    };
    if material.len() != expected {
        return Err(wrong_length);
    }
    let key_len = profile.master_key_len();
    let salt_len = profile.master_salt_len();
    let (client_key, rest) = material.split_at(key_len);
    let (server_key, salts) = rest.split_at(key_len);
    let (client_salt, server_salt) = salts.split_at(salt_len);
    // Every profile's key and salt lengths are within what MasterKey accepts, so this cannot
    // fail; mapping the error keeps the function free of panics all the same.
    // RFC 5764 §4.1.2 gives the AES-CM and NULL profiles a maximum lifetime of 2^31 packets;
    // RFC 7714 §14.2 keeps 2^48 SRTP packets for AES-GCM (SRTCP is capped at 2^31 anyway).
    let lifetime = |k: MasterKey| {
        if profile.is_aead() {
            k
        } else {
            k.with_lifetime(DTLS_CM_LIFETIME)
        }
    };
    let key = |k: &[u8], s: &[u8]| {
        MasterKey::new(k, s)
            .map(lifetime)
            .map_err(|_| wrong_length.clone())
    };
    let client = key(client_key, client_salt)?;
    let server = key(server_key, server_salt)?;
    let (outbound, inbound) = match role {
        Role::Client => (client, server),
        Role::Server => (server, client),
    };
    Ok(DtlsPolicies {
        outbound: Policy::new(profile, outbound),
        inbound: Policy::new(profile, inbound),
    })
}

/// Why DTLS-SRTP keying material could not be turned into policies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtlsError {
    /// The negotiated protection profile identifier is not one this crate implements
    /// (RFC 5764 §4.1.2, RFC 7714 §14.2).
    UnknownProfile(u16),
    /// The keying material is not [`exporter_len`] bytes for the profile.
    MaterialLength {
        /// Bytes the profile needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

impl fmt::Display for DtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownProfile(id) => {
                write!(f, "unknown DTLS-SRTP protection profile 0x{id:04x}")
            }
            Self::MaterialLength { expected, actual } => write!(
                f,
                "DTLS-SRTP keying material is {actual} bytes, the profile needs {expected}"
            ),
        }
    }
}

impl std::error::Error for DtlsError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Session, MAX_TRAILER_LEN};

    /// The profiles with a DTLS-SRTP identifier.
    fn dtls_profiles() -> impl Iterator<Item = (u16, Profile)> {
        Profile::ALL
            .into_iter()
            .filter_map(|p| p.dtls_id().map(|id| (id, p)))
    }

    /// Material whose every byte is its own offset: each part is recognisable.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    fn rtp_packet(seq: u16, ssrc: u32) -> [u8; 120 + MAX_TRAILER_LEN] {
        let mut buf = [0u8; 120 + MAX_TRAILER_LEN];
        buf[0] = 0x80;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
        buf[12..120].fill(0x5a);
        buf
    }

    fn rtcp_packet(ssrc: u32) -> [u8; 28 + MAX_TRAILER_LEN] {
        let mut buf = [0u8; 28 + MAX_TRAILER_LEN];
        buf[..4].copy_from_slice(&[0x80, 200, 0, 6]); // SR, no report blocks
        buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
        buf[8..28].fill(0x11);
        buf
    }

    /// Sends RTP and RTCP from a session of `tx` to one of `rx`.
    fn send(tx: &Policy, rx: &Policy) -> Result<(), Error> {
        let mut sender = Session::new(tx).unwrap();
        let mut receiver = Session::new(rx).unwrap();
        let mut buf = rtp_packet(100, 0xcafe_babe);
        let len = sender.protect_rtp(&mut buf, 120)?;
        assert_eq!(
            receiver.unprotect_rtp(&mut buf[..len])?,
            &rtp_packet(100, 0xcafe_babe)[..120]
        );
        let mut buf = rtcp_packet(0xcafe_babe);
        let len = sender.protect_rtcp(&mut buf, 28)?;
        assert_eq!(
            receiver.unprotect_rtcp(&mut buf[..len])?,
            &rtcp_packet(0xcafe_babe)[..28]
        );
        Ok(())
    }

    #[test]
    fn exporter_lengths_follow_the_rfcs() {
        assert_eq!(exporter_len(Profile::Aes128CmHmacSha1_80), 60);
        assert_eq!(exporter_len(Profile::Aes128CmHmacSha1_32), 60);
        assert_eq!(exporter_len(Profile::NullHmacSha1_80), 60);
        assert_eq!(exporter_len(Profile::NullHmacSha1_32), 60);
        assert_eq!(exporter_len(Profile::AeadAes128Gcm), 56);
        assert_eq!(exporter_len(Profile::AeadAes256Gcm), 88);
        assert_eq!(EXPORTER_LABEL, "EXTRACTOR-dtls_srtp");
    }

    #[test]
    fn splits_material_for_every_dtls_profile() {
        assert_eq!(dtls_profiles().count(), 6);
        for (id, profile) in dtls_profiles() {
            let (k, s) = (profile.master_key_len(), profile.master_salt_len());
            let m = pattern(exporter_len(profile));
            let client_key = &m[..k];
            let server_key = &m[k..2 * k];
            let client_salt = &m[2 * k..2 * k + s];
            let server_salt = &m[2 * k + s..];

            let c = policies(id, &m, Role::Client).unwrap();
            let srv = policies(id, &m, Role::Server).unwrap();
            for p in [&c.outbound, &c.inbound, &srv.outbound, &srv.inbound] {
                assert_eq!(p.profile, profile);
                assert_eq!(p.keys.len(), 1);
                assert_eq!(p.keys[0].mki(), None);
                // RFC 5764 §4.1.2: 2^31 packets; RFC 7714 §14.2: 2^48 SRTP packets.
                let lifetime = (!profile.is_aead()).then_some(1u64 << 31);
                assert_eq!(p.keys[0].lifetime(), lifetime, "{profile}");
            }
            assert_eq!(c.outbound.keys[0].key(), client_key, "{profile}");
            assert_eq!(c.outbound.keys[0].salt(), client_salt, "{profile}");
            assert_eq!(c.inbound.keys[0].key(), server_key, "{profile}");
            assert_eq!(c.inbound.keys[0].salt(), server_salt, "{profile}");
            assert_eq!(srv.outbound.keys[0].key(), server_key, "{profile}");
            assert_eq!(srv.outbound.keys[0].salt(), server_salt, "{profile}");
            assert_eq!(srv.inbound.keys[0].key(), client_key, "{profile}");
            assert_eq!(srv.inbound.keys[0].salt(), client_salt, "{profile}");
            assert_eq!(c.outbound.keys, srv.inbound.keys);
            assert_eq!(c.inbound.keys, srv.outbound.keys);
            assert_ne!(c.outbound.keys, c.inbound.keys);

            let via_profile = policies_for(profile, &m, Role::Client).unwrap();
            assert_eq!(via_profile.outbound.keys, c.outbound.keys);
            assert_eq!(via_profile.inbound.keys, c.inbound.keys);
        }
    }

    #[test]
    fn aes_cm_128_split_by_hand() {
        // RFC 5764 §4.2 layout for 16-byte keys and 14-byte salts, spelled out.
        let m = pattern(60);
        let c = policies(0x0001, &m, Role::Client).unwrap();
        assert_eq!(c.outbound.keys[0].key(), &(0..16).collect::<Vec<u8>>()[..]);
        assert_eq!(c.inbound.keys[0].key(), &(16..32).collect::<Vec<u8>>()[..]);
        assert_eq!(
            c.outbound.keys[0].salt(),
            &(32..46).collect::<Vec<u8>>()[..]
        );
        assert_eq!(c.inbound.keys[0].salt(), &(46..60).collect::<Vec<u8>>()[..]);
    }

    #[test]
    fn client_outbound_matches_server_inbound() {
        for (id, profile) in dtls_profiles() {
            let m: Vec<u8> = (0..exporter_len(profile))
                .map(|i| (i as u8).wrapping_mul(37) ^ 0xa5)
                .collect();
            let c = policies(id, &m, Role::Client).unwrap();
            let s = policies(id, &m, Role::Server).unwrap();
            assert_eq!(
                send(&c.outbound, &s.inbound),
                Ok(()),
                "{profile}: client to server"
            );
            assert_eq!(
                send(&s.outbound, &c.inbound),
                Ok(()),
                "{profile}: server to client"
            );
            // Each direction has its own key: a packet does not verify under the other.
            assert_eq!(
                send(&c.outbound, &c.inbound),
                Err(Error::AuthenticationFailed),
                "{profile}"
            );
            assert_eq!(
                send(&c.outbound, &s.outbound),
                Err(Error::AuthenticationFailed),
                "{profile}"
            );
        }
    }

    #[test]
    fn policies_for_accepts_profiles_without_dtls_id() {
        for profile in [Profile::Aes192CmHmacSha1_80, Profile::Aes256CmHmacSha1_32] {
            assert_eq!(profile.dtls_id(), None);
            let m = pattern(exporter_len(profile));
            let c = policies_for(profile, &m, Role::Client).unwrap();
            let s = policies_for(profile, &m, Role::Server).unwrap();
            assert_eq!(c.outbound.keys[0].key().len(), profile.master_key_len());
            assert_eq!(send(&c.outbound, &s.inbound), Ok(()));
            assert_eq!(send(&s.outbound, &c.inbound), Ok(()));
        }
    }

    #[test]
    fn rejects_wrong_material_length() {
        for (id, profile) in dtls_profiles() {
            let expected = exporter_len(profile);
            for actual in [0, 1, expected - 1, expected + 1, 2 * expected] {
                let m = pattern(actual);
                for role in [Role::Client, Role::Server] {
                    assert_eq!(
                        policies(id, &m, role).unwrap_err(),
                        DtlsError::MaterialLength { expected, actual },
                        "{profile} with {actual} bytes"
                    );
                    assert_eq!(
                        policies_for(profile, &m, role).unwrap_err(),
                        DtlsError::MaterialLength { expected, actual }
                    );
                }
            }
        }
        assert_eq!(
            policies(0x0001, &[0; 59], Role::Client)
                .unwrap_err()
                .to_string(),
            "DTLS-SRTP keying material is 59 bytes, the profile needs 60"
        );
    }

    #[test]
    fn rejects_unknown_profile_id() {
        for id in [0x0000, 0x0003, 0x0004, 0x0009, 0x00ff, 0xffff] {
            assert_eq!(
                policies(id, &pattern(60), Role::Client).unwrap_err(),
                DtlsError::UnknownProfile(id)
            );
        }
        assert_eq!(
            DtlsError::UnknownProfile(3).to_string(),
            "unknown DTLS-SRTP protection profile 0x0003"
        );
    }

    #[test]
    fn errors_are_std_errors() {
        let e: Box<dyn std::error::Error> = Box::new(DtlsError::UnknownProfile(3));
        assert!(e.source().is_none());
    }

    #[test]
    fn debug_hides_key_bytes() {
        let m = vec![0xab; 60];
        let c = policies(0x0001, &m, Role::Client).unwrap();
        let debug = format!("{c:?}");
        assert!(debug.contains("outbound") && debug.contains("inbound"));
        assert!(
            !debug.contains("171") && !debug.to_lowercase().contains("abab"),
            "{debug}"
        );
    }
}
