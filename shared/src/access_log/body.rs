//! The response body that completes an access log line: it counts the
//! bytes it hands on (the same `Bytes`, never copied), notes when the first
//! one left, and sends the line at the end of the body, or when the body is
//! dropped early because the client went away.

use super::Pending;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// `B`, logged (see the module docs).
pub struct Logged<B> {
    inner: B,
    pending: Option<Pending>,
    bytes: u64,
    first_byte: Option<Instant>,
    /// Nothing to send from the start (HEAD, 204, 304): such a body may
    /// never be polled, and dropping it unpolled is still complete.
    empty: bool,
}

impl<B: Body> Logged<B> {
    pub(super) fn new(inner: B, pending: Pending) -> Self {
        Self {
            empty: inner.is_end_stream(),
            inner,
            pending: Some(pending),
            bytes: 0,
            first_byte: None,
        }
    }
}

impl<B> Logged<B> {
    fn finish(&mut self, complete: bool) {
        if let Some(p) = self.pending.take() {
            p.finish(self.bytes, self.first_byte, complete);
        }
    }
}

impl<B> Body for Logged<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                    if self.first_byte.is_none() && !data.is_empty() {
                        self.first_byte = Some(Instant::now());
                    }
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Ready(None) => self.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Logged<B> {
    fn drop(&mut self) {
        let complete = self.empty;
        self.finish(complete);
    }
}
