//! The ABR ladder: which renditions the origin offers besides the source,
//! and how the supervised ffmpeg encodes them (`[ladder]` in origin.toml).
//!
//! The `source` rung is the publisher's own video, passed through without
//! re-encoding. It must appear exactly once: the ladder lists every
//! rendition players can see, so a ladder without `source` would have to
//! mean "hide the source", which the origin does not do. A ladder of only
//! `source` (or `enabled = false`) serves the source alone and starts no
//! encoder. The name `audio` is reserved for the audio playlist.

use super::bitrate::Bitrate;
use super::locate::{KeyPath, Seg};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Name of the passthrough rung.
pub const SOURCE_RUNG: &str = "source";

/// Rendition name of the audio (AAC).
pub const AUDIO_RENDITION: &str = "audio";
/// Rendition name of the audio as Opus, made for WebRTC viewers.
pub const OPUS_RENDITION: &str = "opus";

/// Rung name refused because the audio rendition's URLs use it.
const RESERVED_RUNG: &str = AUDIO_RENDITION;

/// `[ladder]`: the rendition ladder and its encoder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LadderConfig {
    /// `false` serves the source only and never starts an encoder, even if
    /// `rungs` lists transcoded renditions.
    pub enabled: bool,
    /// The ffmpeg binary; `None` looks up `ffmpeg` on PATH.
    pub ffmpeg: Option<PathBuf>,
    /// Video encoder for the transcoded rungs.
    pub encoder: Encoder,
    /// Encoder preset (`-preset`), e.g. `veryfast`; `[a-z0-9_-]`, passed to
    /// ffmpeg as one argument.
    pub preset: String,
    /// First delay before restarting an encoder that exited; doubles per
    /// consecutive failure up to `restart_backoff_max`.
    #[serde(with = "humantime_serde")]
    pub restart_backoff: Duration,
    /// Cap of the restart delay.
    #[serde(with = "humantime_serde")]
    pub restart_backoff_max: Duration,
    /// The renditions, `source` included, in the order the multivariant
    /// playlist lists them.
    pub rungs: Vec<RungConfig>,
}

impl Default for LadderConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ffmpeg: None,
            encoder: Encoder::Libx264,
            preset: "veryfast".to_string(),
            restart_backoff: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(10),
            rungs: default_rungs(),
        }
    }
}

/// source; 720p 3000k; 480p 1500k; 360p 800k (main profile for 360p, whose
/// players include older phones).
fn default_rungs() -> Vec<RungConfig> {
    let rung = |name: &str, height, kbps, profile| RungConfig {
        name: name.to_string(),
        height: Some(height),
        video_bitrate: Some(Bitrate::from_kbps(kbps)),
        max_rate: None,
        buffer: None,
        profile: Some(profile),
        fps_cap: None,
    };
    vec![
        RungConfig::source(),
        rung("720p", 720, 3000, H264Profile::High),
        rung("480p", 480, 1500, H264Profile::High),
        rung("360p", 360, 800, H264Profile::Main),
    ]
}

/// A video encoder ffmpeg offers for H.264.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoder {
    /// Software x264: runs anywhere, costs CPU.
    Libx264,
    /// NVIDIA NVENC.
    H264Nvenc,
    /// VA-API (Intel/AMD on Linux).
    H264Vaapi,
    /// Intel Quick Sync.
    H264Qsv,
}

impl Encoder {
    /// Every encoder, for messages and tests.
    pub const ALL: [Encoder; 4] = [
        Encoder::Libx264,
        Encoder::H264Nvenc,
        Encoder::H264Vaapi,
        Encoder::H264Qsv,
    ];

    /// The name ffmpeg's `-c:v` takes; also the config spelling.
    pub fn ffmpeg_name(&self) -> &'static str {
        match self {
            Encoder::Libx264 => "libx264",
            Encoder::H264Nvenc => "h264_nvenc",
            Encoder::H264Vaapi => "h264_vaapi",
            Encoder::H264Qsv => "h264_qsv",
        }
    }
}

/// An encoder name that is not one of [`Encoder::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoder {0:?} (expected libx264, h264_nvenc, h264_vaapi or h264_qsv)")]
pub struct UnknownEncoder(pub String);

impl FromStr for Encoder {
    type Err = UnknownEncoder;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Encoder::ALL
            .into_iter()
            .find(|e| e.ffmpeg_name() == s)
            .ok_or_else(|| UnknownEncoder(s.to_string()))
    }
}

/// H.264 profile of a transcoded rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum H264Profile {
    Baseline,
    Main,
    High,
}

impl H264Profile {
    /// The name ffmpeg's `-profile:v` takes; also the config spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            H264Profile::Baseline => "baseline",
            H264Profile::Main => "main",
            H264Profile::High => "high",
        }
    }
}

