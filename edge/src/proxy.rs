//! The edge's request flow: route, cache lookup (hit, coalesce, or lead a
//! fill), upstream fetch with failover, and a response streamed from the
//! cached object. Errors become a status code in one place,
//! [`EdgeError::status`].

use crate::body::{chunks_body, empty, full, gzip_once, object_body, pump};
use crate::cache::{Cache, CacheKey, CachedObject, Lookup, ObjectKind};
use crate::metrics::EdgeMetrics;
use crate::serve::{Body, Conn, Handler};
use crate::upstream::Upstreams;
use crate::viewers::Viewers;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use livecdn_shared::config::EdgeConfig;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upstream headers worth keeping on a cached object.
const KEPT_HEADERS: [header::HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::CONTENT_ENCODING,
    header::RETRY_AFTER,
    header::LAST_MODIFIED,
    header::ETAG,
];

/// How a request failed, classified by who is to blame.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Not a path we serve (or an unsafe one).
    #[error("not found")]
    NotFound,
    /// Only GET, HEAD and OPTIONS.
    #[error("method not allowed")]
    Method,
    /// A missing or invalid playback token.
    #[error("forbidden: {0}")]
    Forbidden(#[from] crate::auth::AuthError),
    /// Malformed `_HLS_*` delivery directives (RFC 8216bis: 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Every upstream failed and nothing stale was at hand.
    #[error("upstream unavailable: {0}")]
    Upstream(String),
    /// Waited too long for another request's upstream fetch.
    #[error("timed out waiting for a coalesced fetch")]
    LockTimeout,
}

