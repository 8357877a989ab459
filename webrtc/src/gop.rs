//! The keyframe cache: one stream's frames since its last keyframe, so a
//! viewer who joins mid-GOP gets a picture at once instead of waiting for
//! the next keyframe, and then the live frames.
//!
//! The cached frames go out as a burst, stamped a tick apart and ending
//! at the newest frame's time: the receiver decodes them back to back and
//! shows the newest, instead of playing the GOP's span again at its own
//! pace (which would put the viewer that far behind live for good).

use crate::feed::Frame;
use std::collections::VecDeque;

/// Frames the cache keeps at most (10 s at 60 fps); a longer GOP is not
/// cached, and viewers joining it wait for its next keyframe.
pub const MAX_FRAMES: usize = 600;
/// Bytes the cache keeps at most.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Gop {
    frames: VecDeque<Frame>,
    bytes: usize,
}

impl Gop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a live frame: a keyframe starts the cache over; a frame that
    /// would pass the bounds empties it until the next keyframe.
    pub fn push(&mut self, frame: &Frame) {
        if frame.keyframe {
            self.frames.clear();
            self.bytes = 0;
        } else if self.frames.is_empty() {
            return;
        }
        if self.frames.len() >= MAX_FRAMES || self.bytes + frame.data.len() > MAX_BYTES {
            self.frames.clear();
            self.bytes = 0;
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push_back(frame.clone());
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// What a joining viewer is sent first: the keyframe and every frame
    /// after it, restamped a tick apart so that the last keeps its own
    /// time. Empty when there is no keyframe to start from.
    pub fn burst(&self) -> Vec<Frame> {
        let Some(last) = self.frames.back() else {
            return Vec::new();
        };
        let n = self.frames.len() as u64;
        self.frames
            .iter()
            .enumerate()
            .map(|(i, f)| Frame {
                pts: last.pts.saturating_sub(n - 1 - i as u64),
                ..f.clone()
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn f(pts: u64, keyframe: bool, len: usize) -> Frame {
        Frame {
            pts,
            keyframe,
            data: Arc::from(vec![0u8; len]),
            arrived: Instant::now(),
            captured: std::time::SystemTime::now(),
        }
    }

    #[test]
    fn a_joiner_gets_the_last_keyframe_and_what_followed_ending_at_live() {
        let mut g = Gop::new();
        // Nothing before the first keyframe is kept.
        g.push(&f(0, false, 10));
        assert!(g.burst().is_empty());
        for i in 0..5 {
            g.push(&f(3000 * i, i == 0, 10));
        }
        g.push(&f(15_000, true, 20));
        g.push(&f(18_000, false, 10));
        g.push(&f(21_000, false, 10));
        let b = g.burst();
        assert_eq!(b.len(), 3);
        assert!(b[0].keyframe && !b[1].keyframe);
        let pts: Vec<u64> = b.iter().map(|x| x.pts).collect();
        assert_eq!(pts, [20_998, 20_999, 21_000]);
        assert_eq!(g.bytes(), 40);
        // The burst shares the frames' bytes.
        assert!(Arc::ptr_eq(&b[2].data, &g.frames[2].data));
    }

    #[test]
    fn a_gop_past_the_bounds_is_dropped_until_the_next_keyframe() {
        let mut g = Gop::new();
        g.push(&f(0, true, 10));
        for i in 1..=MAX_FRAMES as u64 {
            g.push(&f(i, false, 10));
        }
        assert!(g.is_empty());
        g.push(&f(99_999, false, 10));
        assert!(g.is_empty());
        g.push(&f(100_000, true, MAX_BYTES));
        assert_eq!(g.burst().len(), 1);
        g.push(&f(100_001, false, 1));
        assert!(g.is_empty() && g.bytes() == 0);
    }
}
