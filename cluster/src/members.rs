//! Live sets in Redis: a node announces itself with a lease it renews, a
//! reader follows who is live. Shields use it so that edges hash streams
//! over the shields that are up, without a configuration change when one
//! is added or dies.

use crate::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The members of one live set as last read.
pub struct Members {
    store: Store,
    set: String,
    live: RwLock<Arc<[String]>>,
    /// Set by the first successful read (readiness: an edge that has not
    /// yet seen its shields would send their traffic to the origins).
    loaded: AtomicBool,
}

impl Members {
    pub fn new(store: Store, set: &str) -> Self {
        Self {
            store,
            set: set.to_string(),
            live: RwLock::new(Arc::from(Vec::new())),
            loaded: AtomicBool::new(false),
        }
    }

    /// The live members, sorted (empty until the first read).
    pub fn live(&self) -> Arc<[String]> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the set has been read at least once.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    /// Reads the set now; whether it changed.
    pub async fn read(&self) -> Result<bool, crate::ClusterError> {
        let mut now = self.store.live(&self.set).await?;
        self.loaded.store(true, Ordering::Relaxed);
        now.sort();
        now.dedup();
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if *live.as_ref() == *now.as_slice() {
            return Ok(false);
        }
        tracing::info!(set = %self.set, members = ?now, "cluster members changed");
        *live = Arc::from(now);
        Ok(true)
    }

    /// Re-reads every `interval` until `stop`. A failed read keeps the last
    /// set (an unreachable Redis is not a dead tier).
    pub async fn follow(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = self.read().await {
                tracing::debug!(set = %self.set, error = %e, "cluster members: read failed");
            }
        }
    }

    /// Keeps `member` in the set (renewed every third of `lease`) until
    /// `stop`, then takes it out.
    pub async fn announce(
        store: Store,
        set: String,
        member: String,
        lease: Duration,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            match (store.join(&set, &member, lease).await, failing) {
                (Err(e), false) => {
                    tracing::warn!(%set, error = %e, "cluster: cannot announce this node");
                    failing = true;
                }
                (Ok(()), true) => {
                    tracing::info!(%set, "cluster: announced again");
                    failing = false;
                }
                _ => {}
            }
        }
        if let Err(e) = store.leave(&set, &member).await {
            tracing::warn!(%set, error = %e, "cluster: membership left to expire");
        }
    }
}
