//! The QUIC side of the edge's HTTP/3: quinn streams behind the `h3`
//! crate's transport traits, sending response bodies without copying them
//! and in priority order.
//!
//! `h3-quinn` hands each DATA frame to quinn as a byte slice, which quinn
//! copies into a buffer of its own: one copy of every response body per
//! request on top of the copy into each packet. quinn also accepts
//! reference-counted chunks (`write_chunks`), so the cached object's
//! shared `Bytes` can go to the packetiser as they are. `h3` only shows a
//! transport its frames as slices (`WriteBuf` is a `Buf`), so the serving
//! task leaves the `Bytes` it is about to send in the stream's [`Sidecar`];
//! the stream takes it when the slice it is given is exactly that buffer's
//! memory, and copies otherwise (headers, frame headers, anything else).
//!
//! The sidecar also carries the response's RFC 9218 priority to quinn's
//! per-stream send order, which `h3` has no call for.

use bytes::{Buf, Bytes};
use futures::stream::{self, BoxStream, StreamExt};
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming, StreamId, WriteBuf};
use quinn::VarInt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};

type Accepted<T> = Result<T, quinn::ConnectionError>;
type OpenFut<T> = std::pin::Pin<Box<dyn Future<Output = Accepted<T>> + Send>>;

/// What the serving task tells one request stream.
#[derive(Debug, Default)]
pub struct Sidecar {
    state: Mutex<SidecarState>,
}

#[derive(Debug, Default)]
struct SidecarState {
    /// The body chunk about to be sent.
    next: Option<Bytes>,
    /// quinn send order to apply before the next write.
    order: Option<i32>,
}

impl Sidecar {
    /// Offers `chunk`, the buffer of the next DATA frame.
    pub fn offer(&self, chunk: &Bytes) {
        if let Ok(mut s) = self.state.lock() {
            s.next = Some(chunk.clone());
        }
    }

    /// Sets the stream's send order (higher first) from the next write on.
    pub fn set_order(&self, order: i32) {
        if let Ok(mut s) = self.state.lock() {
            s.order = Some(order);
        }
    }

    /// The offered buffer if `slice` is exactly its memory.
    fn take_matching(&self, slice: &[u8]) -> Option<Bytes> {
        let mut s = self.state.lock().ok()?;
        let offered = s.next.as_ref()?;
        if offered.as_ptr() == slice.as_ptr() && offered.len() == slice.len() {
            s.next.take()
        } else {
            None
        }
    }

    fn take_order(&self) -> Option<i32> {
        self.state.lock().ok()?.order.take()
    }
}

/// Sidecars of a connection's request streams, by stream id, until the
/// serving task picks its own up. Entries die with their stream.
#[derive(Debug, Clone, Default)]
pub struct Sidecars(Arc<Mutex<HashMap<u64, Weak<Sidecar>>>>);

/// Dead entries are pruned once the map holds this many.
const PRUNE_AT: usize = 64;

impl Sidecars {
    fn register(&self, id: u64) -> Arc<Sidecar> {
        let car = Arc::new(Sidecar::default());
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= PRUNE_AT {
                map.retain(|_, w| w.strong_count() > 0);
            }
            map.insert(id, Arc::downgrade(&car));
        }
        car
    }

    /// The sidecar of request stream `id`, removed from the map.
    pub fn take(&self, id: StreamId) -> Option<Arc<Sidecar>> {
        self.0.lock().ok()?.remove(&id.into_inner())?.upgrade()
    }
}

/// A quinn connection as `h3` sees it.
pub struct Connection {
    conn: quinn::Connection,
    sidecars: Sidecars,
    incoming_bi: BoxStream<'static, Accepted<(quinn::SendStream, quinn::RecvStream)>>,
    incoming_uni: BoxStream<'static, Accepted<quinn::RecvStream>>,
    opener: OpenStreams,
}

