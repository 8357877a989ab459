//! Message ids: `MILLISECONDS-SEQUENCE`, ordered as Redis Streams order
//! them, so one type serves the Redis relay and the in-process one.

use std::fmt;
use std::str::FromStr;

/// A room entry's id. Ids increase in room order; the derived `Ord`
/// compares milliseconds, then sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    /// Before every entry (`0-0`): reading after it reads everything.
    pub const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    /// The id after `self` for an entry made at `now_ms` (what Redis's `*`
    /// does: the clock's millisecond, or the same one with the next
    /// sequence when the clock has not moved on or went back).
    pub fn next(self, now_ms: u64) -> EntryId {
        if now_ms > self.ms {
            EntryId { ms: now_ms, seq: 0 }
        } else {
            EntryId {
                ms: self.ms,
                seq: self.seq.saturating_add(1),
            }
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Not an id of the form `MS-SEQ`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message id: {0:?}")]
pub struct BadId(pub String);

impl FromStr for EntryId {
    type Err = BadId;
    fn from_str(s: &str) -> Result<Self, BadId> {
        let bad = || BadId(s.chars().take(48).collect());
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(bad());
        }
        Ok(EntryId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn orders_as_redis_does() {
        let a: EntryId = "1700000000000-9".parse().unwrap();
        let b: EntryId = "1700000000001-0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-9");
        assert_eq!(
            a.next(1_700_000_000_000),
            "1700000000000-10".parse().unwrap()
        );
        assert_eq!(a.next(1_600_000_000_000).ms, a.ms);
        assert_eq!(
            a.next(1_700_000_000_005),
            "1700000000005-0".parse().unwrap()
        );
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-1-1",
            "+1-0",
            "99999999999999999999999-0",
        ] {
            assert!(bad.parse::<EntryId>().is_err(), "{bad}");
        }
    }
}
