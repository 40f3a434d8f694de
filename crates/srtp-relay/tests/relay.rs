//! The relay on real sockets, on 127.0.0.1: every mode end to end with endpoints that are
//! plain UDP sockets, plus forged packets, replays, spoofed sources, re-key, remote change,
//! rtcp-mux on one leg only and the inactivity timeout.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use srtp_core::{MasterKey, Policy, Profile, Session, MAX_TRAILER_LEN};
use srtp_relay::engine::{
    EncryptionLevel, EngineConfig, Latching, LegUpdate, Mode, Security, SrtpMode,
};
use srtp_relay::io::{
    CallRequest, CreatedCall, IoDriver, LegRequest, Relay, RelayConfig, RelayError,
};

/// A relay on `ports` whose calls end after `inactivity` without media on a leg (the
/// default 60 s, unless a test is about that timeout).
fn relay(ports: std::ops::RangeInclusive<u16>, inactivity: Duration) -> Relay {
    Relay::start(RelayConfig {
        ports,
        workers: 2,
        engine: EngineConfig {
            inactivity,
            sweep_interval: Duration::from_millis(100),
            ..EngineConfig::default()
        },
        ..RelayConfig::default()
    })
    .unwrap()
}

/// How long a receive that must succeed may take: long, for a loaded machine.
const ARRIVES: Duration = Duration::from_secs(5);
/// How long a receive that must not succeed waits.
const NOTHING: Duration = Duration::from_millis(500);

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(ARRIVES)).unwrap();
    s
}

