//! The thin router every listener calls: parse the path with the one URL
//! grammar ([`livecdn_shared::route`]), hand the request to exactly one
//! service (playback, WebRTC, chat or admin), then add what every response carries
//! (CORS, request metrics, the access log line). Services never call each
//! other.

use crate::body::empty;
use crate::error::EdgeError;
use crate::serve::{Body, Conn, Handler};
use crate::state::Edge;
use crate::{admin, chat, playback, webrtc};
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use livecdn_shared::admin::{self as admin_surface, Gate, Surface};
use livecdn_shared::route::{LiveObject, Route};
use std::sync::Arc;
use std::time::Instant;

/// The [`Handler`] every listener calls, with the routes that listener
/// serves (see [`livecdn_shared::admin`]).
pub struct EdgeHandler(pub Arc<Edge>, pub Surface);

impl Handler for EdgeHandler {
    fn handle(&self, req: Request<()>, conn: Conn) -> BoxFuture<'static, Response<Body>> {
        let edge = self.0.clone();
        let surface = self.1;
        Box::pin(async move { serve(&edge, surface, req, conn).await })
    }
}

/// Label for requests outside the grammar and for streams not known to
/// be real: one series, whatever a client makes up.
const UNKNOWN: &str = "-";

async fn serve(
    edge: &Arc<Edge>,
    surface: Surface,
    mut req: Request<()>,
    conn: Conn,
) -> Response<Body> {
    let start = Instant::now();
    // Only the chat service upgrades connections; taken here so the
    // services see the request by reference.
    let upgrade = req.extensions_mut().remove::<OnUpgrade>();
    let logging = edge
        .access_log
        .as_ref()
        .map(|log| log.request(&req, conn.peer.ip(), conn.protocol.as_str(), start));
    let method = req.method().clone();
    let route = Route::parse(req.uri().path());
    let verdict = route.as_ref().map(|r| {
        admin_surface::gate(
            r,
            surface,
            admin_surface::Policy {
                token: edge.config.admin_token.as_deref(),
                public_reads: false,
            },
            !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS),
            req.headers()
                .get(http::header::AUTHORIZATION)
                .map(http::HeaderValue::as_bytes),
        )
    });
    let (kind, mut resp) = match (&method, &route) {
        (&Method::OPTIONS, _) => ("preflight", preflight()),
        (_, Some(_)) if verdict == Some(Gate::NotHere) => ("error", EdgeError::NotFound.response()),
        (_, Some(_)) if verdict == Some(Gate::Unauthorized) => {
            ("error", EdgeError::Unauthorized.response())
        }
        (_, Some(_)) if verdict == Some(Gate::WritesClosed) => {
            ("error", EdgeError::WritesClosed.response())
        }
        (
            &Method::POST | &Method::PATCH | &Method::DELETE,
            Some(Route::Live {
                stream,
                object: object @ (LiveObject::Whep | LiveObject::WhepSession(_)),
            }),
        ) => {
            let session = match object {
                LiveObject::WhepSession(id) => Some(*id),
                _ => None,
            };
            match webrtc::serve(edge, &req, conn, stream, session).await {
                Ok(r) => ("webrtc", r),
                Err(e) => ("error", e.response()),
            }
        }
        (
            &Method::GET | &Method::CONNECT,
            Some(Route::Live {
                stream,
                object: LiveObject::Chat,
            }),
        ) => match chat::serve(edge, &req, conn, stream, upgrade) {
            Ok(r) => ("chat", r),
            Err(e) => ("error", e.response()),
        },
        (
            &Method::POST | &Method::PUT | &Method::DELETE,
            Some(Route::ApiChat { stream, object }),
        ) => match chat::api(edge, &req, stream, *object).await {
            Ok(r) => ("api", r),
            Err(e) => ("error", e.response()),
        },
        (&Method::POST, Some(Route::ApiPurge)) => match admin::purge(edge, req.uri().query()).await
        {
            Ok(r) => ("api", r),
            Err(e) => ("error", e.response()),
        },
        (&Method::GET | &Method::HEAD, Some(route)) => {
            match dispatch(edge, &req, conn, route).await {
                Ok((kind, r)) => (kind, r),
                Err(e) => ("error", e.response()),
            }
        }
        (&Method::GET | &Method::HEAD, None) => ("error", EdgeError::NotFound.response()),
        _ => ("error", EdgeError::Method.response()),
    };
    edge.metrics.ttfb.record(start.elapsed());
    let stream = route
        .as_ref()
        .and_then(|r| r.stream())
        .filter(|s| edge.streams.knows(s))
        .unwrap_or(UNKNOWN);
    edge.metrics
        .request(stream, kind, conn.protocol.as_str(), resp.status().as_u16());
    livecdn_shared::cors::add_cors(resp.headers_mut(), "Age, Content-Length, Date, X-Cache");
    if method == Method::HEAD {
        *resp.body_mut() = empty();
    }
    match logging {
        Some(pending) => pending
            .respond(resp, route.as_ref().and_then(|r| r.stream()))
            .map(|body| body.boxed_unsync()),
        None => resp,
    }
}

async fn dispatch(
    edge: &Arc<Edge>,
    req: &Request<()>,
    conn: Conn,
    route: &Route<'_>,
) -> Result<(&'static str, Response<Body>), EdgeError> {
    if let Some(answer) = admin::serve(edge, route) {
        return Ok(answer);
    }
    match playback::serve(edge, req, conn, route).await {
        Some(answer) => answer,
        None => Err(EdgeError::NotFound),
    }
}

fn preflight() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    livecdn_shared::cors::add_preflight(r.headers_mut());
    r
}
