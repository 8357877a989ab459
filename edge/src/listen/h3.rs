//! HTTP/3 over QUIC with quinn and h3.
//!
//! One task per QUIC connection accepts request streams; one task per request
//! resolves the headers (bounded by `Limits::header_read_timeout`), calls the
//! handler and streams the body: every `Bytes` frame goes to quinn as is (a
//! refcount, no copy: see [`super::h3_quic`]), so a part still being
//! produced reaches the viewer chunk by chunk. A body error resets the
//! stream (the client sees an incomplete response rather than a silently
//! truncated one).
//!
//! Priorities (RFC 9218): a response's stream is scheduled by the urgency
//! of the response's own `priority` header when the handler set one (the
//! server's decision, which RFC 9218 section 8 lets it make), else of the
//! request's, else the default; quinn sends higher send orders first.

use super::h3_quic::{self, Sidecar, Sidecars};
use super::tls::ListenError;
use super::Limits;
use crate::serve::{
    body_refused, reads_body, Body, Conn, Handler, Protocol, RequestBody, MAX_REQUEST_BODY,
};
use bytes::Bytes;
use h3::error::Code;
use h3::server::{RequestResolver, RequestStream};
use http_body_util::BodyExt;
use livecdn_shared::limit::PerAddr;
use livecdn_shared::priority::Priority;
use livecdn_shared::quic;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, VarInt};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::debug;

/// H3_NO_ERROR: the application close code for a clean shutdown (RFC 9114).
const H3_NO_ERROR: VarInt = VarInt::from_u32(0x100);

type H3Stream = RequestStream<h3_quic::BidiStream, Bytes>;

/// Binds a QUIC server endpoint on `addr` for `tls`, with the idle timeout
/// and the per-connection stream limit of `limits`.
///
/// The config's ALPN list is used if it contains `h3`; otherwise a copy with
/// ALPN `h3` alone is used, since no HTTP/3 client connects without it.
pub fn endpoint(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    limits: &Limits,
) -> io::Result<quinn::Endpoint> {
    let tls = if tls.alpn_protocols.iter().any(|p| p == b"h3") {
        tls
    } else {
        let mut owned = (*tls).clone();
        owned.alpn_protocols = vec![b"h3".to_vec()];
        Arc::new(owned)
    };
    let crypto =
        QuicServerConfig::try_from(tls).map_err(|e| ListenError::QuicConfig(e.to_string()))?;
    // Packet size and socket buffers: see livecdn_shared::quic.
    let (socket, caps) = quic::bind(addr)?;
    debug!(%addr, gso_segments = caps.gso_segments, max_udp_payload = caps.max_payload, "h3 socket");
    let mut transport = quic::transport_config(caps);
    let idle = IdleTimeout::try_from(limits.idle_timeout)
        .map_err(|e| ListenError::QuicConfig(e.to_string()))?;
    transport
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(VarInt::from_u32(limits.h2_max_concurrent_streams));
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    let runtime = quinn::default_runtime()
        .ok_or_else(|| io::Error::other("no async runtime for the h3 endpoint"))?;
    quinn::Endpoint::new(quic::endpoint_config(caps), Some(config), socket, runtime)
}

/// Serves HTTP/3 on `endpoint` until `shutdown` turns true, then sends
/// GOAWAY on every connection, waits up to `limits.drain_timeout` for open
/// requests, and closes the endpoint with H3_NO_ERROR.
pub async fn serve_h3(
    endpoint: quinn::Endpoint,
    handler: Arc<dyn Handler>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = PerAddr::new(limits.max_connections_per_ip);
    let limits = Arc::new(limits);
    let mut conns = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let incoming = tokio::select! {
            _ = shutdown.changed() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else {
            break; // The endpoint was closed elsewhere.
        };
        let Some(addr_permit) = per_ip.try_acquire(incoming.remote_address().ip()) else {
            debug!(peer = %incoming.remote_address(), "per-address connection limit reached: refused");
            incoming.refuse();
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(peer = %incoming.remote_address(), "quic connection limit reached: refused");
            incoming.refuse();
            continue;
        };
        while conns.try_join_next().is_some() {}
        let handler = handler.clone();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permits = (permit, addr_permit);
            let peer = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_conn(conn, handler, limits, shutdown).await,
                Err(e) => debug!(%peer, error = %e, "quic handshake failed"),
            }
        });
    }
    let drain = limits.drain_timeout;
    if tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        debug!(
            remaining = conns.len(),
            "drain timeout: aborting h3 connections"
        );
    }
    conns.shutdown().await;
    endpoint.close(H3_NO_ERROR, b"shutdown");
    // Lets the close frames leave; bounded in case the peers are gone.
    let _ = tokio::time::timeout(drain, endpoint.wait_idle()).await;
}

/// Accepts request streams on one QUIC connection.
async fn serve_conn(
    quic: quinn::Connection,
    handler: Arc<dyn Handler>,
    limits: Arc<Limits>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = quic.remote_address();
    let sidecars = Sidecars::default();
    let built = h3::server::builder()
        .max_field_section_size(u64::try_from(limits.max_header_bytes).unwrap_or(u64::MAX))
        .build::<_, Bytes>(h3_quic::Connection::new(quic.clone(), sidecars.clone()))
        .await;
    let mut h3 = match built {
        Ok(h3) => h3,
        Err(e) => {
            debug!(%peer, error = %e, "h3 connection setup failed");
            return;
        }
    };
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    while requests.try_join_next().is_some() {}
                    let handler = handler.clone();
                    let limits = limits.clone();
                    let sidecars = sidecars.clone();
                    requests.spawn(resolve_and_serve(resolver, peer, handler, limits, sidecars));
                }
                Ok(None) => break,
                Err(e) => {
                    if !e.is_h3_no_error() {
                        debug!(%peer, error = %e, "h3 connection ended with an error");
                    }
                    break;
                }
            },
            _ = super::stopped(&mut shutdown) => {
                // GOAWAY: the client sends new requests on a new connection.
                if let Err(e) = h3.shutdown(0).await {
                    debug!(%peer, error = %e, "h3 goaway failed");
                }
                break;
            }
        }
    }
    // Requests already accepted finish (bounded by the caller's drain).
    while requests.join_next().await.is_some() {}
    quic.close(H3_NO_ERROR, b"");
}

