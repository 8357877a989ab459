//! Parsed FLV tags to [`Frame`]s: the step between the RTMP session and the
//! packager. Sequence headers and control tags are not frames; the caller
//! handles them (decoder config, end of stream) before asking for a frame.

use super::{AudioTag, VideoTag};
use crate::media::{Frame, TrackKind};

/// The frame carried by a video tag, or `None` for a sequence header, end of
/// sequence, command frame or unsupported codec.
///
/// `keyframe` is the FLV frame-type flag; see [`VideoTag::AvcNalus`].
pub fn video_frame(timestamp_ms: u32, tag: VideoTag) -> Option<Frame> {
    match tag {
        VideoTag::AvcNalus {
            keyframe,
            cts_ms,
            data,
        } => Some(Frame {
            track: TrackKind::Video,
            dts_ms: timestamp_ms,
            cts_ms,
            keyframe,
            data,
        }),
        VideoTag::AvcSequenceHeader(_)
        | VideoTag::AvcEndOfSequence
        | VideoTag::CommandFrame
        | VideoTag::Unsupported { .. } => None,
    }
}

/// The frame carried by an audio tag, or `None` for a sequence header or an
/// unsupported codec. Every AAC frame is a random access point.
pub fn audio_frame(timestamp_ms: u32, tag: AudioTag) -> Option<Frame> {
    match tag {
        AudioTag::AacRaw(data) => Some(Frame {
            track: TrackKind::Audio,
            dts_ms: timestamp_ms,
            cts_ms: 0,
            keyframe: true,
            data,
        }),
        AudioTag::AacSequenceHeader(_) | AudioTag::Unsupported { .. } => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn only_coded_frames_become_frames() {
        let data = Bytes::from_static(&[0, 0, 0, 1, 0x65]);
        let frame = video_frame(
            1000,
            VideoTag::AvcNalus {
                keyframe: true,
                cts_ms: 67,
                data: data.clone(),
            },
        )
        .unwrap();
        assert_eq!(
            frame,
            Frame {
                track: TrackKind::Video,
                dts_ms: 1000,
                cts_ms: 67,
                keyframe: true,
                data,
            }
        );
        assert_eq!(video_frame(0, VideoTag::AvcEndOfSequence), None);
        assert_eq!(
            video_frame(0, VideoTag::AvcSequenceHeader(Bytes::new())),
            None
        );

        let aac = audio_frame(23, AudioTag::AacRaw(Bytes::from_static(&[1]))).unwrap();
        assert_eq!(
            (aac.track, aac.dts_ms, aac.keyframe),
            (TrackKind::Audio, 23, true)
        );
        assert_eq!(
            audio_frame(0, AudioTag::AacSequenceHeader(Bytes::new())),
            None
        );
    }
}
