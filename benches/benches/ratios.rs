//! Interleaved comparison: every implementation measured in turn, round after round, in one
//! process, so that noise from the other core hits all of them alike. Prints a Markdown table
//! of median nanoseconds per packet and the median of the per-round ratios srtp-core / peer,
//! one row per srtp-core variant: each SHA-1 backend this CPU supports, packet by packet and,
//! for HMAC-SHA1 profiles, in batches of 8 and 32 (`srtp-core[avx2]x8`). The peers have no
//! batch API; their per-packet time is the reference for every row.
//!
//! `cargo bench -p srtp-benches --bench ratios` (run `scripts/build-libsrtp2-openssl.sh`
//! first to include libsrtp2 on OpenSSL). `BACKENDS=avx2,portable` limits the srtp-core
//! backends; `OPENSSL_ia32cap=':~0x20000000'` hides the SHA extensions from OpenSSL, which
//! with `BACKENDS=avx2` compares the two as on a CPU without them; `PROFILES=AEAD_AES_128_GCM`
//! (comma-separated) limits the profiles. Without `--bench` (as
//! `cargo test` runs it) it does one short round, as a smoke test.

use srtp_benches::{others, timed_protect, timed_unprotect, Core, Peer, PROFILES};
use srtp_core::{Backend, Profile};

/// (operation, packet length, RTCP?)
const CASES: [(&str, usize, bool); 6] = [
    ("protect", 172, false),
    ("unprotect", 172, false),
    ("protect", 1212, false),
    ("unprotect", 1212, false),
    ("protect_rtcp", 80, true),
    ("unprotect_rtcp", 80, true),
];

/// The srtp-core backends to measure: `BACKENDS` (comma-separated names), or every one this
/// CPU supports.
fn backends() -> Vec<Backend> {
    match std::env::var("BACKENDS") {
        Ok(list) => list
            .split(',')
            .map(|n| Backend::from_name(n.trim()).unwrap_or_else(|| panic!("no backend {n}")))
            .filter(|b| b.is_supported())
            .collect(),
        Err(_) => Backend::supported().collect(),
    }
}

/// The srtp-core variants for one profile and case.
fn variants(profile: Profile, rtcp: bool) -> Vec<Core> {
    let mut v = Vec::new();
    if profile.is_aead() {
        // The backend only computes SHA-1: one row for AEAD profiles.
        v.push(Core::new(profile));
        return v;
    }
    for b in backends() {
        v.push(Core::with(profile, b, 1));
        if !rtcp && b.min_lanes().is_some() {
            v.push(Core::with(profile, b, 8));
            v.push(Core::with(profile, b, 32));
        }
    }
    v
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, budget_ns) = if full {
        (15, 4_000_000u64)
    } else {
        (1, 50_000)
    };
    let peer_names: Vec<&str> = others(Profile::Aes128CmHmacSha1_80)
        .iter()
        .map(|p| p.name())
        .collect();
    println!(
        "backends: {}; default here: {}",
        backends()
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", "),
        Backend::detect().name()
    );
    let mut header = String::from("| profile | operation | bytes | srtp-core | ns |");
    let mut rule = String::from("|---|---|---:|---|---:|");
    for n in &peer_names {
        header += &format!(" {n} ns | ratio |");
        rule += "---:|---:|";
    }
    println!("{header}\n{rule}");

    let only = std::env::var("PROFILES").ok();
    let chosen = PROFILES.into_iter().filter(|p| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|n| n == p.to_string()))
    });
    for profile in chosen {
        for (op, len, rtcp) in CASES {
            let mut ps: Vec<Box<dyn Peer>> = variants(profile, rtcp)
                .into_iter()
                .map(|c| Box::new(c) as Box<dyn Peer>)
                .collect();
            let cores = ps.len();
            ps.extend(others(profile));
            let mut seqs = vec![0u16; ps.len()];
            // Packets per measurement: about `budget_ns` of srtp-core work, whole batches.
            let iters = (budget_ns / (len as u64 + 200))
                .max(16)
                .next_multiple_of(64);
            let mut times: Vec<Vec<f64>> = vec![Vec::new(); ps.len()];
            for round in 0..rounds {
                for k in 0..ps.len() {
                    let i = (k + round) % ps.len(); // rotate who goes first
                    let peer: &mut dyn Peer = &mut *ps[i];
                    let d = if op.starts_with("un") {
                        timed_unprotect(peer, len, &mut seqs[i], iters, rtcp)
                    } else {
                        timed_protect(peer, len, &mut seqs[i], iters, rtcp)
                    };
                    times[i].push(d.as_nanos() as f64 / iters as f64);
                }
            }
            for c in 0..cores {
                let core = median(times[c].clone());
                let mut row = format!(
                    "| {profile} | {op} | {len} | {} | {core:.0} |",
                    ps[c].name()
                );
                for name in &peer_names {
                    match ps[cores..].iter().position(|p| p.name() == *name) {
                        Some(i) => {
                            let i = cores + i;
                            let ratios =
                                times[c].iter().zip(&times[i]).map(|(c, p)| c / p).collect();
                            let peer = median(times[i].clone());
                            row += &format!(" {peer:.0} | {:.2} |", median(ratios));
                        }
                        None => row += " — | — |",
                    }
                }
                println!("{row}");
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
