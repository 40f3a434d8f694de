//! Behaviour of sessions through the public API: round trips for every profile and option,
//! rollover, replay, recovery, MKI, lifetimes, stream limits, and hostile input.

use proptest::prelude::*;
use srtp_core::{
    BatchPacket, Error, MasterKey, Mki, Policy, PolicyError, Profile, Session, MAX_TRAILER_LEN,
};

const SSRC: u32 = 0xcafe_babe;

fn key(profile: Profile, fill: u8) -> MasterKey {
    let material: Vec<u8> = (0..profile.key_material_len() as u8)
        .map(|i| i.wrapping_mul(7) ^ fill)
        .collect();
    MasterKey::from_key_material(profile, &material).unwrap()
}

fn pair(policy: &Policy) -> (Session, Session) {
    (Session::new(policy).unwrap(), Session::new(policy).unwrap())
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn rtcp(ssrc: u32, extra: usize) -> Vec<u8> {
    let words = 1 + extra / 4;
    let mut p = vec![0x80, 201, 0, words as u8];
    p.extend(ssrc.to_be_bytes());
    p.extend((0..extra / 4 * 4).map(|i| i as u8));
    p
}

fn protect(s: &mut Session, packet: &[u8]) -> Vec<u8> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + MAX_TRAILER_LEN, 0);
    let n = s.protect_rtp(&mut buf, packet.len()).unwrap();
    buf.truncate(n);
    buf
}

fn protect_rtcp(s: &mut Session, packet: &[u8]) -> Vec<u8> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + MAX_TRAILER_LEN, 0);
    let n = s.protect_rtcp(&mut buf, packet.len()).unwrap();
    buf.truncate(n);
    buf
}

/// Each packet copied into a buffer with room for any trailer.
fn with_room(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .map(|p| {
            let mut b = p.clone();
            b.resize(p.len() + MAX_TRAILER_LEN, 0);
            b
        })
        .collect()
}

/// A batch over `bufs`, packet `i` the first `lens[i]` bytes of buffer `i`.
fn batch_of(bufs: &mut [Vec<u8>], lens: impl Iterator<Item = usize>) -> Vec<BatchPacket<'_>> {
    bufs.iter_mut()
        .zip(lens)
        .map(|(b, n)| BatchPacket::new(b, n))
        .collect()
}

fn unprotect(s: &mut Session, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    let before = buf.clone();
    match s.unprotect_rtp(&mut buf) {
        Ok(p) => Ok(p.to_vec()),
        Err(e) => {
            assert_eq!(buf, before, "a failed unprotect must not touch the buffer");
            Err(e)
        }
    }
}

fn unprotect_rtcp(s: &mut Session, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    let before = buf.clone();
    match s.unprotect_rtcp(&mut buf) {
        Ok(p) => Ok(p.to_vec()),
        Err(e) => {
            assert_eq!(buf, before, "a failed unprotect must not touch the buffer");
            Err(e)
        }
    }
}

/// Every profile with every combination of the session options.
fn all_policies() -> Vec<Policy> {
    let mut out = Vec::new();
    for profile in Profile::ALL {
        for opts in 0..8u8 {
            let mut p = Policy::new(profile, key(profile, opts));
            p.encrypt_rtp = opts & 1 == 0;
            p.encrypt_rtcp = opts & 2 == 0;
            p.authenticate_rtp = opts & 4 == 0;
            if profile.is_aead() && !p.authenticate_rtp {
                assert_eq!(
                    Session::new(&p).unwrap_err(),
                    PolicyError::UnauthenticatedAead
                );
                continue;
            }
            if profile.is_aead() && !p.encrypt_rtp {
                assert_eq!(Session::new(&p).unwrap_err(), PolicyError::UnencryptedAead);
                continue;
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn round_trips_every_profile_and_option() {
    for policy in all_policies() {
        let (mut tx, mut rx) = pair(&policy);
        for (i, len) in [0usize, 1, 15, 16, 17, 160, 1188].into_iter().enumerate() {
            let plain = rtp(1000 + i as u16, SSRC, len);
            let sent = protect(&mut tx, &plain);
            assert_eq!(sent.len(), plain.len() + tx.rtp_trailer_len());
            let encrypted = policy.encrypt_rtp
                && !matches!(
                    policy.profile,
                    Profile::NullHmacSha1_80 | Profile::NullHmacSha1_32
                );
            if len >= 16 {
                assert_eq!(
                    sent[12..plain.len()] != plain[12..],
                    encrypted,
                    "{policy:?}"
                );
            }
            assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain, "{policy:?}");

            let plain = rtcp(SSRC, len);
            let sent = protect_rtcp(&mut tx, &plain);
            assert_eq!(unprotect_rtcp(&mut rx, &sent).unwrap(), plain, "{policy:?}");
        }
    }
}

#[test]
fn unprotect_rejects_flipped_bits_anywhere() {
    for policy in all_policies().into_iter().filter(|p| p.authenticate_rtp) {
        let (mut tx, mut rx) = pair(&policy);
        let sent = protect(&mut tx, &rtp(7, SSRC, 40));
        for byte in 0..sent.len() {
            let mut forged = sent.clone();
            forged[byte] ^= 0x10;
            assert!(
                unprotect(&mut rx, &forged).is_err(),
                "byte {byte} {policy:?}"
            );
        }
        // The session still accepts the genuine packet afterwards.
        assert!(unprotect(&mut rx, &sent).is_ok());
        assert_eq!(rx.receive_roc(SSRC), Some((0, 7)));
    }
}

#[test]
fn srtcp_with_e_flag_clear_is_still_authenticated() {
    for profile in Profile::ALL {
        let mut policy = Policy::new(profile, key(profile, 1));
        policy.encrypt_rtcp = false;
        let (mut tx, mut rx) = pair(&policy);
        let plain = rtcp(SSRC, 24);
        let sent = protect_rtcp(&mut tx, &plain);
        assert_eq!(
            &sent[..plain.len()],
            &plain[..],
            "E=0 leaves the payload clear"
        );
        for byte in 0..sent.len() {
            let mut forged = sent.clone();
            forged[byte] ^= 1;
            assert!(
                unprotect_rtcp(&mut rx, &forged).is_err(),
                "{profile} byte {byte}"
            );
        }
        assert_eq!(unprotect_rtcp(&mut rx, &sent).unwrap(), plain);
    }
}

#[test]
fn sequence_rollover_carries_the_roc() {
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::AeadAes256Gcm] {
        let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 2)));
        for i in 0..200u32 {
            let seq = (65_436 + i) as u16; // crosses 65535 → 0
            let plain = rtp(seq, SSRC, 20);
            assert_eq!(
                unprotect(&mut rx, &protect(&mut tx, &plain)).unwrap(),
                plain
            );
        }
        assert_eq!(tx.send_roc(SSRC), Some((1, 99)));
        assert_eq!(rx.receive_roc(SSRC), Some((1, 99)));
    }
}

