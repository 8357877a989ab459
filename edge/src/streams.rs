//! What the edge knows of each stream's timing, learned from the playlists
//! that pass through it (pushed or pulled): PART-TARGET, TARGETDURATION and
//! each rendition's newest segment and part.
//!
//! Hold times, cache TTLs and the blocking-reload checks follow each
//! stream's own timing instead of constants, so an edge in front of an
//! origin with 1 s parts and 4 s segments waits long enough for them, and
//! one in front of 0.1 s parts does not cache a playlist for three of its
//! parts. A stream the edge has not seen a playlist of yet gets the
//! defaults (DESIGN.md: 0.333 s parts, 2 s segments).
//!
//! The table is bounded: at most [`MAX_STREAMS`] streams and
//! [`MAX_RENDITIONS`] renditions each; entries unseen for a minute are
//! dropped first when it is full, and a full table learns nothing new (the
//! defaults then apply).

use crate::cache::CachePolicy;
use livecdn_shared::playlist::{BlockingDirective, DirectiveError, MediaPlaylist};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Streams whose timing is kept at most.
pub const MAX_STREAMS: usize = 4096;
/// Renditions kept per stream at most.
pub const MAX_RENDITIONS: usize = 16;
/// An entry not refreshed for this long may be dropped for a new one.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// A rendition's newest position, as its last playlist said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// MSN of the newest segment listed (the open one included).
    pub last_msn: u64,
    /// The newest part listed.
    pub last_part: Option<(u64, u32)>,
    /// The playlist's PART-TARGET.
    pub part_target: Duration,
    /// When this was learned.
    pub at: Instant,
}

#[derive(Debug)]
struct Entry {
    policy: CachePolicy,
    renditions: Vec<(String, Progress)>,
    seen: Instant,
    /// The origin's last pulled playlist said its playlists are not
    /// pushed (a DVR window; see `livecdn_shared::push`).
    pulls_playlists: bool,
}

/// The per-stream timing table.
#[derive(Debug)]
pub struct Streams {
    default: CachePolicy,
    map: RwLock<HashMap<String, Entry>>,
    /// Streams whose playback needs a token (an `authorized` channel), as
    /// the origin's last answer for each said.
    protected: RwLock<std::collections::HashSet<String>>,
}

/// Streams remembered as protected at most (a memory bound; past it,
/// every stream's answers still carry the mark and are checked).
const MAX_PROTECTED: usize = 65_536;

impl Streams {
    /// An empty table; unknown streams get `default`.
    pub fn new(default: CachePolicy) -> Streams {
        Streams {
            default,
            map: RwLock::new(HashMap::new()),
            protected: RwLock::new(std::collections::HashSet::new()),
        }
    }

    /// Whether `stream`'s playback needs a token (an `authorized` channel).
    pub fn needs_token(&self, stream: &str) -> bool {
        let set = self.protected.read().unwrap_or_else(|e| e.into_inner());
        set.contains(stream)
    }

    /// What the origin's latest answer for `stream` said about tokens.
    pub fn set_needs_token(&self, stream: &str, needs: bool) {
        if needs == self.needs_token(stream) {
            return;
        }
        let mut set = self.protected.write().unwrap_or_else(|e| e.into_inner());
        if !needs {
            set.remove(stream);
        } else if set.len() < MAX_PROTECTED {
            set.insert(stream.to_string());
        }
    }

    /// The TTL rules and hold times for `stream`: its own timing once a
    /// playlist of it was seen, else the defaults.
    pub fn policy(&self, stream: &str) -> CachePolicy {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(stream).map_or(self.default, |e| e.policy)
    }

    /// Whether `stream` is real as far as this edge knows: one of its media
    /// playlists came from upstream (pushed, or pulled with 200). Metric
    /// labels, viewer tracking and push subscriptions are kept for known
    /// streams only, so made-up names cannot grow them.
    pub fn knows(&self, stream: &str) -> bool {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.contains_key(stream)
    }

    /// How long an upstream may hold a blocking request of `stream`: three
    /// target durations (when the origin answers 503), plus a margin.
    pub fn blocking_wait(&self, stream: &str) -> Duration {
        self.policy(stream).target_duration * 3 + Duration::from_secs(1)
    }

