//! Deciding whether a stream key may publish, and to which public name.
//!
//! Order: a static key from config; a signed key `STREAM.EXPIRY.SIG`; then,
//! if configured, the `on_publish` webhook, which may veto a key accepted
//! above or accept a key we do not know (naming the stream in its answer as
//! `{"stream": "NAME"}`). The key itself never becomes the public name.

use crate::webhook::Webhooks;
use livecdn_shared::auth;
use livecdn_shared::config::OriginConfig;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A publish the checks accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub stream: String,
    /// May stand by as a backup for a live publisher on the same stream.
    pub backup: bool,
}

/// Why a publish was refused; the text goes to the log and to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The RTMP application is not the configured one.
    #[error("unknown application {0:?}")]
    WrongApp(String),
    /// A signed key whose signature or format does not verify.
    #[error("invalid stream key: {0}")]
    BadKey(String),
    /// The webhook answered non-2xx, timed out, or failed.
    #[error("on_publish webhook refused: {0}")]
    Webhook(String),
    /// A key nobody recognised.
    #[error("unknown stream key")]
    Unknown,
}

impl Refusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::WrongApp(_) => "wrong_app",
            Refusal::BadKey(_) => "bad_key",
            Refusal::Webhook(_) => "webhook",
            Refusal::Unknown => "unknown_key",
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks a key locally (no webhook).
pub fn check_local(config: &OriginConfig, key: &str) -> Result<Option<Grant>, Refusal> {
    if let Some(k) = config.ingest.static_keys.iter().find(|k| k.key == key) {
        return Ok(Some(Grant {
            stream: k.stream.clone(),
            backup: k.backup,
        }));
    }
    if let Some(secret) = &config.secret {
        if key.matches('.').count() == 2 {
            return auth::verify_key(secret.as_bytes(), key, now_unix())
                .map(|stream| {
                    Some(Grant {
                        stream,
                        backup: false,
                    })
                })
                .map_err(|e| Refusal::BadKey(e.to_string()));
        }
    }
    Ok(None)
}

/// Full check, including the webhook.
pub async fn authorize(
    config: &OriginConfig,
    webhooks: &Webhooks,
    app: &str,
    key: &str,
    peer: SocketAddr,
) -> Result<Grant, Refusal> {
    if app != config.ingest.app {
        return Err(Refusal::WrongApp(app.to_string()));
    }
    let local = check_local(config, key);
    let Some(url) = &config.webhooks.on_publish else {
        return local?.ok_or(Refusal::Unknown);
    };
    let local = local?;
    let body = serde_json::json!({
        "event": "publish",
        "app": app,
        "stream": local.as_ref().map(|g| g.stream.clone()),
        "key": key,
        "client": peer.to_string(),
    });
    let answer = webhooks
        .post(url, &body)
        .await
        .map_err(|e| Refusal::Webhook(e.to_string()))?;
    if !answer.accepted() {
        return Err(Refusal::Webhook(format!("status {}", answer.status)));
    }
    if let Some(grant) = local {
        return Ok(grant);
    }
    // The webhook accepted a key we do not know: it must name the stream.
    let named = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("stream").and_then(|s| s.as_str()).map(str::to_string))
        .filter(|s| auth::valid_stream_name(s) && s != key);
    named
        .map(|stream| Grant {
            stream,
            backup: false,
        })
        .ok_or_else(|| Refusal::Webhook("accepted but named no valid stream".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use livecdn_shared::config::StaticKey;

    fn config() -> OriginConfig {
        let mut c = OriginConfig {
            secret: Some("0123456789abcdef0123".to_string()),
            ..Default::default()
        };
        c.ingest.static_keys.push(StaticKey {
            key: "static-secret-key".to_string(),
            stream: "studio".to_string(),
            backup: true,
        });
        c
    }

    #[test]
    fn static_key_maps_to_its_stream() {
        let g = check_local(&config(), "static-secret-key")
            .expect("ok")
            .expect("grant");
        assert_eq!(
            g,
            Grant {
                stream: "studio".into(),
                backup: true
            }
        );
    }

    #[test]
    fn signed_key_verifies_and_wrong_or_expired_is_refused() {
        let c = config();
        let secret = c.secret.clone().unwrap_or_default();
        let good = auth::sign_key(secret.as_bytes(), "cam1", now_unix() + 60);
        assert_eq!(
            check_local(&c, &good).expect("ok").map(|g| g.stream),
            Some("cam1".to_string())
        );
        let expired = auth::sign_key(secret.as_bytes(), "cam1", now_unix() - 1);
        assert!(matches!(check_local(&c, &expired), Err(Refusal::BadKey(_))));
        let forged = auth::sign_key(b"another-secret-entirely", "cam1", now_unix() + 60);
        assert!(matches!(check_local(&c, &forged), Err(Refusal::BadKey(_))));
        assert_eq!(check_local(&c, "whatever"), Ok(None));
    }
}
