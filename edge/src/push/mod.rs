//! The push subscriber (DESIGN.md section 5): with `upstream.push` set, the
//! edge keeps one QUIC connection per origin push endpoint, subscribes to
//! every stream its viewers watch, and stores each pushed object in the
//! cache under the key a viewer's request would use. The wire format is
//! [`livecdn_shared::push`].
//!
//! # How requests use it
//!
//! 1. Every `/live/STREAM/...` request calls [`Push::touch`]: the stream is
//!    subscribed (at once, not at the next tick) and stays subscribed until
//!    it has had no request for two target durations.
//! 2. A pushed part, segment or init is stored under its path; a pushed
//!    playlist under its path and under the blocking keys it answers
//!    (`_HLS_msn=M&_HLS_part=P` for its last part, and for the first part of
//!    a segment also `_HLS_msn=M-1` and `_HLS_msn=M-1&_HLS_part=N`, N being
//!    one past the last part of segment M-1), so most requests are plain
//!    cache hits.
//! 3. A blocking playlist or part request that misses anyway while push is
//!    [`Push::is_active`] for its stream waits (bounded) in
//!    [`Push::wait_for`] for the object to be pushed, and is served from it;
//!    on timeout it goes upstream as usual. Pull is always the fallback.
//!
//! Every second the edge reports its viewer count per subscribed stream
//! (HLS and DASH viewers and WebRTC sessions).

mod arrivals;
mod client;
mod order;
mod verify;

pub use arrivals::Arrivals;
pub use client::run;
pub use verify::client_config;

use crate::cache::{CacheKey, CachedObject};
use livecdn_shared::config::UpstreamConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What push feeds: the cache (every object), the timing table (every
/// playlist), the live tap (every chunk of a part as it arrives, for
/// WebRTC) and, upward, the viewer counts it reports to the origin. Push
/// never calls into the HTTP services.
#[derive(Clone)]
pub struct Feeds {
    pub cache: crate::cache::Cache,
    pub streams: Arc<crate::streams::Streams>,
    pub viewers: Arc<crate::viewers::Viewers>,
    pub live: Arc<crate::live::Live>,
    /// The WebRTC server's counts: its viewers are reported too.
    pub webrtc: Option<Arc<livecdn_webrtc::metrics::RtcMetrics>>,
}

/// Streams one edge subscribes to at most (memory bound).
const MAX_STREAMS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct StreamState {
    /// Last viewer request.
    touched: Instant,
    /// Last object pushed for it.
    pushed: Option<Instant>,
}

/// Shared push state: what is wanted, what arrived.
#[derive(Debug)]
pub struct Push {
    config: UpstreamConfig,
    /// Subscriptions end after this long without a viewer request, and a
    /// stream with no object pushed for this long is not "active".
    idle: Duration,
    streams: Mutex<HashMap<String, StreamState>>,
    arrivals: Arrivals,
    /// Pokes the connection tasks when a new stream is wanted.
    wanted_changed: Notify,
    /// Push connections currently up.
    connected: AtomicUsize,
    /// With `cluster.redis`: each stream is subscribed on the push endpoint
    /// of the origin the stream map names, not on every configured one.
    map: Option<Arc<livecdn_cluster::StreamMap>>,
}

impl Push {
    /// Push state for `config.push`, or for the push endpoints the stream
    /// map names when there is a way to trust them (`push_spki`, or
    /// `push_insecure`); `None` when push is off.
    pub fn new(
        config: &UpstreamConfig,
        target_duration: Duration,
        map: Option<Arc<livecdn_cluster::StreamMap>>,
    ) -> Option<Arc<Self>> {
        let trusted = !config.push_spki.is_empty() || config.push_insecure;
        (!config.push.is_empty() || (map.is_some() && trusted)).then(|| {
            Arc::new(Self {
                config: config.clone(),
                idle: target_duration * 2,
                streams: Mutex::new(HashMap::new()),
                arrivals: Arrivals::default(),
                wanted_changed: Notify::new(),
                connected: AtomicUsize::new(0),
                map,
            })
        })
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<String, StreamState>> {
        // Single inserts/updates: a poisoned map is still consistent.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A viewer asked for something of `stream`.
    pub fn touch(&self, stream: &str, now: Instant) {
        if !livecdn_shared::auth::valid_stream_name(stream) {
            return;
        }
        let mut map = self.streams();
        if let Some(s) = map.get_mut(stream) {
            s.touched = now;
            return;
        }
        if map.len() >= MAX_STREAMS {
            return;
        }
        map.insert(
            stream.to_string(),
            StreamState {
                touched: now,
                pushed: None,
            },
        );
        drop(map);
        self.wanted_changed.notify_waiters();
    }

    /// Whether push is delivering `stream` now: a connection is up and an
    /// object arrived recently.
    pub fn is_active(&self, stream: &str, now: Instant) -> bool {
        self.connected.load(Ordering::Relaxed) > 0
            && self
                .streams()
                .get(stream)
                .and_then(|s| s.pushed)
                .is_some_and(|t| now.saturating_duration_since(t) < self.idle)
    }

    /// Streams with a viewer request within the idle window; forgets others.
    fn wanted(&self, now: Instant) -> Vec<String> {
        let mut map = self.streams();
        map.retain(|_, s| now.saturating_duration_since(s.touched) < self.idle);
        map.keys().cloned().collect()
    }

    /// The wanted streams to subscribe at push endpoint `addr`: all of
    /// them without a stream map, else those the map places there.
    fn wanted_at(&self, addr: &str, now: Instant) -> Vec<String> {
        let mut wanted = self.wanted(now);
        if let Some(map) = &self.map {
            wanted.retain(|s| map.last(s).and_then(|e| e.push.clone()).as_deref() == Some(addr));
        }
        wanted
    }

    /// The origin stopped `stream`: nothing more will be pushed, so
    /// requests for it go upstream at once instead of waiting for a push.
    fn purged(&self, stream: &str) {
        if let Some(s) = self.streams().get_mut(stream) {
            s.pushed = None;
        }
    }

    fn pushed(&self, stream: &str, now: Instant) {
        if let Some(s) = self.streams().get_mut(stream) {
            s.pushed = Some(now);
        }
    }

    /// Waits up to `timeout` for `key` to be pushed.
    pub async fn wait_for(&self, key: &CacheKey, timeout: Duration) -> Option<Arc<CachedObject>> {
        self.arrivals.wait_for(key, timeout).await
    }

    /// Requests held for a pushed object now (blocking reloads).
    pub fn waiting(&self) -> usize {
        self.arrivals.waiting()
    }

    /// Push connections currently up.
    pub fn connections(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}
