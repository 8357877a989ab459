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

/// Answers one request. Request bodies are not read (GET/HEAD/OPTIONS only).
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: http::Request<()>,
        conn: Conn,
    ) -> BoxFuture<'static, http::Response<Body>>;
}
