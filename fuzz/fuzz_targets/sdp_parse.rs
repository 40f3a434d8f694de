#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| srtp_relay::control::sdp::fuzz(data));
