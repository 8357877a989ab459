//! The ABR ladder's encoder: one supervised ffmpeg process per live stream
//! that turns the source video into the transcoded rungs.
//!
//! The source rung never depends on it: source frames are packaged first
//! and then offered to the encoder's bounded queue, so a slow, crashed or
//! missing encoder costs the transcoded rungs only. Without ffmpeg the
//! origin says so once at start and serves the source alone.

mod plan;
mod status;
mod supervisor;

pub use plan::{
    ffmpeg_args, plan, scaled_width, EncoderSpec, PlannedRung, RungSpec, SkipReason, SourceInfo,
};
pub use status::{RungPlan, TranscodeState, TranscodeStatus};
pub(crate) use supervisor::log_stderr;
pub use supervisor::run;

use livecdn_shared::config::LadderConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How streams are transcoded (from `[ladder]` in the origin config).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Transcode at all: false when the ladder is only `source`, when it is
    /// disabled, or when ffmpeg was not found.
    pub enabled: bool,
    pub encoder: EncoderSpec,
    /// Transcoded rungs in configured order (`source` is not among them).
    pub rungs: Vec<RungSpec>,
    /// First restart delay after an encoder failure, doubling up to the max.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl Settings {
    /// Settings from `[ladder]`: the transcoded rungs (everything but
    /// `source`) in configured order.
    pub fn from_config(c: &LadderConfig) -> Self {
        let rungs: Vec<RungSpec> = c
            .rungs
            .iter()
            .filter(|r| !r.is_source())
            .filter_map(|r| {
                Some(RungSpec {
                    name: r.name.clone(),
                    height: r.height?,
                    bitrate: r.video_bitrate?.bps(),
                    max_rate: r.effective_max_rate()?.bps(),
                    buffer: r.effective_buffer()?.bps(),
                    profile: r.effective_profile().as_str().to_string(),
                    fps_cap: r.fps_cap,
                })
            })
            .collect();
        Self {
            enabled: c.enabled && !rungs.is_empty(),
            encoder: EncoderSpec {
                ffmpeg: c.ffmpeg.clone().unwrap_or_else(|| PathBuf::from("ffmpeg")),
                codec: c.encoder.ffmpeg_name().to_string(),
                preset: c.preset.clone(),
            },
            rungs,
            backoff: c.restart_backoff,
            backoff_max: c.restart_backoff_max.max(c.restart_backoff),
        }
    }

    /// Turns transcoding off with one clear warning if the configured ffmpeg
    /// cannot be found: streams are then served as the source only.
    pub fn check_ffmpeg(mut self) -> Self {
        if !self.enabled || self.rungs.is_empty() {
            self.enabled = false;
            return self;
        }
        match find_program(&self.encoder.ffmpeg) {
            Some(path) => {
                tracing::info!(ffmpeg = %path.display(), encoder = %self.encoder.codec, rungs = self.rungs.len(), "ABR ladder on");
                self.encoder.ffmpeg = path;
            }
            None => {
                tracing::warn!(
                    ffmpeg = %self.encoder.ffmpeg.display(),
                    "ffmpeg not found: the ABR ladder is off and streams are served as the source only \
                     (install ffmpeg or set ladder.ffmpeg / LIVECDN_FFMPEG)"
                );
                self.enabled = false;
            }
        }
        self
    }
}

/// `program` itself if it names a file, else the first match on PATH.
pub(crate) fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
