//! The cryptographic transforms behind one internal interface.
//!
//! Everything the packet code needs from a cipher or MAC goes through the types here, so that
//! a faster backend (SIMD SHA-1, multi-buffer hashing) can slot in without touching the
//! protocol logic.

pub(crate) mod aes_cm;
pub(crate) mod aes_gcm;
pub(crate) mod hmac_sha1;

pub(crate) use aes_cm::AesCm;
pub(crate) use aes_gcm::AesGcm;
pub(crate) use hmac_sha1::HmacSha1;
