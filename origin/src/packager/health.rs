//! Ingest health of one stream: bitrate, frame rate, keyframe interval,
//! A/V drift, B-frames and the publisher's clock against ours, over a
//! sliding window of arrival times. The verdict made from these figures is
//! [`crate::verdict`]'s.

use livecdn_shared::media::{Frame, TrackKind};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frames older than this drop out of the rates.
const WINDOW: Duration = Duration::from_secs(5);
/// Bound on remembered frames (a 5 s window at 1000 frames/s).
const MAX_FRAMES: usize = 5_000;

#[derive(Debug, Default, Clone)]
pub struct Health {
    /// (arrival, track, bytes)
    recent: VecDeque<(Instant, TrackKind, usize)>,
    last_video_ms: Option<u32>,
    last_audio_ms: Option<u32>,
    last_keyframe_ms: Option<u32>,
    /// Media time between the last two IDRs, in seconds.
    pub keyframe_interval: Option<f64>,
    pub frames_total: u64,
    pub bytes_total: u64,
    /// When the latest video frame arrived.
    last_video_at: Option<Instant>,
    /// When the latest video frame with a composition offset (a B-frame
    /// stream) arrived.
    bframe_at: Option<Instant>,
    /// The first video frame: its arrival and decode time, against which
    /// the publisher's clock is compared.
    clock_anchor: Option<(Instant, u32)>,
    /// The publisher's media time ran this far ahead of our clock since
    /// the anchor, at the latest video frame.
    clock_drift_ms: Option<i64>,
}

/// A snapshot for the API and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct HealthReport {
    pub bitrate_bps: u64,
    pub video_fps: f64,
    pub keyframe_interval_s: Option<f64>,
    /// Video timestamp minus audio timestamp at the latest frames, in ms.
    pub av_drift_ms: Option<i64>,
    /// The publisher's media clock minus ours since its first video frame
    /// (positive: it sends media faster than real time), in ms.
    pub clock_drift_ms: Option<i64>,
    /// Video frames with composition offsets (B-frames) in the window.
    pub b_frames: bool,
    /// Since the latest video frame arrived, in ms.
    pub video_age_ms: Option<u64>,
}

/// Past this the anchor is stale (a timestamp jump, a long stall): the
/// drift is measured afresh from the next frame.
const MAX_CLOCK_DRIFT_MS: i64 = 60_000;

impl Health {
    pub fn record(&mut self, now: Instant, frame: &Frame) {
        self.frames_total += 1;
        self.bytes_total += frame.data.len() as u64;
        if self.recent.len() == MAX_FRAMES {
            self.recent.pop_front();
        }
        self.recent.push_back((now, frame.track, frame.data.len()));
        match frame.track {
            TrackKind::Video => {
                self.last_video_ms = Some(frame.dts_ms);
                self.last_video_at = Some(now);
                if frame.cts_ms != 0 {
                    self.bframe_at = Some(now);
                }
                let (at, dts) = *self.clock_anchor.get_or_insert((now, frame.dts_ms));
                let media = i64::from(frame.dts_ms.wrapping_sub(dts) as i32);
                let wall = i64::try_from(now.saturating_duration_since(at).as_millis())
                    .unwrap_or(i64::MAX);
                let drift = media.saturating_sub(wall);
                if drift.abs() > MAX_CLOCK_DRIFT_MS {
                    self.clock_anchor = Some((now, frame.dts_ms));
                    self.clock_drift_ms = Some(0);
                } else {
                    self.clock_drift_ms = Some(drift);
                }
                if frame.keyframe {
                    if let Some(prev) = self.last_keyframe_ms {
                        let d = frame.dts_ms.wrapping_sub(prev);
                        if d > 0 && d < 60_000 {
                            self.keyframe_interval = Some(f64::from(d) / 1000.0);
                        }
                    }
                    self.last_keyframe_ms = Some(frame.dts_ms);
                }
            }
            TrackKind::Audio => self.last_audio_ms = Some(frame.dts_ms),
        }
    }

    /// Average ingest bits per second over the whole session so far, for a
    /// BANDWIDTH before any segment is complete.
    pub fn bitrate_bps_estimate(&self) -> u64 {
        match (self.recent.front(), self.recent.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let bytes: usize = self.recent.iter().map(|r| r.2).sum();
                (bytes as f64 * 8.0 / (b.0 - a.0).as_secs_f64()) as u64
            }
            _ => 1_000_000,
        }
    }

    /// Bits and video frames per second over the last `window` (at most
    /// the remembered 5 s), counted over the whole window even when the
    /// stream is younger, so a stall reads as a drop.
    pub fn rate(&self, now: Instant, window: Duration) -> (f64, f64) {
        let window = window.min(WINDOW);
        let since = now.checked_sub(window);
        let (mut bytes, mut video) = (0usize, 0usize);
        for (t, kind, len) in self.recent.iter().rev() {
            if since.is_some_and(|s| *t < s) {
                break;
            }
            bytes += len;
            video += usize::from(*kind == TrackKind::Video);
        }
        let secs = window.as_secs_f64().max(0.001);
        (bytes as f64 * 8.0 / secs, video as f64 / secs)
    }

    pub fn report(&self, now: Instant) -> HealthReport {
        let since = now.checked_sub(WINDOW);
        let live = self
            .recent
            .iter()
            .filter(|(t, _, _)| since.is_none_or(|s| *t >= s));
        let (mut bytes, mut video) = (0usize, 0usize);
        let mut first: Option<Instant> = None;
        for (t, kind, len) in live {
            first = Some(first.map_or(*t, |f| f.min(*t)));
            bytes += len;
            if *kind == TrackKind::Video {
                video += 1;
            }
        }
        let span = first
            .map(|f| now.saturating_duration_since(f).as_secs_f64())
            .unwrap_or(0.0)
            .max(1.0)
            .min(WINDOW.as_secs_f64());
        HealthReport {
            bitrate_bps: (bytes as f64 * 8.0 / span) as u64,
            video_fps: video as f64 / span,
            keyframe_interval_s: self.keyframe_interval,
            av_drift_ms: match (self.last_video_ms, self.last_audio_ms) {
                (Some(v), Some(a)) => Some(i64::from(v.wrapping_sub(a) as i32)),
                _ => None,
            },
            clock_drift_ms: self.clock_drift_ms,
            b_frames: self.bframe_at.is_some_and(|t| since.is_none_or(|s| t >= s)),
            video_age_ms: self.last_video_at.map(|t| {
                u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
            }),
        }
    }
}
