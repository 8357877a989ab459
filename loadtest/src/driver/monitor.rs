//! The harness watching itself: CPU time from `/proc/self/stat`, event-loop
//! lag from a 100 ms timer's oversleep, and the live counters the progress
//! line reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::report::{Harness, Sample};
use crate::stats::Percentiles;

/// Lag timer period.
const TICK: Duration = Duration::from_millis(100);
/// Clock ticks per second of `/proc/self/stat` times (USER_HZ, 100 on
/// Linux everywhere that matters).
const CLOCK_TICKS: f64 = 100.0;

/// Counters updated by the viewers, read by the progress line. Relaxed
/// atomics: a few adds per event batch, never a lock.
#[derive(Debug, Default)]
pub struct Live {
    /// Viewers running now.
    pub viewers: AtomicU64,
    /// Requests finished.
    pub requests: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Errors of any kind.
    pub errors: AtomicU64,
    /// Stalls begun.
    pub stalls: AtomicU64,
    /// Sum and count of latency-behind-live samples (ms), for a running mean.
    pub latency_sum_ms: AtomicU64,
    /// See `latency_sum_ms`.
    pub latency_count: AtomicU64,
    /// Harness CPU in the last second, percent of one core.
    pub cpu_percent: AtomicU64,
    /// Largest event-loop lag in the last second, microseconds.
    pub lag_us: AtomicU64,
}

impl Live {
    /// Adds to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// User plus system CPU seconds of this process, if `/proc` is there.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'; utime and stime are fields 14 and 15 overall.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS)
}

/// Peak resident set size in KiB (`VmHWM`), if `/proc` is there.
pub fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples CPU and lag until `deadline`, then summarises.
pub(crate) async fn watch(
    live: &Live,
    start: Instant,
    deadline: Instant,
) -> (Harness, Vec<Sample>) {
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).ok();
    let cpu_start = cpu_seconds().unwrap_or(0.0);
    let mut cpu_prev = cpu_start;
    let mut second_start = Instant::now();
    let mut second_lag_us = 0u64;
    let mut samples = Vec::new();
    let mut peak_viewers = 0;
    while Instant::now() < deadline {
        let before = Instant::now();
        tokio::time::sleep(TICK.min(deadline.saturating_duration_since(before))).await;
        let over = before.elapsed().saturating_sub(TICK);
        let over_us = u64::try_from(over.as_micros()).unwrap_or(u64::MAX);
        if let Some(h) = lag.as_mut() {
            h.saturating_record(over_us.clamp(1, 60_000_000));
        }
        second_lag_us = second_lag_us.max(over_us);
        let viewers = Live::get(&live.viewers);
        peak_viewers = peak_viewers.max(viewers);
        let wall = second_start.elapsed();
        if wall >= Duration::from_secs(1) {
            let cpu = cpu_seconds().unwrap_or(cpu_prev);
            let percent = (cpu - cpu_prev) / wall.as_secs_f64() * 100.0;
            cpu_prev = cpu;
            samples.push(Sample {
                second: samples.len() as u64,
                viewers,
                cpu_percent: percent,
                loop_lag_max_ms: second_lag_us as f64 / 1000.0,
            });
            live.cpu_percent.store(percent as u64, Ordering::Relaxed);
            live.lag_us.store(second_lag_us, Ordering::Relaxed);
            second_lag_us = 0;
            second_start = Instant::now();
        }
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-3);
    let cpu_used = cpu_seconds().map_or(0.0, |c| c - cpu_start);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loop_lag = lag.filter(|h| !h.is_empty()).map(|h| Percentiles {
        count: h.len(),
        min: h.min() as f64 / 1000.0,
        mean: h.mean() / 1000.0,
        p50: h.value_at_quantile(0.5) as f64 / 1000.0,
        p90: h.value_at_quantile(0.9) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
        max: h.max() as f64 / 1000.0,
    });
    let cpu_percent_mean = cpu_used / elapsed * 100.0;
    let cpu_percent_max = samples.iter().map(|s| s.cpu_percent).fold(0.0, f64::max);
    let saturated =
        cpu_percent_mean > 85.0 * cores as f64 || loop_lag.as_ref().is_some_and(|l| l.p99 > 50.0);
    let harness = Harness {
        cores,
        cpu_seconds: cpu_used,
        cpu_percent_mean,
        cpu_percent_max,
        loop_lag,
        max_rss_kib: max_rss_kib().unwrap_or(0),
        peak_viewers,
        saturated,
    };
    (harness, samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_figures_are_read() {
        assert!(cpu_seconds().is_some_and(|c| c >= 0.0));
        assert!(max_rss_kib().is_some_and(|k| k > 0));
    }
}
