//! FLV audio and video tag bodies (the payload of RTMP message types 8 and 9).
//!
//! Layouts (FLV spec 10.1 annex E.4.2/E.4.3, Enhanced RTMP v1/v2):
//!
//! ```text
//! video legacy:   FrameType:4 CodecID:4 | AVC: AVCPacketType:8 CompositionTime:si24 data..
//! video enhanced: 1 FrameType:3 PacketType:4 | FourCC:32 ..
//! audio:          SoundFormat:4 rate:2 size:1 type:1 | AAC: AACPacketType:8 data..
//! audio enhanced: SoundFormat=9:4 PacketType:4 | FourCC:32 ..
//! ```

use bytes::Bytes;

use super::FlvError;
use crate::bytes_reader::Reader;

/// FLV codec id of H.264 in the legacy video header.
const CODEC_AVC: u8 = 7;
/// FLV sound format of AAC.
const SOUND_AAC: u8 = 10;
/// Sound format that Enhanced RTMP v2 uses to announce a FourCC audio header.
const SOUND_EX_HEADER: u8 = 9;
/// Frame type 5: "video info/command frame", carries no picture.
const FRAME_COMMAND: u8 = 5;
/// Enhanced RTMP packet types whose FourCC does not directly follow the first
/// byte (ModEx prefixes a modifier, Multitrack a track-type byte).
const EX_PACKET_MULTITRACK: u8 = 6;
const EX_PACKET_MODEX: u8 = 7;

/// One parsed FLV video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// AVCDecoderConfigurationRecord (SPS/PPS): parse with
    /// [`crate::avc::AvcDecoderConfig::parse`]. Sent before the first frame and
    /// again whenever the encoder changes settings.
    AvcSequenceHeader(Bytes),
    /// One access unit of H.264 NAL units in AVCC (length-prefixed) form.
    AvcNalus {
        /// The FLV frame type said "key frame". Trust it for segmenting only
        /// after checking for an IDR with [`crate::avc::contains_idr`]; some
        /// encoders flag recovery-point frames as keyframes.
        keyframe: bool,
        /// Composition time offset in ms (pts = dts + cts); negative values
        /// are legal in the signed 24-bit field.
        cts_ms: i32,
        /// AVCC NAL units: a zero-copy slice of the tag body.
        data: Bytes,
    },
    /// The encoder signalled end of sequence (stream stop or reconfigure).
    AvcEndOfSequence,
    /// A "video info/command frame" (frame type 5): client-side seek markers,
    /// no picture data. Safe to ignore.
    CommandFrame,
    /// A codec we do not package; `codec` is a readable name or FourCC, for
    /// logs and the rejection message to the publisher.
    Unsupported { codec: String },
}

/// One parsed FLV audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// AudioSpecificConfig: parse with [`crate::aac::audio_config`].
    AacSequenceHeader(Bytes),
    /// One raw AAC access unit (no ADTS header), zero-copy.
    AacRaw(Bytes),
    /// A codec we do not package; `codec` is a readable name or FourCC.
    Unsupported { codec: String },
}

/// Parses one FLV video tag body.
pub fn parse_video_tag(body: Bytes) -> Result<VideoTag, FlvError> {
    let mut r = Reader::new(body);
    if r.is_empty() {
        return Err(FlvError::EmptyBody);
    }
    let first = r.u8()?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: IsExHeader set, low nibble is the packet type.
        let packet_type = first & 0x0f;
        let codec = match packet_type {
            EX_PACKET_MULTITRACK => "enhanced-rtmp multitrack".to_owned(),
            EX_PACKET_MODEX => "enhanced-rtmp modex".to_owned(),
            _ => fourcc_name(r.take_array::<4>()?),
        };
        return Ok(VideoTag::Unsupported { codec });
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    if codec_id != CODEC_AVC {
        return Ok(VideoTag::Unsupported {
            codec: video_codec_name(codec_id),
        });
    }
    if frame_type == FRAME_COMMAND {
        return Ok(VideoTag::CommandFrame);
    }
    let packet_type = r.u8()?;
    let cts_ms = r.i24()?;
    match packet_type {
        0 => Ok(VideoTag::AvcSequenceHeader(r.rest())),
        1 => Ok(VideoTag::AvcNalus {
            keyframe: frame_type == 1,
            cts_ms,
            data: r.rest(),
        }),
        2 => Ok(VideoTag::AvcEndOfSequence),
        other => Err(FlvError::UnknownAvcPacketType(other)),
    }
}

