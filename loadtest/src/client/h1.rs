//! HTTP/1.1: each viewer owns up to [`ClientOptions::h1_pool`] keep-alive
//! connections; a request waits for a free one.
//!
//! [`ClientOptions::h1_pool`]: super::ClientOptions::h1_pool

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{
    check_origin, connect_bounded, dial_tcp, read_hyper, request, tls, ClientError, FetchError,
    Shared, TcpOrTls,
};
use crate::player::Outcome;

type Sender = SendRequest<Empty<Bytes>>;

/// The TLS connector all h1 viewers share (`None` for http).
pub(super) fn connector(shared: &Shared) -> Result<Option<TlsConnector>, ClientError> {
    if !shared.origin.tls {
        return Ok(None);
    }
    let config = tls::client_config(&shared.options.trust, &[b"http/1.1"])?;
    Ok(Some(TlsConnector::from(Arc::new(config))))
}

/// One viewer's HTTP/1.1 connections.
pub struct H1Pool {
    shared: Arc<Shared>,
    tls: Option<TlsConnector>,
    idle: Mutex<Vec<Sender>>,
    permits: Semaphore,
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Pool")
            .field("origin", &self.shared.origin)
            .finish_non_exhaustive()
    }
}

impl H1Pool {
    /// A pool that has not connected yet.
    pub fn new(shared: Arc<Shared>, tls: Option<TlsConnector>) -> H1Pool {
        let permits = Semaphore::new(shared.options.h1_pool.max(1));
        H1Pool {
            shared,
            tls,
            idle: Mutex::new(Vec::new()),
            permits,
        }
    }

    /// GETs `uri` on a free connection, dialling one when none is idle.
    pub async fn get(&self, uri: Uri, keep: bool) -> Result<Outcome, FetchError> {
        check_origin(&self.shared.origin, &uri)?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| FetchError::Connect("pool closed".into()))?;
        let start = Instant::now();
        let mut sender = match self.take_idle() {
            Some(sender) => sender,
            // Boxed: the cold dial path (TLS handshake inline) would
            // otherwise size every request's future.
            None => Box::pin(self.connect()).await?,
        };
        sender.ready().await?;
        let req = request(&self.shared.origin, &uri, false, Empty::new())?;
        let resp = sender.send_request(req).await?;
        let outcome = read_hyper(resp, start, self.shared.options.max_body, keep).await?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(sender);
        }
        Ok(outcome)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Sender, FetchError> {
        let shared = &self.shared;
        connect_bounded(shared.options.connect_timeout, async {
            // Per-viewer connections (tens of thousands in a run): a small
            // buffer, still half the reads of rustls's own 4 KiB.
            let io = dial_tcp(shared, self.tls.as_ref(), 8 << 10).await?;
            let sender = match io {
                TcpOrTls::Tcp(s) => handshake(s).await?,
                TcpOrTls::Tls(s) => handshake(*s).await?,
            };
            Ok(sender)
        })
        .await
    }
}

async fn handshake<T>(io: T) -> Result<Sender, FetchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    // The connection task ends when the server closes or the sender drops.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
