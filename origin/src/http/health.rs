//! `/api/channels/NAME/stream`: a live stream's state and health, as IVS's
//! `GetStream` reports them (`state`, `health`, `viewerCount`, `startTime`),
//! with the figures the verdict ([`crate::verdict`]) is made from and the
//! warnings an operator acts on.

use crate::packager::{AUDIO, SOURCE};
use crate::registry::StreamHub;
use crate::OriginState;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

/// LL-HLS wants a keyframe every 1 to 2 s (segments are cut at them).
const KEYFRAME_RANGE: (f64, f64) = (1.0, 2.0);
/// A publisher clock further off than this is worth a warning.
const CLOCK_DRIFT_WARN_MS: i64 = 1_000;

/// The answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamState {
    /// `LIVE` while a publisher feeds the stream, else `OFFLINE`.
    pub state: &'static str,
    /// `HEALTHY`, `STARVING` (live, but media is not arriving as it
    /// should), or `UNKNOWN` (offline).
    pub health: &'static str,
    /// Viewers summed over the edges that report them.
    pub viewer_count: u64,
    /// When the stream started, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// While `STARVING`: why (`no_video`, `bitrate_drop`, `low_frame_rate`).
    pub reasons: Vec<&'static str>,
    /// Settings worth changing at the encoder: `keyframe_interval`,
    /// `b_frames` (in low-latency mode), `clock_drift`.
    pub warnings: Vec<&'static str>,
    /// The figures, while live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Ingest>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingest {
    /// Over the last 5 s.
    pub bitrate_bps: u64,
    pub fps: f64,
    pub keyframe_interval_s: Option<f64>,
    /// Latest video timestamp minus latest audio timestamp.
    pub av_drift_ms: Option<i64>,
    /// The publisher's media clock minus the origin's since it started.
    pub clock_drift_ms: Option<i64>,
    /// Composition offsets (B-frames) seen in the last 5 s.
    pub b_frames: bool,
    /// The recent average the bitrate and frame rate are judged against.
    pub bitrate_average_bps: Option<f64>,
    pub fps_average: Option<f64>,
    /// Frames refused by the packager (before the first IDR, malformed).
    pub dropped_frames: u64,
    /// Source frames the encoder's full queue could not take.
    pub transcode_dropped_frames: u64,
    /// Publisher reconnects and backup takeovers since the stream started.
    pub publisher_reconnects: u64,
    /// ABR encoder restarts after failures.
    pub transcoder_restarts: u64,
    /// The furthest a transcoded rung runs behind the source, in ms.
    pub ladder_lag_ms: Option<f64>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ingest(hub: &StreamHub, now: Instant) -> (Ingest, Vec<&'static str>) {
    let (_, _, (bitrate_average_bps, fps_average)) = hub.verdict();
    let transcode = hub.transcode_status();
    let (report, dropped_frames, ladder_lag_ms, low_latency) = hub.read(|p| {
        let lag = p
            .tracks()
            .filter(|t| t.name != SOURCE && t.name != AUDIO)
            .filter_map(|t| p.rung_lag_ms(&t.name))
            .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));
        (
            p.health().report(now),
            p.dropped_frames,
            lag,
            p.config().low_latency,
        )
    });
    let mut warnings = Vec::new();
    if report
        .keyframe_interval_s
        .is_some_and(|k| k < KEYFRAME_RANGE.0 - 0.05 || k > KEYFRAME_RANGE.1 + 0.05)
    {
        warnings.push("keyframe_interval");
    }
    if low_latency && report.b_frames {
        warnings.push("b_frames");
    }
    if report
        .clock_drift_ms
        .is_some_and(|d| d.abs() > CLOCK_DRIFT_WARN_MS)
    {
        warnings.push("clock_drift");
    }
    let ingest = Ingest {
        bitrate_bps: report.bitrate_bps,
        fps: report.video_fps,
        keyframe_interval_s: report.keyframe_interval_s,
        av_drift_ms: report.av_drift_ms,
        clock_drift_ms: report.clock_drift_ms,
        b_frames: report.b_frames,
        bitrate_average_bps,
        fps_average,
        dropped_frames,
        transcode_dropped_frames: hub.feed_dropped.load(Ordering::Relaxed),
        publisher_reconnects: hub.reconnects.load(Ordering::Relaxed),
        transcoder_restarts: transcode.restarts,
        ladder_lag_ms,
    };
    (ingest, warnings)
}

/// The state of stream `name` now.
pub fn stream(state: &OriginState, name: &str) -> StreamState {
    let now = Instant::now();
    let viewer_count = state.push_viewers.total(name, now).unwrap_or(0);
    let hub = state
        .registry
        .get(name)
        .filter(|hub| hub.has_publisher() && hub.read(|p| p.is_live()));
    let Some(hub) = hub else {
        return StreamState {
            state: "OFFLINE",
            health: "UNKNOWN",
            viewer_count,
            start_time: None,
            reasons: Vec::new(),
            warnings: Vec::new(),
            ingest: None,
        };
    };
    let (verdict, reasons, _) = hub.verdict();
    let (ingest, warnings) = ingest(&hub, now);
    StreamState {
        state: "LIVE",
        health: verdict.as_str(),
        viewer_count,
        start_time: Some(rfc3339(hub.started)),
        reasons,
        warnings,
        ingest: Some(ingest),
    }
}
