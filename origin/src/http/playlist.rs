//! Playlists: the multivariant playlist and LL-HLS media playlists with
//! blocking reload (RFC 8216bis 6.2.5.2) and delta updates (6.2.5.1).

use super::body::{self, Body};
use super::HttpError;
use crate::packager::{Packager, AUDIO, SOURCE};
use crate::registry::StreamHub;
use crate::transcode::TranscodeState;
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use livecdn_shared::playlist::{
    AudioRendition, BlockingDirective as Directive, HlsQuery, MultivariantPlaylist, Variant,
};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a check of the window under the lock decided.
pub enum Check<T> {
    Ready(T),
    Wait,
    Fail(HttpError),
}

/// Re-checks `check` after every window change until it is ready, fails,
/// or `timeout` passes (503 with Retry-After).
pub async fn wait_for<T>(
    hub: &StreamHub,
    timeout: Duration,
    mut check: impl FnMut(&Packager) -> Check<T>,
) -> Result<T, HttpError> {
    let mut rx = hub.subscribe();
    let deadline = Instant::now() + timeout;
    let mut held = false;
    loop {
        rx.borrow_and_update();
        match hub.read(&mut check) {
            Check::Ready(t) => return Ok(t),
            Check::Fail(e) => return Err(e),
            Check::Wait => {}
        }
        if !held {
            held = true;
            tracing::debug!(stream = %hub.name(), "request held");
        }
        // Shutting down: a clean 503 now lets the player retry elsewhere.
        if hub.is_draining() {
            return Err(HttpError::Unavailable {
                retry_after: Duration::from_secs(1),
            });
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(HttpError::NotFound("stream is gone")),
            Err(_) => {
                return Err(HttpError::Unavailable {
                    retry_after: Duration::from_secs(1),
                })
            }
        }
    }
}

pub fn hub(state: &OriginState, stream: &str) -> Result<Arc<StreamHub>, HttpError> {
    state
        .registry
        .get(stream)
        .ok_or(HttpError::NotFound("no such stream"))
}

/// A playlist response, gzip-compressed when the client accepts it.
fn playlist_response(text: String, gzip: bool, max_age: u64) -> Response<Body> {
    text_response(text, "application/vnd.apple.mpegurl", gzip, max_age)
}

