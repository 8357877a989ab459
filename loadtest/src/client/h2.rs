//! HTTP/2: a fixed set of connections shared by all viewers; each slot is
//! dialled on first use and re-dialled when its connection has closed.
//!
//! Spoken with the `h2` crate directly rather than through hyper's client:
//! hyper's h2 client hands every request to the connection task over a
//! channel and spawns a task per response, while here the viewer's own task
//! sends the request and reads the body off the stream (5 to 10 % less
//! harness CPU per request, `bench/README.md`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ::h2::client::SendRequest;
use bytes::Bytes;
use http::Uri;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{
    check_origin, connect_bounded, dial_tcp, request, tls, BodyReader, ClientError, FetchError,
    Shared, TcpOrTls,
};
use crate::player::Outcome;

/// A connection's request handle and whether its connection task has ended.
#[derive(Clone)]
struct Sender {
    send: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

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
        let sender = self.sender(slot).await?;
        let mut send = sender.send.ready().await?;
        let req = request(&self.shared.origin, &uri, true, ())?;
        let (response, _) = send.send_request(req, true)?;
        let resp = response.await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut reader = BodyReader::new(start, self.shared.options.max_body, keep);
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            // Window back to the server at once, as hyper does: the body is
            // consumed (counted) as it arrives.
            let _ = body.flow_control().release_capacity(chunk.len());
            reader.push(chunk)?;
        }
        Ok(reader.finish(status))
    }

    async fn sender(&self, slot: usize) -> Result<Sender, FetchError> {
        let Some(slot) = self.slots.get(slot % self.slots.len().max(1)) else {
            return Err(FetchError::Connect("no connection slot".into()));
        };
        let mut guard = slot.lock().await;
        if let Some(sender) = guard.as_ref().filter(|s| !s.closed.load(Ordering::Relaxed)) {
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
            // Shared by many viewers: room for several records a read.
            match dial_tcp(shared, self.tls.as_ref(), 64 << 10).await? {
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
    let (send, conn) = ::h2::client::Builder::new()
        .initial_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .handshake::<T, Bytes>(io)
        .await?;
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    // The connection task ends when the server closes or every sender drops;
    // the flag makes the slot re-dial.
    tokio::spawn(async move {
        let _ = conn.await;
        flag.store(true, Ordering::Relaxed);
    });
    Ok(Sender { send, closed })
}
