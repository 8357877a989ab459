//! One viewer's RTP timestamps: the stream's presentation times, kept
//! moving forward. A publisher that reconnects (or a backup that takes
//! over) starts its clock anew; a receiver fed a timestamp that jumps back,
//! or far ahead, holds or drops frames until its jitter buffer resets. So a
//! jump is folded into an offset, and the timestamps go on one frame later.

/// A jump beyond this many seconds (either way) is a new timeline, not a
/// late frame.
const MAX_JUMP_SECS: u64 = 5;

#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    offset: i64,
    last: Option<u64>,
    /// The step put in place of a jump: one frame.
    step: u64,
    max_step: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    /// Video: the 90 kHz clock, a jump becomes one frame at 30 fps.
    pub fn new() -> Self {
        Self::with_clock(crate::feed::VIDEO_CLOCK, crate::feed::VIDEO_CLOCK / 30)
    }

    /// A `clock` Hz timeline whose jumps become one `step`.
    pub fn with_clock(clock: u64, step: u64) -> Self {
        Self {
            offset: 0,
            last: None,
            step,
            max_step: MAX_JUMP_SECS * clock,
        }
    }

    /// The RTP time for a frame of presentation time `pts`.
    pub fn map(&mut self, pts: u64) -> u64 {
        let out = pts.saturating_add_signed(self.offset);
        let out = match self.last {
            Some(last) if out <= last || out - last > self.max_step => {
                let to = last + self.step;
                self.offset = to as i64 - pts as i64;
                to
            }
            _ => out,
        };
        self.last = Some(out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_the_stream_and_jumps_become_one_frame() {
        let mut t = Timeline::new();
        assert_eq!(t.map(900_000), 900_000);
        assert_eq!(t.map(903_000), 903_000);
        // The publisher came back with its clock at zero.
        assert_eq!(t.map(0), 906_000);
        assert_eq!(t.map(3_000), 909_000);
        // A jump far ahead is folded too.
        assert_eq!(t.map(10_000_000), 912_000);
        assert_eq!(t.map(10_003_000), 915_000);
        // A frame stamped at the same time moves on a frame.
        assert_eq!(t.map(10_003_000), 918_000);
    }

    #[test]
    fn an_audio_timeline_steps_by_its_own_frame() {
        let mut t = Timeline::with_clock(48_000, 960);
        assert_eq!(t.map(48_000), 48_000);
        assert_eq!(t.map(48_960), 48_960);
        assert_eq!(t.map(960), 49_920);
        // Four seconds ahead is still the same timeline at 48 kHz.
        assert_eq!(t.map(960 + 4 * 48_000), 49_920 + 4 * 48_000);
    }
}
