//! The requests a blocking playlist reload must reject at once
//! (RFC 8216bis 6.2.5.2), decided in one place for the origin and the edge.
//!
//! A server holds `_HLS_msn=M[&_HLS_part=P]` until the playlist has that part
//! (or a later one), but a request that cannot be satisfied soon is answered
//! 400 immediately rather than held: an `_HLS_msn` more than two segments
//! past the last one in the playlist, or an `_HLS_part` more than the Advance
//! Part Limit past the last part. (`_HLS_part` without `_HLS_msn` is already a
//! [`super::QueryError`].)

use std::time::Duration;

/// A blocking request's position, with the PART-TARGET of the playlist it
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingDirective {
    /// `_HLS_msn`.
    pub msn: u64,
    /// `_HLS_part`, if given.
    pub part: Option<u32>,
    /// PART-TARGET of the requested playlist.
    pub part_target: Duration,
}

/// Why a blocking request is answered 400 at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectiveError {
    /// `_HLS_msn` is more than two past the last segment.
    #[error("_HLS_msn={msn} is more than two segments past the last one ({last})")]
    MsnTooFarAhead {
        /// The requested MSN.
        msn: u64,
        /// MSN of the newest segment in the playlist.
        last: u64,
    },
    /// `_HLS_part` is more than the Advance Part Limit past the last part.
    #[error(
        "_HLS_msn={msn}&_HLS_part={part} is more than {limit:.1} parts past the last part ({last_msn}.{last_part})"
    )]
    PartTooFarAhead {
        /// The requested MSN.
        msn: u64,
        /// The requested part index.
        part: u32,
        /// The newest part in the playlist.
        last_msn: u64,
        /// Its index.
        last_part: u32,
        /// The Advance Part Limit.
        limit: f64,
    },
}

impl BlockingDirective {
    /// The Advance Part Limit: three divided by the Part Target Duration
    /// (in seconds) when that is under a second, else three.
    pub fn advance_part_limit(part_target: Duration) -> f64 {
        let secs = part_target.as_secs_f64();
        if secs > 0.0 && secs < 1.0 {
            3.0 / secs
        } else {
            3.0
        }
    }

    /// Checks the request against the playlist's newest segment (`last_msn`,
    /// the open one included once it lists a part) and newest part.
    ///
    /// How far ahead a part in a later segment is depends on how many parts
    /// the segments between will have; the count used is a lower bound (the
    /// part index plus one), so a request that may be satisfiable soon is
    /// never refused.
    pub fn check(
        &self,
        last_msn: u64,
        last_part: Option<(u64, u32)>,
    ) -> Result<(), DirectiveError> {
        if self.msn > last_msn.saturating_add(2) {
            return Err(DirectiveError::MsnTooFarAhead {
                msn: self.msn,
                last: last_msn,
            });
        }
        let (Some(part), Some((last_msn, last_part))) = (self.part, last_part) else {
            return Ok(());
        };
        let ahead = match self.msn.cmp(&last_msn) {
            std::cmp::Ordering::Less => return Ok(()),
            std::cmp::Ordering::Equal => i64::from(part) - i64::from(last_part),
            std::cmp::Ordering::Greater => i64::from(part) + 1,
        };
        let limit = Self::advance_part_limit(self.part_target);
        if ahead as f64 > limit {
            return Err(DirectiveError::PartTooFarAhead {
                msn: self.msn,
                part,
                last_msn,
                last_part,
                limit,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(msn: u64, part: Option<u32>, target_ms: u64) -> BlockingDirective {
        BlockingDirective {
            msn,
            part,
            part_target: Duration::from_millis(target_ms),
        }
    }

    #[test]
    fn advance_part_limit_follows_the_part_target() {
        let limit = |ms| BlockingDirective::advance_part_limit(Duration::from_millis(ms));
        assert!((limit(333) - 9.009).abs() < 0.001);
        assert!((limit(100) - 30.0).abs() < 1e-9);
        assert_eq!(limit(1000), 3.0);
        assert_eq!(limit(2000), 3.0);
    }

    #[test]
    fn far_ahead_requests_are_refused_and_near_ones_held() {
        // Newest segment 18 (listing parts 18.0-18.4), 0.333 s parts: the
        // limit is 9 parts.
        let last = Some((18, 4));
        let table: &[(BlockingDirective, bool)] = &[
            (d(20, None, 333), true),
            (d(21, None, 333), false),
            (d(5, Some(400), 333), true),
            (d(18, Some(13), 333), true),
            (d(18, Some(14), 333), false),
            (d(19, Some(8), 333), true),
            (d(19, Some(9), 333), false),
            (d(20, Some(0), 333), true),
            (d(21, Some(0), 333), false),
            // 1 s parts: three parts.
            (d(18, Some(7), 1000), true),
            (d(18, Some(8), 1000), false),
        ];
        for (req, ok) in table {
            assert_eq!(req.check(18, last).is_ok(), *ok, "{req:?}");
        }
        // Nothing listed yet: only the MSN rule applies.
        assert!(d(2, Some(40), 333).check(0, None).is_ok());
        assert!(d(3, None, 333).check(0, None).is_err());
    }
}
