#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_webrtc::fuzz::fuzz_whep(data));