#[test]
fn replay_window_accepts_reordering_and_rejects_duplicates() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 3)));
    let packets: Vec<Vec<u8>> = (0..300)
        .map(|s| protect(&mut tx, &rtp(s, SSRC, 8)))
        .collect();
    unprotect(&mut rx, &packets[200]).unwrap();
    unprotect(&mut rx, &packets[150]).unwrap(); // late but inside the window
    assert_eq!(unprotect(&mut rx, &packets[150]), Err(Error::Replayed));
    assert_eq!(unprotect(&mut rx, &packets[200]), Err(Error::Replayed));
    assert_eq!(unprotect(&mut rx, &packets[72]), Err(Error::TooOld));
    unprotect(&mut rx, &packets[73]).unwrap();
    unprotect(&mut rx, &packets[299]).unwrap();
    assert_eq!(unprotect(&mut rx, &packets[171]), Err(Error::TooOld));

    let rtcp_packets: Vec<Vec<u8>> = (0..3)
        .map(|_| protect_rtcp(&mut tx, &rtcp(SSRC, 0)))
        .collect();
    unprotect_rtcp(&mut rx, &rtcp_packets[1]).unwrap();
    unprotect_rtcp(&mut rx, &rtcp_packets[0]).unwrap();
    assert_eq!(
        unprotect_rtcp(&mut rx, &rtcp_packets[1]),
        Err(Error::Replayed)
    );
    unprotect_rtcp(&mut rx, &rtcp_packets[2]).unwrap();
}

#[test]
fn larger_replay_window_is_honoured() {
    let profile = Profile::AeadAes128Gcm;
    let mut policy = Policy::new(profile, key(profile, 4));
    policy.replay_window = 4096;
    let (mut tx, mut rx) = pair(&policy);
    let packets: Vec<Vec<u8>> = (0..5000)
        .map(|s| protect(&mut tx, &rtp(s, SSRC, 0)))
        .collect();
    unprotect(&mut rx, &packets[4999]).unwrap();
    unprotect(&mut rx, &packets[4999 - 4095]).unwrap();
    assert_eq!(
        unprotect(&mut rx, &packets[4999 - 4096]),
        Err(Error::TooOld)
    );
}

/// The initial-ROC desync (libsrtp #729): the sender started just below 65536, the receiver's
/// first packet is from after the wrap. Recovery tries ROC+1 and accepts it.
#[test]
fn recovers_a_stream_whose_first_packet_follows_a_rollover() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 5)));
    for seq in 65_530..=65_535 {
        protect(&mut tx, &rtp(seq, SSRC, 10)); // all lost
    }
    for seq in 0..5 {
        let plain = rtp(seq, SSRC, 10);
        assert_eq!(
            unprotect(&mut rx, &protect(&mut tx, &plain)).unwrap(),
            plain
        );
    }
    assert_eq!(rx.receive_roc(SSRC), Some((1, 4)));

    // Without recovery the same stream is lost for good.
    let mut policy = Policy::new(profile, key(profile, 5));
    policy.roc_recovery = false;
    let (mut tx, mut rx) = pair(&policy);
    tx.set_send_state(SSRC, 1, 0, 0);
    let sent = protect(&mut tx, &rtp(1, SSRC, 10));
    assert_eq!(unprotect(&mut rx, &sent), Err(Error::AuthenticationFailed));
}

/// An established stream whose sender moved on a whole rollover cycle (the receiver missed
/// 65 536 packets): the first try, the estimated counter, fails its tag; the next, ROC+1,
/// authenticates and is followed, with and without an MKI. A forgery in the new cycle and a
/// replay of the packet that moved it are still refused, and leave the stream as it was.
#[test]
fn an_established_stream_follows_a_missed_rollover() {
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::Aes128CmHmacSha1_32] {
        for mki in [None, Some(Mki::new(7, 4).unwrap())] {
            let mut k = key(profile, 12);
            if let Some(m) = mki {
                k = k.with_mki(m);
            }
            let (mut tx, mut rx) = pair(&Policy::new(profile, k));
            for seq in 100..110 {
                let plain = rtp(seq, SSRC, 40);
                assert_eq!(unprotect(&mut rx, &protect(&mut tx, &plain)), Ok(plain));
            }
            tx.set_send_state(SSRC, 1, 110, 0);
            let plain = rtp(111, SSRC, 40);
            let sent = protect(&mut tx, &plain);
            let mut forged = sent.clone();
            forged[20] ^= 1;
            assert_eq!(
                unprotect(&mut rx, &forged),
                Err(Error::AuthenticationFailed)
            );
            assert_eq!(rx.receive_roc(SSRC), Some((0, 109)), "{profile} {mki:?}");
            assert_eq!(unprotect(&mut rx, &sent), Ok(plain), "{profile} {mki:?}");
            assert_eq!(rx.receive_roc(SSRC), Some((1, 111)));
            assert_eq!(unprotect(&mut rx, &sent), Err(Error::Replayed));
            let next = rtp(112, SSRC, 40);
            assert_eq!(unprotect(&mut rx, &protect(&mut tx, &next)), Ok(next));
        }
    }
}

