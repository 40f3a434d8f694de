//! Interoperability with the `webrtc-srtp` crate (0.17), both ways.
//!
//! For every profile both implement (AES-CM-128/256 with HMAC-SHA1 80/32, AEAD AES-128/256
//! GCM), srtp-core and webrtc-srtp protect the same packets under the same key: each must
//! unprotect the other's packets, and the protected bytes must be identical. Packets vary in
//! payload length (0..=1400), CSRCs and RFC 8285 header extensions; sequence numbers cross
//! 65535; deliveries are sometimes reordered. SRTCP is checked with E=1 both ways and with E=0
//! from srtp-core (webrtc-srtp always sends E=1). webrtc-srtp has no MKI and no SDES session
//! options, so those are not checked here.
//!
//! Only interoperability is tested, not webrtc-srtp's own quirks: it returns E=0 SRTCP
//! without checking its tag, and its replay window works on the 16-bit sequence number.

use srtp_core::{Error, MasterKey, Policy, Profile, Session};
use srtp_tests::{
    check_bit_flips, core_protect_rtcp, core_protect_rtp, core_unprotect_rtcp, core_unprotect_rtp,
    judge, key_material, rtcp_packet, rtp_packet, verdict, Lcg, Reorder, RtpShape, RtpStreams,
};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// The peer's name in assertion messages.
const PEER: &str = "webrtc-srtp";

fn webrtc_profile(p: Profile) -> ProtectionProfile {
    match p {
        Profile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        Profile::Aes256CmHmacSha1_80 => ProtectionProfile::Aes256CmHmacSha1_80,
        Profile::Aes256CmHmacSha1_32 => ProtectionProfile::Aes256CmHmacSha1_32,
        Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        Profile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        other => panic!("webrtc-srtp has no {other}"),
    }
}

/// Both implementations, each with a sender and a receiver on the same key.
struct Peers {
    profile: Profile,
    core_tx: Session,
    core_rx: Session,
    web_tx: Context,
    web_rx: Context,
}

fn peers(profile: Profile, encrypt_rtcp: bool, replay_window: Option<usize>) -> Peers {
    let material = key_material(profile, 31);
    let (key, salt) = material.split_at(profile.master_key_len());
    let mut policy = Policy::new(profile, MasterKey::new(key, salt).unwrap());
    policy.encrypt_rtcp = encrypt_rtcp;
    let web = |replay: Option<usize>| {
        Context::new(
            key,
            salt,
            webrtc_profile(profile),
            replay.map(srtp_replay_protection),
            replay.map(srtcp_replay_protection),
        )
        .unwrap()
    };
    Peers {
        profile,
        core_tx: Session::new(&policy).unwrap(),
        core_rx: Session::new(&policy).unwrap(),
        web_tx: web(None),
        web_rx: web(replay_window),
    }
}

fn web_unprotect_rtp(c: &mut Context, packet: &[u8]) -> Result<Vec<u8>, webrtc_srtp::Error> {
    c.decrypt_rtp(packet).map(|b| b.to_vec())
}

fn web_unprotect_rtcp(c: &mut Context, packet: &[u8]) -> Result<Vec<u8>, webrtc_srtp::Error> {
    c.decrypt_rtcp(packet).map(|b| b.to_vec())
}

/// `count` RTP packets on two SSRCs whose sequence numbers cross 65535, from both senders,
/// each delivered to the other implementation's receiver (sometimes two swapped).
fn exchange_rtp(p: &mut Peers, seed: u64, count: usize) {
    let mut streams = RtpStreams::new(seed);
    let mut reorder = Reorder::default();
    for i in 0..count {
        let plain = streams.next_packet();
        let core = core_protect_rtp(&mut p.core_tx, &plain);
        let web = p
            .web_tx
            .encrypt_rtp(&plain)
            .unwrap_or_else(|e| panic!("{} webrtc-srtp encrypt_rtp #{i}: {e}", p.profile))
            .to_vec();
        let sent = (i, plain, core, web);
        for (j, plain, core, web) in reorder.deliver(&mut streams.rng, sent, i + 1 < count) {
            let web_got = web_unprotect_rtp(&mut p.web_rx, &core);
            let core_got = core_unprotect_rtp(&mut p.core_rx, &web);
            judge(
                PEER, "SRTP", p.profile, j, &plain, &core, &web, web_got, core_got,
            );
        }
    }
    assert_eq!(
        p.core_rx.receive_roc(streams.ssrcs[0]).map(|(roc, _)| roc),
        Some(1)
    );
}

