//! Concurrent viewers per stream: distinct sessions seen within a window of
//! two target durations (an LL-HLS player asks at least every part, so a
//! session that has not asked for that long has left).
//!
//! A session is the `X-Playback-Session-Id` header when the player sends
//! one (AVPlayer does), else the client address and User-Agent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Upper bound on tracked sessions over all streams (memory bound).
const MAX_SESSIONS: usize = 1_000_000;

#[derive(Debug)]
pub struct Viewers {
    window: Duration,
    streams: HashMap<String, HashMap<u64, Instant>>,
    total: usize,
}

impl Viewers {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            streams: HashMap::new(),
            total: 0,
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

    pub fn seen(&mut self, stream: &str, session: u64, now: Instant) {
        if self.total >= MAX_SESSIONS {
            self.prune(now);
            if self.total >= MAX_SESSIONS {
                return;
            }
        }
        let sessions = match self.streams.get_mut(stream) {
            Some(s) => s,
            None => self.streams.entry(stream.to_string()).or_default(),
        };
        if sessions.insert(session, now).is_none() {
            self.total += 1;
        }
    }

    /// Drops sessions older than the window.
    pub fn prune(&mut self, now: Instant) {
        let window = self.window;
        let mut total = 0;
        self.streams.retain(|_, s| {
            s.retain(|_, t| now.saturating_duration_since(*t) <= window);
            total += s.len();
            !s.is_empty()
        });
        self.total = total;
    }

    /// Viewer counts per stream, after pruning.
    pub fn counts(&mut self, now: Instant) -> Vec<(String, usize)> {
        self.prune(now);
        let mut v: Vec<_> = self
            .streams
            .iter()
            .map(|(k, s)| (k.clone(), s.len()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_sessions_within_the_window() {
        let t0 = Instant::now();
        let mut v = Viewers::new(Duration::from_secs(4));
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
}