    /// The newest position of `stream`'s `rendition`, if a playlist was seen.
    pub fn progress(&self, stream: &str, rendition: &str) -> Option<Progress> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(stream)?;
        entry
            .renditions
            .iter()
            .find(|(r, _)| r == rendition)
            .map(|(_, p)| *p)
    }

    /// Learns from a playlist of `stream`/`rendition` seen at `now`.
    pub fn learn(&self, stream: &str, rendition: &str, playlist: &MediaPlaylist, now: Instant) {
        let part_target = playlist
            .part_target
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 60.0)
            .map(Duration::from_secs_f64);
        let target_duration = Duration::from_secs(playlist.target_duration.clamp(1, 60));
        let policy = CachePolicy {
            part_target: part_target.unwrap_or(target_duration),
            target_duration,
        };
        // A playlist that lists nothing yet still says the stream is real
        // and what its timing is; it has no position to learn.
        let progress = last_msn(playlist).map(|last_msn| Progress {
            last_msn,
            last_part: playlist
                .last_part()
                .and_then(|(m, p)| Some((m, u32::try_from(p).ok()?))),
            part_target: policy.part_target,
            at: now,
        });
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(stream) && map.len() >= MAX_STREAMS {
            map.retain(|_, e| now.saturating_duration_since(e.seen) < FORGET_AFTER);
            if map.len() >= MAX_STREAMS {
                return;
            }
        }
        let entry = map.entry(stream.to_string()).or_insert_with(|| Entry {
            policy,
            renditions: Vec::new(),
            seen: now,
            pulls_playlists: false,
        });
        // The video's timing is the stream's (the audio's PART-TARGET may
        // be a little longer); any rendition's TARGETDURATION is the same.
        if rendition != "audio" || entry.renditions.is_empty() {
            entry.policy = policy;
        }
        entry.seen = now;
        let Some(progress) = progress else {
            return;
        };
        let known = entry.renditions.len();
        match entry.renditions.iter_mut().find(|(r, _)| r == rendition) {
            Some((_, p)) => *p = progress,
            None if known < MAX_RENDITIONS => {
                entry.renditions.push((rendition.to_string(), progress));
            }
            None => {}
        }
    }

    /// What the origin's latest pulled playlist of `stream` said: its
    /// playlists are pulled, not pushed (a stream not known yet is left
    /// alone; its first playlist teaches it).
    pub fn set_pulls_playlists(&self, stream: &str, pulls: bool) {
        if self.pulls_playlists(stream) == pulls {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(stream) {
            e.pulls_playlists = pulls;
        }
    }

    /// Whether `stream`'s playlists are pulled even while push delivers
    /// its media, so a blocking reload must not wait for a pushed one.
    pub fn pulls_playlists(&self, stream: &str) -> bool {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(stream).is_some_and(|e| e.pulls_playlists)
    }

    /// Every known stream's timing, for the API.
    pub fn snapshot(&self) -> Vec<(String, CachePolicy)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(s, e)| (s.clone(), e.policy)).collect()
    }

    /// Streams known, for metrics.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no stream is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// MSN of the newest segment a playlist lists, the open one included.
fn last_msn(playlist: &MediaPlaylist) -> Option<u64> {
    let last = playlist.segments.len().checked_sub(1)?;
    Some(playlist.segment_msn(last))
}

impl Progress {
    /// Whether the playlist this was learned from already answered a
    /// blocking request for `msn`/`part`: nothing about it is left to be
    /// pushed, so waiting for a push would only delay it.
    pub fn lists(&self, msn: u64, part: Option<u32>) -> bool {
        match (part, self.last_part) {
            (None, _) => msn < self.last_msn,
            (Some(p), Some(last)) => (msn, p) <= last,
            (Some(_), None) => msn < self.last_msn,
        }
    }

