//! The origin's configuration: what `config/origin.toml` may say.

use super::ladder::{LadderChoice, LadderConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Whole origin configuration. Unknown keys are errors so that a typo in a
/// config file fails at start instead of being silently ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// HMAC secret for signed stream keys and playback tokens. `None` means
    /// signed keys are not accepted (static keys and webhooks still work);
    /// `livecdn up` generates one for its lifetime.
    pub secret: Option<String>,
    /// Bearer token for `/metrics` and `/api` (`Authorization: Bearer
    /// TOKEN`); `None` leaves them open wherever they are served. Prefer
    /// LIVECDN_ADMIN_TOKEN; `livecdn up` makes one.
    pub admin_token: Option<String>,
    pub ingest: IngestConfig,
    pub http: OriginHttpConfig,
    pub llhls: LlHlsConfig,
    pub webhooks: WebhookConfig,
    pub push: PushConfig,
    /// How edges and shields prove they belong to the cluster.
    pub cluster: super::ClusterConfig,
    /// The ABR rendition ladder and its encoder.
    pub ladder: LadderConfig,
    /// One JSON line per request.
    pub access_log: super::AccessLogConfig,
    /// Channels and stream keys in an embedded database.
    pub control: super::ControlConfig,
    /// Streams kept on disk: DVR, VOD, progressive MP4.
    pub recording: super::RecordingConfig,
    /// WHEP playback: one UDP port for every session's media.
    pub webrtc: super::WebRtcConfig,
}

/// A key that publishes to a fixed stream name without signing, for encoders
/// configured once by hand.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticKey {
    /// The secret the encoder sends as its stream key.
    pub key: String,
    /// The public stream name it publishes to.
    pub stream: String,
    /// A second publisher with this key becomes the stream's backup instead
    /// of being refused, and takes over when the primary stops.
    #[serde(default)]
    pub backup: bool,
    /// `"source"` publishes this stream without transcoding (its encoder
    /// already sends what viewers need); default `"full"`, every rung.
    #[serde(default)]
    pub ladder: LadderChoice,
    /// Record this stream (`true`) or not (`false`) whatever
    /// `recording.policy` says; unset: the policy decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
}

/// RTMP ingest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Address the RTMP listener binds.
    pub listen: SocketAddr,
    /// The RTMP application name publishers connect to (`rtmp://HOST/APP`).
    pub app: String,
    /// Keys that need no signature.
    pub static_keys: Vec<StaticKey>,
    /// A publisher that sends nothing for this long is disconnected.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Maximum simultaneous RTMP connections (publishers and half-open ones).
    pub max_connections: usize,
    /// Of those, at most this many from one client address (IPv6: one /64);
    /// `0` turns the per-address cap off. Encoders behind one NAT each count.
    pub max_connections_per_ip: usize,
    /// The RTMP handshake must complete within this time.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A connection must have its publish accepted this soon after it was
    /// accepted (handshake included), however slowly it keeps sending:
    /// a slot cannot be held by trickling bytes.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// One write to the publisher (an RTMP response) must finish within
    /// this time, else the session ends.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// RTMP over TLS (`rtmps://HOST:1936/APP/KEY`), so stream keys do not
    /// cross the internet in cleartext. Shares the caps and deadlines above.
    pub rtmps: RtmpsConfig,
}

/// The RTMPS listener: TLS (rustls) in front of the same RTMP sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpsConfig {
    /// Listen at all. Off by default: a public encoder needs a certificate
    /// it trusts, which the operator brings (`cert`, `key`).
    pub enabled: bool,
    /// TCP address of the RTMPS listener.
    pub listen: SocketAddr,
    /// PEM certificate chain; without it a self-signed one is made at start
    /// (ffmpeg publishes to it; OBS wants a certificate it trusts).
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

/// The RTMPS port encoders expect.
pub const RTMPS_DEFAULT_PORT: u16 = 1936;

impl Default for RtmpsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], RTMPS_DEFAULT_PORT)),
            cert: None,
            key: None,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            app: "live".to_string(),
            static_keys: Vec::new(),
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_ip: 16,
            handshake_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            rtmps: RtmpsConfig::default(),
        }
    }
}

