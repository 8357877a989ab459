//! The playback service: LL-HLS from the cache. Token check, viewer
//! tracking, the blocking-reload rules the edge can decide itself, cache
//! lookup (hit, coalesce, a disk-tier copy, or lead a fill), push wait,
//! upstream fetch with failover (on a task of its own, so a viewer that
//! leaves never cancels a fill the next viewers want), and a response
//! streamed from the cached object.
//!
//! Timing (hold times, TTLs) comes from each stream's own live playlists
//! through [`crate::streams::Streams`]; every live playlist this service
//! fetches teaches that table. Recordings (`/vod/`) go through the same
//! cache and token rules but teach no timing and count no viewers, and
//! their `download.mp4` is relayed rather than cached ([`download`]).

mod download;

use crate::access;
use crate::body::{chunks_body, gzip_once, object_body, pump};
use crate::cache::{CacheKey, CachePolicy, CachedObject, Lookup, ObjectKind};
use crate::error::EdgeError;
use crate::serve::{Body, Conn};
use crate::state::Edge;
use crate::upstream::UpstreamError;
use crate::viewers::Viewers;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use livecdn_shared::auth::playback as playback_auth;
use livecdn_shared::playlist::{HlsQuery, MediaPlaylist};
use livecdn_shared::priority;
use livecdn_shared::route::{LiveObject, MediaFile, Route, VodObject};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upstream headers worth keeping on a cached object.
const KEPT_HEADERS: [header::HeaderName; 8] = [
    header::HeaderName::from_static(playback_auth::ACCESS_HEADER),
    header::HeaderName::from_static(livecdn_shared::push::PULL_PLAYLISTS_HEADER),
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::CONTENT_ENCODING,
    header::RETRY_AFTER,
    header::LAST_MODIFIED,
    header::ETAG,
];

/// What one playback request is about.
struct Target<'a> {
    key: CacheKey,
    kind: ObjectKind,
    /// `-` for the player page.
    stream: &'a str,
    /// The rendition of a media playlist request.
    rendition: Option<&'a str>,
    /// The request's delivery directives.
    hls: HlsQuery,
    policy: CachePolicy,
    gzip: bool,
}

/// Serves a playback route: the player page and script, `/live/`
/// playlists and media, and recordings (`/vod/`). `None` if `route` is not
/// one.
pub async fn serve(
    edge: &Arc<Edge>,
    req: &Request<()>,
    conn: Conn,
    route: &Route<'_>,
) -> Option<Result<(&'static str, Response<Body>), EdgeError>> {
    let (stream, rendition) = match route {
        Route::Player | Route::PlayerScript(_) => ("-", None),
        Route::Live {
            stream,
            object: LiveObject::Master | LiveObject::Mpd,
        } => (*stream, None),
        Route::Live {
            stream,
            object: LiveObject::Media(m),
        } => (*stream, Some(m.rendition)),
        // A recording's playlists teach no live timing (no rendition here).
        Route::Vod { stream, .. } => (*stream, None),
        _ => return None,
    };
    Some(play(edge, req, conn, route, stream, rendition).await)
}

async fn play(
    edge: &Arc<Edge>,
    req: &Request<()>,
    conn: Conn,
    route: &Route<'_>,
    stream: &str,
    rendition: Option<&str>,
) -> Result<(&'static str, Response<Body>), EdgeError> {
    let path = req.uri().path();
    let query = req.uri().query();
    // Malformed directives are the client's error: answer 400 here rather
    // than forwarding (or caching) anything.
    let hls = match query {
        Some(q) => HlsQuery::parse(q).map_err(|e| EdgeError::BadRequest(e.to_string()))?,
        None => HlsQuery::default(),
    };
    // A stream's media, live or recorded, needs what the stream needs;
    // only live requests count as viewers and follow live timing.
    let has_stream = route.stream().is_some();
    let is_live = matches!(route, Route::Live { .. });
    // Tokens: where the config wants them, or for a stream the origin
    // marked as an `authorized` channel's.
    let token_check = |this_stream: bool| access::check(edge, req, conn, stream, this_stream);
    let protected = has_stream && edge.streams.needs_token(stream);
    let mut set_cookie = None;
    if has_stream {
        set_cookie = token_check(protected)?;
    }
    let kind = ObjectKind::from_route(route, query);
    let policy = edge.streams.policy(stream);
    let now = Instant::now();
    if let (Some(msn), ObjectKind::BlockingPlaylist, Some(r)) = (hls.msn, kind, rendition) {
        if let Some(progress) = edge.streams.progress(stream, r) {
            let part = match hls.part {
                Some(p) => Some(
                    u32::try_from(p)
                        .map_err(|_| EdgeError::BadRequest("_HLS_part too large".into()))?,
                ),
                None => None,
            };
            progress
                .check(msn, part, policy.target_duration, now)
                .map_err(|e| EdgeError::BadRequest(e.to_string()))?;
        }
    }
    // Only streams known to be real are tracked: a made-up name costs
    // no viewer entry and no push subscription.
    if is_live && edge.streams.knows(stream) {
        let h = req.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
        let session = Viewers::session_id(
            get("x-playback-session-id"),
            conn.peer.ip(),
            get("user-agent"),
        );
        edge.viewers.seen(stream, session, now);
        if let Some(push) = &edge.push {
            push.touch(stream, now);
        }
    }
    let gzip = matches!(
        kind,
        ObjectKind::Playlist
            | ObjectKind::BlockingPlaylist
            | ObjectKind::Master
            | ObjectKind::Manifest
            | ObjectKind::RecordedPlaylist
    ) && req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let target = Target {
        key: CacheKey::from_request(path, query),
        kind,
        stream,
        rendition: rendition.filter(|_| route.media().map(|m| m.file) == Some(MediaFile::Playlist)),
        hls,
        policy,
        gzip,
    };
    let mut resp = match route {
        Route::Vod {
            object: VodObject::Download,
            ..
        } => download::relay(edge, req, stream, target.key.as_str()).await?,
        _ => cached(edge, &target).await?,
    };
    // The origin's answer says whether this stream needs tokens; the first
    // request of a newly protected stream is checked here, once the
    // answer is in (it is served to no one unchecked).
    if has_stream && !edge.config.auth.required {
        let marked = resp
            .headers()
            .get(playback_auth::ACCESS_HEADER)
            .is_some_and(|v| v == playback_auth::ACCESS_TOKEN);
        if marked && !protected {
            edge.streams.set_needs_token(stream, true);
            set_cookie = token_check(true)?;
        }
    }
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok((kind.as_str(), resp))
}

