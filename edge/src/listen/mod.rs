//! The edge's viewer-facing listeners: HTTP/1.1 and HTTP/2 over TCP
//! (cleartext or TLS) and HTTP/3 over QUIC.
//!
//! Every listener turns a request into one call of [`Handler::handle`](crate::serve::Handler::handle) with a
//! body-less `Request<()>` and a [`Conn`](crate::serve::Conn) saying which protocol actually
//! carried it, then streams the response body frame by frame as the handler
//! produces it (a preload-hinted LL-HLS part is sent while it is still being
//! written upstream). Bodies are `Bytes` chunks handed to the transport
//! without a copy.
//!
//! Drive contract: each `serve_*` future runs until its `shutdown` watch turns
//! `true` (or its sender is dropped), then stops accepting, asks open
//! connections to finish (HTTP/2 and HTTP/3 GOAWAY, HTTP/1.1 close after the
//! current response), waits at most [`Limits::drain_timeout`] and returns.
//! Bad input — garbage bytes, failed handshakes, malformed requests — closes
//! that one connection or stream, is logged at `debug`, and never panics.
//!
//! ```no_run
//! # async fn demo(handler: std::sync::Arc<dyn livecdn_edge::serve::Handler>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use livecdn_edge::listen::{self, Limits};
//! use livecdn_shared::tls;
//!
//! let ck = tls::self_signed(&[])?;
//! let tcp_tls = tls::server_config(&ck.cert_pem, &ck.key_pem, &[b"h2", b"http/1.1"])?;
//! let quic_tls = tls::server_config(&ck.cert_pem, &ck.key_pem, &[b"h3"])?;
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let limits = Limits::default();
//!
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let quic = listen::endpoint("127.0.0.1:8443".parse()?, quic_tls, &limits)?;
//! let alt_svc = listen::alt_svc(8443);
//! tokio::join!(
//!     listen::serve_tcp(tcp, Some(tcp_tls), handler.clone(), limits.clone(), Some(alt_svc), shutdown.clone()),
//!     listen::serve_h3(quic, handler, limits, shutdown),
//! );
//! # Ok(()) }
//! ```

use std::time::Duration;

pub mod h1h2;
pub mod h3;
mod h3_quic;
pub mod tls;
pub mod zerocopy;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests;

pub use self::h1h2::serve_tcp;
pub use self::h3::{endpoint, serve_h3};
pub use self::tls::{alt_svc, ListenError};

/// Resource limits shared by every listener. Each exists because one client
/// (or one botnet) must not be able to hold memory or tasks without bound.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections per listener (TCP and QUIC counted separately).
    /// Further TCP connections wait in the kernel backlog; further QUIC
    /// handshakes are refused.
    pub max_connections: usize,
    /// Of those, at most this many from one client address (IPv6: one
    /// /64); `0` means no per-address cap. Further connections from that
    /// address are closed at accept (TCP) or refused (QUIC).
    pub max_connections_per_ip: usize,
    /// Time a client gets to send a complete request head (HTTP/1.1, and
    /// HTTP/3 per request stream): the slowloris bound.
    pub header_read_timeout: Duration,
    /// Largest request head accepted, in bytes (HTTP/1.1 read buffer, HTTP/2
    /// header list, HTTP/3 field section).
    pub max_header_bytes: usize,
    /// Concurrent requests per HTTP/2 connection; also the concurrent
    /// bidirectional streams per QUIC connection.
    pub h2_max_concurrent_streams: u32,
    /// Time a TLS handshake may take before the connection is dropped.
    pub tls_handshake_timeout: Duration,
    /// A connection on which nothing moved for this long is closed (QUIC's
    /// idle timeout; on TCP, see [`livecdn_shared::idle`]), an in-flight
    /// response included once the client stopped reading.
    pub idle_timeout: Duration,
    /// Time open connections get to finish after shutdown is requested.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: 0,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            h2_max_concurrent_streams: 128,
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Resolves once `shutdown` is true or its sender is gone. The watch guard is
/// dropped inside, so callers stay `Send` across later awaits.
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