impl Connection {
    /// Wraps `conn`; request streams register in `sidecars`.
    pub fn new(conn: quinn::Connection, sidecars: Sidecars) -> Connection {
        let bi = conn.clone();
        let uni = conn.clone();
        Connection {
            incoming_bi: stream::unfold(bi, |c| async { Some((c.accept_bi().await, c)) }).boxed(),
            incoming_uni: stream::unfold(uni, |c| async { Some((c.accept_uni().await, c)) })
                .boxed(),
            opener: OpenStreams::new(conn.clone()),
            conn,
            sidecars,
        }
    }
}

impl<B: Buf> quic::Connection<B> for Connection {
    type RecvStream = RecvStream;
    type OpenStreams = OpenStreams;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<RecvStream, ConnectionErrorIncoming>> {
        match ready!(self.incoming_uni.poll_next_unpin(cx)) {
            Some(Ok(recv)) => Poll::Ready(Ok(RecvStream::new(recv))),
            Some(Err(e)) => Poll::Ready(Err(connection_error(e))),
            None => Poll::Ready(Err(closed())),
        }
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BidiStream, ConnectionErrorIncoming>> {
        match ready!(self.incoming_bi.poll_next_unpin(cx)) {
            Some(Ok((send, recv))) => {
                let car = self.sidecars.register(VarInt::from(send.id()).into_inner());
                Poll::Ready(Ok(BidiStream {
                    send: SendStream::new(send, Some(car)),
                    recv: RecvStream::new(recv),
                }))
            }
            Some(Err(e)) => Poll::Ready(Err(connection_error(e))),
            None => Poll::Ready(Err(closed())),
        }
    }

    fn opener(&self) -> OpenStreams {
        OpenStreams::new(self.conn.clone())
    }
}

impl<B: Buf> quic::OpenStreams<B> for Connection {
    type BidiStream = BidiStream;
    type SendStream = SendStream;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BidiStream, StreamErrorIncoming>> {
        <OpenStreams as quic::OpenStreams<B>>::poll_open_bidi(&mut self.opener, cx)
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<SendStream, StreamErrorIncoming>> {
        <OpenStreams as quic::OpenStreams<B>>::poll_open_send(&mut self.opener, cx)
    }

    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        close(&self.conn, code, reason);
    }
}

/// Opens the server's own streams (control and QPACK streams).
pub struct OpenStreams {
    conn: quinn::Connection,
    opening_bi: Option<OpenFut<(quinn::SendStream, quinn::RecvStream)>>,
    opening_uni: Option<OpenFut<quinn::SendStream>>,
}

impl OpenStreams {
    fn new(conn: quinn::Connection) -> OpenStreams {
        OpenStreams {
            conn,
            opening_bi: None,
            opening_uni: None,
        }
    }
}

impl Clone for OpenStreams {
    fn clone(&self) -> Self {
        OpenStreams::new(self.conn.clone())
    }
}

impl<B: Buf> quic::OpenStreams<B> for OpenStreams {
    type BidiStream = BidiStream;
    type SendStream = SendStream;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BidiStream, StreamErrorIncoming>> {
        let conn = self.conn.clone();
        let fut = self
            .opening_bi
            .get_or_insert_with(|| Box::pin(async move { conn.open_bi().await }));
        let opened = ready!(fut.as_mut().poll(cx));
        self.opening_bi = None;
        let (send, recv) = opened.map_err(|e| StreamErrorIncoming::ConnectionErrorIncoming {
            connection_error: connection_error(e),
        })?;
        Poll::Ready(Ok(BidiStream {
            send: SendStream::new(send, None),
            recv: RecvStream::new(recv),
        }))
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<SendStream, StreamErrorIncoming>> {
        let conn = self.conn.clone();
        let fut = self
            .opening_uni
            .get_or_insert_with(|| Box::pin(async move { conn.open_uni().await }));
        let opened = ready!(fut.as_mut().poll(cx));
        self.opening_uni = None;
        let send = opened.map_err(|e| StreamErrorIncoming::ConnectionErrorIncoming {
            connection_error: connection_error(e),
        })?;
        Poll::Ready(Ok(SendStream::new(send, None)))
    }

    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        close(&self.conn, code, reason);
    }
}

fn close(conn: &quinn::Connection, code: h3::error::Code, reason: &[u8]) {
    conn.close(
        VarInt::from_u64(u64::from(code)).unwrap_or(VarInt::MAX),
        reason,
    );
}

/// A request stream: both halves.
pub struct BidiStream {
    send: SendStream,
    recv: RecvStream,
}

impl<B: Buf> quic::BidiStream<B> for BidiStream {
    type SendStream = SendStream;
    type RecvStream = RecvStream;