/// Parses one FLV audio tag body.
pub fn parse_audio_tag(body: Bytes) -> Result<AudioTag, FlvError> {
    let mut r = Reader::new(body);
    if r.is_empty() {
        return Err(FlvError::EmptyBody);
    }
    let sound_format = r.u8()? >> 4;
    match sound_format {
        SOUND_AAC => match r.u8()? {
            0 => Ok(AudioTag::AacSequenceHeader(r.rest())),
            1 => Ok(AudioTag::AacRaw(r.rest())),
            other => Err(FlvError::UnknownAacPacketType(other)),
        },
        SOUND_EX_HEADER => Ok(AudioTag::Unsupported {
            codec: fourcc_name(r.take_array::<4>()?),
        }),
        other => Ok(AudioTag::Unsupported {
            codec: audio_codec_name(other),
        }),
    }
}

/// Names of the legacy FLV video codec ids, for rejection messages.
fn video_codec_name(codec_id: u8) -> String {
    let name = match codec_id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        7 => "H.264",
        12 => "HEVC (legacy codec id 12)",
        13 => "AV1 (legacy codec id 13)",
        other => return format!("video codec id {other}"),
    };
    name.to_owned()
}

/// Names of the FLV sound formats, for rejection messages.
fn audio_codec_name(sound_format: u8) -> String {
    let name = match sound_format {
        0 => "Linear PCM (platform endian)",
        1 => "ADPCM",
        2 => "MP3",
        3 => "Linear PCM (little endian)",
        4 => "Nellymoser 16 kHz",
        5 => "Nellymoser 8 kHz",
        6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        10 => "AAC",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific sound",
        other => return format!("sound format {other}"),
    };
    name.to_owned()
}

