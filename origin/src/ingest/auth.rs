//! Deciding whether a stream key may publish, and to which public name.
//!
//! Order: a static key from config; a signed key `STREAM.EXPIRY.SIG`; a
//! channel's key from the control database (expired and revoked ones are
//! refused as such); then, if configured, the `on_publish` webhook, which
//! may veto a key accepted above or accept a key we do not know (naming the
//! stream in its answer as `{"stream": "NAME"}`). The key itself never
//! becomes the public name. When the stream has a channel, its ladder
//! choice and latency mode decide, whichever key published.
//!
//! A stream skips transcoding (`Grant::source_only`) when its static key
//! says `ladder = "source"` or the webhook's 2xx answer says
//! `{"ladder": "source"}`; either one is enough, so an operator's backend
//! can opt a stream out but cannot force the ladder onto a key configured
//! as source-only.
//!
//! Whether the stream is recorded (`Grant::record`): the webhook's answer
//! `{"record": true|false}` if it says, else the channel's `recording`
//! (a new channel takes `recording.policy` unless created with one), else
//! the static key's `record`, else `recording.policy`.

use crate::control::{Control, KeyLookup, LatencyMode};
use crate::webhook::Webhooks;
use livecdn_shared::auth;
use livecdn_shared::config::{LadderChoice, OriginConfig};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A publish the checks accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub stream: String,
    /// May stand by as a backup for a live publisher on the same stream.
    pub backup: bool,
    /// Serve the publisher's own rendition only: start no encoder for it.
    pub source_only: bool,
    /// The channel key it published with (so that revoking that key can
    /// disconnect it).
    pub key_id: Option<String>,
    /// Package for low latency (false: the channel is `NORMAL`).
    pub low_latency: bool,
    /// Record (or not) whatever `recording.policy` says; `None`: the
    /// policy decides.
    pub record: Option<bool>,
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
    /// A channel key past its expiry.
    #[error("stream key {0} expired")]
    Expired(String),
    /// A channel key that was revoked (or rotated away).
    #[error("stream key {0} revoked")]
    Revoked(String),
    /// The control database could not answer: refused, not guessed.
    #[error("control database: {0}")]
    Store(String),
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
            Refusal::Expired(_) => "expired_key",
            Refusal::Revoked(_) => "revoked_key",
            Refusal::Store(_) => "store",
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
    if let Some(k) = config
        .ingest
        .static_keys
        .iter()
        .find(|k| auth::same_secret(key, &k.key))
    {
        return Ok(Some(Grant {
            stream: k.stream.clone(),
            backup: k.backup,
            source_only: k.ladder == LadderChoice::SourceOnly,
            key_id: None,
            low_latency: true,
            record: k.record,
        }));
    }
    if let Some(secret) = &config.secret {
        if key.matches('.').count() == 2 {
            return auth::verify_key(secret.as_bytes(), key, now_unix())
                .map(|stream| {
                    Some(Grant {
                        stream,
                        backup: false,
                        source_only: false,
                        key_id: None,
                        low_latency: true,
                        record: None,
                    })
                })
                .map_err(|e| Refusal::BadKey(e.to_string()));
        }
    }
    Ok(None)
}

/// A key of a channel in the control database, and the channel's ladder
/// choice for a grant from a static or signed key.
async fn with_channels(
    control: &Control,
    key: &str,
    local: Option<Grant>,
) -> Result<Option<Grant>, Refusal> {
    let store = |e: crate::control::StoreError| Refusal::Store(e.to_string());
    let now = crate::control::now_ms();
    match local {
        None => {
            let value = key.to_string();
            match control
                .run(move |s| s.find_key(&value, now))
                .await
                .map_err(store)?
            {
                KeyLookup::Active { channel, key_id } => Ok(Some(Grant {
                    source_only: channel.ladder == LadderChoice::SourceOnly,
                    low_latency: channel.latency_mode == LatencyMode::Low,
                    record: Some(channel.recording),
                    stream: channel.name,
                    backup: false,
                    key_id: Some(key_id),
                })),
                KeyLookup::Expired { key_id } => Err(Refusal::Expired(key_id)),
                KeyLookup::Revoked { key_id } => Err(Refusal::Revoked(key_id)),
                KeyLookup::Unknown => Ok(None),
            }
        }
        Some(grant) => {
            let name = grant.stream.clone();
            let channel = control.run(move |s| s.get(&name)).await.map_err(store)?;
            Ok(Some(match channel {
                Some(c) => Grant {
                    source_only: c.ladder == LadderChoice::SourceOnly,
                    low_latency: c.latency_mode == LatencyMode::Low,
                    record: Some(c.recording),
                    ..grant
                },
                None => grant,
            }))
        }
    }
}

/// Full check: local keys, the control database (when configured), the
/// webhook.
pub async fn authorize(
    config: &OriginConfig,
    control: Option<&Control>,
    webhooks: &Webhooks,
    app: &str,
    key: &str,
    peer: SocketAddr,
) -> Result<Grant, Refusal> {
    if app != config.ingest.app {
        return Err(Refusal::WrongApp(app.to_string()));
    }
    let local = check_local(config, key);
    let local = match control {
        Some(c) => with_channels(c, key, local?).await,
        None => local,
    };
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
    let answer = AcceptAnswer::parse(&answer.body);
    let source_only = answer.ladder == LadderChoice::SourceOnly;
    if let Some(grant) = local {
        return Ok(Grant {
            source_only: grant.source_only || source_only,
            record: answer.record.or(grant.record),
            ..grant
        });
    }
    // The webhook accepted a key we do not know: it must name the stream.
    answer
        .stream
        .filter(|s| auth::valid_stream_name(s) && s != key)
        .map(|stream| Grant {
            stream,
            backup: false,
            source_only,
            key_id: None,
            low_latency: true,
            record: answer.record,
        })
        .ok_or_else(|| Refusal::Webhook("accepted but named no valid stream".to_string()))
}

