//! Engine behaviour with a simulated clock and an in-memory network: every mode, latching,
//! forged and replayed packets, spoofed sources, re-key, hold, rtcp-mux on one leg only, the
//! bridge's own RTCP and inactivity.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srtp_core::{MasterKey, Mki, Policy, Profile, Session, MAX_TRAILER_LEN};
use srtp_relay::engine::{
    CallId, CallSpec, DropReason, EncryptionLevel, Engine, EngineConfig, Event, Latching, LegSpec,
    LegUpdate, MediaDirection, Mode, Route, Security, SocketId, SrtpMode, TAIL_ROOM,
};
use srtp_relay::EngineError;

const A: &str = "10.0.0.1:5000"; // client endpoint (addresses are only labels: no I/O here)
const B: &str = "10.0.0.2:6000"; // gateway or far endpoint
const EVIL: &str = "10.6.6.6:6666";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key(profile: Profile, fill: u8) -> MasterKey {
    MasterKey::from_key_material(profile, &vec![fill; profile.key_material_len()]).unwrap()
}

/// One endpoint's keys: what it sends with (`send`) and what it receives with (`recv`).
struct Endpoint {
    send: Session,
    recv: Session,
    send_policy: Policy,
    recv_policy: Policy,
}

impl Endpoint {
    fn new(send: Policy, recv: Policy) -> Self {
        Self {
            send: Session::new(&send).unwrap(),
            recv: Session::new(&recv).unwrap(),
            send_policy: send,
            recv_policy: recv,
        }
    }

    /// The leg security the relay needs toward this endpoint.
    fn security(&self) -> Security {
        Security::Srtp {
            inbound: self.send_policy.clone(),
            outbound: self.recv_policy.clone(),
        }
    }

    fn protect(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut b = plain.to_vec();
        b.resize(plain.len() + MAX_TRAILER_LEN, 0);
        let n = self.send.protect_rtp(&mut b, plain.len()).unwrap();
        b.truncate(n);
        b
    }

    fn protect_rtcp(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut b = plain.to_vec();
        b.resize(plain.len() + MAX_TRAILER_LEN, 0);
        let n = self.send.protect_rtcp(&mut b, plain.len()).unwrap();
        b.truncate(n);
        b
    }
}

fn endpoint(profile: Profile, fill: u8) -> Endpoint {
    Endpoint::new(
        Policy::new(profile, key(profile, fill)),
        Policy::new(profile, key(profile, fill + 100)),
    )
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend(ssrc.to_be_bytes());
    p
}

struct Net {
    engine: Engine,
    now: Instant,
}

impl Net {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            engine: Engine::new(EngineConfig::default(), now),
            now,
        }
    }

    /// Delivers `data` to local socket `to` from `from`; returns (socket, destination, bytes).
    fn send(
        &mut self,
        to: u32,
        from: &str,
        data: &[u8],
    ) -> Option<(SocketId, SocketAddr, Vec<u8>)> {
        let mut buf = data.to_vec();
        buf.resize(data.len() + TAIL_ROOM, 0);
        let t = self
            .engine
            .handle(self.now, SocketId(to), addr(from), &mut buf, data.len())?;
        Some((t.socket, t.destination, buf[..t.len].to_vec()))
    }

    /// Moves the clock on by `d`, stopping at every deadline the engine asks for.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.now = self.now.max(self.engine.poll_timeout().min(end));
            self.engine.handle_timeout(self.now);
            if self.now >= end {
                break;
            }
        }
    }
}

/// The mediation bridge under SupportEncryption toward a gateway without SRTP (over TLS).
const OPEN_BRIDGE: Mode = Mode::Bridge {
    level: EncryptionLevel::SupportEncryption,
    gateway: SrtpMode::NotSupported,
    gateway_tls: true,
};

/// A transcrypt call between endpoints `a` (sockets 1, at A) and `b` (2, at B).
fn transcrypt(net: &mut Net, a: &Endpoint, b: &Endpoint) -> CallId {
    net.engine
        .create_call(
            CallSpec {
                mode: Mode::Transcrypt,
                legs: [leg(1, Some(A), a.security()), leg(2, Some(B), b.security())],
            },
            net.now,
        )
        .unwrap()
}

fn leg(rtp: u32, remote: Option<&str>, security: Security) -> LegSpec {
    let mut l = LegSpec::new(SocketId(rtp), security);
    l.remote = remote.map(addr);
    l
}

#[test]
fn pass_through_forwards_untouched_and_learns_the_remote() {
    let mut net = Net::new();
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: Mode::PassThrough { verify: false },
                legs: [
                    leg(1, None, Security::Plain),
                    leg(2, Some(B), Security::Plain),
                ],
            },
            net.now,
        )
        .unwrap();
    let mut ep = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    let srtp = ep.protect(&rtp(1, 0xa));
    let (sock, dest, out) = net.send(1, A, &srtp).unwrap();
    assert_eq!((sock, dest), (SocketId(2), addr(B)));
    assert_eq!(out, srtp, "pass-through never touches the packet");
    // B answers; it goes to the latched A.
    let (sock, dest, _) = net.send(2, B, &ep.protect(&rtp(2, 0xb))).unwrap();
    assert_eq!((sock, dest), (SocketId(1), addr(A)));
    assert!(matches!(
        net.engine.poll_event(),
        Some(Event::Latched { leg: 0, .. })
    ));
    // A spoofed source needs 5 packets in a row before it takes over.
    for i in 0..4 {
        assert!(net.send(1, EVIL, &ep.protect(&rtp(10 + i, 0xa))).is_none());
    }
    assert_eq!(
        net.engine.call(call).unwrap().legs[0]
            .stats
            .counters
            .drops
            .unknown_source,
        4
    );
    assert!(
        net.send(1, A, &ep.protect(&rtp(20, 0xa))).is_some(),
        "A still latched"
    );
}

