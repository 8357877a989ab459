#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_edge::cache::fuzz_cache_key(data));