/// A FourCC as text when it is printable ASCII (`hvc1`), else as hex, so a
/// hostile value cannot inject control characters into logs.
fn fourcc_name(fourcc: [u8; 4]) -> String {
    if fourcc
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b' ')
    {
        fourcc.iter().map(|&b| char::from(b)).collect()
    } else {
        format!("0x{}", hex::encode(fourcc))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::bytes_reader::ReadError;

    fn video(bytes: &'static [u8]) -> Result<VideoTag, FlvError> {
        parse_video_tag(Bytes::from_static(bytes))
    }

    fn audio(bytes: &'static [u8]) -> Result<AudioTag, FlvError> {
        parse_audio_tag(Bytes::from_static(bytes))
    }

    #[test]
    fn avc_sequence_header_returns_the_record() {
        let tag = video(&[0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f]).unwrap();
        assert_eq!(
            tag,
            VideoTag::AvcSequenceHeader(Bytes::from_static(&[0x01, 0x64, 0x00, 0x1f]))
        );
    }

    #[test]
    fn avc_nalus_carry_keyframe_cts_and_zero_copy_data() {
        // First frame of the ffmpeg demo clip: keyframe, cts 0x43 = 67 ms.
        let body = Bytes::from_static(&[0x17, 0x01, 0x00, 0x00, 0x43, 0, 0, 0, 1, 0x65]);
        let tag = parse_video_tag(body.clone()).unwrap();
        let VideoTag::AvcNalus {
            keyframe,
            cts_ms,
            data,
        } = tag
        else {
            panic!("expected NALUs, got {tag:?}");
        };
        assert!(keyframe);
        assert_eq!(cts_ms, 67);
        assert_eq!(&data[..], &[0, 0, 0, 1, 0x65]);
        assert_eq!(data.as_ptr(), body[5..].as_ptr());
    }

    #[test]
    fn inter_frame_with_negative_cts() {
        let tag = video(&[0x27, 0x01, 0xff, 0xff, 0xdf, 0xaa]).unwrap();
        assert_eq!(
            tag,
            VideoTag::AvcNalus {
                keyframe: false,
                cts_ms: -33,
                data: Bytes::from_static(&[0xaa]),
            }
        );
    }

    #[test]
    fn end_of_sequence_and_command_frames() {
        assert_eq!(
            video(&[0x17, 0x02, 0, 0, 0]).unwrap(),
            VideoTag::AvcEndOfSequence
        );
        assert_eq!(video(&[0x57, 0x00]).unwrap(), VideoTag::CommandFrame);
    }

    #[test]
    fn enhanced_rtmp_reports_the_fourcc() {
        assert_eq!(
            video(&[0x90, b'h', b'v', b'c', b'1', 1, 2, 3]).unwrap(),
            VideoTag::Unsupported {
                codec: "hvc1".into()
            }
        );
        assert_eq!(
            video(&[0x91, b'a', b'v', b'0', b'1']).unwrap(),
            VideoTag::Unsupported {
                codec: "av01".into()
            }
        );
        assert_eq!(
            video(&[0x90, 0x00, 0x0a, b'x', 0x1b]).unwrap(),
            VideoTag::Unsupported {
                codec: "0x000a781b".into()
            }
        );
        assert!(matches!(video(&[0x90, b'v', b'p']), Err(FlvError::Read(_))));
    }

    #[test]
    fn legacy_non_avc_codecs_are_named() {
        for (byte, name) in [
            (0x12, "Sorenson H.263"),
            (0x14, "On2 VP6"),
            (0x15, "On2 VP6 with alpha"),
            (0x1c, "HEVC (legacy codec id 12)"),
            (0x1f, "video codec id 15"),
        ] {
            let body = Bytes::copy_from_slice(&[byte, 0, 0, 0]);
            assert_eq!(
                parse_video_tag(body).unwrap(),
                VideoTag::Unsupported { codec: name.into() }
            );
        }
    }

    #[test]
    fn video_errors() {
        assert_eq!(video(&[]), Err(FlvError::EmptyBody));
        assert_eq!(
            video(&[0x17, 0x01, 0x00]),
            Err(FlvError::Read(ReadError::Truncated {
                needed: 3,
                available: 1
            }))
        );
        assert_eq!(
            video(&[0x17, 0x03, 0, 0, 0]),
            Err(FlvError::UnknownAvcPacketType(3))
        );
    }

    #[test]
    fn aac_tags() {
        // Sequence header of the ffmpeg demo clip: AAC-LC 44.1 kHz stereo.
        assert_eq!(
            audio(&[0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00]).unwrap(),
            AudioTag::AacSequenceHeader(Bytes::from_static(&[0x12, 0x08, 0x56, 0xe5, 0x00]))
        );
        assert_eq!(
            audio(&[0xaf, 0x01, 0xde, 0x02]).unwrap(),
            AudioTag::AacRaw(Bytes::from_static(&[0xde, 0x02]))
        );
        assert_eq!(audio(&[0xaf, 0x02]), Err(FlvError::UnknownAacPacketType(2)));
        assert!(matches!(audio(&[0xaf]), Err(FlvError::Read(_))));
        assert_eq!(audio(&[]), Err(FlvError::EmptyBody));
    }

    #[test]
    fn other_audio_codecs_are_named() {
        assert_eq!(
            audio(&[0x2f, 0xff]).unwrap(),
            AudioTag::Unsupported {
                codec: "MP3".into()
            }
        );
        assert_eq!(
            audio(&[0x90, b'O', b'p', b'u', b's']).unwrap(),
            AudioTag::Unsupported {
                codec: "Opus".into()
            }
        );
        assert_eq!(
            audio(&[0xd0]).unwrap(),
            AudioTag::Unsupported {
                codec: "sound format 13".into()
            }
        );
    }
}
