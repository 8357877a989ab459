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
    /// Record the stream's broadcasts, whatever `recording.policy` says.
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
    /// Record its broadcasts; unset, as `recording.policy` says (the API
    /// fills it in before the channel is stored).
    #[serde(default)]
    pub recording: Option<bool>,
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

impl Revoke {
    /// From a query string: `disconnect=true|1|false|0`; `None` when the
    /// query is empty (the body may say it then). Anything else is an
    /// error naming the parameter.
    pub fn from_query(query: &str) -> Result<Option<Revoke>, String> {
        if query.is_empty() {
            return Ok(None);
        }
        let mut r = Revoke::default();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("disconnect", "true" | "1") => r.disconnect = true,
                ("disconnect", "false" | "0") => r.disconnect = false,
                _ => return Err(format!("unknown query parameter {pair:?}")),
            }
        }
        Ok(Some(r))
    }
}

/// Fuzz body: any bytes as each API request body (JSON) and as a revoke
/// query. Never a panic; what parses passes or fails its checks cleanly.
pub fn fuzz_channel_request(data: &[u8]) {
    if let Ok(n) = serde_json::from_slice::<NewChannel>(data) {
        let _ = n.check();
    }
    if let Ok(r) = serde_json::from_slice::<Rotate>(data) {
        let _ = r.check();
    }
    let _ = serde_json::from_slice::<ChannelPatch>(data);
    let _ = serde_json::from_slice::<Stop>(data);
    let _ = serde_json::from_slice::<Revoke>(data);
    let _ = Revoke::from_query(&String::from_utf8_lossy(data));
}

/// `POST /api/channels/NAME/stop`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stop {
    /// Also revoke the channel's keys, so that the encoder cannot come
    /// straight back.
    #[serde(default)]
    pub revoke_keys: bool,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn revoke_queries_are_strict() {
        assert!(Revoke::from_query("").unwrap().is_none());
        assert!(
            Revoke::from_query("disconnect=true")
                .unwrap()
                .unwrap()
                .disconnect
        );
        assert!(
            !Revoke::from_query("disconnect=0")
                .unwrap()
                .unwrap()
                .disconnect
        );
        for bad in ["disconnect", "disconnect=yes", "x=1", "disconnect=1&", "&"] {
            assert!(Revoke::from_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fuzz_channel_request_survives_seeds_and_mutations() {
        let seeds: &[&[u8]] = &[
            br#"{"name":"cam","latencyMode":"NORMAL","ladder":"source","keyTtlSeconds":60}"#,
            br#"{"disconnect":true,"keyTtlSeconds":18446744073709551615}"#,
            br#"{"revokeKeys":true}"#,
            b"disconnect=1&disconnect=0",
            br#"{"name":"\u0000"}"#,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for seed in seeds {
            fuzz_channel_request(seed);
            for _ in 0..2_000 {
                let mut m = seed.to_vec();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len().max(1);
                match x % 3 {
                    0 if !m.is_empty() => m[i] = (x >> 8) as u8,
                    1 => m.insert(i.min(m.len()), (x >> 16) as u8),
                    _ if !m.is_empty() => {
                        m.remove(i);
                    }
                    _ => {}
                }
                fuzz_channel_request(&m);
            }
        }
    }
}
