//! What the API lists and `on_record_done` reports about a recording:
//! one shape for both.

use super::index::{Recording, State};
use super::journal::{MediaKind, Paths};
use serde::Serialize;
use std::path::Path;

/// One recording.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    pub stream: String,
    pub id: String,
    /// RFC 3339.
    pub started: String,
    pub ended: Option<String>,
    pub duration_seconds: f64,
    pub bytes: u64,
    /// `recording`, `done`, `recovered` or `error`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub renditions: Vec<RenditionInfo>,
    /// Its directory (files and journal).
    pub path: String,
    /// Its VOD master playlist and MP4, as paths on this server.
    pub vod: String,
    pub download: String,
    /// Where it was uploaded, once it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<super::journal::ObjectRef>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionInfo {
    pub name: String,
    pub kind: MediaKind,
    pub codecs: String,
    pub segments: usize,
    pub duration_seconds: f64,
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

impl RecordingInfo {
    /// `r`, whose files are under `root`.
    pub fn of(r: &Recording, root: &Path) -> Self {
        let base = format!("/vod/{}/{}/", r.meta.stream, r.meta.id);
        let dir = super::display_dir(&Paths::new(root, &r.meta.stream, &r.meta.id).dir);
        RecordingInfo {
            stream: r.meta.stream.clone(),
            id: r.meta.id.clone(),
            started: rfc3339(r.meta.started_ms),
            ended: r.ended_ms.map(rfc3339),
            duration_seconds: r.duration_secs(),
            bytes: r.bytes,
            state: r.state.as_str(),
            error: match &r.state {
                State::Error(e) => Some(e.clone()),
                _ => None,
            },
            renditions: r
                .renditions
                .iter()
                .map(|x| RenditionInfo {
                    name: x.meta.name.clone(),
                    kind: x.meta.kind,
                    codecs: x.meta.codecs.clone(),
                    segments: x.segments.len(),
                    duration_seconds: x.duration_secs(),
                })
                .collect(),
            path: dir.display().to_string(),
            vod: format!("{base}master.m3u8"),
            download: format!("{base}download.mp4"),
            objects: r.uploaded.clone(),
        }
    }
}
