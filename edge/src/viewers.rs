//! Concurrent viewers per stream: distinct sessions seen within a window of
//! two target durations (an LL-HLS player asks at least every part, so a
//! session that has not asked for that long has left).
//!
//! A session is the `X-Playback-Session-Id` header when the player sends
//! one (AVPlayer does), else the client address and User-Agent.
//!
//! Sharded by session, so a request takes one small lock of [`SHARDS`];
//! bounded to [`MAX_SESSIONS`] in all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bound on tracked sessions over all streams (memory bound).
const MAX_SESSIONS: usize = 1_000_000;
/// Independent maps, picked by session: a request locks one of them for
/// one insert, so viewers of one stream do not queue on one lock.
const SHARDS: usize = 32;

/// Sessions per stream within one shard.
#[derive(Debug)]
struct Shard {
    streams: HashMap<String, HashMap<u64, Instant>>,
    total: usize,
    /// When this shard last dropped expired sessions: a full shard is
    /// pruned at most this often, not on every request.
    pruned: Option<Instant>,
}

#[derive(Debug)]
pub struct Viewers {
    window: Duration,
    /// Sessions one shard may hold.
    per_shard: usize,
    shards: Vec<Mutex<Shard>>,
}

impl Viewers {
    pub fn new(window: Duration) -> Self {
        Self::bounded(window, MAX_SESSIONS)
    }

    /// At most about `max` sessions in all (`max / SHARDS` per shard).
    pub fn bounded(window: Duration, max: usize) -> Self {
        Self {
            window,
            per_shard: (max / SHARDS).max(1),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        streams: HashMap::new(),
                        total: 0,
                        pruned: None,
                    })
                })
                .collect(),
        }
    }

    pub fn session_id(
        playback_session: Option<&str>,
        peer_ip: std::net::IpAddr,
        user_agent: Option<&str>,
    ) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match playback_session {
            Some(s) => s.hash(&mut h),
            None => {
                peer_ip.hash(&mut h);
                user_agent.hash(&mut h);
            }
        }
        h.finish()
    }

    pub fn seen(&self, stream: &str, session: u64, now: Instant) {
        // The session id is already a hash: its low bits pick the shard.
        let Some(shard) = self.shards.get(session as usize % SHARDS) else {
            return;
        };
        let Ok(mut shard) = shard.lock() else {
            return;
        };
        if shard.total >= self.per_shard {
            let due = shard
                .pruned
                .is_none_or(|t| now.saturating_duration_since(t) >= self.window / 4);
            if due {
                shard.prune(now, self.window);
            }
            if shard.total >= self.per_shard {
                return;
            }
        }
        let sessions = match shard.streams.get_mut(stream) {
            Some(s) => s,
            None => shard.streams.entry(stream.to_string()).or_default(),
        };
        if sessions.insert(session, now).is_none() {
            shard.total += 1;
        }
    }

    /// Viewer counts per stream, after pruning, sorted by stream.
    pub fn counts(&self, now: Instant) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for shard in &self.shards {
            let Ok(mut shard) = shard.lock() else {
                continue;
            };
            shard.prune(now, self.window);
            for (stream, sessions) in &shard.streams {
                *counts.entry(stream.clone()).or_default() += sessions.len();
            }
        }
        counts.into_iter().collect()
    }
}

impl Shard {
    /// Drops sessions older than the window.
    fn prune(&mut self, now: Instant, window: Duration) {
        let mut total = 0;
        self.streams.retain(|_, s| {
            s.retain(|_, t| now.saturating_duration_since(*t) <= window);
            total += s.len();
            !s.is_empty()
        });
        self.total = total;
        self.pruned = Some(now);
    }
}

/// Viewers per stream: HLS/DASH (from [`Viewers::counts`]) and WebRTC
/// sessions (from the WebRTC server's metrics), every stream with either.
pub fn with_webrtc(
    counts: Vec<(String, usize)>,
    webrtc: Option<&livecdn_webrtc::metrics::RtcMetrics>,
) -> Vec<(String, usize, u64)> {
    let mut all: BTreeMap<String, (usize, u64)> =
        counts.into_iter().map(|(s, n)| (s, (n, 0))).collect();
    for (stream, n) in webrtc.map(|m| m.streams()).unwrap_or_default() {
        all.entry(stream.to_string()).or_default().1 = n;
    }
    all.into_iter().map(|(s, (h, w))| (s, h, w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_sessions_within_the_window() {
        let t0 = Instant::now();
        let v = Viewers::new(Duration::from_secs(4));
        let ip = std::net::IpAddr::from([10, 0, 0, 1]);
        let a = Viewers::session_id(None, ip, Some("hls.js"));
        let b = Viewers::session_id(None, ip, Some("AppleCoreMedia"));
        let c = Viewers::session_id(Some("ABC-123"), ip, Some("AppleCoreMedia"));
        for i in 0..10 {
            v.seen("cam", a, t0 + Duration::from_millis(i * 300));
        }
        v.seen("cam", b, t0);
        v.seen("cam", c, t0 + Duration::from_secs(3));
        v.seen("other", a, t0);
        assert_eq!(
            v.counts(t0 + Duration::from_secs(3)),
            vec![("cam".into(), 3), ("other".into(), 1)]
        );
        // b and "other" are older than 4 s at t0+5 s; a was last seen at 2.7 s.
        assert_eq!(
            v.counts(t0 + Duration::from_secs(5)),
            vec![("cam".into(), 2)]
        );
        assert_eq!(v.counts(t0 + Duration::from_secs(20)), vec![]);
    }

    #[test]
    fn sessions_stay_bounded_and_expired_ones_make_room() {
        let t0 = Instant::now();
        let v = Viewers::bounded(Duration::from_secs(4), 32 * 10);
        for id in 0..100_000u64 {
            v.seen("flood", id.wrapping_mul(0x9E37_79B9_7F4A_7C15), t0);
        }
        let total: usize = v.counts(t0).iter().map(|(_, n)| n).sum();
        assert_eq!(total, 320, "ten per shard");
        // Past the window the flood expires and new sessions get in.
        let later = t0 + Duration::from_secs(5);
        v.seen("real", 7, later);
        assert_eq!(v.counts(later), vec![("real".into(), 1)]);
    }
}
