//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies, so every input a fuzzer ever kept is checked by the normal test suite.

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
fn rtp_unprotect_corpus() {
    replay("rtp_unprotect", srtp_core::fuzzing::rtp);
}

#[test]
fn rtp_batch_corpus() {
    replay("rtp_batch", srtp_core::fuzzing::rtp_batch);
}

#[test]
fn rtcp_unprotect_corpus() {
    replay("rtcp_unprotect", srtp_core::fuzzing::rtcp);
}

#[test]
fn sdes_parse_corpus() {
    replay("sdes_parse", srtp_core::fuzzing::sdes);
}
