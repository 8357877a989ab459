//! WHIP ingest at the origin: a publisher's WebRTC media into the same
//! stream hub an RTMP publisher feeds, so the stream is packaged into
//! LL-HLS, laddered, recorded and pushed alike.
//!
//! [`WhipSink`] is what the WebRTC server hands each depacketized frame
//! (see [`livecdn_webrtc::ingest`]):
//!
//! * H.264 comes as Annex B access units with the parameter sets in band:
//!   each is made length-prefixed (AVCC) as the packager stores it, and a
//!   new SPS or PPS (the first, or a resolution change mid-stream) becomes
//!   a new video configuration.
//! * VP8 (from a publisher that offers no H.264) is transcoded once to
//!   H.264 ([`vp8`]) and comes back into the hub as an RTMP publisher's
//!   frames would.
//! * Opus goes to the `opus` rendition as it is (WHEP viewers hear the
//!   publisher's own packets), and is transcoded once to AAC for the HLS
//!   audio rendition ([`pcm`], [`aac`]) where ffmpeg is installed.
//! * Both clocks start where their first packet arrived, so audio and
//!   video keep the sync they had on the wire.
//! * A segment needs a keyframe where it starts, and browsers send one
//!   only when asked: the sink asks (the session sends a PLI) once the
//!   open segment has reached its target duration ([`KeyPacer`]), so the
//!   keyframe that answers lands just past it, where the packager cuts.
//!
//! Dropping the sink ends the publish (the session ended: DELETE, the
//! peer left, or the operator stopped the stream).

mod aac;
mod encode;
mod pcm;
mod vp8;

pub use pcm::fuzz_whip_pcm;

use crate::registry::StreamHub;
use crate::webhook::Webhooks;
use aac::AacOut;
use bytes::Bytes;
use livecdn_shared::avc;
use livecdn_shared::media::{Frame, TrackKind};
use livecdn_webrtc::ingest::{IngestSink, VideoCodec};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vp8::Vp8Out;

/// One track's clock: its first packet's RTP time and arrival.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    base_us: u64,
    start_ms: u64,
}

/// Maps each track's RTP time (microseconds) onto the stream's
/// milliseconds, both tracks from the first arrival.
#[derive(Debug, Default)]
pub struct Clock {
    t0: Option<Instant>,
    video: Option<Anchor>,
    audio: Option<Anchor>,
}

impl Clock {
    /// Milliseconds of `time_us` on `video`'s or the audio's clock.
    pub fn map(&mut self, video: bool, time_us: u64, arrived: Instant) -> u32 {
        let t0 = *self.t0.get_or_insert(arrived);
        let slot = if video {
            &mut self.video
        } else {
            &mut self.audio
        };
        let a = *slot.get_or_insert(Anchor {
            base_us: time_us,
            start_ms: arrived.saturating_duration_since(t0).as_millis() as u64,
        });
        let rel_ms = time_us.saturating_sub(a.base_us) / 1000;
        (a.start_ms + rel_ms) as u32
    }
}

/// What the video handler decided for one access unit.
#[derive(Debug, PartialEq, Eq)]
pub struct VideoStep {
    /// A new decoder configuration record to announce first.
    pub config: Option<Bytes>,
    /// The sample, length-prefixed; `None` when nothing is left to store.
    pub sample: Option<Bytes>,
    pub keyframe: bool,
}

/// Parameter-set tracking: Annex B access units in, samples and (new)
/// configurations out. Sans-IO.
#[derive(Debug, Default)]
pub struct VideoIn {
    params: Option<(Bytes, Bytes)>,
}

impl VideoIn {
    pub fn access_unit(&mut self, au: &Bytes) -> Result<VideoStep, avc::AvcError> {
        let split = avc::split_access_unit(au)?;
        let mut config = None;
        if let (Some(sps), Some(pps)) = (&split.sps, &split.pps) {
            let same = self
                .params
                .as_ref()
                .is_some_and(|(s, p)| s == sps && p == pps);
            if !same {
                config = Some(avc::decoder_config_record(sps, pps)?);
                self.params = Some((sps.clone(), pps.clone()));
            }
        }
        // Nothing can be decoded before the first parameter sets.
        let sample = (self.params.is_some() && !split.avcc.is_empty()).then_some(split.avcc);
        Ok(VideoStep {
            config,
            sample,
            keyframe: split.idr,
        })
    }
}