/// A young stream whose rollover counter is ahead of the sender's (ROC-1) is followed only
/// within the replay window: a packet that authenticates under an older cycle but lies behind
/// the window is an old packet (a replay), and is refused without moving the window back.
#[test]
fn roc_recovery_never_accepts_packets_behind_the_window() {
    let profile = Profile::AeadAes128Gcm;
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 6)));
    tx.set_send_state(SSRC, 3, 100, 0);
    let plain = rtp(101, SSRC, 10);
    // Receiver has no state: estimate 0, recovery tries 1: neither is 3.
    assert_eq!(
        unprotect(&mut rx, &protect(&mut tx, &plain)),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(rx.receive_streams(), 0);

    // A capture from ROC 0, then the live stream at ROC 1.
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 6)));
    let old = protect(&mut tx, &rtp(0x200, SSRC, 10));
    tx.set_send_state(SSRC, 1, 0x100, 0);
    let plain = rtp(0x101, SSRC, 10);
    assert_eq!(
        unprotect(&mut rx, &protect(&mut tx, &plain)).unwrap(),
        plain
    );
    assert_eq!(rx.receive_roc(SSRC), Some((1, 0x101)));
    // The old packet authenticates under ROC 0, but it lies a cycle behind: refused.
    assert_eq!(unprotect(&mut rx, &old), Err(Error::AuthenticationFailed));
    assert_eq!(
        rx.receive_roc(SSRC),
        Some((1, 0x101)),
        "the window did not move back"
    );
    let next = rtp(0x102, SSRC, 10);
    assert_eq!(unprotect(&mut rx, &protect(&mut tx, &next)).unwrap(), next);
}

/// Protecting one index twice would reuse keystream: refused unless the policy says otherwise.
#[test]
fn protect_refuses_an_index_twice() {
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::AeadAes128Gcm] {
        let (mut tx, _) = pair(&Policy::new(profile, key(profile, 8)));
        protect(&mut tx, &rtp(10, SSRC, 10));
        protect(&mut tx, &rtp(9, SSRC, 10)); // late but new: fine
        let mut buf = rtp(10, SSRC, 20);
        buf.resize(32 + MAX_TRAILER_LEN, 0);
        assert_eq!(tx.protect_rtp(&mut buf, 32), Err(Error::Replayed));
        let mut policy = Policy::new(profile, key(profile, 8));
        policy.danger_allow_repeat_tx = true;
        let (mut tx, _) = pair(&policy);
        let a = protect(&mut tx, &rtp(10, SSRC, 10));
        assert_eq!(
            protect(&mut tx, &rtp(10, SSRC, 10)),
            a,
            "the same packet again"
        );
    }
}

/// Sequence continuity (for forwarders): a restart behind (at least the window) or far
/// ahead (4096 or more), once the next number follows it, re-bases the stream so it goes on
/// numbered from the highest sent and a plain receiver accepts every packet; a lone packet
/// that far off starts nothing; within those bounds packets keep their numbers; duplicates
/// are still refused; without the option a restart behind is refused.
#[test]
fn sequence_continuity_numbers_on_across_restarts() {
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::AeadAes128Gcm] {
        let plain_policy = Policy::new(profile, key(profile, 9));
        let (mut strict, _) = pair(&plain_policy);
        protect(&mut strict, &rtp(5000, SSRC, 10));
        let mut buf = rtp(3, SSRC, 10);
        buf.resize(22 + MAX_TRAILER_LEN, 0);
        assert_eq!(strict.protect_rtp(&mut buf, 22), Err(Error::TooOld));

        let mut policy = plain_policy.clone();
        policy.sequence_continuity = true;
        let mut tx = Session::new(&policy).unwrap();
        let mut rx = Session::new(&plain_policy).unwrap();
        let mut sent = |tx: &mut Session, seq: u16| -> Result<u16, Error> {
            let p = rtp(seq, SSRC, 10);
            let mut buf = p.clone();
            buf.resize(p.len() + MAX_TRAILER_LEN, 0);
            let n = tx.protect_rtp(&mut buf, p.len())?;
            let got = unprotect(&mut rx, &buf[..n]).expect("the receiver accepts it");
            assert_eq!(got[4..], p[4..], "only the sequence number changes");
            Ok(u16::from_be_bytes([got[2], got[3]]))
        };
        // The first number is kept; so is the spacing, gaps and late packets included.
        assert_eq!(sent(&mut tx, 65_530).unwrap(), 65_530);
        assert_eq!(sent(&mut tx, 65_533).unwrap(), 65_533);
        assert_eq!(sent(&mut tx, 65_531).unwrap(), 65_531);
        assert_eq!(sent(&mut tx, 2).unwrap(), 2, "a rollover is not a restart");
        assert_eq!(sent(&mut tx, 3_002).unwrap(), 3_002, "loss upstream");
        // A lone packet the window (128) behind: refused, starts nothing.
        assert_eq!(sent(&mut tx, 3_002 - 128), Err(Error::TooOld));
        assert_eq!(sent(&mut tx, 3_003).unwrap(), 3_003);
        // Within the window: late, kept.
        assert_eq!(sent(&mut tx, 3_003 - 127).unwrap(), 3_003 - 127);
        // A restart behind: its first packet refused, then on from the highest sent.
        assert_eq!(sent(&mut tx, 60_000), Err(Error::TooOld));
        // A duplicate of the old run in between is refused and leaves the restart pending.
        assert_eq!(sent(&mut tx, 3_003), Err(Error::Replayed));
        assert_eq!(sent(&mut tx, 60_001).unwrap(), 3_004);
        assert_eq!(sent(&mut tx, 60_002).unwrap(), 3_005);
        assert_eq!(sent(&mut tx, 60_002), Err(Error::Replayed), "a duplicate");
        // A straggler from before the restart lands far ahead now: refused, starts nothing.
        assert_eq!(sent(&mut tx, 2_990), Err(Error::TooOld));
        assert_eq!(sent(&mut tx, 60_003).unwrap(), 3_006);
        // Another restart.
        assert_eq!(sent(&mut tx, 40_000), Err(Error::TooOld));
        assert_eq!(sent(&mut tx, 40_001).unwrap(), 3_007);
        assert_eq!(sent(&mut tx, 40_004).unwrap(), 3_010, "a gap kept");
        assert_eq!(tx.send_roc(SSRC), Some((1, 3_010)));
        // What a forwarder moves the receiver's RTCP back by.
        assert_eq!(tx.sequence_offset(SSRC), 3_010u16.wrapping_sub(40_004));
        assert_eq!(tx.sequence_offset(SSRC + 1), 0, "a stream never sent");
        assert_eq!(
            strict.sequence_offset(SSRC),
            0,
            "without sequence continuity"
        );
    }
}

