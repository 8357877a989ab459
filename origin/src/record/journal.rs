//! A recording's files and the journal that indexes them.
//!
//! ```text
//! DIR/STREAM/RECORDING/recording.json     who and when (written first)
//! DIR/STREAM/RECORDING/index.jsonl        the journal: one JSON line per event
//! DIR/STREAM/RECORDING/RENDITION/init.mp4, init-GEN.mp4, MSN.m4s
//! ```
//!
//! Files are named as the VOD URLs name them (`/vod/STREAM/RECORDING/
//! RENDITION/MSN.m4s`), so serving is a path join. Every media file is
//! written before the journal line that lists it: a journal line always
//! names a whole file, and a crash leaves at most files the journal does
//! not list yet, which a rebuild ([`super::index::Recording::rebuild`])
//! parses back in.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `recording.json`.
pub const META_FILE: &str = "recording.json";
/// `index.jsonl`.
pub const JOURNAL_FILE: &str = "index.jsonl";

/// Who and when: written before any media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub stream: String,
    pub id: String,
    /// Wall clock of the start, Unix milliseconds.
    pub started_ms: u64,
}

/// Whether a rendition is video or audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Audio,
}

/// What a VOD master playlist needs to know about a rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionMeta {
    pub name: String,
    pub kind: MediaKind,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`).
    pub codecs: String,
    pub timescale: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
}

/// One recorded segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub rendition: String,
    pub msn: u64,
    /// Init generation its samples need.
    pub gen: u32,
    /// Decode time of its first sample, track ticks.
    pub start: u64,
    /// Its duration, track ticks.
    pub duration: u64,
    /// PROGRAM-DATE-TIME of its first sample, Unix milliseconds.
    pub pdt_ms: u64,
    /// Not continuous with the entry before it (a publisher reconnect, a
    /// codec change, or segments the recorder missed).
    pub discontinuity: bool,
    pub bytes: u64,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Line {
    /// A rendition's first init section was written.
    Rendition(RenditionMeta),
    /// `RENDITION/init[-GEN].mp4` was written.
    Init {
        rendition: String,
        gen: u32,
        bytes: u64,
    },
    /// `RENDITION/MSN.m4s` was written.
    Segment(SegmentEntry),
    /// Recording stopped on an error (the disk); nothing follows.
    Error { at_ms: u64, reason: String },
    /// The stream ended and every segment is written.
    End { at_ms: u64 },
    /// Found unfinished at a start and closed there, after a rebuild.
    Recovered { at_ms: u64 },
    /// Copied to object storage (after the end).
    Uploaded { at_ms: u64, objects: Vec<ObjectRef> },
}

/// An object a recording was uploaded to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub key: String,
    pub url: String,
    pub bytes: u64,
}

impl Line {
    /// The journal text of this line, newline included.
    pub fn to_line(&self) -> String {
        // Serialising these plain structs cannot fail.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// `init.mp4` for generation 0, else `init-GEN.mp4` (as the live URLs).
pub fn init_file(gen: u32) -> String {
    crate::packager::Track::init_uri(gen)
}

/// `MSN.m4s`.
pub fn segment_file(msn: u64) -> String {
    format!("{msn}.m4s")
}

/// Paths of one recording under the recordings directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(root: &Path, stream: &str, id: &str) -> Self {
        Self {
            dir: root.join(stream).join(id),
        }
    }
    pub fn meta(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }
    pub fn journal(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }
    pub fn init(&self, rendition: &str, gen: u32) -> PathBuf {
        self.dir.join(rendition).join(init_file(gen))
    }
    pub fn segment(&self, rendition: &str, msn: u64) -> PathBuf {
        self.dir.join(rendition).join(segment_file(msn))
    }
}

/// A recording id from its start time: `YYYYMMDDTHHMMSSZ` (UTC), sortable,
/// and a valid URL name. `taken` says whether an id is in use already
/// (a second recording in the same second gets `-2`, `-3`, ...).
pub fn recording_id(started_ms: u64, taken: impl Fn(&str) -> bool) -> String {
    let base = compact_utc(started_ms / 1000);
    if !taken(&base) {
        return base;
    }
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or(base)
}

/// `YYYYMMDDTHHMMSSZ` for Unix seconds.
fn compact_utc(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    // humantime renders RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`; drop the punctuation.
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_never_collide() {
        let a = recording_id(1_764_999_000_123, |_| false);
        assert_eq!(a, "20251206T053000Z");
        assert!(livecdn_shared::auth::valid_stream_name(&a));
        let b = recording_id(1_764_999_000_900, |id| id == a);
        assert_eq!(b, "20251206T053000Z-2");
        let c = recording_id(1_764_999_000_900, |id| id == a || id == b);
        assert_eq!(c, "20251206T053000Z-3");
        assert!(recording_id(1_765_000_000_000, |_| false) > a);
    }

    #[test]
    fn journal_lines_round_trip() {
        let lines = [
            Line::Rendition(RenditionMeta {
                name: "source".into(),
                kind: MediaKind::Video,
                codecs: "avc1.64001f".into(),
                timescale: 90_000,
                width: Some(1280),
                height: Some(720),
                frame_rate: Some(30.0),
                channels: None,
            }),
            Line::Init {
                rendition: "source".into(),
                gen: 1,
                bytes: 700,
            },
            Line::Segment(SegmentEntry {
                rendition: "audio".into(),
                msn: 7,
                gen: 0,
                start: 96_000,
                duration: 96_256,
                pdt_ms: 1_764_999_002_000,
                discontinuity: true,
                bytes: 32_000,
            }),
            Line::Error {
                at_ms: 5,
                reason: "disk full".into(),
            },
            Line::End { at_ms: 9 },
        ];
        for l in lines {
            let text = l.to_line();
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
            assert_eq!(serde_json::from_str::<Line>(text.trim_end()).ok(), Some(l));
        }
    }
}
