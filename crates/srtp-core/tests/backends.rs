//! Every SHA-1 backend against the portable one, packet by packet and in batches: the same
//! bytes out, the same verdicts, the same state afterwards. `scripts/test.sh` runs the whole
//! srtp-core suite (the RFC and libsrtp vectors included) once more per backend, through
//! `SRTP_CORE_BACKEND=<name>` and the `portable` feature.

use srtp_core::{
    Backend, BatchPacket, Error, MasterKey, Mki, Policy, Profile, Session, MAX_TRAILER_LEN,
};

/// SplitMix64: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PROFILES: [Profile; 5] = [
    Profile::Aes128CmHmacSha1_80,
    Profile::Aes128CmHmacSha1_32,
    Profile::Aes256CmHmacSha1_80,
    Profile::NullHmacSha1_80,
    Profile::AeadAes128Gcm,
];

fn policy(profile: Profile, mki: bool) -> Policy {
    let keys: Vec<MasterKey> = (1..=2u8)
        .map(|i| {
            let key = vec![i.wrapping_mul(17); profile.master_key_len()];
            let salt = vec![i.wrapping_mul(29); profile.master_salt_len()];
            let k = MasterKey::new(&key, &salt).expect("key sizes");
            if mki {
                k.with_mki(Mki::new(u32::from(i), 2).expect("mki"))
            } else {
                k
            }
        })
        .take(if mki { 2 } else { 1 })
        .collect();
    Policy::with_keys(profile, keys)
}

fn session(profile: Profile, mki: bool, backend: Backend) -> Session {
    let mut s = Session::new(&policy(profile, mki)).expect("policy");
    s.set_backend(backend).expect("supported backend");
    assert_eq!(s.backend(), backend);
    s
}

/// An RTP packet of `len` bytes (at least 12).
fn rtp(rng: &mut Rng, len: usize, ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; len + MAX_TRAILER_LEN];
    p[0] = 0x80;
    p[1] = 0;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for b in &mut p[12..len] {
        *b = rng.next() as u8;
    }
    p
}

