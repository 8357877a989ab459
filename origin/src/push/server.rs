//! The push endpoint: quinn server, control stream reader, subscription
//! senders.
//!
//! Per edge connection one task reads the control stream (bounded buffer:
//! a frame is at most `FRAME_HEADER + MAX_FRAME_BODY` bytes) and starts or
//! aborts one subscription task per stream. A subscription task waits for
//! the stream to exist, then after every window change asks the
//! [`Tracker`] what is new and sends each object on its own unidirectional
//! stream. At most `push.max_in_flight` objects per connection are in
//! flight; past that the task waits, and what leaves the window meanwhile
//! is skipped (see [`Tracker`]).

use super::send::{self, Sender};
use super::tracker::Tracker;
use crate::OriginState;
use bytes::{Bytes, BytesMut};
use livecdn_shared::push::{self, Message, WireError};
use livecdn_shared::quic;
use livecdn_shared::tls;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, IdleTimeout, VarInt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Streams one edge connection may subscribe to.
const MAX_SUBSCRIPTIONS: usize = 1024;
/// An edge must open its control stream this soon after connecting.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a subscription re-checks that its stream was not replaced.
const RECHECK: Duration = Duration::from_millis(500);
/// Application close codes.
const CLOSE_OK: u32 = 0;
const CLOSE_PROTOCOL: u32 = 1;
const CLOSE_UNAUTHORIZED: u32 = 2;

/// Why the push endpoint could not start, or a connection ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// Certificate or key unreadable or unusable.
    #[error("push tls: {0}")]
    Tls(String),
    /// The UDP socket could not bind.
    #[error("push bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The edge sent a malformed control frame (its fault).
    #[error("edge sent a malformed frame: {0}")]
    Wire(#[from] WireError),
    /// The QUIC connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The control stream failed.
    #[error("control stream: {0}")]
    Read(#[from] quinn::ReadError),
    /// The edge did not open its control stream in time.
    #[error("no control stream within {0:?}")]
    NoControl(Duration),
    /// The first control frame was not a Hello with a valid cluster
    /// credential (or did not come in time).
    #[error("cluster credential refused: {0}")]
    Unauthorized(String),
}

/// A bound push endpoint.
pub struct PushServer {
    endpoint: quinn::Endpoint,
    spki: String,
}

impl PushServer {
    /// Binds `config.push.listen` with the configured certificate or a fresh
    /// self-signed one.
    pub fn bind(config: &livecdn_shared::config::PushConfig) -> Result<Self, PushError> {
        let tls_err = |e: &dyn std::fmt::Display| PushError::Tls(e.to_string());
        let (cert_pem, key_pem, _) = tls::configured_or_self_signed(
            config.cert.as_deref(),
            config.key.as_deref(),
            &["livecdn-origin"],
        )
        .map_err(|e| tls_err(&e))?;
        let der = tls::first_certificate_der(&cert_pem).map_err(|e| tls_err(&e))?;
        let spki = tls::spki_sha256_base64(&der).map_err(|e| tls_err(&e))?;
        let rustls =
            tls::server_config(&cert_pem, &key_pem, &[push::ALPN]).map_err(|e| tls_err(&e))?;
        let crypto = QuicServerConfig::try_from(rustls).map_err(|e| tls_err(&e))?;
        let addr = config.listen;
        let bind_err = |source| PushError::Bind { addr, source };
        // Packet size and socket buffers: see livecdn_shared::quic.
        let (socket, caps) = quic::bind(addr).map_err(bind_err)?;
        let mut transport = quic::transport_config(caps);
        let idle = IdleTimeout::try_from(Duration::from_secs(30)).map_err(|e| tls_err(&e))?;
        transport
            .max_idle_timeout(Some(idle))
            .max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(0));
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::new(transport));
        let runtime = quinn::default_runtime()
            .ok_or_else(|| bind_err(std::io::Error::other("no async runtime")))?;
        let endpoint =
            quinn::Endpoint::new(quic::endpoint_config(caps), Some(server), socket, runtime)
                .map_err(bind_err)?;
        Ok(Self { endpoint, spki })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// base64 SHA-256 of the certificate's SPKI, for `upstream.push_spki`.
    pub fn spki_sha256(&self) -> &str {
        &self.spki
    }

    /// Accepts edges until `shutdown` turns true, then closes every
    /// connection.
    pub async fn serve(self, state: Arc<OriginState>, mut shutdown: watch::Receiver<bool>) {
        let ids = AtomicU64::new(1);
        let mut conns = JoinSet::new();
        loop {
            let incoming = tokio::select! {
                _ = shutdown.changed() => break,
                i = self.endpoint.accept() => i,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let Some(incoming) = incoming else { break };
            let id = ids.fetch_add(1, Ordering::Relaxed);
            conns.spawn(connection(incoming, id, state.clone()));
        }
        self.endpoint.close(VarInt::from_u32(CLOSE_OK), b"shutdown");
        conns.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

/// One edge: its control stream and its subscriptions.
async fn connection(incoming: quinn::Incoming, id: u64, state: Arc<OriginState>) {
    let peer = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "push handshake failed");
            return;
        }
    };
    tracing::info!(%peer, conn = id, "edge connected for push");
    let mut subs: HashMap<String, JoinHandle<()>> = HashMap::new();
    let result = control(&conn, id, &state, &mut subs).await;
    for (_, task) in subs.drain() {
        task.abort();
    }
    state.push_viewers.forget(id);
    match result {
        Err(PushError::Wire(e)) => {
            tracing::warn!(%peer, error = %e, "closing push connection");
            conn.close(VarInt::from_u32(CLOSE_PROTOCOL), b"malformed frame");
        }
        Err(e @ PushError::Unauthorized(_)) => {
            state.metrics.push_refused();
            tracing::warn!(%peer, reason = %e, "push connection refused");
            conn.close(
                VarInt::from_u32(CLOSE_UNAUTHORIZED),
                b"cluster credential refused",
            );
        }
        Err(e) => tracing::info!(%peer, conn = id, error = %e, "push connection ended"),
        Ok(()) => conn.close(VarInt::from_u32(CLOSE_OK), b"bye"),
    }
}

