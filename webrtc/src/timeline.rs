//! One viewer's RTP timestamps: the stream's presentation times, kept
//! moving forward. A publisher that reconnects (or a backup that takes
//! over) starts its clock anew; a receiver fed a timestamp that jumps back,
//! or far ahead, holds or drops frames until its jitter buffer resets. So a
//! jump is folded into an offset, and the timestamps go on one frame later.

/// A jump beyond this (either way) is a new timeline, not a late frame.
const MAX_STEP: u64 = 5 * crate::feed::VIDEO_CLOCK;
/// The step put in place of a jump: one frame at 30 fps.
const STEP: u64 = crate::feed::VIDEO_CLOCK / 30;

#[derive(Debug, Default, Clone, Copy)]
pub struct Timeline {
    offset: i64,
    last: Option<u64>,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// The RTP time for a frame of presentation time `pts`.
    pub fn map(&mut self, pts: u64) -> u64 {
        let out = pts.saturating_add_signed(self.offset);
        let out = match self.last {
            Some(last) if out <= last || out - last > MAX_STEP => {
                let to = last + STEP;
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
}
