//! Response bodies served from cached objects, and the task that fills an
//! object from its upstream response. Everything handed out is the cached
//! `Bytes` (reference counts), except the one gzip made per playlist.

use crate::cache::CachedObject;
use crate::serve::{Body, BoxError};
use bytes::Bytes;
use http::header;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;

/// Copies an upstream body into the cached object as it arrives. Runs on
/// its own task so the fill completes for the followers even if the
/// request that started it goes away.
pub async fn pump(mut body: hyper::body::Incoming, object: Arc<CachedObject>) {
    let idle = Duration::from_secs(15);
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() && object.body.append(data).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {
                object.body.finish();
                return;
            }
            Ok(Some(Err(e))) => {
                object.body.fail(format!("upstream body: {e}"));
                return;
            }
            Err(_) => {
                object.body.fail("upstream body stalled".to_string());
                return;
            }
        }
    }
}

/// The object's body gzip-compressed, made once per object and shared by
/// every request that accepts gzip. None if it was already encoded upstream.
pub fn gzip_once(object: &CachedObject, chunks: &[Bytes]) -> Option<Bytes> {
    if object.headers.contains_key(header::CONTENT_ENCODING) {
        return None;
    }
    let gz = object.gzipped.get_or_init(|| {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for c in chunks {
            if enc.write_all(c).is_err() {
                return Bytes::new();
            }
        }
        enc.finish().map(Bytes::from).unwrap_or_default()
    });
    (!gz.is_empty()).then(|| gz.clone())
}

/// A body of known chunks: each `poll_frame` hands out the next one at
/// once, with an exact size hint (so HTTP/1.1 sends Content-Length).
struct ChunksBody {
    chunks: Arc<[Bytes]>,
    next: usize,
    remaining: u64,
}

impl hyper::body::Body for ChunksBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        let next = self.chunks.get(self.next).cloned();
        if let Some(b) = &next {
            self.next += 1;
            self.remaining = self.remaining.saturating_sub(b.len() as u64);
        }
        std::task::Poll::Ready(next.map(|b| Ok(hyper::body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

pub fn chunks_body(chunks: Arc<[Bytes]>, len: u64) -> Body {
    ChunksBody {
        chunks,
        next: 0,
        remaining: len,
    }
    .boxed_unsync()
}

pub fn object_body(object: Arc<CachedObject>, idle: Duration) -> Body {
    let reader = object.body.reader();
    let stream = futures::stream::unfold(reader, move |mut r| async move {
        match r.next(idle).await {
            Some(Ok(b)) => Some((Ok(hyper::body::Frame::data(b)), r)),
            Some(Err(e)) => Some((Err(Box::new(e) as BoxError), r)),
            None => None,
        }
    });
    http_body_util::StreamBody::new(stream).boxed_unsync()
}

pub fn full(b: Bytes) -> Body {
    http_body_util::Full::new(b)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}
