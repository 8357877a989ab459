#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_origin::control::fuzz_channel_request(data));
