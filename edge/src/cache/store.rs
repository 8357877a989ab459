//! The byte-bounded object store: moka with a byte weigher and per-object TTL.
//!
//! moka weighs an entry when it is inserted. A growing object is inserted when
//! its headers are published, at its weight then, so a watcher task re-inserts it
//! when the body ends: the final weight counts against the budget. The same
//! watcher removes an object whose body failed or stalled, so the next request
//! fetches it again instead of streaming a broken body.
//!
//! Eviction is LRU, not moka's default TinyLFU: TinyLFU's admission filter
//! rejects a new key in favour of frequently read old ones, and in live video
//! the newest part is exactly the one every viewer is about to read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache as Moka;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use moka::Expiry;

use super::disk::DiskTier;
use super::key::CacheKey;
use super::object::CachedObject;
use super::policy::CachePolicy;

type Map = Moka<CacheKey, Arc<CachedObject>>;

/// Expires each object at its TTL plus its stale-if-error grace, counted from
/// when its headers were published (not from when moka saw it).
struct ObjectExpiry {
    policy: CachePolicy,
}

impl ObjectExpiry {
    fn remaining(&self, object: &CachedObject) -> Duration {
        let lifetime = object.ttl.unwrap_or(Duration::ZERO)
            + self.policy.stale_grace(object.kind, object.status);
        lifetime.saturating_sub(object.age(Instant::now()))
    }
}

impl Expiry<CacheKey, Arc<CachedObject>> for ObjectExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        object: &Arc<CachedObject>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.remaining(object))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        object: &Arc<CachedObject>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.remaining(object))
    }
}

/// Store of published objects.
pub(crate) struct Store {
    map: Map,
    policy: CachePolicy,
    body_idle_timeout: Duration,
}

impl Store {
    /// With a disk tier, what the byte budget evicts (not what expires or
    /// is purged) is offered to it.
    pub(crate) fn new(
        max_bytes: u64,
        policy: CachePolicy,
        body_idle_timeout: Duration,
        disk: Option<DiskTier>,
    ) -> Store {
        let mut builder = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &CacheKey, object: &Arc<CachedObject>| {
                u32::try_from(object.weight()).unwrap_or(u32::MAX)
            })
            .expire_after(ObjectExpiry { policy })
            .eviction_policy(EvictionPolicy::lru());
        if let Some(tier) = disk {
            builder = builder.eviction_listener(
                move |key: Arc<CacheKey>, object: Arc<CachedObject>, cause| {
                    if cause == RemovalCause::Size && DiskTier::wants(&object) {
                        tier.demote(CacheKey::clone(&key), object);
                    }
                },
            );
        }
        let map = builder.build();
        Store {
            map,
            policy,
            body_idle_timeout,
        }
    }

    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Arc<CachedObject>> {
        self.map.get(key).await
    }

    /// Whether an unexpired entry exists; synchronous, so it can run under the
    /// flight table's lock.
    pub(crate) fn contains(&self, key: &CacheKey) -> bool {
        self.map.contains_key(key)
    }

    /// Stores `object`. If its body is still growing, a watcher task re-inserts
    /// it when the body ends (final weight) or removes it if the body fails.
    /// The task ends with the body, at the latest one idle timeout after the
    /// last progress, because `settle` fails a stalled body.
    pub(crate) async fn insert(&self, key: CacheKey, object: Arc<CachedObject>) {
        let growing = !object.body.is_complete() && object.body.error().is_none();
        if growing {
            let map = self.map.clone();
            let idle = self.body_idle_timeout;
            let (key, object) = (key.clone(), Arc::clone(&object));
            tokio::spawn(async move {
                let settled = object.body.settle(idle).await;
                if let Err(err) = &settled {
                    tracing::debug!(key = %key, error = %err, "cached body failed; dropping it");
                }
                replace_if_same(&map, key, &object, settled.is_ok()).await;
            });
        }
        self.map.insert(key.clone(), Arc::clone(&object)).await;
        // A body that failed before the insert landed was missed by the
        // watcher's check; do not leave it occupying the budget.
        if object.body.error().is_some() {
            replace_if_same(&self.map, key, &object, false).await;
        }
    }

    /// Whether `object` may be served stale now: a complete, successful,
    /// immutable object within its TTL plus grace.
    pub(crate) fn servable_stale(&self, object: &CachedObject) -> bool {
        let lifetime = object.ttl.unwrap_or(Duration::ZERO)
            + self.policy.stale_grace(object.kind, object.status);
        object.kind.is_immutable()
            && (200..300).contains(&object.status)
            && object.body.is_complete()
            && object.age(Instant::now()) < lifetime
    }

    /// Removes every entry whose key starts with `prefix` (a purge); how
    /// many. Walks the map once; a purge is an operator's rare act.
    pub(crate) async fn purge_prefix(&self, prefix: &str) -> usize {
        let keys: Vec<Arc<CacheKey>> = self
            .map
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(prefix))
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            self.map.invalidate(k.as_ref()).await;
        }
        keys.len()
    }

    pub(crate) fn weighted_size(&self) -> u64 {
        self.map.weighted_size()
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.map.entry_count()
    }

    pub(crate) async fn run_pending_tasks(&self) {
        self.map.run_pending_tasks().await;
    }
}

/// Re-inserts (`keep`) or removes the entry for `key`, but only if it is still
/// `object`: a newer object published under the same key must not be touched.
async fn replace_if_same(map: &Map, key: CacheKey, object: &Arc<CachedObject>, keep: bool) {
    map.entry(key)
        .and_compute_with(|entry| {
            let op = match entry {
                Some(entry) if Arc::ptr_eq(entry.value(), object) => {
                    if keep {
                        Op::Put(Arc::clone(object))
                    } else {
                        Op::Remove
                    }
                }
                _ => Op::Nop,
            };
            std::future::ready(op)
        })
        .await;
}
