//! The body of the `relay_engine` fuzz target, kept here so that `cargo test` replays the
//! committed corpus through the same code. Not part of the public API.
//!
//! The input is a stream of datagrams, each `[socket, source, len_hi, len_lo, bytes…]`, fed to
//! an engine holding one call of every mode, through [`Engine::handle_routed`] with a route
//! kept per socket as the io_uring driver keeps them (the source byte's top bit first hands
//! the socket the route of the next socket instead, a stale hint). Whatever arrives, the
//! engine must not panic, a datagram must leave only by the other leg of its own call, an
//! SRTP leg whose keys the relay holds must never move its remote address (random bytes never
//! authenticate), and every datagram must be accounted for as forwarded or dropped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srtp_core::{MasterKey, Policy, Profile};

use crate::engine::{
    CallId, CallSpec, EncryptionLevel, Engine, EngineConfig, LegSpec, Mode, Route, Security,
    SocketId, SrtpMode, TAIL_ROOM,
};

/// The fixture call and leg a socket belongs to (sockets 0 and 11 belong to none).
fn leg_of(socket: SocketId) -> Option<(u32, u32)> {
    match socket.0 {
        1 | 2 => Some((0, 0)),
        3 => Some((0, 1)),
        4 => Some((1, 0)),
        5 | 6 => Some((1, 1)),
        7 => Some((2, 0)),
        8 => Some((2, 1)),
        9 => Some((3, 0)),
        10 => Some((3, 1)),
        _ => None,
    }
}

fn srtp(profile: Profile, fill: u8) -> Security {
    let key = |f: u8| {
        MasterKey::from_key_material(profile, &vec![f; profile.key_material_len()])
            .expect("length fits the profile")
    };
    Security::Srtp {
        inbound: Policy::new(profile, key(fill)),
        outbound: Policy::new(profile, key(fill + 1)),
    }
}

fn leg(socket: u32, rtcp: Option<u32>, remote: u16, security: Security) -> LegSpec {
    let mut l = LegSpec::new(SocketId(socket), security);
    l.rtcp = rtcp.map(SocketId);
    l.remote = Some(SocketAddr::from(([127, 0, 0, 1], remote)));
    l
}

/// Feeds `data` as datagrams to an engine with one call per mode; checks the invariants.
pub fn engine(data: &[u8]) {
    let t0 = Instant::now();
    let mut engine = Engine::new(EngineConfig::default(), t0);
    let calls: Vec<(CallId, [bool; 2])> = [
        (
            Mode::PassThrough { verify: true },
            [
                leg(1, Some(2), 1000, srtp(Profile::Aes128CmHmacSha1_80, 1)),
                leg(3, None, 1002, srtp(Profile::AeadAes128Gcm, 3)),
            ],
            [true, true],
        ),
        (
            Mode::Transcrypt,
            [
                leg(4, None, 1004, srtp(Profile::Aes256CmHmacSha1_32, 5)),
                leg(5, Some(6), 1006, srtp(Profile::NullHmacSha1_80, 7)),
            ],
            [true, true],
        ),
        (
            Mode::Bridge {
                level: EncryptionLevel::SupportEncryption,
                gateway: SrtpMode::Optional,
                gateway_tls: true,
            },
            [
                leg(7, None, 1008, srtp(Profile::Aes128CmHmacSha1_80, 9)),
                leg(8, None, 1010, Security::Plain),
            ],
            [true, false],
        ),
        (
            Mode::PassThrough { verify: false },
            [
                leg(9, None, 1012, Security::Plain),
                leg(10, None, 1014, Security::Plain),
            ],
            [false, false],
        ),
    ]
    .into_iter()
    .map(|(mode, legs, keyed)| {
        let id = engine
            .create_call(CallSpec { mode, legs }, t0)
            .expect("the fixture calls are valid");
        (id, keyed)
    })
    .collect();
    let before: Vec<_> = calls
        .iter()
        .map(|(id, _)| engine.call(*id).expect("created"))
        .collect();

    let mut buf = vec![0u8; 2048 + TAIL_ROOM];
    let mut rest = data;
    let mut now = t0;
    let mut fed = 0u64;
    let mut forwarded = 0u64;
    let mut routes = [Route::default(); 12];
    while rest.len() >= 4 {
        let n = usize::from(rest[0] % 12);
        let socket = SocketId(n as u32);
        if rest[1] & 0x80 != 0 {
            routes[n] = routes[(n + 1) % 12];
        }
        let from = SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(rest[1] % 16)));
        let len = (usize::from(rest[2]) << 8 | usize::from(rest[3]))
            .min(rest.len() - 4)
            .min(2048);
        buf[..len].copy_from_slice(&rest[4..4 + len]);
        rest = &rest[4 + len..];
        now += Duration::from_millis(20);
        engine.prefetch_keys(&routes[n]);
        if let Some(t) = engine.handle_routed(&mut routes[n], now, socket, from, &mut buf, len) {
            assert!(t.len <= len + TAIL_ROOM);
            let (Some((call, leg)), Some((out_call, out_leg))) = (leg_of(socket), leg_of(t.socket))
            else {
                panic!("socket {socket:?} sent out on {:?}, of no call", t.socket);
            };
            assert_eq!(
                (out_call, out_leg),
                (call, 1 - leg),
                "socket {socket:?} sent out on {:?}: not its call's other leg",
                t.socket
            );
            forwarded += 1;
        }
        fed += 1;
        engine.handle_timeout(now);
    }
    for ((id, keyed), old) in calls.iter().zip(&before) {
        let Some(info) = engine.call(*id) else {
            continue; // ended by inactivity: fine
        };
        for ((now, then), keyed) in info.legs.iter().zip(&old.legs).zip(keyed) {
            if *keyed {
                assert_eq!(
                    now.remote_rtp, then.remote_rtp,
                    "an unauthenticated packet moved an SRTP leg"
                );
            }
        }
    }
    let t = engine.totals();
    assert_eq!(
        t.packets_in,
        fed - engine.unrouted(),
        "every routed datagram is counted on its leg"
    );
    assert_eq!(
        t.packets_in,
        forwarded + t.drops.total(),
        "every datagram is forwarded or dropped with a reason"
    );
}
