//! Interleaved comparison: every implementation measured in turn, round after round, in one
//! process, so that noise from the other core hits all of them alike. Prints a Markdown table
//! of median nanoseconds per packet and the median of the per-round ratios srtp-core / peer.
//!
//! `cargo bench -p srtp-benches --bench ratios` (run `scripts/build-libsrtp2-openssl.sh`
//! first to include libsrtp2 on OpenSSL). Without `--bench` (as `cargo test` runs it) it does
//! one short round, as a smoke test.

use srtp_benches::{peers, timed_protect, timed_unprotect, Peer, PROFILES};
use srtp_core::Profile;

/// (operation, packet length, RTCP?)
const CASES: [(&str, usize, bool); 6] = [
    ("protect", 172, false),
    ("unprotect", 172, false),
    ("protect", 1212, false),
    ("unprotect", 1212, false),
    ("protect_rtcp", 80, true),
    ("unprotect_rtcp", 80, true),
];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, budget_ns) = if full {
        (15, 4_000_000u64)
    } else {
        (1, 50_000)
    };
    let peer_names: Vec<&str> = peers(Profile::Aes128CmHmacSha1_80)
        .iter()
        .map(|p| p.name())
        .filter(|n| *n != "srtp-core")
        .collect();
    let mut header = String::from("| profile | operation | bytes | srtp-core ns |");
    let mut rule = String::from("|---|---|---:|---:|");
    for n in &peer_names {
        header += &format!(" {n} ns | ratio |");
        rule += "---:|---:|";
    }
    println!("{header}\n{rule}");

    for profile in PROFILES {
        for (op, len, rtcp) in CASES {
            let mut ps = peers(profile);
            let mut seqs = vec![0u16; ps.len()];
            // Packets per measurement: about `budget_ns` of srtp-core work.
            let iters = (budget_ns / (len as u64 + 200)).max(16);
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
            let core = median(times[0].clone());
            let mut row = format!("| {profile} | {op} | {len} | {core:.0} |");
            for name in &peer_names {
                match ps.iter().position(|p| p.name() == *name) {
                    Some(i) => {
                        let ratios = times[0].iter().zip(&times[i]).map(|(c, p)| c / p).collect();
                        row +=
                            &format!(" {:.0} | {:.2} |", median(times[i].clone()), median(ratios));
                    }
                    None => row += " — | — |",
                }
            }
            println!("{row}");
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
