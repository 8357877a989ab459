//! The edge's (and shield's) side of the stream map: which origin has a
//! stream, read from Redis and cached briefly.
//!
//! Lookups happen on the fetch path, which is already single-flight per
//! object, so concurrent readers of one stream cost at most one Redis read
//! per object per `ttl`. An entry that failed a fetch is dropped at once
//! ([`StreamMap::invalidate`]) so the next fetch reads the map again. When
//! Redis cannot be reached the last entry read is used, however old: the
//! origin it names is the best guess there is.

use crate::entry::OriginEntry;
use crate::store::Store;
use crate::ClusterError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Streams remembered at most (memory bound); past it, stale ones go.
const MAX_KNOWN: usize = 65_536;

#[derive(Debug, Clone)]
struct Known {
    entry: Option<Arc<OriginEntry>>,
    /// `None` after a failed fetch: read the map again.
    read: Option<Instant>,
    /// The last read that found an origin for the stream.
    mapped: Option<Instant>,
}

/// What has been read from the map, and when (sans-IO).
#[derive(Debug)]
pub struct MapCache {
    ttl: Duration,
    known: HashMap<String, Known>,
}

impl MapCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            known: HashMap::new(),
        }
    }

    /// The entry for `stream` if it was read within the TTL (`Some(None)`:
    /// read, and no origin has it).
    pub fn fresh(&self, stream: &str, now: Instant) -> Option<Option<Arc<OriginEntry>>> {
        self.known
            .get(stream)
            .filter(|k| {
                k.read
                    .is_some_and(|r| now.saturating_duration_since(r) < self.ttl)
            })
            .map(|k| k.entry.clone())
    }

    /// The last entry read for `stream`, however old.
    pub fn last(&self, stream: &str) -> Option<Arc<OriginEntry>> {
        self.known.get(stream).and_then(|k| k.entry.clone())
    }

    /// Whether a read within `within` before `now` found an origin for
    /// `stream`: if none has it now, it may be between two (a failover).
    pub fn mapped_within(&self, stream: &str, within: Duration, now: Instant) -> bool {
        self.known
            .get(stream)
            .and_then(|k| k.mapped)
            .is_some_and(|m| now.saturating_duration_since(m) < within)
    }

    /// Records a read; returns whether the stream's origin changed.
    pub fn store(&mut self, stream: &str, entry: Option<OriginEntry>, now: Instant) -> bool {
        if self.known.len() >= MAX_KNOWN && !self.known.contains_key(stream) {
            let ttl = self.ttl;
            self.known.retain(|_, k| {
                k.read
                    .is_some_and(|r| now.saturating_duration_since(r) < ttl)
            });
            if self.known.len() >= MAX_KNOWN {
                return false;
            }
        }
        let before = self.last(stream).map(|e| e.node.clone());
        let changed = before.as_deref() != entry.as_ref().map(|e| e.node.as_str());
        let mapped = match entry {
            Some(_) => Some(now),
            None => self.known.get(stream).and_then(|k| k.mapped),
        };
        let entry = match (self.last(stream), entry) {
            // Keep the shared value when nothing changed (no allocation).
            (Some(old), Some(new)) if *old == new => Some(old),
            (_, new) => new.map(Arc::new),
        };
        self.known.insert(
            stream.to_string(),
            Known {
                entry,
                read: Some(now),
                mapped,
            },
        );
        changed && before.is_some()
    }

    /// Forces the next lookup of `stream` to read the map.
    pub fn invalidate(&mut self, stream: &str) {
        if let Some(k) = self.known.get_mut(stream) {
            k.read = None;
        }
    }
}

/// The stream map as an edge reads it.
pub struct StreamMap {
    store: Store,
    cache: Mutex<MapCache>,
    /// Whether the last round trip to Redis succeeded.
    reachable: AtomicBool,
}

impl std::fmt::Debug for StreamMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMap")
            .field("reachable", &self.reachable())
            .finish_non_exhaustive()
    }
}

