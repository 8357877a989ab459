//! HTTP/1.1 and HTTP/2 over TCP, cleartext or TLS, with hyper-util.
//!
//! Cleartext sockets are wrapped in [`ZeroCopyTcp`], which sends cache bodies
//! held in shared memory with `sendfile`.
//!
//! Cleartext connections are served by hyper-util's auto builder, which tells
//! HTTP/1.1 from prior-knowledge h2c by the connection preface (h2c by
//! `Upgrade` is not supported, and no browser uses it). TLS connections are
//! served as whatever ALPN chose, so a client that negotiated `http/1.1`
//! cannot switch to h2 mid-stream.
//!
//! Each connection runs in its own task holding a semaphore permit, so
//! `Limits::max_connections` bounds tasks and sockets; the accept loop waits
//! for a permit before it accepts, leaving excess clients in the kernel
//! backlog rather than in our memory.

use super::tls::{self as listen_tls, Alpn};
use super::zerocopy::ZeroCopyTcp;
use super::Limits;
use crate::serve::{
    body_refused, reads_body, Body, Conn, Handler, Protocol, RequestBody, MAX_REQUEST_BODY,
};
use http::header::ALT_SVC;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use livecdn_shared::limit::PerAddr;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// hyper refuses HTTP/1.1 read buffers smaller than this (it asserts).
const MIN_H1_BUF: usize = 8192;

/// Pause after a failed `accept` (out of file descriptors, usually), so the
/// loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Serves HTTP/1.1 and HTTP/2 on `listener` until `shutdown` turns true.
///
/// With `tls`, every connection must complete a TLS handshake within
/// `limits.tls_handshake_timeout` (the config's ALPN list is used; an empty
/// one gets `h2, http/1.1`). Without it, HTTP/1.1 and prior-knowledge h2c are
/// served. `alt_svc`, when given, is added to every response that lacks one
/// (see [`super::alt_svc`]).
pub async fn serve_tcp(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<dyn Handler>,
    limits: Limits,
    alt_svc: Option<HeaderValue>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(listen_tls::acceptor);
    let shared = Arc::new(Shared {
        handler,
        alt_svc,
        builder: builder(&limits),
        secure: acceptor.is_some(),
        limits,
    });
    let permits = Arc::new(Semaphore::new(shared.limits.max_connections.max(1)));
    let per_ip = PerAddr::new(shared.limits.max_connections_per_ip);
    let mut conns = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = accept_with_permit(&listener, &permits) => accepted,
        };
        let (stream, peer, permit) = match accepted {
            Ok(ok) => ok,
            Err(e) => {
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let Some(addr_permit) = per_ip.try_acquire(peer.ip()) else {
            debug!(%peer, "per-address connection limit reached: closed");
            continue;
        };
        // Small HTTP responses (playlists) must not wait for Nagle.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "set_nodelay failed");
        }
        // Reap finished connection tasks so the set does not grow.
        while conns.try_join_next().is_some() {}
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permits = (permit, addr_permit);
            match acceptor {
                None => {
                    let stream = ZeroCopyTcp::new(stream);
                    serve_conn(shared, stream, peer, None, shutdown).await
                }
                Some(acceptor) => {
                    let timeout = shared.limits.tls_handshake_timeout;
                    match listen_tls::accept(&acceptor, stream, timeout).await {
                        Ok((tls, alpn)) => {
                            serve_conn(shared, tls, peer, Some(alpn), shutdown).await
                        }
                        Err(e) => debug!(%peer, error = %e, "tls handshake failed"),
                    }
                }
            }
        });
    }
    drop(listener);
    let drain = shared.limits.drain_timeout;
    if tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        debug!(
            remaining = conns.len(),
            "drain timeout: aborting connections"
        );
    }
    conns.shutdown().await;
}

/// What every connection task needs, shared behind one `Arc`.
struct Shared {
    handler: Arc<dyn Handler>,
    alt_svc: Option<HeaderValue>,
    builder: auto::Builder<TokioExecutor>,
    secure: bool,
    limits: Limits,
}

async fn accept_with_permit(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> std::io::Result<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    // The semaphore is never closed, so acquire cannot fail; map it anyway.
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, permit))
}

/// The hyper-util builder with every limit applied.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_H1_BUF));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        // WebSocket over HTTP/2 (RFC 8441), for chat.
        .enable_connect_protocol();
    // No HTTP/2 keep-alive pings: their answers would keep an idle
    // connection busy forever. Dead and idle peers alike are closed by the
    // idle watch in `serve_conn`.
    b
}

/// Serves one connection; `alpn` is `None` for cleartext (auto-detected).
async fn serve_conn<I>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    alpn: Option<Alpn>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let builder = match alpn {
        None => shared.builder.clone(),
        Some(Alpn::Http2) => shared.builder.clone().http2_only(),
        Some(Alpn::Http1) => shared.builder.clone().http1_only(),
    };
    let svc_shared = shared.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(respond(&shared, req, peer).await) }
    });
    let (io, activity) = livecdn_shared::idle::watch(io);
    // With upgrades: a chat WebSocket takes the connection over after 101.
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = super::stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        _ = activity.idle_for(shared.limits.idle_timeout) => {
            debug!(%peer, "idle connection closed");
            conn.as_mut().graceful_shutdown();
            // A response in flight to a client that stopped reading never
            // finishes: bounded, then the socket is dropped.
            tokio::time::timeout(shared.limits.drain_timeout, conn.as_mut())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Drops the request body, calls the handler, stamps `Alt-Svc`.
async fn respond(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let protocol = match req.version() {
        http::Version::HTTP_2 => Protocol::Http2,
        _ => Protocol::Http1,
    };
    let (mut parts, body) = req.into_parts();
    let conn = Conn {
        peer,
        protocol,
        secure: shared.secure,
    };
    if reads_body(&parts.method) {
        let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY);
        let read = tokio::time::timeout(shared.limits.header_read_timeout, limited.collect());
        match read.await {
            Ok(Ok(b)) => {
                parts.extensions.insert(RequestBody(b.to_bytes()));
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return body_refused(http::StatusCode::PAYLOAD_TOO_LARGE)
            }
            Ok(Err(_)) => return body_refused(http::StatusCode::BAD_REQUEST),
            Err(_) => return body_refused(http::StatusCode::REQUEST_TIMEOUT),
        }
    }
    let mut resp = shared
        .handler
        .handle(Request::from_parts(parts, ()), conn)
        .await;
    if let Some(alt_svc) = &shared.alt_svc {
        resp.headers_mut()
            .entry(ALT_SVC)
            .or_insert_with(|| alt_svc.clone());
    }
    resp
}
