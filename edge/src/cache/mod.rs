//! The edge cache: a byte-bounded store plus streaming single flight.
//!
//! Transport-agnostic on purpose (no hyper here): the h1/h2/h3 listeners, the
//! upstream pull client and the push subscriber all talk to it in terms of
//! [`CacheKey`], status, `http::HeaderMap` and `Bytes` chunks.
//!
//! # Drive contract
//!
//! 1. Build the key with [`CacheKey::from_request`] (after the token check) and
//!    call [`Cache::lookup`].
//! 2. [`Lookup::Hit`], [`Lookup::Coalesced`], [`Lookup::Stale`]: answer with the
//!    object's status and headers, then stream `object.body.reader()`. A
//!    coalesced body may still be growing; a reader error means the fill failed,
//!    so reset the response rather than end it as if complete.
//! 3. [`Lookup::Miss`]: this request is the leader. Fetch upstream, call
//!    [`FillPermit::publish`] with the response head, append every chunk to the
//!    returned body, then `finish()` it (or `fail()` it on error). If upstream
//!    fails before a response head, drop the permit (or call `fail`): one of the
//!    waiting requests becomes the new leader. For an immutable object,
//!    [`Cache::get_stale`] may still have a copy to serve.
//! 4. [`Lookup::TimedOut`]: the leader did not publish within the lock timeout
//!    and there is no stale copy; answer 504 rather than add upstream load.
//!
//! ```
//! # async fn demo() {
//! use livecdn_edge::cache::{Cache, CacheConfig, CacheKey, Lookup, ObjectKind};
//! use std::time::Duration;
//!
//! let cache = Cache::new(CacheConfig::default());
//! let (path, query) = ("/live/s/720p/3.1.m4s", Some("token=abc"));
//! let key = CacheKey::from_request(path, query);
//! match cache.lookup(&key, ObjectKind::from_request(path, query)).await {
//!     Lookup::Miss(permit) => {
//!         let object = permit.publish(200, http::HeaderMap::new()).await;
//!         let _ = object.body.append(bytes::Bytes::from_static(b"part bytes"));
//!         object.body.finish();
//!     }
//!     Lookup::Hit { object, .. } | Lookup::Coalesced { object } | Lookup::Stale { object } => {
//!         let mut reader = object.body.reader();
//!         while let Some(Ok(_chunk)) = reader.next(Duration::from_secs(5)).await {}
//!     }
//!     Lookup::TimedOut => { /* 504 */ }
//! }
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo());
//! ```

mod disk;
mod flight;
mod key;
mod object;
mod policy;
pub mod shm;
mod status;
mod store;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;

pub use disk::{DiskTier, DiskTierConfig, DiskTierStats};
pub use flight::FillPermit;
pub use key::{fuzz_cache_key, CacheKey, ObjectKind};
pub use object::{BodyError, BodyReader, CachedObject, GrowingBody, DEFAULT_MAX_BODY_BYTES};
pub use policy::CachePolicy;
pub use status::CacheStatus;

use flight::{FlightState, FlightTable, Step};
use store::Store;

