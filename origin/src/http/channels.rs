//! `/api/channels`: the control plane over HTTP, shaped after IVS
//! (`CreateChannel` answers with the ingest endpoint, a stream key and the
//! playback URL; `GetStream` with state, health and viewers).
//!
//! Thin: bodies are read bounded and parsed strictly here, the work is
//! [`crate::control`]'s, and the live side (disconnecting a publisher) the
//! registry's. Nothing is stored unless the whole request is valid.

use super::api::{json, json_status};
use super::body::Body;
use super::HttpError;
use crate::control::{
    Channel, ChannelPatch, Control, KeyRecord, NewChannel, NewKey, Revoke, Rotate, Stop, StoreError,
};
use crate::OriginState;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use livecdn_shared::route::ChannelObject;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest request body the API reads.
pub const MAX_BODY: usize = 64 * 1024;

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Exists(_) => HttpError::Conflict(e.to_string()),
            StoreError::NoChannel(_) | StoreError::NoKey(_) => {
                HttpError::NotFound("no such channel or key")
            }
            StoreError::Db(_) | StoreError::Migrate(_) | StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "control database");
                HttpError::Internal("control database error")
            }
        }
    }
}

fn control(state: &OriginState) -> Result<&Control, HttpError> {
    state.control.as_ref().ok_or(HttpError::NotFound(
        "no channels: control.database is not configured",
    ))
}

/// Reads the body (at most [`MAX_BODY`]) as `T`; an empty body is `T`'s
/// default where `T` has one (`empty_ok`).
async fn read_json<T: DeserializeOwned>(
    head: &Parts,
    body: Incoming,
    empty: Option<T>,
) -> Result<T, HttpError> {
    let too_big = || HttpError::BadRequest(format!("body larger than {MAX_BODY} bytes"));
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_big());
    }
    let bytes: Bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_big()
            } else {
                HttpError::BadRequest(format!("reading the body: {e}"))
            }
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if let Some(d) = empty {
            return Ok(d);
        }
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Where encoders and viewers are sent, from the config or the request.
struct Endpoints {
    ingest: String,
    playback_base: String,
}

impl Endpoints {
    fn new(state: &OriginState, headers: &HeaderMap) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        // The host without its port ([v6]:port keeps its brackets).
        let bare = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host,
        };
        let c = &state.config.control;
        let port = state
            .rtmp_addr
            .map_or(state.config.ingest.listen.port(), |a| a.port());
        Self {
            ingest: c
                .ingest_url
                .clone()
                .unwrap_or_else(|| format!("rtmp://{bare}:{port}/{}", state.config.ingest.app)),
            playback_base: c
                .playback_url
                .clone()
                .unwrap_or_else(|| format!("http://{host}"))
                .trim_end_matches('/')
                .to_string(),
        }
    }

    fn playback(&self, name: &str) -> String {
        format!("{}/live/{name}/master.m3u8", self.playback_base)
    }
}

/// A channel as the API shows it: the record and where to publish and play.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelView {
    #[serde(flatten)]
    channel: Channel,
    ingest_endpoint: String,
    playback_url: String,
    /// For `authorized` channels: how viewers get in.
    #[serde(skip_serializing_if = "Option::is_none")]
    playback_auth: Option<PlaybackAuth>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlaybackAuth {
    /// Where the token goes.
    query_parameter: &'static str,
    format: &'static str,
    /// How to mint one on the command line.
    mint: String,
    /// One valid for an hour, when the origin holds the signing secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    example_token: Option<String>,
}

fn view(state: &OriginState, ends: &Endpoints, channel: Channel) -> ChannelView {
    let playback_auth = channel.authorized.then(|| PlaybackAuth {
        query_parameter: "token",
        format: "STREAM.EXPIRY.SIG (HMAC-SHA256 with the origin's secret), then kept in a cookie",
        mint: format!("livecdn token {} --ttl 1h", channel.name),
        example_token: state.config.secret.as_ref().map(|s| {
            let expires = crate::control::now_ms() / 1000 + 3600;
            livecdn_shared::auth::sign_token(s.as_bytes(), &channel.name, expires)
        }),
    });
    ChannelView {
        ingest_endpoint: ends.ingest.clone(),
        playback_url: ends.playback(&channel.name),
        playback_auth,
        channel,
    }
}

/// Ends stream `name` now: ENDLIST for the players holding a request,
/// 404 for new ones, its publishers disconnected, and its edges told to
/// drop what they cached (over push, and `control.purge_edges` over HTTP). How many publishers were cut off, or
/// `None` if it was not live.
fn stop(state: &OriginState, name: &str) -> Option<usize> {
    let stopped = state
        .registry
        .stop(name, std::time::Instant::now())
        .map(|(_, kicked)| kicked);
    let c = &state.config.control;
    if stopped.is_some() {
        let token = c
            .edge_admin_token
            .clone()
            .or_else(|| state.config.admin_token.clone());
        state.webhooks.purge_edges(&c.purge_edges, name, token);
    }
    stopped
}

/// Disconnects the live publishers of `name` that used key `key_id` (all
/// of them when `None`); how many.
fn disconnect(state: &OriginState, name: &str, key_id: Option<&str>) -> usize {
    let n = state.registry.get(name).map_or(0, |hub| hub.kick(key_id));
    if n > 0 {
        tracing::info!(stream = %name, key = ?key_id, sessions = n, "publisher disconnected by the operator");
    }
    n
}

