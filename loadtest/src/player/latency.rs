//! Catching up with live: hls.js's latency controller in low-latency mode.
//!
//! hls.js never seeks closer to live on its own; with
//! `maxLiveSyncPlaybackRate` above 1 it plays faster while it is more than
//! 50 ms but less than its target plus a target duration behind its target
//! latency, and more than one second is buffered. The rate is
//! `2 / (1 + e^(-0.75 d - s))` in steps of 0.05 between 1 and the maximum,
//! where `d` is the distance from the target and `s` how long the playlist
//! has not advanced beyond three part targets. Its target is
//! `PART-HOLD-BACK` plus one second per stall (`liveSyncOnStallIncrease`),
//! at most one target duration more. With the default maximum of 1 a player
//! stays as far behind live as its start-up left it; a slow start (a busy
//! browser) then shows as latency for the rest of the session.

/// What the rate decision reads, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LiveSync {
    /// Estimated live edge (end of the playlist plus its age) minus the
    /// playhead.
    pub(crate) latency: f64,
    /// Target latency, stall increases included.
    pub(crate) target: f64,
    /// `EXT-X-TARGETDURATION`.
    pub(crate) target_duration: f64,
    /// Media buffered ahead of the playhead (every track).
    pub(crate) forward_buffer: f64,
    /// Playlist age beyond three part targets.
    pub(crate) edge_stalled: f64,
    /// `maxLiveSyncPlaybackRate`.
    pub(crate) max_rate: f64,
}

impl LiveSync {
    /// The playback rate hls.js would set: 1 when not catching up.
    pub(crate) fn rate(&self) -> f64 {
        let distance = self.latency - self.target;
        let in_live_range = distance < self.target + self.target_duration;
        if self.max_rate <= 1.0 || !in_live_range || distance <= 0.05 || self.forward_buffer <= 1.0
        {
            return 1.0;
        }
        let max = self.max_rate.min(2.0);
        let rate =
            (2.0 / (1.0 + (-0.75 * distance - self.edge_stalled).exp()) * 20.0).round() / 20.0;
        rate.clamp(1.0, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(latency: f64, forward_buffer: f64) -> LiveSync {
        LiveSync {
            latency,
            target: 1.0,
            target_duration: 2.0,
            forward_buffer,
            edge_stalled: 0.0,
            max_rate: 1.5,
        }
    }

    #[test]
    fn rate_follows_hlsjs_curve_in_steps_of_five_hundredths() {
        // 2 / (1 + e^(-0.75 d)): d = 0.5 -> 1.185, 0.1 -> 1.037, 1 -> 1.358.
        let cases = [(1.5, 1.2), (1.1, 1.05), (2.0, 1.35), (2.9, 1.5)];
        for (latency, want) in cases {
            let got = sync(latency, 2.0).rate();
            assert!((got - want).abs() < 1e-9, "latency {latency}: {got}");
        }
        let fast = LiveSync {
            max_rate: 4.0,
            ..sync(2.9, 2.0)
        };
        // 2 / (1 + e^(-0.75 * 1.9)) = 1.612, capped at 2 rather than 1.5.
        assert!((fast.rate() - 1.6).abs() < 1e-9, "{}", fast.rate());
    }

    #[test]
    fn no_catch_up_near_target_on_a_thin_buffer_far_behind_or_by_default() {
        assert_eq!(sync(1.04, 2.0).rate(), 1.0, "within 50 ms of target");
        assert_eq!(sync(1.5, 1.0).rate(), 1.0, "one second buffered or less");
        assert_eq!(sync(4.5, 5.0).rate(), 1.0, "beyond one target duration");
        let default = LiveSync {
            max_rate: 1.0,
            ..sync(1.5, 2.0)
        };
        assert_eq!(default.rate(), 1.0);
    }
}
