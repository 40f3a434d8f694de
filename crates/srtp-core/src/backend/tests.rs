//! Every backend against the portable code and the FIPS 180-4 examples.

use super::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn state(&mut self) -> [u32; 5] {
        [(); 5].map(|_| self.next() as u32)
    }
}

/// SHA-1 of a short message with the given backend: padding done here (FIPS 180-4 §5.1.1).
fn sha1(backend: Backend, msg: &[u8]) -> [u8; 20] {
    let mut padded = msg.to_vec();
    padded.push(0x80);
    while padded.len() % BLOCK != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&(msg.len() as u64 * 8).to_be_bytes());
    let mut state = IV;
    backend.compress(&mut state, &padded);
    let mut out = [0u8; 20];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_be_bytes());
    }
    out
}

#[test]
fn fips_examples_on_every_backend() {
    let cases: [(&[u8], &str); 3] = [
        (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
        ),
        (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ];
    for backend in Backend::supported() {
        for (msg, want) in cases {
            assert_eq!(hex::encode(sha1(backend, msg)), want, "{backend:?}");
        }
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            hex::encode(sha1(backend, &million)),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
            "{backend:?}"
        );
    }
}

#[test]
fn every_backend_matches_portable() {
    let mut rng = Rng(0x5eed);
    for blocks in 0..=24 {
        for _ in 0..8 {
            let data = rng.bytes(blocks * BLOCK);
            let start = rng.state();
            let mut want = start;
            portable::compress(&mut want, &data);
            for backend in Backend::supported() {
                let mut got = start;
                backend.compress(&mut got, &data);
                assert_eq!(got, want, "{backend:?}, {blocks} blocks");
            }
        }
    }
}

#[test]
fn lanes_match_one_at_a_time() {
    let mut rng = Rng(0x1a4e5);
    for round in 0..300 {
        let heads: Vec<Vec<u8>> = (0..LANES)
            .map(|_| {
                let n = (rng.next() % 24) as usize;
                rng.bytes(n * BLOCK)
            })
            .collect();
        let tails: Vec<Vec<u8>> = (0..LANES)
            .map(|_| {
                let n = (rng.next() % 3) as usize;
                rng.bytes(n * BLOCK)
            })
            .collect();
        let starts: [[u32; 5]; LANES] = [(); LANES].map(|_| rng.state());
        let mut want = starts;
        for ((s, h), t) in want.iter_mut().zip(&heads).zip(&tails) {
            portable::compress(s, h);
            portable::compress(s, t);
        }
        let heads: [&[u8]; LANES] = core::array::from_fn(|i| heads[i].as_slice());
        let tails: [&[u8]; LANES] = core::array::from_fn(|i| tails[i].as_slice());
        for backend in Backend::supported() {
            let mut got = starts;
            compress_lanes(backend, &mut got, &heads, &tails);
            assert_eq!(got, want, "{backend:?}, round {round}");
        }
    }
}

#[test]
fn names_round_trip_and_detection_is_supported() {
    for b in Backend::ALL {
        assert_eq!(Backend::from_name(b.name()), Some(b));
    }
    assert!(Backend::detect().is_supported());
    assert!(Backend::Portable.is_supported());
    if cfg!(feature = "portable") {
        assert_eq!(Backend::detect(), Backend::Portable);
        assert!(Backend::supported().eq([Backend::Portable]));
    } else if let Ok(name) = std::env::var("SRTP_CORE_BACKEND") {
        // The per-backend runs of scripts/test.sh name only backends this CPU has: a name
        // that selects nothing would silently test the default backend again.
        let b = Backend::from_name(&name).unwrap_or_else(|| panic!("no backend {name:?}"));
        assert!(
            b.is_supported(),
            "SRTP_CORE_BACKEND={name}: this CPU cannot run it"
        );
        assert_eq!(Backend::detect(), b);
    }
}

/// Prints nanoseconds per 64-byte block for each backend, one message and eight lanes, the
/// best of nine interleaved rounds (`cargo test --release -p srtp-core --lib
/// backend::tests::speed -- --ignored --nocapture`). Measures; never asserts a time.
#[test]
#[ignore]
fn speed() {
    use std::time::Instant;
    let data = vec![0x5au8; 16 * BLOCK];
    let backends: Vec<Backend> = Backend::supported().collect();
    let mut best = vec![[f64::MAX; 3]; backends.len()];
    let n = 4_000;
    for _ in 0..9 {
        for (backend, best) in backends.iter().zip(&mut best) {
            let mut s = IV;
            let t = Instant::now();
            for _ in 0..n {
                backend.compress(&mut s, &data);
            }
            let one = t.elapsed().as_nanos() as f64 / (n * 16) as f64;
            let mut states = [IV; LANES];
            let heads = [&data[..]; LANES];
            let none: [&[u8]; LANES] = [&[]; LANES];
            let t = Instant::now();
            for _ in 0..n / 8 {
                compress_lanes(*backend, &mut states, &heads, &none);
            }
            let lanes = t.elapsed().as_nanos() as f64 / (n / 8 * 16 * LANES) as f64;
            let short: [&[u8]; LANES] = [&data[..BLOCK]; LANES];
            let t = Instant::now();
            for _ in 0..n {
                compress_lanes(*backend, &mut states, &short, &none);
            }
            let single = t.elapsed().as_nanos() as f64 / (n * LANES) as f64;
            for (b, x) in best.iter_mut().zip([one, lanes, single]) {
                *b = b.min(x);
            }
            std::hint::black_box((s, states));
        }
    }
    for (backend, [one, lanes, single]) in backends.iter().zip(best) {
        println!(
            "{:>9}: one message {one:.1} ns/block; eight lanes {lanes:.1} ns/block/lane \
             (16 blocks), {single:.1} (1 block)",
            backend.name()
        );
    }
}

/// An HMAC's last steps, the padded inner tail and the outer block built from the inner
/// digest, give the same states on every backend as the portable code's two compressions.
#[test]
fn hmac_finish_matches_portable_on_every_backend() {
    let mut rng = Rng(0x5EED_0FF1_415E);
    for _ in 0..200 {
        for blocks in [1, 2] {
            let (inner, outer) = (rng.state(), rng.state());
            let tail = rng.bytes(blocks * BLOCK);
            let (mut want_inner, mut want_outer) = (inner, outer);
            portable::compress(&mut want_inner, &tail);
            portable::compress(&mut want_outer, &outer_block(&want_inner));
            for backend in Backend::supported() {
                let (mut i, mut o) = (inner, outer);
                backend.hmac_finish(&mut i, &tail, &mut o);
                assert_eq!(
                    (i, o),
                    (want_inner, want_outer),
                    "{backend:?}, {blocks} blocks"
                );
            }
        }
    }
}

/// [`outer_block`] is the 20-byte digest, `0x80`, zeros and the length 672 bits.
#[test]
fn outer_block_layout() {
    let block = outer_block(&[
        0x0102_0304,
        0x0506_0708,
        0x090A_0B0C,
        0x0D0E_0F10,
        0x1112_1314,
    ]);
    let digest: Vec<u8> = (1..=20).collect();
    assert_eq!(&block[..20], &digest[..]);
    assert_eq!(block[20], 0x80);
    assert!(block[21..62].iter().all(|&b| b == 0));
    assert_eq!(&block[62..], &[0x02, 0xA0]);
}