/// A session's sending SSRCs are never evicted: a forgotten sender would restart its index
/// under the same key.
#[test]
fn send_streams_are_capped_not_evicted() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let mut policy = Policy::new(profile, key(profile, 7));
    policy.max_streams = 3;
    let (mut tx, _) = pair(&policy);
    for ssrc in 1..=3 {
        protect(&mut tx, &rtp(1, ssrc, 10));
    }
    let mut buf = rtp(1, 4, 10);
    buf.resize(22 + MAX_TRAILER_LEN, 0);
    assert_eq!(tx.protect_rtp(&mut buf, 22), Err(Error::StreamLimit));
    assert_eq!(tx.send_roc(1), Some((0, 1)), "SSRC 1 keeps its state");
}

#[test]
fn mki_selects_the_key_and_the_sender_can_switch() {
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::AeadAes128Gcm] {
        for mki_len in [1, 4] {
            let k1 = key(profile, 10).with_mki(Mki::new(1, mki_len).unwrap());
            let k2 = key(profile, 11).with_mki(Mki::new(2, mki_len).unwrap());
            let policy = Policy::with_keys(profile, vec![k1, k2]);
            let (mut tx, mut rx) = pair(&policy);
            let a = protect(&mut tx, &rtp(1, SSRC, 30));
            assert_eq!(a.len(), 12 + 30 + mki_len + profile.rtp_tag_len());
            tx.select_sender_key(Mki::new(2, mki_len).unwrap()).unwrap();
            let b = protect(&mut tx, &rtp(2, SSRC, 30));
            let c = protect_rtcp(&mut tx, &rtcp(SSRC, 8));
            assert_eq!(unprotect(&mut rx, &b).unwrap(), rtp(2, SSRC, 30));
            assert_eq!(unprotect(&mut rx, &a).unwrap(), rtp(1, SSRC, 30));
            assert_eq!(unprotect_rtcp(&mut rx, &c).unwrap(), rtcp(SSRC, 8));

            // A receiver that knows only key 1 refuses packets naming key 2.
            let only1 = Policy::new(
                profile,
                key(profile, 10).with_mki(Mki::new(1, mki_len).unwrap()),
            );
            let mut rx1 = Session::new(&only1).unwrap();
            assert_eq!(unprotect(&mut rx1, &b), Err(Error::UnknownMki));
            assert_eq!(unprotect(&mut rx1, &a).unwrap(), rtp(1, SSRC, 30));
            assert_eq!(
                tx.select_sender_key(Mki::new(9, mki_len).unwrap()),
                Err(PolicyError::NoSuchKey)
            );
        }
    }
}

/// The Microsoft form: `inline:<key>|2^31|1:1` — a 1-byte MKI of value 1.
#[test]
fn microsoft_one_byte_mki() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let k = key(profile, 12)
        .with_mki(Mki::new(1, 1).unwrap())
        .with_lifetime(1 << 31);
    let (mut tx, mut rx) = pair(&Policy::new(profile, k));
    let sent = protect(&mut tx, &rtp(9, SSRC, 160));
    assert_eq!(sent.len(), 172 + 1 + 10);
    assert_eq!(sent[172], 1, "the MKI sits between payload and tag");
    assert_eq!(unprotect(&mut rx, &sent).unwrap(), rtp(9, SSRC, 160));
}

#[test]
fn key_lifetime_is_enforced_with_warning_first() {
    let profile = Profile::Aes128CmHmacSha1_32;
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 13).with_lifetime(16)));
    for seq in 0..16 {
        assert_eq!(tx.key_usage().needs_rekey(), seq >= 14, "seq {seq}");
        let sent = protect(&mut tx, &rtp(seq, SSRC, 4));
        unprotect(&mut rx, &sent).unwrap();
    }
    let mut buf = rtp(16, SSRC, 4);
    buf.resize(64, 0);
    assert_eq!(tx.protect_rtp(&mut buf, 16), Err(Error::KeyExhausted));
    assert_eq!(tx.key_usage().rtp_packets, 16);

    // The same key given again does not start its lifetime over.
    tx.rekey(&[key(profile, 13).with_lifetime(16)]).unwrap();
    assert_eq!(tx.key_usage().rtp_packets, 16);
    assert_eq!(tx.protect_rtp(&mut buf, 16), Err(Error::KeyExhausted));

    // Re-keying keeps the stream's index running: no restart, no replay rejections.
    let fresh = key(profile, 14);
    tx.rekey(std::slice::from_ref(&fresh)).unwrap();
    rx.rekey(&[fresh]).unwrap();
    let sent = protect(&mut tx, &rtp(16, SSRC, 4));
    assert_eq!(unprotect(&mut rx, &sent).unwrap(), rtp(16, SSRC, 4));
    assert_eq!(tx.send_roc(SSRC), Some((0, 16)));
}

