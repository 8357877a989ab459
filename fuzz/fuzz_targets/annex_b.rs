#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_shared::fuzzing::fuzz_annex_b(data));
