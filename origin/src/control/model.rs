//! What a channel is, and what API requests may say about one.
//!
//! Requests are parsed strictly (`deny_unknown_fields`): a misspelt field
//! is a 400 with its name, never silently ignored. Fields are camelCase in
//! JSON, as IVS spells them (`latencyMode`, `createdAt`).

use livecdn_shared::auth::valid_stream_name;
use livecdn_shared::config::LadderChoice;
use serde::{Deserialize, Serialize};

/// How a channel is packaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LatencyMode {
    /// The LL-HLS defaults: parts, blocking reload, preload hints.
    #[default]
    #[serde(rename = "LOW")]
    Low,
    /// Plain HLS: 6 s segments, no parts; cheaper for players and caches.
    #[serde(rename = "NORMAL")]
    Normal,
}

impl LatencyMode {
    /// The spelling stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyMode::Low => "LOW",
            LatencyMode::Normal => "NORMAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LOW" => Some(LatencyMode::Low),
            "NORMAL" => Some(LatencyMode::Normal),
            _ => None,
        }
    }
}

/// One channel: a public stream name and how it is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// The public stream name (`/live/NAME/...`).
    pub name: String,
    pub latency_mode: LatencyMode,
    /// `"full"` (every rung of the ladder) or `"source"` (no transcoding).
    pub ladder: LadderChoice,
    /// Record the stream's broadcasts (used by the recorder).
    pub recording: bool,
    /// Playback needs a signed playback token.
    pub authorized: bool,
    /// Unix milliseconds.
    pub created_at: u64,
    pub updated_at: u64,
}

/// `POST /api/channels`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewChannel {
    pub name: String,
    #[serde(default)]
    pub latency_mode: LatencyMode,
    #[serde(default)]
    pub ladder: LadderChoice,
    #[serde(default)]
    pub recording: bool,
    #[serde(default)]
    pub authorized: bool,
    /// The first key's lifetime in seconds (default `control.key_ttl`),
    /// `keyTtlSeconds`.
    #[serde(default)]
    pub key_ttl_seconds: Option<u64>,
}

/// `PATCH /api/channels/NAME`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelPatch {
    pub latency_mode: Option<LatencyMode>,
    pub ladder: Option<LadderChoice>,
    pub recording: Option<bool>,
    pub authorized: Option<bool>,
}

/// `POST /api/channels/NAME/keys`: rotate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rotate {
    /// The new key's lifetime in seconds (default `control.key_ttl`).
    #[serde(default)]
    pub key_ttl_seconds: Option<u64>,
    /// Disconnect the live publisher now rather than when it next
    /// reconnects (it must then come back with the new key).
    #[serde(default)]
    pub disconnect: bool,
}

/// `DELETE /api/channels/NAME/keys/ID` and `POST .../stop` options, from
/// the query string or a JSON body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Revoke {
    /// Also disconnect a live publisher that used this key.
    #[serde(default)]
    pub disconnect: bool,
}

/// The longest key lifetime a request may ask for: a year.
pub const MAX_KEY_TTL_SECONDS: u64 = 366 * 24 * 3600;

/// Why a request was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("invalid channel name {0:?}: 1-64 characters of A-Z a-z 0-9 _ -")]
    Name(String),
    #[error("keyTtlSeconds must be between 1 and {MAX_KEY_TTL_SECONDS}")]
    KeyTtl,
}

impl NewChannel {
    pub fn check(&self) -> Result<(), Invalid> {
        if !valid_stream_name(&self.name) {
            return Err(Invalid::Name(self.name.clone()));
        }
        check_ttl(self.key_ttl_seconds)
    }
}

impl Rotate {
    pub fn check(&self) -> Result<(), Invalid> {
        check_ttl(self.key_ttl_seconds)
    }
}

fn check_ttl(ttl: Option<u64>) -> Result<(), Invalid> {
    match ttl {
        Some(t) if !(1..=MAX_KEY_TTL_SECONDS).contains(&t) => Err(Invalid::KeyTtl),
        _ => Ok(()),
    }
}

/// A stream key as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: String,
    pub channel: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub revoked_at: Option<u64>,
}

impl KeyRecord {
    /// Usable for a publish at `now_ms`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.revoked_at.is_none() && now_ms < self.expires_at
    }
}

/// A key just made: the only time its value is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKey {
    #[serde(flatten)]
    pub record: KeyRecord,
    pub value: String,
}
