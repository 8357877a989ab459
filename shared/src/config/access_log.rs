//! `[access_log]`, the same section on the origin and the edge: one JSON
//! line per request (see `crate::access_log`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where access log lines go and how much may wait for the writer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Write access logs at all.
    pub enabled: bool,
    /// A file (appended to, rotated by size), or `"stdout"`.
    pub path: PathBuf,
    /// Rotate the file once it holds this many bytes: `access.log` becomes
    /// `access.log.1`, older ones shift up. `0`: never rotate (leave it to
    /// logrotate with copytruncate).
    pub max_bytes: u64,
    /// Rotated files kept (`.1` to `.N`).
    pub keep: u32,
    /// Lines waiting for the writer; past it lines are dropped and counted
    /// (`*_access_log_dropped_total`), never waited for by a request.
    pub queue: usize,
}

/// The destination that writes to standard output.
pub const ACCESS_LOG_STDOUT: &str = "stdout";

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: PathBuf::from(ACCESS_LOG_STDOUT),
            max_bytes: 256 * 1024 * 1024,
            keep: 4,
            queue: 16_384,
        }
    }
}

impl AccessLogConfig {
    /// Problems `check-config` and start-up report as errors.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1 << 20).contains(&self.queue) {
            return Err("queue must be between 1 and 1048576".to_string());
        }
        if self.max_bytes != 0 && self.max_bytes < 4096 {
            return Err("max_bytes must be 0 or at least 4096".to_string());
        }
        if self.keep > 100 {
            return Err("keep must be at most 100".to_string());
        }
        Ok(())
    }
}
