//! How long each kind of object stays fresh.
//!
//! LL-HLS objects fall in two groups. Parts, segments and init sections never
//! change once published, so they live until the byte budget evicts them. A
//! plain media playlist changes with every part, so it may be reused for only a
//! fraction of a part target or viewers fall behind the live edge. A blocking
//! playlist response is the answer for one `_HLS_msn`/`_HLS_part` and stays valid
//! for the six target durations RFC 8216bis appendix B suggests.

use std::time::Duration;

use super::key::ObjectKind;

/// TTL for immutable objects; the byte budget bounds them in practice.
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(3600);
/// TTL for the multivariant playlist: it changes only when renditions change.
pub const MASTER_TTL: Duration = Duration::from_secs(2);
/// TTL for a recording's playlists: a growing recording's gain a segment
/// every target duration, a finished one's never change (one request a
/// second per edge for each watched recording is the price of not knowing
/// which).
pub const RECORDED_PLAYLIST_TTL: Duration = Duration::from_secs(1);
/// TTL for other cacheable responses (unknown paths): short, since we do not
/// know what they are.
pub const OTHER_TTL: Duration = Duration::from_secs(2);
/// How long a 404 is remembered, so a burst of requests for a part that does
/// not exist yet costs one upstream request, not thousands.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// TTL rules, parameterised by the stream's LL-HLS timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// `PART-TARGET` of the streams behind this edge.
    pub part_target: Duration,
    /// `EXT-X-TARGETDURATION` of the streams behind this edge.
    pub target_duration: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            part_target: Duration::from_millis(333),
            target_duration: Duration::from_secs(2),
        }
    }
}

impl CachePolicy {
    /// How long a response of `kind` with `status` stays fresh; `None` means do
    /// not store it at all (errors other than 404: the next request should try
    /// upstream again). Waiting followers still get an unstored response.
    pub fn ttl(&self, kind: ObjectKind, status: u16) -> Option<Duration> {
        let fresh = self.kind_ttl(kind);
        match status {
            200 | 203 | 204 => Some(fresh),
            // A segment not there yet is about to be: the next request must
            // reach the origin (which holds it until the segment starts).
            404 if kind == ObjectKind::Segment => None,
            // Never longer than the positive TTL: a playlist 404 must not outlive
            // the moment the stream starts by more than a playlist refresh.
            404 => Some(NEGATIVE_TTL.min(fresh)),
            _ => None,
        }
    }

    /// How long past its TTL an object may still be served when upstream fails
    /// (stale-if-error). Only successful immutable objects qualify: a stale
    /// playlist would pin viewers to the past.
    pub fn stale_grace(&self, kind: ObjectKind, status: u16) -> Duration {
        if kind.is_immutable() && (200..300).contains(&status) {
            IMMUTABLE_TTL
        } else {
            Duration::ZERO
        }
    }

    fn kind_ttl(&self, kind: ObjectKind) -> Duration {
        match kind {
            ObjectKind::Part | ObjectKind::Segment | ObjectKind::Init => IMMUTABLE_TTL,
            ObjectKind::Playlist | ObjectKind::Manifest => self.part_target / 2,
            ObjectKind::BlockingPlaylist => self.target_duration * 6,
            ObjectKind::Master => MASTER_TTL,
            ObjectKind::RecordedPlaylist => RECORDED_PLAYLIST_TTL,
            ObjectKind::Other => OTHER_TTL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_table() {
        let p = CachePolicy::default();
        let ms = Duration::from_millis;
        let table: &[(ObjectKind, u16, Option<Duration>)] = &[
            (ObjectKind::Part, 200, Some(IMMUTABLE_TTL)),
            (ObjectKind::Segment, 200, Some(IMMUTABLE_TTL)),
            (ObjectKind::Init, 200, Some(IMMUTABLE_TTL)),
            (
                ObjectKind::Playlist,
                200,
                Some(ms(166) + Duration::from_nanos(500_000)),
            ),
            (ObjectKind::BlockingPlaylist, 200, Some(ms(12_000))),
            (ObjectKind::Master, 200, Some(ms(2000))),
            (ObjectKind::RecordedPlaylist, 200, Some(ms(1000))),
            (ObjectKind::RecordedPlaylist, 404, Some(ms(1000))),
            (ObjectKind::Part, 404, Some(ms(1000))),
            (ObjectKind::Segment, 404, None),
            (
                ObjectKind::Manifest,
                200,
                Some(ms(166) + Duration::from_nanos(500_000)),
            ),
            (
                ObjectKind::Playlist,
                404,
                Some(ms(166) + Duration::from_nanos(500_000)),
            ),
            (ObjectKind::Part, 500, None),
            (ObjectKind::Part, 502, None),
            (ObjectKind::Playlist, 503, None),
            (ObjectKind::Part, 403, None),
        ];
        for (kind, status, want) in table {
            assert_eq!(p.ttl(*kind, *status), *want, "{kind:?} {status}");
        }
        assert_eq!(p.stale_grace(ObjectKind::Part, 200), IMMUTABLE_TTL);
        assert_eq!(p.stale_grace(ObjectKind::Part, 404), Duration::ZERO);
        assert_eq!(p.stale_grace(ObjectKind::Playlist, 200), Duration::ZERO);
    }
}
