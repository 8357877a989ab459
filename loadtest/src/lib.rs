//! livecdn load-test harness: virtual LL-HLS players and synthetic RTMP
//! publishers.
//!
//! The harness depends only on `livecdn-shared`, so it can test any RTMP
//! ingest and LL-HLS server, not just livecdn's own.
//!
//! * [`player`]: a sans-IO LL-HLS player model (playlist in, next requests
//!   out) that behaves like hls.js in low-latency mode; [`stats`] turns its
//!   events into hdrhistograms, counters and per-second intervals.
//! * [`publisher`]: loops the bundled clip ([`sample_flv`]) over RTMP in real
//!   time; used by `livecdn up --demo` and `livecdn loadtest publish`.
//! * [`client`] (h1/h2/h3 over rustls), [`driver`] (one task per viewer,
//!   ramp, deadline, harness self-monitoring) and [`report`] (text, JSON,
//!   HTML) are the I/O half; [`cli`] is `livecdn loadtest` and the
//!   `livecdn-loadtest` binary.

pub mod cli;
pub mod client;
pub mod driver;
pub mod player;
pub mod publisher;
pub mod report;
pub mod stats;

pub use publisher::{parse_rtmp_url, publish, PublishError, PublishOptions, PublishStats, RtmpUrl};

/// The bundled demo clip: 4 s of 640x360 30 fps H.264 Main (B-frames, one
/// keyframe per second) and AAC-LC 48 kHz stereo, loopable. See
/// `loadtest/assets/README.md` for how it was made.
pub fn sample_flv() -> bytes::Bytes {
    bytes::Bytes::from_static(include_bytes!("../assets/sample.flv"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use livecdn_shared::avc::video_config;
    use livecdn_shared::flv::{parse_audio_tag, parse_video_tag, AudioTag, TagType, VideoTag};

    use super::*;

    #[test]
    fn sample_video_sequence_header_parses() {
        let tags = publisher::read_tags(sample_flv()).unwrap();
        let avcc = tags
            .iter()
            .filter(|t| t.tag_type == TagType::Video)
            .find_map(|t| match parse_video_tag(t.body.clone()).unwrap() {
                VideoTag::AvcSequenceHeader(avcc) => Some(avcc),
                _ => None,
            })
            .unwrap();
        let config = video_config(avcc).unwrap();
        assert_eq!((config.width, config.height), (640, 360));
        assert_eq!(config.profile_idc, 77, "Main profile");
        assert_eq!(config.nal_length_size, 4);
        let fps = config.frame_rate.unwrap();
        assert!((fps - 30.0).abs() < 0.01, "{fps} fps");
    }

    #[test]
    fn sample_has_b_frames_and_aac() {
        let tags = publisher::read_tags(sample_flv()).unwrap();
        let negative_or_positive_cts = tags
            .iter()
            .filter(|t| t.tag_type == TagType::Video)
            .filter_map(|t| match parse_video_tag(t.body.clone()).unwrap() {
                VideoTag::AvcNalus { cts_ms, .. } => Some(cts_ms),
                _ => None,
            })
            .filter(|cts| *cts != 0)
            .count();
        assert!(
            negative_or_positive_cts > 60,
            "B-frames give composition offsets"
        );
        assert!(tags.iter().any(|t| t.tag_type == TagType::Audio
            && matches!(
                parse_audio_tag(t.body.clone()).unwrap(),
                AudioTag::AacSequenceHeader(_)
            )));
        assert!(sample_flv().len() < 400 * 1024);
    }
}
