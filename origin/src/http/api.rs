//! `/api/streams`, `/metrics`, and small text answers.

use super::body::{self, Body};
use super::HttpError;
use crate::packager::Packager;
use crate::registry::StreamHub;
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;
use std::time::Instant;

pub fn text(status: StatusCode, t: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::from_static(t.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn json<T: Serialize>(v: &T) -> Response<Body> {
    json_status(StatusCode::OK, v)
}

pub fn json_status<T: Serialize>(status: StatusCode, v: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = Response::new(body::full(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Serialize)]
struct RenditionInfo {
    name: String,
    kind: &'static str,
    codec: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    last_msn: Option<u64>,
    last_part: Option<u32>,
    window_bytes: usize,
    /// Measured peak and average bits per second over the window.
    bandwidth_peak: Option<u64>,
    bandwidth_average: Option<u64>,
    /// Frames per second and mean segment length (the keyframe interval
    /// segments are cut at), measured over the window.
    fps: Option<f64>,
    segment_seconds: Option<f64>,
    /// Transcoded rungs: "running", "down" (encoder not running: gaps),
    /// how far behind the source (ms), cuts still to make, alignment counters.
    state: &'static str,
    lag_ms: Option<f64>,
    backlog: Option<usize>,
    counters: Option<crate::packager::RungCounters>,
}

#[derive(Serialize)]
struct StreamInfo {
    name: String,
    live: bool,
    ended: bool,
    health: crate::packager::HealthReport,
    renditions: Vec<RenditionInfo>,
    /// Viewers summed over the edges that report over push (`None`: none do).
    viewers: Option<u64>,
    /// WHEP sessions at this origin (`None`: WebRTC is off).
    webrtc_viewers: Option<u64>,
    dropped_frames: u64,
    /// The ABR ladder's encoder: state, planned and skipped rungs, speed,
    /// queue depth, restarts.
    transcode: crate::transcode::TranscodeStatus,
    /// Source frames the encoder's full queue refused.
    transcode_dropped_frames: u64,
}

fn info(state: &OriginState, hub: &StreamHub, now: Instant) -> StreamInfo {
    let viewers = state.push_viewers.total(hub.name(), now);
    let webrtc_viewers = state
        .webrtc
        .get()
        .map(|rtc| rtc.metrics.stream_sessions(hub.name()));
    let transcode = hub.transcode_status();
    let transcode_dropped_frames = hub.feed_dropped.load(std::sync::atomic::Ordering::Relaxed);
    hub.read(|p: &Packager| StreamInfo {
        name: hub.name().to_string(),
        live: p.is_live() && hub.has_publisher(),
        ended: p.is_ended(),
        health: p.health().report(now),
        renditions: p
            .tracks()
            .map(|t| {
                let video = t.name != crate::packager::AUDIO;
                let vc = p.video_config_of(&t.name).filter(|_| video);
                let last = t.last_complete_part();
                let bw = t.bandwidth();
                let rung = video && t.name != crate::packager::SOURCE;
                RenditionInfo {
                    name: t.name.clone(),
                    kind: if video { "video" } else { "audio" },
                    codec: if video {
                        vc.map(|c| c.codec_string())
                    } else {
                        p.audio_config().map(|a| a.codec_string())
                    },
                    width: vc.map(|c| c.width),
                    height: vc.map(|c| c.height),
                    last_msn: last.map(|l| l.0),
                    last_part: last.map(|l| l.1),
                    window_bytes: t.window_bytes(),
                    bandwidth_peak: bw.map(|b| b.0),
                    bandwidth_average: bw.map(|b| b.1),
                    fps: video.then(|| t.measured_frame_rate()).flatten(),
                    segment_seconds: t.mean_segment_seconds(),
                    state: match (rung, p.rung_is_down(&t.name)) {
                        (true, true) => "down",
                        _ => "running",
                    },
                    lag_ms: rung.then(|| p.rung_lag_ms(&t.name)).flatten(),
                    backlog: rung.then(|| p.rung_backlog(&t.name)),
                    counters: rung.then(|| p.rung_counters(&t.name)).flatten(),
                }
            })
            .collect(),
        viewers,
        webrtc_viewers,
        dropped_frames: p.dropped_frames,
        transcode,
        transcode_dropped_frames,
    })
}

pub fn streams(state: &OriginState) -> Response<Body> {
    let now = Instant::now();
    let list: Vec<StreamInfo> = state
        .registry
        .list()
        .iter()
        .map(|h| info(state, h, now))
        .collect();
    json(&list)
}

pub fn stream(state: &OriginState, name: &str) -> Result<Response<Body>, HttpError> {
    let hub = state
        .registry
        .get(name)
        .ok_or(HttpError::NotFound("no such stream"))?;
    let now = Instant::now();
    Ok(json(&info(state, &hub, now)))
}

pub fn metrics(state: &OriginState) -> Response<Body> {
    let mut access_log = state
        .access_log
        .as_ref()
        .map(|l| l.render_metrics("livecdn_origin"))
        .unwrap_or_default();
    if let Some(rec) = &state.recorder {
        access_log.push_str(&rec.render_metrics("livecdn_origin"));
    }
    if let Some(rtc) = state.webrtc.get() {
        rtc.metrics.render("livecdn_origin", &mut access_log);
    }
    let text = state
        .metrics
        .render(&state.registry, Instant::now(), &access_log);
    let mut resp = Response::new(body::full(Bytes::from(text)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(livecdn_shared::exposition::CONTENT_TYPE),
    );
    resp
}
