//! The control plane: how signalling servers and operators drive the relay.
//!
//! - [`api`]: HTTPS + JSON with mutual TLS and roles ([`roles`], [`tls`]), `/healthz` and
//!   Prometheus `/metrics`.
//! - [`ng`]: the rtpengine-compatible ng protocol (bencode over UDP, [`bencode`]) with SDP
//!   rewriting ([`sdp`]), so Kamailio's and OpenSIPS's rtpengine modules can drive the relay.
//!   Unauthenticated: loopback by default.
//! - [`client`]: an HTTPS client of the API (`srtp-relay ctl`, tests).
//! - [`certs`]: development certificates.
//!
//! Both front ends share one [`Control`]: the [`Relay`], the drain flag and counters. Key
//! material enters through requests and leaves only as the relay's own `a=crypto` lines, which
//! the signalling server must put in SDP; it is never logged, counted or echoed in errors.
//! Keys live in srtp-core sessions, which zeroize them when a call ends.

pub mod api;
pub mod bencode;
pub mod certs;
pub mod client;
pub mod ng;
pub mod roles;
pub mod sdp;
pub mod server;
pub mod tls;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Mki};

use crate::io::{CallRequest, CreatedCall, Relay, RelayError};

/// What the API and the ng listener share: the relay and process-wide state.
#[derive(Debug)]
pub struct Control {
    relay: Relay,
    media_address: IpAddr,
    draining: AtomicBool,
    /// Counters for `/metrics`.
    pub metrics: ControlMetrics,
}

/// Control-plane counters (media counters come from the relay).
#[derive(Debug, Default)]
pub struct ControlMetrics {
    /// Calls created through either front end.
    pub calls_created: AtomicU64,
    /// Call creations refused because the port range was exhausted.
    pub ports_exhausted: AtomicU64,
    /// Call creations refused while draining.
    pub refused_draining: AtomicU64,
    /// API requests answered, by status class (index 1..=5 for 1xx..5xx).
    pub api_responses: [AtomicU64; 6],
    /// API requests denied (403).
    pub api_denied: AtomicU64,
    /// TLS handshakes that failed (no, untrusted, expired or revoked certificate).
    pub tls_failures: AtomicU64,
    /// ng commands handled.
    pub ng_commands: AtomicU64,
    /// ng messages that could not be decoded.
    pub ng_malformed: AtomicU64,
}

/// Why a call could not be created through the control plane.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// SIGTERM was received: running calls continue, no new ones start.
    #[error("draining: not accepting new calls")]
    Draining,
    /// The relay refused.
    #[error(transparent)]
    Relay(#[from] RelayError),
}

impl Control {
    /// Control over `relay`, which writes `media_address` into SDP.
    pub fn new(relay: Relay, media_address: IpAddr) -> Self {
        Self {
            relay,
            media_address,
            draining: AtomicBool::new(false),
            metrics: ControlMetrics::default(),
        }
    }

    /// The relay.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// The address put into SDP for media.
    pub fn media_address(&self) -> IpAddr {
        self.media_address
    }

    /// Stops accepting new calls (SIGTERM).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether new calls are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Creates a call unless draining, counting the outcome.
    ///
    /// # Errors
    /// [`CreateError::Draining`], or what the relay says (port exhaustion included).
    pub fn create_call(&self, request: CallRequest) -> Result<CreatedCall, CreateError> {
        if self.is_draining() {
            self.metrics
                .refused_draining
                .fetch_add(1, Ordering::Relaxed);
            return Err(CreateError::Draining);
        }
        match self.relay.create_call(request) {
            Ok(c) => {
                self.metrics.calls_created.fetch_add(1, Ordering::Relaxed);
                Ok(c)
            }
            Err(e) => {
                if matches!(e, RelayError::PortsExhausted) {
                    self.metrics.ports_exhausted.fetch_add(1, Ordering::Relaxed);
                }
                Err(e.into())
            }
        }
    }