/// A manifest (`content_type`), gzip-compressed when the client accepts it,
/// fresh for `max_age` seconds.
pub fn text_response(
    text: String,
    content_type: &'static str,
    gzip: bool,
    max_age: u64,
) -> Response<Body> {
    let mut encoded = None;
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(text.len() / 3),
            flate2::Compression::fast(),
        );
        if enc.write_all(text.as_bytes()).is_ok() {
            encoded = enc.finish().ok();
        }
    }
    let compressed = encoded.is_some();
    let bytes = encoded.map_or_else(|| Bytes::from(text), Bytes::from);
    let mut resp = Response::new(body::full(bytes));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if compressed {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// `/live/STREAM/RENDITION/index.m3u8[?_HLS_msn=..&_HLS_part=..&_HLS_skip=..]`
pub async fn media(
    state: &OriginState,
    stream: &str,
    rendition: &str,
    query: &str,
    gzip: bool,
) -> Result<Response<Body>, HttpError> {
    let hub = hub(state, stream)?;
    let q = HlsQuery::parse(query).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let target = hub.read(|p| p.target_duration());
    if let Some(msn) = q.msn {
        let part = match q.part {
            Some(p) => Some(
                u32::try_from(p)
                    .map_err(|_| HttpError::BadRequest("_HLS_part too large".into()))?,
            ),
            None => None,
        };
        wait_for(&hub, Duration::from_secs(3 * target), |p| {
            let Some(t) = p.playlist_track(rendition) else {
                return Check::Fail(HttpError::NotFound("no such rendition"));
            };
            let directive = Directive {
                msn,
                part,
                part_target: p.part_target_of(rendition),
            };
            if let Err(e) = directive.check(
                t.last_listed_msn().unwrap_or(t.next_msn()),
                t.last_complete_part(),
            ) {
                return Check::Fail(HttpError::BadRequest(e.to_string()));
            }
            if p.is_ended() || t.satisfies(msn, part) {
                Check::Ready(())
            } else {
                Check::Wait
            }
        })
        .await?;
    }
    // DVR: the recording reaches further back than memory; the delta
    // update is then taken over the whole list. (The names are read
    // first: the recorder's catalog is never locked under the stream's.)
    let dvr = state.recorder.as_ref().and_then(|r| {
        let names: Vec<String> = hub.read(|p| p.tracks().map(|t| t.name.clone()).collect());
        r.dvr(stream, names.iter().map(String::as_str))
    });
    let recorded = dvr
        .as_ref()
        .and_then(|(rec, window)| Some((rec.rendition(rendition)?, *window)));
    let dvr_on = recorded.is_some();
    let playlist = match recorded {
        Some((recorded, window)) => {
            let mut pl = hub
                .read(|p| p.media_playlist(rendition, None))
                .ok_or(HttpError::NotFound("no such rendition"))?;
            crate::record::dvr::extend(&mut pl, recorded, window, q.skip);
            pl
        }
        None => hub
            .read(|p| p.media_playlist(rendition, q.skip))
            .ok_or(HttpError::NotFound("no such rendition"))?,
    };
    // Blocking responses name one playlist version forever: cacheable for
    // six target durations (RFC 8216bis appendix B). Plain ones go stale
    // with the next part.
    let max_age = if q.is_blocking() { 6 * target } else { 1 };
    let mut resp = playlist_response(playlist.to_string(), gzip, max_age);
    if dvr_on {
        resp.headers_mut().insert(
            livecdn_shared::push::PULL_PLAYLISTS_HEADER,
            HeaderValue::from_static("1"),
        );
    }
    Ok(resp)
}

/// `/live/STREAM/master.m3u8`: waits briefly for the first part of every
/// rendition (the source, the audio and each rung the transcoder planned),
/// since a player reads the multivariant playlist once: a rung missing from
/// it is never played. After the wait it lists what is ready.
pub async fn master(
    state: &OriginState,
    stream: &str,
    gzip: bool,
) -> Result<Response<Body>, HttpError> {
    let hub = hub(state, stream)?;
    let target = hub.read(|p| p.target_duration());
    let transcoding = state.transcode.enabled;
    let full = wait_for(&hub, Duration::from_secs(3 * target), |p| {
        if base_ready(p) && rungs_ready(&hub, p, transcoding) {
            Check::Ready(multivariant(p))
        } else {
            Check::Wait
        }
    })
    .await;
    let playlist = match full {
        Ok(pl) => pl,
        Err(HttpError::Unavailable { .. }) if hub.read(base_ready) => {
            tracing::info!(
                stream,
                "master playlist lists only the renditions that are ready"
            );
            hub.read(multivariant)
        }
        Err(e) => return Err(e),
    };
    Ok(playlist_response(playlist.to_string(), gzip, 2))
}

/// The source and the audio (whatever the publisher sends) have media, so
/// CODECS and the audio group describe what will really play.
fn base_ready(p: &Packager) -> bool {
    let mut tracks = [p.track(SOURCE), p.track(AUDIO)]
        .into_iter()
        .flatten()
        .peekable();
    tracks.peek().is_some() && tracks.all(|t| t.last_complete_part().is_some())
}

/// Every rung the transcoder planned has a part (or is down), and the
/// transcoder has planned (it waits for the source's first segment).
fn rungs_ready(hub: &StreamHub, p: &Packager, transcoding: bool) -> bool {
    // No video (yet, or at all): nothing to transcode.
    if !transcoding || p.video_config().is_none() {
        return true;
    }
    let status = hub.transcode_status();
    match status.state {
        TranscodeState::Off => true,
        TranscodeState::Waiting => false,
        TranscodeState::Running | TranscodeState::Restarting => status.rungs.iter().all(|r| {
            p.rung_is_down(&r.name)
                || p.track(&r.name)
                    .is_some_and(|t| t.last_complete_part().is_some())
        }),
    }
}

/// One variant per video rendition (the source and every rung with media),
/// highest bandwidth first, each with its own measured BANDWIDTH (plus the
/// audio's), its own SPS's CODECS and its RESOLUTION; the audio rendition
/// is shared.
fn multivariant(p: &Packager) -> MultivariantPlaylist {
    let audio = p.track(AUDIO).filter(|t| t.last_complete_part().is_some());
    let (audio_peak, audio_avg) = audio.and_then(|t| t.bandwidth()).unwrap_or((0, 0));
    let audio_codec = p.audio_config().map(|a| a.codec_string());
    let mut out = MultivariantPlaylist {
        independent_segments: true,
        variants: Vec::new(),
        audio: Vec::new(),
    };
    let videos = std::iter::once(SOURCE)
        .chain(p.rung_names())
        .filter_map(|name| {
            let track = p.track(name)?;
            let vc = p.video_config_of(name)?;
            track.last_complete_part()?;
            Some((name, track, vc))
        });
    for (name, track, vc) in videos {
        let (peak, avg) = track.bandwidth().unwrap_or_else(|| {
            let b = if name == SOURCE {
                p.health().bitrate_bps_estimate()
            } else {
                0
            };
            (b, b)
        });
        let codecs = match (&audio_codec, audio) {
            (Some(a), Some(_)) => format!("{},{a}", vc.codec_string()),
            _ => vc.codec_string(),
        };
        out.variants.push(Variant {
            uri: format!("{name}/index.m3u8"),
            bandwidth: peak + audio_peak,
            average_bandwidth: Some(avg + audio_avg),
            codecs,
            resolution: Some((vc.width, vc.height)),
            frame_rate: vc.frame_rate.or_else(|| track.measured_frame_rate()),
            audio_group: audio.map(|_| "audio".to_string()),
            name: Some(name.to_string()),
        });
    }
    out.variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
    if out.variants.is_empty() {
        if let (Some(_), Some(codec)) = (audio, audio_codec) {
            out.variants.push(Variant {
                uri: format!("{AUDIO}/index.m3u8"),
                bandwidth: audio_peak,
                average_bandwidth: Some(audio_avg),
                codecs: codec,
                resolution: None,
                frame_rate: None,
                audio_group: None,
                name: Some(AUDIO.to_string()),
            });
        }
    } else if let (Some(_), Some(ac)) = (audio, p.audio_config()) {
        out.audio.push(AudioRendition {
            group_id: "audio".to_string(),
            name: "audio".to_string(),
            uri: format!("{AUDIO}/index.m3u8"),
            default: true,
            autoselect: true,
            channels: Some(ac.channels),
            language: None,
        });
    }
    out
}