impl EdgeError {
    pub fn status(&self) -> StatusCode {
        match self {
            EdgeError::NotFound => StatusCode::NOT_FOUND,
            EdgeError::Method => StatusCode::METHOD_NOT_ALLOWED,
            EdgeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EdgeError::Forbidden(_) => StatusCode::FORBIDDEN,
            EdgeError::Upstream(_) => StatusCode::BAD_GATEWAY,
            EdgeError::LockTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

pub struct Edge {
    pub config: EdgeConfig,
    pub cache: Cache,
    pub upstreams: Arc<Upstreams>,
    pub metrics: EdgeMetrics,
    pub viewers: Mutex<Viewers>,
    /// How long upstream may hold a blocking request (3 target durations).
    pub blocking_wait: Duration,
    /// Origin push subscriber; `None` when `upstream.push` is empty.
    pub push: Option<Arc<crate::push::Push>>,
}

/// The [`Handler`] every listener calls.
pub struct EdgeHandler(pub Arc<Edge>);

impl Handler for EdgeHandler {
    fn handle(&self, req: Request<()>, conn: Conn) -> BoxFuture<'static, Response<Body>> {
        let edge = self.0.clone();
        Box::pin(async move { edge.serve(req, conn).await })
    }
}

/// Paths that go through the cache: the player page, hls.js, and `/live/`.
/// Only plain characters, no `..`, no empty segments: nothing can escape.
fn cacheable_path(path: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-');
    let plain = path.len() <= 256
        && path.chars().all(allowed)
        && !path.contains("..")
        && !path.contains("//");
    plain
        && (path == "/"
            || path == "/index.html"
            || path == "/player/hls.min.js"
            || path.starts_with("/live/"))
}

fn stream_of(path: &str) -> &str {
    path.strip_prefix("/live/")
        .and_then(|p| p.split('/').next())
        .unwrap_or("-")
}

impl Edge {
    pub async fn serve(self: Arc<Self>, req: Request<()>, conn: Conn) -> Response<Body> {
        let start = Instant::now();
        let path = req.uri().path().to_string();
        let stream = stream_of(&path).to_string();
        let method = req.method().clone();
        let (kind, mut resp) = match method {
            Method::OPTIONS => ("preflight", preflight()),
            Method::GET | Method::HEAD => match self.route(&req, conn).await {
                Ok((kind, r)) => (kind, r),
                Err(e) => ("error", error_response(&e)),
            },
            _ => ("error", error_response(&EdgeError::Method)),
        };
        self.metrics.ttfb.record(start.elapsed());
        self.metrics.request(
            &stream,
            kind,
            conn.protocol.as_str(),
            resp.status().as_u16(),
        );
        livecdn_shared::cors::add_cors(resp.headers_mut(), "Age, Content-Length, Date, X-Cache");
        if method == Method::HEAD {
            *resp.body_mut() = empty();
        }
        resp
    }

    async fn route(
        &self,
        req: &Request<()>,
        conn: Conn,
    ) -> Result<(&'static str, Response<Body>), EdgeError> {
        let path = req.uri().path();
        match path {
            "/healthz" => return Ok(("health", text(StatusCode::OK, "ok\n"))),
            "/readyz" => {
                let ready = self.upstreams.all().any(|u| u.is_healthy());
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                return Ok((
                    "health",
                    text(
                        status,
                        if ready {
                            "ready\n"
                        } else {
                            "no healthy upstream\n"
                        },
                    ),
                ));
            }
            "/metrics" => return Ok(("metrics", self.metrics_response())),
            "/api/streams" => return Ok(("api", self.api_response())),
            _ => {}
        }
        if !cacheable_path(path) {
            return Err(EdgeError::NotFound);
        }
        // Malformed directives are the client's error: answer 400 here rather
        // than forwarding (or caching) anything.
        if let Some(q) = req.uri().query() {
            livecdn_shared::playlist::HlsQuery::parse(q)
                .map_err(|e| EdgeError::BadRequest(e.to_string()))?;
        }
        let mut set_cookie = None;
        if path.starts_with("/live/") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let cookies = req
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok());
            set_cookie = crate::auth::check(
                &self.config.auth,
                stream_of(path),
                req.uri().query(),
                cookies,
                now,
            )?;
        }
        let key = CacheKey::from_request(path, req.uri().query());
        let kind = ObjectKind::from_request(path, req.uri().query());
        if path.starts_with("/live/") {
            let h = req.headers();
            let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
            let session = Viewers::session_id(
                get("x-playback-session-id"),
                conn.peer.ip(),
                get("user-agent"),
            );
            if let Ok(mut v) = self.viewers.lock() {
                v.seen(stream_of(path), session, Instant::now());
            }
            if let Some(push) = &self.push {
                push.touch(stream_of(path), Instant::now());
            }
        }
        let mut resp = self.cached(req, &key, kind).await?;
        if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        Ok((kind.as_str(), resp))
    }

