//! Decrypt SRTP captures to plain RTP, so that Wireshark decodes and plays the call, and
//! encrypt RTP captures to SRTP, to make test captures.
//!
//! `srtp-pcap` reads a pcap or pcapng capture (Ethernet, Linux cooked v1/v2 or raw IP; IPv4 and
//! IPv6; UDP), replaces each SRTP/SRTCP packet by the RTP/RTCP it carries (or the reverse),
//! fixes the UDP, IP and record lengths and checksums, keeps every other record byte for byte,
//! and counts what it did per stream.
//!
//! What it does **not** do: no live capture (give it a file or a pipe), no TCP or TLS
//! (RFC 4571 framing), no DTLS handshake (bring the keys as SDES lines or `PROFILE:BASE64`), no
//! IP reassembly (fragments are copied as they are), no keys found in SIP signalling.
//!
//! The loop that drives it: [`Engine::process`] takes one captured frame and its link type and
//! rewrites it in place ([`Verdict`] says whether to write it); [`capture::run`] is that loop
//! over a capture in any [`std::io::Read`], writing to any [`std::io::Write`]; [`cli`] holds
//! the command line, which the `srtp-pcap` binary (and later `srtp-relay pcap`) mounts.
//!
//! ```
//! use srtp_pcap::{capture, Config, Engine, Failed, Key, Mode};
//!
//! // A pcap of one raw-IPv4 frame: 127.0.0.1:4000 -> 127.0.0.1:5004, a 32-byte RTP packet.
//! let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0xCA, 0xFE, 0xBA, 0xBE];
//! rtp.resize(32, 0xFF);
//! let mut ip = vec![0x45, 0, 0, 60, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
//! ip.extend_from_slice(&[0x0F, 0xA0, 0x13, 0x8C, 0, 40, 0, 0]);
//! ip.extend_from_slice(&rtp);
//! let mut pcap = Vec::new();
//! for word in [0xA1B2C3D4u32, 0x0002_0004, 0, 0, 65535, 101, 0, 0, 60, 60] {
//!     pcap.extend_from_slice(&word.to_be_bytes());
//! }
//! pcap.extend_from_slice(&ip);
//!
//! let key = Key::parse("AES_CM_128_HMAC_SHA1_80:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd")?;
//! let config = |mode| Config {
//!     mode,
//!     keys: vec![key.clone()],
//!     filters: vec![],
//!     ssrcs: vec![],
//!     failed: Failed::Keep,
//! };
//! let mut srtp = Vec::new();
//! capture::run(&mut Engine::new(config(Mode::Encrypt))?, &pcap[..], &mut srtp)?;
//! assert_eq!(srtp.len(), pcap.len() + 10); // an 80-bit tag
//!
//! let mut decrypt = Engine::new(config(Mode::Decrypt))?;
//! let mut plain = Vec::new();
//! capture::run(&mut decrypt, &srtp[..], &mut plain)?;
//! assert_eq!(decrypt.report().totals().done, 1);
//! // The same RTP packet back, in a frame of the same length (with its checksums filled in).
//! assert_eq!(plain.len(), pcap.len());
//! assert_eq!(plain[plain.len() - 32..], rtp[..]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod cli;
mod engine;
mod error;
pub mod filter;
mod keys;
pub mod net;
mod report;

pub use engine::{classify, Config, Engine, Failed, Mode, Verdict};
pub use error::{Error, Position};
pub use keys::{Key, KeyError};
pub use report::{Kind, Outcome, Report, StreamKey, StreamStats};

/// The body of the `pcap_decrypt` fuzz target, here so that `cargo test` replays the committed
/// corpus (`fuzz/corpus/pcap_decrypt/`) through the same code. Not part of the API.
///
/// Runs arbitrary bytes as a capture through decrypt (with the two keys the seed captures
/// use) and encrypt: neither may panic, and when decrypt reads the whole input its output must
/// read again, with the same number of records.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    const KEYS: [&str; 2] = [
        "AES_CM_128_HMAC_SHA1_80:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
        "AEAD_AES_128_GCM:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
    ];
    let keys: Vec<Key> = KEYS.iter().filter_map(|k| Key::parse(k).ok()).collect();
    let config = |mode, keys: &[Key]| Config {
        mode,
        keys: keys.to_vec(),
        filters: Vec::new(),
        ssrcs: Vec::new(),
        failed: Failed::Keep,
    };
    let Ok(mut engine) = Engine::new(config(Mode::Decrypt, &keys)) else {
        return;
    };
    let mut out = Vec::new();
    if capture::run(&mut engine, data, &mut out).is_ok() {
        let Ok(mut again) = Engine::new(config(Mode::Decrypt, &keys)) else {
            return;
        };
        if let Err(e) = capture::run(&mut again, &out[..], std::io::sink()) {
            panic!("the output of a successful run does not read again: {e}");
        }
        assert_eq!(again.report().records(), engine.report().records());
    }
    if let Ok(mut engine) = Engine::new(config(Mode::Encrypt, &keys[..1])) {
        let _ = capture::run(&mut engine, data, std::io::sink());
    }
}
