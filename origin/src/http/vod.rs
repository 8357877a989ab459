//! `/vod/STREAM/RECORDING/...` and `/api/recordings`: recordings served
//! from disk. Playlists come from the recording's index; init sections,
//! segments and `download.mp4` from its files, with single byte ranges
//! (`Range: bytes=...`, 206) so that players and `<video>` can seek.

use super::api;
use super::body::{self, Body, BoxError};
use super::playlist::text_response;
use super::HttpError;
use crate::record::index::Recording;
use crate::record::info::RecordingInfo;
use crate::record::journal::MediaKind;
use crate::record::mp4::Layout;
use crate::record::{vod, Recorder};
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use livecdn_shared::route::{MediaFile, MediaPath, VodObject};
use serde::Serialize;
use std::ops::Range;
use std::sync::Arc;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn recorder(state: &OriginState) -> Result<&Arc<Recorder>, HttpError> {
    state
        .recorder
        .as_ref()
        .ok_or(HttpError::NotFound("recording is off"))
}

fn recording(state: &OriginState, stream: &str, id: &str) -> Result<Arc<Recording>, HttpError> {
    recorder(state)?
        .get(stream, id)
        .ok_or(HttpError::NotFound("no such recording"))
}

/// `/vod/STREAM/RECORDING/OBJECT`.
pub async fn serve(
    state: &OriginState,
    req: &http::request::Parts,
    stream: &str,
    id: &str,
    object: VodObject<'_>,
    gzip: bool,
) -> Result<Response<Body>, HttpError> {
    let rec = recording(state, stream, id)?;
    // A finished recording never changes; one being written gains segments.
    let max_age = if rec.state.is_final() { 3600 } else { 1 };
    let range = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match object {
        VodObject::Master => {
            let m = vod::master(&rec).ok_or(HttpError::NotFound("nothing recorded yet"))?;
            Ok(playlist(m.render(), gzip, max_age))
        }
        VodObject::Media(MediaPath { rendition, file }) => {
            let r = rec
                .rendition(rendition)
                .ok_or(HttpError::NotFound("no such rendition"))?;
            let content_type = match r.meta.kind {
                MediaKind::Audio => "audio/mp4",
                MediaKind::Video => "video/mp4",
            };
            let rec_ = recorder(state)?;
            let paths = rec_.paths(stream, id);
            match file {
                MediaFile::Playlist => {
                    let p = vod::media(&rec, rendition)
                        .ok_or(HttpError::NotFound("no such rendition"))?;
                    Ok(playlist(p.render(), gzip, max_age))
                }
                MediaFile::Init { gen } => {
                    if !r.inits.contains(&gen) {
                        return Err(HttpError::NotFound("no such init section"));
                    }
                    file_response(rec_, paths.init(rendition, gen), content_type, range).await
                }
                MediaFile::Segment { msn } => {
                    if !r.segments.iter().any(|s| s.msn == msn) {
                        return Err(HttpError::NotFound("no such segment"));
                    }
                    file_response(rec_, paths.segment(rendition, msn), content_type, range).await
                }
                MediaFile::Part { .. } => Err(HttpError::NotFound("recordings have no parts")),
            }
        }
        VodObject::Download => {
            // One file of a recording still growing would be stale at once
            // and cost a read of everything so far: finished ones only.
            if !rec.state.is_final() {
                return Err(HttpError::Conflict(
                    "still recording: download.mp4 is made once it ends".to_string(),
                ));
            }
            let rec_ = recorder(state)?;
            let layout = rec_.layout(&rec).await.map_err(|e| {
                tracing::warn!(%stream, recording = %id, error = %e, "no mp4 for this recording");
                HttpError::NotFound("no mp4 for this recording")
            })?;
            Ok(download(
                rec_.clone(),
                layout,
                range,
                stream,
                id,
                rec.state.is_final(),
            )?)
        }
    }
}

fn playlist(text: String, gzip: bool, max_age: u64) -> Response<Body> {
    text_response(text, "application/vnd.apple.mpegurl", gzip, max_age)
}

/// The byte range a `Range` header asks of `size` bytes: `None` for the
/// whole object (no header, a syntax it ignores, or several ranges).
fn byte_range(range: Option<&str>, size: u64) -> Result<Option<Range<u64>>, HttpError> {
    let Some(text) = range else {
        return Ok(None);
    };
    let Ok(parsed) = http_range_header::parse_range_header(text) else {
        return Ok(None);
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => Ok(ranges
            .first()
            .map(|r| *r.start()..r.end().saturating_add(1))),
        Ok(_) => Ok(None),
        Err(_) => Err(HttpError::RangeNotSatisfiable { size }),
    }
}

