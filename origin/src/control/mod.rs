//! The control plane: channels and their stream keys, persisted in SQLite
//! (`control.database`), as the operator's backend sees them through
//! `/api/channels`.
//!
//! A channel is a public stream name with its settings (latency mode,
//! ladder, recording, whether playback needs tokens). Its stream keys are
//! records: each expires (`control.key_ttl`, 24 h by default), rotation
//! makes a new one and revokes the rest, and revocation is refused at the
//! next publish. When a database is configured it is the source of truth
//! for a channel's settings, whichever key published; static keys, signed
//! keys and the `on_publish` webhook keep working beside it.
//!
//! [`Store`] is the synchronous database; [`Control`] runs it on tokio's
//! blocking pool so that no request or RTMP session waits on SQLite while
//! holding a runtime thread.

mod model;
mod secret;
mod store;
#[cfg(test)]
mod store_tests;

pub use model::{
    fuzz_channel_request, Channel, ChannelPatch, Invalid, KeyRecord, LatencyMode, NewChannel,
    NewKey, Revoke, Rotate, Stop, MAX_KEY_TTL_SECONDS,
};
pub use secret::KEY_PREFIX;
pub use store::{KeyLookup, Store, StoreError};

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The store, shared, with its default key lifetime, and the names of the
/// `authorized` channels in memory (every playback request asks).
#[derive(Debug, Clone)]
pub struct Control {
    store: Arc<Store>,
    pub key_ttl: Duration,
    authorized: Arc<RwLock<HashSet<String>>>,
}

impl Control {
    /// Wraps `store`, reading which channels are `authorized`.
    pub fn new(store: Store, key_ttl: Duration) -> Result<Self, StoreError> {
        let authorized = store
            .list()?
            .into_iter()
            .filter(|c| c.authorized)
            .map(|c| c.name)
            .collect();
        Ok(Self {
            store: Arc::new(store),
            key_ttl,
            authorized: Arc::new(RwLock::new(authorized)),
        })
    }

    /// Whether playback of `stream` needs a token (its channel is
    /// `authorized`).
    pub fn needs_token(&self, stream: &str) -> bool {
        let set = self.authorized.read().unwrap_or_else(|e| e.into_inner());
        set.contains(stream)
    }

    /// Keeps the in-memory view in step with a stored change of `channel`
    /// (`None`: deleted).
    pub fn note(&self, name: &str, channel: Option<&Channel>) {
        let mut set = self.authorized.write().unwrap_or_else(|e| e.into_inner());
        match channel {
            Some(c) if c.authorized => set.insert(name.to_string()),
            _ => set.remove(name),
        };
    }

    /// Runs `f` against the store on the blocking pool.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Corrupt(format!("database task failed: {e}")))?
    }

    /// A key's lifetime: the request's, or the default.
    pub fn ttl(&self, seconds: Option<u64>) -> Duration {
        seconds.map_or(self.key_ttl, Duration::from_secs)
    }
}
