//! The recorder's `/metrics` families: which disk path runs, recordings
//! by state, their bytes and seconds, and the disk and upload counters.

use super::Recorder;
use livecdn_shared::exposition::{family, single, Kind};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

impl Recorder {
    /// `/metrics` families.
    pub fn render_metrics(&self, prefix: &str) -> String {
        let mut out = String::new();
        let backend = self.disk.backend().as_str();
        family(
            &mut out,
            &format!("{prefix}_recording_io"),
            Kind::Gauge,
            "Which disk path recordings use (io_uring or std)",
        )
        .sample(&[("backend", backend)], 1.0);
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
        let mut f = family(
            &mut out,
            &format!("{prefix}_recordings"),
            Kind::Gauge,
            "Recordings on disk by state",
        );
        for (state, n) in by_state {
            f.sample(&[("state", state)], n as f64);
        }
        let s = self.disk.stats();
        let counters = [
            (
                "recording_disk_bytes",
                Kind::Gauge,
                "Bytes of media in recordings on disk",
                bytes as f64,
            ),
            (
                "recording_seconds",
                Kind::Gauge,
                "Seconds of media in recordings on disk",
                seconds,
            ),
            (
                "recordings_started_total",
                Kind::Counter,
                "Recordings started",
                self.stats.started.load(Ordering::Relaxed) as f64,
            ),
            (
                "recordings_failed_total",
                Kind::Counter,
                "Recordings stopped by a disk error",
                self.stats.failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "recordings_expired_total",
                Kind::Counter,
                "Recordings retention deleted",
                self.stats.expired.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_segments_total",
                Kind::Counter,
                "Segments written to recordings",
                self.stats.segments.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_uploads_total",
                Kind::Counter,
                "Recordings uploaded to object storage",
                self.stats.uploads.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_uploaded_bytes_total",
                Kind::Counter,
                "Bytes uploaded to object storage",
                self.stats.uploaded_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "recording_upload_failures_total",
                Kind::Counter,
                "Recording uploads given up after every try",
                self.stats.upload_failures.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_ops_total",
                Kind::Counter,
                "Disk operations (writes, appends, reads, removals)",
                s.ops.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_errors_total",
                Kind::Counter,
                "Disk operations that failed",
                s.errors.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_written_bytes_total",
                Kind::Counter,
                "Bytes written to disk",
                s.bytes_written.load(Ordering::Relaxed) as f64,
            ),
            (
                "disk_read_bytes_total",
                Kind::Counter,
                "Bytes read from disk",
                s.bytes_read.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, kind, help, v) in counters {
            single(&mut out, &format!("{prefix}_{name}"), kind, help, v);
        }
        out
    }
}
