//! The recorder's `/metrics` families: which disk path runs, recordings
//! by state, their bytes and seconds, and the disk and upload counters.

use super::Recorder;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

impl Recorder {
    /// `/metrics` families.
    pub fn render_metrics(&self, prefix: &str) -> String {
        let mut out = String::new();
        let backend = self.disk.backend().as_str();
        out.push_str(&format!(
            "# HELP {prefix}_recording_io Which disk path recordings use (io_uring or std).\n\
             # TYPE {prefix}_recording_io gauge\n\
             {prefix}_recording_io{{backend=\"{backend}\"}} 1\n"
        ));
        let mut by_state: BTreeMap<&'static str, u64> = ["recording", "done", "recovered", "error"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        let (mut bytes, mut seconds) = (0u64, 0f64);
        for r in self.list() {
            *by_state.entry(r.state.as_str()).or_default() += 1;
            bytes += r.bytes;
            seconds += r.duration_secs();
        }
        out.push_str(&format!(
            "# HELP {prefix}_recordings Recordings on disk by state.\n# TYPE {prefix}_recordings gauge\n"
        ));
        for (state, n) in by_state {
            out.push_str(&format!("{prefix}_recordings{{state=\"{state}\"}} {n}\n"));
        }
        let s = self.disk.stats();
        let counters = [
            (
                "recording_disk_bytes",
                "gauge",
                "Bytes of media in recordings on disk",
                bytes as f64,
            ),
            (
                "recording_seconds",
                "gauge",
                "Seconds of media in recordings on disk",
                seconds,
            ),
            (
                "recordings_started_total",
                "counter",
                "Recordings started",
                self.stats.started.load(Ordering::Relaxed) as f64,
            ),
            (
                "recordings_failed_total",
                "counter",
                "Recordings stopped by a disk error",
                self.stats.failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "recordings_expired_total",
                "counter",
                "Recordings retention deleted",
                self.stats.expired.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_segments_total",
                "counter",
                "Segments written to recordings",
                self.stats.segments.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_uploads_total",
                "counter",
                "Recordings uploaded to object storage",
                self.stats.uploads.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_uploaded_bytes_total",
                "counter",
                "Bytes uploaded to object storage",
                self.stats.uploaded_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_upload_failures_total",
                "counter",
                "Recording uploads given up after every try",
                self.stats.upload_failures.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_ops_total",
                "counter",
                "Disk operations (writes, appends, reads, removals)",
                s.ops.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_errors_total",
                "counter",
                "Disk operations that failed",
                s.errors.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_written_bytes_total",
                "counter",
                "Bytes written to disk",
                s.bytes_written.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_read_bytes_total",
                "counter",
                "Bytes read from disk",
                s.bytes_read.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, kind, help, v) in counters {
            out.push_str(&format!(
                "# HELP {prefix}_{name} {help}.\n# TYPE {prefix}_{name} {kind}\n{prefix}_{name} {v}\n"
            ));
        }
        out
    }
}
