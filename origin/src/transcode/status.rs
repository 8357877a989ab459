//! What the transcoder of one stream reports: for `/api/streams/STREAM`
//! and `/metrics`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscodeState {
    /// No transcoding for this stream (see `reason`).
    #[default]
    Off,
    /// Waiting to measure the source before planning the ladder.
    Waiting,
    /// The encoder runs.
    Running,
    /// The encoder failed and is about to be started again.
    Restarting,
}

/// One transcoded rung as planned for the stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RungPlan {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TranscodeStatus {
    pub state: TranscodeState,
    /// Why transcoding is off, or why the encoder last stopped.
    pub reason: Option<String>,
    pub encoder: Option<String>,
    pub rungs: Vec<RungPlan>,
    /// Configured rungs this stream does not get, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Encoder restarts after failures.
    pub restarts: u64,
    /// Encoding speed as a multiple of real time (ffmpeg's progress).
    pub speed: Option<f64>,
    /// Source frames queued for the encoder.
    pub queue_depth: usize,
}