#[test]
fn verifying_pass_through_drops_forgeries_and_latches_only_on_authentic_packets() {
    let mut net = Net::new();
    let (mut a, mut b) = (
        endpoint(Profile::AeadAes128Gcm, 1),
        endpoint(Profile::AeadAes128Gcm, 2),
    );
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: Mode::PassThrough { verify: true },
                legs: [leg(1, Some(A), a.security()), leg(2, Some(B), b.security())],
            },
            net.now,
        )
        .unwrap();
    let genuine = a.protect(&rtp(1, 0xa));
    let mut forged = genuine.clone();
    forged[20] ^= 1;
    // RTP-Bleed: a forged packet from a new source moves nothing and is not forwarded.
    assert!(net.send(1, EVIL, &forged).is_none());
    let info = net.engine.call(call).unwrap();
    assert_eq!(info.legs[0].remote_rtp, Some(addr(A)));
    assert_eq!(info.legs[0].stats.counters.drops.auth, 1);
    let (_, dest, out) = net.send(1, A, &genuine).unwrap();
    assert_eq!((dest, &out), (addr(B), &genuine));
    assert!(net.send(1, A, &genuine).is_none(), "replay dropped");
    assert_eq!(
        net.engine.call(call).unwrap().legs[0]
            .stats
            .counters
            .drops
            .replay,
        1
    );
    // An authentic packet from a new address moves the leg at once.
    let (_, dest, _) = net
        .send(2, "10.0.0.9:7000", &b.protect(&rtp(1, 0xb)))
        .unwrap();
    assert_eq!(dest, addr(A));
    assert_eq!(
        net.engine.call(call).unwrap().legs[1].remote_rtp,
        Some(addr("10.0.0.9:7000"))
    );
}

