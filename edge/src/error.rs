//! How an edge request fails, classified by who is to blame, and the one
//! function that turns that into a status code and a response.

use crate::body::full;
use crate::serve::Body;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

/// How a request failed.
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
    Forbidden(#[from] livecdn_shared::auth::playback::AuthError),
    /// An admin route without the admin bearer token.
    #[error("admin token required")]
    Unauthorized,
    /// A write with no admin token configured, off the admin listener.
    #[error("writes need admin_token, or the admin listener")]
    WritesClosed,
    /// Malformed `_HLS_*` delivery directives, or a blocking request the
    /// playlist cannot satisfy soon (RFC 8216bis 6.2.5.2: 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Every upstream failed and nothing stale was at hand.
    #[error("upstream unavailable: {0}")]
    Upstream(String),
    /// A chat request that is not a WebSocket upgrade.
    #[error("websocket upgrade required")]
    UpgradeRequired,
    /// A service that is configured but cannot serve now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Waited too long for another request's upstream fetch.
    #[error("timed out waiting for a coalesced fetch")]
    LockTimeout,
}

impl EdgeError {
    pub fn status(&self) -> StatusCode {
        match self {
            EdgeError::NotFound => StatusCode::NOT_FOUND,
            EdgeError::Method => StatusCode::METHOD_NOT_ALLOWED,
            EdgeError::WritesClosed => StatusCode::FORBIDDEN,
            EdgeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EdgeError::Forbidden(_) => StatusCode::FORBIDDEN,
            EdgeError::Unauthorized => StatusCode::UNAUTHORIZED,
            EdgeError::Upstream(_) => StatusCode::BAD_GATEWAY,
            EdgeError::LockTimeout => StatusCode::GATEWAY_TIMEOUT,
            EdgeError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            EdgeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The error as a short plain-text response.
    pub fn response(&self) -> Response<Body> {
        let mut r = Response::new(full(Bytes::from(format!("{self}\n"))));
        *r.status_mut() = self.status();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=1"));
        if matches!(self, EdgeError::Unauthorized) {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"livecdn admin\""),
            );
        }
        if matches!(self, EdgeError::UpgradeRequired) {
            r.headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            r.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        if matches!(self, EdgeError::Method) {
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
        }
        r
    }
}
