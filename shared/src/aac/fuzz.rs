//! Fuzz body for the AAC AudioSpecificConfig (STYLE.md rule 4).

use bytes::Bytes;

use super::audio_config;

/// Parses `data` as an AudioSpecificConfig. Must never panic.
pub fn fuzz_audio_specific_config(data: &[u8]) {
    if let Ok(config) = audio_config(Bytes::copy_from_slice(data)) {
        let _ = config.codec_string();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::bytes_reader::fuzz_input::exercise;

    #[test]
    fn fuzz_audio_specific_config_survives_seeds_and_mutations() {
        let seeds: &[&[u8]] = &[
            &[0x12, 0x10],
            &[0x11, 0x90],
            &[0x12, 0x08, 0x56, 0xe5, 0x00],
            &[0x2b, 0x92, 0x08, 0x00],
            &[0xf8, 0x01, 0x78, 0x00, 0x01, 0x00],
            &[0x17, 0x80, 0x00, 0xbb, 0x80, 0x40],
        ];
        exercise(seeds, 4000, fuzz_audio_specific_config);
    }
}
