//! "Tell me when this key is pushed": the hand-off between the push
//! receiver, which stores objects as they arrive, and requests that missed
//! the cache and would rather wait for the push than ask upstream.
//!
//! One lock covers both the recent arrivals and the waiters, so a waiter
//! either finds the object among the recent arrivals or is registered
//! before the object's arrival is announced: no lost wakeups.

use crate::cache::{CacheKey, CachedObject};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// Recent arrivals remembered for late waiters (a few seconds of parts and
/// playlists of many renditions).
const RECENT: usize = 512;
/// Waiters per key and keys waited on: a memory bound.
const MAX_WAITERS: usize = 100_000;
/// Ended playlists remembered (one per rendition of recently ended streams).
const ENDED: usize = 256;

type Waiters = HashMap<CacheKey, Vec<oneshot::Sender<Arc<CachedObject>>>>;

#[derive(Default)]
struct Inner {
    recent: VecDeque<(CacheKey, Arc<CachedObject>)>,
    /// Playlists pushed with EXT-X-ENDLIST, by path: the answer to every
    /// blocking request for them, since nothing later will come.
    ended: VecDeque<(Arc<str>, Arc<CachedObject>)>,
    waiters: Waiters,
    waiting: usize,
}

/// Pushed-object notifications by cache key.
#[derive(Default)]
pub struct Arrivals {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Arrivals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrivals").finish_non_exhaustive()
    }
}

impl Arrivals {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent: poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `object` was pushed and stored under `key`: wake its waiters.
    pub fn arrived(&self, key: &CacheKey, object: &Arc<CachedObject>) {
        let mut inner = self.lock();
        if inner.recent.len() >= RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back((key.clone(), object.clone()));
        // A live playlist for the path again: the stream came back.
        if key.as_str() == key.path() {
            inner.ended.retain(|(p, _)| **p != *key.path());
        }
        if let Some(list) = inner.waiters.remove(key) {
            inner.waiting = inner.waiting.saturating_sub(list.len());
            for tx in list {
                let _ = tx.send(object.clone());
            }
        }
    }

    /// The playlist at `path` was pushed with EXT-X-ENDLIST (`object`): it
    /// answers every request held for a later part of it, now and until
    /// the path is live again.
    pub fn ended(&self, path: &str, object: &Arc<CachedObject>) {
        let mut inner = self.lock();
        inner.ended.retain(|(p, _)| **p != *path);
        if inner.ended.len() >= ENDED {
            inner.ended.pop_front();
        }
        inner.ended.push_back((Arc::from(path), object.clone()));
        let held: Vec<CacheKey> = inner
            .waiters
            .keys()
            .filter(|k| k.path() == path)
            .cloned()
            .collect();
        for key in held {
            if let Some(list) = inner.waiters.remove(&key) {
                inner.waiting = inner.waiting.saturating_sub(list.len());
                for tx in list {
                    let _ = tx.send(object.clone());
                }
            }
        }
    }

    /// The stream under `prefix` was purged: forget its arrivals, so a
    /// stream that comes back under the name never gets the old objects.
    pub fn forget(&self, prefix: &str) {
        let mut inner = self.lock();
        inner
            .recent
            .retain(|(k, _)| !k.as_str().starts_with(prefix));
        inner.ended.retain(|(p, _)| !p.starts_with(prefix));
    }

