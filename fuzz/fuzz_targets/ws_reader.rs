#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcroom_fuzz::ws_reader::check(data));