    async fn cached(
        &self,
        req: &Request<()>,
        key: &CacheKey,
        kind: ObjectKind,
    ) -> Result<Response<Body>, EdgeError> {
        let gzip = matches!(
            kind,
            ObjectKind::Playlist | ObjectKind::BlockingPlaylist | ObjectKind::Master
        ) && req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let stream = stream_of(req.uri().path());
        // A leader that fails hands its followers back to the cache's flight
        // table, which elects one of them to lead the next attempt.
        let permit = match self.cache.lookup(key, kind).await {
            Lookup::Hit { object, age } => {
                return Ok(self.respond(gzip, &object, "HIT", kind, Some(age), stream))
            }
            Lookup::Coalesced { object } => {
                return Ok(self.respond(gzip, &object, "COALESCED", kind, None, stream))
            }
            Lookup::Stale { object } => {
                return Ok(self.respond(gzip, &object, "STALE", kind, None, stream))
            }
            Lookup::TimedOut => return Err(EdgeError::LockTimeout),
            Lookup::Miss(permit) => permit,
        };
        // With push delivering this stream, the next blocking playlist is
        // about to arrive on its own: wait for it (bounded), then fall back.
        // Parts are not waited for: a hinted part streams from upstream as
        // it is produced (earlier first bytes), and a hint the origin never
        // fills (a segment that closed earlier than predicted) gets its 404
        // at once instead of after the push timeout.
        let pushable = kind == ObjectKind::BlockingPlaylist && !key.as_str().contains("_HLS_skip");
        if let Some(push) = self
            .push
            .as_ref()
            .filter(|p| pushable && p.is_active(stream, Instant::now()))
        {
            let wait = self.cache.config().policy.target_duration * 3;
            if let Some(object) = push.wait_for(key, wait).await {
                drop(permit); // followers find the pushed object in the store
                return Ok(self.respond(gzip, &object, "HIT", kind, Some(Duration::ZERO), stream));
            }
        }
        // Blocking playlists and hinted parts may be held upstream for up to
        // three target durations; that is not a timeout.
        let wait = match kind {
            ObjectKind::BlockingPlaylist | ObjectKind::Part | ObjectKind::Master => {
                self.blocking_wait
            }
            _ => Duration::ZERO,
        };
        match self.upstreams.fetch(stream, key.as_str(), wait).await {
            Ok(fetched) => {
                self.metrics.upstream.record(fetched.latency);
                let status = fetched.response.status().as_u16();
                self.metrics.upstream_fetch(&fetched.upstream.base, status);
                let mut headers = HeaderMap::new();
                for name in KEPT_HEADERS {
                    if let Some(v) = fetched.response.headers().get(&name) {
                        headers.insert(name, v.clone());
                    }
                }
                let object = permit.publish(status, headers).await;
                tokio::spawn(pump(fetched.response.into_body(), object.clone()));
                Ok(self.respond(gzip, &object, "MISS", kind, None, stream))
            }
            Err(e) => {
                drop(permit);
                match self.cache.get_stale(key).await {
                    Some(stale) => Ok(self.respond(gzip, &stale, "STALE", kind, None, stream)),
                    None => Err(EdgeError::Upstream(e.to_string())),
                }
            }
        }
    }

