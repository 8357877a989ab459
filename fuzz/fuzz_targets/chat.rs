#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_chat::fuzz::fuzz_chat(data));
