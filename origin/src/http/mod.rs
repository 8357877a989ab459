//! The origin's HTTP server: HTTP/1.1 and prior-knowledge h2c on one port
//! (hyper-util's auto builder), the LL-HLS paths of DESIGN section 3, the
//! API, metrics and the player page.
//!
//! Every response, errors included, goes through [`handle`], which adds
//! CORS and Timing-Allow-Origin and the access log line, and every error
//! becomes a status code in exactly one function, [`HttpError::status`].

mod api;
mod body;
mod channels;
mod dash;
mod health;
mod media;
mod player;
mod playlist;
mod vod;
mod whep;
mod whip;

use crate::OriginState;
use body::Body;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use livecdn_shared::admin::{self, Gate, Surface};
use livecdn_shared::auth::playback as playback_auth;
use livecdn_shared::limit::PerAddr;
use livecdn_shared::route::{ChannelObject, LiveObject, MediaFile, MediaPath, Route};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Maximum simultaneous HTTP connections.
const MAX_CONNECTIONS: usize = 16_384;

/// What went wrong with a request, classified once.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No such stream, rendition or object (or it left the window).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The request itself is wrong (bad `_HLS_*` directives, msn too far ahead).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A blocking request could not be satisfied in time.
    #[error("not available yet")]
    Unavailable { retry_after: Duration },
    /// Only GET, HEAD and OPTIONS are served.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request lacks the credential this path needs here.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// An admin route without the admin bearer token.
    #[error("admin token required")]
    Unauthorized,
    /// The thing to create exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A byte range past the end of an object of `size` bytes.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// Our fault (the control database failed); the details are logged.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(body::full(Bytes::from(format!("{self}\n"))));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        // Negative answers may be cached only very briefly.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=1"));
        if let HttpError::Unavailable { retry_after } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        if let HttpError::RangeNotSatisfiable { size } = &self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        if let HttpError::Unauthorized = &self {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"livecdn admin\""),
            );
        }
        if let HttpError::MethodNotAllowed = &self {
            h.insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS, POST, PATCH, DELETE"),
            );
        }
        resp
    }
}

/// Serves HTTP until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    state: Arc<OriginState>,
    surface: Surface,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_ip = PerAddr::new(state.config.http.max_connections_per_ip);
    let connections = tokio_util::task::TaskTracker::new();
    let header_timeout = state.config.http.header_timeout;
    let idle_timeout = state.config.http.idle_timeout;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(addr_permit) = per_ip.try_acquire(peer.ip()) else {
            state.metrics.refused_connection("http", "per_ip");
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            state.metrics.refused_connection("http", "global");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(256)
                .max_header_list_size(64 * 1024);
            // No keep-alive pings of our own (their answers would keep an
            // idle connection busy): idle and dead peers alike are closed
            // by the idle watch below.
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, surface, req, peer).await) }
            });
            let (stream, activity) = livecdn_shared::idle::watch(stream);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = shutdown.changed() => None,
                _ = activity.idle_for(idle_timeout) => {
                    tracing::debug!(%peer, "idle connection closed");
                    None
                }
            };
            let result = match done {
                Some(r) => r,
                None => {
                    // Shutdown: finish the requests in flight (held ones
                    // answer at once, see `StreamHub::drain`), take no new
                    // ones (HTTP/2 GOAWAY, HTTP/1.1 close), bounded.
                    conn.as_mut().graceful_shutdown();
                    match tokio::time::timeout(DRAIN, conn.as_mut()).await {
                        Ok(r) => r,
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
            drop((permit, addr_permit));
        });
    }
    // Stop accepting now: new clients are refused, not left in the backlog.
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), connections.wait()).await;
}

