//! `--json FILE`: every figure of a report.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Creating or writing the file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serialising failed.
    #[error("serialising the report: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a chart failed.
    #[error("drawing chart {chart}: {reason}")]
    Chart {
        /// Which chart.
        chart: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// The report as pretty JSON.
pub fn to_string<T: Serialize>(report: &T) -> Result<String, WriteError> {
    Ok(serde_json::to_string_pretty(report)?)
}

/// Writes `text` to `path`.
pub fn write_file(path: &Path, text: &str) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)
}
