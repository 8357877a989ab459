//! HTTP/2: a fixed set of connections shared by all viewers; each slot is
//! dialled on first use and re-dialled when its connection has closed.

use std::sync::Arc;

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{
    check_origin, connect_bounded, dial_tcp, read_hyper, request, tls, ClientError, FetchError,
    Shared, TcpOrTls,
};
use crate::player::Outcome;

type Sender = SendRequest<Empty<Bytes>>;

/// The shared HTTP/2 connections of a run.
pub struct H2Pool {
    shared: Arc<Shared>,
    tls: Option<TlsConnector>,
    slots: Vec<Mutex<Option<Sender>>>,
}

impl std::fmt::Debug for H2Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Pool")
            .field("origin", &self.shared.origin)
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl H2Pool {
    /// `options.connections` slots, none dialled yet.
    pub fn new(shared: Arc<Shared>) -> Result<H2Pool, ClientError> {
        let tls = if shared.origin.tls {
            let config = tls::client_config(&shared.options.trust, &[b"h2"])?;
            Some(TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        let slots = (0..shared.options.connections.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        Ok(H2Pool { shared, tls, slots })
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
        let mut sender = self.sender(slot).await?;
        sender.ready().await?;
        let req = request(&self.shared.origin, &uri, true, Empty::new())?;
        let resp = sender.send_request(req).await?;
        read_hyper(resp, start, self.shared.options.max_body, keep).await
    }

    async fn sender(&self, slot: usize) -> Result<Sender, FetchError> {
        let Some(slot) = self.slots.get(slot % self.slots.len().max(1)) else {
            return Err(FetchError::Connect("no connection slot".into()));
        };
        let mut guard = slot.lock().await;
        if let Some(sender) = guard.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        // Boxed: the cold dial path would otherwise size every request's
        // future (kilobytes moved per request).
        let sender = Box::pin(self.connect()).await?;
        *guard = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> Result<Sender, FetchError> {
        let shared = &self.shared;
        connect_bounded(shared.options.connect_timeout, async {
            match dial_tcp(shared, self.tls.as_ref()).await? {
                TcpOrTls::Tcp(s) => handshake(s).await,
                TcpOrTls::Tls(s) => handshake(*s).await,
            }
        })
        .await
    }
}

async fn handshake<T>(io: T) -> Result<Sender, FetchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .handshake(TokioIo::new(io))
        .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