/// When to ask for a keyframe: the packager cuts a segment at the first
/// keyframe at least the target duration after the segment's start, so a
/// keyframe is wanted from then on, until one comes. One that comes
/// earlier (after a loss) does not cut and does not reset the count.
#[derive(Debug)]
pub struct KeyPacer {
    target_ms: u32,
    last_cut: Option<u32>,
}

impl KeyPacer {
    pub fn new(target: Duration) -> Self {
        Self {
            target_ms: u32::try_from(target.as_millis()).unwrap_or(u32::MAX).max(1),
            last_cut: None,
        }
    }

    /// A video frame at `dts_ms`: whether a keyframe is wanted now.
    pub fn frame(&mut self, dts_ms: u32, keyframe: bool) -> bool {
        let due = self
            .last_cut
            .is_none_or(|c| dts_ms.wrapping_sub(c) >= self.target_ms);
        if keyframe && due {
            self.last_cut = Some(dts_ms);
            return false;
        }
        due
    }
}

/// Where a WHIP publisher's frames go.
pub struct WhipSink {
    hub: Arc<StreamHub>,
    session: u64,
    stream: String,
    peer: SocketAddr,
    /// `webhooks.on_publish_done`, told when the publish ends.
    done: Option<(String, Webhooks)>,
    clock: Clock,
    video: VideoIn,
    keys: KeyPacer,
    aac: Option<AacOut>,
    /// A VP8 publisher's transcoder, started with its first frame.
    vp8: Option<Vp8Out>,
    encoder: Option<PathBuf>,
}

/// What the publisher's offer sends, and how its audio reaches HLS.
#[derive(Debug, Clone)]
pub struct Offered {
    pub video: bool,
    pub audio: bool,
    /// The ffmpeg that transcodes Opus to AAC and VP8 to H.264; without
    /// it the HLS renditions have no audio and VP8 is not packaged.
    pub encoder: Option<PathBuf>,
}

impl WhipSink {
    pub fn new(
        hub: Arc<StreamHub>,
        session: u64,
        peer: SocketAddr,
        done: Option<(String, Webhooks)>,
        offered: Offered,
    ) -> Self {
        let keys = KeyPacer::new(hub.read(|p| p.config().segment_target));
        let aac = offered
            .encoder
            .clone()
            .filter(|_| offered.audio)
            .and_then(|ffmpeg| AacOut::start(ffmpeg, hub.clone(), session, offered.video));
        if aac.is_some() {
            // Announced now, so the audio track exists before the first
            // video frame rather than from a later segment on.
            hub.audio_from_opus(session, aac::config());
        }
        Self {
            stream: hub.name().to_string(),
            hub,
            session,
            peer,
            done,
            clock: Clock::default(),
            video: VideoIn::default(),
            keys,
            aac,
            vp8: None,
            encoder: offered.encoder,
        }
    }
}

impl WhipSink {
    /// A VP8 frame: to its transcoder (started with the first), or
    /// dropped where there is no ffmpeg (the origin said so at the
    /// publish).
    fn vp8(&mut self, time_us: u64, data: &Arc<[u8]>, key: bool, arrived: Instant) -> bool {
        if self.vp8.is_none() {
            let Some(ffmpeg) = self.encoder.clone() else {
                return false;
            };
            self.vp8 = Some(Vp8Out::start(ffmpeg, self.hub.clone(), self.session));
        }
        let dts_ms = self.clock.map(true, time_us, arrived);
        self.vp8
            .as_mut()
            .is_some_and(|v| v.frame(dts_ms, Bytes::from_owner(data.clone()), key))
    }
}

