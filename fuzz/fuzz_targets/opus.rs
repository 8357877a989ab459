#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_origin::opus::fuzz_opus(data));