    /// A response streamed from a cached (possibly still growing) object.
    fn respond(
        &self,
        gzip: bool,
        object: &Arc<CachedObject>,
        outcome: &'static str,
        kind: ObjectKind,
        age: Option<Duration>,
        stream: &str,
    ) -> Response<Body> {
        self.metrics.cache(outcome_label(outcome), kind.as_str());
        // A complete object goes out as a snapshot of its chunks; one still
        // growing is streamed as it fills.
        let mut complete = object.body.complete_chunks();
        let mut encoded = false;
        if let (true, Some((chunks, _))) = (gzip, &complete) {
            if let Some(gz) = gzip_once(object, chunks) {
                complete = Some((Arc::from([gz.clone()]), gz.len() as u64));
                encoded = true;
            }
        }
        let body = match &complete {
            Some((chunks, len)) => chunks_body(chunks.clone(), *len),
            None => object_body(object.clone(), self.cache.config().body_idle_timeout),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(object.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let h = resp.headers_mut();
        for (k, v) in &object.headers {
            h.insert(k.clone(), v.clone());
        }
        if let Some((_, len)) = complete {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            self.metrics.bytes(stream, len);
        }
        if encoded {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if gzip {
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if let Some(age) = age {
            h.insert(header::AGE, HeaderValue::from(age.as_secs()));
        }
        h.insert("x-cache", HeaderValue::from_static(outcome));
        resp
    }

    fn metrics_response(&self) -> Response<Body> {
        let stats = self.cache.stats();
        let viewers = self
            .viewers
            .lock()
            .map(|mut v| v.counts(Instant::now()))
            .unwrap_or_default();
        let rows: Vec<(String, f64)> = viewers
            .iter()
            .map(|(s, n)| (format!("stream=\"{s}\""), *n as f64))
            .collect();
        let health: Vec<(String, f64)> = self
            .upstreams
            .all()
            .map(|u| {
                (
                    format!("upstream=\"{}\"", u.base),
                    if u.is_healthy() { 1.0 } else { 0.0 },
                )
            })
            .collect();
        let text = self.metrics.render(&[
            (
                "viewers",
                "Distinct viewer sessions over two target durations",
                rows,
            ),
            (
                "cache_bytes",
                "Bytes held in the cache",
                vec![(String::new(), stats.bytes as f64)],
            ),
            (
                "cache_entries",
                "Objects held in the cache",
                vec![(String::new(), stats.entries as f64)],
            ),
            (
                "upstream_healthy",
                "1 if the upstream is considered healthy",
                health,
            ),
            (
                "cache_shm_bytes",
                "Bytes of cache bodies in shared memory, sent by sendfile on cleartext HTTP/1.1",
                vec![(String::new(), crate::cache::shm::stored_bytes() as f64)],
            ),
            (
                "cache_shm_slabs",
                "Shared-memory slabs mapped",
                vec![(String::new(), crate::cache::shm::slabs() as f64)],
            ),
            (
                "sendfile_bytes",
                "Bytes sent from shared memory without a copy since start",
                vec![(
                    String::new(),
                    crate::listen::zerocopy::sendfile_bytes() as f64,
                )],
            ),
        ]);
        let mut resp = Response::new(full(Bytes::from(text)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp
    }

    fn api_response(&self) -> Response<Body> {
        let viewers = self
            .viewers
            .lock()
            .map(|mut v| v.counts(Instant::now()))
            .unwrap_or_default();
        let stats = self.cache.stats();
        let body = serde_json::json!({
            "role": self.config.role,
            "streams": viewers.iter().map(|(s, n)| serde_json::json!({"name": s, "viewers": n})).collect::<Vec<_>>(),
            "cache": {
                "hits": stats.hits, "misses": stats.misses, "coalesced": stats.coalesced,
                "stale": stats.stale, "timeouts": stats.timeouts, "bytes": stats.bytes, "entries": stats.entries,
            },
            "upstreams": self.upstreams.all().map(|u| serde_json::json!({"url": u.base, "healthy": u.is_healthy()})).collect::<Vec<_>>(),
            "latency_seconds": {
                "ttfb": latency_json(&self.metrics.ttfb),
                "upstream": latency_json(&self.metrics.upstream),
            },
        });
        let mut resp = Response::new(full(Bytes::from(body.to_string())));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// A latency histogram as `{count, p50, p90, p99, max}` (seconds).
fn latency_json(h: &crate::metrics::Latency) -> serde_json::Value {
    let (count, [p50, p90, p99, max]) = h.snapshot();
    serde_json::json!({"count": count, "p50": p50, "p90": p90, "p99": p99, "max": max})
}

fn outcome_label(outcome: &'static str) -> &'static str {
    match outcome {
        "HIT" => "hit",
        "MISS" => "miss",
        "COALESCED" => "coalesced",
        _ => "stale",
    }
}

fn text(status: StatusCode, t: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(t.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_response(e: &EdgeError) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(format!("{e}\n"))));
    *r.status_mut() = e.status();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=1"));
    if matches!(e, EdgeError::Method) {
        r.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
    }
    r
}

fn preflight() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    livecdn_shared::cors::add_preflight(r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_live_and_player_paths_are_proxied() {
        for ok in [
            "/",
            "/player/hls.min.js",
            "/live/cam/master.m3u8",
            "/live/cam/source/1.2.m4s",
        ] {
            assert!(cacheable_path(ok), "{ok}");
        }
        for bad in [
            "/live/../x",
            "/etc/passwd",
            "/live//x",
            "/live/a%2f..",
            "/api/streams/x",
            "/live/a b",
        ] {
            assert!(!cacheable_path(bad), "{bad}");
        }
        assert_eq!(stream_of("/live/cam/source/1.m4s"), "cam");
        assert_eq!(stream_of("/player/hls.min.js"), "-");
    }
}
