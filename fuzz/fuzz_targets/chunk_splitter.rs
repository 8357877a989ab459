#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_shared::fuzzing::fuzz_chunk_splitter(data));
