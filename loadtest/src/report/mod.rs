//! What a run reports, and the writers: [`text`] (terminal summary),
//! [`json`] (every figure) and [`html`] (a self-contained page with SVG
//! charts that opens offline).

pub mod html;
pub mod json;
pub mod text;

use serde::Serialize;

use crate::stats::{Percentiles, Summary};

/// Everything a `play` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PlayReport {
    /// What was run.
    pub run: RunInfo,
    /// The players' figures, merged over all viewers.
    pub summary: Summary,
    /// The harness's own load, to tell whether it was the bottleneck.
    pub harness: Harness,
    /// Per second: viewers running and harness load.
    pub timeline: Vec<Sample>,
    /// Distributions for the charts.
    pub histograms: Histograms,
}

/// The run's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// URL played.
    pub url: String,
    /// `h1`, `h2` or `h3`.
    pub protocol: String,
    /// Viewers requested.
    pub viewers: usize,
    /// Shared connections (h2/h3) or connections per viewer (h1).
    pub connections: usize,
    /// Planned duration, ms.
    pub duration_ms: u64,
    /// Ramp-up, ms.
    pub ramp_ms: u64,
    /// Measured duration, ms.
    pub elapsed_ms: u64,
    /// Start, ms since the Unix epoch.
    pub started_unix_ms: u64,
}

/// The harness process's own figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Harness {
    /// CPU cores available to the process.
    pub cores: usize,
    /// User plus system CPU time used during the run, seconds.
    pub cpu_seconds: f64,
    /// Mean CPU use, percent of one core (200 = two cores busy).
    pub cpu_percent_mean: f64,
    /// Busiest second, percent of one core.
    pub cpu_percent_max: f64,
    /// Event-loop lag: how late a 100 ms timer fired.
    pub loop_lag: Option<Percentiles>,
    /// Peak resident memory, KiB.
    pub max_rss_kib: u64,
    /// Most viewers running at once.
    pub peak_viewers: u64,
    /// Whether the harness looks saturated (CPU near all cores, or lag
    /// p99 above 50 ms): then the figures measure the harness, not the server.
    pub saturated: bool,
}

/// One second of harness state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the start.
    pub second: u64,
    /// Viewers running at the end of the second.
    pub viewers: u64,
    /// CPU use in the second, percent of one core.
    pub cpu_percent: f64,
    /// Largest event-loop lag in the second, ms.
    pub loop_lag_max_ms: f64,
}

/// Bucketed distributions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Histograms {
    /// Latency behind live, ms.
    pub latency_behind_live_ms: Vec<Bucket>,
    /// Request time to last byte (all kinds), ms.
    pub request_ms: Vec<Bucket>,
}

/// One histogram bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Lower bound, inclusive.
    pub from: f64,
    /// Upper bound, exclusive.
    pub to: f64,
    /// Samples in the bucket.
    pub count: u64,
}

/// What a `publish` run did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// RTMP URL without the key.
    pub url: String,
    /// Publishers started.
    pub publishers: usize,
    /// Publishers that ran to the end.
    pub succeeded: usize,
    /// Bytes written over all publishers.
    pub bytes_sent: u64,
    /// Video plus audio messages over all publishers.
    pub media_messages: u64,
    /// Measured duration, ms.
    pub elapsed_ms: u64,
    /// Per publisher.
    pub streams: Vec<PublisherResult>,
    /// The harness's own load.
    pub harness: Harness,
}

/// One publisher's result.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherResult {
    /// Stream name (the key up to its first `.`, so signatures stay out of reports).
    pub stream: String,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Video plus audio messages.
    pub media_messages: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests;