/// What a 2xx `on_publish` answer body may say. Not JSON, or fields of other
/// types, count as saying nothing: the status code alone already accepted.
#[derive(Debug, Default, PartialEq, Eq)]
struct AcceptAnswer {
    /// `"stream"`: the public name for a key the origin does not know.
    stream: Option<String>,
    /// `"ladder": "source"` opts the stream out of transcoding; any other
    /// value, or none, keeps the full ladder.
    ladder: LadderChoice,
    /// `"record": true|false`: record this stream or not, whatever the
    /// policy says.
    record: Option<bool>,
}

impl AcceptAnswer {
    fn parse(body: &[u8]) -> Self {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Self::default();
        };
        let field = |name: &str| v.get(name).and_then(|s| s.as_str());
        Self {
            stream: field("stream").map(str::to_string),
            ladder: match field("ladder") {
                Some(s) if s == LadderChoice::SourceOnly.as_str() => LadderChoice::SourceOnly,
                _ => LadderChoice::Full,
            },
            record: v.get("record").and_then(|r| r.as_bool()),
        }
    }
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
            ladder: LadderChoice::Full,
            record: Some(true),
        });
        c.ingest.static_keys.push(StaticKey {
            key: "source-only-key".to_string(),
            stream: "lobby".to_string(),
            backup: false,
            ladder: LadderChoice::SourceOnly,
            record: None,
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
                backup: true,
                source_only: false,
                key_id: None,
                low_latency: true,
                record: Some(true),
            }
        );
    }

    #[test]
    fn static_key_with_source_ladder_grants_source_only() {
        let g = check_local(&config(), "source-only-key")
            .expect("ok")
            .expect("grant");
        assert_eq!((g.stream.as_str(), g.source_only), ("lobby", true));
    }

    #[test]
    fn webhook_answer_ladder_source_means_source_only() {
        for (body, stream, ladder) in [
            (r#"{"ladder":"source"}"#, None, LadderChoice::SourceOnly),
            (
                r#"{"stream":"cam","ladder":"source"}"#,
                Some("cam"),
                LadderChoice::SourceOnly,
            ),
            (r#"{"stream":"cam"}"#, Some("cam"), LadderChoice::Full),
            (r#"{"ladder":"full"}"#, None, LadderChoice::Full),
            (r#"{"ladder":"SOURCE"}"#, None, LadderChoice::Full),
            (r#"{"ladder":true}"#, None, LadderChoice::Full),
            (r#"["ladder","source"]"#, None, LadderChoice::Full),
            ("ok", None, LadderChoice::Full),
            ("", None, LadderChoice::Full),
        ] {
            let want = AcceptAnswer {
                stream: stream.map(str::to_string),
                ladder,
                record: None,
            };
            assert_eq!(AcceptAnswer::parse(body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn webhook_answer_record_says_yes_or_no() {
        for (body, want) in [
            (r#"{"record":true}"#, Some(true)),
            (r#"{"record":false,"ladder":"source"}"#, Some(false)),
            (r#"{"record":"yes"}"#, None),
            (r#"{}"#, None),
        ] {
            assert_eq!(AcceptAnswer::parse(body.as_bytes()).record, want, "{body}");
        }
    }

    /// Answers one HTTP request with 200 and `body`, after reading it whole.
    async fn answer_once(body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/publish", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The client sends headers and a small JSON body; it is complete
            // once the body's closing brace has arrived.
            while !request.ends_with(b"}") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        });
        url
    }

    #[tokio::test]
    async fn webhook_can_opt_a_stream_out_of_the_ladder() {
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        let hooks = Webhooks::new(std::time::Duration::from_secs(5));
        let mut c = config();
        c.webhooks.on_publish = Some(answer_once(r#"{"stream":"cam","ladder":"source"}"#).await);
        let g = authorize(&c, None, &hooks, "live", "unknown-key", peer)
            .await
            .expect("accepted");
        assert_eq!((g.stream.as_str(), g.source_only), ("cam", true));

        c.webhooks.on_publish = Some(answer_once(r#"{"ladder":"source"}"#).await);
        let g = authorize(&c, None, &hooks, "live", "static-secret-key", peer)
            .await
            .expect("accepted");
        assert_eq!((g.stream.as_str(), g.source_only), ("studio", true));

        c.webhooks.on_publish = Some(answer_once("{}").await);
        let g = authorize(&c, None, &hooks, "live", "source-only-key", peer)
            .await
            .expect("accepted");
        assert!(g.source_only, "the webhook cannot undo a source-only key");
        c.webhooks.on_publish = Some(answer_once("{}").await);
        let g = authorize(&c, None, &hooks, "live", "static-secret-key", peer)
            .await
            .expect("accepted");
        assert!(!g.source_only);
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
