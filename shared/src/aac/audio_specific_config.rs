//! AudioSpecificConfig (ISO 14496-3 §1.6.2.1), the payload of an FLV AAC
//! sequence header and of the `esds` DecoderSpecificInfo.
//!
//! ```text
//! audioObjectType:5 (31 => 32 + escape:6)
//! samplingFrequencyIndex:4 (15 => samplingFrequency:24)
//! channelConfiguration:4
//! if audioObjectType is 5 (SBR) or 29 (PS), explicit hierarchical signalling:
//!     extensionSamplingFrequencyIndex:4 (15 => :24), audioObjectType (core)
//! GASpecificConfig / sync extensions ... (not needed, ignored)
//! ```

use bytes::Bytes;

use super::AacError;
use crate::bytes_reader::BitReader;
use crate::media::AudioConfig;

/// Sample rates by samplingFrequencyIndex 0..=12.
const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];
/// Object types that announce SBR (HE-AAC) or PS (HE-AACv2) explicitly.
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;
/// ER BSAC carries an extra extension channel configuration.
const AOT_ER_BSAC: u8 = 22;

/// The fields of an AudioSpecificConfig the packager needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType as signalled first: 2 for AAC-LC, 5 for HE-AAC and 29
    /// for HE-AACv2 with explicit signalling. This is what goes in the codec
    /// string (`mp4a.40.5`).
    pub object_type: u8,
    /// The underlying core object type: equal to `object_type` except with
    /// explicit SBR/PS signalling, where it is the core (normally 2, AAC-LC).
    pub core_object_type: u8,
    /// Sample rate of the core decoder in Hz. One access unit is 1024 samples
    /// at this rate, so it is the right track timescale even for HE-AAC.
    pub sample_rate: u32,
    /// Output sample rate after SBR, with explicit SBR/PS signalling.
    pub extension_sample_rate: Option<u32>,
    /// The raw channelConfiguration field.
    pub channel_configuration: u8,
    /// Number of output channels implied by `channel_configuration`.
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses the leading fields. Bits after them (GASpecificConfig, sync
    /// extensions such as ffmpeg's `56 e5 00`) are ignored.
    pub fn parse(asc: &[u8]) -> Result<AudioSpecificConfig, AacError> {
        let mut r = BitReader::new(asc);
        let object_type = read_object_type(&mut r)?;
        if object_type == 0 {
            return Err(AacError::NullObjectType);
        }
        let sample_rate = read_sample_rate(&mut r)?;
        let channel_configuration = r.bits(4)? as u8;
        let channels = channel_count(channel_configuration)?;
        let (core_object_type, extension_sample_rate) =
            if object_type == AOT_SBR || object_type == AOT_PS {
                let ext_rate = read_sample_rate(&mut r)?;
                let core = read_object_type(&mut r)?;
                if core == AOT_ER_BSAC {
                    let _extension_channel_configuration = r.bits(4)?;
                }
                (core, Some(ext_rate))
            } else {
                (object_type, None)
            };
        Ok(AudioSpecificConfig {
            object_type,
            core_object_type,
            sample_rate,
            extension_sample_rate,
            channel_configuration,
            channels,
        })
    }
}

/// audioObjectType with the escape for types above 30.
fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let aot = r.bits(5)? as u8;
    if aot == 31 {
        Ok(32 + r.bits(6)? as u8)
    } else {
        Ok(aot)
    }
}

/// samplingFrequencyIndex, or the explicit 24-bit frequency after index 15.
fn read_sample_rate(r: &mut BitReader<'_>) -> Result<u32, AacError> {
    let index = r.bits(4)? as u8;
    let rate = if index == 0x0f {
        r.bits(24)?
    } else {
        *SAMPLE_RATES
            .get(usize::from(index))
            .ok_or(AacError::ReservedFrequencyIndex(index))?
    };
    if rate == 0 {
        return Err(AacError::ZeroSampleRate);
    }
    Ok(rate)
}

