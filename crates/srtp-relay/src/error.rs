//! Errors of the relay library.

use crate::engine::{CallId, EncryptionLevel, SocketId, SrtpMode};

/// Why the engine refused a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// No call with that id (never created, or already ended).
    #[error("no call {0}")]
    UnknownCall(CallId),
    /// The enterprise encryption level and the gateway's SRTP mode leave no allowed media.
    #[error("the encryption level {level:?} forbids a gateway whose SRTP mode is {mode:?}")]
    PolicyForbids {
        /// The enterprise level.
        level: EncryptionLevel,
        /// The gateway's mode (after treating non-TLS signalling as NotSupported).
        mode: SrtpMode,
    },
    /// A leg's media security does not fit the call's mode or policy.
    #[error("leg {leg}: {reason}")]
    LegSecurity {
        /// 0 or 1.
        leg: usize,
        /// What was expected.
        reason: &'static str,
    },
    /// A local socket is already used by another leg.
    #[error("local socket {0:?} already belongs to a call")]
    SocketInUse(SocketId),
    /// SRTP keys or options that the SRTP core refuses.
    #[error("leg {leg}: {source}")]
    Srtp {
        /// 0 or 1.
        leg: usize,
        /// What srtp-core said.
        source: srtp_core::PolicyError,
    },
}