#[test]
fn transcrypt_between_different_profiles_and_mkis() {
    let mut net = Net::new();
    let p1 = Profile::Aes128CmHmacSha1_80;
    let with_mki = |fill| key(p1, fill).with_mki(Mki::new(1, 1).unwrap());
    let mut a = Endpoint::new(Policy::new(p1, with_mki(1)), Policy::new(p1, with_mki(2)));
    let mut b = endpoint(Profile::AeadAes128Gcm, 3);
    let mut l0 = leg(1, Some(A), a.security());
    l0.rtcp = Some(SocketId(11)); // separate RTCP port on leg 0, rtcp-mux on leg 1
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: Mode::Transcrypt,
                legs: [l0, leg(2, Some(B), b.security())],
            },
            net.now,
        )
        .unwrap();
    for seq in 65_530..65_540u32 {
        let plain = rtp(seq as u16, 0xa);
        let (sock, dest, out) = net.send(1, A, &a.protect(&plain)).unwrap();
        assert_eq!((sock, dest), (SocketId(2), addr(B)));
        assert_eq!(out.len(), plain.len() + 16, "GCM tag, no MKI");
        let mut out = out;
        assert_eq!(b.recv.unprotect_rtp(&mut out).unwrap(), &plain[..]);
    }
    // Reverse direction, and RTCP: leg 1 is rtcp-mux, leg 0 has a separate RTCP port.
    let plain = rtp(7, 0xb);
    let (sock, dest, mut out) = net.send(2, B, &b.protect(&plain)).unwrap();
    assert_eq!((sock, dest), (SocketId(1), addr(A)));
    assert_eq!(out[out.len() - 11], 1, "leg 0 packets carry the MKI");
    assert_eq!(a.recv.unprotect_rtp(&mut out).unwrap(), &plain[..]);
    let (sock, dest, mut out) = net.send(2, B, &b.protect_rtcp(&rtcp(0xb))).unwrap();
    assert_eq!((sock, dest), (SocketId(11), addr("10.0.0.1:5001")));
    assert_eq!(a.recv.unprotect_rtcp(&mut out).unwrap(), &rtcp(0xb)[..]);

    // Re-key leg 0 inbound: A's new key takes over, A's stream continues without a restart.
    let new_key = key(p1, 9).with_mki(Mki::new(2, 1).unwrap());
    net.engine
        .update_call(
            call,
            0,
            LegUpdate {
                inbound_keys: Some(vec![new_key.clone()]),
                ..Default::default()
            },
        )
        .unwrap();
    a.send.rekey(&[new_key]).unwrap();
    let plain = rtp(65_540u32 as u16, 0xa);
    let (_, _, mut out) = net.send(1, A, &a.protect(&plain)).unwrap();
    assert_eq!(b.recv.unprotect_rtp(&mut out).unwrap(), &plain[..]);

    // Hold: A becomes recvonly; its RTP is dropped, RTCP still flows.
    net.engine
        .update_call(
            call,
            0,
            LegUpdate {
                direction: Some(MediaDirection::RecvOnly),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(net.send(1, A, &a.protect(&rtp(5, 0xa))).is_none());
    assert!(net.send(11, A, &a.protect_rtcp(&rtcp(0xa))).is_some());
    let info = net.engine.call(call).unwrap();
    assert_eq!(info.legs[0].stats.counters.drops.policy, 1);
    assert!(info.legs[0].srtp && !info.legs[0].rtcp_mux && info.legs[1].rtcp_mux);
}

/// An endpoint that echoed the relay's key (one key both ways, which RFC 3711 allows while
/// the SSRCs differ): what the relay sends it, replayed back from elsewhere, would
/// authenticate and move the media. Packets of the SSRCs the relay sends toward a leg are
/// refused on that leg when its keys are shared.
#[test]
fn the_relays_own_packets_sent_back_under_an_echoed_key_are_refused() {
    let mut net = Net::new();
    let p = Profile::Aes128CmHmacSha1_80;
    let shared = Policy::new(p, key(p, 7));
    let mut a = Endpoint::new(shared.clone(), shared);
    let mut b = endpoint(Profile::AeadAes128Gcm, 8);
    let call = transcrypt(&mut net, &a, &b);
    let (_, dest, seen) = net.send(2, B, &b.protect(&rtp(1, 0xb))).unwrap();
    assert_eq!(dest, addr(A));
    let (_, _, report) = net.send(2, B, &b.protect_rtcp(&rtcp(0xb))).unwrap();
    // Sent back, from anywhere: refused, nothing moves.
    assert!(net.send(1, EVIL, &seen).is_none());
    assert!(net.send(1, EVIL, &report).is_none());
    let info = net.engine.call(call).unwrap();
    assert_eq!(info.legs[0].remote_rtp, Some(addr(A)));
    assert_eq!(info.legs[0].stats.counters.drops.replay, 2);
    // The endpoint's own packets pass.
    let (_, dest, _) = net.send(1, A, &a.protect(&rtp(1, 0xa))).unwrap();
    assert_eq!(dest, addr(B));
    let (_, dest, _) = net.send(1, A, &a.protect_rtcp(&rtcp(0xa))).unwrap();
    assert_eq!(dest, addr(B));
}

/// A transcrypt call keeps each SRTP side alive with RTCP of its own when the other side
/// sends none (a Microsoft client facing an SRTP trunk that is silent on hold): reports go
/// only toward the side that gets no RTCP, under that side's keys.
#[test]
fn transcrypt_keeps_the_side_without_rtcp_alive() {
    let mut net = Net::new();
    let mut a = endpoint(Profile::Aes128CmHmacSha1_80, 4);
    let mut b = endpoint(Profile::AeadAes128Gcm, 5);
    transcrypt(&mut net, &a, &b);
    // A sends RTCP every second (B hears it); B sends media but no RTCP.
    let mut reports = 0;
    for second in 0..12u16 {
        net.advance(Duration::from_secs(1));
        let _ = net.send(1, A, &a.protect(&rtp(100 + second, 0xa)));
        let _ = net.send(1, A, &a.protect_rtcp(&rtcp(0xa)));
        let _ = net.send(2, B, &b.protect(&rtp(200 + second, 0xb)));
        while let Some(t) = net.engine.poll_transmit() {
            assert_eq!(
                (t.socket, t.destination),
                (SocketId(1), addr(A)),
                "toward A only"
            );
            let mut data = t.data;
            let rr = a.recv.unprotect_rtcp(&mut data).unwrap();
            assert_eq!(&rr[4..8], &0xbu32.to_be_bytes(), "as B's SSRC");
            reports += 1;
        }
    }
    assert!((2..=3).contains(&reports), "{reports} reports to A in 12 s");
}

#[test]
fn bridge_converts_srtp_to_rtp_and_keeps_rtcp_alive() {
    let mut net = Net::new();
    let mut client = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    let mut gw = leg(2, Some(B), Security::Plain);
    gw.latching = Latching::Strict;
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: OPEN_BRIDGE,
                legs: [leg(1, Some(A), client.security()), gw],
            },
            net.now,
        )
        .unwrap();
    let plain = rtp(1, 0xa);
    let (_, dest, out) = net.send(1, A, &client.protect(&plain)).unwrap();
    assert_eq!((dest, out), (addr(B), plain));
    let from_gw = rtp(1, 0xb);
    let (_, dest, mut out) = net.send(2, B, &from_gw).unwrap();
    assert_eq!(dest, addr(A));
    assert_eq!(client.recv.unprotect_rtp(&mut out).unwrap(), &from_gw[..]);
    // SRTCP to RTCP.
    let (_, _, out) = net.send(1, A, &client.protect_rtcp(&rtcp(0xa))).unwrap();
    assert_eq!(out, rtcp(0xa));
    // Strict gateway leg: a spoofed source is dropped.
    assert!(net.send(2, EVIL, &rtp(2, 0xb)).is_none());
    assert_eq!(
        net.engine.call(call).unwrap().legs[1]
            .stats
            .counters
            .drops
            .unknown_source,
        1
    );

    // The gateway sends no RTCP: the bridge sends its own SRTCP receiver reports, the first
    // within 5 s of the call's start and then every 5 s.
    let start = net.now;
    let mut reports = Vec::new();
    for second in 0..16u16 {
        net.advance(Duration::from_secs(1));
        // keep both legs active
        let _ = net.send(1, A, &client.protect(&rtp(100 + second, 0xa)));
        let _ = net.send(2, B, &rtp(50, 0xb));
        while let Some(t) = net.engine.poll_transmit() {
            assert_eq!((t.socket, t.destination), (SocketId(1), addr(A)));
            let mut data = t.data;
            let rr = client.recv.unprotect_rtcp(&mut data).unwrap();
            assert_eq!(rr[1], 201, "a receiver report");
            assert_eq!(
                &rr[4..8],
                &0xbu32.to_be_bytes(),
                "sent as the gateway's SSRC"
            );
            // A compound packet (RFC 3550 §6.1): the report, then SDES with a CNAME.
            assert_eq!(rr.len(), 36);
            assert_eq!(rr[8..12], [0x81, 202, 0, 6], "one SDES chunk of six words");
            assert_eq!(rr[12..16], rr[4..8], "the chunk names the reporter");
            assert_eq!(&rr[16..32], b"\x01\x0erelay-0000000b");
            assert_eq!(rr[32..], [0; 4], "the end item and padding");
            reports.push(net.now);
        }
    }
    assert!(reports.len() >= 3, "{} reports in 16 s", reports.len());
    assert!(reports[0] - start <= Duration::from_secs(5));
    for pair in reports.windows(2) {
        // Reports are seen at the next whole second of this loop: 5 s apart, give or take it.
        let gap = pair[1] - pair[0];
        assert!(
            gap <= Duration::from_secs(6) && gap >= Duration::from_secs(4),
            "{gap:?}"
        );
    }
    // RTCP from the gateway goes to the client and postpones the bridge's own.
    let before = reports.len();
    for second in 0..8u16 {
        net.advance(Duration::from_secs(1));
        let _ = net.send(1, A, &client.protect(&rtp(200 + second, 0xa)));
        let (_, dest, _) = net.send(2, B, &rtcp(0xb)).unwrap();
        assert_eq!(dest, addr(A));
        while net.engine.poll_transmit().is_some() {
            reports.push(net.now);
        }
    }
    assert_eq!(
        reports.len(),
        before,
        "none while the gateway sends its own"
    );
}

