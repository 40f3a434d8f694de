//! What a call is made of: two legs, a mode, and the requests that create and change it.

use std::fmt;
use std::net::SocketAddr;

use srtp_core::{MasterKey, Policy};

use super::policy::{EncryptionLevel, SrtpMode};

/// Identifies a call for the life of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An opaque handle of a local UDP socket, chosen by the I/O layer that owns the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u32);

/// RTP or RTCP, by the port a packet arrived on (or, on an rtcp-mux port, by its type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Media.
    Rtp,
    /// Control.
    Rtcp,
}

/// The media direction of a leg, from its endpoint's point of view (the SDP attribute of that
/// endpoint): what it sends to the relay and what it accepts from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MediaDirection {
    /// Sends and receives.
    #[default]
    SendRecv,
    /// Sends only (for example the side that put the call on hold with music).
    SendOnly,
    /// Receives only (put on hold).
    RecvOnly,
    /// Neither (both on hold). RTCP still flows.
    Inactive,
}

impl MediaDirection {
    /// Whether the endpoint's RTP is forwarded.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether RTP is forwarded to the endpoint.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// The media security of a leg.
#[derive(Clone, Debug)]
pub enum Security {
    /// Plain RTP and RTCP.
    Plain,
    /// SRTP and SRTCP.
    Srtp {
        /// What the endpoint protects its packets with (the crypto attribute of its own SDP).
        inbound: Policy,
        /// What the relay protects packets to the endpoint with (the relay's crypto attribute
        /// in the SDP it sends to the endpoint).
        outbound: Policy,
    },
}

impl Security {
    /// Whether the leg carries SRTP.
    pub fn is_srtp(&self) -> bool {
        matches!(self, Self::Srtp { .. })
    }
}

/// How a leg learns its remote address when packets cannot authenticate it (plain RTP, or
/// pass-through without keys). SRTP legs whose keys the relay holds always learn, and move,
/// from authenticated packets only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latching {
    /// Only the configured remote address is accepted.
    Strict,
    /// The first source is latched (or the configured one kept); a new source takes over only
    /// after this many consecutive packets from it.
    Learn {
        /// Consecutive packets from one new source before it replaces the old one.
        relatch_after: u32,
    },
}

impl Default for Latching {
    fn default() -> Self {
        Self::Learn { relatch_after: 5 }
    }
}

/// One leg of a call as requested.
#[derive(Clone, Debug)]
pub struct LegSpec {
    /// The local socket for RTP (and RTCP too with rtcp-mux).
    pub rtp: SocketId,
    /// The local socket for RTCP; `None` for rtcp-mux (RFC 5761) on this leg.
    pub rtcp: Option<SocketId>,
    /// The endpoint's RTP address, if signalling gave one.
    pub remote: Option<SocketAddr>,
    /// The endpoint's RTCP address; by default its RTP port + 1, or the RTP address with
    /// rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// Plain or SRTP, with keys.
    pub security: Security,
    /// The endpoint's media direction.
    pub direction: MediaDirection,
    /// How the remote address is learnt where packets cannot authenticate it.
    pub latching: Latching,
}

impl LegSpec {
    /// A send-receive leg on `rtp` (rtcp-mux) with the default latching.
    pub fn new(rtp: SocketId, security: Security) -> Self {
        Self {
            rtp,
            rtcp: None,
            remote: None,
            remote_rtcp: None,
            security,
            direction: MediaDirection::SendRecv,
            latching: Latching::default(),
        }
    }
}

/// What the relay does between the two legs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward SRTP untouched: media stays end-to-end encrypted (the Edge relay). With
    /// `verify`, both legs' inbound keys are given and every packet's tag is checked before
    /// it is forwarded (forgeries dropped, and the remote learnt from authenticated packets).
    PassThrough {
        /// Check tags with the legs' inbound keys.
        verify: bool,
    },
    /// Decrypt with one leg's keys and encrypt with the other's: SRTP on both legs.
    Transcrypt,
    /// Leg 0 toward internal clients, leg 1 toward a media gateway, with the gateway leg's
    /// media decided by the policy (see [`gateway_media`](super::gateway_media)). The
    /// bridge's own RTCP goes to its SRTP legs (to leg 0 when neither is), whichever side they
    /// are: ng puts the caller on leg 0.
    Bridge {
        /// The enterprise encryption level.
        level: EncryptionLevel,
        /// The gateway's SRTP mode.
        gateway: SrtpMode,
        /// Whether signalling to the gateway runs over TLS.
        gateway_tls: bool,
    },
}

/// A call as requested: a mode and two legs.
#[derive(Clone, Debug)]
pub struct CallSpec {
    /// What the relay does between the legs.
    pub mode: Mode,
    /// The two legs. In a bridge, leg 0 faces the clients and leg 1 the gateway.
    pub legs: [LegSpec; 2],
}

/// A change to a running call's leg.
#[derive(Clone, Debug, Default)]
pub struct LegUpdate {
    /// A new remote RTP address (re-INVITE), which also resets latching.
    pub remote: Option<SocketAddr>,
    /// A new remote RTCP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// New master keys for what the endpoint sends (re-key); streams continue.
    pub inbound_keys: Option<Vec<MasterKey>>,
    /// New master keys for what the relay sends to the endpoint; streams continue.
    pub outbound_keys: Option<Vec<MasterKey>>,
    /// A new media direction (hold, resume).
    pub direction: Option<MediaDirection>,
    /// Whether what the relay sends to the endpoint uses cryptex (RFC 9335): the endpoint's
    /// SDP announced `a=cryptex`. Ignored on a leg without keys.
    pub outbound_cryptex: Option<bool>,
}