/// Output channels per channelConfiguration (ISO 14496-3 Table 1.19, with the
/// 23003-3 additions 11-14).
fn channel_count(config: u8) -> Result<u8, AacError> {
    match config {
        1..=6 => Ok(config),
        7 | 12 | 14 => Ok(8),
        11 => Ok(7),
        13 => Ok(24),
        other => Err(AacError::UnsupportedChannelConfig(other)),
    }
}

/// Parses an AudioSpecificConfig into the [`AudioConfig`] the packager needs,
/// keeping the original bytes for `esds`.
pub fn audio_config(asc: Bytes) -> Result<AudioConfig, AacError> {
    let parsed = AudioSpecificConfig::parse(&asc)?;
    Ok(AudioConfig {
        asc,
        object_type: parsed.object_type,
        sample_rate: parsed.sample_rate,
        channels: parsed.channels,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::bytes_reader::ReadError;

    /// Packs (value, bit count) fields MSB-first, zero-padding the last byte.
    fn pack(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc: u64 = 0;
        let mut n = 0;
        for &(value, bits) in fields {
            acc = (acc << bits) | u64::from(value);
            n += bits;
            while n >= 8 {
                out.push((acc >> (n - 8)) as u8);
                n -= 8;
            }
        }
        if n > 0 {
            out.push((acc << (8 - n)) as u8);
        }
        out
    }

    #[test]
    fn aac_lc_44100_stereo() {
        let c = audio_config(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
        assert_eq!(&c.asc[..], &[0x12, 0x10]);
    }

    #[test]
    fn aac_lc_48000_stereo() {
        let c = audio_config(Bytes::from_static(&[0x11, 0x90])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 2));
    }

    #[test]
    fn ffmpeg_sync_extension_is_ignored() {
        // ffmpeg's native AAC encoder, from the demo clip's sequence header.
        let c = AudioSpecificConfig::parse(&[0x12, 0x08, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 1));
    }

    #[test]
    fn he_aac_explicit_signalling() {
        // AOT 5, core 22050 Hz, stereo, output 44100 Hz, core AAC-LC.
        let c = AudioSpecificConfig::parse(&[0x2b, 0x92, 0x08, 0x00]).unwrap();
        assert_eq!(
            c,
            AudioSpecificConfig {
                object_type: 5,
                core_object_type: 2,
                sample_rate: 22050,
                extension_sample_rate: Some(44100),
                channel_configuration: 2,
                channels: 2,
            }
        );
    }

    #[test]
    fn escaped_object_type_and_explicit_frequency() {
        // AOT 31 + escape 10 = 42 (USAC), explicit 37800 Hz, 5.1.
        let asc = pack(&[(31, 5), (10, 6), (15, 4), (37800, 24), (6, 4)]);
        let c = AudioSpecificConfig::parse(&asc).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (42, 37800, 6));
        let seven_one = pack(&[(2, 5), (3, 4), (7, 4)]);
        assert_eq!(AudioSpecificConfig::parse(&seven_one).unwrap().channels, 8);
    }

    #[test]
    fn rejects_invalid_configs() {
        assert_eq!(
            AudioSpecificConfig::parse(&pack(&[(0, 5), (4, 4), (2, 4)])),
            Err(AacError::NullObjectType)
        );
        assert_eq!(
            AudioSpecificConfig::parse(&pack(&[(2, 5), (13, 4), (2, 4)])),
            Err(AacError::ReservedFrequencyIndex(13))
        );
        assert_eq!(
            AudioSpecificConfig::parse(&pack(&[(2, 5), (15, 4), (0, 24), (2, 4)])),
            Err(AacError::ZeroSampleRate)
        );
        assert_eq!(
            AudioSpecificConfig::parse(&pack(&[(2, 5), (4, 4), (0, 4)])),
            Err(AacError::UnsupportedChannelConfig(0))
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(AacError::Read(ReadError::BitsTruncated {
                needed_bits: 4,
                available_bits: 3
            }))
        );
        assert!(AudioSpecificConfig::parse(&[]).is_err());
    }
}
