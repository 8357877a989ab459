//! Whether a live stream is healthy, as IVS reports it: `HEALTHY`,
//! `STARVING` (live, but media is not arriving as it should) or `UNKNOWN`
//! (not live). A sans-IO state machine, fed every tick with what the
//! ingest measured ([`Sample`]), so the rules are tested on a virtual clock.
//!
//! A stream is starving while any of these holds:
//! * no video frame for [`NO_VIDEO`] although the stream had video (the
//!   encoder stopped sending video but kept the connection);
//! * the ingest bitrate over the last 2 s below [`BITRATE_FLOOR`] of its
//!   own recent average (an exponential average over about 30 s, built
//!   only from healthy stretches, so a long starve does not become the new
//!   normal);
//! * the frame rate below [`FPS_FLOOR`] of its average.
//!
//! The averages count after [`WARMUP`] of live media. With hysteresis: the
//! verdict turns `STARVING` after the signs hold for [`BAD_FOR`] and back
//! to `HEALTHY` after they stay away for [`GOOD_FOR`], so a flapping
//! stream changes state (and calls the `on_health` webhook) a few times,
//! not every tick.

use serde::Serialize;
use std::time::{Duration, Instant};

pub const NO_VIDEO: Duration = Duration::from_secs(2);
pub const BITRATE_FLOOR: f64 = 0.3;
pub const FPS_FLOOR: f64 = 0.5;
pub const WARMUP: Duration = Duration::from_secs(10);
pub const BAD_FOR: Duration = Duration::from_secs(2);
pub const GOOD_FOR: Duration = Duration::from_secs(5);
/// Time constant of the averages.
const AVERAGE_OVER: Duration = Duration::from_secs(30);
/// The window the current rates are taken over.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "HEALTHY")]
    Healthy,
    #[serde(rename = "STARVING")]
    Starving,
    #[default]
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "HEALTHY",
            Verdict::Starving => "STARVING",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// What the ingest measured, while live.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Bits per second over [`RATE_WINDOW`].
    pub bitrate_bps: f64,
    /// Video frames per second over [`RATE_WINDOW`].
    pub fps: f64,
    /// Since the latest video frame; `None` if there never was video.
    pub video_age: Option<Duration>,
}

/// A change worth telling the operator: into or out of `STARVING`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: Verdict,
    pub to: Verdict,
    /// What was wrong (into `STARVING`) or had been (out of it).
    pub reasons: Vec<&'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct Monitor {
    verdict: Verdict,
    live_since: Option<Instant>,
    last: Option<Instant>,
    avg_bitrate: Option<f64>,
    avg_fps: Option<f64>,
    bad_since: Option<Instant>,
    good_since: Option<Instant>,
    reasons: Vec<&'static str>,
    /// Why it turned `STARVING`, for the report of its recovery.
    cause: Vec<&'static str>,
}

impl Monitor {
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// What is wrong now (empty when nothing is).
    pub fn reasons(&self) -> &[&'static str] {
        &self.reasons
    }

    /// The averages the drops are measured against, once warmed up.
    pub fn averages(&self) -> (Option<f64>, Option<f64>) {
        (self.avg_bitrate, self.avg_fps)
    }

    /// One tick: `sample` while live, `None` when not. Returns the change
    /// to report, if any.
    pub fn observe(&mut self, now: Instant, sample: Option<Sample>) -> Option<Transition> {
        let Some(s) = sample else {
            *self = Monitor::default();
            return None;
        };
        let since = *self.live_since.get_or_insert(now);
        let dt = self
            .last
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
        self.last = Some(now);
        let warm = now.saturating_duration_since(since) >= WARMUP;
        let mut reasons = Vec::new();
        if s.video_age.is_some_and(|a| a >= NO_VIDEO) {
            reasons.push("no_video");
        }
        if warm
            && self
                .avg_bitrate
                .is_some_and(|a| s.bitrate_bps < BITRATE_FLOOR * a)
        {
            reasons.push("bitrate_drop");
        }
        if warm
            && s.video_age.is_some()
            && !reasons.contains(&"no_video")
            && self.avg_fps.is_some_and(|a| s.fps < FPS_FLOOR * a)
        {
            reasons.push("low_frame_rate");
        }
        let bad = !reasons.is_empty();
        if !bad {
            // Only healthy stretches teach the averages what normal is.
            let k = 1.0 - (-dt.as_secs_f64() / AVERAGE_OVER.as_secs_f64()).exp();
            let ewma = |avg: Option<f64>, x: f64| Some(avg.map_or(x, |a| a + k * (x - a)));
            self.avg_bitrate = ewma(self.avg_bitrate, s.bitrate_bps);
            self.avg_fps = ewma(self.avg_fps, s.fps);
        }
        if bad {
            self.good_since = None;
            self.bad_since.get_or_insert(now);
        } else {
            self.bad_since = None;
            self.good_since.get_or_insert(now);
        }
        let next = match self.verdict {
            Verdict::Starving if self.good_since.is_some_and(|g| now - g >= GOOD_FOR) => {
                Verdict::Healthy
            }
            Verdict::Healthy | Verdict::Unknown
                if self.bad_since.is_some_and(|b| now - b >= BAD_FOR) =>
            {
                Verdict::Starving
            }
            Verdict::Unknown if !bad => Verdict::Healthy,
            v => v,
        };
        self.reasons = reasons;
        if next == self.verdict {
            return None;
        }
        let from = std::mem::replace(&mut self.verdict, next);
        let reasons = match next {
            Verdict::Starving => {
                self.cause = self.reasons.clone();
                self.cause.clone()
            }
            _ => std::mem::take(&mut self.cause),
        };
        (from == Verdict::Starving || next == Verdict::Starving).then_some(Transition {
            from,
            to: next,
            reasons,
        })
    }
}

#[cfg(test)]
mod tests;
