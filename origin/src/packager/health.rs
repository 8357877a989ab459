//! Ingest health of one stream: bitrate, frame rate, keyframe interval and
//! A/V drift, over a sliding window of arrival times.

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
}

/// A snapshot for the API and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct HealthReport {
    pub bitrate_bps: u64,
    pub video_fps: f64,
    pub keyframe_interval_s: Option<f64>,
    /// Video timestamp minus audio timestamp at the latest frames, in ms.
    pub av_drift_ms: Option<i64>,
}

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
        }
    }
}
