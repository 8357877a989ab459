//! Live streams by name: one [`StreamHub`] per stream, shared by the ingest
//! session that feeds it and the HTTP requests that read it.

mod captured;
mod hub;

pub use hub::{PublishRole, StreamHub};

use crate::packager::PackagerConfig;
use crate::verdict::Transition;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Why a publish was refused by the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// Another publisher is live on this name and this one is not a backup.
    #[error("stream {0:?} already has a live publisher")]
    AlreadyLive(String),
}

#[derive(Debug)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<StreamHub>>>,
    /// Woken when a publisher becomes a stream's primary (the stream map
    /// enters it at once).
    pub attached: tokio::sync::Notify,
    packager: PackagerConfig,
    ended_linger: Duration,
}

impl Registry {
    pub fn new(packager: PackagerConfig, ended_linger: Duration) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            attached: tokio::sync::Notify::new(),
            packager,
            ended_linger,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StreamHub>>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every operation is a single insert/remove), so poisoning is ignored.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Arc<StreamHub>> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<StreamHub>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// Attaches publisher `session` to stream `name`, creating the stream or
    /// resuming it within its grace period. A new stream is packaged for
    /// low latency, or as plain HLS (`low_latency` false: a `NORMAL`
    /// channel); a resumed one keeps what it started with.
    pub fn claim(
        &self,
        name: &str,
        session: u64,
        backup_allowed: bool,
        low_latency: bool,
        now: Instant,
    ) -> Result<(Arc<StreamHub>, PublishRole), ClaimError> {
        let mut map = self.lock();
        let hub = map
            .entry(name.to_string())
            .or_insert_with(|| {
                let cfg = match low_latency {
                    true => self.packager,
                    false => self.packager.normal_latency(),
                };
                Arc::new(StreamHub::new(name, cfg, now, SystemTime::now()))
            })
            .clone();
        // Attach under the map lock: `tick` removes ended streams under the
        // same lock after re-checking them, so a publisher resuming an
        // ended stream is never attached to a hub that has left the map.
        let role = hub
            .attach(session, backup_allowed, now)
            .ok_or_else(|| ClaimError::AlreadyLive(name.to_string()));
        drop(map);
        if role == Ok(PublishRole::Primary) {
            self.attached.notify_one();
        }
        Ok((hub, role?))
    }

    /// Streams this origin should be found for in the stream map: not
    /// stopped, and with a publisher or within its reconnect grace.
    pub fn live(&self, now: Instant) -> Vec<livecdn_cluster::Live> {
        self.list()
            .into_iter()
            .filter(|h| !h.is_stopped() && h.ended_for(now).is_none())
            .map(|h| {
                let (position, target) = h.read(|p| (p.position(), p.config().segment_target));
                livecdn_cluster::Live {
                    stream: h.name().to_string(),
                    since_ms: h.attached_ms(),
                    rank: u8::from(!h.active_is_backup()),
                    instance: h.instance,
                    position,
                    target_ms: u64::try_from(target.as_millis()).unwrap_or(u64::MAX),
                }
            })
            .collect()
    }

    /// Renumbers stream `name`'s media past another origin's, if hub
    /// `instance` still serves it; its new position.
    pub fn renumber(
        &self,
        name: &str,
        instance: u64,
        r: livecdn_cluster::Rebase,
    ) -> Option<livecdn_cluster::Position> {
        let hub = self
            .lock()
            .get(name)
            .filter(|h| h.instance == instance)?
            .clone();
        Some(hub.renumber(r))
    }

    /// The operator stops stream `name`: it ends now and leaves the map at
    /// once, so new requests get 404 while held ones (which hold the hub)
    /// answer with EXT-X-ENDLIST. The hub and the publishers it cut off.
    pub fn stop(&self, name: &str, now: Instant) -> Option<(Arc<StreamHub>, usize)> {
        let hub = self.lock().remove(name)?;
        let kicked = hub.stop(now);
        tracing::info!(stream = %name, publishers = kicked, "stream stopped by the operator");
        Some((hub, kicked))
    }

    /// Shutdown: every held request on every stream answers now.
    pub fn drain(&self) {
        for hub in self.list() {
            hub.drain();
        }
    }

    /// Runs timeouts and health verdicts, and removes streams that ended
    /// long enough ago. Returns the health changes to report.
    pub fn tick(&self, now: Instant) -> Vec<(String, Transition)> {
        let hubs = self.list();
        let mut gone = Vec::new();
        let mut changes = Vec::new();
        for hub in hubs {
            hub.tick(now);
            if let Some(t) = hub.judge(now) {
                changes.push((hub.name().to_string(), t));
            }
            if hub.ended_for(now).is_some_and(|d| d >= self.ended_linger) {
                gone.push(hub);
            }
        }
        if !gone.is_empty() {
            let mut map = self.lock();
            for hub in gone {
                // Re-checked under the lock: the entry must still be this
                // hub, and no publisher may have resumed it since.
                let same = map.get(hub.name()).is_some_and(|h| Arc::ptr_eq(h, &hub));
                let still = hub.ended_for(now).is_some_and(|d| d >= self.ended_linger);
                if same && still {
                    tracing::info!(stream = %hub.name(), "stream removed");
                    map.remove(hub.name());
                }
            }
        }
        changes
    }
}
