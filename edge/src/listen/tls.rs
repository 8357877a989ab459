//! TLS over TCP for the h1/h2 listener: a bounded handshake, the negotiated
//! ALPN, and the `Alt-Svc` header that advertises HTTP/3.
//!
//! Certificates and rustls configs are built in `livecdn_shared::tls`; this
//! module only runs handshakes on sockets.

use http::HeaderValue;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why a connection or listener could not be set up. Per-connection variants
/// are logged at `debug` and drop only that connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The TLS handshake failed: not TLS, no shared version or cipher suite,
    /// an unknown ALPN, or the peer went away.
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
    /// The client did not finish the TLS handshake in time.
    #[error("TLS handshake timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// The rustls config cannot be used for QUIC (QUIC needs TLS 1.3 and an
    /// AES-128-GCM initial suite).
    #[error("rustls config unusable for QUIC: {0}")]
    QuicConfig(String),
}

impl From<ListenError> for io::Error {
    fn from(e: ListenError) -> Self {
        let kind = match &e {
            ListenError::HandshakeTimeout(_) => io::ErrorKind::TimedOut,
            ListenError::QuicConfig(_) => io::ErrorKind::InvalidInput,
            ListenError::Handshake(inner) => inner.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// The application protocol the client chose in the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`.
    Http2,
    /// `http/1.1`, or no ALPN at all (old clients): HTTP/1.1 is the only
    /// protocol a client may assume without negotiation.
    Http1,
}

/// The `Alt-Svc` value advertising HTTP/3 on `port` of the same host for a
/// day, e.g. `h3=":8443"; ma=86400`.
pub fn alt_svc(port: u16) -> HeaderValue {
    // Only ASCII digits and fixed text: always a valid header value.
    HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400"))
        .unwrap_or_else(|_| HeaderValue::from_static("clear"))
}

/// Runs a server-side TLS handshake on `stream`, bounded by `timeout`, and
/// reports which protocol the client negotiated.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Result<(TlsStream<TcpStream>, Alpn), ListenError> {
    let tls = tokio::time::timeout(timeout, acceptor.accept(stream))
        .await
        .map_err(|_| ListenError::HandshakeTimeout(timeout))?
        .map_err(ListenError::Handshake)?;
    let alpn = match tls.get_ref().1.alpn_protocol() {
        Some(b"h2") => Alpn::Http2,
        _ => Alpn::Http1,
    };
    Ok((tls, alpn))
}

/// A TLS acceptor for `config`. If the config advertises no ALPN at all, h2
/// and http/1.1 are added, because without ALPN a browser never speaks h2.
pub fn acceptor(config: Arc<rustls::ServerConfig>) -> TlsAcceptor {
    if config.alpn_protocols.is_empty() {
        let mut owned = (*config).clone();
        owned.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(owned))
    } else {
        TlsAcceptor::from(config)
    }
}
