//! The RTMP and RTMPS accept loops: bounded connections, one supervised
//! task each. Both listeners share one set of caps, so a flood on one port
//! cannot take the slots of the other.

use super::session::{self, SessionError};
use crate::OriginState;
use livecdn_shared::config::RtmpsConfig;
use livecdn_shared::limit::PerAddr;
use livecdn_shared::tls;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// One ingest listener: plain RTMP, or RTMPS with the TLS that fronts it.
pub struct Ingress {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Ingress {
    /// Plain RTMP on `listener`.
    pub fn rtmp(listener: TcpListener) -> Self {
        Self {
            listener,
            tls: None,
        }
    }

    /// RTMPS: binds `config.listen` with the configured certificate, or a
    /// self-signed one made now.
    pub async fn rtmps(config: &RtmpsConfig) -> std::io::Result<Self> {
        let (cert, key, self_signed) = tls::configured_or_self_signed(
            config.cert.as_deref(),
            config.key.as_deref(),
            &["livecdn-origin"],
        )
        .map_err(std::io::Error::other)?;
        if self_signed {
            tracing::info!("rtmps uses a self-signed certificate (set ingest.rtmps.cert and key for encoders that verify)");
        }
        // No ALPN: encoders do not offer any for RTMP.
        let server = tls::server_config(&cert, &key, &[]).map_err(std::io::Error::other)?;
        Ok(Self {
            listener: TcpListener::bind(config.listen).await?,
            tls: Some(TlsAcceptor::from(server)),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn transport(&self) -> &'static str {
        match self.tls {
            Some(_) => "rtmps",
            None => "rtmp",
        }
    }
}

/// The caps every ingest listener draws from.
struct Slots {
    global: Arc<Semaphore>,
    per_ip: Arc<PerAddr>,
    sessions: TaskTracker,
}

/// Accepts on every ingress until `shutdown` flips, then waits (bounded)
/// for the sessions to wind down.
pub async fn serve(
    ingresses: Vec<Ingress>,
    state: Arc<OriginState>,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots {
        global: Arc::new(Semaphore::new(state.config.ingest.max_connections)),
        per_ip: PerAddr::new(state.config.ingest.max_connections_per_ip),
        sessions: TaskTracker::new(),
    });
    let loops = ingresses
        .into_iter()
        .map(|i| accept_loop(i, slots.clone(), state.clone(), shutdown.clone()));
    futures::future::join_all(loops).await;
    // Sessions see the same shutdown and end at once (each detaches from
    // its stream and queues its on_publish_done); wait for that, bounded.
    let sessions = &slots.sessions;
    sessions.close();
    if tokio::time::timeout(SESSION_DRAIN, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = sessions.len(),
            "rtmp sessions still open at shutdown"
        );
    }
}

async fn accept_loop(
    ingress: Ingress,
    slots: Arc<Slots>,
    state: Arc<OriginState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let transport = ingress.transport();
    loop {
        let accepted = tokio::select! {
            a = ingress.listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, transport, "rtmp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // The per-address check comes first, so a flood from one address
        // never reaches the global cap that everyone shares.
        let Some(addr_permit) = slots.per_ip.try_acquire(peer.ip()) else {
            state.metrics.refused_connection(transport, "per_ip");
            tracing::debug!(%peer, transport, "rtmp per-address connection limit reached; closing");
            continue;
        };
        let Ok(permit) = slots.global.clone().try_acquire_owned() else {
            state.metrics.refused_connection(transport, "global");
            tracing::warn!(%peer, transport, "rtmp connection limit reached; closing");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (state, shutdown, tls) = (state.clone(), shutdown.clone(), ingress.tls.clone());
        let span = tracing::info_span!("rtmp", %peer, transport, stream = tracing::field::Empty);
        slots.sessions.spawn(
            async move {
                match run(socket, peer, tls, state, shutdown).await {
                    Ok(()) => tracing::info!("rtmp session closed"),
                    Err(e) => tracing::warn!(reason = %e, "rtmp session closed"),
                }
                drop((permit, addr_permit));
            }
            .instrument(span),
        );
    }
}

/// One connection: TLS first where the listener has it, within the same
/// handshake deadline as the RTMP handshake that follows.
async fn run(
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    state: Arc<OriginState>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let accepted = tokio::time::Instant::now();
    let Some(acceptor) = tls else {
        return session::run(socket, peer, accepted, state, shutdown).await;
    };
    let limit = state.config.ingest.handshake_timeout;
    let stream = tokio::time::timeout_at(accepted + limit, acceptor.accept(socket))
        .await
        .map_err(|_| SessionError::HandshakeDeadline(limit))?
        .map_err(|e| SessionError::Tls(e.to_string()))?;
    session::run(stream, peer, accepted, state, shutdown).await
}

/// How long shutdown waits for RTMP sessions to wind down.
const SESSION_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);
