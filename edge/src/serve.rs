//! The protocol-independent request handler every listener calls.

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use std::net::SocketAddr;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Response bodies: shared `Bytes` chunks, possibly still growing.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Which protocol carried a request (for metrics, Alt-Svc and priorities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http1,
    Http2,
    Http3,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "h1",
            Protocol::Http2 => "h2",
            Protocol::Http3 => "h3",
        }
    }
}

/// Connection facts a handler may use.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub protocol: Protocol,
    /// Whether the connection is TLS (HTTPS or QUIC).
    pub secure: bool,
}

/// The body of a POST, PATCH or PUT request (a WHEP offer, a trickle
/// fragment), read whole by the listener before the handler runs and
/// handed over in the request's extensions. Other methods' bodies are not
/// read.
#[derive(Debug, Clone, Default)]
pub struct RequestBody(pub Bytes);

/// Largest request body a listener reads; longer ones get 413.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Whether a listener reads `method`'s body.
pub fn reads_body(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::POST | http::Method::PATCH | http::Method::PUT
    )
}

/// A listener's own answer when a request body cannot be read.
pub fn body_refused(status: http::StatusCode) -> http::Response<Body> {
    let mut r = http::Response::new(crate::body::empty());
    *r.status_mut() = status;
    r
}

/// Answers one request.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: http::Request<()>,
        conn: Conn,
    ) -> BoxFuture<'static, http::Response<Body>>;
}