/// A gateway that restarts its sequence numbers on the same SSRC (hold and resume, as the
/// PBXes of rtpengine #1483 and libsrtp #424 do) keeps being heard: the relay, which
/// re-protects what it forwards under its own key toward the client, numbers on from the
/// highest it sent instead of re-using indices the client's replay check has seen (or
/// refusing them, which silenced the client side before).
#[test]
fn a_sequence_restart_upstream_continues_toward_the_srtp_side() {
    let mut net = Net::new();
    let mut client = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    net.engine
        .create_call(
            CallSpec {
                mode: OPEN_BRIDGE,
                legs: [
                    leg(1, Some(A), client.security()),
                    leg(2, Some(B), Security::Plain),
                ],
            },
            net.now,
        )
        .unwrap();
    let mut heard = Vec::new();
    let mut hear = |net: &mut Net, seq: u16| {
        let (_, dest, mut out) = net.send(2, B, &rtp(seq, 0xb))?;
        assert_eq!(dest, addr(A));
        let plain = client
            .recv
            .unprotect_rtp(&mut out)
            .expect("the client accepts it");
        heard.push(u16::from_be_bytes([plain[2], plain[3]]));
        Some(())
    };
    // The numbers of rtpengine #664: 33074 before the hold, 23080 after it.
    for seq in 33_065..=33_074 {
        hear(&mut net, seq).unwrap();
    }
    // The restart's first packet is held back (it could be a lone stray), the next confirm it.
    assert!(hear(&mut net, 23_080).is_none());
    for seq in 23_081..23_085 {
        hear(&mut net, seq).expect("forwarded after the restart");
    }
    // A duplicate of the last one sent is still refused (never one index twice).
    assert!(hear(&mut net, 23_084).is_none());
    hear(&mut net, 23_085).unwrap();
    let expected: Vec<u16> = (33_065..33_080).collect();
    assert_eq!(heard, expected);

    // The client reports on the numbers it received (RFC 3550 §6.4.2) and asks for one again
    // (RFC 4585 §6.2.1); the gateway gets them in its own numbering.
    let mut report = vec![0x81, 201, 0, 7, 0, 0, 0, 0xa];
    report.extend([0, 0, 0, 0xb, 0, 0, 0, 0]);
    report.extend(33_079u32.to_be_bytes());
    report.extend([0; 12]);
    report.extend([0x81, 205, 0, 3, 0, 0, 0, 0xa, 0, 0, 0, 0xb]);
    report.extend(33_077u16.to_be_bytes());
    report.extend([0, 1]);
    let (_, dest, out) = net.send(1, A, &client.protect_rtcp(&report)).unwrap();
    assert_eq!(dest, addr(B));
    assert_eq!(
        out[16..20],
        23_085u32.to_be_bytes(),
        "extended highest received"
    );
    assert_eq!(
        out[44..48],
        [0x5a, 0x2b, 0, 1],
        "NACK of 23083, its bitmask unchanged"
    );
}

