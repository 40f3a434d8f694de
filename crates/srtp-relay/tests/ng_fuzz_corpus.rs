//! Replays the committed corpus of the `ng_bencode` fuzz target (`fuzz/corpus/ng_bencode/`)
//! through its body, so every input a fuzzer kept is checked by the normal test suite.

use std::fs;
use std::path::Path;

#[test]
fn ng_bencode_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ng_bencode");
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        srtp_relay::control::bencode::fuzz(&fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}