/// `count` compound RTCP packets with E=1 on two SSRCs, both ways.
fn exchange_rtcp(p: &mut Peers, seed: u64, count: usize) {
    let mut rng = Lcg::new(seed);
    let ssrcs = [0x0bad_cafe_u32, rng.next_u32()];
    // webrtc-srtp, like libsrtp2, numbers its first SRTCP packet 1; srtp-core starts at 0 as
    // RFC 3711 §3.4 says. Start srtp-core at 1 so the bytes can be compared.
    for ssrc in ssrcs {
        p.core_tx.set_send_state(ssrc, 0, 0, 1);
    }
    for i in 0..count {
        let ssrc = ssrcs[rng.below(2)];
        let plain = rtcp_packet(&mut rng, ssrc);
        let core = core_protect_rtcp(&mut p.core_tx, &plain);
        let web = p
            .web_tx
            .encrypt_rtcp(&plain)
            .unwrap_or_else(|e| panic!("{} webrtc-srtp encrypt_rtcp #{i}: {e}", p.profile))
            .to_vec();
        let web_got = web_unprotect_rtcp(&mut p.web_rx, &core);
        let core_got = core_unprotect_rtcp(&mut p.core_rx, &web);
        judge(
            PEER, "SRTCP", p.profile, i, &plain, &core, &web, web_got, core_got,
        );
    }
}

fn check_srtp(profile: Profile) {
    exchange_rtp(&mut peers(profile, true, None), 41, 240);
}

fn check_srtcp(profile: Profile) {
    exchange_rtcp(&mut peers(profile, true, None), 42, 60);
}

/// srtp-core's E=0 SRTCP (UNENCRYPTED_SRTCP) is read by webrtc-srtp as the same RTCP packet.
fn check_srtcp_unencrypted(profile: Profile) {
    let mut p = peers(profile, false, None);
    let mut rng = Lcg::new(43);
    for i in 0..30 {
        let plain = rtcp_packet(&mut rng, 0x5555);
        let core = core_protect_rtcp(&mut p.core_tx, &plain);
        let at = core.len() - profile.rtcp_tag_len() - 4;
        assert_eq!(core[at] & 0x80, 0, "{profile} #{i}: E flag");
        let got = web_unprotect_rtcp(&mut p.web_rx, &core);
        assert_eq!(verdict(&got, &plain), "ok", "{profile} SRTCP E=0 #{i}");
    }
}

/// A replayed packet is refused by both (webrtc-srtp with its replay protection on; no
/// rollover here, as its window works on the 16-bit sequence number).
fn check_replay(profile: Profile) {
    let mut p = peers(profile, true, Some(128));
    let mut rng = Lcg::new(44);
    let mut last = None;
    for seq in 1000..1010u16 {
        let shape = RtpShape::random(&mut rng);
        let plain = rtp_packet(&mut rng, 0x66, seq, 0, &shape);
        let core = core_protect_rtp(&mut p.core_tx, &plain);
        let web = p.web_tx.encrypt_rtp(&plain).unwrap().to_vec();
        web_unprotect_rtp(&mut p.web_rx, &core).unwrap();
        core_unprotect_rtp(&mut p.core_rx, &web).unwrap();
        last = Some((core, web));
    }
    let (core, web) = last.unwrap();
    assert!(
        web_unprotect_rtp(&mut p.web_rx, &core).is_err(),
        "{profile}: webrtc-srtp accepted a replayed SRTP packet"
    );
    assert_eq!(
        core_unprotect_rtp(&mut p.core_rx, &web),
        Err(Error::Replayed)
    );

    p.core_tx.set_send_state(0x67, 0, 0, 1);
    let plain = rtcp_packet(&mut rng, 0x67);
    let core = core_protect_rtcp(&mut p.core_tx, &plain);
    let web = p.web_tx.encrypt_rtcp(&plain).unwrap().to_vec();
    web_unprotect_rtcp(&mut p.web_rx, &core).unwrap();
    core_unprotect_rtcp(&mut p.core_rx, &web).unwrap();
    assert!(
        web_unprotect_rtcp(&mut p.web_rx, &core).is_err(),
        "{profile}: webrtc-srtp accepted a replayed SRTCP packet"
    );
    assert_eq!(
        core_unprotect_rtcp(&mut p.core_rx, &web),
        Err(Error::Replayed)
    );
}

