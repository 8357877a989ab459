//! WHIP ingest (RFC 9725): a publisher's session receives H.264 (or VP8,
//! from a publisher that offers no H.264) and Opus,
//! and each depacketized frame goes to an [`IngestSink`] (the origin's
//! packager) as it completes. The publisher's session lives with the
//! viewers' in the server's one task and on its one UDP port.
//!
//! Browsers send a keyframe when asked, rarely otherwise; the sink says
//! when it needs one (a segment boundary is due) and the session asks
//! with a PLI, at most every [`PLI_EVERY`]. A frame after lost packets is
//! not passed on: the session asks for a keyframe and waits for it, so
//! the packager never stores a picture a decoder would smear.

use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::Codec;
use str0m::media::MediaData;

/// A publisher is asked for a keyframe no more often than this.
pub const PLI_EVERY: Duration = Duration::from_millis(500);

/// The video a publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// Annex B access units, parameter sets in band.
    H264,
    /// One VP8 frame per call (RFC 6386).
    Vp8,
}

/// Where a WHIP publisher's media goes. Called from the WebRTC task: must
/// not block. Dropping it ends the publish.
pub trait IngestSink: Send + 'static {
    /// A video frame in `codec`, its presentation time in microseconds on
    /// the publisher's RTP clock, and when its first packet arrived.
    /// Returns whether a keyframe should be asked for.
    fn video(
        &mut self,
        codec: VideoCodec,
        time_us: u64,
        data: &Arc<[u8]>,
        keyframe: bool,
        arrived: Instant,
    ) -> bool;
    /// An Opus packet, timed likewise.
    fn audio(&mut self, time_us: u64, data: &Arc<[u8]>, arrived: Instant);
}

/// A publisher session's receiving side.
pub(crate) struct Receiving {
    sink: Box<dyn IngestSink>,
    last_pli: Option<Instant>,
    /// Video was lost: frames wait for the next keyframe.
    want_key: bool,
    pub frames: u64,
    pub audio: u64,
    pub plis: u64,
}

impl Receiving {
    pub(crate) fn new(sink: Box<dyn IngestSink>) -> Self {
        Self {
            sink,
            last_pli: None,
            want_key: true,
            frames: 0,
            audio: 0,
            plis: 0,
        }
    }

    /// One depacketized frame: to the sink, unless it follows a loss.
    /// Returns whether to send a PLI now.
    pub(crate) fn media(&mut self, d: &MediaData, video: bool, now: Instant) -> bool {
        let time_us = d.time.as_micros();
        if !video {
            self.audio += 1;
            self.sink.audio(time_us, &d.data, d.network_time);
            return false;
        }
        let key = d.is_keyframe();
        if !d.contiguous && !key {
            self.want_key = true;
        }
        if key {
            self.want_key = false;
        }
        let wants = if self.want_key {
            true
        } else {
            self.frames += 1;
            let codec = match d.params.spec().codec {
                Codec::Vp8 => VideoCodec::Vp8,
                _ => VideoCodec::H264,
            };
            self.sink
                .video(codec, time_us, &d.data, key, d.network_time)
        };
        wants && self.pli_due(now)
    }

    /// Whether a PLI may go now (and counts it).
    pub(crate) fn pli_due(&mut self, now: Instant) -> bool {
        if self
            .last_pli
            .is_some_and(|t| now.saturating_duration_since(t) < PLI_EVERY)
        {
            return false;
        }
        self.last_pli = Some(now);
        self.plis += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_requests_are_paced() {
        struct Nothing;
        impl IngestSink for Nothing {
            fn video(&mut self, _: VideoCodec, _: u64, _: &Arc<[u8]>, _: bool, _: Instant) -> bool {
                true
            }
            fn audio(&mut self, _: u64, _: &Arc<[u8]>, _: Instant) {}
        }
        let mut r = Receiving::new(Box::new(Nothing));
        let t0 = Instant::now();
        assert!(r.pli_due(t0));
        assert!(!r.pli_due(t0 + Duration::from_millis(100)));
        assert!(r.pli_due(t0 + PLI_EVERY));
        assert_eq!(r.plis, 2);
    }
}