impl StreamMap {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            cache: Mutex::new(MapCache::new(ttl)),
            reachable: AtomicBool::new(false),
        }
    }

    fn cache(&self) -> MutexGuard<'_, MapCache> {
        // Single map operations: a poisoned lock still holds a consistent map.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The origin that has `stream`, `None` when no origin has it.
    pub async fn resolve(&self, stream: &str) -> Result<Option<Arc<OriginEntry>>, ClusterError> {
        let now = Instant::now();
        if let Some(fresh) = self.cache().fresh(stream, now) {
            return Ok(fresh);
        }
        let read = self.store.lookup(&[stream]).await;
        self.reachable.store(read.is_ok(), Ordering::Relaxed);
        match read {
            Ok(mut entries) => {
                let entry = entries.pop().flatten();
                self.record(stream, entry.clone());
                // The cache's shared value when it took the read (it may
                // be full of fresh reads and not have).
                let kept = self.cache().last(stream);
                Ok(kept
                    .filter(|k| entry.as_ref() == Some(&**k))
                    .or_else(|| entry.map(Arc::new)))
            }
            Err(e) => match self.cache().last(stream) {
                Some(last) => {
                    tracing::debug!(stream, error = %e, "stream map unreachable: last entry used");
                    Ok(Some(last))
                }
                None => Err(e),
            },
        }
    }

    fn record(&self, stream: &str, entry: Option<OriginEntry>) {
        let node = entry.as_ref().map(|e| e.node.clone());
        if self.cache().store(stream, entry, Instant::now()) {
            tracing::info!(stream, origin = ?node, "stream map: stream moved");
        }
    }

    /// Reads `streams` again in one round trip (the push subscriber's
    /// refresh, for streams whose viewers are all served from cache).
    pub async fn refresh(&self, streams: &[&str]) -> Result<(), ClusterError> {
        let entries = self.store.lookup(streams).await;
        self.reachable.store(entries.is_ok(), Ordering::Relaxed);
        for (s, e) in streams.iter().zip(entries?) {
            self.record(s, e);
        }
        Ok(())
    }

    /// Whether the last round trip to Redis succeeded (readiness).
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// A round trip to Redis, for readiness when no stream is looked up.
    pub async fn probe(&self) -> bool {
        let ok = self.store.ping().await.is_ok();
        self.reachable.store(ok, Ordering::Relaxed);
        ok
    }

    /// The last entry read for `stream` (no Redis round trip).
    pub fn last(&self, stream: &str) -> Option<Arc<OriginEntry>> {
        self.cache().last(stream)
    }

    /// A fetch from `stream`'s origin failed: read the map again next time.
    pub fn invalidate(&self, stream: &str) {
        self.cache().invalidate(stream);
    }

    /// Whether an origin had `stream` within `within` ([`MapCache::mapped_within`]).
    pub fn mapped_within(&self, stream: &str, within: Duration) -> bool {
        self.cache().mapped_within(stream, within, Instant::now())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn entry(node: &str) -> OriginEntry {
        OriginEntry {
            node: node.into(),
            http: format!("http://{node}:8080"),
            push: None,
            since_ms: 1,
            rank: 1,
        }
    }

    #[test]
    fn reads_are_fresh_for_the_ttl_and_the_last_entry_outlives_it() {
        let t0 = Instant::now();
        let ttl = Duration::from_millis(500);
        let mut c = MapCache::new(ttl);
        assert_eq!(c.fresh("a", t0), None, "never read");
        assert!(
            !c.store("a", Some(entry("o1")), t0),
            "a first read is no move"
        );
        assert_eq!(c.fresh("a", t0 + ttl / 2).unwrap().unwrap().node, "o1");
        assert_eq!(c.fresh("a", t0 + ttl), None, "stale: read again");
        assert_eq!(
            c.last("a").unwrap().node,
            "o1",
            "kept for when redis is down"
        );

        // Absence is cached too (no origin asked for an unknown stream).
        c.store("b", None, t0);
        assert_eq!(c.fresh("b", t0), Some(None));
    }

    #[test]
    fn moves_are_reported_and_invalidation_forces_a_read() {
        let t0 = Instant::now();
        let mut c = MapCache::new(Duration::from_secs(1));
        c.store("a", Some(entry("o1")), t0);
        let shared = c.last("a").unwrap();
        assert!(!c.store("a", Some(entry("o1")), t0), "same origin");
        assert!(Arc::ptr_eq(&shared, &c.last("a").unwrap()), "value reused");
        assert!(c.store("a", Some(entry("o2")), t0), "moved");
        assert!(c.store("a", None, t0), "ended");
        assert!(
            !c.store("a", Some(entry("o2")), t0),
            "back from nothing is a start, not a move"
        );

        c.invalidate("a");
        assert_eq!(c.fresh("a", t0 + Duration::from_millis(10)), None);
    }

    #[test]
    fn a_stream_that_left_the_map_is_known_to_have_been_mapped_for_a_while() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = MapCache::new(Duration::from_millis(500));
        c.store("never", None, t0);
        assert!(!c.mapped_within("never", s * 10, t0), "never had an origin");
        c.store("a", Some(entry("o1")), t0);
        c.store("a", None, t0 + s);
        assert!(c.mapped_within("a", s * 2, t0 + s), "lost a second ago");
        assert!(
            !c.mapped_within("a", s * 2, t0 + s * 2),
            "lost too long ago"
        );
        c.store("a", Some(entry("o2")), t0 + s * 3);
        assert!(c.mapped_within("a", s, t0 + s * 3), "back");
    }
}
