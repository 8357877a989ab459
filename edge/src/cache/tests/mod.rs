//! Behaviour tests for the cache: single flight, streaming, re-election, bounds.
//! Shared helpers live here; the tests are split by behaviour.
#![allow(clippy::unwrap_used)]

mod disk;
mod flight;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use super::*;

/// Every test finishes within this, or fails instead of hanging.
const TEST_BOUND: Duration = Duration::from_secs(20);
const IDLE: Duration = Duration::from_secs(5);

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, fut)
        .await
        .expect("test exceeded its time bound")
}

fn config() -> CacheConfig {
    CacheConfig {
        max_bytes: 64 * 1024 * 1024,
        lock_timeout: Duration::from_secs(5),
        body_idle_timeout: Duration::from_secs(5),
        ..CacheConfig::default()
    }
}

fn part_key() -> CacheKey {
    CacheKey::from_request("/live/s/720p/7.2.m4s", Some("token=abc"))
}

async fn read_all(object: &CachedObject) -> Result<Vec<Bytes>, BodyError> {
    let mut reader = object.body.reader();
    let mut out = Vec::new();
    while let Some(chunk) = reader.next(IDLE).await {
        out.push(chunk?);
    }
    Ok(out)
}

fn concat(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

async fn insert_complete(cache: &Cache, key: &CacheKey, kind: ObjectKind, body: Bytes) {
    let object = cache.new_object(200, HeaderMap::new(), kind);
    object.body.append(body).unwrap();
    object.body.finish();
    assert!(cache.insert(key.clone(), Arc::new(object)).await);
}
