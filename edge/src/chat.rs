//! The edge's chat service: `/live/STREAM/chat` as a WebSocket, over
//! HTTP/1.1 (`Upgrade: websocket`, RFC 6455) and HTTP/2 (extended CONNECT,
//! RFC 8441), and the room moderation API under `/api/chat/STREAM/`.
//!
//! Here only the HTTP side: the upgrade is checked, the client admitted or
//! refused ([`livecdn_chat::Chat::admit`], the chat token comes as
//! `?token=`), the 101 (or, on HTTP/2, 200) answered, and the upgraded
//! connection handed to [`livecdn_chat::Chat::serve_upgraded`]. A refused
//! client is upgraded all the same and gets the reason as the close frame,
//! which a browser's `WebSocket` can read (it cannot read a 4xx).

use crate::body::{empty, full};
use crate::error::EdgeError;
use crate::serve::{Body, Conn, Protocol, RequestBody};
use crate::state::Edge;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use livecdn_chat::entry::EntryKind;
use livecdn_shared::auth::ChatRole;
use livecdn_shared::route::ChatApiObject;
use std::time::Duration;

/// Longest chat token lifetime the API mints.
const MAX_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Lifetime when the API request names none.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The value of `name` in a query string (chat tokens are URL-safe, so
/// no decoding).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

fn header_has_token(req: &Request<()>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Answers a WebSocket upgrade to `stream`'s room; `upgrade` is the
/// connection's, taken from the request by the router.
pub fn serve(
    edge: &Edge,
    req: &Request<()>,
    conn: Conn,
    stream: &str,
    upgrade: Option<OnUpgrade>,
) -> Result<Response<Body>, EdgeError> {
    let Some(chat) = edge.chat.clone() else {
        return Err(EdgeError::NotFound);
    };
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let mut resp = Response::new(empty());
    match conn.protocol {
        Protocol::Http1 => {
            let upgrading = req.method() == Method::GET
                && header_has_token(req, header::UPGRADE, "websocket")
                && header_has_token(req, header::CONNECTION, "upgrade");
            if !upgrading || !version_ok {
                return Err(EdgeError::UpgradeRequired);
            }
            let key = req
                .headers()
                .get(header::SEC_WEBSOCKET_KEY)
                .ok_or_else(|| EdgeError::BadRequest("Sec-WebSocket-Key missing".into()))?;
            let accept = HeaderValue::from_str(&livecdn_chat::accept_key(key.as_bytes()))
                .map_err(|_| EdgeError::BadRequest("Sec-WebSocket-Key".into()))?;
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        Protocol::Http2 => {
            let websocket = req.method() == Method::CONNECT
                && req
                    .extensions()
                    .get::<hyper::ext::Protocol>()
                    .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
            if !websocket || !version_ok {
                return Err(EdgeError::UpgradeRequired);
            }
        }
        // No WebSocket over HTTP/3 (RFC 9220) yet: clients fall back to
        // HTTP/2 or HTTP/1.1.
        Protocol::Http3 => return Err(EdgeError::UpgradeRequired),
    }
    let upgrade = upgrade.ok_or(EdgeError::UpgradeRequired)?;
    let admitted = chat.admit(
        stream,
        query_param(req.uri().query(), "token"),
        conn.peer.ip(),
    );
    let stream = stream.to_owned();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => chat.serve_upgraded(TokioIo::new(io), admitted).await,
            Err(e) => tracing::debug!(%stream, error = %e, "chat upgrade failed"),
        }
    });
    Ok(resp)
}

/// `/api/chat/STREAM/...`: mint a token (POST `tokens`), delete a message
/// (DELETE `messages/ID`), ban (PUT `bans/USER[?seconds=N]`) or lift a ban
/// (DELETE `bans/USER`). The router has already checked the admin
/// credential.
pub async fn api(
    edge: &Edge,
    req: &Request<()>,
    stream: &str,
    object: ChatApiObject<'_>,
) -> Result<Response<Body>, EdgeError> {
    let Some(chat) = edge.chat.as_ref() else {
        return Err(EdgeError::NotFound);
    };
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let action = match (req.method(), object) {
        (&Method::POST, ChatApiObject::Tokens) => return mint(chat, req, stream),
        (&Method::DELETE, ChatApiObject::Message(id)) => EntryKind::Delete {
            target: id
                .parse()
                .map_err(|_| EdgeError::BadRequest("message id".into()))?,
        },
        (&Method::PUT, ChatApiObject::Ban(user)) => EntryKind::Ban {
            user: user.to_owned(),
            until: match query_param(req.uri().query(), "seconds") {
                Some(s) => Some(
                    now_unix.saturating_add(
                        s.parse::<u64>()
                            .map_err(|_| EdgeError::BadRequest("seconds".into()))?,
                    ),
                ),
                None => None,
            },
        },
        (&Method::DELETE, ChatApiObject::Ban(user)) => EntryKind::Unban {
            user: user.to_owned(),
        },
        _ => return Err(EdgeError::Method),
    };
    chat.moderate(stream, action)
        .await
        .map_err(|e| EdgeError::Unavailable(format!("chat relay: {e}")))?;
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// What `POST /api/chat/STREAM/tokens` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
    name: String,
    #[serde(default)]
    role: Option<ChatRole>,
    /// Seconds; default an hour, at most 30 days.
    #[serde(default)]
    ttl: Option<u64>,
}

fn mint(
    chat: &livecdn_chat::Chat,
    req: &Request<()>,
    stream: &str,
) -> Result<Response<Body>, EdgeError> {
    let body = req
        .extensions()
        .get::<RequestBody>()
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let asked: TokenRequest = serde_json::from_slice(&body)
        .map_err(|e| EdgeError::BadRequest(format!("token request: {e}")))?;
    let ttl = asked
        .ttl
        .map_or(DEFAULT_TTL, Duration::from_secs)
        .min(MAX_TTL);
    let role = asked.role.unwrap_or(ChatRole::Viewer);
    let token = chat
        .mint(stream, &asked.user, &asked.name, role, ttl)
        .map_err(|e| EdgeError::BadRequest(e.to_string()))?;
    let json = serde_json::json!({ "token": token, "stream": stream, "user": asked.user, "role": role, "ttl": ttl.as_secs() });
    let mut r = Response::new(full(Bytes::from(json.to_string())));
    *r.status_mut() = StatusCode::CREATED;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn finds_exact_parameter() {
        assert_eq!(query_param(Some("a=1&token=x.y"), "token"), Some("x.y"));
        assert_eq!(query_param(Some("tokens=1&token="), "token"), None);
        assert_eq!(query_param(Some("xtoken=1"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }
}
