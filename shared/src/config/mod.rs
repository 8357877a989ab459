//! Config schema for the origin (edge and load-test configs come with their
//! crates' issues). Every field has a default, so every command runs with no
//! file; `load` turns TOML errors into file:line:column messages.

mod load;
mod origin;

pub use load::{load_origin, parse_origin, ConfigError};
pub use origin::{
    IngestConfig, LlHlsConfig, OriginConfig, OriginHttpConfig, StaticKey, WebhookConfig,
};