    /// Takes the relay back, when nothing else holds the control.
    pub fn into_relay(self) -> Relay {
        self.relay
    }
}

/// The lifetime the relay declares for its own keys when the endpoint's line declares one:
/// 2^31 packets, the form Microsoft peers send and expect.
const ANSWER_LIFETIME: u64 = 1 << 31;

/// The relay's own `a=crypto` line answering an endpoint's line (RFC 4568 §7.1.2): the same
/// tag and suite, a fresh key, an MKI of the same length only when the endpoint's line had
/// one (symmetric MKI, as Microsoft peers expect), and the negotiated session parameters
/// `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP` and `UNAUTHENTICATED_SRTP` (§6.3.2, §6.3.3:
/// accepted by repeating them, and then both directions send that way).
///
/// A lifetime is the sender's own declaration about its own key, so the relay does not
/// copy the endpoint's: it declares a lifetime of 2^31 packets when the endpoint declared one
/// (keeping the line's shape) and none otherwise (2^48 by RFC 3711). Copying a short one,
/// `|2^20` say, would stop the relay's sending after 2^20 packets with nothing to re-key.
pub fn answer_line(offered: &CryptoAttribute) -> CryptoAttribute {
    let mut key = MasterKey::generate(offered.profile);
    if let Some(first) = offered.keys.first() {
        if let Some(mki) = first.mki() {
            if let Ok(m) = Mki::new(1, mki.len()) {
                key = key.with_mki(m);
            }
        }
        if first.lifetime().is_some() {
            key = key.with_lifetime(ANSWER_LIFETIME);
        }
    }
    let mut line = CryptoAttribute::new(offered.tag, offered.profile, key);
    let (theirs, ours) = (&offered.params, &mut line.params);
    ours.unencrypted_srtp = theirs.unencrypted_srtp;
    ours.unencrypted_srtcp = theirs.unencrypted_srtcp;
    ours.unauthenticated_srtp = theirs.unauthenticated_srtp;
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_has_mki_only_when_offer_had_one() {
        let with: CryptoAttribute = "a=crypto:2 AES_CM_128_HMAC_SHA1_80 \
             inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1"
            .parse()
            .unwrap();
        let a = answer_line(&with).to_string();
        assert!(
            a.starts_with("crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{a}"
        );
        assert!(a.ends_with("|2^31|1:1"), "{a}");
        let without: CryptoAttribute = "a=crypto:3 AES_CM_128_HMAC_SHA1_80 \
             inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31"
            .parse()
            .unwrap();
        assert!(answer_line(&without).to_string().ends_with("|2^31"));
        assert_ne!(answer_line(&with).keys[0].key(), with.keys[0].key());
    }

    #[test]
    fn answer_declares_its_own_lifetime_and_repeats_negotiated_parameters() {
        let line = |s: &str| -> CryptoAttribute { s.parse().unwrap() };
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        // RFC 4568's example form: a short lifetime and a 4-byte MKI.
        let short = line(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"
        ));
        let a = answer_line(&short);
        assert_eq!(a.keys[0].lifetime(), Some(1 << 31));
        assert!(a.to_string().ends_with("|2^31|1:4"), "{a}");
        let none = line(&format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}"));
        assert_eq!(answer_line(&none).keys[0].lifetime(), None);

        let params = line(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} KDR=10 UNENCRYPTED_SRTP \
             UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP WSH=128"
        ));
        let a = answer_line(&params);
        let text = a.to_string();
        for p in [
            "UNENCRYPTED_SRTP",
            "UNENCRYPTED_SRTCP",
            "UNAUTHENTICATED_SRTP",
        ] {
            assert!(text.contains(p), "{p} repeated: {text}");
        }
        // Declarative ones are the offerer's own.
        assert!(!text.contains("KDR") && !text.contains("WSH"), "{text}");
        let policy = a.policy().unwrap();
        assert!(!policy.encrypt_rtp && !policy.encrypt_rtcp && !policy.authenticate_rtp);
    }
}
