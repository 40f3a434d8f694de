//! Zero-copy SRTP and SRTCP.
//!
//! `srtp-core` protects and unprotects RTP and RTCP packets in place on the caller's buffer:
//! every standard profile ([`Profile`]: AES-CM-128/192/256 with HMAC-SHA1 80/32, AEAD AES-GCM
//! 128/256, NULL with HMAC-SHA1), master key identifiers and lifetimes, any number of SSRCs
//! under one key, keying from SDES `a=crypto` lines ([`sdes`], RFC 4568) or DTLS-SRTP
//! exported keying material ([`dtls`], RFC 5764), and cryptex (RFC 9335, SDP `a=cryptex`:
//! CSRCs and header extensions encrypted with the payload, [`Policy::cryptex`]).
//!
//! What it does **not** do: no I/O, no clock, no threads. It does not run DTLS handshakes
//! (bring the exported keying material) nor parse SDP beyond the `a=crypto` attribute. It does
//! not encrypt header extensions one by one (RFC 6904; cryptex replaces it).
//!
//! Speed comes from doing each packet in place with keys expanded once, and from the CPU: the
//! SHA-1 code is chosen once per session ([`Backend`]: SHA extensions, AVX2 or portable Rust),
//! AES-CTR runs on the CPU's AES instructions (AES-NI, VAES) where it has them, and the batch
//! calls ([`Session::protect_rtp_batch`],
//! [`Session::unprotect_rtp_batch`]) compute the HMACs of eight packets at once in AVX2 lanes,
//! with results identical to the one-packet calls bit for bit.
//!
//! The loop that drives it: build a [`Policy`] per direction, a [`Session`] from each, then
//! call [`Session::protect_rtp`] on what you send and [`Session::unprotect_rtp`] on what you
//! receive (and the `_rtcp` variants for RTCP). A failed unprotect leaves the packet and the
//! session as they were.
//!
//! ```
//! use srtp_core::{sdes::CryptoAttribute, Session, MAX_TRAILER_LEN};
//!
//! // The offer's crypto line keys what the offerer sends.
//! let line = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 \
//!             inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1";
//! let attr: CryptoAttribute = line.parse()?;
//! let mut tx = Session::new(&attr.policy()?)?;
//! let mut rx = Session::new(&attr.policy()?)?;
//!
//! let mut buf = [0u8; 172 + MAX_TRAILER_LEN];
//! buf[0] = 0x80; // RTP version 2, the rest zero: a 172-byte G.711 packet
//! let len = tx.protect_rtp(&mut buf, 172)?;
//! assert_eq!(len, 172 + 1 + 10); // a 1-byte MKI and an 80-bit tag
//! assert_eq!(rx.unprotect_rtp(&mut buf[..len])?.len(), 172);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod cipher;
pub mod dtls;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod kdf;
mod key;
mod packet;
mod policy;
mod profile;
mod replay;
pub mod sdes;
mod session;
mod stream;
#[cfg(test)]
mod vectors;

pub use backend::Backend;
pub use error::{Error, Malformed, PolicyError};
pub use key::{MasterKey, Mki, MAX_MKI_LEN};
pub use policy::{Policy, DEFAULT_MAX_STREAMS, MAX_SRTCP_LIFETIME, MAX_SRTP_LIFETIME};
pub use profile::Profile;
pub use replay::{DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW};
pub use session::{BatchPacket, KeyUsage, Session, MAX_TRAILER_LEN};
