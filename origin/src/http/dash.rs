//! `/live/STREAM/manifest.mpd` (LL-DASH over the HLS segments) and `/time`,
//! the clock the MPD's `UTCTiming` names.

use super::body::{self, Body};
use super::playlist::{hub, text_response, wait_for, Check};
use super::HttpError;
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use std::time::{Duration, SystemTime};

/// The MPD, once the stream has a complete segment (a new stream's first
/// request waits for it, bounded like a blocking reload). It changes as
/// each segment starts (the one in production is listed), so a browser
/// must not reuse it: `max-age=0` (the edge keeps it half a part).
pub async fn manifest(
    state: &OriginState,
    stream: &str,
    gzip: bool,
) -> Result<Response<Body>, HttpError> {
    let hub = hub(state, stream)?;
    let target = hub.read(|p| p.target_duration());
    let mpd = wait_for(&hub, Duration::from_secs(3 * target), |p| {
        match p.manifest(SystemTime::now()) {
            Some(mpd) => Check::Ready(mpd),
            None => Check::Wait,
        }
    })
    .await?;
    Ok(text_response(
        mpd.to_string(),
        "application/dash+xml",
        gzip,
        0,
    ))
}

/// The server's clock as ISO 8601 with milliseconds
/// (`urn:mpeg:dash:utc:http-iso:2014`); never cached.
pub fn time() -> Response<Body> {
    let now = livecdn_shared::dash::format_time(SystemTime::now());
    let mut resp = Response::new(body::full(Bytes::from(now)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