    fn split(self) -> (SendStream, RecvStream) {
        (self.send, self.recv)
    }
}

impl quic::RecvStream for BidiStream {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        self.recv.poll_data(cx)
    }

    fn stop_sending(&mut self, error_code: u64) {
        self.recv.stop_sending(error_code);
    }

    fn recv_id(&self) -> StreamId {
        self.recv.recv_id()
    }
}

impl<B: Buf> quic::SendStream<B> for BidiStream {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        <SendStream as quic::SendStream<B>>::poll_ready(&mut self.send, cx)
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        self.send.send_data(data)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        <SendStream as quic::SendStream<B>>::poll_finish(&mut self.send, cx)
    }

    fn reset(&mut self, reset_code: u64) {
        <SendStream as quic::SendStream<B>>::reset(&mut self.send, reset_code);
    }

    fn send_id(&self) -> StreamId {
        <SendStream as quic::SendStream<B>>::send_id(&self.send)
    }
}

/// Receiving half: quinn's chunks as they arrive.
pub struct RecvStream {
    stream: quinn::RecvStream,
}

impl RecvStream {
    fn new(stream: quinn::RecvStream) -> RecvStream {
        RecvStream { stream }
    }
}

impl quic::RecvStream for RecvStream {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        // `read_chunk` keeps no state between polls, so a fresh future per
        // poll loses nothing.
        let chunk = ready!(pin!(self.stream.read_chunk(usize::MAX, true)).poll(cx));
        Poll::Ready(chunk.map(|c| c.map(|c| c.bytes)).map_err(read_error))
    }

    fn stop_sending(&mut self, error_code: u64) {
        let _ = self
            .stream
            .stop(VarInt::from_u64(error_code).unwrap_or(VarInt::MAX));
    }

    fn recv_id(&self) -> StreamId {
        stream_id(self.stream.id())
    }
}

/// Sending half: frames queued as shared chunks, written with
/// `write_chunks`.
pub struct SendStream {
    stream: quinn::SendStream,
    pending: Vec<Bytes>,
    sidecar: Option<Arc<Sidecar>>,
}

impl SendStream {
    fn new(stream: quinn::SendStream, sidecar: Option<Arc<Sidecar>>) -> SendStream {
        SendStream {
            stream,
            pending: Vec::with_capacity(2),
            sidecar,
        }
    }

    fn send_data<B: Buf, T: Into<WriteBuf<B>>>(
        &mut self,
        data: T,
    ) -> Result<(), StreamErrorIncoming> {
        if !self.pending.is_empty() {
            return Err(StreamErrorIncoming::ConnectionErrorIncoming {
                connection_error: ConnectionErrorIncoming::InternalError(
                    "send_data while a frame is still being written".into(),
                ),
            });
        }
        if let Some(order) = self.sidecar.as_ref().and_then(|c| c.take_order()) {
            let _ = self.stream.set_priority(order);
        }
        let mut buf: WriteBuf<B> = data.into();
        while buf.has_remaining() {
            let slice = buf.chunk();
            let len = slice.len();
            let chunk = self
                .sidecar
                .as_ref()
                .and_then(|c| c.take_matching(slice))
                .unwrap_or_else(|| Bytes::copy_from_slice(slice));
            self.pending.push(chunk);
            buf.advance(len);
        }
        Ok(())
    }
}

