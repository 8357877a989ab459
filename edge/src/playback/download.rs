//! `download.mp4` through the edge: relayed, not cached.
//!
//! A recording's progressive MP4 is the whole recording in one object
//! (hundreds of megabytes for an hour), asked for in byte ranges by
//! `<video>` and download managers. Caching it whole would evict every
//! live part from memory for one viewer, and caching each range would
//! store the same bytes many times over; the segments the MP4 is made of
//! are what the cache (and its disk tier) keeps. So the request goes
//! upstream with its `Range` and the answer streams back as it comes,
//! bounded by HTTP flow control, never buffered whole.

use crate::error::EdgeError;
use crate::serve::{Body, BoxError};
use crate::state::Edge;
use http::{header, HeaderMap, Request, Response};
use http_body_util::BodyExt;
use std::time::Duration;

/// Request headers passed upstream.
const FORWARDED: [header::HeaderName; 2] = [header::RANGE, header::IF_RANGE];

/// Response headers passed back.
const RETURNED: [header::HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CACHE_CONTROL,
    header::ETAG,
    header::LAST_MODIFIED,
    header::HeaderName::from_static(livecdn_shared::auth::playback::ACCESS_HEADER),
];

/// Relays `path_and_query` (the cache key's form: no token) upstream with
/// the client's range.
pub(super) async fn relay(
    edge: &Edge,
    req: &Request<()>,
    stream: &str,
    path_and_query: &str,
) -> Result<Response<Body>, EdgeError> {
    let mut forward = HeaderMap::new();
    for name in FORWARDED {
        if let Some(v) = req.headers().get(&name) {
            forward.insert(name, v.clone());
        }
    }
    let fetched = edge
        .upstreams
        .fetch_with(stream, path_and_query, Duration::ZERO, &forward)
        .await
        .map_err(|e| EdgeError::Upstream(e.to_string()))?;
    edge.metrics.upstream.record(fetched.latency);
    let status = fetched.response.status();
    edge.metrics
        .upstream_fetch(&fetched.upstream.base, status.as_u16());
    let (parts, body) = fetched.response.into_parts();
    let body: Body = body.map_err(|e| Box::new(e) as BoxError).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for name in RETURNED {
        if let Some(v) = parts.headers.get(&name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    resp.headers_mut()
        .insert("x-cache", http::HeaderValue::from_static("PASS"));
    Ok(resp)
}