async fn control(
    conn: &Connection,
    id: u64,
    state: &Arc<OriginState>,
    subs: &mut HashMap<String, JoinHandle<()>>,
) -> Result<(), PushError> {
    let (_send, mut recv) = tokio::time::timeout(CONTROL_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| PushError::NoControl(CONTROL_TIMEOUT))??;
    let in_flight = Arc::new(Semaphore::new(state.config.push.max_in_flight));
    let mut buf = BytesMut::new();
    let node = tokio::time::timeout(CONTROL_TIMEOUT, hello(&mut recv, &mut buf, state))
        .await
        .map_err(|_| PushError::Unauthorized(format!("no hello within {CONTROL_TIMEOUT:?}")))??;
    tracing::info!(conn = id, %node, "edge authenticated for push");
    // Frames that came in the same read as the Hello are handled first.
    let mut fresh = false;
    loop {
        if fresh {
            let Some(chunk) = recv.read_chunk(push::MAX_FRAME_BODY, true).await? else {
                return Ok(());
            };
            buf.extend_from_slice(&chunk.bytes);
        }
        fresh = true;
        loop {
            let frozen: Bytes = buf.clone().freeze();
            let Some((msg, used)) = push::decode(&frozen)? else {
                break;
            };
            let _ = buf.split_to(used);
            match msg {
                Message::Subscribe { stream } => {
                    subs.retain(|_, t| !t.is_finished());
                    if subs.len() >= MAX_SUBSCRIPTIONS || subs.contains_key(&stream) {
                        continue;
                    }
                    tracing::debug!(conn = id, %stream, "push subscribe");
                    let task = tokio::spawn(subscription(
                        conn.clone(),
                        state.clone(),
                        stream.clone(),
                        in_flight.clone(),
                    ));
                    subs.insert(stream, task);
                }
                Message::Unsubscribe { stream } => {
                    tracing::debug!(conn = id, %stream, "push unsubscribe");
                    if let Some(task) = subs.remove(&stream) {
                        task.abort();
                    }
                }
                Message::ViewerReport { stream, viewers } => {
                    state
                        .push_viewers
                        .report(id, &stream, viewers, Instant::now());
                }
                // Objects and purges flow origin to edge only; one hello
                // per connection.
                Message::Object(_) | Message::Purge { .. } => {
                    return Err(WireError::NotAnObject.into())
                }
                Message::Hello { .. } => {
                    return Err(PushError::Unauthorized("second hello".into()))
                }
            }
        }
    }
}