/// A peer that re-keys by starting afresh under the new key (libsrtp-based stacks re-create
/// their context: SRTCP index and rollover counter from 0, sequence numbers running on) is
/// received without a replay rejection; one that carries its counters on is too; the old key's
/// packets no longer authenticate; and the same key given again keeps the replay windows.
#[test]
fn rekey_to_new_keys_accepts_a_peer_that_starts_afresh() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let old = Policy::new(profile, key(profile, 40));
    // Sequence numbers 65 000 to 65 535 then 0 to 20: rollover counter 1.
    let seqs = || (65_000..=65_535u16).chain(0..=20);
    let (mut tx, mut rx) = pair(&old);
    let mut kept = Vec::new();
    for seq in seqs() {
        let sent = protect(&mut tx, &rtp(seq, SSRC, 20));
        unprotect(&mut rx, &sent).unwrap();
        kept.push(sent);
    }
    for _ in 0..50 {
        let sent = protect_rtcp(&mut tx, &rtcp(SSRC, 8));
        unprotect_rtcp(&mut rx, &sent).unwrap();
    }
    let old_rtcp = protect_rtcp(&mut tx, &rtcp(SSRC, 8));
    assert_eq!(rx.receive_roc(SSRC), Some((1, 20)));

    // The same key again (a re-INVITE for hold): the windows stay.
    rx.rekey(&[key(profile, 40)]).unwrap();
    assert_eq!(unprotect(&mut rx, &kept[530]), Err(Error::Replayed));
    assert_eq!(rx.receive_roc(SSRC), Some((1, 20)));

    // A new key, and a sender that starts afresh under it: its rollover counter from 0, its
    // sequence numbers running on, its SRTCP index from 0.
    let fresh = Policy::new(profile, key(profile, 41));
    rx.rekey(&[key(profile, 41)]).unwrap();
    let mut restarted = Session::new(&fresh).unwrap();
    for seq in 21..100u16 {
        let sent = protect(&mut restarted, &rtp(seq, SSRC, 20));
        assert_eq!(
            unprotect(&mut rx, &sent).unwrap(),
            rtp(seq, SSRC, 20),
            "seq {seq}"
        );
    }
    assert_eq!(rx.receive_roc(SSRC), Some((0, 99)));
    for i in 0..5 {
        let sent = protect_rtcp(&mut restarted, &rtcp(SSRC, 8));
        assert!(unprotect_rtcp(&mut rx, &sent).is_ok(), "SRTCP {i}");
    }
    // The old key's packets fail now, and a packet under the new key is not accepted twice.
    for old in &kept {
        assert!(matches!(
            unprotect(&mut rx, old),
            Err(Error::AuthenticationFailed | Error::TooOld)
        ));
    }
    assert_eq!(
        unprotect_rtcp(&mut rx, &old_rtcp),
        Err(Error::AuthenticationFailed)
    );
    let again = protect(&mut restarted, &rtp(100, SSRC, 20));
    unprotect(&mut rx, &again).unwrap();
    assert_eq!(unprotect(&mut rx, &again), Err(Error::Replayed));

    // Back to the old key (a re-key undone, as after a refused re-INVITE): its receive state
    // comes back with it, so its old packets are still replays and its sender carries on.
    rx.rekey(&[key(profile, 40)]).unwrap();
    assert_eq!(rx.receive_roc(SSRC), Some((1, 20)));
    for old in &kept {
        assert!(matches!(
            unprotect(&mut rx, old),
            Err(Error::Replayed | Error::TooOld)
        ));
    }
    assert!(
        unprotect_rtcp(&mut rx, &old_rtcp).is_ok(),
        "not received before"
    );
    assert_eq!(
        unprotect_rtcp(&mut rx, &old_rtcp),
        Err(Error::Replayed),
        "SRTCP's window came back too"
    );
    let next = protect(&mut tx, &rtp(21, SSRC, 20));
    assert_eq!(unprotect(&mut rx, &next).unwrap(), rtp(21, SSRC, 20));
    // And forward again to the new key: its window, too.
    rx.rekey(&[key(profile, 41)]).unwrap();
    assert_eq!(unprotect(&mut rx, &again), Err(Error::Replayed));

    // A sender that carries its counters on across the re-key (as this crate's does).
    let rekeyed = || {
        let (mut tx, mut rx) = pair(&old);
        for seq in seqs() {
            let sent = protect(&mut tx, &rtp(seq, SSRC, 20));
            unprotect(&mut rx, &sent).unwrap();
        }
        tx.rekey(&[key(profile, 41)]).unwrap();
        rx.rekey(&[key(profile, 41)]).unwrap();
        (tx, rx)
    };
    let (mut tx, mut rx) = rekeyed();
    for seq in 21..30u16 {
        let sent = protect(&mut tx, &rtp(seq, SSRC, 20));
        assert_eq!(unprotect(&mut rx, &sent).unwrap(), rtp(seq, SSRC, 20));
    }
    assert_eq!(rx.receive_roc(SSRC), Some((1, 29)));

    // The batch path guesses from the same place.
    let (mut tx, mut rx) = rekeyed();
    let mut bufs: Vec<Vec<u8>> = (21..29u16)
        .map(|seq| {
            let mut b = protect(&mut tx, &rtp(seq, SSRC, 20));
            b.resize(b.len() + 16, 0);
            b
        })
        .collect();
    let lens: Vec<usize> = bufs.iter().map(|b| b.len() - 16).collect();
    let mut batch: Vec<BatchPacket<'_>> = bufs
        .iter_mut()
        .zip(&lens)
        .map(|(b, &l)| BatchPacket::new(b, l))
        .collect();
    rx.unprotect_rtp_batch(&mut batch);
    for (p, seq) in batch.iter().zip(21u16..) {
        assert!(p.result.is_ok(), "seq {seq}: {:?}", p.result);
        assert_eq!(p.len, 12 + 20);
    }
    assert_eq!(rx.receive_roc(SSRC), Some((1, 28)));
}

