//! One stream's video, from the CMAF chunks the packager makes (one
//! `moof`+`mdat` per frame, at the origin as it packages and at an edge as
//! they are pushed) to [`Frame`]s ready for RTP: Annex B access units on
//! the 90 kHz RTP video clock. Sans-IO: the caller passes bytes and the
//! arrival time.
//!
//! The conversion runs once per stream, whatever the number of viewers: a
//! frame's bytes are an `Arc<[u8]>` that every session's packetizer reads.

use crate::video::{VideoError, VideoTrack};
use bytes::{Bytes, BytesMut};
use livecdn_shared::cmaf::{scan, ScanError};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The RTP clock of every video payload format: 90 kHz.
pub const VIDEO_CLOCK: u64 = 90_000;

/// One video frame ready to packetize.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Presentation time on the stream's timeline, 90 kHz ticks.
    pub pts: u64,
    pub keyframe: bool,
    /// Annex B access unit (parameter sets in front of keyframes).
    pub data: Arc<[u8]>,
    /// When its chunk reached this process.
    pub arrived: Instant,
    /// The same on the wall clock: sent as the frame's `abs-capture-time`,
    /// so a receiver on a synchronised clock measures the delay from here
    /// to its screen (the glass-to-glass benchmark reads it in Chromium).
    pub captured: SystemTime,
}

/// Why a chunk gave no frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("no init section yet")]
    NoTrack,
    #[error("init section: {0}")]
    Init(String),
    #[error("chunk: {0}")]
    Scan(#[from] ScanError),
    #[error("sample: {0}")]
    Video(#[from] VideoError),
}

/// Chunks of one rendition in, frames out.
#[derive(Debug, Default)]
pub struct Feed {
    track: Option<VideoTrack>,
    last_pts: Option<u64>,
    reorders: bool,
}

impl Feed {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rendition's (new) decoder configuration.
    pub fn set_track(&mut self, track: VideoTrack) {
        self.track = Some(track);
    }

    pub fn track(&self) -> Option<&VideoTrack> {
        self.track.as_ref()
    }

    /// Whether frames come out of presentation order (B-frames: a
    /// composition offset, or a frame presented before the one decoded
    /// before it), which WebRTC receivers do not reorder: such a rendition
    /// must not be passed through.
    pub fn reorders(&self) -> bool {
        self.reorders
    }

    /// One chunk, as the pieces it is held in (a header and its payloads,
    /// or one buffer): its frames in decode order.
    pub fn chunk(&mut self, pieces: &[Bytes], now: Instant) -> Result<Vec<Frame>, FeedError> {
        let track = self.track.as_ref().ok_or(FeedError::NoTrack)?;
        let data = joined(pieces);
        let scanned = scan(&data)?;
        let wall = SystemTime::now();
        let mut out = Vec::with_capacity(scanned.samples.len());
        for s in &scanned.samples {
            let end = s.offset + s.size as usize;
            let sample = data.slice(s.offset..end);
            let ticks = s.dts.saturating_add_signed(i64::from(s.cts));
            let pts = rescale(ticks, track.timescale);
            // A composition offset is how B-frames show in CMAF (the
            // keyframe that starts a GOP already has one): known from the
            // first chunk, before any frame goes out, rather than at the
            // first frame out of order.
            if s.cts != 0 || self.last_pts.is_some_and(|last| pts < last) {
                self.reorders = true;
            }
            self.last_pts = Some(pts);
            out.push(Frame {
                pts,
                keyframe: s.sync,
                data: Arc::from(&track.annex_b(&sample, s.sync)?[..]),
                arrived: now,
                captured: wall,
            });
        }
        Ok(out)
    }
}

/// A chunk held in several pieces as one buffer (copied only then: a
/// chunk is usually one piece).
pub(crate) fn joined(pieces: &[Bytes]) -> Bytes {
    match pieces {
        [one] => one.clone(),
        many => {
            let mut b = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
            for p in many {
                b.extend_from_slice(p);
            }
            b.freeze()
        }
    }
}

/// `ticks` of a `timescale` clock on the 90 kHz clock.
fn rescale(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * u128::from(VIDEO_CLOCK) / u128::from(timescale.max(1))) as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::video::tests::record;
    use livecdn_shared::cmaf::{chunk, Sample};

    fn frame_chunk(seq: u32, dts: u64, cts: i32, sync: bool) -> Vec<Bytes> {
        let nal = if sync { 0x65 } else { 0x41 };
        let payload = Bytes::from(vec![0, 0, 0, 3, nal, seq as u8, 0xaa]);
        let s = Sample {
            duration: 1500,
            size: payload.len() as u32,
            cts_offset: cts,
            sync,
        };
        chunk(seq, dts, &[s], &[payload]).unwrap()
    }

    fn feed(timescale: u32) -> Feed {
        let mut f = Feed::new();
        f.set_track(VideoTrack::from_record(timescale, record()).unwrap());
        f
    }

    #[test]
    fn chunks_become_annex_b_frames_on_the_rtp_clock() {
        let mut f = feed(1000);
        let now = Instant::now();
        assert_eq!(
            Feed::new()
                .chunk(&frame_chunk(1, 0, 0, true), now)
                .unwrap_err(),
            FeedError::NoTrack
        );
        let a = f.chunk(&frame_chunk(1, 2000, 0, true), now).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].pts, a[0].keyframe), (180_000, true));
        assert!(crate::video::has_parameter_sets(&a[0].data));
        assert!(a[0].data.ends_with(&[0, 0, 0, 1, 0x65, 1, 0xaa]));
        // The same chunk in one buffer gives the same frame.
        let joined: Vec<u8> = frame_chunk(2, 2040, 0, false).concat();
        let b = f.chunk(&[Bytes::from(joined)], now).unwrap();
        assert_eq!((b[0].pts, b[0].keyframe), (183_600, false));
        assert_eq!(&b[0].data[..], &[0, 0, 0, 1, 0x41, 2, 0xaa]);
        assert!(!f.reorders());
    }

    #[test]
    fn b_frames_are_noticed_and_bad_chunks_are_errors() {
        let now = Instant::now();
        // The first keyframe of a B-frame GOP is shown later than decoded.
        let mut f = feed(90_000);
        f.chunk(&frame_chunk(1, 0, 6000, true), now).unwrap();
        assert!(f.reorders());
        // Without offsets, a frame shown before the one decoded before it.
        let mut f = feed(90_000);
        f.chunk(&frame_chunk(1, 0, 0, true), now).unwrap();
        f.chunk(&frame_chunk(2, 6000, 0, false), now).unwrap();
        assert!(!f.reorders());
        f.chunk(&frame_chunk(3, 3000, 0, false), now).unwrap();
        assert!(f.reorders());
        let mut torn = frame_chunk(4, 9000, 0, false).concat();
        torn.truncate(torn.len() - 1);
        assert!(matches!(
            f.chunk(&[Bytes::from(torn)], now),
            Err(FeedError::Scan(_))
        ));
    }
}
