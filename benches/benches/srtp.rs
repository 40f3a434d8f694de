//! Protect and unprotect per profile and packet size: srtp-core, libsrtp2 and webrtc-srtp in
//! the same run, on the same packets.
//!
//! `cargo bench -p srtp-benches --bench srtp` (add a filter such as `AES_CM_128_HMAC_SHA1_80`
//! to run fewer).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use srtp_benches::{peers, rtcp_packet, rtp_packet, Peer};
use srtp_core::{Profile, MAX_TRAILER_LEN};

const PROFILES: [Profile; 6] = [
    Profile::Aes128CmHmacSha1_80,
    Profile::Aes128CmHmacSha1_32,
    Profile::Aes256CmHmacSha1_80,
    Profile::AeadAes128Gcm,
    Profile::AeadAes256Gcm,
    Profile::NullHmacSha1_80,
];

/// G.711 20 ms (12 + 160 bytes) and a video packet.
const RTP_SIZES: [usize; 2] = [172, 1212];
const RTCP_SIZE: usize = 80;
/// Packets protected ahead of each timed unprotect run.
const CHUNK: usize = 64;

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

/// Times `iters` unprotects: packets are protected in chunks outside the timed region, with
/// ever increasing sequence numbers (and SRTCP indices), so no replay check trips.
fn timed_unprotect(
    peer: &mut dyn Peer,
    len: usize,
    seq: &mut u16,
    iters: u64,
    rtcp: bool,
) -> Duration {
    let mut bufs = vec![vec![0u8; len + MAX_TRAILER_LEN]; CHUNK];
    let mut lens = vec![0usize; CHUNK];
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(CHUNK);
        for (buf, l) in bufs.iter_mut().zip(&mut lens).take(n) {
            *seq = seq.wrapping_add(1);
            if rtcp {
                rtcp_packet(buf, len);
            } else {
                rtp_packet(buf, len, *seq);
            }
            *l = peer.protect_into(buf, len, rtcp);
        }
        let start = Instant::now();
        for (buf, &l) in bufs.iter_mut().zip(&lens).take(n) {
            let out = if rtcp {
                peer.unprotect_rtcp(&mut buf[..l])
            } else {
                peer.unprotect(&mut buf[..l])
            };
            std::hint::black_box(out);
        }
        total += start.elapsed();
        left -= n;
    }
    total
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