/// Reads one request's headers (bounded by `header_read_timeout`, so a
/// stream opened without headers cannot pin a task) and serves it.
async fn resolve_and_serve(
    resolver: RequestResolver<h3_quic::Connection, Bytes>,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    limits: Arc<Limits>,
    sidecars: Sidecars,
) {
    let resolve = resolver.resolve_request();
    match tokio::time::timeout(limits.header_read_timeout, resolve).await {
        Ok(Ok((req, stream))) => {
            let sidecar = sidecars.take(stream.id());
            serve_request(req, stream, peer, handler, sidecar, &limits).await
        }
        Ok(Err(e)) => debug!(%peer, error = %e, "malformed h3 request"),
        Err(_) => debug!(%peer, "h3 request headers timed out"),
    }
}

/// Calls the handler for one request and streams its response.
async fn serve_request(
    mut req: http::Request<()>,
    mut stream: H3Stream,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    sidecar: Option<Arc<Sidecar>>,
    limits: &Limits,
) {
    let conn = Conn {
        peer,
        protocol: Protocol::Http3,
        secure: true,
    };
    if reads_body(req.method()) {
        let read = tokio::time::timeout(limits.header_read_timeout, read_body(&mut stream));
        let refused = match read.await {
            Ok(Ok(body)) => {
                req.extensions_mut().insert(RequestBody(body));
                None
            }
            Ok(Err(status)) => Some(status),
            Err(_) => Some(http::StatusCode::REQUEST_TIMEOUT),
        };
        if let Some(status) = refused {
            let (parts, _) = body_refused(status).into_parts();
            if let Err(e) = stream
                .send_response(http::Response::from_parts(parts, ()))
                .await
            {
                debug!(%peer, error = %e, "h3 send_response failed");
            }
            let _ = stream.finish().await;
            return;
        }
    }
    let asked = req
        .headers()
        .get(http::header::HeaderName::from_static("priority"))
        .cloned();
    let resp = handler.handle(req, conn).await;
    let (parts, body) = resp.into_parts();
    if let Some(car) = &sidecar {
        let field = parts.headers.get("priority").or(asked.as_ref());
        let priority = field.map_or_else(Priority::default, |v| Priority::parse(v.as_bytes()));
        car.set_order(priority.send_order());
    }
    if let Err(e) = stream
        .send_response(http::Response::from_parts(parts, ()))
        .await
    {
        debug!(%peer, error = %e, "h3 send_response failed");
        return;
    }
    match send_body(&mut stream, body, sidecar.as_deref()).await {
        // Answered: stop reading the request side with H3_NO_ERROR (RFC 9114
        // section 4.1) in case the client's FIN is still on its way. Dropping
        // the stream unread would make quinn send STOP_SENDING with code 0,
        // which clients may take for an error.
        Ok(()) => stream.stop_sending(Code::H3_NO_ERROR),
        Err(BodyEnd::Body(e)) => {
            debug!(%peer, error = %e, "response body failed: resetting stream");
            stream.stop_stream(Code::H3_INTERNAL_ERROR);
        }
        Err(BodyEnd::Stream(e)) => debug!(%peer, error = %e, "h3 stream write failed"),
    }
}

/// Why a response body did not reach its end.
enum BodyEnd {
    /// The handler's body yielded an error.
    Body(crate::serve::BoxError),
    /// The client reset the stream or the connection went away.
    Stream(h3::error::StreamError),
}

async fn send_body(
    stream: &mut H3Stream,
    mut body: Body,
    sidecar: Option<&Sidecar>,
) -> Result<(), BodyEnd> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyEnd::Body)?;
        match frame.into_data() {
            Ok(data) => {
                if !data.is_empty() {
                    if let Some(car) = sidecar {
                        car.offer(&data);
                    }
                    stream.send_data(data).await.map_err(BodyEnd::Stream)?;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    // send_trailers also finishes the stream.
                    return stream
                        .send_trailers(trailers)
                        .await
                        .map_err(BodyEnd::Stream);
                }
            }
        }
    }
    stream.finish().await.map_err(BodyEnd::Stream)
}

/// A request's body, whole, up to [`MAX_REQUEST_BODY`]; else the status
/// to answer.
async fn read_body(stream: &mut H3Stream) -> Result<Bytes, http::StatusCode> {
    let mut body = bytes::BytesMut::new();
    loop {
        match stream.recv_data().await {
            Ok(Some(mut chunk)) => {
                use bytes::Buf;
                if body.len() + chunk.remaining() > MAX_REQUEST_BODY {
                    return Err(http::StatusCode::PAYLOAD_TOO_LARGE);
                }
                while chunk.has_remaining() {
                    let piece = chunk.chunk();
                    body.extend_from_slice(piece);
                    let n = piece.len();
                    chunk.advance(n);
                }
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(http::StatusCode::BAD_REQUEST),
        }
    }
}
