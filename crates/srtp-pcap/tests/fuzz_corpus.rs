//! Replays the committed corpus of the `pcap_decrypt` fuzz target (`fuzz/corpus/pcap_decrypt/`)
//! through its body, and cuts and corrupts valid captures byte by byte: no input may panic.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Format, Link, Record};
use pcap_file::Endianness;
use srtp_core::sdes::CryptoAttribute;
use srtp_core::{Session, MAX_TRAILER_LEN};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pcap_decrypt")
}

#[test]
fn pcap_decrypt_corpus() {
    let dir = corpus_dir();
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        srtp_pcap::fuzz(&fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

/// A small call under the fuzz target's keys (AES-CM one way, AEAD the other), so that its
/// decrypt path runs on the seeds.
fn seed_records(link: Link, v6: bool) -> Vec<Record> {
    let (a, b): (SocketAddr, SocketAddr) = if v6 {
        ("[::1]:5000".parse().unwrap(), "[::1]:5002".parse().unwrap())
    } else {
        (
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:5002".parse().unwrap(),
        )
    };
    let mut tx = [
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
        "1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
    ]
    .map(|line| {
        let attr: CryptoAttribute = line.parse().unwrap();
        Session::new(&attr.policy().unwrap()).unwrap()
    });
    let mut records = Vec::new();
    for i in 0u16..4 {
        for (dir, (src, dst)) in [(a, b), (b, a)].into_iter().enumerate() {
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&(0xFFFE_u16.wrapping_add(i)).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, dir as u8 + 1]);
            p.extend_from_slice(&[0xFF; 20]);
            let len = p.len();
            p.resize(len + MAX_TRAILER_LEN, 0);
            let n = tx[dir].protect_rtp(&mut p, len).unwrap();
            p.truncate(n);
            let t = Duration::from_millis(20 * u64::from(i));
            records.push(Record::new(t, common::udp_frame(link, src, dst, &p)));
        }
    }
    let mut sr = vec![0x80, 200, 0, 1, 0, 0, 0, 1];
    let len = sr.len();
    sr.resize(len + MAX_TRAILER_LEN, 0);
    let n = tx[0].protect_rtcp(&mut sr, len).unwrap();
    sr.truncate(n);
    records.push(Record::new(
        Duration::from_millis(90),
        common::udp_frame(link, a, b, &sr),
    ));
    records.push(Record::new(
        Duration::from_millis(95),
        common::tcp_frame(link, a, b, b"x"),
    ));
    records
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, link) in Link::ALL.into_iter().enumerate() {
        for format in [Format::Pcap, Format::PcapNg] {
            let e = if i % 2 == 0 {
                Endianness::Little
            } else {
                Endianness::Big
            };
            let bytes = common::write_capture(format, link, e, &seed_records(link, i % 2 == 1));
            let name = format!("seed-{link:?}-{format:?}").to_lowercase();
            seeds.push((format!("{name}-cut"), bytes[..bytes.len() * 2 / 3].to_vec()));
            seeds.push((name, bytes));
        }
    }
    seeds
}

/// Writes the seed corpus; run with `cargo test -p srtp-pcap --test fuzz_corpus -- --ignored`
/// after changing the seeds.
#[test]
#[ignore = "writes fuzz/corpus/pcap_decrypt/"]
fn write_seed_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn the_seeds_decrypt() {
    for (name, bytes) in seeds().into_iter().filter(|(n, _)| !n.ends_with("-cut")) {
        let keys = [
            "AES_CM_128_HMAC_SHA1_80:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
            "AEAD_AES_128_GCM:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==",
        ];
        let config = srtp_pcap::Config {
            mode: srtp_pcap::Mode::Decrypt,
            keys: keys
                .iter()
                .map(|k| srtp_pcap::Key::parse(k).unwrap())
                .collect(),
            filters: vec![],
            ssrcs: vec![],
            failed: srtp_pcap::Failed::Keep,
        };
        let mut engine = srtp_pcap::Engine::new(config).unwrap();
        srtp_pcap::capture::run(&mut engine, &bytes[..], std::io::sink()).unwrap();
        let t = engine.report().totals();
        assert_eq!((t.done, t.failed), (9, 0), "{name}\n{}", engine.report());
    }
}

/// Every prefix of every seed, and every seed with one byte flipped at a time: no panic, and
/// what reads whole writes a capture that reads again (the fuzz body checks that).
#[test]
fn cut_and_corrupted_captures_never_panic() {
    for (_, bytes) in seeds().into_iter().filter(|(n, _)| !n.ends_with("-cut")) {
        for n in (0..bytes.len()).step_by(7) {
            srtp_pcap::fuzz(&bytes[..n]);
        }
        for i in (0..bytes.len()).step_by(11) {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            srtp_pcap::fuzz(&b);
        }
    }
}

/// A poor man's fuzzer for machines without cargo-fuzz: random byte flips, cuts, insertions
/// and length-field-sized splices of the seeds for `SRTP_PCAP_MUTATE_SECS` seconds (default
/// 20). Run with `cargo test -p srtp-pcap --release --test fuzz_corpus -- --ignored mutate`.
#[test]
#[ignore = "runs for a while"]
fn mutate_seeds_at_random() {
    let secs = std::env::var("SRTP_PCAP_MUTATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let seeds = seeds();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut runs = 0u64;
    while std::time::Instant::now() < deadline {
        let (_, seed) = &seeds[next() as usize % seeds.len()];
        let mut b = seed.clone();
        for _ in 0..1 + next() % 4 {
            let at = next() as usize % b.len().max(1);
            match next() % 5 {
                0 => b.truncate(at),
                1 if at < b.len() => b[at] ^= 1 << (next() % 8),
                2 if at < b.len() => b[at] = [0x00, 0xFF, 0x7F, 0x80][next() as usize % 4],
                3 => b.insert(at.min(b.len()), next() as u8),
                _ if at + 4 <= b.len() => {
                    let v = [0u32, 0xFFFF_FFFF, 12, 0x7FFF_FFFF][next() as usize % 4];
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {}
            }
        }
        srtp_pcap::fuzz(&b);
        runs += 1;
    }
    eprintln!("{runs} mutated captures, no panic");
}
