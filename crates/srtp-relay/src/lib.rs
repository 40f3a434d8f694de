//! The srtp-relay library: carries calls' media between two legs, forwarding SRTP untouched,
//! transcrypting it between keys, or bridging it to plain RTP under an enterprise policy.
//!
//! - [`engine`]: the sans-IO core. Packets and time in; transmits, events and deadlines out.
//!   No sockets, no clock, no threads.
//! - [`io`]: the only part that owns sockets and threads: workers that feed the engine.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod control;
pub mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;

pub use error::EngineError;