#[test]
fn forged_packets_from_random_ssrcs_create_no_state() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 15)));
    let mut x = 1u32;
    for _ in 0..10_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mut forged = rtp(x as u16, x, 40);
        forged.extend([0u8; 10]);
        assert_eq!(
            unprotect(&mut rx, &forged),
            Err(Error::AuthenticationFailed)
        );
        let mut forged = rtcp(x, 16);
        forged.extend([0x80, 0, 0, 1]);
        forged.extend([0u8; 10]);
        assert_eq!(
            unprotect_rtcp(&mut rx, &forged),
            Err(Error::AuthenticationFailed)
        );
    }
    assert_eq!(rx.receive_streams(), 0);
    let sent = protect(&mut tx, &rtp(1, 42, 40));
    unprotect(&mut rx, &sent).unwrap();
    assert_eq!(rx.receive_streams(), 1);
}

#[test]
fn many_ssrcs_under_one_key_up_to_the_cap() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let mut policy = Policy::new(profile, key(profile, 16));
    policy.max_streams = 100;
    let mut rx = Session::new(&policy).unwrap();
    policy.max_streams = 200;
    let mut tx = Session::new(&policy).unwrap();
    for round in 0..3u16 {
        for ssrc in 1000..1100u32 {
            let plain = rtp(round, ssrc, 20);
            assert_eq!(
                unprotect(&mut rx, &protect(&mut tx, &plain)).unwrap(),
                plain
            );
        }
    }
    assert_eq!(rx.receive_streams(), 100);
    // One more evicts the least recently used (SSRC 1000), which then starts afresh.
    let plain = rtp(0, 5000, 20);
    unprotect(&mut rx, &protect(&mut tx, &plain)).unwrap();
    assert_eq!(rx.receive_streams(), 100);
    assert!(rx.receive_roc(1000).is_none());
    assert!(rx.receive_roc(1001).is_some());
}

#[test]
fn key_derivation_rate_rederives_session_keys() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let mut with_kdr = Policy::new(profile, key(profile, 17));
    with_kdr.key_derivation_rate = Some(4); // new keys every 16 packets
    let without = Policy::new(profile, key(profile, 17));
    let (mut tx, mut rx) = pair(&with_kdr);
    let (mut plain_tx, _) = pair(&without);
    for seq in 0..100u16 {
        let plain = rtp(seq, SSRC, 32);
        let sent = protect(&mut tx, &plain);
        let reference = protect(&mut plain_tx, &plain);
        // r = index DIV 16 is zero for the first 16 packets: the same keys as without KDR.
        assert_eq!(sent == reference, seq < 16, "seq {seq}");
        assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain);
    }
    for _ in 0..40 {
        let plain = rtcp(SSRC, 12);
        let sent = protect_rtcp(&mut tx, &plain);
        assert_eq!(unprotect_rtcp(&mut rx, &sent).unwrap(), plain);
    }
}

#[test]
fn batch_results_match_single_packet_results() {
    let profile = Profile::AeadAes128Gcm;
    let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 18)));
    let (mut tx1, _) = pair(&Policy::new(profile, key(profile, 18)));
    let plains: Vec<Vec<u8>> = (0..8).map(|s| rtp(s, SSRC, 10 * s as usize)).collect();
    let mut bufs = with_room(&plains);
    let mut batch = batch_of(&mut bufs, plains.iter().map(Vec::len));
    tx.protect_rtp_batch(&mut batch);
    let lens: Vec<usize> = batch.iter().map(|p| p.len).collect();
    drop(batch);
    for (i, p) in plains.iter().enumerate() {
        assert_eq!(bufs[i][..lens[i]], protect(&mut tx1, p)[..]);
    }
    bufs[3][20] ^= 1; // one forgery in the batch
    let mut batch = batch_of(&mut bufs, lens.iter().copied());
    rx.unprotect_rtp_batch(&mut batch);
    for (i, p) in batch.iter().enumerate() {
        if i == 3 {
            assert_eq!(p.result, Err(Error::AuthenticationFailed));
        } else {
            assert_eq!(p.result, Ok(()));
            assert_eq!(&p.buf[..p.len], &plains[i][..]);
        }
    }
}

#[test]
fn protect_reports_missing_room_and_bad_lengths() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let (mut tx, _) = pair(&Policy::new(profile, key(profile, 19)));
    let mut buf = rtp(1, SSRC, 20);
    let len = buf.len();
    assert_eq!(
        tx.protect_rtp(&mut buf, len),
        Err(Error::NoRoom { needed: len + 10 })
    );
    assert_eq!(
        tx.protect_rtp(&mut buf, len + 1),
        Err(Error::LengthOutOfBounds)
    );
    assert_eq!(tx.send_streams(), 0, "a failed protect creates no state");
}

