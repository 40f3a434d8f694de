//! Protect and unprotect per profile and packet size: srtp-core, libsrtp2 and webrtc-srtp in
//! the same run, on the same packets.
//!
//! `cargo bench -p srtp-benches --bench srtp` (add a filter such as `AES_CM_128_HMAC_SHA1_80`
//! to run fewer).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use srtp_benches::{peers, rtcp_packet, rtp_packet, timed_unprotect, PROFILES};
use srtp_core::MAX_TRAILER_LEN;

/// G.711 20 ms (12 + 160 bytes) and a video packet.
const RTP_SIZES: [usize; 2] = [172, 1212];
const RTCP_SIZE: usize = 80;

fn bench(c: &mut Criterion) {
    for profile in PROFILES {
        for len in RTP_SIZES {
            let mut g = c.benchmark_group(format!("protect/{profile}/{len}"));
            g.throughput(Throughput::Bytes(len as u64));
            for mut peer in peers(profile) {
                let mut buf = vec![0u8; len + MAX_TRAILER_LEN];
                rtp_packet(&mut buf, len, 0);
                let mut seq = 0u16;
                g.bench_function(BenchmarkId::from_parameter(peer.name()), |b| {
                    b.iter(|| {
                        seq = seq.wrapping_add(1);
                        buf[2..4].copy_from_slice(&seq.to_be_bytes());
                        peer.protect(&mut buf, len)
                    })
                });
            }
            g.finish();

            let mut g = c.benchmark_group(format!("unprotect/{profile}/{len}"));
            g.throughput(Throughput::Bytes(len as u64));
            for mut peer in peers(profile) {
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