/// How long in-flight responses get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// One request: route, dispatch, then the headers every response carries.
pub async fn handle(
    state: &OriginState,
    surface: Surface,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Body> {
    let logging = state.access_log.as_ref().map(|log| {
        let protocol = match req.version() {
            http::Version::HTTP_2 => "h2",
            _ => "h1",
        };
        log.request(&req, peer.ip(), protocol, std::time::Instant::now())
    });
    let method = req.method().clone();
    // The head is borrowed by the route; the body is read only by the
    // channel API.
    let (req, body) = req.into_parts();
    let route = Route::parse(req.uri.path());
    let kind = route.as_ref().map_or("unknown", |r| r.kind().as_str());
    let stream = route.as_ref().and_then(|r| r.stream());
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let verdict = route.as_ref().map(|r| {
        admin::gate(
            r,
            surface,
            admin::Policy {
                token: state.config.admin_token.as_deref(),
                public_reads: state.config.control.public_reads,
            },
            write,
            req.headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        )
    });
    let mut resp = match (&method, route) {
        (&Method::OPTIONS, _) => preflight(),
        (_, Some(_)) if verdict == Some(Gate::NotHere) => {
            HttpError::NotFound("not served on this listener").into_response()
        }
        (_, Some(_)) if verdict == Some(Gate::Unauthorized) => {
            HttpError::Unauthorized.into_response()
        }
        (_, Some(_)) if verdict == Some(Gate::WritesClosed) => HttpError::Forbidden(
            "writes need admin_token, or the admin listener (http.admin_listen)",
        )
        .into_response(),
        (_, Some(Route::ApiChannels)) => {
            match channels::serve(state, &req, None, ChannelObject::Record, body).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        (_, Some(Route::ApiChannel { name, object })) => {
            match channels::serve(state, &req, Some(name), object, body).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        (
            &Method::GET | &Method::HEAD | &Method::DELETE,
            Some(Route::ApiRecording { stream, recording }),
        ) => match vod::one(state, &method, stream, recording).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
        (
            &Method::POST | &Method::PATCH | &Method::DELETE,
            Some(Route::Live {
                stream,
                object: object @ (LiveObject::Whep | LiveObject::WhepSession(_)),
            }),
        ) => {
            let session = match object {
                LiveObject::WhepSession(id) => Some(id),
                _ => None,
            };
            whep::serve(state, &req, stream, session, body).await
        }
        (&Method::POST, Some(Route::Whip)) => whip::publish(state, &req, peer, body).await,
        (&Method::PATCH | &Method::DELETE, Some(Route::WhipSession(id))) => {
            whip::session(state, &req, id, body).await
        }
        (&Method::GET | &Method::HEAD, Some(route)) => match dispatch(state, &req, route).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
        (&Method::GET | &Method::HEAD, None) => HttpError::NotFound("no such path").into_response(),
        _ => HttpError::MethodNotAllowed.into_response(),
    };
    state.metrics.http(kind, resp.status().as_u16());
    livecdn_shared::cors::add_cors(
        resp.headers_mut(),
        "Age, Content-Length, Date, Location, Link, ETag",
    );
    if method == Method::HEAD {
        *resp.body_mut() = body::empty();
    }
    match logging {
        Some(pending) => {
            use http_body_util::BodyExt;
            pending
                .respond(resp, stream)
                .map(|body| body.boxed_unsync())
        }
        None => resp,
    }
}

fn preflight() -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    livecdn_shared::cors::add_preflight(resp.headers_mut());
    resp
}

async fn dispatch(
    state: &OriginState,
    req: &http::request::Parts,
    route: Route<'_>,
) -> Result<Response<Body>, HttpError> {
    let query = req.uri.query().unwrap_or("");
    let gzip = req
        .headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    match route {
        Route::Player => Ok(player::page()),
        Route::PlayerScript(script) => player::script(state, script).await,
        Route::Healthz => Ok(api::text(StatusCode::OK, "ok\n")),
        Route::Readyz => Ok(api::text(StatusCode::OK, "ready\n")),
        Route::Time => Ok(dash::time()),
        Route::Metrics => Ok(api::metrics(state)),
        Route::ApiStreams => Ok(api::streams(state)),
        Route::ApiStream(name) => api::stream(state, name),
        Route::Live { stream, object } => {
            // An `authorized` channel: viewers need a playback token; an
            // edge or shield (cluster credential) checks its own viewers'
            // and learns the rule from the mark on the answer.
            let protected = state
                .control
                .as_ref()
                .is_some_and(|c| c.needs_token(stream));
            let require = state.config.cluster.require_credential;
            let cluster = (require || protected).then(|| {
                let auth = req.headers.get(header::AUTHORIZATION);
                crate::cluster::verify_bearer(&state.config, auth)
            });
            if let (true, Some(Err(e))) = (require, &cluster) {
                tracing::debug!(%stream, reason = %e, "pull refused");
                return Err(HttpError::Forbidden("cluster credential required"));
            }
            let mut set_cookie = None;
            if protected && !matches!(cluster, Some(Ok(_))) {
                set_cookie = viewer_token(state, req, stream)?;
            }
            let mut resp = live(state, stream, object, query, gzip).await?;
            if protected {
                let h = resp.headers_mut();
                h.insert(
                    playback_auth::ACCESS_HEADER,
                    HeaderValue::from_static(playback_auth::ACCESS_TOKEN),
                );
                if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    h.insert(header::SET_COOKIE, c);
                }
            }
            Ok(resp)
        }
        // Purging is the edges' (`/api/purge` there); the origin's own
        // stop purges its edges over push.
        Route::Vod {
            stream,
            recording,
            object,
        } => {
            // An `authorized` channel's recordings need what its live
            // stream needs: a viewer's token, or a cluster credential.
            let protected = state
                .control
                .as_ref()
                .is_some_and(|c| c.needs_token(stream));
            let mut set_cookie = None;
            if protected {
                let auth = req.headers.get(header::AUTHORIZATION);
                if crate::cluster::verify_bearer(&state.config, auth).is_err() {
                    set_cookie = viewer_token(state, req, stream)?;
                }
            }
            let mut resp = vod::serve(state, req, stream, recording, object, gzip).await?;
            // Marked as live answers are, so an edge that never saw the
            // stream live checks its viewers' tokens for the recording too.
            if protected {
                resp.headers_mut().insert(
                    playback_auth::ACCESS_HEADER,
                    HeaderValue::from_static(playback_auth::ACCESS_TOKEN),
                );
            }
            if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            Ok(resp)
        }
        Route::ApiRecordings => vod::list(state, query),
        Route::ApiPurge | Route::ApiChat { .. } => Err(HttpError::NotFound("not served here")),
        Route::Whip | Route::WhipSession(_) => Err(HttpError::MethodNotAllowed),
        // Answered before dispatch (they may read a body).
        Route::ApiChannels | Route::ApiChannel { .. } | Route::ApiRecording { .. } => {
            Err(HttpError::NotFound("no such path"))
        }
    }
}

/// A viewer's playback token for `stream` (query or cookie): the cookie to
/// set, if it came in the query.
fn viewer_token(
    state: &OriginState,
    req: &http::request::Parts,
    stream: &str,
) -> Result<Option<String>, HttpError> {
    let config = livecdn_shared::config::PlaybackAuthConfig {
        required: true,
        secret: state.config.secret.clone(),
    };
    let cookies = req
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let presented = playback_auth::Presented {
        query: req.uri.query(),
        cookies,
        secure: false,
    };
    let now = crate::control::now_ms() / 1000;
    playback_auth::check(&config, true, stream, presented, now).map_err(|e| {
        tracing::debug!(%stream, reason = %e, "playback refused");
        HttpError::Forbidden("playback token required")
    })
}

/// `/live/STREAM/...`: playlists, media and the MPD.
async fn live(
    state: &OriginState,
    stream: &str,
    object: LiveObject<'_>,
    query: &str,
    gzip: bool,
) -> Result<Response<Body>, HttpError> {
    match object {
        LiveObject::Master => playlist::master(state, stream, gzip).await,
        LiveObject::Media(MediaPath { rendition, file }) => match file {
            MediaFile::Playlist => playlist::media(state, stream, rendition, query, gzip).await,
            MediaFile::Init { gen } => media::init(state, stream, rendition, gen).await,
            MediaFile::Segment { msn } => media::segment(state, stream, rendition, msn).await,
            MediaFile::Part { msn, part } => media::part(state, stream, rendition, msn, part).await,
        },
        LiveObject::Mpd => dash::manifest(state, stream, gzip).await,
        // WHEP takes POST, PATCH and DELETE (answered before dispatch).
        LiveObject::Whep | LiveObject::WhepSession(_) => Err(HttpError::MethodNotAllowed),
        // Not served by this origin: named by the grammar so that it is
        // one 404, not a parse failure.
        LiveObject::Chat => Err(HttpError::NotFound("not served here")),
    }
}