#[test]
fn policy_errors_are_precise() {
    let p = Profile::Aes128CmHmacSha1_80;
    let short = MasterKey::new(&[1; 16], &[2; 12]).unwrap();
    assert_eq!(
        Session::new(&Policy::new(p, short)).unwrap_err(),
        PolicyError::SaltLength {
            expected: 14,
            actual: 12
        }
    );
    let two = Policy::with_keys(p, vec![key(p, 1), key(p, 2)]);
    assert_eq!(
        Session::new(&two).unwrap_err(),
        PolicyError::InconsistentMki
    );
    let m = Mki::new(1, 2).unwrap();
    let dup = Policy::with_keys(p, vec![key(p, 1).with_mki(m), key(p, 2).with_mki(m)]);
    assert_eq!(Session::new(&dup).unwrap_err(), PolicyError::DuplicateMki);
    let mut w = Policy::new(p, key(p, 1));
    w.replay_window = 100;
    assert_eq!(
        Session::new(&w).unwrap_err(),
        PolicyError::ReplayWindow(100)
    );
    w.replay_window = 128;
    w.key_derivation_rate = Some(25);
    assert_eq!(
        Session::new(&w).unwrap_err(),
        PolicyError::KeyDerivationRate(25)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never panic and never create state.
    #[test]
    fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), profile_i in 0usize..10) {
        let profile = Profile::ALL[profile_i];
        let mut rx = Session::new(&Policy::new(profile, key(profile, 20))).unwrap();
        let mut a = data.clone();
        let _ = rx.unprotect_rtp(&mut a);
        let mut b = data.clone();
        let _ = rx.unprotect_rtcp(&mut b);
        prop_assert_eq!(rx.receive_streams(), 0);
        let mut c = data.clone();
        c.resize(data.len() + MAX_TRAILER_LEN, 0);
        let _ = rx.protect_rtp(&mut c, data.len());
        let _ = rx.protect_rtcp(&mut c, data.len());
    }

    /// Random traffic with loss and reordering inside the window always decrypts to the input.
    #[test]
    fn reordered_traffic_round_trips(start in any::<u16>(), swaps in proptest::collection::vec((0usize..64, 0usize..64), 0..32), profile_i in 0usize..10) {
        let profile = Profile::ALL[profile_i];
        let (mut tx, mut rx) = pair(&Policy::new(profile, key(profile, 21)));
        let mut sent: Vec<(Vec<u8>, Vec<u8>)> = (0..64u16)
            .map(|i| { let p = rtp(start.wrapping_add(i), SSRC, (i * 7 % 90) as usize); (protect(&mut tx, &p), p) })
            .collect();
        for (a, b) in swaps { sent.swap(a, b); }
        for (wire, plain) in sent {
            prop_assert_eq!(unprotect(&mut rx, &wire).unwrap(), plain);
        }
    }
}

/// `prefetch_rtp_keys` is a hint: a session that is asked to prefetch before every packet
/// sends and receives exactly what one that is not does, under every profile and option, and
/// with a second key (MKI) sending.
#[test]
fn prefetching_keys_changes_nothing() {
    for policy in all_policies() {
        let (mut tx, mut rx) = pair(&policy);
        let (mut tx_hinted, mut rx_hinted) = pair(&policy);
        for (i, len) in [0usize, 17, 160, 1188].into_iter().enumerate() {
            let plain = rtp(2000 + i as u16, SSRC, len);
            tx_hinted.prefetch_rtp_keys();
            let sent = protect(&mut tx_hinted, &plain);
            assert_eq!(sent, protect(&mut tx, &plain), "{policy:?}");
            rx_hinted.prefetch_rtp_keys();
            assert_eq!(unprotect(&mut rx_hinted, &sent), unprotect(&mut rx, &sent));
        }
    }
    let profile = Profile::Aes128CmHmacSha1_80;
    let keys = [1u8, 2].map(|n| key(profile, n).with_mki(Mki::new(u32::from(n), 1).unwrap()));
    let (mut tx, mut rx) = pair(&Policy::with_keys(profile, keys.to_vec()));
    tx.select_sender_key(Mki::new(2, 1).unwrap()).unwrap();
    tx.prefetch_rtp_keys();
    rx.prefetch_rtp_keys();
    let plain = rtp(7, SSRC, 160);
    let sent = protect(&mut tx, &plain);
    assert_eq!(sent[plain.len()], 2, "the second key sends");
    assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain);
}

/// An RTP packet with `csrcs` CSRCs and, if `ext` is given, an extension block with that
/// profile and `words` words of elements.
fn rtp_with_header(seq: u16, csrcs: u8, ext: Option<(u16, u16)>, payload_len: usize) -> Vec<u8> {
    let mut p = rtp(seq, SSRC, 0);
    p[0] |= csrcs;
    for c in 0..u32::from(csrcs) {
        p.extend((0x1000 + c).to_be_bytes());
    }
    if let Some((profile, words)) = ext {
        p[0] |= 0x10;
        p.extend(profile.to_be_bytes());
        p.extend(words.to_be_bytes());
        p.extend((0..4 * words).map(|i| 0x40 + i as u8));
    }
    p.extend((0..payload_len).map(|i| i as u8));
    p
}

fn cryptex_policy(profile: Profile) -> Policy {
    let mut p = Policy::new(profile, key(profile, 9));
    p.cryptex = true;
    p
}

