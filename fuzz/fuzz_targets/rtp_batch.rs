#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| srtp_core::fuzzing::rtp_batch(data));