async fn cached(edge: &Arc<Edge>, t: &Target<'_>) -> Result<Response<Body>, EdgeError> {
    let (key, kind) = (&t.key, t.kind);
    // A leader that fails hands its followers back to the cache's flight
    // table, which elects one of them to lead the next attempt.
    let permit = match edge.cache.lookup(key, kind).await {
        Lookup::Hit { object, age } => return Ok(respond(edge, t, &object, "HIT", Some(age))),
        Lookup::Coalesced { object } => {
            if kind == ObjectKind::BlockingPlaylist {
                edge.metrics
                    .blocking_release
                    .record(object.created.elapsed());
            }
            return Ok(respond(edge, t, &object, "COALESCED", None));
        }
        Lookup::Stale { object } => return Ok(respond(edge, t, &object, "STALE", None)),
        Lookup::TimedOut => return Err(EdgeError::LockTimeout),
        Lookup::Miss(permit) => match edge.cache.from_disk(permit.with_policy(t.policy)).await {
            Ok(object) => return Ok(respond(edge, t, &object, "DISK", None)),
            Err(permit) => permit,
        },
    };
    // With push delivering this stream, the next blocking playlist is
    // about to arrive on its own: wait for it (bounded), then fall back.
    // Parts are not waited for: a hinted part streams from upstream as
    // it is produced (earlier first bytes), and a hint the origin never
    // fills (a segment that closed earlier than predicted) gets its 404
    // at once instead of after the push timeout.
    // A request the last playlist seen already answers (an old MSN) will
    // never be pushed: straight upstream.
    let answered = match (t.rendition, t.hls.msn) {
        (Some(r), Some(msn)) => edge
            .streams
            .progress(t.stream, r)
            .is_some_and(|p| p.lists(msn, t.hls.part.and_then(|p| u32::try_from(p).ok()))),
        _ => false,
    };
    let pushable = kind == ObjectKind::BlockingPlaylist
        && t.hls.skip.is_none()
        && !answered
        && !edge.streams.pulls_playlists(t.stream);
    if let Some(push) = edge
        .push
        .as_ref()
        .filter(|p| pushable && p.is_active(t.stream, Instant::now()))
    {
        let wait = t.policy.target_duration * 3;
        if let Some(object) = push.wait_for(key, wait).await {
            edge.metrics
                .blocking_release
                .record(object.created.elapsed());
            drop(permit); // followers find the pushed object in the store
            return Ok(respond(edge, t, &object, "HIT", Some(Duration::ZERO)));
        }
    }
    // Blocking playlists and hinted parts may be held upstream for up to
    // three of the stream's target durations; that is not a timeout.
    let wait = match kind {
        ObjectKind::BlockingPlaylist
        | ObjectKind::Part
        | ObjectKind::Master
        | ObjectKind::Manifest
        | ObjectKind::Segment => edge.streams.blocking_wait(t.stream),
        _ => Duration::ZERO,
    };
    // The fill runs on its own task: a viewer that goes away while the
    // upstream answer is on its way (a blocking reload held, a part not
    // yet begun, a slow link) does not cancel it, so the viewers who ask
    // next find it in flight or in the cache instead of fetching again.
    let fill = tokio::spawn(fill(
        Arc::clone(edge),
        Fill {
            stream: t.stream.to_string(),
            rendition: t.rendition.map(str::to_string),
            key: key.clone(),
            kind,
            wait,
        },
        permit,
    ));
    match fill.await {
        Ok(Ok(object)) => Ok(respond(edge, t, &object, "MISS", None)),
        Ok(Err(e)) => match edge.cache.get_stale(key).await {
            Some(stale) => Ok(respond(edge, t, &stale, "STALE", None)),
            None if matches!(e, UpstreamError::NotFound(_)) => Err(EdgeError::NotFound),
            None => Err(EdgeError::Upstream(e.to_string())),
        },
        Err(e) => Err(EdgeError::Upstream(format!("fill task: {e}"))),
    }
}

