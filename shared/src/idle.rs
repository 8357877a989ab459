//! Idle connections: a TCP connection on which nothing has been read or
//! written for a while is closed, whatever the protocol on it says. HTTP/1.1
//! keep-alive and HTTP/2 both let a client hold a connection (and its slot)
//! open without a request, and a client that stops reading stalls a
//! response forever; neither hyper protocol bounds that on its own.
//!
//! [`Watched`] wraps the socket and counts progress (a read or write that
//! moved bytes): a counter bump on the I/O path, no clock read. [`Activity`]
//! samples the counter on a coarse timer and resolves once it stood still
//! for the whole limit.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use livecdn_shared::idle::watch;
//! use std::time::Duration;
//!
//! let (client, _server) = tokio::io::duplex(64);
//! let (_io, activity) = watch(client);
//! // Nothing moves on the socket: idle after the limit.
//! tokio::time::timeout(Duration::from_secs(61), activity.idle_for(Duration::from_secs(60)))
//!     .await
//!     .unwrap();
//! # });
//! ```

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps `io`; the [`Activity`] tells when it has gone quiet.
pub fn watch<T>(io: T) -> (Watched<T>, Activity) {
    let progress = Arc::new(AtomicU64::new(0));
    (
        Watched {
            inner: io,
            progress: progress.clone(),
        },
        Activity(progress),
    )
}

/// A socket that counts its progress (see the module docs).
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    progress: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn moved(&self, n: usize) {
        if n > 0 {
            self.progress.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The progress counter of one [`Watched`] socket.
#[derive(Debug, Clone)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    /// Resolves once no byte has moved either way for at least `limit`
    /// (sampled every quarter of it, so within `limit * 1.25`).
    pub async fn idle_for(&self, limit: Duration) {
        let step = (limit / 4).max(Duration::from_millis(10));
        let mut last = self.0.load(Ordering::Relaxed);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(step).await;
            let now = self.0.load(Ordering::Relaxed);
            if now == last {
                quiet += step;
                if quiet >= limit {
                    return;
                }
            } else {
                last = now;
                quiet = Duration::ZERO;
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.moved(buf.filled().len() - before);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.moved(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.moved(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn traffic_either_way_keeps_a_connection_from_going_idle() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (mut io, activity) = watch(client);
        let limit = Duration::from_secs(60);
        let idle = tokio::spawn({
            let a = activity.clone();
            async move {
                let start = tokio::time::Instant::now();
                a.idle_for(limit).await;
                start.elapsed()
            }
        });
        // A byte each way every 40 s for 200 s: never quiet for 60 s.
        for i in 0..5 {
            tokio::time::sleep(Duration::from_secs(40)).await;
            if i % 2 == 0 {
                io.write_all(b"x").await.unwrap();
                let mut b = [0u8; 1];
                server.read_exact(&mut b).await.unwrap();
            } else {
                server.write_all(b"y").await.unwrap();
                let mut b = [0u8; 1];
                io.read_exact(&mut b).await.unwrap();
            }
            assert!(
                !idle.is_finished(),
                "idle after {}s of traffic",
                (i + 1) * 40
            );
        }
        // Then silence: idle within 1.25 limits of the last byte.
        let elapsed = idle.await.unwrap();
        assert!(
            elapsed >= Duration::from_secs(260) && elapsed <= Duration::from_secs(200 + 75),
            "{elapsed:?}"
        );
    }
}