/// A bridge whose SRTP side is leg 1 (ng puts the caller on leg 0: a plain PSTN caller
/// reaching an SRTP client) keeps the SRTP side alive, not the plain one.
#[test]
fn bridge_reports_go_to_the_srtp_side_whichever_leg_it_is() {
    let mut net = Net::new();
    let mut client = endpoint(Profile::Aes128CmHmacSha1_80, 3);
    net.engine
        .create_call(
            CallSpec {
                mode: Mode::Bridge {
                    level: EncryptionLevel::SupportEncryption,
                    gateway: SrtpMode::Optional,
                    gateway_tls: true,
                },
                legs: [
                    leg(1, Some(B), Security::Plain),
                    leg(2, Some(A), client.security()),
                ],
            },
            net.now,
        )
        .unwrap();
    let mut reports = 0;
    for second in 0..12u16 {
        net.advance(Duration::from_secs(1));
        let _ = net.send(2, A, &client.protect(&rtp(100 + second, 0xa)));
        let _ = net.send(1, B, &rtp(50 + second, 0xb));
        while let Some(t) = net.engine.poll_transmit() {
            assert_eq!((t.socket, t.destination), (SocketId(2), addr(A)));
            let mut data = t.data;
            let rr = client.recv.unprotect_rtcp(&mut data).unwrap();
            assert_eq!(&rr[4..8], &0xbu32.to_be_bytes(), "as the plain side's SSRC");
            reports += 1;
        }
    }
    assert!(reports >= 2, "{reports} reports in 12 s");
    // RTCP from the plain side reaches the client and postpones the bridge's own.
    for second in 0..8u16 {
        net.advance(Duration::from_secs(1));
        let _ = net.send(2, A, &client.protect(&rtp(200 + second, 0xa)));
        let (_, dest, _) = net.send(1, B, &rtcp(0xb)).unwrap();
        assert_eq!(dest, addr(A));
        assert!(
            net.engine.poll_transmit().is_none(),
            "none while it sends its own"
        );
    }
    // Its RTCP named its CNAME (SDES, RFC 3550 §6.5.1): when it goes quiet again, the
    // bridge's reports sent as its SSRC carry that CNAME, so the client sees one per source.
    let mut report = rtcp(0xb);
    report.extend([0x81, 202, 0, 4, 0, 0, 0, 0xb, 1, 7]);
    report.extend(b"gw@pstn");
    report.extend([0, 0, 0]);
    net.send(1, B, &report).unwrap();
    let mut named = 0;
    for second in 0..8u16 {
        net.advance(Duration::from_secs(1));
        let _ = net.send(2, A, &client.protect(&rtp(300 + second, 0xa)));
        while let Some(t) = net.engine.poll_transmit() {
            let mut data = t.data;
            let rr = client.recv.unprotect_rtcp(&mut data).unwrap();
            assert_eq!(rr[8..20], [0x81, 202, 0, 4, 0, 0, 0, 0xb, 1, 7, b'g', b'w']);
            assert_eq!(rr[20..24], *b"@pst");
            assert_eq!(rr[24..], [b'n', 0, 0, 0]);
            named += 1;
        }
    }
    assert!(named >= 1, "{named} reports");
}

/// Bridges set up together send their own RTCP spread over the interval, not in one burst:
/// a worker with thousands of calls never stalls to send thousands of reports at once.
#[test]
fn bridge_reports_of_calls_set_up_together_are_spread() {
    let mut net = Net::new();
    let client = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    for i in 0..1000u32 {
        net.engine
            .create_call(
                CallSpec {
                    mode: OPEN_BRIDGE,
                    legs: [
                        leg(10 + 2 * i, Some(A), client.security()),
                        leg(11 + 2 * i, Some(B), Security::Plain),
                    ],
                },
                net.now,
            )
            .unwrap();
    }
    // Over 5 s, in 100 ms slices: every call reports once, no slice carries more than a few
    // percent of them (evenly spread over 3.75 s would be 2.7% a slice).
    let mut per_slice = Vec::new();
    for _ in 0..50 {
        net.advance(Duration::from_millis(100));
        let mut n = 0;
        while net.engine.poll_transmit().is_some() {
            n += 1;
        }
        per_slice.push(n);
    }
    assert_eq!(per_slice.iter().sum::<u32>(), 1000, "{per_slice:?}");
    assert!(per_slice.iter().all(|&n| n <= 50), "{per_slice:?}");
}

#[test]
fn bridge_policy_errors_are_clear() {
    let mut net = Net::new();
    let client = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    let gateway = endpoint(Profile::Aes128CmHmacSha1_80, 2);
    let mut make = |level, mode, tls, gw: Security| {
        net.engine.create_call(
            CallSpec {
                mode: Mode::Bridge {
                    level,
                    gateway: mode,
                    gateway_tls: tls,
                },
                legs: [leg(1, Some(A), client.security()), leg(2, Some(B), gw)],
            },
            Instant::now(),
        )
    };
    use EncryptionLevel::*;
    use SrtpMode::*;
    assert_eq!(
        make(RequireEncryption, NotSupported, true, Security::Plain).unwrap_err(),
        EngineError::PolicyForbids {
            level: RequireEncryption,
            mode: NotSupported
        }
    );
    // Required, but signalling is not TLS: the keys may not be used, so the call is refused.
    assert!(matches!(
        make(RequireEncryption, Required, false, gateway.security()),
        Err(EngineError::PolicyForbids { .. })
    ));
    let e = make(RequireEncryption, Required, true, Security::Plain).unwrap_err();
    assert_eq!(
        e.to_string(),
        "leg 1: the policy requires SRTP toward the gateway: give its keys"
    );
    assert!(make(RequireEncryption, Required, true, gateway.security()).is_ok());
}

