//! AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3.1), the payload of an
//! FLV AVC sequence header and the body of the MP4 `avcC` box.
//!
//! ```text
//! configurationVersion=1 AVCProfileIndication profile_compatibility AVCLevelIndication
//! reserved:6 lengthSizeMinusOne:2
//! reserved:3 numOfSequenceParameterSets:5 { sps_length:u16 sps[sps_length] }*
//! numOfPictureParameterSets:u8             { pps_length:u16 pps[pps_length] }*
//! (High profiles: chroma_format, bit depths, SPS extensions; ignored)
//! ```

use bytes::Bytes;
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{decode_nal, BitReader};

use super::AvcError;
use crate::bytes_reader::Reader;
use crate::media::VideoConfig;

/// NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 7;

/// The parsed fields of an AVCDecoderConfigurationRecord. Parameter sets are
/// zero-copy slices of the record, NAL header byte included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// AVCProfileIndication (66 Baseline, 77 Main, 100 High, ...).
    pub profile_idc: u8,
    /// profile_compatibility: the SPS constraint_set flags.
    pub profile_compat: u8,
    /// AVCLevelIndication (31 = level 3.1).
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix of every frame: 1, 2 or 4.
    pub nal_length_size: u8,
    /// Sequence parameter sets (at least one; at most 31 by the 5-bit count).
    pub sps: Vec<Bytes>,
    /// Picture parameter sets (at most 255 by the 8-bit count).
    pub pps: Vec<Bytes>,
}

impl AvcDecoderConfig {
    /// Parses a record. Bytes after the PPS list (the High-profile extension,
    /// or encoder padding) are ignored: decoders ignore them too, and the
    /// record is passed on verbatim as `avcC`.
    pub fn parse(record: Bytes) -> Result<AvcDecoderConfig, AvcError> {
        let mut r = Reader::new(record);
        let version = r.u8()?;
        if version != 1 {
            return Err(AvcError::UnsupportedVersion(version));
        }
        let profile_idc = r.u8()?;
        let profile_compat = r.u8()?;
        let level_idc = r.u8()?;
        let nal_length_size = (r.u8()? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(AvcError::InvalidNalLengthSize(nal_length_size));
        }
        let num_sps = r.u8()? & 0x1f;
        let sps = read_parameter_sets(&mut r, num_sps)?;
        if sps.is_empty() {
            return Err(AvcError::MissingSps);
        }
        let num_pps = r.u8()?;
        let pps = read_parameter_sets(&mut r, num_pps)?;
        Ok(AvcDecoderConfig {
            profile_idc,
            profile_compat,
            level_idc,
            nal_length_size,
            sps,
            pps,
        })
    }
}

/// Reads `count` u16-length-prefixed parameter sets. The count is at most 255
/// and each entry needs at least 3 bytes of input, so a hostile count cannot
/// make this allocate beyond the input size.
fn read_parameter_sets(r: &mut Reader, count: u8) -> Result<Vec<Bytes>, AvcError> {
    let mut sets = Vec::with_capacity(usize::from(count).min(r.remaining() / 3));
    for _ in 0..count {
        let len = r.u16()?;
        if len == 0 {
            return Err(AvcError::EmptyParameterSet);
        }
        sets.push(r.take(usize::from(len))?);
    }
    Ok(sets)
}

/// Parses a record and its first SPS into the [`VideoConfig`] the packager
/// needs: picture size after cropping, frame rate from the VUI timing info
/// (when present and sane), profile, level and NAL length size.
pub fn video_config(avcc: Bytes) -> Result<VideoConfig, AvcError> {
    let config = AvcDecoderConfig::parse(avcc.clone())?;
    let sps_nal = config.sps.first().ok_or(AvcError::MissingSps)?;
    let nal_type = sps_nal.first().map_or(0, |b| b & 0x1f);
    if nal_type != NAL_SPS {
        return Err(AvcError::NotAnSps(nal_type));
    }
    // decode_nal drops the NAL header byte and the emulation-prevention bytes.
    let rbsp = decode_nal(sps_nal).map_err(|e| AvcError::Sps(e.to_string()))?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
        .map_err(|e| AvcError::Sps(format!("{e:?}")))?;
    let (width, height) = sps
        .pixel_dimensions()
        .map_err(|e| AvcError::Sps(format!("{e:?}")))?;
    Ok(VideoConfig {
        avcc,
        width,
        height,
        profile_idc: config.profile_idc,
        constraint_flags: config.profile_compat,
        level_idc: config.level_idc,
        nal_length_size: config.nal_length_size,
        frame_rate: frame_rate(&sps),
    })
}

