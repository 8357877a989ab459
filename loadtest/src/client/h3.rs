//! HTTP/3: a fixed set of QUIC connections shared by all viewers; dialled
//! on first use, re-dialled when closed.
//!
//! Connections share a few UDP endpoints, two per core the harness may run
//! on, so the endpoint drivers still spread over the runtime's threads. One
//! endpoint per connection cost too much memory: quinn gives each endpoint
//! a receive buffer for a batch of GRO datagrams (about 3 MiB on Linux),
//! which a saturated harness fills, and 400 connections then held 1.5 GiB.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::Uri;
use livecdn_shared::quic;
use quinn::crypto::rustls::QuicClientConfig;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{
    check_origin, connect_bounded, request, tls, BodyReader, ClientError, FetchError, Shared,
};
use crate::player::Outcome;

type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

struct Conn {
    quic: quinn::Connection,
    send: Sender,
}

/// Endpoints per core the process may run on.
const ENDPOINTS_PER_CORE: usize = 2;

/// The shared HTTP/3 connections of a run.
pub struct H3Pool {
    shared: Arc<Shared>,
    config: quinn::ClientConfig,
    slots: Vec<Mutex<Option<Conn>>>,
    /// Created on first use (a runtime must be running); slot `i` dials
    /// from endpoint `i % endpoints.len()`.
    endpoints: Vec<std::sync::Mutex<Option<quinn::Endpoint>>>,
}

impl std::fmt::Debug for H3Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3Pool")
            .field("origin", &self.shared.origin)
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl H3Pool {
    /// `options.connections` slots, none dialled yet.
    pub fn new(shared: Arc<Shared>) -> Result<H3Pool, ClientError> {
        if !shared.origin.tls {
            return Err(ClientError::H3NeedsTls);
        }
        let rustls = tls::client_config(&shared.options.trust, &[b"h3"])?;
        let crypto =
            QuicClientConfig::try_from(rustls).map_err(|e| ClientError::Quic(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        // The MTU search bound follows the sockets (see `endpoint`); all
        // of a run's sockets are alike, so the first one's caps stand for all.
        let caps = probe_caps()?;
        let mut transport = quic::transport_config(caps);
        transport.keep_alive_interval(Some(Duration::from_secs(5)));
        transport.stream_receive_window(quinn::VarInt::from_u32(4 << 20));
        transport.receive_window(quinn::VarInt::from_u32(16 << 20));
        config.transport_config(Arc::new(transport));
        let connections = shared.options.connections.max(1);
        let slots = (0..connections).map(|_| Mutex::new(None)).collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let endpoints = (0..connections.min(cores * ENDPOINTS_PER_CORE))
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        Ok(H3Pool {
            shared,
            config,
            slots,
            endpoints,
        })
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no connections (never: at least one).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// GETs `uri` on connection `slot`.
    pub async fn get(&self, slot: usize, uri: Uri, keep: bool) -> Result<Outcome, FetchError> {
        check_origin(&self.shared.origin, &uri)?;
        let start = Instant::now();
        let mut send = self.sender(slot).await?;
        let req = request(&self.shared.origin, &uri, true, ())?;
        let h3 = |e: h3::error::StreamError| FetchError::H3(e.to_string());
        let mut stream = send.send_request(req).await.map_err(h3)?;
        // A server may answer and stop reading before our FIN has gone out
        // (RFC 9114 section 4.1: the response still counts); a real failure
        // shows in the response read below.
        let _ = stream.finish().await;
        let resp = stream.recv_response().await.map_err(h3)?;
        let mut reader = BodyReader::new(start, self.shared.options.max_body, keep);
        while let Some(mut buf) = stream.recv_data().await.map_err(h3)? {
            reader.push(buf.copy_to_bytes(buf.remaining()))?;
        }
        Ok(reader.finish(resp.status().as_u16()))
    }

    async fn sender(&self, slot: usize) -> Result<Sender, FetchError> {
        let index = slot % self.slots.len().max(1);
        let Some(slot) = self.slots.get(index) else {
            return Err(FetchError::Connect("no connection slot".into()));
        };
        let mut guard = slot.lock().await;
        if let Some(conn) = guard.as_ref().filter(|c| c.quic.close_reason().is_none()) {
            return Ok(conn.send.clone());
        }
        let conn = connect_bounded(
            self.shared.options.connect_timeout,
            Box::pin(self.connect(index)),
        )
        .await?;
        let send = conn.send.clone();
        *guard = Some(conn);
        Ok(send)
    }

    /// The endpoint slot `index` dials from, bound on first use.
    fn endpoint(&self, index: usize, addr: SocketAddr) -> Result<quinn::Endpoint, FetchError> {
        let Some(cell) = self.endpoints.get(index % self.endpoints.len().max(1)) else {
            return Err(FetchError::Connect("no QUIC endpoint".into()));
        };
        // Held for a bind only, never across an await.
        let mut cell = cell
            .lock()
            .map_err(|_| FetchError::Connect("QUIC endpoint lock poisoned".into()))?;
        if let Some(endpoint) = cell.as_ref() {
            return Ok(endpoint.clone());
        }
        let bind: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let connect = |e: std::io::Error| FetchError::Connect(e.to_string());
        let (socket, caps) = quic::bind(bind).map_err(connect)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| FetchError::Connect("no async runtime for QUIC".into()))?;
        let mut endpoint = quinn::Endpoint::new(quic::endpoint_config(caps), None, socket, runtime)
            .map_err(connect)?;
        endpoint.set_default_client_config(self.config.clone());
        *cell = Some(endpoint.clone());
        Ok(endpoint)
    }

    async fn connect(&self, index: usize) -> Result<Conn, FetchError> {
        let addr = self.shared.origin.resolve().await?;
        let endpoint = self.endpoint(index, addr)?;
        let quic = endpoint
            .connect(addr, &self.shared.origin.host)
            .map_err(|e| FetchError::Connect(e.to_string()))?
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
            .await
            .map_err(|e| FetchError::H3(e.to_string()))?;
        // Drives the connection's control streams until it closes.
        tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(Conn { quic, send })
    }
}

/// The capabilities of a socket like the ones a run binds.
fn probe_caps() -> Result<quic::SocketCaps, ClientError> {
    let any = (std::net::Ipv4Addr::LOCALHOST, 0).into();
    quic::bind(any)
        .map(|(_, caps)| caps)
        .map_err(|e| ClientError::Quic(e.to_string()))
}

impl Drop for H3Pool {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Ok(guard) = slot.try_lock() {
                if let Some(conn) = guard.as_ref() {
                    conn.quic.close(quinn::VarInt::from_u32(0x100), b"done");
                }
            }
        }
    }
}