/// A packet with a flipped bit in its header, payload or tag is refused by both.
fn check_tampering(profile: Profile) {
    let mut p = peers(profile, true, None);
    let mut rng = Lcg::new(45);
    let shape = RtpShape {
        csrcs: 1,
        extension: None,
        payload: 40,
    };
    let plain = rtp_packet(&mut rng, 0x99, 500, 0, &shape);
    let good = core_protect_rtp(&mut p.core_tx, &plain);
    assert_eq!(
        good,
        p.web_tx.encrypt_rtp(&plain).unwrap().to_vec(),
        "{profile}: bytes"
    );
    let what = format!("{profile}: ");
    let flips = [3, 13, 20, good.len() - 12, good.len() - 1];
    let web = |b: &[u8]| web_unprotect_rtp(&mut p.web_rx, b);
    let core = |b: &[u8]| core_unprotect_rtp(&mut p.core_rx, b);
    check_bit_flips(PEER, &what, &good, &plain, &flips, web, core);

    // SRTCP with E=1 (webrtc-srtp does not check E=0 tags, a quirk not tested here).
    let plain = rtcp_packet(&mut rng, 0x99);
    let good = p.web_tx.encrypt_rtcp(&plain).unwrap().to_vec();
    p.core_tx.set_send_state(0x99, 0, 0, 1);
    let good_core = core_protect_rtcp(&mut p.core_tx, &plain);
    assert_eq!(good, good_core, "{profile}: SRTCP bytes");
    let what = format!("{profile}: SRTCP ");
    let flips = [1, 9, good.len() - 12, good.len() - 1];
    let web = |b: &[u8]| web_unprotect_rtcp(&mut p.web_rx, b);
    let core = |b: &[u8]| core_unprotect_rtcp(&mut p.core_rx, b);
    check_bit_flips(PEER, &what, &good, &plain, &flips, web, core);
}

macro_rules! every_profile {
    ($($name:ident => $profile:expr,)*) => {$(
        mod $name {
            use super::*;
            const P: Profile = $profile;

            #[test]
            fn srtp_both_ways_byte_identical() {
                check_srtp(P);
            }

            #[test]
            fn srtcp_encrypted_both_ways_byte_identical() {
                check_srtcp(P);
            }

            #[test]
            fn replayed_srtp_and_srtcp_rejected_by_both() {
                check_replay(P);
            }

            #[test]
            fn tampered_srtp_and_srtcp_rejected_by_both() {
                check_tampering(P);
            }
        }
    )*};
}

every_profile! {
    aes_cm_128_hmac_sha1_80 => Profile::Aes128CmHmacSha1_80,
    aes_cm_128_hmac_sha1_32 => Profile::Aes128CmHmacSha1_32,
    aes_256_cm_hmac_sha1_80 => Profile::Aes256CmHmacSha1_80,
    aes_256_cm_hmac_sha1_32 => Profile::Aes256CmHmacSha1_32,
    aead_aes_128_gcm => Profile::AeadAes128Gcm,
    aead_aes_256_gcm => Profile::AeadAes256Gcm,
}

// webrtc-srtp's AES-GCM SRTCP always authenticates the E flag as set, so it has no E=0 mode
// for GCM; its AES-CM reads E=0 packets.
#[test]
fn srtcp_unencrypted_e0_from_srtp_core_read_by_webrtc_srtp() {
    for p in [
        Profile::Aes128CmHmacSha1_80,
        Profile::Aes128CmHmacSha1_32,
        Profile::Aes256CmHmacSha1_80,
    ] {
        check_srtcp_unencrypted(p);
    }
}
