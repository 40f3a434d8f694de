//! Replays the committed `relay_engine` fuzz corpus through the target's body.

use std::path::Path;

#[test]
fn relay_engine_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/relay_engine");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        srtp_relay::fuzzing::engine(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "no corpus in {}", dir.display());
}