#[test]
fn inactivity_ends_the_call_and_frees_its_sockets() {
    let mut net = Net::new();
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: Mode::PassThrough { verify: false },
                legs: [
                    leg(1, Some(A), Security::Plain),
                    leg(2, Some(B), Security::Plain),
                ],
            },
            net.now,
        )
        .unwrap();
    net.advance(Duration::from_secs(30));
    assert!(net.send(1, A, &rtp(1, 1)).is_some());
    net.advance(Duration::from_secs(29));
    assert!(
        net.engine.call(call).is_some(),
        "leg 1 silent for 59 s: still up"
    );
    // Leg 1 has received nothing since the call began: at 60 s the call ends.
    net.advance(Duration::from_secs(1));
    let mut ended = None;
    while let Some(e) = net.engine.poll_event() {
        if let Event::CallEnded {
            call: c,
            sockets,
            reason,
            ..
        } = e
        {
            assert_eq!(reason, srtp_relay::engine::EndReason::Inactivity { leg: 1 });
            ended = Some((c, sockets));
        }
    }
    let (c, mut sockets) = ended.expect("call ended");
    sockets.sort();
    assert_eq!((c, sockets), (call, vec![SocketId(1), SocketId(2)]));
    assert!(net.engine.call(call).is_none());
    assert_eq!(net.engine.totals().packets_in, 1);
    assert!(net.send(1, A, &rtp(2, 1)).is_none());
    assert_eq!(net.engine.unrouted(), 1);
}

#[test]
fn malformed_packets_are_dropped_and_counted() {
    let mut net = Net::new();
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: Mode::PassThrough { verify: false },
                legs: [
                    leg(1, Some(A), Security::Plain),
                    leg(2, Some(B), Security::Plain),
                ],
            },
            net.now,
        )
        .unwrap();
    assert!(net.send(1, A, &[0x80, 0, 1]).is_none());
    assert!(net.send(1, A, &[0x40; 20]).is_none());
    assert!(net.send(1, A, &[]).is_none());
    let drops = net.engine.call(call).unwrap().legs[0].stats.counters.drops;
    assert_eq!((drops.malformed, drops.total()), (3, 3));
    let _ = DropReason::Malformed;
}

#[test]
fn a_socket_serves_one_call_only() {
    let mut net = Net::new();
    let spec = || CallSpec {
        mode: Mode::PassThrough { verify: false },
        legs: [leg(1, None, Security::Plain), leg(2, None, Security::Plain)],
    };
    net.engine.create_call(spec(), net.now).unwrap();
    assert_eq!(
        net.engine.create_call(spec(), net.now).unwrap_err(),
        EngineError::SocketInUse(SocketId(1))
    );
}

/// A route the I/O layer keeps per socket is only a hint: a stale one (its call gone, its
/// slot reused, or another socket's) never sends a datagram anywhere the socket table would
/// not.
#[test]
fn routes_kept_by_the_caller_never_outlive_their_sockets() {
    let mut net = Net::new();
    let plain = |a: u32, b: u32| CallSpec {
        mode: Mode::PassThrough { verify: false },
        legs: [
            leg(a, Some(A), Security::Plain),
            leg(b, Some(B), Security::Plain),
        ],
    };
    let send = |net: &mut Net, route: &mut Route, socket: u32, from: &str| {
        let data = rtp(1, 7);
        let mut buf = data.clone();
        buf.resize(data.len() + TAIL_ROOM, 0);
        let t = net.engine.handle_routed(
            route,
            net.now,
            SocketId(socket),
            addr(from),
            &mut buf,
            data.len(),
        )?;
        Some((t.socket, t.destination))
    };
    let first = net.engine.create_call(plain(1, 2), net.now).unwrap();
    let mut route = Route::default();
    assert_eq!(
        send(&mut net, &mut route, 1, A),
        Some((SocketId(2), addr(B)))
    );
    assert_ne!(route, Route::default(), "the route is learnt");
    let learnt = route;
    assert_eq!(
        send(&mut net, &mut route, 1, A),
        Some((SocketId(2), addr(B)))
    );
    assert_eq!(route, learnt);
    // Another socket's route: the socket is looked up and the route corrected.
    let mut other = learnt;
    assert_eq!(
        send(&mut net, &mut other, 2, B),
        Some((SocketId(1), addr(A)))
    );
    assert_ne!(other, learnt);

    // The call ends, and a new one takes its slot with other sockets.
    net.engine.delete_call(first).unwrap();
    let mut stale = learnt;
    assert_eq!(send(&mut net, &mut stale, 1, A), None);
    assert_eq!(stale, Route::default(), "a socket of no call has no route");
    net.engine.create_call(plain(3, 4), net.now).unwrap();
    let mut stale = learnt;
    assert_eq!(
        send(&mut net, &mut stale, 1, A),
        None,
        "the old socket's route names the slot, which no longer holds that socket"
    );
    assert_eq!(net.engine.unrouted(), 2);
    let mut reused = learnt;
    assert_eq!(
        send(&mut net, &mut reused, 3, A),
        Some((SocketId(4), addr(B))),
        "the slot's new leg holds socket 3: the route is right for it"
    );

    // Prefetching along routes, right or stale, is a hint that changes nothing.
    let (a, b) = (
        endpoint(Profile::Aes128CmHmacSha1_80, 1),
        endpoint(Profile::AeadAes128Gcm, 2),
    );
    transcrypt(&mut net, &a, &b);
    let mut keyed = Route::default();
    assert!(net.engine.call_memory(&keyed).is_none());
    net.engine.prefetch_keys(&keyed);
    assert_eq!(send(&mut net, &mut keyed, 1, A), None, "not SRTP: refused");
    assert!(net.engine.call_memory(&keyed).is_some());
    for route in [keyed, learnt, reused, Route::default()] {
        net.engine.prefetch_keys(&route);
    }
    let mut ep = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    let (sock, dest, _) = net.send(1, A, &ep.protect(&rtp(1, 0xa))).unwrap();
    assert_eq!((sock, dest), (SocketId(2), addr(B)));
}