/// Frame rate from the VUI, or `None` when absent or not a usable number
/// (num_units_in_tick = 0 would give infinity; absurd rates are encoder bugs
/// that must not reach playlist arithmetic).
fn frame_rate(sps: &SeqParameterSet) -> Option<f64> {
    let timing = sps.vui_parameters.as_ref()?.timing_info.as_ref()?;
    if timing.num_units_in_tick == 0 || timing.time_scale == 0 {
        return None;
    }
    sps.fps()
        .filter(|fps| fps.is_finite() && *fps > 0.0 && *fps <= 1000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
pub(crate) mod tests {
    use super::*;

    /// Sequence header of `ffmpeg -f lavfi -i testsrc2=size=320x180:rate=30
    /// -t 1 -c:v libx264 -pix_fmt yuv420p -f flv` (ffmpeg 5.1, x264 core 164):
    /// the FLV video tag body after its 5-byte AVC header. High profile,
    /// level 1.3, with the High-profile extension bytes `fd f8 f8 00` at the end.
    pub(crate) const X264_320X180_HIGH: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0x9f, 0x9f, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
        0xf1, 0x42, 0x99, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8,
        0xf8, 0x00,
    ];

    /// Same, from `ffmpeg -f lavfi -i testsrc2=size=1920x1080:rate=25 -t 0.2
    /// -c:v libx264 -preset ultrafast -pix_fmt yuv420p -f flv`: Constrained
    /// Baseline, level 4.0; 1088 coded lines cropped to 1080.
    pub(crate) const X264_1920X1080_BASELINE: &[u8] = &[
        0x01, 0x42, 0xc0, 0x28, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x42, 0xc0, 0x28, 0xda, 0x01, 0xe0,
        0x08, 0x9f, 0x97, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20,
        0xf1, 0x83, 0x2a, 0x01, 0x00, 0x04, 0x68, 0xce, 0x0f, 0xc8,
    ];

    /// An x264 High-profile SPS (level 3.0) quoted in the task brief.
    const X264_HIGH_L30_SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];

    /// Builds a record around one SPS and one PPS.
    fn record(length_size_minus_one: u8, sps: &[u8], pps: &[u8]) -> Bytes {
        let mut v = vec![
            1,
            sps[1],
            sps[2],
            sps[3],
            0xfc | length_size_minus_one,
            0xe1,
        ];
        v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        v.extend_from_slice(sps);
        v.push(1);
        v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        v.extend_from_slice(pps);
        Bytes::from(v)
    }

    #[test]
    fn parses_the_x264_record_zero_copy() {
        let record = Bytes::from_static(X264_320X180_HIGH);
        let config = AvcDecoderConfig::parse(record.clone()).unwrap();
        assert_eq!(
            (config.profile_idc, config.profile_compat, config.level_idc),
            (100, 0, 13)
        );
        assert_eq!(config.nal_length_size, 4);
        assert_eq!(config.sps.len(), 1);
        assert_eq!(config.sps[0].len(), 26);
        assert_eq!(config.sps[0].as_ptr(), record[8..].as_ptr());
        assert_eq!(&config.pps[0][..], &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
    }

    #[test]
    fn video_config_320x180_high_30fps() {
        let record = Bytes::from_static(X264_320X180_HIGH);
        let vc = video_config(record.clone()).unwrap();
        assert_eq!((vc.width, vc.height), (320, 180));
        assert_eq!(vc.frame_rate, Some(30.0));
        assert_eq!(vc.codec_string(), "avc1.64000d");
        assert_eq!(vc.nal_length_size, 4);
        assert_eq!(vc.avcc, record);
    }

    #[test]
    fn video_config_applies_cropping_for_1080p() {
        let vc = video_config(Bytes::from_static(X264_1920X1080_BASELINE)).unwrap();
        assert_eq!((vc.width, vc.height), (1920, 1080));
        assert_eq!(vc.frame_rate, Some(25.0));
        assert_eq!(vc.codec_string(), "avc1.42c028");
    }

    #[test]
    fn video_config_of_the_brief_sps() {
        let vc = video_config(record(3, X264_HIGH_L30_SPS, &[0x68, 0xeb, 0xe3, 0xcb])).unwrap();
        assert_eq!((vc.width, vc.height), (640, 360));
        assert_eq!(vc.frame_rate, Some(30.0));
        assert_eq!(vc.codec_string(), "avc1.64001e");
    }

    #[test]
    fn rejects_bad_records() {
        let parse = |v: Vec<u8>| AvcDecoderConfig::parse(Bytes::from(v));
        let mut bad_version = X264_320X180_HIGH.to_vec();
        bad_version[0] = 0;
        assert_eq!(parse(bad_version), Err(AvcError::UnsupportedVersion(0)));
        let mut three_byte_lengths = X264_320X180_HIGH.to_vec();
        three_byte_lengths[4] = 0xfe;
        assert_eq!(
            parse(three_byte_lengths),
            Err(AvcError::InvalidNalLengthSize(3))
        );
        assert_eq!(
            parse(vec![1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            Err(AvcError::MissingSps)
        );
        assert_eq!(
            parse(vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0]),
            Err(AvcError::EmptyParameterSet)
        );
        assert!(matches!(
            parse(X264_320X180_HIGH[..20].to_vec()),
            Err(AvcError::Read(_))
        ));
        assert!(matches!(parse(vec![]), Err(AvcError::Read(_))));
    }

    #[test]
    fn two_byte_length_size_is_accepted() {
        let config = AvcDecoderConfig::parse(record(1, X264_HIGH_L30_SPS, &[0x68])).unwrap();
        assert_eq!(config.nal_length_size, 2);
    }

    #[test]
    fn video_config_rejects_non_sps_and_garbage_sps() {
        assert_eq!(
            video_config(record(3, &[0x68, 0x64, 0x00, 0x1e], &[0x68])),
            Err(AvcError::NotAnSps(8))
        );
        assert!(matches!(
            video_config(record(3, &[0x67, 0x64, 0x00, 0x1e], &[0x68])),
            Err(AvcError::Sps(_))
        ));
    }
}
