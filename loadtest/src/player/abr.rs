//! Rendition choice by measured throughput, like hls.js's EWMA bandwidth
//! estimator, simplified.
//!
//! Each part or segment download is one sample of `bits / seconds`; for a part
//! fetched through its preload hint the seconds exclude the wait for the part to
//! be produced (`total - ttfb`), or the estimate would be the stream's bitrate.
//! Samples are weighted by the media duration they carry, with a half-life in
//! media seconds, so the estimate follows a change within a few parts.
//!
//! Switch down when the estimate falls below [`DOWN_FACTOR`] of the current
//! variant's bandwidth (to the best variant that fits) or when playback stalls
//! (one step); switch up one step when the estimate exceeds [`UP_FACTOR`] of the
//! next variant's bandwidth and the buffer is healthy.

use std::time::Duration;

/// Switch down when the estimate is below this fraction of the current bandwidth.
pub const DOWN_FACTOR: f64 = 0.8;
/// Switch up when the estimate is above this multiple of the next bandwidth.
pub const UP_FACTOR: f64 = 1.4;

/// An EWMA throughput estimate in bits per second.
#[derive(Debug, Clone)]
pub struct Abr {
    estimate: Option<f64>,
    half_life: f64,
}

/// The inputs to one switching decision.
#[derive(Debug, Clone, Copy)]
pub struct AbrState<'a> {
    /// Index of the playing variant in `bandwidths`.
    pub current: usize,
    /// `BANDWIDTH` of each variant, ascending.
    pub bandwidths: &'a [u64],
    /// Media buffered ahead of the playhead.
    pub buffer: Duration,
    /// Buffer level at or above which switching up is allowed.
    pub healthy_buffer: Duration,
    /// Playback is stalled.
    pub stalled: bool,
}

impl Abr {
    /// A fresh estimator; `half_life` is in media time.
    pub fn new(half_life: Duration) -> Abr {
        Abr {
            estimate: None,
            half_life: half_life.as_secs_f64().max(0.001),
        }
    }

    /// The current estimate in bits per second, once there is a sample.
    pub fn estimate(&self) -> Option<f64> {
        self.estimate
    }

    /// Adds a download of `bytes` that took `transfer` and carried `media` of
    /// playback. Downloads too quick to time are ignored.
    pub fn sample(&mut self, bytes: u64, transfer: Duration, media: Duration) {
        let seconds = transfer.as_secs_f64();
        if seconds < 1e-4 || bytes == 0 {
            return;
        }
        let rate = bytes as f64 * 8.0 / seconds;
        let weight = media.as_secs_f64().max(0.001);
        let alpha = 1.0 - 0.5_f64.powf(weight / self.half_life);
        self.estimate = Some(match self.estimate {
            Some(old) => old + alpha * (rate - old),
            None => rate,
        });
    }

    /// The variant to switch to and why, or `None` to stay.
    pub fn decide(&self, state: AbrState<'_>) -> Option<(usize, &'static str)> {
        let current_bw = *state.bandwidths.get(state.current)? as f64;
        if let Some(estimate) = self.estimate {
            if state.current > 0 && estimate < DOWN_FACTOR * current_bw {
                let fits = state.bandwidths[..state.current]
                    .iter()
                    .rposition(|&bw| (bw as f64) < DOWN_FACTOR * estimate)
                    .unwrap_or(0);
                return Some((fits, "throughput"));
            }
        }
        if state.stalled {
            return (state.current > 0).then(|| (state.current - 1, "stall"));
        }
        let next = state.current + 1;
        let next_bw = *state.bandwidths.get(next)? as f64;
        let estimate = self.estimate?;
        (estimate > UP_FACTOR * next_bw && state.buffer >= state.healthy_buffer)
            .then_some((next, "throughput"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BWS: [u64; 3] = [500_000, 1_000_000, 2_000_000];
    const PART: Duration = Duration::from_millis(333);

    fn state(current: usize, stalled: bool) -> AbrState<'static> {
        AbrState {
            current,
            bandwidths: &BWS,
            buffer: Duration::from_secs(1),
            healthy_buffer: Duration::from_millis(500),
            stalled,
        }
    }

    fn feed(abr: &mut Abr, bps: u64, count: usize) {
        for _ in 0..count {
            // 41_625 bytes is 333 ms of 1 Mbit/s.
            let bytes = 41_625;
            abr.sample(
                bytes,
                Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64),
                PART,
            );
        }
    }

    #[test]
    fn first_sample_sets_estimate_then_ewma_moves_towards_new_rate() {
        let mut abr = Abr::new(Duration::from_secs(1));
        feed(&mut abr, 10_000_000, 1);
        let first = abr.estimate().unwrap_or_default();
        assert!((first - 10_000_000.0).abs() < 1.0, "{first}");
        feed(&mut abr, 1_000_000, 1);
        let second = abr.estimate().unwrap_or_default();
        assert!(second < first && second > 1_000_000.0, "{second}");
        feed(&mut abr, 1_000_000, 30);
        let settled = abr.estimate().unwrap_or_default();
        assert!((settled - 1_000_000.0).abs() < 20_000.0, "{settled}");
    }

    #[test]
    fn switches_down_to_best_fit_and_up_one_step() {
        let mut abr = Abr::new(Duration::from_secs(1));
        feed(&mut abr, 700_000, 30);
        assert_eq!(abr.decide(state(2, false)), Some((0, "throughput")));
        let mut abr = Abr::new(Duration::from_secs(1));
        feed(&mut abr, 10_000_000, 30);
        assert_eq!(abr.decide(state(0, false)), Some((1, "throughput")));
        assert_eq!(abr.decide(state(2, false)), None, "already at the top");
    }

    #[test]
    fn stall_steps_down_and_low_buffer_blocks_up() {
        let mut abr = Abr::new(Duration::from_secs(1));
        feed(&mut abr, 10_000_000, 30);
        assert_eq!(abr.decide(state(2, true)), Some((1, "stall")));
        let low = AbrState {
            buffer: Duration::from_millis(100),
            ..state(0, false)
        };
        assert_eq!(abr.decide(low), None);
        assert_eq!(
            Abr::new(PART).decide(state(1, false)),
            None,
            "no estimate yet"
        );
    }
}
