#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_origin::ingest::fuzz_rtmp_session(data));
