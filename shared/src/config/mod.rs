//! Config schema for the origin and the edge. Every field has a default, so
//! every command runs with no file; `load` turns TOML errors into file:line:column messages.

mod access_log;
mod bitrate;
mod chat;
mod cluster;
mod control;
mod edge;
mod ladder;
mod load;
mod locate;
mod origin;
mod recording;
mod warn;
mod webrtc;

pub use access_log::{AccessLogConfig, ACCESS_LOG_STDOUT};
pub use bitrate::{Bitrate, BitrateError};
pub use chat::ChatConfig;
pub use cluster::{
    ClusterConfig, EdgeClusterConfig, DEFAULT_FAILOVER_HOLD, DEFAULT_LEASE, DEFAULT_MAP_TTL,
};
pub use control::ControlConfig;
pub use edge::{
    CacheConfig, EdgeConfig, EdgeListenConfig, EdgeRole, PlaybackAuthConfig, TlsConfig,
    UpstreamConfig,
};
pub use ladder::{
    Encoder, H264Profile, LadderChoice, LadderConfig, RungConfig, RungFilterError, UnknownEncoder,
    AUDIO_RENDITION, OPUS_RENDITION, SOURCE_RUNG,
};
pub use load::{load_edge, load_origin, parse_edge, parse_origin, ConfigError};
pub use origin::{
    IngestConfig, LlHlsConfig, OriginConfig, OriginHttpConfig, PushConfig, RtmpsConfig, StaticKey,
    WebhookConfig, RTMPS_DEFAULT_PORT,
};
pub use recording::{
    DiskIo, RecordPolicy, RecordRenditions, RecordingConfig, UploadConfig, UploadWhat,
};
pub use warn::{edge_warnings, origin_warnings};
pub use webrtc::{WebRtcConfig, DEFAULT_WEBRTC_PORT};
