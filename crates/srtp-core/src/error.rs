//! Error types.
//!
//! Packet errors ([`Error`]) are small, `Copy` and cheap to return on the hot path; they never
//! carry key material or packet bytes. Set-up errors ([`PolicyError`]) describe what was wrong
//! with the keys or options given to [`Session::new`](crate::Session::new).

use core::fmt;

use crate::key::MAX_MKI_LEN;

/// Why protecting or unprotecting a packet failed.
///
/// A failed operation leaves the session's state (rollover counters, replay windows, stream
/// table, key usage) and the caller's buffer exactly as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The authentication tag did not verify under any candidate rollover counter.
    AuthenticationFailed,
    /// The packet's index was already received (RFC 3711 §3.3.2).
    Replayed,
    /// The packet's index lies behind the replay window: it cannot be checked, so it is refused.
    TooOld,
    /// The packet could not be parsed.
    Malformed(Malformed),
    /// The packet carries an MKI that names none of the session's master keys.
    UnknownMki,
    /// The master key has protected as many packets as its lifetime allows (RFC 3711 §9.2):
    /// re-key before sending more.
    KeyExhausted,
    /// The buffer has no room for the trailer (MKI and tag) protect appends.
    NoRoom {
        /// The buffer length the operation needed.
        needed: usize,
    },
    /// The buffer is shorter than the packet length given.
    LengthOutOfBounds,
    /// The session already sends on as many SSRCs as its policy allows
    /// (`Policy::max_streams`); send state is never evicted, as a forgotten sender would reuse
    /// keystream.
    StreamLimit,
    /// The packet was encrypted with cryptex (RFC 9335: its header extension profile is
    /// `0xC0DE` or `0xC2DE`), which this session was not set up to receive
    /// ([`Policy::cryptex`](crate::Policy::cryptex)).
    CryptexNotNegotiated,
}

/// What exactly was wrong with a malformed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Malformed {
    /// Shorter than the fixed header plus trailer.
    TooShort,
    /// The version field is not 2.
    BadVersion,
    /// The CSRC list or header extension runs past the end of the packet.
    HeaderOverrun,
    /// An RTCP packet whose first packet type is not in 200..=207 (RFC 5761 §4).
    NotRtcp,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthenticationFailed => f.write_str("authentication failed"),
            Self::Replayed => f.write_str("replayed packet"),
            Self::TooOld => f.write_str("packet index is behind the replay window"),
            Self::Malformed(m) => write!(f, "malformed packet: {m}"),
            Self::UnknownMki => f.write_str("unknown master key identifier"),
            Self::KeyExhausted => f.write_str("master key lifetime exhausted"),
            Self::NoRoom { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Self::LengthOutOfBounds => f.write_str("packet length exceeds the buffer"),
            Self::StreamLimit => f.write_str("too many sending SSRCs for this session"),
            Self::CryptexNotNegotiated => {
                f.write_str("packet is encrypted with cryptex, which this session does not accept")
            }
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooShort => "too short",
            Self::BadVersion => "version is not 2",
            Self::HeaderOverrun => "header runs past the end of the packet",
            Self::NotRtcp => "not an RTCP packet type",
        })
    }
}

impl std::error::Error for Error {}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

/// Why a [`Policy`](crate::Policy) could not be turned into a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// No master key was given.
    NoMasterKey,
    /// A master key has the wrong length for the profile.
    KeyLength {
        /// Bytes the profile needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A master salt has the wrong length for the profile.
    SaltLength {
        /// Bytes the profile needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// An MKI is longer than 4 bytes or empty.
    MkiLength(usize),
    /// Master keys of one session must all carry an MKI of the same length, or there must be a
    /// single key without MKI.
    InconsistentMki,
    /// Two master keys carry the same MKI value.
    DuplicateMki,
    /// The replay window size is outside 64..=32768 or not a multiple of 64.
    ReplayWindow(usize),
    /// The key derivation rate exponent is above 24 (RFC 3711 §4.3.1, RFC 4568 §6.3.1).
    KeyDerivationRate(u8),
    /// A lifetime of zero packets.
    ZeroLifetime,
    /// A stream limit of zero.
    ZeroStreamLimit,
    /// The sender key to select does not exist.
    NoSuchKey,
    /// AEAD profiles always authenticate: `UNAUTHENTICATED_SRTP` cannot apply.
    UnauthenticatedAead,
    /// AEAD profiles always encrypt SRTP (RFC 7714 defines no authentication-only SRTP;
    /// libsrtp ignores the option): `UNENCRYPTED_SRTP` cannot apply.
    UnencryptedAead,
    /// This CPU cannot run the chosen SHA-1 backend.
    UnsupportedBackend(crate::Backend),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMasterKey => f.write_str("no master key given"),
            Self::KeyLength { expected, actual } => {
                write!(
                    f,
                    "master key is {actual} bytes, the profile needs {expected}"
                )
            }
            Self::SaltLength { expected, actual } => {
                write!(
                    f,
                    "master salt is {actual} bytes, the profile needs {expected}"
                )
            }
            Self::MkiLength(n) => write!(
                f,
                "MKI of {n} bytes (or a value too large for them): MKIs are 1 to {MAX_MKI_LEN} \
                 bytes"
            ),
            Self::InconsistentMki => f.write_str(
                "with several master keys every key needs an MKI, all of the same length",
            ),
            Self::DuplicateMki => f.write_str("two master keys have the same MKI"),
            Self::ReplayWindow(n) => {
                write!(
                    f,
                    "replay window of {n}: must be a multiple of 64 from 64 to 32768"
                )
            }
            Self::KeyDerivationRate(n) => {
                write!(
                    f,
                    "key derivation rate 2^{n}: the exponent must be at most 24"
                )
            }
            Self::ZeroLifetime => f.write_str("a master key lifetime must be at least 1 packet"),
            Self::ZeroStreamLimit => f.write_str("the stream limit must be at least 1"),
            Self::NoSuchKey => f.write_str("no master key with that MKI"),
            Self::UnauthenticatedAead => {
                f.write_str("unauthenticated SRTP is not possible with an AEAD profile")
            }
            Self::UnencryptedAead => {
                f.write_str("unencrypted SRTP is not possible with an AEAD profile")
            }
            Self::UnsupportedBackend(b) => {
                write!(f, "this CPU cannot run the {} SHA-1 backend", b.name())
            }
        }
    }
}

impl std::error::Error for PolicyError {}