/// The origin's HTTP server (LL-HLS, API, metrics, player page).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OriginHttpConfig {
    /// Address the HTTP listener binds (HTTP/1.1 and prior-knowledge h2c).
    pub listen: SocketAddr,
    /// Directory holding `hls.min.js` for the player page (from the npm
    /// package `hls.js`); by default `player/node_modules/hls.js/dist` of
    /// the source tree.
    pub player_dir: Option<PathBuf>,
    /// Requests whose headers do not arrive within this time are dropped.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A separate listener for `/metrics` and `/api` (and health); with it,
    /// `listen` serves playback and health only.
    pub admin_listen: Option<SocketAddr>,
    /// A connection on which no byte moved either way for this long is
    /// closed (idle keep-alive, or a client that stopped reading). Edges
    /// keep theirs alive with HTTP/2 pings.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections one client address may hold (IPv6: one /64); `0`, the
    /// default, means no per-address cap (edges behind one NAT share one).
    pub max_connections_per_ip: usize,
}

impl Default for OriginHttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_listen: None,
            player_dir: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections_per_ip: 0,
        }
    }
}

/// Low-Latency HLS packaging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LlHlsConfig {
    /// Partial segment target (PART-TARGET); 0.1 s to 1 s.
    #[serde(with = "humantime_serde")]
    pub part_target: Duration,
    /// Segment target; a segment is cut at the first IDR after it.
    #[serde(with = "humantime_serde")]
    pub segment_target: Duration,
    /// Complete segments kept in the live window (memory is bounded by it).
    pub window_segments: usize,
    /// A publisher that reconnects within this time continues the stream
    /// (with EXT-X-DISCONTINUITY); after it the stream ends (EXT-X-ENDLIST).
    #[serde(with = "humantime_serde")]
    pub reconnect_grace: Duration,
    /// An ended stream stays listed this long so players see ENDLIST.
    #[serde(with = "humantime_serde")]
    pub ended_linger: Duration,
}

impl Default for LlHlsConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(333),
            segment_target: Duration::from_secs(2),
            window_segments: 10,
            reconnect_grace: Duration::from_secs(10),
            ended_linger: Duration::from_secs(30),
        }
    }
}

/// Webhooks to the operator's backend.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// POSTed `{"event":"publish","stream":..,"key":..,"client":..}` before a
    /// publish is accepted; any non-2xx answer (or a timeout) refuses it.
    pub on_publish: Option<String>,
    /// POSTed when a publisher stops; the answer is ignored.
    pub on_publish_done: Option<String>,
    /// POSTed `{"event":"health","stream":..,"health":"STARVING"|"HEALTHY",
    /// "previous":..,"reasons":[..]}` when a live stream starts or stops
    /// starving (with hysteresis: a change, not a tick); answer ignored.
    pub on_health: Option<String>,
    /// POSTed `{"event":"record_done","stream":..,"recording":..,
    /// "durationSeconds":..,"bytes":..,"path":..,...}` once a recording is
    /// final (ended, stopped by an error, or recovered at a start);
    /// retried on failure, answer otherwise ignored.
    pub on_record_done: Option<String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            on_publish: None,
            on_publish_done: None,
            on_health: None,
            on_record_done: None,
            timeout: Duration::from_secs(3),
        }
    }
}

/// Origin-to-edge push over QUIC (see `livecdn_shared::push`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Serve push at all; `false` leaves edges to pull. (A flag rather than
    /// an optional address: TOML has no way to write "none".)
    pub enabled: bool,
    /// UDP address of the push endpoint. The default, loopback, reaches
    /// only edges on this machine: set the cluster-facing address for edges
    /// elsewhere. Every connection must present a cluster credential.
    pub listen: SocketAddr,
    /// PEM certificate for the push endpoint; without it a self-signed one
    /// is made at start (its SPKI pin then changes with every start).
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
    /// Objects in flight per edge connection; past it the origin waits, and
    /// parts that leave the live window meanwhile are skipped, not queued.
    pub max_in_flight: usize,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], crate::push::DEFAULT_PORT)),
            cert: None,
            key: None,
            max_in_flight: 64,
        }
    }
}
