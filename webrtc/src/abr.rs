//! Which rendition of the ladder one WHEP viewer gets, from the bandwidth
//! its congestion feedback allows. Sans-IO.
//!
//! The estimate is str0m's send-side one (Google congestion control over
//! the viewer's TWCC feedback), or the viewer's own REMB. A viewer moves
//! down as soon as the estimate falls below what its rendition needs
//! (packets queue and are lost from then on, and the picture freezes);
//! it moves up only when the estimate has allowed the better rendition,
//! with headroom, for [`UP_AFTER`], one step at a time, so a fluctuating
//! link does not flap. Moves are at least [`MIN_GAP`] apart; the server
//! carries a move out at the new rendition's next keyframe.

use std::time::{Duration, Instant};

/// The estimate must exceed a rendition's bitrate by this factor for the
/// viewer to move up to it (audio, RTP overhead and the bitrate's own
/// peaks ride on top of the video's average).
pub const HEADROOM: f64 = 1.25;
/// How long the estimate must allow a better rendition before a move up.
pub const UP_AFTER: Duration = Duration::from_secs(4);
/// The least time between two moves.
pub const MIN_GAP: Duration = Duration::from_secs(2);

/// One rendition a viewer may get, with its video bitrate (bits/s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub bitrate: u64,
}

/// One viewer's place on the ladder.
#[derive(Debug, Clone)]
pub struct Abr {
    /// Best first.
    ladder: Vec<Rung>,
    current: usize,
    better_since: Option<Instant>,
    last_move: Option<Instant>,
}

impl Abr {
    /// A viewer starting on `ladder[0]`. `None` when there is nothing to
    /// move between.
    pub fn new(mut ladder: Vec<Rung>) -> Option<Abr> {
        ladder.sort_by_key(|r| std::cmp::Reverse(r.bitrate));
        (ladder.len() > 1).then_some(Abr {
            ladder,
            current: 0,
            better_since: None,
            last_move: None,
        })
    }

    pub fn current(&self) -> &Rung {
        &self.ladder[self.current.min(self.ladder.len() - 1)]
    }

    pub fn ladder(&self) -> &[Rung] {
        &self.ladder
    }

    /// A new ladder (renditions came or went); the viewer stays on its
    /// rendition where it is still there, else on the best. `None` when
    /// nothing is left to move between.
    pub fn relist(self, ladder: Vec<Rung>) -> Option<Abr> {
        let name = &self.current().name;
        let mut next = Abr::new(ladder)?;
        next.current = next
            .ladder
            .iter()
            .position(|r| r.name == *name)
            .unwrap_or(0);
        next.last_move = self.last_move;
        Some(next)
    }

    /// The best rendition `estimate` carries (the last one when none).
    fn fits(&self, estimate: u64) -> usize {
        self.ladder
            .iter()
            .position(|r| r.bitrate as f64 * HEADROOM <= estimate as f64)
            .unwrap_or(self.ladder.len() - 1)
    }

    /// A bandwidth estimate at `now`: the rendition to move to, if any.
    pub fn estimate(&mut self, estimate: u64, now: Instant) -> Option<&Rung> {
        let fits = self.fits(estimate);
        let settled = self
            .last_move
            .is_none_or(|t| now.saturating_duration_since(t) >= MIN_GAP);
        let next = if fits > self.current {
            // Down: what the link carries now, at once.
            self.better_since = None;
            (estimate < self.current().bitrate && settled).then_some(fits)
        } else if fits < self.current {
            // Up: one step, once the estimate has allowed it for a while.
            let since = *self.better_since.get_or_insert(now);
            (now.saturating_duration_since(since) >= UP_AFTER && settled)
                .then_some(self.current - 1)
        } else {
            self.better_since = None;
            None
        }?;
        self.current = next;
        self.better_since = None;
        self.last_move = Some(now);
        Some(&self.ladder[next])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn ladder() -> Vec<Rung> {
        [("360p", 800_000), ("source", 2_500_000), ("180p", 300_000)]
            .map(|(n, b)| Rung {
                name: n.into(),
                bitrate: b,
            })
            .to_vec()
    }

    #[test]
    fn a_falling_estimate_moves_down_at_once_and_a_rising_one_up_step_by_step() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s);
        let mut a = Abr::new(ladder()).unwrap();
        assert_eq!(a.current().name, "source", "best first");
        assert!(a.estimate(4_000_000, at(0)).is_none());
        // Below the source's bitrate: straight to what fits.
        assert_eq!(a.estimate(500_000, at(100)).unwrap().name, "180p");
        // Good again, but not for long enough, nor after the last move.
        assert!(a.estimate(5_000_000, at(1_000)).is_none());
        assert!(a.estimate(5_000_000, at(4_000)).is_none());
        assert_eq!(a.estimate(5_000_000, at(5_000)).unwrap().name, "360p");
        // One step at a time, each after its own wait.
        assert!(a.estimate(5_000_000, at(6_000)).is_none());
        assert!(a.estimate(5_000_000, at(9_000)).is_none());
        assert_eq!(a.estimate(5_000_000, at(10_000)).unwrap().name, "source");
    }

    #[test]
    fn a_dip_between_good_estimates_restarts_the_wait_and_headroom_is_kept() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s);
        let mut a = Abr::new(ladder()).unwrap();
        assert_eq!(a.estimate(200_000, at(0)).unwrap().name, "180p");
        assert!(a.estimate(3_000_000, at(3_000)).is_none());
        // A dip that fits only where it is: the wait starts over.
        assert!(a.estimate(400_000, at(5_000)).is_none());
        assert!(a.estimate(3_000_000, at(6_000)).is_none());
        assert!(a.estimate(3_000_000, at(9_000)).is_none());
        assert_eq!(a.estimate(3_000_000, at(10_000)).unwrap().name, "360p");
        // 2.6 Mbit/s is above the source's 2.5 but without headroom.
        assert!(a.estimate(2_600_000, at(13_000)).is_none());
        assert!(a.estimate(2_600_000, at(20_000)).is_none());
        // Between 360p's bitrate and its headroom: no move down either.
        assert!(a.estimate(850_000, at(21_000)).is_none());
        assert_eq!(a.current().name, "360p");
    }

    #[test]
    fn one_rendition_is_no_ladder_and_relisting_keeps_the_place() {
        assert!(Abr::new(ladder()[..1].to_vec()).is_none());
        let mut a = Abr::new(ladder()).unwrap();
        assert_eq!(a.estimate(1_100_000, Instant::now()).unwrap().name, "360p");
        let a = a.relist(ladder()[..2].to_vec()).unwrap();
        assert_eq!(a.current().name, "360p");
        let a = a.relist(ladder()[1..].to_vec()).unwrap();
        assert_eq!(a.current().name, "source", "its rendition went");
        assert!(a.relist(ladder()[2..].to_vec()).is_none());
    }
}