impl<B: Buf> quic::SendStream<B> for SendStream {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        while !self.pending.is_empty() {
            // Cancellation safe: a write that does not complete wrote nothing.
            let written = ready!(pin!(self.stream.write_chunks(&mut self.pending)).poll(cx))
                .map_err(write_error)?;
            self.pending.drain(..written.chunks);
            self.pending.retain(|c| !c.is_empty());
        }
        Poll::Ready(Ok(()))
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        SendStream::send_data(self, data)
    }

    fn poll_finish(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        Poll::Ready(
            self.stream
                .finish()
                .map_err(|e| StreamErrorIncoming::Unknown(Box::new(e))),
        )
    }

    fn reset(&mut self, reset_code: u64) {
        let _ = self
            .stream
            .reset(VarInt::from_u64(reset_code).unwrap_or(VarInt::MAX));
    }

    fn send_id(&self) -> StreamId {
        stream_id(self.stream.id())
    }
}

/// quinn's stream id as `h3`'s.
fn stream_id(id: quinn::StreamId) -> StreamId {
    // Both are the QUIC stream id, a varint below 2^62: in range by
    // construction, so this cannot fail.
    #[allow(clippy::expect_used)]
    StreamId::try_from(VarInt::from(id).into_inner()).expect("a QUIC stream id is a varint")
}

fn closed() -> ConnectionErrorIncoming {
    ConnectionErrorIncoming::InternalError("connection closed".into())
}

fn connection_error(e: quinn::ConnectionError) -> ConnectionErrorIncoming {
    match e {
        quinn::ConnectionError::ApplicationClosed(close) => {
            ConnectionErrorIncoming::ApplicationClose {
                error_code: close.error_code.into_inner(),
            }
        }
        quinn::ConnectionError::TimedOut => ConnectionErrorIncoming::Timeout,
        other => ConnectionErrorIncoming::Undefined(Arc::new(other)),
    }
}

fn read_error(e: quinn::ReadError) -> StreamErrorIncoming {
    match e {
        quinn::ReadError::Reset(code) => StreamErrorIncoming::StreamTerminated {
            error_code: code.into_inner(),
        },
        quinn::ReadError::ConnectionLost(e) => StreamErrorIncoming::ConnectionErrorIncoming {
            connection_error: connection_error(e),
        },
        other => StreamErrorIncoming::Unknown(Box::new(other)),
    }
}

fn write_error(e: quinn::WriteError) -> StreamErrorIncoming {
    match e {
        quinn::WriteError::Stopped(code) => StreamErrorIncoming::StreamTerminated {
            error_code: code.into_inner(),
        },
        quinn::WriteError::ConnectionLost(e) => StreamErrorIncoming::ConnectionErrorIncoming {
            connection_error: connection_error(e),
        },
        other => StreamErrorIncoming::Unknown(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offered_buffer_is_taken_only_for_its_own_memory() {
        let car = Sidecar::default();
        let body = Bytes::from(vec![7u8; 4096]);
        car.offer(&body);
        // A frame header (other memory) leaves the offer in place ...
        assert!(car.take_matching(&[0u8, 3]).is_none());
        // ... as does a slice of the same memory that is not all of it.
        assert!(car.take_matching(&body[..100]).is_none());
        let taken = car.take_matching(&body).expect("the body itself");
        assert_eq!(taken.as_ptr(), body.as_ptr(), "shared, not copied");
        assert!(car.take_matching(&body).is_none(), "taken once");
    }

    #[test]
    fn sidecars_are_found_by_stream_id_once_and_die_with_their_stream() {
        let cars = Sidecars::default();
        let id = |n: u64| StreamId::try_from(n).expect("id");
        let kept = cars.register(4);
        let dropped = cars.register(8);
        drop(dropped);
        assert!(cars.take(id(8)).is_none(), "its stream is gone");
        let found = cars.take(id(4)).expect("registered");
        assert!(Arc::ptr_eq(&found, &kept));
        assert!(cars.take(id(4)).is_none(), "taken once");
        // Dead entries do not accumulate.
        for n in 0..(PRUNE_AT as u64 * 3) {
            drop(cars.register(n * 4));
        }
        let len = cars.0.lock().expect("lock").len();
        assert!(len <= PRUNE_AT, "{len} entries kept");
    }

    #[test]
    fn the_send_order_is_handed_over_once() {
        let car = Sidecar::default();
        assert_eq!(car.take_order(), None);
        car.set_order(6);
        assert_eq!(car.take_order(), Some(6));
        assert_eq!(car.take_order(), None);
    }
}