/// A bridge whose client (leg 0, at A) sends RTP under `UNAUTHENTICATED_SRTP`, latching as
/// given.
fn unauthenticated_bridge(latching: Latching) -> (Net, Endpoint, CallId) {
    let mut net = Net::new();
    let p = Profile::Aes128CmHmacSha1_80;
    let mut send = Policy::new(p, key(p, 1));
    send.authenticate_rtp = false;
    let a = Endpoint::new(send, Policy::new(p, key(p, 2)));
    let mut l0 = leg(1, Some(A), a.security());
    l0.latching = latching;
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: OPEN_BRIDGE,
                legs: [l0, leg(2, Some(B), Security::Plain)],
            },
            net.now,
        )
        .unwrap();
    (net, a, call)
}

/// With `UNAUTHENTICATED_SRTP` an RTP packet proves nothing: such a leg latches like a plain
/// one, and a spoofed source cannot take the media.
#[test]
fn unauthenticated_srtp_legs_do_not_latch_on_any_packet() {
    let (mut net, mut a, call) = unauthenticated_bridge(Latching::Strict);
    let p = Profile::Aes128CmHmacSha1_80;
    // Anyone can make a packet that "unprotects" without a tag. One from elsewhere is refused
    // before it reaches the keys: far ahead on the client's SSRC, it would otherwise have
    // moved the replay window past the client's next packets.
    let mut forger = Endpoint::new(a.send_policy.clone(), Policy::new(p, key(p, 2)));
    assert!(net
        .send(1, EVIL, &forger.protect(&rtp(30_001, 0xa)))
        .is_none());
    let info = net.engine.call(call).unwrap();
    assert_eq!(info.legs[0].remote_rtp, Some(addr(A)));
    assert_eq!(info.legs[0].stats.counters.drops.unknown_source, 1);
    assert!(net.send(1, A, &a.protect(&rtp(2, 0xa))).is_some());
    assert!(net.send(1, A, &a.protect(&rtp(3, 0xa))).is_some());
}

/// On a leg whose packets cannot prove their sender, a packet the keys then refuse (here a
/// replay) moves nothing, even from a source about to take over.
#[test]
fn a_refused_packet_never_moves_a_learning_leg() {
    let (mut net, mut a, call) = unauthenticated_bridge(Latching::Learn { relatch_after: 2 });
    let first = a.protect(&rtp(1, 0xa));
    assert!(net.send(1, A, &first).is_some());
    const MOVED: &str = "10.0.0.9:5000";
    assert!(net.send(1, MOVED, &first).is_none(), "a new source, once");
    assert!(net.send(1, MOVED, &first).is_none(), "twice, but a replay");
    let leg0 = || net.engine.call(call).unwrap().legs[0].clone();
    assert_eq!(leg0().remote_rtp, Some(addr(A)));
    assert_eq!(leg0().stats.counters.drops.replay, 1);
    assert!(net.engine.poll_event().is_none(), "no latching reported");
    // A packet the keys accept from there completes the move.
    assert!(net.send(1, MOVED, &a.protect(&rtp(2, 0xa))).is_some());
    assert_eq!(
        net.engine.call(call).unwrap().legs[0].remote_rtp,
        Some(addr(MOVED))
    );
}

/// An optional-SRTP offer answered with plain RTP: the gateway leg drops its keys, the call
/// becomes a bridge; under RequireEncryption the same change is refused and nothing changes.
#[test]
fn a_leg_can_change_security_within_the_policy() {
    let mut net = Net::new();
    let mut client = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    let gateway = endpoint(Profile::Aes128CmHmacSha1_80, 3);
    let call = net
        .engine
        .create_call(
            CallSpec {
                mode: Mode::Transcrypt,
                legs: [
                    leg(1, Some(A), client.security()),
                    leg(2, Some(B), gateway.security()),
                ],
            },
            net.now,
        )
        .unwrap();
    let strict = Mode::Bridge {
        level: EncryptionLevel::RequireEncryption,
        gateway: SrtpMode::Optional,
        gateway_tls: true,
    };
    assert!(net
        .engine
        .change_security(call, 1, Security::Plain, Some(strict))
        .is_err());
    assert!(net.engine.call(call).unwrap().legs[1].srtp, "unchanged");
    let lenient = Mode::Bridge {
        level: EncryptionLevel::SupportEncryption,
        gateway: SrtpMode::Optional,
        gateway_tls: true,
    };
    net.engine
        .change_security(call, 1, Security::Plain, Some(lenient))
        .unwrap();
    let plain = rtp(1, 0xa);
    let (_, dest, out) = net.send(1, A, &client.protect(&plain)).unwrap();
    assert_eq!((dest, out), (addr(B), plain));
}

#[test]
fn require_encryption_refuses_null_and_unencrypted_profiles() {
    let mut net = Net::new();
    let null = endpoint(Profile::NullHmacSha1_80, 1);
    let gateway = endpoint(Profile::Aes128CmHmacSha1_80, 2);
    let r = net.engine.create_call(
        CallSpec {
            mode: Mode::Bridge {
                level: EncryptionLevel::RequireEncryption,
                gateway: SrtpMode::Required,
                gateway_tls: true,
            },
            legs: [
                leg(1, Some(A), null.security()),
                leg(2, Some(B), gateway.security()),
            ],
        },
        net.now,
    );
    assert!(matches!(r, Err(EngineError::LegSecurity { leg: 0, .. })));
}

