//! Config schema for the origin (edge and load-test configs come with their
//! crates' issues). Every field has a default, so every command runs with no
//! file; `load` turns TOML errors into file:line:column messages.

mod edge;
mod load;
mod origin;

pub use edge::{
    CacheConfig, EdgeConfig, EdgeListenConfig, EdgeRole, PlaybackAuthConfig, TlsConfig,
    UpstreamConfig,
};
pub use load::{load_edge, load_origin, parse_edge, parse_origin, ConfigError};
pub use origin::{
    IngestConfig, LlHlsConfig, OriginConfig, OriginHttpConfig, PushConfig, StaticKey, WebhookConfig,
};
