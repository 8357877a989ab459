#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| livecdn_origin::whip::fuzz_whip_pcm(data));