/// Runs `f` over `bufs` as one batch and returns each packet's length and result.
fn run_batch(
    bufs: &mut [Vec<u8>],
    lens: &[usize],
    f: impl FnOnce(&mut [BatchPacket<'_>]),
) -> Vec<(usize, Result<(), Error>)> {
    let mut batch: Vec<BatchPacket<'_>> = bufs
        .iter_mut()
        .zip(lens)
        .map(|(b, &n)| BatchPacket::new(b, n))
        .collect();
    f(&mut batch);
    batch.iter().map(|p| (p.len, p.result)).collect()
}

#[test]
fn every_length_from_12_to_1500_matches_portable() {
    for profile in PROFILES {
        let mut rng = Rng(0xbac0 + profile as u64);
        let mut reference = session(profile, false, Backend::Portable);
        let mut others: Vec<(Session, Session)> = Backend::supported()
            .map(|b| (session(profile, false, b), session(profile, false, b)))
            .collect();
        for (i, len) in (12..=1500).enumerate() {
            let plain = rtp(&mut rng, len, 0x1234, i as u16);
            let mut want = plain.clone();
            let n = reference.protect_rtp(&mut want, len).expect("protect");
            for (tx, rx) in &mut others {
                let mut got = plain.clone();
                assert_eq!(tx.protect_rtp(&mut got, len), Ok(n));
                assert_eq!(
                    got[..n],
                    want[..n],
                    "{profile} {:?} len {len}",
                    tx.backend()
                );
                let back = rx.unprotect_rtp(&mut got[..n]).expect("unprotect");
                assert_eq!(back, &plain[..len]);
            }
        }
    }
}

/// One sender's stream of packets with gaps, a sequence-number wrap and three SSRCs; then
/// received in batches of every size from 1 to 64 with forgeries, replays (inside one batch
/// and across batches), truncations, unknown MKIs and reordering mixed in.
#[test]
fn batches_of_every_size_match_packet_by_packet() {
    for profile in PROFILES {
        for mki in [false, true] {
            for backend in Backend::supported() {
                check_batches(profile, mki, backend);
            }
        }
    }
}

fn check_batches(profile: Profile, mki: bool, backend: Backend) {
    let ctx = format!("{profile} mki={mki} {backend:?}");
    let mut rng = Rng(0x5a17 ^ (profile as u64) << 8 ^ u64::from(mki));
    let mut tx_ref = session(profile, mki, Backend::Portable);
    let mut tx = session(profile, mki, backend);
    let mut rx_ref = session(profile, mki, Backend::Portable);
    let mut rx = session(profile, mki, backend);
    let ssrcs = [0x1111_1111u32, 0x2222_2222, 0x3333_3333];
    let mut seqs = [65_000u16, 7, 30_000];
    let mut sent: Vec<(Vec<u8>, usize)> = Vec::new();

    for size in 1..=64usize {
        // Protect: the batch against packet by packet.
        let mut bufs = Vec::new();
        let mut lens = Vec::new();
        for _ in 0..size {
            let s = rng.below(3) as usize;
            seqs[s] = seqs[s].wrapping_add(1 + (rng.below(10) == 0) as u16 * 3);
            let len = if rng.below(4) == 0 {
                12 + rng.below(1489) as usize
            } else {
                172
            };
            bufs.push(rtp(&mut rng, len, ssrcs[s], seqs[s]));
            lens.push(len);
        }
        if size % 7 == 0 {
            // The same index twice: refused the second time, in both.
            bufs.push(bufs[0].clone());
            lens.push(lens[0]);
        }
        if size % 5 == 0 && mki {
            let sender = Mki::new(1 + (size % 2) as u32, 2).expect("mki");
            tx_ref.select_sender_key(sender).expect("key");
            tx.select_sender_key(sender).expect("key");
        }
        let mut want_bufs = bufs.clone();
        let want: Vec<(usize, Result<(), Error>)> = want_bufs
            .iter_mut()
            .zip(&lens)
            .map(|(b, &n)| match tx_ref.protect_rtp(b, n) {
                Ok(m) => (m, Ok(())),
                Err(e) => (n, Err(e)),
            })
            .collect();
        let got = run_batch(&mut bufs, &lens, |b| tx.protect_rtp_batch(b));
        assert_eq!(got, want, "{ctx} protect, batch of {size}");
        for ((g, w), (n, r)) in bufs.iter().zip(&want_bufs).zip(&want) {
            if r.is_ok() {
                assert_eq!(g[..*n], w[..*n], "{ctx} protect bytes, batch of {size}");
                sent.push((g.clone(), *n));
            }
        }
    }

    // Receive everything in batches of every size, with hostile packets mixed in.
    let mut at = 0;
    let mut size = 1;
    while at < sent.len() {
        let end = (at + size).min(sent.len());
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        let mut lens = Vec::new();
        for (b, n) in &sent[at..end] {
            let mut b = b.clone();
            let mut n = *n;
            match rng.below(16) {
                0 => b[rng.below(n as u64) as usize] ^= 1 << rng.below(8), // forged
                1 => n = rng.below(n as u64) as usize,                     // truncated
                2 if mki => b[n - profile.rtp_tag_len() - 1] ^= 0x80,      // unknown MKI
                3 if !bufs.is_empty() => {
                    // a replay of a packet earlier in this batch
                    let i = rng.below(bufs.len() as u64) as usize;
                    b = bufs[i].clone();
                    n = lens[i];
                }
                4 if at > 0 => {
                    // a replay from an earlier batch
                    let (old, m) = &sent[rng.below(at as u64) as usize];
                    b = old.clone();
                    n = *m;
                }
                _ => {}
            }
            bufs.push(b);
            lens.push(n);
        }
        if rng.below(3) == 0 && bufs.len() > 2 {
            bufs.swap(0, 1); // reordered
            lens.swap(0, 1);
        }
        let mut want_bufs = bufs.clone();
        let want: Vec<(usize, Result<(), Error>)> = want_bufs
            .iter_mut()
            .zip(&lens)
            .map(|(b, &n)| match rx_ref.unprotect_rtp(&mut b[..n]) {
                Ok(p) => (p.len(), Ok(())),
                Err(e) => (n, Err(e)),
            })
            .collect();
        let got = run_batch(&mut bufs, &lens, |b| rx.unprotect_rtp_batch(b));
        assert_eq!(got, want, "{ctx} unprotect, batch of {size} at {at}");
        for (g, w) in bufs.iter().zip(&want_bufs) {
            assert_eq!(g, w, "{ctx} unprotect bytes, batch of {size} at {at}");
        }
        at = end;
        size = size % 64 + 1;
    }
    for ssrc in ssrcs {
        assert_eq!(rx.receive_roc(ssrc), rx_ref.receive_roc(ssrc), "{ctx}");
        assert_eq!(tx.send_roc(ssrc), tx_ref.send_roc(ssrc), "{ctx}");
    }
    assert!(
        rx.receive_roc(ssrcs[0]).is_some_and(|(roc, _)| roc >= 1),
        "{ctx}: the first stream wrapped"
    );
}

#[test]
fn unsupported_backends_are_refused() {
    let profile = Profile::Aes128CmHmacSha1_80;
    let mut s = Session::new(&policy(profile, false)).expect("policy");
    assert_eq!(s.backend(), Backend::detect());
    for b in Backend::ALL {
        match s.set_backend(b) {
            Ok(()) => assert!(b.is_supported()),
            Err(e) => {
                assert!(!b.is_supported());
                assert!(e.to_string().contains(b.name()), "{e}");
            }
        }
    }
}

/// An RTP packet with two CSRCs and a one-word header extension (a 24-byte header), so that a
/// wrong header length anywhere in the batch path would show.
fn long_header_rtp(rng: &mut Rng, payload: usize, ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x92, 96]; // V=2, X=1, CC=2
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend(
        [0x0101_0101u32, 0x0202_0202]
            .iter()
            .flat_map(|c| c.to_be_bytes()),
    );
    p.extend([0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // RFC 8285 one-byte, one element
    p.extend((0..payload).map(|_| rng.next() as u8));
    let len = p.len();
    p.resize(len + MAX_TRAILER_LEN, 0);
    p
}

/// Batches where the receiver must recover the rollover counter (the sender starts at ROC 1,
/// the receiver knows nothing), where sequence numbers jump by half the space so that one
/// packet of a batch changes the estimate for the next, with long headers; compared with the
/// portable backend packet by packet, state included.
#[test]
fn batches_with_recovery_and_jumps_match_packet_by_packet() {
    let ssrc = 0x5eed_0001;
    for profile in [Profile::Aes128CmHmacSha1_80, Profile::NullHmacSha1_32] {
        for backend in Backend::supported() {
            let ctx = format!("{profile} {backend:?}");
            let mut rng = Rng(0xace ^ profile as u64);
            let mut tx = session(profile, false, Backend::Portable);
            tx.set_send_state(ssrc, 1, 65_000, 0);
            let mut wire = Vec::new();
            let mut seq = 65_000u16;
            for i in 0..200u32 {
                if i == 120 {
                    // The receiver misses a whole cycle: the sender is one rollover ahead.
                    let (roc, last) = tx.send_roc(ssrc).expect("stream");
                    tx.set_send_state(ssrc, roc + 1, last, 0);
                }
                seq = seq.wrapping_add(if i % 37 == 36 { 0x7ff0 } else { 1 });
                let payload = 20 + rng.below(300) as usize;
                let mut p = long_header_rtp(&mut rng, payload, ssrc, seq);
                let n = tx.protect_rtp(&mut p, 24 + payload).expect("protect");
                p.truncate(n);
                if i % 11 == 5 {
                    let at = rng.below(n as u64) as usize;
                    p[at] ^= 0x20; // forged
                }
                wire.push(p);
            }
            let mut rx_ref = session(profile, false, Backend::Portable);
            let mut rx = session(profile, false, backend);
            // The first batch is large, so its first packet (ROC 1 to a receiver that knows
            // nothing) is recovered inside a batch; sizes then cycle through 1 to 9.
            let mut at = 0;
            let mut size = 8;
            while at < wire.len() {
                let end = (at + size).min(wire.len());
                let mut want_bufs = wire[at..end].to_vec();
                let want: Vec<(usize, Result<(), Error>)> = want_bufs
                    .iter_mut()
                    .map(|b| {
                        let n = b.len();
                        match rx_ref.unprotect_rtp(b) {
                            Ok(p) => (p.len(), Ok(())),
                            Err(e) => (n, Err(e)),
                        }
                    })
                    .collect();
                let mut bufs = wire[at..end].to_vec();
                let lens: Vec<usize> = bufs.iter().map(Vec::len).collect();
                let got = run_batch(&mut bufs, &lens, |b| rx.unprotect_rtp_batch(b));
                assert_eq!(got, want, "{ctx}: batch of {size} at {at}");
                assert_eq!(bufs, want_bufs, "{ctx}: bytes, batch of {size} at {at}");
                at = end;
                size = size % 9 + 1;
            }
            assert_eq!(rx.receive_roc(ssrc), rx_ref.receive_roc(ssrc), "{ctx}");
            assert_eq!(rx.key_usage(), rx_ref.key_usage(), "{ctx}");
            assert_eq!(rx.receive_streams(), rx_ref.receive_streams(), "{ctx}");
            let (roc, _) = rx.receive_roc(ssrc).expect("stream");
            assert!(
                roc >= 2,
                "{ctx}: recovered ROC 1 and followed the jumps, got {roc}"
            );
        }
    }
}
