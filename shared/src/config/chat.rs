//! `[chat]` on the edge: viewer chat rooms at `/live/STREAM/chat` (see
//! `livecdn_chat`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[chat]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Serve `/live/STREAM/chat`; off: 404.
    pub enabled: bool,
    /// `redis://HOST:PORT[/DB]`: rooms span every edge that names the same
    /// Redis (one Redis Stream per room). Unset: rooms live in this
    /// process only, which is right for a single edge.
    pub redis: Option<String>,
    /// A name for this edge in Redis (viewer counts are summed per node);
    /// unset: the host name and process id.
    pub node: Option<String>,
    /// Messages sent to a client when it joins (the room's tail).
    pub history: usize,
    /// Messages a room's Redis Stream keeps (`XADD MAXLEN ~`).
    pub retain: usize,
    /// Longest message text, in characters.
    pub max_chars: usize,
    /// Messages a connection may send at once ...
    pub rate_burst: u32,
    /// ... and per second after that.
    pub rate_per_second: f64,
    /// Connections from one client address (IPv6: one /64); 0: no cap.
    pub max_per_ip: usize,
    /// Connections in one room on this edge; 0: no cap.
    pub max_per_room: usize,
    /// Connections on this edge in all.
    pub max_connections: usize,
    /// Clients without a token may read (not send).
    pub anonymous_read: bool,
    /// How often the server pings; a client silent for two intervals is
    /// closed.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A client that takes longer than this to take one message is closed
    /// as a slow consumer.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// Events a room keeps for its slowest client before that client is
    /// closed as a slow consumer.
    pub queue: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            redis: None,
            node: None,
            history: 50,
            retain: 1000,
            max_chars: 500,
            rate_burst: 5,
            rate_per_second: 1.0,
            max_per_ip: 20,
            max_per_room: 50_000,
            max_connections: 100_000,
            anonymous_read: true,
            ping_interval: Duration::from_secs(20),
            send_timeout: Duration::from_secs(10),
            queue: 256,
        }
    }
}
