//! Response bodies: whole objects, and objects streamed as they grow. Both
//! hand out the window's `Bytes` (reference counted), never copies.

use bytes::Bytes;
use futures::Stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body of several `Bytes` sent one after another without joining them.
pub fn chunks(parts: Vec<Bytes>) -> Body {
    streaming(futures::stream::iter(parts.into_iter().map(Ok)))
}

/// A body fed by a stream; an `Err` aborts the response (the client sees a
/// broken transfer rather than a silently truncated object).
pub fn streaming<S>(s: S) -> Body
where
    S: Stream<Item = Result<Bytes, BoxError>> + Send + 'static,
{
    use futures::StreamExt;
    StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync()
}
