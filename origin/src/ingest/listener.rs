//! The RTMP accept loop: bounded connections, one supervised task each.

use super::session;
use crate::OriginState;
use livecdn_shared::limit::PerAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

/// Accepts RTMP connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    state: Arc<OriginState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(state.config.ingest.max_connections));
    let per_ip = PerAddr::new(state.config.ingest.max_connections_per_ip);
    let sessions = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "rtmp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // The per-address check comes first, so a flood from one address
        // never reaches the global cap that everyone shares.
        let Some(addr_permit) = per_ip.try_acquire(peer.ip()) else {
            state.metrics.refused_connection("per_ip");
            tracing::debug!(%peer, "rtmp per-address connection limit reached; closing");
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            state.metrics.refused_connection("global");
            tracing::warn!(%peer, "rtmp connection limit reached; closing");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        let span = tracing::info_span!("rtmp", %peer, stream = tracing::field::Empty);
        sessions.spawn(
            async move {
                match session::run(socket, peer, state, shutdown).await {
                    Ok(()) => tracing::info!("rtmp session closed"),
                    Err(e) => tracing::warn!(reason = %e, "rtmp session closed"),
                }
                drop((permit, addr_permit));
            }
            .instrument(span),
        );
    }
    // Sessions see the same shutdown and end at once (each detaches from
    // its stream and queues its on_publish_done); wait for that, bounded.
    drop(listener);
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

/// How long shutdown waits for RTMP sessions to wind down.
const SESSION_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);
