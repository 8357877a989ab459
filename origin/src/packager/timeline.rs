//! Per-track timestamp mapping: FLV milliseconds (32-bit, may wrap or jump) to
//! a monotonic tick count in the track's timescale.
//!
//! Why: players need `tfdt` to grow steadily. FLV timestamps wrap after 2^32
//! ms, restart at zero when an encoder reconnects, and sometimes jump; each of
//! those would otherwise show up as a decode-time discontinuity in the CMAF
//! output. The mapping keeps the output continuous and reports what it did.

/// A forward step larger than this is treated as a jump, not as real time.
const MAX_FORWARD_STEP_MS: i64 = 5_000;

/// What `Timeline::map` decided for one input timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Decode time in ticks of the track timescale.
    pub dts: u64,
    /// The input jumped (backwards, or forward by more than 5 s) and the
    /// output was re-anchored to continue after the previous frame.
    pub jumped: bool,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    timescale: u32,
    last_raw: Option<u32>,
    /// Unwrapped input time of the last frame, in ms.
    last_ms: i64,
    /// Added to unwrapped ms (converted to ticks) to get output ticks.
    offset_ticks: i64,
    last_out: Option<u64>,
}

impl Timeline {
    pub fn new(timescale: u32) -> Self {
        Self {
            timescale,
            last_raw: None,
            last_ms: 0,
            offset_ticks: 0,
            last_out: None,
        }
    }

    pub fn ms_to_ticks(&self, ms: i64) -> i64 {
        ms.saturating_mul(i64::from(self.timescale)) / 1000
    }

    /// Maps a raw FLV timestamp. `continue_at` is the tick at which the next
    /// frame should start if the input jumped (normally previous dts plus the
    /// previous duration).
    pub fn map(&mut self, raw_ms: u32, continue_at: u64) -> Mapped {
        let Some(last_raw) = self.last_raw else {
            // First frame: output starts at `continue_at` (0 for a new stream,
            // the end of the previous publisher's media after a reconnect).
            self.last_raw = Some(raw_ms);
            self.last_ms = i64::from(raw_ms);
            self.offset_ticks = continue_at as i64 - self.ms_to_ticks(self.last_ms);
            self.last_out = Some(continue_at);
            return Mapped {
                dts: continue_at,
                jumped: false,
            };
        };
        // Wrapping difference: a 32-bit wrap is a small positive step.
        let step = i64::from(raw_ms.wrapping_sub(last_raw) as i32);
        self.last_raw = Some(raw_ms);
        self.last_ms += step;
        let mut jumped = false;
        if !(0..=MAX_FORWARD_STEP_MS).contains(&step) {
            jumped = true;
            self.offset_ticks = continue_at as i64 - self.ms_to_ticks(self.last_ms);
        }
        let mut dts = (self.ms_to_ticks(self.last_ms) + self.offset_ticks).max(0) as u64;
        if let Some(prev) = self.last_out {
            // Equal timestamps would make a zero-duration sample.
            if dts <= prev {
                dts = prev + 1;
            }
        }
        self.last_out = Some(dts);
        Mapped { dts, jumped }
    }

    /// Forgets the input history so that the next frame (from a new
    /// publisher) is anchored at `continue_at` by `map`.
    pub fn reset(&mut self) {
        self.last_raw = None;
        self.last_out = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_milliseconds_to_ticks() {
        let mut t = Timeline::new(90_000);
        assert_eq!(t.map(1000, 0).dts, 0);
        assert_eq!(t.map(1033, 0).dts, 33 * 90);
        assert_eq!(t.map(1067, 0).dts, 67 * 90);
    }

    #[test]
    fn thirty_two_bit_wrap_is_a_small_step() {
        let mut t = Timeline::new(1000);
        let a = t.map(u32::MAX - 10, 0);
        let b = t.map(20, 0);
        assert_eq!(a.dts, 0);
        assert_eq!(b.dts, 31);
        assert!(!b.jumped);
    }

    #[test]
    fn backward_and_large_forward_jumps_continue_the_output() {
        let mut t = Timeline::new(1000);
        assert_eq!(t.map(5000, 0).dts, 0);
        assert_eq!(t.map(5040, 0).dts, 40);
        let back = t.map(100, 80);
        assert!(back.jumped);
        assert_eq!(back.dts, 80);
        assert_eq!(t.map(140, 0).dts, 120);
        let fwd = t.map(60_140, 160);
        assert!(fwd.jumped);
        assert_eq!(fwd.dts, 160);
        assert_eq!(t.map(60_180, 0).dts, 200);
    }

    #[test]
    fn equal_timestamps_still_increase() {
        let mut t = Timeline::new(1000);
        t.map(10, 0);
        assert_eq!(t.map(10, 0).dts, 1);
    }

    #[test]
    fn reset_anchors_next_frame_at_continue_point() {
        let mut t = Timeline::new(90_000);
        t.map(50_000, 0);
        t.reset();
        assert_eq!(t.map(0, 123_456).dts, 123_456);
        assert_eq!(t.map(40, 0).dts, 123_456 + 3600);
    }
}
