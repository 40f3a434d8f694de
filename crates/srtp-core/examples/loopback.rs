//! Sends SRTP over UDP on loopback and receives it again: a one-minute tour of the core.
//!
//! `cargo run --release -p srtp-core --example loopback [-- PACKETS]`
//!
//! A sender protects 20 ms G.711 packets (172 bytes of RTP) with a fresh
//! AES_CM_128_HMAC_SHA1_80 key and sends them to 127.0.0.1; a receiver unprotects them,
//! rejects a forged and a replayed copy, and prints what it saw.

use std::net::UdpSocket;
use std::time::Instant;

use srtp_core::{sdes::CryptoAttribute, Error, MasterKey, Profile, Session, MAX_TRAILER_LEN};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let packets: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let profile = Profile::Aes128CmHmacSha1_80;
    let attr = CryptoAttribute::new(1, profile, MasterKey::generate(profile));
    println!("keying both ends with: a={}", attr.redacted());
    let policy = attr.policy()?;
    let mut sender = Session::new(&policy)?;
    let mut receiver = Session::new(&policy)?;

    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    tx.connect(rx.local_addr()?)?;
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;

    let start = Instant::now();
    let (mut ok, mut lost) = (0u32, 0u32);
    let mut last = Vec::new();
    let mut out = [0u8; 172 + MAX_TRAILER_LEN];
    let mut inbuf = [0u8; 2048];
    for seq in 0..packets {
        out[..12].copy_from_slice(&rtp_header(seq as u16, seq * 160, 0x1234_5678));
        out[12..172].fill(0xd5); // G.711 mu-law silence
        let len = sender.protect_rtp(&mut out, 172)?;
        last = out[..len].to_vec();
        tx.send(&out[..len])?;
        match rx.recv(&mut inbuf) {
            Ok(n) => {
                receiver.unprotect_rtp(&mut inbuf[..n])?;
                ok += 1;
            }
            Err(_) => lost += 1,
        }
    }
    let elapsed = start.elapsed();

    let mut replay = last.clone();
    let replayed = receiver.unprotect_rtp(&mut replay).err();
    // A forgery: the last packet relabelled with the next sequence number, so that it passes
    // the replay check and must be caught by its tag.
    let mut forged = last;
    forged[2..4].copy_from_slice(&(packets as u16).to_be_bytes());
    let forged = receiver.unprotect_rtp(&mut forged).err();

    println!(
        "{ok} packets protected, sent over 127.0.0.1 and unprotected in {elapsed:.2?} ({lost} lost)"
    );
    println!("replayed packet: {}", show(replayed));
    println!("forged packet:   {}", show(forged));
    println!("sender key usage: {:?}", sender.key_usage());
    Ok(())
}

fn rtp_header(seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = 0x80;
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&ts.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

fn show(e: Option<Error>) -> String {
    e.map_or_else(
        || "accepted (unexpected!)".into(),
        |e| format!("rejected: {e}"),
    )
}
