//! The summary printed at the end of a run.

use std::fmt::Write;

use super::{PlayReport, PublishReport};
use crate::stats::Percentiles;

fn dist(p: Option<&Percentiles>) -> String {
    match p {
        None => "-".into(),
        Some(p) => format!(
            "p50 {:.0} p90 {:.0} p99 {:.0} max {:.0} ms (n={})",
            p.p50, p.p90, p.p99, p.max, p.count
        ),
    }
}

fn mbit(bps: u64) -> f64 {
    bps as f64 / 1e6
}

/// A few lines for a terminal.
pub fn play(report: &PlayReport) -> String {
    let (r, s, h) = (&report.run, &report.summary, &report.harness);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} viewers over {} ({} connections) for {:.1}s: {}",
        r.viewers,
        r.protocol,
        r.connections,
        r.elapsed_ms as f64 / 1000.0,
        r.url
    );
    let errors: u64 = s.errors.values().sum();
    let _ = writeln!(
        out,
        "  requests {}  bytes {}  throughput {:.2} Mbit/s  errors {}  stalls {}  switches {}",
        s.requests,
        s.bytes,
        mbit(s.throughput_bps),
        errors,
        s.stalls,
        s.switches
    );
    for (kind, n) in &s.errors {
        let _ = writeln!(out, "    error {kind}: {n}");
    }
    let _ = writeln!(
        out,
        "  latency behind live  {}",
        dist(s.latency_behind_live.as_ref())
    );
    let _ = writeln!(
        out,
        "  time to first part   {}",
        dist(s.time_to_first_part.as_ref())
    );
    let _ = writeln!(
        out,
        "  stall duration       {}",
        dist(s.stall_duration.as_ref())
    );
    let audio = s
        .audio_requests_by_kind
        .iter()
        .map(|(k, v)| (format!("audio {k}"), v));
    for (kind, k) in s
        .requests_by_kind
        .iter()
        .map(|(k, v)| (k.clone(), v))
        .chain(audio)
    {
        let n = k.total.as_ref().map_or(0, |p| p.count);
        let _ = writeln!(
            out,
            "  {kind:<18} n={n:<7} failed={:<4} total {}",
            k.failed,
            dist(k.total.as_ref())
        );
    }
    let _ = writeln!(
        out,
        "  harness: cpu {:.0}% of one core (max {:.0}%, {} cores, {:.1} s), loop lag {}, rss {} MiB, peak viewers {}{}",
        h.cpu_percent_mean,
        h.cpu_percent_max,
        h.cores,
        h.cpu_seconds,
        dist(h.loop_lag.as_ref()),
        h.max_rss_kib / 1024,
        h.peak_viewers,
        if h.saturated {
            "  << HARNESS SATURATED: figures may measure the harness"
        } else {
            ""
        }
    );
    out
}

/// A few lines for a terminal.
pub fn publish(report: &PublishReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}/{} publishers ran for {:.1}s to {}: {} bytes, {} media messages",
        report.succeeded,
        report.publishers,
        report.elapsed_ms as f64 / 1000.0,
        report.url,
        report.bytes_sent,
        report.media_messages
    );
    for s in report.streams.iter().filter(|s| s.error.is_some()) {
        let _ = writeln!(
            out,
            "  {}: {}",
            s.stream,
            s.error.as_deref().unwrap_or_default()
        );
    }
    let h = &report.harness;
    let _ = writeln!(
        out,
        "  harness: cpu {:.0}% of one core, loop lag {}",
        h.cpu_percent_mean,
        dist(h.loop_lag.as_ref())
    );
    out
}
