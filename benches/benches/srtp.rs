//! Protect and unprotect per profile and packet size: srtp-core, libsrtp2 and webrtc-srtp in
//! the same run, on the same packets.
//!
//! `cargo bench -p srtp-benches --bench srtp` (add a filter such as `AES_CM_128_HMAC_SHA1_80`
//! to run fewer).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use srtp_benches::{others, rtcp_packet, timed_protect, timed_unprotect, Core, Peer, PROFILES};
use srtp_core::{Backend, Profile, MAX_TRAILER_LEN};

/// G.711 20 ms (12 + 160 bytes) and a video packet.
const RTP_SIZES: [usize; 2] = [172, 1212];
const RTCP_SIZE: usize = 80;

/// srtp-core with every backend this CPU supports, packet by packet and (HMAC-SHA1 profiles,
/// RTP) in batches of 8 and 32; then the peers. Names such as `srtp-core[avx2]x8`.
fn rtp_peers(profile: Profile) -> Vec<Box<dyn Peer>> {
    let mut v: Vec<Box<dyn Peer>> = Vec::new();
    if profile.is_aead() {
        v.push(Box::new(Core::new(profile)));
    } else {
        for b in Backend::supported() {
            v.push(Box::new(Core::with(profile, b, 1)));
            if b.min_lanes().is_some() {
                v.push(Box::new(Core::with(profile, b, 8)));
                v.push(Box::new(Core::with(profile, b, 32)));
            }
        }
    }
    v.extend(others(profile));
    v
}

/// srtp-core with its default backend, then the peers.
fn peers(profile: Profile) -> Vec<Box<dyn Peer>> {
    srtp_benches::peers(profile)
}

fn bench(c: &mut Criterion) {
    for profile in PROFILES {
        for len in RTP_SIZES {
            let mut g = c.benchmark_group(format!("protect/{profile}/{len}"));
            g.throughput(Throughput::Bytes(len as u64));
            for mut peer in rtp_peers(profile) {
                let mut seq = 0u16;
                g.bench_function(BenchmarkId::from_parameter(peer.name()), |b| {
                    b.iter_custom(|iters| timed_protect(&mut *peer, len, &mut seq, iters, false))
                });
            }
            g.finish();

            let mut g = c.benchmark_group(format!("unprotect/{profile}/{len}"));
            g.throughput(Throughput::Bytes(len as u64));
            for mut peer in rtp_peers(profile) {
                let mut seq = 0u16;
                g.bench_function(BenchmarkId::from_parameter(peer.name()), |b| {
                    b.iter_custom(|iters| timed_unprotect(&mut *peer, len, &mut seq, iters, false))
                });
            }
            g.finish();
        }

        let mut g = c.benchmark_group(format!("protect_rtcp/{profile}/{RTCP_SIZE}"));
        for mut peer in peers(profile) {
            let mut buf = vec![0u8; RTCP_SIZE + MAX_TRAILER_LEN];
            g.bench_function(BenchmarkId::from_parameter(peer.name()), |b| {
                b.iter(|| {
                    rtcp_packet(&mut buf, RTCP_SIZE);
                    peer.protect_rtcp(&mut buf, RTCP_SIZE)
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("unprotect_rtcp/{profile}/{RTCP_SIZE}"));
        for mut peer in peers(profile) {
            let mut seq = 0u16;
            g.bench_function(BenchmarkId::from_parameter(peer.name()), |b| {
                b.iter_custom(|iters| timed_unprotect(&mut *peer, RTCP_SIZE, &mut seq, iters, true))
            });
        }
        g.finish();
    }
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
