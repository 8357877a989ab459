//! The edge's (and shield's) configuration: what `config/edge.toml` and
//! `config/shield.toml` may say.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where an edge sits in the tiering.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EdgeRole {
    /// Serves viewers; pulls from shields (if any) or origins.
    #[default]
    Edge,
    /// Mid tier: serves edges; pulls from origins.
    Shield,
}

/// Whole edge configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    pub role: EdgeRole,
    /// Bearer token for `/metrics` and `/api` (`Authorization: Bearer
    /// TOKEN`); `None` leaves them open wherever they are served. Prefer
    /// LIVECDN_ADMIN_TOKEN.
    pub admin_token: Option<String>,
    pub listen: EdgeListenConfig,
    pub upstream: UpstreamConfig,
    pub cache: CacheConfig,
    pub tls: TlsConfig,
    pub auth: PlaybackAuthConfig,
    /// One JSON line per request.
    pub access_log: super::AccessLogConfig,
    /// WHEP playback from the pushed chunks; off without the section.
    /// Needs `upstream.push`.
    pub webrtc: Option<super::WebRtcConfig>,
    /// Viewer chat at `/live/STREAM/chat`.
    pub chat: super::ChatConfig,
    /// The stream map and shield set in Redis.
    pub cluster: super::EdgeClusterConfig,
}

/// Signed playback tokens (`livecdn token STREAM`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybackAuthConfig {
    /// Requests under `/live/STREAM/` need a valid token for STREAM, as
    /// `?token=` (then remembered in a cookie for the stream's other
    /// requests) or that cookie; others get 403. The player page is public.
    pub required: bool,
    /// The secret tokens are signed with (the origin's `secret`; prefer
    /// `LIVECDN_SECRET`).
    pub secret: Option<String>,
}

/// Listeners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeListenConfig {
    /// Cleartext HTTP/1.1 and prior-knowledge h2c.
    pub http: Option<SocketAddr>,
    /// HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on TCP and HTTP/3 on UDP, same port.
    pub https: Option<SocketAddr>,
    /// Serve HTTP/3 on the HTTPS port's UDP side and advertise it (Alt-Svc).
    pub h3: bool,
    /// A separate cleartext listener for `/metrics` and `/api` (and
    /// health); with it, the viewer listeners serve playback only.
    pub admin: Option<SocketAddr>,
    /// Simultaneous client connections per listener.
    pub max_connections: usize,
    /// Of those, at most this many from one client address (IPv6: one
    /// /64); `0` (the default) means no per-address cap, since viewers
    /// behind one carrier NAT or office proxy share an address.
    pub max_connections_per_ip: usize,
    /// Requests whose headers take longer are dropped (slowloris).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A connection on which no byte moved either way for this long is
    /// closed: an idle keep-alive or HTTP/2 connection, or one whose client
    /// stopped reading a response. Also QUIC's idle timeout.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for EdgeListenConfig {
    fn default() -> Self {
        Self {
            http: Some(SocketAddr::from(([0, 0, 0, 0], 8081))),
            https: Some(SocketAddr::from(([0, 0, 0, 0], 8443))),
            h3: true,
            admin: None,
            max_connections: 16_384,
            max_connections_per_ip: 0,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Where the edge fetches from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Origins as `http://host:port` (tried in order, health-checked).
    pub origins: Vec<String>,
    /// Shields as `http://host:port`; an edge picks a stream's shield by
    /// rendezvous hashing and falls back to the origins if all are down.
    pub shields: Vec<String>,
    /// Upstream request timeout for non-blocking objects.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How often unhealthy upstreams are probed (`/healthz`).
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Origins' push endpoints as `host:port` (UDP); empty turns push off.
    /// With push, the edge subscribes to each watched stream and answers
    /// blocking reloads from what the origin pushes; pull is the fallback.
    pub push: Vec<String>,
    /// Accepted push certificates: base64 SHA-256 of their SPKI (the origin
    /// prints it as `push_spki=`).
    pub push_spki: Vec<String>,
    /// Accept any push certificate. Labs only: anyone on the path could then
    /// fill this edge's cache.
    pub push_insecure: bool,
    /// This node's cluster credential (`livecdn cluster-key NODE` on the
    /// origin's secret): sent in the push Hello and as `Authorization:
    /// Bearer` on every upstream request. Prefer LIVECDN_CLUSTER_CREDENTIAL.
    pub credential: Option<String>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            origins: vec!["http://127.0.0.1:8080".to_string()],
            shields: Vec::new(),
            timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(2),
            push: Vec::new(),
            push_spki: Vec::new(),
            push_insecure: false,
            credential: None,
        }
    }
}

/// The byte-bounded object cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory for cached objects, in bytes.
    pub max_bytes: u64,
    /// Followers wait at most this long for a leader's response headers.
    #[serde(with = "humantime_serde")]
    pub lock_timeout: Duration,
    /// A disk tier below memory: segments and init sections that memory
    /// evicts go here (under `DIR/objects/`, emptied at start), so a seek
    /// storm over recordings and DVR windows stays off the origin. None:
    /// memory only.
    pub disk_dir: Option<PathBuf>,
    /// Bytes the disk tier keeps at most (least recently used go first).
    pub disk_max_bytes: u64,
    /// How the disk tier reads and writes (as `recording.io`).
    pub disk_io: super::DiskIo,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 512 * 1024 * 1024,
            lock_timeout: Duration::from_secs(10),
            disk_dir: None,
            disk_max_bytes: 8 * 1024 * 1024 * 1024,
            disk_io: super::DiskIo::Auto,
        }
    }
}

/// TLS certificate for the HTTPS and HTTP/3 listeners.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; without it a self-signed one is made at start.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}