fn recv(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

/// Whether nothing arrives at `s` for [`NOTHING`].
fn nothing(s: &UdpSocket) -> bool {
    s.set_read_timeout(Some(NOTHING)).unwrap();
    let none = recv(s).is_none();
    s.set_read_timeout(Some(ARRIVES)).unwrap();
    none
}

fn key(p: Profile, fill: u8) -> MasterKey {
    MasterKey::from_key_material(p, &vec![fill; p.key_material_len()]).unwrap()
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend((0..160).map(|i| i as u8 ^ seq as u8));
    p
}

fn protect(s: &mut Session, plain: &[u8], rtcp: bool) -> Vec<u8> {
    let mut b = plain.to_vec();
    b.resize(plain.len() + MAX_TRAILER_LEN, 0);
    let n = if rtcp {
        s.protect_rtcp(&mut b, plain.len()).unwrap()
    } else {
        s.protect_rtp(&mut b, plain.len()).unwrap()
    };
    b.truncate(n);
    b
}

/// An SRTP endpoint: its socket, the session it sends with and the one it receives with.
struct Peer {
    sock: UdpSocket,
    tx: Session,
    rx: Session,
    send_policy: Policy,
    recv_policy: Policy,
}

impl Peer {
    fn new(profile: Profile, fill: u8) -> Self {
        let send_policy = Policy::new(profile, key(profile, fill));
        let recv_policy = Policy::new(profile, key(profile, fill + 1));
        Self {
            sock: socket(),
            tx: Session::new(&send_policy).unwrap(),
            rx: Session::new(&recv_policy).unwrap(),
            send_policy,
            recv_policy,
        }
    }

    fn security(&self) -> Security {
        Security::Srtp {
            inbound: self.send_policy.clone(),
            outbound: self.recv_policy.clone(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
}

fn leg(security: Security, remote: Option<SocketAddr>, rtcp_mux: bool) -> LegRequest {
    let mut l = LegRequest::new(security);
    l.remote = remote;
    l.rtcp_mux = rtcp_mux;
    l
}

/// A plain pass-through call (no keys) whose leg 1 sends to `to`; leg 0 latches.
fn plain_pass_through(relay: &Relay, to: SocketAddr, mux_out: bool) -> CreatedCall {
    relay
        .create_call(CallRequest {
            mode: Mode::PassThrough { verify: false },
            legs: [
                leg(Security::Plain, None, true),
                leg(Security::Plain, Some(to), mux_out),
            ],
        })
        .unwrap()
}

/// A bridge call: `client` (SRTP, rtcp-mux) on leg 0, the plain gateway leg 1 as given.
fn bridge(relay: &Relay, client: &Peer, gateway_leg: LegRequest) -> CreatedCall {
    relay
        .create_call(CallRequest {
            mode: Mode::Bridge {
                level: EncryptionLevel::SupportEncryption,
                gateway: SrtpMode::NotSupported,
                gateway_tls: false,
            },
            legs: [
                leg(client.security(), Some(client.addr()), true),
                gateway_leg,
            ],
        })
        .unwrap()
}

/// Each I/O driver with its own port range (base .. base + 99), for tests that run on both.
fn drivers(base: u16) -> [(IoDriver, std::ops::RangeInclusive<u16>); 2] {
    [
        (IoDriver::Epoll, base..=base + 99),
        (IoDriver::Uring, base + 100..=base + 199),
    ]
}

/// A relay on `driver`, failing the test if that driver does not start.
fn relay_on(driver: IoDriver, ports: std::ops::RangeInclusive<u16>, workers: usize) -> Relay {
    Relay::start(RelayConfig {
        ports,
        workers,
        io: driver,
        ..RelayConfig::default()
    })
    .unwrap_or_else(|e| panic!("{driver:?}: {e}"))
}

#[test]
fn transcrypt_end_to_end_with_forgery_replay_spoof_and_rekey() {
    let relay = relay(41000..=41099, Duration::from_secs(60));
    let mut a = Peer::new(Profile::Aes128CmHmacSha1_80, 1);
    let mut b = Peer::new(Profile::AeadAes128Gcm, 10);
    let call = relay
        .create_call(CallRequest {
            mode: Mode::Transcrypt,
            legs: [
                leg(a.security(), Some(a.addr()), true),
                leg(b.security(), Some(b.addr()), false),
            ],
        })
        .unwrap();
    let [la, lb] = call.legs;
    assert!(la.rtcp.is_none() && lb.rtcp == Some(SocketAddr::new(lb.rtp.ip(), lb.rtp.port() + 1)));

    for seq in 0..20 {
        let plain = rtp(seq, 0xaaaa);
        a.sock
            .send_to(&protect(&mut a.tx, &plain, false), la.rtp)
            .unwrap();
        let mut got = recv(&b.sock).expect("forwarded");
        assert_eq!(b.rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);
    }
    // b → a, RTP and RTCP (b's RTCP port is separate, a's is muxed).
    let plain = rtp(1, 0xbbbb);
    b.sock
        .send_to(&protect(&mut b.tx, &plain, false), lb.rtp)
        .unwrap();
    let mut got = recv(&a.sock).unwrap();
    assert_eq!(a.rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0xbb, 0xbb];
    let b_rtcp = socket(); // b's RTCP comes from another port of b's: latched from authentic SRTCP
    b_rtcp
        .send_to(&protect(&mut b.tx, &rr, true), lb.rtcp.unwrap())
        .unwrap();
    let mut got = recv(&a.sock).unwrap();
    assert_eq!(a.rx.unprotect_rtcp(&mut got).unwrap(), &rr[..]);

    // A forged packet, a replay and a spoofed source: none is forwarded, each is counted.
    let genuine = protect(&mut a.tx, &rtp(100, 0xaaaa), false);
    let mut forged = genuine.clone();
    forged[30] ^= 1;
    let evil = socket();
    evil.send_to(&forged, la.rtp).unwrap();
    a.sock.send_to(&genuine, la.rtp).unwrap();
    assert!(recv(&b.sock).is_some());
    a.sock.send_to(&genuine, la.rtp).unwrap(); // replay
    evil.send_to(&genuine, la.rtp).unwrap(); // replay from a spoofed source
    assert!(nothing(&b.sock));
    // The worker may still be on the last datagrams when asked: the counters settle.
    let end = std::time::Instant::now() + ARRIVES;
    let info = loop {
        let info = relay.call(call.id).unwrap();
        let drops = info.legs[0].stats.counters.drops;
        if (drops.auth, drops.replay) == (1, 2) || std::time::Instant::now() > end {
            break info;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let drops = info.legs[0].stats.counters.drops;
    assert_eq!((drops.auth, drops.replay), (1, 2));
    assert_eq!(
        info.legs[0].remote_rtp,
        Some(a.addr()),
        "forgeries never move the media"
    );

    // Re-key a's direction; the stream continues.
    let fresh = key(Profile::Aes128CmHmacSha1_80, 77);
    relay
        .update_call(
            call.id,
            0,
            LegUpdate {
                inbound_keys: Some(vec![fresh.clone()]),
                ..Default::default()
            },
        )
        .unwrap();
    a.tx.rekey(&[fresh]).unwrap();
    let plain = rtp(101, 0xaaaa);
    a.sock
        .send_to(&protect(&mut a.tx, &plain, false), la.rtp)
        .unwrap();
    let mut got = recv(&b.sock).unwrap();
    assert_eq!(b.rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);

    // b moves (a re-INVITE gives its new address).
    let b2 = socket();
    relay
        .update_call(
            call.id,
            1,
            LegUpdate {
                remote: Some(b2.local_addr().unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
    a.sock
        .send_to(&protect(&mut a.tx, &rtp(102, 0xaaaa), false), la.rtp)
        .unwrap();
    assert!(recv(&b2).is_some());

    let stats = relay.delete_call(call.id).unwrap();
    assert!(stats[0].counters.packets_in >= 25);
    assert!(matches!(
        relay.call(call.id),
        Err(RelayError::UnknownCall(_))
    ));
    relay.shutdown();
}

#[test]
fn bridge_and_pass_through_on_real_sockets() {
    let relay = relay(41100..=41199, Duration::from_secs(60));
    // Bridge: SRTP client ↔ plain RTP gateway.
    let mut client = Peer::new(Profile::Aes128CmHmacSha1_80, 20);
    let gateway = socket();
    let mut gw_leg = leg(Security::Plain, Some(gateway.local_addr().unwrap()), false);
    gw_leg.latching = Latching::Strict;
    let call = bridge(&relay, &client, gw_leg);
    let plain = rtp(1, 0xc);
    client
        .sock
        .send_to(&protect(&mut client.tx, &plain, false), call.legs[0].rtp)
        .unwrap();
    assert_eq!(recv(&gateway).unwrap(), plain);
    let from_gw = rtp(7, 0xd);
    gateway.send_to(&from_gw, call.legs[1].rtp).unwrap();
    let mut got = recv(&client.sock).unwrap();
    assert_eq!(client.rx.unprotect_rtp(&mut got).unwrap(), &from_gw[..]);
    // A policy the enterprise forbids is refused before any port is used.
    let refused = relay.create_call(CallRequest {
        mode: Mode::Bridge {
            level: EncryptionLevel::RequireEncryption,
            gateway: SrtpMode::NotSupported,
            gateway_tls: true,
        },
        legs: [
            leg(client.security(), None, true),
            leg(Security::Plain, None, false),
        ],
    });
    assert!(matches!(refused, Err(RelayError::Engine(_))));

    // Pass-through without keys: bytes forwarded untouched.
    let (x, y) = (socket(), socket());
    let pt = plain_pass_through(&relay, y.local_addr().unwrap(), true);
    let opaque = protect(&mut client.tx, &rtp(9, 0xe), false);
    x.send_to(&opaque, pt.legs[0].rtp).unwrap();
    assert_eq!(recv(&y).unwrap(), opaque);
    y.send_to(&opaque, pt.legs[1].rtp).unwrap();
    assert_eq!(
        recv(&x).unwrap(),
        opaque,
        "x was latched from its first packet"
    );
    let totals = relay.totals().unwrap();
    assert!(totals.packets_in >= 4 && totals.packets_out >= 4);
    relay.shutdown();
}

#[test]
fn inactivity_ends_calls_and_frees_ports() {
    // Two port pairs only: a call holds one pair per leg. Below the kernel's ephemeral ports
    // (32768 on), which any socket bound to port 0 may take: a range this small must not
    // lose a port to one by chance.
    let relay = relay(31200..=31203, Duration::from_secs(2));
    let make = || {
        relay.create_call(CallRequest {
            mode: Mode::PassThrough { verify: false },
            legs: [
                leg(Security::Plain, None, false),
                leg(Security::Plain, None, false),
            ],
        })
    };
    let call = make().unwrap();
    assert!(matches!(make(), Err(RelayError::PortsExhausted)));
    // Two packets on leg 0 (its remote latches from the first), then silence.
    let x = socket();
    for _ in 0..2 {
        x.send_to(&rtp(1, 0xabc), call.legs[0].rtp).unwrap();
    }
    // Ended 2 s after its creation (leg 1 never had media), at the next sweep; waited for
    // as long as a loaded machine may need.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !relay.calls().is_empty() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(relay.calls().is_empty(), "ended after 2 s of silence");
    assert!(matches!(
        relay.call(call.id),
        Err(RelayError::UnknownCall(_))
    ));
    // Deleting it afterwards returns the statistics it ended with, once.
    let stats = relay.delete_call(call.id).expect("final statistics kept");
    assert_eq!(stats[0].counters.packets_in, 2);
    assert!(matches!(
        relay.delete_call(call.id),
        Err(RelayError::UnknownCall(_))
    ));
    relay.shutdown();
}

/// Both I/O drivers, chosen explicitly (the other tests run on the default, and CI runs the
/// whole suite once more with `SRTP_RELAY_IO=epoll`): datagrams of every size relayed byte
/// for byte, SRTP bridged, an oversize datagram counted as malformed and never relayed, IPv6,
/// and sockets closed and reused as calls come and go. io_uring must start on the machines
/// this runs on (Linux 6.0 or later): a relay that fell back to epoll fails here.
#[test]
fn every_io_driver_relays_the_same() {
    for (driver, ports) in drivers(41400) {
        let relay = relay_on(driver, ports, 2);
        assert_eq!(relay.io_driver(), driver);
        for round in 0..3u8 {
            let (x, y) = (socket(), socket());
            let call = plain_pass_through(&relay, y.local_addr().unwrap(), round % 2 == 0);
            for len in (12..=2048).step_by(97).chain([2048]) {
                let mut p = rtp(len as u16, 0xabc);
                p.resize(len, round ^ len as u8);
                x.send_to(&p, call.legs[0].rtp).unwrap();
                let mut buf = [0u8; 4096];
                let n = y
                    .recv(&mut buf)
                    .unwrap_or_else(|e| panic!("{driver:?} {len}: {e}"));
                assert_eq!(&buf[..n], &p[..], "{driver:?}, {len} bytes");
            }
            // Longer than any datagram relayed: dropped as malformed, whatever it holds.
            let mut big = rtp(1, 0xabc);
            big.resize(3000, 7);
            x.send_to(&big, call.legs[0].rtp).unwrap();
            x.send_to(&rtp(2, 0xabc), call.legs[0].rtp).unwrap();
            assert_eq!(recv(&y).unwrap(), rtp(2, 0xabc), "{driver:?}");
            let stats = relay.delete_call(call.id).unwrap();
            assert_eq!(stats[0].counters.drops.malformed, 1, "{driver:?}");
        }

        // SRTP bridged to RTP, both ways.
        let mut client = Peer::new(Profile::Aes128CmHmacSha1_80, 40);
        let gateway = socket();
        let gateway_leg = leg(Security::Plain, Some(gateway.local_addr().unwrap()), true);
        let call = bridge(&relay, &client, gateway_leg);
        for seq in 0..50 {
            let plain = rtp(seq, 0x77);
            let wire = protect(&mut client.tx, &plain, false);
            client.sock.send_to(&wire, call.legs[0].rtp).unwrap();
            assert_eq!(recv(&gateway).unwrap(), plain, "{driver:?}");
            gateway.send_to(&plain, call.legs[1].rtp).unwrap();
            let mut got = recv(&client.sock).unwrap();
            assert_eq!(client.rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);
        }
        relay.shutdown();

        // IPv6 on ::1.
        let relay = Relay::start(RelayConfig {
            bind: "::1".parse().unwrap(),
            ports: 41600..=41699,
            workers: 1,
            io: driver,
            ..RelayConfig::default()
        })
        .unwrap();
        let (x, y) = (
            UdpSocket::bind("[::1]:0").unwrap(),
            UdpSocket::bind("[::1]:0").unwrap(),
        );
        y.set_read_timeout(Some(ARRIVES)).unwrap();
        let call = plain_pass_through(&relay, y.local_addr().unwrap(), true);
        x.send_to(&rtp(5, 6), call.legs[0].rtp).unwrap();
        assert_eq!(recv(&y).unwrap(), rtp(5, 6), "{driver:?} over IPv6");
        relay.shutdown();
    }
}

/// Stopping a relay while datagrams pour in: every driver stops (the io_uring one cancels
/// its receives and waits for its sends before freeing the memory the kernel shares; under
/// AddressSanitizer, a leak or a use after free there is reported).
#[test]
fn shutdown_under_load() {
    for (driver, ports) in drivers(41700) {
        let relay = relay_on(driver, ports, 1);
        let (x, y) = (socket(), socket());
        let call = plain_pass_through(&relay, y.local_addr().unwrap(), true);
        let to = call.legs[0].rtp;
        // Relaying before the flood (so the assertion does not depend on scheduling).
        x.send_to(&rtp(0, 0x99), to).unwrap();
        assert!(recv(&y).is_some(), "{driver:?} relays");
        let flood = std::thread::spawn(move || {
            for seq in 0..20_000u16 {
                let _ = x.send_to(&rtp(seq, 0x99), to);
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            relay.shutdown();
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{driver:?}: shutdown hung"));
        flood.join().unwrap();
    }
}

/// A bridge's own RTCP receiver reports reach the client on every driver (on io_uring they
/// go out through the ring: the sockets have no file descriptor of their own there).
#[test]
fn bridge_reports_reach_the_client_on_every_driver() {
    for (driver, ports) in drivers(41900) {
        let relay = Relay::start(RelayConfig {
            ports,
            workers: 1,
            io: driver,
            engine: EngineConfig {
                bridge_rtcp_interval: Duration::from_millis(300),
                sweep_interval: Duration::from_millis(100),
                ..EngineConfig::default()
            },
            ..RelayConfig::default()
        })
        .unwrap();
        let mut client = Peer::new(Profile::Aes128CmHmacSha1_80, 60);
        let gateway = socket();
        let gateway_leg = leg(Security::Plain, Some(gateway.local_addr().unwrap()), true);
        let call = bridge(&relay, &client, gateway_leg);
        let wire = protect(&mut client.tx, &rtp(1, 0x61), false);
        client.sock.send_to(&wire, call.legs[0].rtp).unwrap();
        assert!(recv(&gateway).is_some());
        // Within a few intervals, SRTCP from the bridge's own receiver report.
        let mut reports = 0;
        for _ in 0..6 {
            if let Some(mut got) = recv(&client.sock) {
                let rr = client.rx.unprotect_rtcp(&mut got).unwrap();
                assert_eq!(rr[1], 201, "{driver:?}: a receiver report");
                reports += 1;
            }
        }
        assert!(reports >= 2, "{driver:?}: {reports} reports");
        relay.shutdown();
    }
}
