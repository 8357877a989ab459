//! The handles the edge's services share: the cache, the upstreams, the
//! metrics, viewer tracking, the per-stream timing table, the push
//! subscriber, the live tap, the WebRTC server, chat, and the access log. Services take `&Edge` and use what they need; they never
//! call each other (the router dispatches, [`crate::router`]).

use crate::cache::Cache;
use crate::metrics::EdgeMetrics;
use crate::streams::Streams;
use crate::upstream::Upstreams;
use crate::viewers::Viewers;
use livecdn_shared::config::EdgeConfig;
use std::sync::Arc;

pub struct Edge {
    pub config: EdgeConfig,
    pub cache: Cache,
    pub upstreams: Arc<Upstreams>,
    pub metrics: EdgeMetrics,
    pub viewers: Arc<Viewers>,
    /// Each stream's timing, learned from its playlists.
    pub streams: Arc<Streams>,
    /// Origin push subscriber; `None` when `upstream.push` is empty.
    pub push: Option<Arc<crate::push::Push>>,
    /// One line per request, when `access_log.enabled`.
    pub access_log: Option<Arc<livecdn_shared::access_log::AccessLog>>,
    /// Pushed chunks as they arrive, for WebRTC.
    pub live: Arc<crate::live::Live>,
    /// WHEP playback, with `[webrtc]` and push.
    pub webrtc: Option<livecdn_webrtc::RtcServer>,
    /// Viewer chat rooms, with `[chat]` enabled.
    pub chat: Option<std::sync::Arc<livecdn_chat::Chat>>,
}
