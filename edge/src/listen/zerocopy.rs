//! A TCP stream whose writes send shared-memory cache bodies with
//! `sendfile(2)` instead of copying them into the socket.
//!
//! hyper writes a response as a list of buffers (head, then body chunks).
//! Cache bodies of some size live in memfd slabs ([`crate::cache::shm`]); when
//! a buffer to write lies in one, this stream sends that range from the memfd,
//! so the kernel queues references to the page-cache pages rather than
//! copying the bytes. Everything else (heads, small or still-growing bodies)
//! is written as usual. The head before a shared-memory body goes with
//! `MSG_MORE`, so it leaves in the same packet as the body's first bytes
//! despite `TCP_NODELAY`.
//!
//! Only for cleartext connections: with TLS the bytes must pass through the
//! encryption anyway.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};

use nix::sys::socket::{sendmsg, MsgFlags, SockaddrStorage};
use std::os::fd::{AsFd, AsRawFd};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::cache::shm;

/// Bytes sent with `sendfile` since start, for `/metrics`.
static SENDFILE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes sent from shared memory without a copy since start.
pub fn sendfile_bytes() -> u64 {
    SENDFILE_BYTES.load(Ordering::Relaxed)
}

/// See the module docs.
#[derive(Debug)]
pub struct ZeroCopyTcp {
    inner: TcpStream,
}

impl ZeroCopyTcp {
    pub fn new(inner: TcpStream) -> ZeroCopyTcp {
        ZeroCopyTcp { inner }
    }

    /// Runs the non-blocking `op` when the socket is writable, waiting (and
    /// retrying) while it would block.
    fn poll_op(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> nix::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            match self
                .inner
                .try_io(Interest::WRITABLE, || op().map_err(io::Error::from))
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncRead for ZeroCopyTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let found = bufs
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .find_map(|(i, b)| shm::locate(b).map(|at| (i, at)));
        match found {
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            Some((0, (slab, offset))) => {
                let len = bufs[0].len();
                let sock = self.inner.as_fd();
                let sent = ready!(self.poll_op(cx, || {
                    let mut at = offset as i64;
                    nix::sys::sendfile::sendfile(sock, slab.fd(), Some(&mut at), len)
                }))?;
                SENDFILE_BYTES.fetch_add(sent as u64, Ordering::Relaxed);
                Poll::Ready(Ok(sent))
            }
            Some((first, _)) => {
                // The buffers before the shared-memory one (the head): sent
                // with MSG_MORE so they wait, briefly, for the body.
                let fd = self.inner.as_raw_fd();
                // nix names no MSG_MORE; the bit is libc's.
                let flags =
                    MsgFlags::from_bits_retain(nix::libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL;
                self.poll_op(cx, || {
                    sendmsg::<SockaddrStorage>(fd, &bufs[..first], &[], flags, None)
                })
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn head_and_shared_memory_body_arrive_intact_and_the_body_by_sendfile() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let (server, _) = listener.accept().await.unwrap();
        server.set_nodelay(true).unwrap();
        let mut stream = ZeroCopyTcp::new(server);

        // The largest body shared memory takes: several partial sends.
        let body: Vec<u8> = (0..shm::SLAB_BYTES / 4).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = body.chunks(70_000).map(Bytes::copy_from_slice).collect();
        let shared = shm::store(&chunks, body.len() as u64).unwrap();
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n");
        let trailer = Bytes::from_static(b"tail on the heap");
        let before = sendfile_bytes();

        let mut expect = head.to_vec();
        expect.extend_from_slice(&shared);
        expect.extend_from_slice(&trailer);
        // Write the three buffers the way hyper does: vectored, advancing
        // past whatever each call took.
        let parts = [head.clone(), shared.clone(), trailer.clone()];
        let (mut index, mut offset) = (0, 0);
        while index < parts.len() {
            let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&parts[index][offset..]))
                .chain(parts[index + 1..].iter().map(|p| IoSlice::new(p)))
                .collect();
            let mut n = stream.write_vectored(&slices).await.unwrap();
            assert!(n > 0);
            while n > 0 {
                let left = parts[index].len() - offset;
                if n >= left {
                    n -= left;
                    index += 1;
                    offset = 0;
                } else {
                    offset += n;
                    n = 0;
                }
            }
        }
        stream.shutdown().await.unwrap();
        drop(stream);
        let got = client.await.unwrap();
        assert_eq!(got.len(), expect.len());
        assert!(got == expect, "bytes differ");
        // Other tests may send concurrently; at least this body went by
        // sendfile.
        assert!(sendfile_bytes() - before >= shared.len() as u64);
    }
}