    /// Requests waiting for a pushed object now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Waits up to `timeout` for `key` to be pushed; `None` on timeout (or
    /// when too many requests already wait). A key of a playlist that
    /// ended is answered by the ended playlist.
    pub async fn wait_for(&self, key: &CacheKey, timeout: Duration) -> Option<Arc<CachedObject>> {
        let rx = {
            let mut inner = self.lock();
            if let Some((_, o)) = inner.recent.iter().rev().find(|(k, _)| k == key) {
                return Some(o.clone());
            }
            if let Some((_, o)) = inner.ended.iter().find(|(p, _)| **p == *key.path()) {
                return Some(o.clone());
            }
            if inner.waiting >= MAX_WAITERS {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            inner.waiters.entry(key.clone()).or_default().push(tx);
            inner.waiting += 1;
            rx
        };
        let got = match tokio::time::timeout(timeout, rx).await {
            Ok(r) => r.ok(),
            Err(_elapsed) => None, // the receiver is dropped: its sender is closed
        };
        if got.is_none() {
            // Timed out: drop this and any other abandoned senders for key.
            let mut inner = self.lock();
            let mut removed = 0;
            if let Some(list) = inner.waiters.get_mut(key) {
                let before = list.len();
                list.retain(|tx| !tx.is_closed());
                removed = before - list.len();
                if list.is_empty() {
                    inner.waiters.remove(key);
                }
            }
            inner.waiting = inner.waiting.saturating_sub(removed);
        }
        got
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::cache::{Cache, CacheConfig, ObjectKind};

    fn object() -> Arc<CachedObject> {
        let cache = Cache::new(CacheConfig::default());
        Arc::new(cache.new_object(200, http::HeaderMap::new(), ObjectKind::Part))
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_the_arrival_and_a_late_one_finds_it() {
        let arrivals = Arc::new(Arrivals::default());
        let key = CacheKey::from_request("/live/cam/source/1.2.m4s", None);
        let waiter = {
            let (a, k) = (arrivals.clone(), key.clone());
            tokio::spawn(async move { a.wait_for(&k, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        let o = object();
        arrivals.arrived(&key, &o);
        let got = waiter.await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&got, &o));
        // Arrived before the wait started: found among the recent ones.
        let late = arrivals.wait_for(&key, Duration::from_millis(1)).await;
        assert!(late.is_some_and(|l| Arc::ptr_eq(&l, &o)));
    }

    #[tokio::test]
    async fn an_ended_playlist_answers_every_held_and_later_request_until_live_again() {
        let arrivals = Arc::new(Arrivals::default());
        let path = "/live/cam/source/index.m3u8";
        let future = CacheKey::from_request(path, Some("_HLS_msn=9&_HLS_part=0"));
        let other = CacheKey::from_request("/live/cam/360p/index.m3u8", Some("_HLS_msn=9"));
        let spawn = |k: &CacheKey, secs| {
            let (a, k) = (arrivals.clone(), k.clone());
            tokio::spawn(async move { a.wait_for(&k, Duration::from_secs(secs)).await })
        };
        let (held, elsewhere) = (spawn(&future, 5), spawn(&other, 0));
        while arrivals.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        let end = object();
        arrivals.ended(path, &end);
        let got = held.await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&got, &end));
        // Another rendition's request is not answered by it.
        assert!(elsewhere.await.unwrap().is_none());
        // A request that comes after the end gets it at once.
        let later = CacheKey::from_request(path, Some("_HLS_msn=10"));
        let got = arrivals.wait_for(&later, Duration::from_secs(5)).await;
        assert!(got.is_some_and(|g| Arc::ptr_eq(&g, &end)));
        // A live playlist at the path again: requests wait once more.
        let live = object();
        let plain = CacheKey::from_request(path, None);
        arrivals.arrived(&plain, &live);
        let got = arrivals.wait_for(&later, Duration::from_millis(10)).await;
        assert!(got.is_none());
        // A purge forgets what arrived and what ended.
        arrivals.ended(path, &end);
        arrivals.forget("/live/cam/");
        for key in [&plain, &later] {
            assert!(arrivals
                .wait_for(key, Duration::from_millis(10))
                .await
                .is_none());
        }
    }

    #[tokio::test]
    async fn a_wait_for_a_key_never_pushed_times_out_and_is_forgotten() {
        let arrivals = Arrivals::default();
        let key = CacheKey::from_request("/live/cam/source/9.0.m4s", None);
        let got = arrivals.wait_for(&key, Duration::from_millis(20)).await;
        assert!(got.is_none());
        let inner = arrivals.lock();
        assert!(inner.waiters.is_empty());
        assert_eq!(inner.waiting, 0);
    }
}
