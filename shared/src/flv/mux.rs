//! FLV video tag bodies from frames: what an encoder reading FLV over a pipe
//! (the transcoder) needs to see. The inverse of [`super::parse_video_tag`]
//! for H.264.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::Frame;

const CODEC_AVC: u8 = 7;
const KEY_FRAME: u8 = 1 << 4;
const INTER_FRAME: u8 = 2 << 4;

/// The AVC sequence header tag body carrying an AVCDecoderConfigurationRecord.
pub fn avc_sequence_header_body(avcc: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + avcc.len());
    out.put_u8(KEY_FRAME | CODEC_AVC);
    out.put_u8(0);
    out.put_slice(&[0, 0, 0]);
    out.put_slice(avcc);
    out.freeze()
}

/// The 5-byte header of an AVC NALU tag body; the frame's AVCC payload
/// follows it unchanged (written separately, so the payload is not copied).
pub fn avc_frame_header(frame: &Frame) -> [u8; 5] {
    let kind = if frame.keyframe {
        KEY_FRAME
    } else {
        INTER_FRAME
    };
    // Signed 24-bit composition time, clamped to what the field can hold.
    let cts = frame.cts_ms.clamp(-(1 << 23), (1 << 23) - 1);
    let [_, c2, c1, c0] = cts.to_be_bytes();
    [kind | CODEC_AVC, 1, c2, c1, c0]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::flv::{parse_video_tag, VideoTag};
    use crate::media::TrackKind;

    #[test]
    fn bodies_parse_back() {
        let avcc = Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]);
        match parse_video_tag(avc_sequence_header_body(&avcc)).unwrap() {
            VideoTag::AvcSequenceHeader(b) => assert_eq!(b, avcc),
            other => panic!("{other:?}"),
        }
        for (keyframe, cts) in [(true, 66), (false, -33), (false, 0)] {
            let frame = Frame {
                track: TrackKind::Video,
                dts_ms: 1000,
                cts_ms: cts,
                keyframe,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            };
            let mut body = avc_frame_header(&frame).to_vec();
            body.extend_from_slice(&frame.data);
            match parse_video_tag(Bytes::from(body)).unwrap() {
                VideoTag::AvcNalus {
                    keyframe: k,
                    cts_ms,
                    data,
                } => {
                    assert_eq!((k, cts_ms), (keyframe, cts));
                    assert_eq!(data, frame.data);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
