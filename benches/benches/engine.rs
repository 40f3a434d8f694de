//! The relay engine's own work per packet, with no sockets: `Engine::handle` on 172-byte
//! packets already in memory, for each mode. The relay process adds the kernel's cost per
//! datagram (receive, wake-up, send) on top; `benches/relay-vs-rtpengine.sh` measures that
//! whole.
//!
//! `cargo bench -p srtp-benches --bench engine`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use srtp_core::{MasterKey, Policy, Profile, Session, MAX_TRAILER_LEN};
use srtp_relay::engine::{
    CallSpec, EncryptionLevel, Engine, EngineConfig, LegSpec, Mode, Security, SocketId, SrtpMode,
    TAIL_ROOM,
};

const CLIENT: &str = "127.0.0.1:5000";
const GATEWAY: &str = "127.0.0.1:6000";
/// Packets prepared per timed run: each SRTP packet can be accepted once only.
const CHUNK: usize = 256;

fn policy(profile: Profile, fill: u8) -> Policy {
    let material = vec![fill; profile.key_material_len()];
    Policy::new(
        profile,
        MasterKey::from_key_material(profile, &material).unwrap(),
    )
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend((0..160).map(|i| i as u8));
    p
}

/// A call of `mode` whose leg 0 (socket 1) receives from the client with `inbound` (None:
/// plain RTP) and whose leg 1 (socket 2) sends to the gateway with `outbound`.
struct Case {
    name: &'static str,
    mode: Mode,
    inbound: Option<Profile>,
    outbound: Option<Profile>,
}

fn leg(socket: u32, remote: &str, security: Security) -> LegSpec {
    let mut l = LegSpec::new(SocketId(socket), security);
    l.remote = Some(remote.parse().unwrap());
    l
}

fn security(profile: Option<Profile>, fill: u8) -> Security {
    match profile {
        None => Security::Plain,
        Some(p) => Security::Srtp {
            inbound: policy(p, fill),
            outbound: policy(p, fill + 1),
        },
    }
}

fn bench(c: &mut Criterion) {
    let cases = [
        Case {
            name: "pass-through/plain",
            mode: Mode::PassThrough { verify: false },
            inbound: None,
            outbound: None,
        },
        Case {
            name: "pass-through/verify/AES_CM_128_HMAC_SHA1_80",
            mode: Mode::PassThrough { verify: true },
            inbound: Some(Profile::Aes128CmHmacSha1_80),
            outbound: Some(Profile::Aes128CmHmacSha1_80),
        },
        Case {
            name: "bridge/srtp-to-rtp/AES_CM_128_HMAC_SHA1_80",
            mode: Mode::Bridge {
                level: EncryptionLevel::SupportEncryption,
                gateway: SrtpMode::NotSupported,
                gateway_tls: true,
            },
            inbound: Some(Profile::Aes128CmHmacSha1_80),
            outbound: None,
        },
        Case {
            name: "transcrypt/AES_CM_128_HMAC_SHA1_80-to-AEAD_AES_128_GCM",
            mode: Mode::Transcrypt,
            inbound: Some(Profile::Aes128CmHmacSha1_80),
            outbound: Some(Profile::AeadAes128Gcm),
        },
    ];
    let mut g = c.benchmark_group("engine/handle/172");
    g.throughput(Throughput::Elements(1));
    for case in cases {
        let now = Instant::now();
        let mut engine = Engine::new(EngineConfig::default(), now);
        let spec = CallSpec {
            mode: case.mode,
            legs: [
                leg(1, CLIENT, security(case.inbound, 1)),
                leg(2, GATEWAY, security(case.outbound, 3)),
            ],
        };
        engine.create_call(spec, now).unwrap();
        // The client's sender: it protects with what the relay's leg 0 takes in.
        let mut client = case.inbound.map(|p| Session::new(&policy(p, 1)).unwrap());
        let from: SocketAddr = CLIENT.parse().unwrap();
        let mut seq = 0u16;
        let mut bufs = vec![vec![0u8; 172 + MAX_TRAILER_LEN + TAIL_ROOM]; CHUNK];
        let mut lens = vec![0usize; CHUNK];
        g.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(CHUNK);
                    for (buf, len) in bufs.iter_mut().zip(&mut lens).take(n) {
                        seq = seq.wrapping_add(1);
                        let plain = rtp(seq);
                        buf[..plain.len()].copy_from_slice(&plain);
                        *len = match &mut client {
                            Some(s) => s.protect_rtp(buf, plain.len()).unwrap(),
                            None => plain.len(),
                        };
                    }
                    let start = Instant::now();
                    for (buf, &len) in bufs.iter_mut().zip(&lens).take(n) {
                        let t = engine.handle(now, SocketId(1), from, buf, len);
                        assert!(t.is_some(), "the engine forwards every packet");
                    }
                    total += start.elapsed();
                    left -= n;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
