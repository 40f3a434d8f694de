//! What a session is built from: profile, master keys and options.

use crate::replay::DEFAULT_REPLAY_WINDOW;
use crate::{MasterKey, Profile};

/// Default cap on the streams (SSRCs) one session tracks per direction. Microsoft clients send
/// up to 100 video SSRCs under one key; this leaves room for several such ranges.
pub const DEFAULT_MAX_STREAMS: usize = 512;

/// The most SRTP packets one master key may protect (RFC 3711 §9.2).
pub const MAX_SRTP_LIFETIME: u64 = 1 << 48;
/// The most SRTCP packets one master key may protect (RFC 3711 §9.2).
pub const MAX_SRTCP_LIFETIME: u64 = 1 << 31;

/// The cryptographic parameters and options of one direction of an SRTP session: everything
/// [`Session::new`](crate::Session::new) needs.
///
/// Build one with [`Policy::new`] and adjust the public fields:
///
/// ```
/// use srtp_core::{MasterKey, Policy, Profile};
///
/// let key = MasterKey::generate(Profile::Aes128CmHmacSha1_80);
/// let mut policy = Policy::new(Profile::Aes128CmHmacSha1_80, key);
/// policy.replay_window = 1024;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Policy {
    /// The protection profile.
    pub profile: Profile,
    /// Master keys. With more than one, each needs an MKI of the same length; the first is the
    /// sender's key until [`Session::select_sender_key`](crate::Session::select_sender_key).
    pub keys: Vec<MasterKey>,
    /// Encrypt SRTP payloads (cleared by SDES `UNENCRYPTED_SRTP`).
    pub encrypt_rtp: bool,
    /// Encrypt SRTCP (cleared by SDES `UNENCRYPTED_SRTCP`: packets are sent with E=0, and are
    /// still authenticated).
    pub encrypt_rtcp: bool,
    /// Authenticate SRTP (cleared by SDES `UNAUTHENTICATED_SRTP`; SRTCP is always
    /// authenticated). Not allowed with AEAD profiles.
    pub authenticate_rtp: bool,
    /// Key derivation rate as a power of two (`KDR=n` in SDES: session keys are re-derived
    /// every `2^n` packets); `None` derives them once (RFC 3711 §4.3.1).
    pub key_derivation_rate: Option<u8>,
    /// Replay window size in packets: a multiple of 64, from 64 to 32768. Default 128.
    pub replay_window: usize,
    /// Most streams (SSRCs) tracked per direction; the least recently used is evicted beyond.
    pub max_streams: usize,
    /// On an authentication failure, also try the rollover counters one above and one below
    /// the estimate, and zero for a stream's first packets, before rejecting.
    pub roc_recovery: bool,
    /// Let the sender protect an index it has already protected. Off by default: protecting
    /// different payloads under one index reuses keystream (and, for AES-GCM, the nonce).
    /// Only for senders that retransmit a packet by protecting it again, unchanged.
    pub danger_allow_repeat_tx: bool,
    /// Sender side, for forwarders (a relay that re-protects packets it received): keep each
    /// SSRC's packet index moving forward when the sequence numbers handed to `protect_rtp`
    /// restart (an upstream reset on hold and resume). A number at least the replay window
    /// behind the highest sent, or 4096 or more ahead of it, followed by the next number,
    /// re-bases the stream: from that second packet on, packets go out numbered on from the
    /// highest sent, the new number written into the header, so no index is used twice under
    /// one key (RFC 3711 §3.3.1, §9.2) and the receiver's replay check passes them. The first
    /// packet of a restart, and a lone packet that far off (very late, or from before a
    /// restart), are refused as [`Error::TooOld`](crate::Error::TooOld). Within those bounds
    /// packets keep their spacing, late ones included. RTCP that names sequence numbers
    /// (receiver reports, NACKs) is the caller's to translate, with
    /// [`Session::sequence_offset`](crate::Session::sequence_offset). Off by default: a packet's
    /// number is then never changed, and a restart behind is refused until it passes the
    /// highest sent.
    pub sequence_continuity: bool,
    /// Cryptex (RFC 9335, SDP `a=cryptex`): the sender encrypts every packet's CSRCs and RTP
    /// header extensions with its payload (marking the extension block `0xC0DE` or `0xC2DE`,
    /// and adding an empty one to a packet with CSRCs and none), and the receiver decrypts
    /// packets so marked. Packets without the mark are still received as RFC 3711 has them,
    /// since a sender may choose per packet (RFC 9335 §4). Off by default, when marked packets
    /// are refused ([`Error::CryptexNotNegotiated`](crate::Error::CryptexNotNegotiated)).
    /// With encryption off (`encrypt_rtp = false`) there is nothing to do and it stays off; a
    /// NULL-cipher sender marks nothing (it encrypts nothing), but its receiver accepts marked
    /// packets. A packet whose extension is not RFC 8285's is sent without cryptex (§5.1).
    pub cryptex: bool,
}

impl Policy {
    /// A policy with one master key and the defaults: encryption and authentication on, no key
    /// derivation rate, a 128-packet replay window, rollover recovery on.
    pub fn new(profile: Profile, key: MasterKey) -> Self {
        Self::with_keys(profile, vec![key])
    }

    /// A policy with several master keys (each with an MKI).
    pub fn with_keys(profile: Profile, keys: Vec<MasterKey>) -> Self {
        Self {
            profile,
            keys,
            encrypt_rtp: true,
            encrypt_rtcp: true,
            authenticate_rtp: true,
            key_derivation_rate: None,
            replay_window: DEFAULT_REPLAY_WINDOW,
            max_streams: DEFAULT_MAX_STREAMS,
            roc_recovery: true,
            danger_allow_repeat_tx: false,
            sequence_continuity: false,
            cryptex: false,
        }
    }
}
