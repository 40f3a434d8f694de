//! The mediation policy: whether the gateway leg of a bridge carries SRTP or RTP.
//!
//! An enterprise sets one encryption level for its clients; each PSTN gateway (trunk) says
//! whether it requires, accepts or cannot do SRTP. The combination decides the gateway leg,
//! or forbids the call (the Microsoft Lync / Skype for Business model).

use crate::EngineError;

/// The enterprise's encryption level for media between clients and the relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EncryptionLevel {
    /// Media must be encrypted end to end through the relay (the default).
    #[default]
    RequireEncryption,
    /// Encrypt when the other side can; plain RTP otherwise.
    SupportEncryption,
    /// Never encrypt.
    DoNotSupportEncryption,
}

/// A media gateway's (trunk's) SRTP capability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SrtpMode {
    /// The gateway requires SRTP (the default).
    #[default]
    Required,
    /// The gateway accepts SRTP or RTP.
    Optional,
    /// The gateway only does RTP.
    NotSupported,
}

/// What the gateway leg of a bridge carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayMedia {
    /// SRTP toward the gateway.
    Srtp,
    /// Plain RTP toward the gateway.
    Rtp,
}

/// Decides the gateway leg's media for an enterprise `level` and a gateway `mode`.
///
/// `signalling_tls` says whether signalling to the gateway is protected by TLS: SDES keys
/// must never cross cleartext signalling, so without it the gateway counts as
/// [`SrtpMode::NotSupported`]. `gateway_offers_srtp` matters only where both are possible
/// (an optional gateway under `SupportEncryption`).
///
/// # Errors
/// [`EngineError::PolicyForbids`] when the combination leaves no allowed media: encryption
/// required but the gateway cannot do SRTP, or encryption refused but the gateway requires it.
pub fn gateway_media(
    level: EncryptionLevel,
    mode: SrtpMode,
    signalling_tls: bool,
    gateway_offers_srtp: bool,
) -> Result<GatewayMedia, EngineError> {
    let mode = if signalling_tls {
        mode
    } else {
        SrtpMode::NotSupported
    };
    use EncryptionLevel::*;
    use SrtpMode::*;
    match (level, mode) {
        (RequireEncryption, Required | Optional) => Ok(GatewayMedia::Srtp),
        (SupportEncryption, Required) => Ok(GatewayMedia::Srtp),
        (SupportEncryption, Optional) if gateway_offers_srtp => Ok(GatewayMedia::Srtp),
        (SupportEncryption, Optional | NotSupported) => Ok(GatewayMedia::Rtp),
        (DoNotSupportEncryption, Optional | NotSupported) => Ok(GatewayMedia::Rtp),
        (RequireEncryption, NotSupported) | (DoNotSupportEncryption, Required) => {
            Err(EngineError::PolicyForbids { level, mode })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination() {
        use EncryptionLevel::*;
        use GatewayMedia::*;
        use SrtpMode::*;
        let ok = |l, m, tls, offers| gateway_media(l, m, tls, offers).ok();
        assert_eq!(ok(RequireEncryption, Required, true, true), Some(Srtp));
        assert_eq!(ok(RequireEncryption, Optional, true, false), Some(Srtp));
        assert_eq!(ok(RequireEncryption, NotSupported, true, true), None);
        assert_eq!(ok(SupportEncryption, Required, true, true), Some(Srtp));
        assert_eq!(ok(SupportEncryption, Optional, true, true), Some(Srtp));
        assert_eq!(ok(SupportEncryption, Optional, true, false), Some(Rtp));
        assert_eq!(ok(SupportEncryption, NotSupported, true, true), Some(Rtp));
        assert_eq!(ok(DoNotSupportEncryption, Required, true, true), None);
        assert_eq!(ok(DoNotSupportEncryption, Optional, true, true), Some(Rtp));
        assert_eq!(
            ok(DoNotSupportEncryption, NotSupported, true, true),
            Some(Rtp)
        );
    }

    #[test]
    fn keys_never_cross_cleartext_signalling() {
        use EncryptionLevel::*;
        assert_eq!(
            gateway_media(SupportEncryption, SrtpMode::Required, false, true).unwrap(),
            GatewayMedia::Rtp
        );
        let e = gateway_media(RequireEncryption, SrtpMode::Required, false, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the encryption level RequireEncryption forbids a gateway whose SRTP mode is \
             NotSupported"
        );
    }
}