/// One rendition of the ladder (`[[ladder.rungs]]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// Rendition name in URLs (`/live/STREAM/NAME/index.m3u8`):
    /// `[a-z0-9_-]{1,32}`; `source` is the passthrough, `audio` is reserved.
    pub name: String,
    /// Output height in pixels (width follows the source's aspect ratio):
    /// even, 64..=4320. Required for transcoded rungs, refused on `source`.
    #[serde(default)]
    pub height: Option<u32>,
    /// Target video bit rate (`-b:v`). Required and non-zero for transcoded
    /// rungs, refused on `source`.
    #[serde(default)]
    pub video_bitrate: Option<Bitrate>,
    /// Peak rate (`-maxrate`); see [`RungConfig::effective_max_rate`].
    #[serde(default)]
    pub max_rate: Option<Bitrate>,
    /// Rate-control buffer (`-bufsize`); see [`RungConfig::effective_buffer`].
    #[serde(default)]
    pub buffer: Option<Bitrate>,
    /// H.264 profile; see [`RungConfig::effective_profile`].
    #[serde(default)]
    pub profile: Option<H264Profile>,
    /// Frame rate ceiling; a faster source is decimated. `None` keeps the
    /// source's rate. 0 < fps_cap <= 240.
    #[serde(default)]
    pub fps_cap: Option<f64>,
}

impl RungConfig {
    /// The passthrough rung.
    pub fn source() -> Self {
        Self {
            name: SOURCE_RUNG.to_string(),
            height: None,
            video_bitrate: None,
            max_rate: None,
            buffer: None,
            profile: None,
            fps_cap: None,
        }
    }

    /// `true` for the passthrough rung, which no encoder produces.
    pub fn is_source(&self) -> bool {
        self.name == SOURCE_RUNG
    }

    /// `max_rate`, else 1.1 x `video_bitrate`: enough headroom for scene
    /// changes while keeping parts near the advertised BANDWIDTH. `None`
    /// only for a rung without a bit rate (the source).
    pub fn effective_max_rate(&self) -> Option<Bitrate> {
        self.max_rate
            .or_else(|| self.video_bitrate.map(|b| b.scaled(11, 10)))
    }

    /// `buffer`, else 2 x `video_bitrate` (two seconds at the target rate,
    /// one default segment). `None` only for a rung without a bit rate.
    pub fn effective_buffer(&self) -> Option<Bitrate> {
        self.buffer
            .or_else(|| self.video_bitrate.map(|b| b.scaled(2, 1)))
    }

    /// `profile`, else high.
    pub fn effective_profile(&self) -> H264Profile {
        self.profile.unwrap_or(H264Profile::High)
    }
}

/// Per-stream ladder choice (a static key's `ladder`, or the `on_publish`
/// webhook's answer): a stream that is already encoded well, or not worth
/// the CPU, can skip transcoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LadderChoice {
    /// Every configured rung.
    #[default]
    #[serde(rename = "full")]
    Full,
    /// The `source` rung only; no encoder starts for this stream.
    #[serde(rename = "source")]
    SourceOnly,
}

impl LadderChoice {
    /// The config spelling: `"full"` or `"source"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LadderChoice::Full => "full",
            LadderChoice::SourceOnly => "source",
        }
    }
}

/// Why a rung filter (`--ladder` / `LIVECDN_LADDER`) cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RungFilterError {
    /// A name the configured ladder does not have.
    #[error("unknown rung {name:?} (the ladder has: {configured})")]
    UnknownRung { name: String, configured: String },
    /// The list leaves out `source`, which every ladder needs.
    #[error("the rungs kept must include \"source\"")]
    NoSource,
}

/// A ladder value that parses but is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LadderError {
    /// Where it is, e.g. `ladder.rungs[2].height`.
    pub key: KeyPath,
    /// Why it is refused.
    pub message: String,
}

impl LadderConfig {
    /// The rungs an encoder produces (every one but `source`), none when
    /// the ladder is disabled.
    pub fn transcoded(&self) -> impl Iterator<Item = &RungConfig> {
        self.rungs
            .iter()
            .filter(move |r| self.enabled && !r.is_source())
    }

    /// Keeps only the rungs named in `names`, in configured order. Every
    /// name must exist and `source` must be among them, so that a typo in
    /// an override fails at start instead of silently dropping renditions.
    pub fn retain_rungs<S: AsRef<str>>(&mut self, names: &[S]) -> Result<(), RungFilterError> {
        if let Some(unknown) = names
            .iter()
            .map(AsRef::as_ref)
            .find(|n| !self.rungs.iter().any(|r| r.name == *n))
        {
            let configured: Vec<&str> = self.rungs.iter().map(|r| r.name.as_str()).collect();
            return Err(RungFilterError::UnknownRung {
                name: unknown.to_string(),
                configured: configured.join(", "),
            });
        }
        if !names.iter().any(|n| n.as_ref() == SOURCE_RUNG) {
            return Err(RungFilterError::NoSource);
        }
        self.rungs
            .retain(|r| names.iter().any(|n| n.as_ref() == r.name));
        Ok(())
    }

