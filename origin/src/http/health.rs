//! `/api/channels/NAME/stream`: a live stream's state and health, as IVS's
//! `GetStream` reports them (`state`, `health`, `viewerCount`), with the
//! ingest figures behind the verdict.

use crate::packager::HealthReport;
use crate::OriginState;
use serde::Serialize;
use std::time::Instant;

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
    /// The ingest figures the verdict is made from, while live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest: Option<HealthReport>,
}

/// The state of stream `name` now.
pub fn stream(state: &OriginState, name: &str) -> StreamState {
    let now = Instant::now();
    let viewer_count = state.push_viewers.total(name, now).unwrap_or(0);
    let live = state
        .registry
        .get(name)
        .filter(|hub| hub.has_publisher())
        .map(|hub| hub.read(|p| (p.is_live(), p.health().report(now))));
    match live {
        Some((true, report)) => StreamState {
            state: "LIVE",
            health: if report.bitrate_bps > 0 && report.video_fps >= 1.0 {
                "HEALTHY"
            } else {
                "STARVING"
            },
            viewer_count,
            ingest: Some(report),
        },
        _ => StreamState {
            state: "OFFLINE",
            health: "UNKNOWN",
            viewer_count,
            ingest: None,
        },
    }
}