    /// Checks a blocking request against this position, the way the origin
    /// does (RFC 8216bis 6.2.5.2), allowing for what the origin may have
    /// produced since it was learned: a segment per whole half target
    /// duration and a part per whole half part target. A rendition whose
    /// playlists stopped coming (a rung whose encoder is down follows the
    /// source's edge) soon gets a wide allowance, so a request the origin
    /// would hold is not refused here.
    pub fn check(
        &self,
        msn: u64,
        part: Option<u32>,
        target_duration: Duration,
        now: Instant,
    ) -> Result<(), DirectiveError> {
        let age = now.saturating_duration_since(self.at);
        let per = |unit: Duration| {
            let half = (unit / 2).max(Duration::from_millis(1));
            u64::try_from(age.as_nanos() / half.as_nanos()).unwrap_or(u64::MAX)
        };
        let more_segments = per(target_duration);
        let more_parts = u32::try_from(per(self.part_target)).unwrap_or(u32::MAX);
        let directive = BlockingDirective {
            msn,
            part,
            part_target: self.part_target,
        };
        let last_part = self.last_part.map(|(m, p)| match more_parts {
            0 => (m, p),
            // Somewhere later: only the MSN rule is safe to apply.
            _ => (m.saturating_add(u64::from(more_parts)), 0),
        });
        directive.check(
            self.last_msn.saturating_add(more_segments),
            if more_parts == 0 { last_part } else { None },
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn playlist(text: &str) -> MediaPlaylist {
        match MediaPlaylist::parse(text) {
            Ok(p) => p,
            Err(e) => panic!("{e}: {text}"),
        }
    }

    fn text(target: u64, part_target: f64, first: u64, segments: u64, open_parts: u32) -> String {
        let mut t = format!(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PART-INF:PART-TARGET={part_target:.5}\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n"
        );
        for i in 0..segments {
            t.push_str(&format!("#EXTINF:{target}.00000,\n{}.m4s\n", first + i));
        }
        for p in 0..open_parts {
            t.push_str(&format!(
                "#EXT-X-PART:DURATION={part_target:.5},URI=\"{}.{p}.m4s\"\n",
                first + segments
            ));
        }
        t
    }

    #[test]
    fn timing_comes_from_each_streams_playlists() {
        let streams = Streams::new(CachePolicy::default());
        let now = Instant::now();
        assert_eq!(streams.policy("slow"), CachePolicy::default());
        assert!(!streams.knows("slow"));
        streams.learn("slow", "source", &playlist(&text(4, 1.0, 10, 5, 2)), now);
        streams.learn("fast", "source", &playlist(&text(1, 0.1, 0, 3, 4)), now);
        assert!(streams.knows("slow"));
        let slow = streams.policy("slow");
        assert_eq!(slow.part_target, Duration::from_secs(1));
        assert_eq!(slow.target_duration, Duration::from_secs(4));
        assert_eq!(streams.blocking_wait("slow"), Duration::from_secs(13));
        let fast = streams.policy("fast");
        assert_eq!(fast.part_target, Duration::from_millis(100));
        assert_eq!(streams.blocking_wait("fast"), Duration::from_secs(4));
        let p = streams.progress("slow", "source").unwrap();
        assert_eq!((p.last_msn, p.last_part), (15, Some((15, 1))));
        assert!(streams.progress("slow", "audio").is_none());
    }

    #[test]
    fn a_stream_whose_playlists_are_pulled_is_remembered_as_such() {
        let streams = Streams::new(CachePolicy::default());
        let now = Instant::now();
        // Not known yet: nothing to mark.
        streams.set_pulls_playlists("dvr", true);
        assert!(!streams.pulls_playlists("dvr"));
        streams.learn("dvr", "source", &playlist(&text(2, 0.33333, 0, 20, 1)), now);
        streams.set_pulls_playlists("dvr", true);
        assert!(streams.pulls_playlists("dvr"));
        // Later playlists keep it until an answer says otherwise.
        streams.learn("dvr", "source", &playlist(&text(2, 0.33333, 0, 21, 1)), now);
        assert!(streams.pulls_playlists("dvr"));
        streams.set_pulls_playlists("dvr", false);
        assert!(!streams.pulls_playlists("dvr"));
    }

    #[test]
    fn far_ahead_requests_are_refused_with_allowance_for_age() {
        let streams = Streams::new(CachePolicy::default());
        let t0 = Instant::now();
        streams.learn("s", "v", &playlist(&text(2, 0.33333, 0, 18, 5)), t0);
        let p = streams.progress("s", "v").unwrap();
        let target = Duration::from_secs(2);
        assert!(p.lists(17, None) && p.lists(18, Some(4)) && p.lists(3, Some(99)));
        assert!(!p.lists(18, None) && !p.lists(18, Some(5)) && !p.lists(19, Some(0)));
        // Fresh: the origin's rules exactly (newest part 18.4, limit 9).
        assert!(p.check(20, None, target, t0).is_ok());
        assert!(p.check(21, None, target, t0).is_err());
        assert!(p.check(18, Some(13), target, t0).is_ok());
        assert!(p.check(18, Some(14), target, t0).is_err());
        // Two seconds later up to two more segments may exist; parts are
        // not judged.
        let later = t0 + Duration::from_secs(2);
        assert!(p.check(22, None, target, later).is_ok());
        assert!(p.check(18, Some(14), target, later).is_ok());
        assert!(p.check(23, None, target, later).is_err());
    }

    #[test]
    fn the_table_is_bounded() {
        let streams = Streams::new(CachePolicy::default());
        let now = Instant::now();
        let pl = playlist(&text(2, 0.33333, 0, 2, 1));
        for i in 0..MAX_STREAMS + 100 {
            streams.learn(&format!("s{i}"), "v", &pl, now);
        }
        assert_eq!(streams.len(), MAX_STREAMS);
        for r in 0..MAX_RENDITIONS + 5 {
            streams.learn("s0", &format!("r{r}"), &pl, now);
        }
        assert!(streams.progress("s0", "r0").is_some());
        assert!(streams
            .progress("s0", &format!("r{}", MAX_RENDITIONS + 1))
            .is_none());
        // A minute on, stale entries make room.
        streams.learn("new", "v", &pl, now + FORGET_AFTER);
        assert_eq!(streams.len(), 1);
    }
}
