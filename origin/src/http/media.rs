//! Init segments, segments and parts. A part that is still being produced
//! (the preload-hinted one) is answered at once and streamed chunk by chunk
//! as the packager appends frames, so a player gets each frame as soon as
//! the origin has it.

use super::body::{self, Body, BoxError};
use super::playlist::{hub, wait_for, Check};
use super::HttpError;
use crate::packager::PartLookup;
use crate::registry::StreamHub;
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use std::sync::Arc;
use std::time::Duration;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn media_response(content_type: &'static str, len: Option<usize>, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    resp
}

fn content_type(hub: &StreamHub, rendition: &str) -> &'static str {
    hub.read(|p| p.content_type(rendition))
}

/// `init.mp4` / `init-G.mp4`; a generation memory no longer holds comes
/// from the recording (DVR).
pub async fn init(
    state: &OriginState,
    stream: &str,
    rendition: &str,
    gen: u32,
) -> Result<Response<Body>, HttpError> {
    let hub = hub(state, stream)?;
    let Some(bytes) = hub.read(|p| p.init(rendition, gen)) else {
        let ctype = content_type(&hub, rendition);
        return recorded(state, stream, rendition, ctype, Recorded::Init(gen)).await;
    };
    let len = bytes.len();
    Ok(media_response(
        content_type(&hub, rendition),
        Some(len),
        body::full(bytes),
    ))
}

/// `MSN.m4s`: complete segments are served whole; the segment in progress
/// is streamed like a part, and the next one is held until it starts.
pub async fn segment(
    state: &OriginState,
    stream: &str,
    rendition: &str,
    msn: u64,
) -> Result<Response<Body>, HttpError> {
    let hub = hub(state, stream)?;
    // Older than memory's window: from the recording (DVR).
    let oldest = hub.read(|p| {
        p.track(rendition)
            .and_then(|t| t.segments().front().map(|s| s.msn))
    });
    if oldest.is_some_and(|first| msn < first) {
        let ctype = content_type(&hub, rendition);
        return recorded(state, stream, rendition, ctype, Recorded::Segment(msn)).await;
    }
    let name = rendition.to_string();
    growing(hub, rendition, move |p, from| {
        let Some(t) = p.track(&name) else {
            return PartLookup::Gone;
        };
        match t.segment(msn) {
            // EXT-X-GAP: listed, never served.
            Some(s) if s.gap.is_some() => PartLookup::Gone,
            Some(s) => {
                let chunks: Vec<Bytes> = s.body().into_iter().skip(from).collect();
                PartLookup::Available {
                    chunks,
                    complete: s.complete,
                }
            }
            // The next segment, asked for a little early (an LL-DASH
            // client does, at its availability time): held until it starts,
            // then streamed as it is produced.
            None if msn == t.next_msn() && t.segments().front().is_some() => PartLookup::Upcoming,
            None if msn > t.next_msn() => PartLookup::TooFarAhead,
            None => PartLookup::Gone,
        }
    })
    .await
}

/// What [`recorded`] serves.
enum Recorded {
    Init(u32),
    Segment(u64),
}

/// A live URL's file from the recording being written, where DVR is on
/// and the recording has it.
async fn recorded(
    state: &OriginState,
    stream: &str,
    rendition: &str,
    content_type: &'static str,
    what: Recorded,
) -> Result<Response<Body>, HttpError> {
    let gone = HttpError::NotFound("not in the live window");
    let Some(recorder) = &state.recorder else {
        return Err(gone);
    };
    let Some((rec, _)) = recorder.dvr(stream, std::iter::empty()) else {
        return Err(gone);
    };
    let Some(r) = rec.rendition(rendition) else {
        return Err(gone);
    };
    let paths = recorder.paths(stream, &rec.meta.id);
    let path = match what {
        Recorded::Init(gen) if r.inits.contains(&gen) => paths.init(rendition, gen),
        Recorded::Segment(msn) if r.segments.iter().any(|s| s.msn == msn) => {
            paths.segment(rendition, msn)
        }
        _ => return Err(gone),
    };
    super::vod::file_response(recorder, path, content_type, None).await
}

/// `MSN.PART.m4s`
pub async fn part(
    state: &OriginState,
    stream: &str,
    rendition: &str,
    msn: u64,
    index: u32,
) -> Result<Response<Body>, HttpError> {
    let hub = hub(state, stream)?;
    let name = rendition.to_string();
    growing(hub, rendition, move |p, from| match p.track(&name) {
        Some(t) => t.lookup_part(msn, index, from),
        None => PartLookup::Gone,
    })
    .await
}

/// Serves an object that may still be growing. `look(packager, from)`
/// returns the chunks after the first `from`.
async fn growing<F>(
    hub: Arc<StreamHub>,
    rendition: &str,
    look: F,
) -> Result<Response<Body>, HttpError>
where
    F: Fn(&crate::packager::Packager, usize) -> PartLookup + Send + Sync + 'static,
{
    let ctype = content_type(&hub, rendition);
    let target = Duration::from_secs(hub.read(|p| p.target_duration()));
    // Hold a request for an upcoming part until its first chunk exists.
    let (first, complete) = wait_for(&hub, 3 * target, |p| match look(p, 0) {
        PartLookup::Available { chunks, complete } if !chunks.is_empty() || complete => {
            Check::Ready((chunks, complete))
        }
        PartLookup::Available { .. } | PartLookup::Upcoming => Check::Wait,
        PartLookup::Gone => Check::Fail(HttpError::NotFound("not in the live window")),
        PartLookup::TooFarAhead => {
            Check::Fail(HttpError::NotFound("too far ahead of the live edge"))
        }
    })
    .await?;
    if complete {
        let len = first.iter().map(Bytes::len).sum();
        return Ok(media_response(ctype, Some(len), body::chunks(first)));
    }
    // Stream the rest as it is produced. Each step waits for the next window
    // change, bounded so a publisher that vanishes cannot hold us forever.
    // Every `Bytes` goes out as its own body frame: shared, never copied.
    let state = Streaming {
        queue: first.into(),
        sent: 0,
        rx: hub.subscribe(),
        hub,
        look,
        done: false,
    };
    let stream = futures::stream::unfold(state, move |mut st| async move {
        loop {
            if let Some(b) = st.queue.pop_front() {
                st.sent += 1;
                return Some((Ok(b), st));
            }
            if st.done {
                return None;
            }
            st.rx.borrow_and_update();
            match st.hub.read(|p| (st.look)(p, st.sent)) {
                PartLookup::Available { chunks, complete } => {
                    st.queue.extend(chunks);
                    st.done = complete;
                    if !st.queue.is_empty() || complete {
                        continue;
                    }
                }
                _ => {
                    st.done = true;
                    let e: BoxError = "object left the live window while streaming".into();
                    return Some((Err(e), st));
                }
            }
            match tokio::time::timeout(3 * target, st.rx.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    st.done = true;
                    let e: BoxError = "publisher stalled while streaming".into();
                    return Some((Err(e), st));
                }
            }
        }
    });
    Ok(media_response(ctype, None, body::streaming(stream)))
}

struct Streaming<F> {
    queue: std::collections::VecDeque<Bytes>,
    /// Chunks handed out so far (the index to read from next).
    sent: usize,
    rx: tokio::sync::watch::Receiver<u64>,
    hub: Arc<StreamHub>,
    look: F,
    done: bool,
}