/// Headers of a whole (200) or partial (206) answer.
fn media_head(
    content_type: &'static str,
    size: u64,
    range: &Option<Range<u64>>,
    cache: &'static str,
    body: Body,
) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match range {
        Some(r) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "bytes {}-{}/{size}",
                r.start,
                r.end.saturating_sub(1)
            )) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        None => {
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    resp
}

/// A recorded file, whole or a range of it.
pub(super) async fn file_response(
    rec: &Recorder,
    path: std::path::PathBuf,
    content_type: &'static str,
    range: Option<&str>,
) -> Result<Response<Body>, HttpError> {
    let data = rec.disk().read(&path, 0, None).await.map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "recorded file not readable");
        if e.is_not_found() {
            HttpError::NotFound("file gone")
        } else {
            HttpError::Internal("disk read failed")
        }
    })?;
    let size = data.len() as u64;
    let range = byte_range(range, size)?;
    let body = match &range {
        Some(r) => data.slice(r.start as usize..r.end as usize),
        None => data,
    };
    Ok(media_head(
        content_type,
        size,
        &range,
        IMMUTABLE,
        body::full(body),
    ))
}

/// `download.mp4`: streamed piece by piece, one segment file in memory at
/// a time.
fn download(
    rec: Arc<Recorder>,
    layout: Arc<Layout>,
    range: Option<&str>,
    stream: &str,
    id: &str,
    final_: bool,
) -> Result<Response<Body>, HttpError> {
    let size = layout.size;
    let wanted = byte_range(range, size)?;
    let r = wanted.clone().unwrap_or(0..size);
    let span = layout.span(r.start, r.end);
    let s = futures::stream::unfold(span.into_iter(), move |mut it| {
        let (rec, layout) = (rec.clone(), layout.clone());
        async move {
            let (i, skip, take) = it.next()?;
            let item = match layout.pieces[i].read(rec.disk()).await {
                Ok(slices) => Ok(cut(slices, skip, take)),
                Err(e) => Err(Box::new(e) as BoxError),
            };
            Some((item, it))
        }
    });
    use futures::StreamExt;
    let s = s.flat_map(|r: Result<Vec<Bytes>, BoxError>| {
        futures::stream::iter(match r {
            Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
    });
    let cache = if final_ { IMMUTABLE } else { "no-cache" };
    let mut resp = media_head("video/mp4", size, &wanted, cache, body::streaming(s));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{stream}-{id}.mp4\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Bytes `skip..skip+take` of slices laid end to end (slicing, not copying).
fn cut(slices: Vec<Bytes>, mut skip: u64, mut take: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    for b in slices {
        let len = b.len() as u64;
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = take.min(len - skip);
        out.push(b.slice(skip as usize..(skip + n) as usize));
        take -= n;
        skip = 0;
        if take == 0 {
            break;
        }
    }
    out
}

/// The list and its totals.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    recordings: Vec<RecordingInfo>,
    total_bytes: u64,
    /// Which disk path recordings use: `io_uring` or `std`.
    io: &'static str,
    dir: String,
}

/// `GET /api/recordings[?stream=NAME]`.
pub fn list(state: &OriginState, query: &str) -> Result<Response<Body>, HttpError> {
    let rec = recorder(state)?;
    let only = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("stream="))
        .filter(|s| !s.is_empty());
    let recordings: Vec<RecordingInfo> = rec
        .list()
        .iter()
        .filter(|r| only.is_none_or(|s| r.meta.stream == s))
        .map(|r| RecordingInfo::of(r, rec.root()))
        .collect();
    Ok(api::json(&Listing {
        total_bytes: recordings.iter().map(|r| r.bytes).sum(),
        recordings,
        io: rec.disk().backend().as_str(),
        dir: crate::record::display_dir(rec.root()).display().to_string(),
    }))
}

/// `GET` or `DELETE /api/recordings/STREAM/RECORDING`.
pub async fn one(
    state: &OriginState,
    method: &Method,
    stream: &str,
    id: &str,
) -> Result<Response<Body>, HttpError> {
    let rec = recorder(state)?;
    match *method {
        Method::GET | Method::HEAD => Ok(api::json(&RecordingInfo::of(
            &*recording(state, stream, id)?,
            rec.root(),
        ))),
        Method::DELETE => match rec.delete(stream, id).await {
            Ok(true) => Ok(api::text(StatusCode::NO_CONTENT, "")),
            Ok(false) => Err(HttpError::NotFound("no such recording")),
            Err(crate::record::DeleteError::Recording) => Err(HttpError::Conflict(
                "the recording is still being written".to_string(),
            )),
            Err(e) => {
                tracing::warn!(%stream, recording = %id, error = %e, "delete failed");
                Err(HttpError::Internal("delete failed"))
            }
        },
        _ => Err(HttpError::MethodNotAllowed),
    }
}