/// Cache sizing and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Byte budget for stored objects (bodies plus a header estimate).
    pub max_bytes: u64,
    /// TTL rules.
    pub policy: CachePolicy,
    /// How long a request waits for another request's fetch to publish headers
    /// before giving up with [`Lookup::TimedOut`].
    pub lock_timeout: Duration,
    /// A growing body with no progress for this long is failed and dropped.
    pub body_idle_timeout: Duration,
    /// Largest body accepted; a bigger one fails instead of filling the cache.
    pub max_object_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 512 * 1024 * 1024,
            policy: CachePolicy::default(),
            lock_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            max_object_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The result of [`Cache::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// A fresh, complete stored object.
    Hit {
        /// The object.
        object: Arc<CachedObject>,
        /// Time since it was published, for the `Age` header.
        age: Duration,
    },
    /// An object another request is fetching; its body may still be growing.
    Coalesced {
        /// The object.
        object: Arc<CachedObject>,
    },
    /// Nothing usable: this request must fetch and fill.
    Miss(FillPermit),
    /// The fetch this request waited for did not publish in time, but an
    /// expired immutable copy exists (stale-if-error).
    Stale {
        /// The stale object.
        object: Arc<CachedObject>,
    },
    /// The fetch this request waited for did not publish within the lock
    /// timeout; answer 504 instead of adding to the upstream's load.
    TimedOut,
}

impl Lookup {
    /// The label for metrics; `None` for [`Lookup::TimedOut`].
    pub fn status(&self) -> Option<CacheStatus> {
        match self {
            Lookup::Hit { .. } => Some(CacheStatus::Hit),
            Lookup::Coalesced { .. } => Some(CacheStatus::Coalesced),
            Lookup::Miss(_) => Some(CacheStatus::Miss),
            Lookup::Stale { .. } => Some(CacheStatus::Stale),
            Lookup::TimedOut => None,
        }
    }
}

/// Counters since the cache was built, plus current size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from a complete stored object.
    pub hits: u64,
    /// Lookups that became a fill leader.
    pub misses: u64,
    /// Lookups that joined an in-progress fetch.
    pub coalesced: u64,
    /// Stale objects handed out (lookup timeouts and [`Cache::get_stale`]).
    pub stale: u64,
    /// Lookups that gave up waiting for a leader.
    pub timeouts: u64,
    /// Weighted bytes stored (moka's view; settles after pending tasks run).
    pub bytes: u64,
    /// Entries stored (moka's view; settles after pending tasks run).
    pub entries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    stale: AtomicU64,
    timeouts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Inner {
    config: CacheConfig,
    store: Store,
    disk: Option<DiskTier>,
    flights: FlightTable,
    counters: Counters,
}

/// The edge cache. Cloning gives another handle to the same cache.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Cache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Cache {
        Cache::with_disk(config, None)
    }

    /// An empty cache over a disk tier: what memory evicts for size goes
    /// down to it (see [`DiskTier`]), and [`Cache::from_disk`] brings it
    /// back.
    pub fn with_disk(config: CacheConfig, disk: Option<DiskTier>) -> Cache {
        let store = Store::new(
            config.max_bytes,
            config.policy,
            config.body_idle_timeout,
            disk.clone(),
        );
        Cache {
            inner: Arc::new(Inner {
                config,
                store,
                disk,
                flights: FlightTable::default(),
                counters: Counters::default(),
            }),
        }
    }

    /// The configuration the cache was built with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Finds `key`, joins its in-progress fetch, or makes this request the one
    /// that fetches it. `kind` sets the TTL if this request ends up filling.
    /// Never waits longer than the lock timeout.
    pub async fn lookup(&self, key: &CacheKey, kind: ObjectKind) -> Lookup {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + inner.config.lock_timeout;
        // Bounds the (rare) store/table race loop below.
        let mut retries = 0u32;
        loop {
            let mut unusable = false;
            if let Some(object) = inner.store.get(key).await {
                let now = Instant::now();
                if object.body.error().is_none() && object.is_fresh(now) {
                    return if object.body.is_complete() {
                        bump(&inner.counters.hits);
                        Lookup::Hit {
                            age: object.age(now),
                            object,
                        }
                    } else {
                        bump(&inner.counters.coalesced);
                        Lookup::Coalesced { object }
                    };
                }
                // Expired (kept for stale-if-error) or failed: fetch anew.
                unusable = true;
            }
            let step = inner.flights.join_or_lead(key, || {
                !unusable && retries < 3 && inner.store.contains(key)
            });
            let mut waiter = match step {
                Step::Lead(flight) => {
                    bump(&inner.counters.misses);
                    let permit = FillPermit::new(Arc::clone(inner), key.clone(), kind, flight);
                    return Lookup::Miss(permit);
                }
                Step::Retry => {
                    retries += 1;
                    continue;
                }
                Step::Follow(waiter) => waiter,
            };
            // The watch `Ref` is not `Send`: turn it into an owned outcome before
            // any further await so `lookup` stays usable from `tokio::spawn`.
            let published = match tokio::time::timeout_at(
                deadline,
                waiter.wait_for(|state| !matches!(state, FlightState::Pending)),
            )
            .await
            {
                Ok(Ok(state)) => match &*state {
                    FlightState::Published(object) => Some(Some(Arc::clone(object))),
                    FlightState::Pending | FlightState::Abandoned => Some(None),
                },
                // The flight's sender is gone: same as abandoned.
                Ok(Err(_)) => Some(None),
                Err(_elapsed) => None,
            };
            let Some(published) = published else {
                if let Some(object) = self.get_stale(key).await {
                    return Lookup::Stale { object };
                }
                bump(&inner.counters.timeouts);
                return Lookup::TimedOut;
            };
            match published {
                Some(object) => {
                    bump(&inner.counters.coalesced);
                    return Lookup::Coalesced { object };
                }
                // Leader gone before publishing: look again; the first waiter
                // back at the table leads.
                None => tracing::debug!(key = %key, "cache fill leader gone; re-electing"),
            }
        }
    }

    /// A miss the disk tier can answer: the object is read back, published
    /// to memory through `permit` (so the requests waiting on it get it
    /// too) and returned complete. The permit comes back when the tier
    /// does not have the object.
    pub async fn from_disk(&self, permit: FillPermit) -> Result<Arc<CachedObject>, FillPermit> {
        let Some(tier) = &self.inner.disk else {
            return Err(permit);
        };
        if !matches!(permit.kind(), ObjectKind::Segment | ObjectKind::Init) {
            return Err(permit);
        }
        let Some((entry, bytes)) = tier.get(permit.key()).await else {
            return Err(permit);
        };
        let object = permit.publish(entry.status, entry.headers.clone()).await;
        if let Err(e) = object.body.append(bytes) {
            tracing::warn!(error = %e, "disk tier object does not fit the cache");
        }
        object.body.finish();
        Ok(object)
    }

    /// The disk tier, if there is one.
    pub fn disk(&self) -> Option<&DiskTier> {
        self.inner.disk.as_ref()
    }

    /// An expired-but-kept copy of an immutable object, for when upstream fails
    /// (stale-if-error). Also returns a fresh complete immutable copy.
    pub async fn get_stale(&self, key: &CacheKey) -> Option<Arc<CachedObject>> {
        let object = self.inner.store.get(key).await?;
        if !self.inner.store.servable_stale(&object) {
            return None;
        }
        bump(&self.inner.counters.stale);
        Some(object)
    }

    /// An empty object with the TTL and size limit this cache would give it,
    /// for the push path: append the body, finish it, then [`Cache::insert`].
    pub fn new_object(&self, status: u16, headers: HeaderMap, kind: ObjectKind) -> CachedObject {
        self.new_object_with(self.inner.config.policy, status, headers, kind)
    }

    /// [`Cache::new_object`] with the TTLs of `policy` (a stream's timing).
    pub fn new_object_with(
        &self,
        policy: CachePolicy,
        status: u16,
        headers: HeaderMap,
        kind: ObjectKind,
    ) -> CachedObject {
        let config = &self.inner.config;
        let ttl = policy.ttl(kind, status);
        let body = GrowingBody::new(config.max_object_bytes);
        CachedObject::new(status, headers, kind, ttl, body)
    }

    /// Stores an object that arrived without a lookup (pushed by the origin).
    /// Returns false, storing nothing, if it has no TTL or its body failed. A
    /// still-growing body is watched like a published one.
    pub async fn insert(&self, key: CacheKey, object: Arc<CachedObject>) -> bool {
        if object.ttl.is_none() || object.body.error().is_some() {
            return false;
        }
        self.inner.store.insert(key, object).await;
        true
    }

    /// Drops every cached object whose key starts with `prefix` (e.g.
    /// `/live/cam/`); how many. Fetches in flight finish for their waiters
    /// but a later request looks again.
    pub async fn purge(&self, prefix: &str) -> usize {
        let n = self.inner.store.purge_prefix(prefix).await;
        self.inner.store.run_pending_tasks().await;
        n
    }

    /// How many requests are waiting for the fetch of `key` to publish.
    pub fn waiting(&self, key: &CacheKey) -> usize {
        self.inner.flights.waiting(key)
    }

    /// Counters and current size.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            bytes: self.inner.store.weighted_size(),
            entries: self.inner.store.entry_count(),
        }
    }

    /// Runs moka's deferred maintenance (eviction, expiry, size accounting) now
    /// rather than on a later access; for tests and periodic housekeeping.
    pub async fn run_pending_tasks(&self) {
        self.inner.store.run_pending_tasks().await;
    }
}
