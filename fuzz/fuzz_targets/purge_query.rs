#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_edge::admin::fuzz_purge_query(data));