/// Reads the first control frame, which must be a Hello whose cluster
/// credential verifies with the origin's secret; returns the node name.
/// Bytes after it stay in `buf`.
async fn hello(
    recv: &mut quinn::RecvStream,
    buf: &mut BytesMut,
    state: &OriginState,
) -> Result<String, PushError> {
    loop {
        let frozen: Bytes = buf.clone().freeze();
        if let Some((msg, used)) = push::decode(&frozen)? {
            let _ = buf.split_to(used);
            let Message::Hello { credential } = msg else {
                return Err(PushError::Unauthorized("first frame is not a hello".into()));
            };
            return crate::cluster::verify(&state.config, &credential)
                .map_err(|e| PushError::Unauthorized(e.to_string()));
        }
        let Some(chunk) = recv.read_chunk(push::MAX_FRAME_BODY, true).await? else {
            return Err(PushError::Unauthorized(
                "control stream closed before hello".into(),
            ));
        };
        buf.extend_from_slice(&chunk.bytes);
    }
}

/// Sends `stream`'s new objects after every window change, for as long as
/// the subscription lasts (aborted on unsubscribe or disconnect).
async fn subscription(
    conn: Connection,
    state: Arc<OriginState>,
    stream: String,
    in_flight: Arc<Semaphore>,
) {
    let mut sender = Sender::new(conn.clone(), in_flight);
    loop {
        // The stream may not exist yet, or may have been replaced.
        let Some(hub) = state.registry.get(&stream) else {
            tokio::time::sleep(RECHECK).await;
            continue;
        };
        let mut rx = hub.subscribe();
        let mut tracker = Tracker::new(&stream);
        loop {
            rx.borrow_and_update();
            // A DVR stream's playlists are pulled, not pushed (see
            // livecdn_shared::push). The recorder's catalog is read
            // outside the stream's lock.
            let playlists = match &state.recorder {
                None => true,
                Some(r) => {
                    let names: Vec<String> =
                        hub.read(|p| p.tracks().map(|t| t.name.clone()).collect());
                    r.dvr(&stream, names.iter().map(String::as_str)).is_none()
                }
            };
            // Whether the window has ended is read under the same lock as
            // the batch, so a purge below follows the ENDLIST playlists.
            // (`stop` marks the hub stopped before it ends the window.)
            let (batch, ended) = hub.read(|p| (tracker.poll(p, playlists), p.is_ended()));
            for object in batch {
                if !sender.send(object).await {
                    return;
                }
            }
            if conn.close_reason().is_some() {
                return;
            }
            if ended && hub.is_stopped() {
                // The operator stopped it: the ENDLIST playlists above go
                // out first, then the edge drops everything it holds.
                sender.drain().await;
                if let Err(e) = send::purge(&conn, &stream).await {
                    tracing::debug!(%stream, error = %e, "push purge failed");
                }
                break;
            }
            match tokio::time::timeout(RECHECK, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    let same = state
                        .registry
                        .get(&stream)
                        .is_some_and(|h| Arc::ptr_eq(&h, &hub));
                    if !same {
                        break;
                    }
                }
            }
        }
    }
}
