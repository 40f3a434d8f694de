//! Replays the committed corpora of the control plane's fuzz targets (`ng_bencode`,
//! `sdp_parse`; `fuzz/corpus/<target>/`) through their bodies, so every input a fuzzer kept
//! is checked by the normal test suite.

use std::fs;
use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        body(&fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn ng_bencode_corpus() {
    replay("ng_bencode", srtp_relay::control::bencode::fuzz);
}

#[test]
fn sdp_parse_corpus() {
    replay("sdp_parse", srtp_relay::control::sdp::fuzz);
}