/// What a fill fetches, owned so it outlives the request that led it.
struct Fill {
    stream: String,
    rendition: Option<String>,
    key: CacheKey,
    kind: ObjectKind,
    /// How long upstream may hold the request (blocking reloads, parts).
    wait: Duration,
}

/// Fetches `f` upstream and publishes the answer through `permit` to every
/// request waiting on it (and to the store); the body streams in on a task
/// of its own. On failure the permit is dropped, so a waiting follower
/// leads the next attempt.
async fn fill(
    edge: Arc<Edge>,
    f: Fill,
    permit: crate::cache::FillPermit,
) -> Result<Arc<CachedObject>, UpstreamError> {
    let fetched = edge
        .upstreams
        .fetch(&f.stream, f.key.as_str(), f.wait)
        .await?;
    edge.metrics.upstream.record(fetched.latency);
    let status = fetched.response.status().as_u16();
    edge.metrics.upstream_fetch(&fetched.upstream.base, status);
    let mut headers = HeaderMap::new();
    for name in KEPT_HEADERS {
        if let Some(v) = fetched.response.headers().get(&name) {
            headers.insert(name, v.clone());
        }
    }
    // Each fresh answer from the origin says whether the stream's channel
    // is `authorized` now (marking it, or clearing the mark once the
    // channel is opened).
    if status == 200 && matches!(f.kind, ObjectKind::Playlist | ObjectKind::Master) {
        let marked = headers
            .get(playback_auth::ACCESS_HEADER)
            .is_some_and(|v| v == playback_auth::ACCESS_TOKEN);
        edge.streams.set_needs_token(&f.stream, marked);
    }
    let object = permit.publish(status, headers).await;
    let body = fetched.response.into_body();
    match (f.rendition, status) {
        (Some(rendition), 200) => {
            let (streams, object) = (edge.streams.clone(), object.clone());
            tokio::spawn(async move {
                pump(body, object.clone()).await;
                learn(&streams, &f.stream, &rendition, &object);
            });
        }
        _ => {
            tokio::spawn(pump(body, object.clone()));
        }
    }
    Ok(object)
}

/// Teaches the timing table from a fetched playlist (once per fetch, not
/// per viewer).
fn learn(streams: &crate::streams::Streams, stream: &str, rendition: &str, object: &CachedObject) {
    let Some((chunks, _)) = object.body.complete_chunks() else {
        return;
    };
    let text: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let parsed = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| MediaPlaylist::parse(t).ok());
    if let Some(playlist) = parsed {
        streams.learn(stream, rendition, &playlist, Instant::now());
        let pulled = object
            .headers
            .contains_key(livecdn_shared::push::PULL_PLAYLISTS_HEADER);
        streams.set_pulls_playlists(stream, pulled);
    }
}

/// A response streamed from a cached (possibly still growing) object.
fn respond(
    edge: &Edge,
    t: &Target<'_>,
    object: &Arc<CachedObject>,
    outcome: &'static str,
    age: Option<Duration>,
) -> Response<Body> {
    edge.metrics.cache(outcome_label(outcome), t.kind.as_str());
    // A complete object goes out as a snapshot of its chunks; one still
    // growing is streamed as it fills.
    let mut complete = object.body.complete_chunks();
    let mut encoded = false;
    if let (true, Some((chunks, _))) = (t.gzip, &complete) {
        if let Some(gz) = gzip_once(object, chunks) {
            complete = Some((Arc::from([gz.clone()]), gz.len() as u64));
            encoded = true;
        }
    }
    let body = match &complete {
        Some((chunks, len)) => chunks_body(chunks.clone(), *len),
        None => object_body(object.clone(), edge.cache.config().body_idle_timeout),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(object.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = resp.headers_mut();
    for (k, v) in &object.headers {
        h.insert(k.clone(), v.clone());
    }
    if let Some((_, len)) = complete {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        let label = if edge.streams.knows(t.stream) {
            t.stream
        } else {
            "-"
        };
        edge.metrics.bytes(label, len);
    }
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if t.gzip {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if let Some(age) = age {
        h.insert(header::AGE, HeaderValue::from(age.as_secs()));
    }
    h.insert("x-cache", HeaderValue::from_static(outcome));
    if let Some(kind) = t.kind.priority() {
        let field = priority::field_for_kind(kind);
        h.insert("priority", HeaderValue::from_static(field));
    }
    resp
}

fn outcome_label(outcome: &'static str) -> &'static str {
    match outcome {
        "HIT" => "hit",
        "MISS" => "miss",
        "COALESCED" => "coalesced",
        "DISK" => "disk",
        _ => "stale",
    }
}
