//! Media numbering across origins: a stream's MSNs, discontinuity count and
//! init generations continue when another origin takes it over.
//!
//! Two origins number a stream's media independently, so after a failover
//! (or a publisher that moved) the same `N.m4s` would name different media,
//! and a cache that still holds the first origin's object would serve it
//! under the second one's name. So the holder of a stream's map entry also
//! writes where its numbering stands ([`Report`]: the next MSN it would
//! name, its discontinuity count, its newest init generation, its segment
//! target) at every renewal, and a hub that takes the entry over from
//! another one first moves its own numbering past it ([`Rebase`]): MSNs
//! above any the previous holder can have named since its last report,
//! one discontinuity more (the switch), init generations above its. The
//! report outlives the entry ([`REPORT_TTL`]), so a stream published again
//! soon after it ended, on any origin, does not reuse names either.

/// How long a holder's report is kept after its last write: longer than
/// an edge or a player keeps a live object.
pub const REPORT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The Redis hash of a stream's numbering report.
pub fn numbering_key(stream: &str) -> String {
    format!("livecdn:cluster:numbering:{stream}")
}

/// Where a hub's numbering stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The lowest MSN it has not named yet, in any rendition.
    pub next_msn: u64,
    /// Its discontinuity count at the live edge (EXT-X-DISCONTINUITY-SEQUENCE
    /// plus the discontinuities in the window), the highest of its
    /// renditions.
    pub discontinuities: u64,
    /// Its newest init generation, the highest of its renditions.
    pub init_gen: u32,
}

/// What the holder of a stream's entry last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The hub that wrote it: node and hub instance ([`owner`]).
    pub owner: String,
    pub position: Position,
    /// Its segment target in milliseconds: no two of its segments start
    /// closer together (a segment ends at the first keyframe after it).
    pub target_ms: u64,
    /// Redis's clock (ms) when it was written.
    pub at_ms: u64,
}

/// The name a hub instance reports under: a node has one hub per stream
/// at a time, and a new one (the stream published again, the process
/// restarted) has a new instance number.
pub fn owner(node: &str, instance: u64) -> String {
    format!("{node}#{instance}")
}

/// How a hub that takes a stream over renumbers: its open segment gets
/// `msn` (older segments are dropped: their MSNs may be the previous
/// holder's), its EXT-X-DISCONTINUITY-SEQUENCE becomes at least
/// `discontinuities`, and its init generations start at `init_gen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebase {
    pub msn: u64,
    pub discontinuities: u64,
    pub init_gen: u32,
}

impl Report {
    /// The rebase that clears everything the reporter can have named by
    /// Redis time `now_ms`: after its report it started segment
    /// `next_msn`, then at most one more per segment target, and one more
    /// for a segment cut short (a publisher's reconnect).
    pub fn rebase_at(&self, now_ms: u64) -> Rebase {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        let started = elapsed / self.target_ms.max(1);
        Rebase {
            msn: self
                .position
                .next_msn
                .saturating_add(started)
                .saturating_add(2),
            discontinuities: self.position.discontinuities.saturating_add(1),
            init_gen: self.position.init_gen.saturating_add(1),
        }
    }

    /// The hash fields, as the claim script writes them (with `at`).
    pub fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("owner", self.owner.clone()),
            ("next", self.position.next_msn.to_string()),
            ("disc", self.position.discontinuities.to_string()),
            ("gen", self.position.init_gen.to_string()),
            ("target", self.target_ms.to_string()),
        ]
    }

    /// Reads a report back; `None` if a field is missing or malformed.
    pub fn from_fields<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        Some(Self {
            owner: get("owner").filter(|o| !o.is_empty())?.to_string(),
            position: Position {
                next_msn: get("next")?.parse().ok()?,
                discontinuities: get("disc")?.parse().ok()?,
                init_gen: get("gen")?.parse().ok()?,
            },
            target_ms: get("target")?.parse().ok()?,
            at_ms: get("at")?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn report(next_msn: u64, at_ms: u64) -> Report {
        Report {
            owner: owner("http://10.0.0.1:8080", 42),
            position: Position {
                next_msn,
                discontinuities: 3,
                init_gen: 1,
            },
            target_ms: 2000,
            at_ms,
        }
    }

    #[test]
    fn a_takeover_clears_every_msn_the_previous_holder_can_have_named() {
        let r = report(100, 10_000);
        // At once: segment 100 may have started right after the report
        // (and been cut short), so 102 is the first safe name.
        assert_eq!(r.rebase_at(10_000).msn, 102);
        // 5 s later: 100 at once, then 101 and 102 two seconds apart.
        assert_eq!(r.rebase_at(15_000).msn, 104);
        // A clock that reads earlier than the report counts as no time.
        assert_eq!(r.rebase_at(9_000).msn, 102);
        let b = r.rebase_at(15_000);
        assert_eq!((b.discontinuities, b.init_gen), (4, 2));
        // A zero target is not a division by zero.
        let zero = Report {
            target_ms: 0,
            ..report(u64::MAX - 1, 0)
        };
        assert_eq!(zero.rebase_at(1_000).msn, u64::MAX);
    }

    #[test]
    fn reports_round_trip_and_malformed_ones_are_none() {
        let r = report(7, 1_765_000_000_000);
        let mut map: HashMap<&str, String> = r.fields().into_iter().collect();
        map.insert("at", r.at_ms.to_string());
        assert_eq!(
            Report::from_fields(|k| map.get(k).map(String::as_str)),
            Some(r)
        );
        for spoil in ["owner", "next", "disc", "gen", "target", "at"] {
            let mut m = map.clone();
            m.insert(spoil, String::new());
            assert_eq!(
                Report::from_fields(|k| m.get(k).map(String::as_str)),
                None,
                "{spoil}"
            );
        }
    }
}
