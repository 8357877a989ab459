//! Fuzz body for the AVC decoder configuration (STYLE.md rule 4).

use bytes::Bytes;

use super::{contains_idr, nal_units, video_config, AvcDecoderConfig};

/// Runs every AVC parser on arbitrary bytes: the record parser, the SPS
/// decode behind [`video_config`], and the NAL walkers with each length size.
/// Must never panic, whatever the input.
pub fn fuzz_decoder_config(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(config) = AvcDecoderConfig::parse(bytes.clone()) {
        for sps in &config.sps {
            let _ = contains_idr(sps, config.nal_length_size);
        }
    }
    let _ = video_config(bytes.clone());
    for length_size in [1, 2, 3, 4] {
        let _ = nal_units(&bytes, length_size).count();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::bytes_reader::fuzz_input::exercise;

    #[test]
    fn fuzz_decoder_config_survives_seeds_and_mutations() {
        let seeds: &[&[u8]] = &[
            super::super::decoder_config::tests::X264_320X180_HIGH,
            super::super::decoder_config::tests::X264_1920X1080_BASELINE,
            &[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68],
        ];
        exercise(seeds, 4000, fuzz_decoder_config);
    }
}