    /// Checks what serde cannot: names, ranges, required and forbidden
    /// fields, and the backoff pair. Returns the first problem found, in
    /// file order.
    pub(crate) fn validate(&self) -> Result<(), LadderError> {
        let ladder = KeyPath::keys(&["ladder"]);
        let err = |key: KeyPath, message: String| Err(LadderError { key, message });
        let preset = &self.preset;
        if preset.is_empty() || preset.len() > 32 || !preset.bytes().all(name_byte) {
            return err(
                ladder.with(Seg::Key("preset")),
                format!("{preset:?} must match [a-z0-9_-]{{1,32}}"),
            );
        }
        if self
            .ffmpeg
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return err(ladder.with(Seg::Key("ffmpeg")), "is empty".into());
        }
        if self.restart_backoff.is_zero() {
            return err(
                ladder.with(Seg::Key("restart_backoff")),
                "must be more than zero (a crashing encoder would restart in a busy loop)".into(),
            );
        }
        if self.restart_backoff_max < self.restart_backoff {
            return err(
                ladder.with(Seg::Key("restart_backoff_max")),
                format!(
                    "{:?} is less than restart_backoff ({:?})",
                    self.restart_backoff_max, self.restart_backoff
                ),
            );
        }
        let rungs = ladder.with(Seg::Key("rungs"));
        for (i, rung) in self.rungs.iter().enumerate() {
            let at = rungs.with(Seg::Index(i));
            if let Some(first) = self.rungs[..i].iter().position(|r| r.name == rung.name) {
                return err(
                    at.with(Seg::Key("name")),
                    format!("{:?} is already the name of rungs[{first}]", rung.name),
                );
            }
            if let Err((field, message)) = rung.check() {
                return err(at.with(Seg::Key(field)), message);
            }
        }
        if !self.rungs.iter().any(RungConfig::is_source) {
            return err(
                rungs,
                "no \"source\" rung: the ladder must list the passthrough rendition \
                 (name = \"source\") exactly once"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `[a-z0-9_-]`: safe in URLs, file names and ffmpeg arguments.
fn name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

impl RungConfig {
    /// One rung's own rules; the error names the offending field.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let name = &self.name;
        if name.is_empty() || name.len() > 32 || !name.bytes().all(name_byte) {
            return Err(("name", format!("{name:?} must match [a-z0-9_-]{{1,32}}")));
        }
        if name == RESERVED_RUNG {
            return Err((
                "name",
                "\"audio\" is reserved for the audio rendition".into(),
            ));
        }
        if self.is_source() {
            let set = [
                ("height", self.height.is_some()),
                ("video_bitrate", self.video_bitrate.is_some()),
                ("max_rate", self.max_rate.is_some()),
                ("buffer", self.buffer.is_some()),
                ("profile", self.profile.is_some()),
                ("fps_cap", self.fps_cap.is_some()),
            ];
            if let Some((field, _)) = set.into_iter().find(|(_, set)| *set) {
                return Err((
                    field,
                    "not allowed on \"source\": it is passed through, not encoded".into(),
                ));
            }
            return Ok(());
        }
        match self.height {
            None => return Err(("height", "required for a transcoded rung".into())),
            Some(h) if !h.is_multiple_of(2) => {
                return Err(("height", format!("{h} is odd (must be even)")))
            }
            Some(h) if !(64..=4320).contains(&h) => {
                return Err(("height", format!("{h} is outside 64..=4320")))
            }
            Some(_) => {}
        }
        match self.video_bitrate {
            None => return Err(("video_bitrate", "required for a transcoded rung".into())),
            Some(b) if b.bps() == 0 => return Err(("video_bitrate", "must be more than 0".into())),
            Some(_) => {}
        }
        if let (Some(max), Some(rate)) = (self.max_rate, self.video_bitrate) {
            if max < rate {
                return Err((
                    "max_rate",
                    format!("{max} is less than video_bitrate ({rate})"),
                ));
            }
        }
        if self.buffer.is_some_and(|b| b.bps() == 0) {
            return Err(("buffer", "must be more than 0".into()));
        }
        if let Some(fps) = self.fps_cap {
            if !(fps > 0.0 && fps <= 240.0) {
                return Err(("fps_cap", format!("{fps} is outside (0, 240]")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "ladder_tests.rs"]
mod tests;
