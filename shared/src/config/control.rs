//! `[control]` on the origin: the control plane's channels and stream keys
//! (see `livecdn_origin::control`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Where channels live and what their API tells clients.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// The SQLite file holding channels and stream keys (created, and
    /// migrated to the current schema, at start). Without it there are no
    /// channels: `/api/channels` answers 404, and static keys, signed keys
    /// and the `on_publish` webhook decide publishes as before.
    pub database: Option<PathBuf>,
    /// How long a new stream key is valid unless the request says.
    #[serde(with = "humantime_serde")]
    pub key_ttl: Duration,
    /// Anyone may read a stream's state, health and viewer count
    /// (`/api/streams`, `/api/channels/NAME/stream`) without the admin
    /// token: for a public status page. Keys and metrics stay closed.
    pub public_reads: bool,
    /// The ingest endpoint handed to encoders, `rtmp://HOST:1935/live`;
    /// by default built from the API request's host, the RTMP port and
    /// the application.
    pub ingest_url: Option<String>,
    /// Where viewers play (an edge or the CDN's hostname), `https://HOST`;
    /// the channel's playback URL is this plus `/live/NAME/master.m3u8`.
    /// By default the API request's own scheme-less host, over http.
    pub playback_url: Option<String>,
    /// Edges' admin base URLs (`http://edge-1:8081`, or their admin
    /// listeners) that a stop purges over HTTP (`POST /api/purge`), for
    /// edges that pull without push; push-connected edges are purged over
    /// push anyway.
    pub purge_edges: Vec<String>,
    /// The edges' admin token for those calls; by default the origin's own
    /// `admin_token` (edges of one deployment usually share it).
    pub edge_admin_token: Option<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            database: None,
            key_ttl: Duration::from_secs(24 * 3600),
            public_reads: false,
            ingest_url: None,
            playback_url: None,
            purge_edges: Vec::new(),
            edge_admin_token: None,
        }
    }
}