impl IngestSink for WhipSink {
    fn video(
        &mut self,
        codec: VideoCodec,
        time_us: u64,
        data: &Arc<[u8]>,
        key: bool,
        arrived: Instant,
    ) -> bool {
        if codec == VideoCodec::Vp8 {
            return self.vp8(time_us, data, key, arrived);
        }
        let au = Bytes::from_owner(data.clone());
        let step = match self.video.access_unit(&au) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(stream = %self.stream, error = %e, "whip video frame dropped");
                return false;
            }
        };
        if let Some(record) = step.config {
            match avc::video_config(record) {
                Ok(config) => {
                    tracing::info!(stream = %self.stream, width = config.width, height = config.height, codec = %config.codec_string(), "whip video config");
                    self.hub.video_config(self.session, config);
                }
                Err(e) => {
                    tracing::warn!(stream = %self.stream, error = %e, "whip parameter sets refused");
                    return true;
                }
            }
        }
        let dts_ms = self.clock.map(true, time_us, arrived);
        if let Some(data) = step.sample.clone() {
            self.hub.frame(
                self.session,
                Instant::now(),
                Frame {
                    track: TrackKind::Video,
                    dts_ms,
                    cts_ms: 0,
                    keyframe: step.keyframe,
                    data,
                },
            );
        }
        self.keys.frame(dts_ms, step.keyframe)
    }

    fn audio(&mut self, time_us: u64, data: &Arc<[u8]>, arrived: Instant) {
        let dts_ms = self.clock.map(false, time_us, arrived);
        if let Some(aac) = &mut self.aac {
            aac.packet(time_us, dts_ms, data);
        }
        self.hub
            .opus_packet(self.session, dts_ms, Bytes::from_owner(data.clone()));
    }
}

impl Drop for WhipSink {
    fn drop(&mut self) {
        self.hub.detach(self.session, Instant::now());
        tracing::info!(stream = %self.stream, peer = %self.peer, "whip publish finished");
        if let Some((url, hooks)) = self.done.take() {
            let body = serde_json::json!({"event": "publish_done", "stream": self.stream, "client": self.peer.to_string()});
            hooks.notify(url, body, "on_publish_done");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn au(parts: &[&[u8]]) -> Bytes {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(p);
        }
        Bytes::from(v)
    }

    #[test]
    fn parameter_sets_become_a_configuration_once_and_again_when_they_change() {
        let mut v = VideoIn::default();
        // A frame before any parameter sets: nothing to decode it with.
        let early = v.access_unit(&au(&[&[0x41, 1, 2]])).unwrap();
        assert_eq!((early.config, early.sample), (None, None));
        let key = v.access_unit(&au(&[SPS, PPS, &[0x65, 7, 7]])).unwrap();
        assert!(key.keyframe && key.config.is_some());
        assert_eq!(key.sample.as_deref(), Some(&[0, 0, 0, 3, 0x65, 7, 7][..]));
        // The same parameter sets again (every keyframe carries them).
        let again = v.access_unit(&au(&[SPS, PPS, &[0x65, 8]])).unwrap();
        assert!(again.config.is_none());
        let delta = v.access_unit(&au(&[&[0x41, 9]])).unwrap();
        assert!(!delta.keyframe && delta.sample.is_some());
        // A new PPS: a new configuration.
        let changed = v.access_unit(&au(&[SPS, &[0x68, 0xce, 0x3c, 0x80], &[0x65, 1]]));
        assert!(changed.unwrap().config.is_some());
        assert!(v.access_unit(&Bytes::from_static(&[1, 2, 3])).is_err());
    }

    #[test]
    fn a_keyframe_is_wanted_from_the_segment_target_on_until_one_comes() {
        let mut k = KeyPacer::new(Duration::from_secs(2));
        // Nothing yet: the first frame should be a keyframe.
        assert!(k.frame(0, false));
        assert!(!k.frame(33, true));
        assert!(!k.frame(1_966, false));
        // An early keyframe (after a loss) cuts nothing.
        assert!(!k.frame(1_000, true));
        assert!(k.frame(2_033, false));
        assert!(k.frame(2_066, false), "asked again until it comes");
        assert!(!k.frame(2_100, true));
        assert!(!k.frame(4_000, false));
        assert!(k.frame(4_100, false));
    }

    #[test]
    fn both_clocks_start_at_their_first_arrival() {
        let mut c = Clock::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Random RTP bases; audio arrives first, video 40 ms later.
        assert_eq!(c.map(false, 7_000_000_000, ms(0)), 0);
        assert_eq!(c.map(true, 123_456_789, ms(40)), 40);
        assert_eq!(c.map(true, 123_456_789 + 33_333, ms(75)), 73);
        assert_eq!(c.map(false, 7_000_000_000 + 20_000, ms(21)), 20);
        assert_eq!(c.map(true, 123_456_789 + 1_000_000, ms(1040)), 1040);
    }
}
