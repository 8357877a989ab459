//! `[recording]` on the origin: which streams are kept on disk, where, and
//! for how long (see `livecdn_origin::record`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which streams are recorded when nothing more specific says.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecordPolicy {
    /// Every stream (a channel, static key or `on_publish` answer may still
    /// say `record: false`).
    All,
    /// No stream unless its channel, static key or `on_publish` answer
    /// says `record: true`.
    #[default]
    None,
}

impl std::str::FromStr for RecordPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(RecordPolicy::All),
            "none" => Ok(RecordPolicy::None),
            other => Err(format!("{other:?} is not a recording policy (all, none)")),
        }
    }
}

/// Which renditions a recording keeps.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RecordRenditions {
    /// The publisher's own video and the audio.
    #[default]
    Source,
    /// Every rung of the ladder besides.
    All,
}

/// How the disk is written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DiskIo {
    /// io_uring where the kernel and the container allow it, else std.
    #[default]
    Auto,
    /// io_uring, falling back (with a warning) where it does not work.
    IoUring,
    /// Ordinary file I/O.
    Std,
}

/// `[recording]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    pub policy: RecordPolicy,
    /// Recordings go under `DIR/STREAM/RECORDING/`; created when the first
    /// one starts.
    pub dir: PathBuf,
    pub renditions: RecordRenditions,
    pub io: DiskIo,
    /// Disk jobs waiting for the disk thread (the recorder waits past it,
    /// the live path never does).
    pub queue: usize,
    /// Recordings older than this are deleted (oldest first); none: kept.
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// All recordings together stay under this many bytes (oldest deleted
    /// first); 0: no limit.
    pub max_bytes: u64,
    /// One stream's recordings stay under this many bytes; 0: no limit.
    pub max_stream_bytes: u64,
    /// Copy each finished recording to S3-compatible object storage.
    pub upload: Option<UploadConfig>,
    /// DVR: how far back a recorded stream's live playlists reach (older
    /// segments served from the recording); 0 turns it off. Offered only
    /// where every live rendition is recorded, so that a player that
    /// seeks back can still switch renditions.
    #[serde(with = "humantime_serde")]
    pub dvr_window: Duration,
}

/// Longest DVR window: ten hours of 2 s segments stay within what a
/// playlist may hold ([`crate::playlist::MAX_PLAYLIST_BYTES`]).
pub const MAX_DVR_WINDOW: Duration = Duration::from_secs(10 * 3600);

/// What of a recording is uploaded.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UploadWhat {
    /// `recording.mp4`: the progressive MP4.
    Mp4,
    /// The CMAF files and VOD playlists (`master.m3u8`, ...): playable
    /// from the bucket as they are.
    Cmaf,
    /// Both.
    #[default]
    Both,
}

/// `[recording.upload]`: where finished recordings are copied. Objects go
/// to `PREFIX/STREAM/RECORDING/...` in `bucket`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// The S3 endpoint, `http(s)://HOST:PORT` (MinIO, Ceph, R2, ...);
    /// unset: AWS itself (by `region`).
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// Key prefix inside the bucket, without slashes at the ends.
    pub prefix: String,
    /// Credentials; unset, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
    /// from the environment (prefer those).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub what: UploadWhat,
    /// Objects in flight at once, over every upload.
    pub concurrency: usize,
    /// Tries per recording before it is reported failed (each try
    /// re-sends what is missing; waits double from 1 s, at most 60 s).
    pub tries: u32,
    /// Where viewers find the objects (a CDN in front of the bucket),
    /// for the URLs `on_record_done` reports; by default the endpoint's
    /// path-style URL.
    pub public_url: Option<String>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            bucket: String::new(),
            region: "us-east-1".to_string(),
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            what: UploadWhat::Both,
            concurrency: 4,
            tries: 5,
            public_url: None,
        }
    }
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            policy: RecordPolicy::None,
            dir: PathBuf::from("recordings"),
            renditions: RecordRenditions::Source,
            io: DiskIo::Auto,
            queue: 256,
            max_age: None,
            max_bytes: 0,
            max_stream_bytes: 0,
            upload: None,
            dvr_window: Duration::from_secs(2 * 3600),
        }
    }
}

impl RecordingConfig {
    /// Problems `check-config` and start-up report as errors.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=65_536).contains(&self.queue) {
            return Err("queue must be between 1 and 65536".to_string());
        }
        if self.dir.as_os_str().is_empty() {
            return Err("dir must not be empty".to_string());
        }
        if self.dvr_window > MAX_DVR_WINDOW {
            return Err("dvr_window must be at most 10h".to_string());
        }
        if self.max_age.is_some_and(|a| a < Duration::from_secs(60)) {
            return Err("max_age must be at least 1m".to_string());
        }
        for (name, v) in [
            ("max_bytes", self.max_bytes),
            ("max_stream_bytes", self.max_stream_bytes),
        ] {
            if v != 0 && v < 1 << 20 {
                return Err(format!("{name} must be 0 or at least 1048576"));
            }
        }
        if let Some(u) = &self.upload {
            if u.bucket.is_empty() {
                return Err("upload.bucket must be set".to_string());
            }
            if !(1..=256).contains(&u.concurrency) {
                return Err("upload.concurrency must be between 1 and 256".to_string());
            }
            if !(1..=100).contains(&u.tries) {
                return Err("upload.tries must be between 1 and 100".to_string());
            }
            if u.endpoint
                .as_deref()
                .is_some_and(|e| !e.starts_with("http://") && !e.starts_with("https://"))
            {
                return Err("upload.endpoint must be an http:// or https:// URL".to_string());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let c: RecordingConfig = toml::from_str(
            "policy = \"all\"\nrenditions = \"all\"\nio = \"io_uring\"\nmax_age = \"2h\"\nmax_bytes = 1073741824\n",
        )
        .expect("parses");
        assert_eq!(c.policy, RecordPolicy::All);
        assert_eq!(c.renditions, RecordRenditions::All);
        assert_eq!(c.io, DiskIo::IoUring);
        assert_eq!(c.max_age, Some(Duration::from_secs(7200)));
        assert_eq!(c.dvr_window, Duration::from_secs(7200), "the default");
        assert!(c.check().is_ok());
        let off: RecordingConfig = toml::from_str("dvr_window = \"0s\"\n").expect("parses");
        assert_eq!(off.dvr_window, Duration::ZERO);
        let long = RecordingConfig {
            dvr_window: Duration::from_secs(11 * 3600),
            ..RecordingConfig::default()
        };
        assert!(long.check().expect_err("too long").contains("dvr_window"));
        let small = RecordingConfig {
            max_bytes: 10,
            ..RecordingConfig::default()
        };
        assert!(small.check().expect_err("too small").contains("max_bytes"));
        assert_eq!("all".parse::<RecordPolicy>(), Ok(RecordPolicy::All));
        assert!("some".parse::<RecordPolicy>().is_err());
    }
}
