#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcroom_fuzz::decode::check(data));