/// Every `/api/channels` request.
pub async fn serve(
    state: &OriginState,
    req: &Parts,
    name: Option<&str>,
    object: ChannelObject<'_>,
    body: Incoming,
) -> Result<Response<Body>, HttpError> {
    let c = control(state)?.clone();
    let method = &req.method;
    let ends = Endpoints::new(state, &req.headers);
    let now = crate::control::now_ms();
    let Some(name) = name.map(str::to_string) else {
        // `/api/channels`
        return match *method {
            Method::GET | Method::HEAD => {
                let list = c.run(|s| s.list()).await?;
                let channels: Vec<_> = list.into_iter().map(|ch| view(state, &ends, ch)).collect();
                Ok(json(&serde_json::json!({ "channels": channels })))
            }
            Method::POST => {
                let mut new: NewChannel = read_json(req, body, None).await?;
                let all =
                    state.config.recording.policy == livecdn_shared::config::RecordPolicy::All;
                new.recording = Some(new.recording.unwrap_or(all));
                new.check()
                    .map_err(|e| HttpError::BadRequest(e.to_string()))?;
                let ttl = c.ttl(new.key_ttl_seconds);
                let (channel, key) = c.run(move |s| s.create(&new, now, ttl)).await?;
                c.note(&channel.name, Some(&channel));
                tracing::info!(stream = %channel.name, key = %key.record.id, "channel created");
                let body = Created {
                    channel: view(state, &ends, channel),
                    stream_key: key,
                };
                Ok(json_status(StatusCode::CREATED, &body))
            }
            _ => Err(HttpError::MethodNotAllowed),
        };
    };
    match (object, method) {
        (ChannelObject::Record, &Method::GET | &Method::HEAD) => {
            let n = name.clone();
            let channel = c
                .run(move |s| s.get(&n))
                .await?
                .ok_or(HttpError::NotFound("no such channel"))?;
            let keys = c.run(move |s| s.keys(&name)).await?;
            Ok(json(&WithKeys {
                channel: view(state, &ends, channel),
                stream_keys: keys,
            }))
        }
        (ChannelObject::Record, &Method::PATCH) => {
            let patch: ChannelPatch = read_json(req, body, None).await?;
            let n = name.clone();
            let channel = c.run(move |s| s.update(&n, &patch, now)).await?;
            c.note(&name, Some(&channel));
            Ok(json(&view(state, &ends, channel)))
        }
        (ChannelObject::Record, &Method::DELETE) => {
            let n = name.clone();
            if !c.run(move |s| s.delete(&n)).await? {
                return Err(HttpError::NotFound("no such channel"));
            }
            c.note(&name, None);
            let disconnected = disconnect(state, &name, None);
            tracing::info!(stream = %name, disconnected, "channel deleted");
            Ok(json(
                &serde_json::json!({ "deleted": name, "disconnected": disconnected }),
            ))
        }
        (ChannelObject::Keys, &Method::GET | &Method::HEAD) => {
            let keys = c.run(move |s| s.keys(&name)).await?;
            Ok(json(&serde_json::json!({ "streamKeys": keys })))
        }
        (ChannelObject::Keys, &Method::POST) => {
            let rotate: Rotate = read_json(req, body, Some(Rotate::default())).await?;
            rotate
                .check()
                .map_err(|e| HttpError::BadRequest(e.to_string()))?;
            let ttl = c.ttl(rotate.key_ttl_seconds);
            let n = name.clone();
            let (key, revoked) = c.run(move |s| s.rotate(&n, now, ttl)).await?;
            // The live publish goes on with its old key until it
            // reconnects, unless asked otherwise.
            let disconnected = if rotate.disconnect {
                disconnect(state, &name, None)
            } else {
                0
            };
            tracing::info!(stream = %name, key = %key.record.id, ?revoked, "stream key rotated");
            Ok(json_status(
                StatusCode::CREATED,
                &Rotated {
                    stream_key: key,
                    revoked,
                    disconnected,
                },
            ))
        }
        (ChannelObject::Key(id), &Method::DELETE) => {
            let query =
                Revoke::from_query(req.uri.query().unwrap_or("")).map_err(HttpError::BadRequest)?;
            let revoke = match query {
                Some(q) => q,
                None => read_json(req, body, Some(Revoke::default())).await?,
            };
            let (n, key_id) = (name.clone(), id.to_string());
            let key = c.run(move |s| s.revoke(&n, &key_id, now)).await?;
            let disconnected = if revoke.disconnect {
                disconnect(state, &name, Some(&key.id))
            } else {
                0
            };
            tracing::info!(stream = %name, key = %key.id, disconnected, "stream key revoked");
            Ok(json(&Revoked {
                stream_key: key,
                disconnected,
            }))
        }
        (ChannelObject::Stream, &Method::GET | &Method::HEAD) => {
            let channel = c.run({
                let n = name.clone();
                move |s| s.get(&n)
            });
            channel
                .await?
                .ok_or(HttpError::NotFound("no such channel"))?;
            Ok(json(&super::health::stream(state, &name)))
        }
        (ChannelObject::Stop, &Method::POST) => {
            let ask: Stop = read_json(req, body, Some(Stop::default())).await?;
            let n = name.clone();
            let revoked = match ask.revoke_keys {
                true => c.run(move |s| s.revoke_all(&n, now)).await?,
                false => {
                    c.run(move |s| s.get(&n))
                        .await?
                        .ok_or(HttpError::NotFound("no such channel"))?;
                    Vec::new()
                }
            };
            let stopped = stop(state, &name);
            Ok(json(&serde_json::json!({
                "stopped": stopped.is_some(),
                "disconnected": stopped.unwrap_or(0),
                "revoked": revoked,
            })))
        }
        _ => Err(HttpError::MethodNotAllowed),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    channel: ChannelView,
    stream_key: NewKey,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WithKeys {
    channel: ChannelView,
    stream_keys: Vec<KeyRecord>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rotated {
    stream_key: NewKey,
    revoked: Vec<String>,
    disconnected: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Revoked {
    stream_key: KeyRecord,
    disconnected: usize,
}