/// Cryptex (RFC 9335) for every profile: CSRCs and extensions of both kinds encrypted (the
/// preamble readable, its profile marked), received back as they were sent; a packet with
/// CSRCs and no extension gains an empty block; a plain packet is unchanged by cryptex; and
/// a cryptex receiver still takes packets sent without it. A NULL-cipher sender, which
/// encrypts nothing, marks nothing.
#[test]
fn cryptex_round_trips_every_profile() {
    for profile in Profile::ALL {
        let (mut tx, mut rx) = pair(&cryptex_policy(profile));
        let encrypts = !matches!(profile, Profile::NullHmacSha1_80 | Profile::NullHmacSha1_32);
        let mut seq = 100;
        for (csrcs, ext, mark) in [
            (0, Some((0xBEDE, 2)), 0xC0DE),
            (0, Some((0x1000, 3)), 0xC2DE),
            (3, Some((0xBEDE, 1)), 0xC0DE),
            (15, Some((0x1000, 0)), 0xC2DE),
            (2, None, 0xC0DE),
        ] {
            seq += 1;
            let plain = rtp_with_header(seq, csrcs, ext, 40);
            let sent = protect(&mut tx, &plain);
            let at = 12 + 4 * usize::from(csrcs);
            if !encrypts {
                assert_eq!(sent[..plain.len()], plain[..], "{profile:?}: marked");
                assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain);
                continue;
            }
            assert_eq!(
                u16::from_be_bytes([sent[at], sent[at + 1]]),
                mark,
                "{profile:?}"
            );
            let grown = usize::from(ext.is_none()) * 4;
            assert_eq!(sent.len(), plain.len() + grown + tx.rtp_trailer_len());
            if encrypts && csrcs > 0 {
                assert_ne!(sent[12..at], plain[12..at], "{profile:?}: CSRCs in clear");
            }
            if encrypts && ext.is_some_and(|(_, w)| w > 0) {
                assert_ne!(sent[at + 4..at + 8], plain[at + 4..at + 8], "{profile:?}");
            }
            let got = unprotect(&mut rx, &sent).unwrap();
            let want = match ext {
                Some(_) => plain.clone(),
                None => {
                    // The empty block the sender added, read back as RFC 8285's.
                    let mut w = plain[..at].to_vec();
                    w[0] |= 0x10;
                    w.extend([0xBE, 0xDE, 0, 0]);
                    w.extend(&plain[at..]);
                    w
                }
            };
            assert_eq!(got, want, "{profile:?} csrcs {csrcs} ext {ext:?}");
        }
        // Nothing for cryptex to do: no CSRC, no extension.
        let plain = rtp(200, SSRC, 40);
        let sent = protect(&mut tx, &plain);
        assert_eq!(sent[..12], plain[..12]);
        assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain);
        // A sender without cryptex, to a cryptex receiver: extension in clear, accepted.
        let mut plain_policy = cryptex_policy(profile);
        plain_policy.cryptex = false;
        let mut old = Session::new(&plain_policy).unwrap();
        let plain = rtp_with_header(300, 1, Some((0xBEDE, 1)), 20);
        let sent = protect(&mut old, &plain);
        assert_eq!(sent[..24], plain[..24]);
        assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain);
    }
}

/// A receiver that did not negotiate cryptex refuses marked packets, before and after their
/// tag, changing nothing; a forged cryptex packet fails and is left as it arrived (the GCM
/// path lays the packet out to try it, and back); a cryptex sender sends an extension that is
/// not RFC 8285's (or has two-byte appbits) without cryptex (RFC 9335 §5.1).
#[test]
fn cryptex_refusals_change_nothing() {
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::AeadAes128Gcm] {
        let (mut tx, _) = pair(&cryptex_policy(profile));
        let plain = rtp_with_header(7, 2, Some((0xBEDE, 1)), 30);
        let sent = protect(&mut tx, &plain);

        let mut no = cryptex_policy(profile);
        no.cryptex = false;
        let mut rx = Session::new(&no).unwrap();
        assert_eq!(unprotect(&mut rx, &sent), Err(Error::CryptexNotNegotiated));
        assert_eq!(rx.receive_streams(), 0);

        let mut rx = Session::new(&cryptex_policy(profile)).unwrap();
        for i in [12, 20, 24, 30, sent.len() - 1] {
            let mut forged = sent.clone();
            forged[i] ^= 0x20;
            assert!(unprotect(&mut rx, &forged).is_err(), "{profile:?} byte {i}");
        }
        assert_eq!(rx.receive_streams(), 0);
        assert_eq!(unprotect(&mut rx, &sent).unwrap(), plain);

        // Extension profiles other than RFC 8285's: sent without cryptex, header in clear.
        for (seq, ext) in [(8, 0x1234), (108, 0x1001)] {
            let odd = rtp_with_header(seq, 2, Some((ext, 1)), 10);
            let sent = protect(&mut tx, &odd);
            assert_eq!(sent[..28], odd[..28], "{profile:?} {ext:#x}");
            assert_eq!(unprotect(&mut rx, &sent).unwrap(), odd);
        }
        // No room for the empty block a CSRC-only packet gains.
        let bare = rtp_with_header(9, 1, None, 10);
        let mut buf = bare.clone();
        buf.resize(bare.len() + tx.rtp_trailer_len(), 0);
        let needed = bare.len() + 4 + tx.rtp_trailer_len();
        assert_eq!(
            tx.protect_rtp(&mut buf, bare.len()),
            Err(Error::NoRoom { needed })
        );
    }
}

/// Batches with cryptex give the packet-by-packet results, packets that grow among them.
#[test]
fn cryptex_batches_match_single_packets() {
    let policy = cryptex_policy(Profile::Aes128CmHmacSha1_80);
    let (mut tx1, mut rx1) = pair(&policy);
    let (mut tx8, mut rx8) = pair(&policy);
    let packets: Vec<Vec<u8>> = (0..16u16)
        .map(|i| match i % 4 {
            0 => rtp_with_header(i, 1, None, 50),
            1 => rtp_with_header(i, 0, Some((0xBEDE, 2)), 60),
            2 => rtp(i, SSRC, 70),
            _ => rtp_with_header(i, 4, Some((0x1000, 1)), 80),
        })
        .collect();
    let single: Vec<Vec<u8>> = packets.iter().map(|p| protect(&mut tx1, p)).collect();
    let mut bufs = with_room(&packets);
    let mut batch = batch_of(&mut bufs, packets.iter().map(Vec::len));
    tx8.protect_rtp_batch(&mut batch);
    for (p, want) in batch.iter().zip(&single) {
        assert_eq!(p.result, Ok(()));
        assert_eq!(&p.buf[..p.len], &want[..]);
    }
    let opened: Vec<Vec<u8>> = single
        .iter()
        .map(|s| unprotect(&mut rx1, s).unwrap())
        .collect();
    let mut bufs = single.clone();
    let mut batch = batch_of(&mut bufs, single.iter().map(Vec::len));
    rx8.unprotect_rtp_batch(&mut batch);
    for (p, want) in batch.iter().zip(&opened) {
        assert_eq!(p.result, Ok(()));
        assert_eq!(&p.buf[..p.len], &want[..]);
    }
}
