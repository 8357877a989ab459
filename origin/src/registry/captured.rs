//! When each recent video frame reached the origin, by its presentation
//! time on the packager's output timeline.
//!
//! WebRTC viewers are told, per frame, when it arrived (the
//! abs-capture-time RTP header extension), so a player can measure glass
//! to glass against the origin's clock. A rung's frame comes back from its
//! encoder on the same timeline as the source frame it was made from, so
//! looking its time up here starts its clock at the source's arrival and
//! counts the encoder's delay too.

use std::collections::VecDeque;
use std::time::SystemTime;

/// Frames remembered: 8.5 s at 60 fps, more than any encoder holds one.
const KEPT: usize = 512;

#[derive(Debug, Default)]
pub struct Captured {
    /// (presentation time in ms, arrival), in arrival order.
    recent: VecDeque<(u32, SystemTime)>,
}

impl Captured {
    /// A video frame presented at `pts_ms` arrived at `wall`.
    pub fn note(&mut self, pts_ms: u32, wall: SystemTime) {
        if self.recent.len() == KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back((pts_ms, wall));
    }

    /// When the frame presented at `pts_ms` arrived (within a millisecond:
    /// an encoder's output is rounded to whole milliseconds as its input
    /// was), the latest such frame if a restart reused the time.
    pub fn at(&self, pts_ms: u32) -> Option<SystemTime> {
        self.recent
            .iter()
            .rev()
            .find(|(p, _)| p.abs_diff(pts_ms) <= 1)
            .map(|(_, w)| *w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_frame_is_found_by_its_time_within_a_millisecond_until_it_ages_out() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut c = Captured::default();
        for i in 0..600u32 {
            c.note(i * 33, t0 + Duration::from_millis(u64::from(i) * 33 + 5));
        }
        let at = |i: u64| t0 + Duration::from_millis(i * 33 + 5);
        assert_eq!(c.at(599 * 33), Some(at(599)));
        assert_eq!(c.at(300 * 33 + 1), Some(at(300)));
        assert_eq!(c.at(300 * 33 - 1), Some(at(300)));
        assert_eq!(c.at(300 * 33 + 2), None, "between frames");
        assert_eq!(c.at(10 * 33), None, "aged out");
        assert_eq!(c.at(600 * 33), None, "not yet arrived");
        // A restart that reuses a time: the later arrival.
        c.note(599 * 33, t0 + Duration::from_secs(100));
        assert_eq!(c.at(599 * 33), Some(t0 + Duration::from_secs(100)));
    }
}