#[test]
fn a_refused_rekey_changes_nothing() {
    let mut net = Net::new();
    let mut a = endpoint(Profile::Aes128CmHmacSha1_80, 1);
    let mut b = endpoint(Profile::Aes128CmHmacSha1_80, 2);
    let call = transcrypt(&mut net, &a, &b);
    let bad = MasterKey::new(&[1; 32], &[2; 14]).unwrap(); // AES-256 key on an AES-128 leg
    let r = net.engine.update_call(
        call,
        0,
        LegUpdate {
            inbound_keys: Some(vec![key(Profile::Aes128CmHmacSha1_80, 9)]),
            outbound_keys: Some(vec![bad]),
            ..Default::default()
        },
    );
    assert!(r.is_err());
    // The old inbound key still works.
    let plain = rtp(1, 0xa);
    let (_, _, mut out) = net.send(1, A, &a.protect(&plain)).unwrap();
    assert_eq!(b.recv.unprotect_rtp(&mut out).unwrap(), &plain[..]);
}

#[test]
fn one_socket_twice_in_a_call_is_refused() {
    let mut net = Net::new();
    let r = net.engine.create_call(
        CallSpec {
            mode: Mode::PassThrough { verify: false },
            legs: [leg(1, None, Security::Plain), leg(1, None, Security::Plain)],
        },
        net.now,
    );
    assert_eq!(r.unwrap_err(), EngineError::SocketInUse(SocketId(1)));
}

/// An RTP packet with two CSRCs and a one-byte header extension (an audio level, RFC 6464).
fn rtp_with_extension(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = rtp(seq, ssrc);
    let payload = p.split_off(12);
    p[0] |= 0x10 | 2;
    p.extend([0, 0, 0, 1, 0, 0, 0, 2]);
    p.extend([0xBE, 0xDE, 0, 1, 0x10, 0x7f, 0, 0]);
    p.extend(payload);
    p
}

/// Endpoints that negotiated cryptex (RFC 9335) with each other through the relay's SDP may
/// encrypt their CSRCs and header extensions: the relay takes such packets on every keyed
/// leg (verifying pass-through forwards them untouched, transcrypt and bridge decrypt them),
/// and sends with cryptex where its outbound policy says so.
#[test]
fn cryptex_packets_pass_every_keyed_mode() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let cryptex = |fill| {
        let mut p = Policy::new(profile, key(profile, fill));
        p.cryptex = true;
        p
    };
    let plain = rtp_with_extension(1, 0xa);

    // Verifying pass-through: the leg's policy (from SDES) says nothing of cryptex.
    let mut net = Net::new();
    let mut a = Endpoint::new(cryptex(1), cryptex(2));
    let b = endpoint(profile, 3);
    let mut plain_a = a.security();
    if let Security::Srtp { inbound, outbound } = &mut plain_a {
        inbound.cryptex = false;
        outbound.cryptex = false;
    }
    net.engine
        .create_call(
            CallSpec {
                mode: Mode::PassThrough { verify: true },
                legs: [leg(1, Some(A), plain_a), leg(2, Some(B), b.security())],
            },
            net.now,
        )
        .unwrap();
    let sent = a.protect(&plain);
    assert_eq!(&sent[20..22], &[0xC0, 0xDE], "marked");
    let (_, dest, out) = net.send(1, A, &sent).unwrap();
    assert_eq!((dest, &out), (addr(B), &sent), "forwarded untouched");

    // Transcrypt: decrypted from A, sent to B (no cryptex toward B), and the reverse way
    // with cryptex toward A, whose outbound policy asks for it.
    let mut net = Net::new();
    let mut a = Endpoint::new(cryptex(4), cryptex(5));
    let mut b = endpoint(profile, 6);
    transcrypt(&mut net, &a, &b);
    let (_, dest, mut out) = net.send(1, A, &a.protect(&plain)).unwrap();
    assert_eq!(dest, addr(B));
    assert_eq!(&out[20..22], &[0xBE, 0xDE], "no cryptex toward B");
    assert_eq!(b.recv.unprotect_rtp(&mut out).unwrap(), &plain[..]);
    let back = rtp_with_extension(2, 0xb);
    let (_, dest, mut out) = net.send(2, B, &b.protect(&back)).unwrap();
    assert_eq!(dest, addr(A));
    assert_eq!(&out[20..22], &[0xC0, 0xDE], "cryptex toward A");
    assert_ne!(&out[12..20], &back[12..20], "CSRCs encrypted");
    assert_eq!(a.recv.unprotect_rtp(&mut out).unwrap(), &back[..]);

    // Bridge: the gateway gets the RTP as A built it, extension and CSRCs in clear.
    let mut net = Net::new();
    let mut a = Endpoint::new(cryptex(7), cryptex(8));
    net.engine
        .create_call(
            CallSpec {
                mode: OPEN_BRIDGE,
                legs: [
                    leg(1, Some(A), a.security()),
                    leg(2, Some(B), Security::Plain),
                ],
            },
            net.now,
        )
        .unwrap();
    let (_, dest, out) = net.send(1, A, &a.protect(&plain)).unwrap();
    assert_eq!((dest, &out), (addr(B), &plain));
}
