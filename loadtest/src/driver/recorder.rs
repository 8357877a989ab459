//! Where viewers' events go: a few sharded [`Stats`] (viewer `i` locks shard
//! `i % shards` once per batch of events, so there is no global lock per
//! event) plus two histograms for the report's charts, and the [`Live`]
//! counters for the progress line.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::monitor::Live;
use crate::player::Event;
use crate::report::{Bucket, Histograms};
use crate::stats::{Stats, Summary};

/// Bars in a chart histogram.
const BARS: usize = 40;

#[derive(Debug)]
struct Shard {
    stats: Stats,
    /// Latency behind live, ms.
    latency_ms: Option<Histogram<u64>>,
    /// Request time to last byte, µs.
    request_us: Option<Histogram<u64>>,
}

fn hist() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()
}

/// Sharded measurements of one run.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    shards: Vec<Mutex<Shard>>,
    pub(crate) live: std::sync::Arc<Live>,
}

impl Recorder {
    pub(crate) fn new(start: Instant, shards: usize, live: std::sync::Arc<Live>) -> Recorder {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    stats: Stats::new(),
                    latency_ms: hist(),
                    request_us: hist(),
                })
            })
            .collect();
        Recorder {
            start,
            shards,
            live,
        }
    }

    /// Records a batch of one viewer's events.
    pub(crate) fn record(&self, viewer: usize, events: &[Event]) {
        let (mut requests, mut bytes, mut errors, mut stalls) = (0, 0, 0, 0);
        let (mut lat_sum, mut lat_n) = (0, 0);
        let Some(shard) = self.shards.get(viewer % self.shards.len()) else {
            return;
        };
        let elapsed = self.start.elapsed();
        // A poisoned shard only means another viewer panicked mid-record;
        // its figures are still consistent enough to keep counting.
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        shard.stats.advance_to(elapsed);
        for event in events {
            shard.stats.record(event);
            match *event {
                Event::Request {
                    status,
                    total,
                    bytes: n,
                    ..
                } => {
                    requests += 1;
                    bytes += n;
                    if status.is_some() {
                        let us = u64::try_from(total.as_micros()).unwrap_or(u64::MAX);
                        if let Some(h) = shard.request_us.as_mut() {
                            h.saturating_record(us.clamp(1, 3_600_000_000));
                        }
                    }
                }
                Event::Latency { behind_live } => {
                    let ms = u64::try_from(behind_live.as_millis()).unwrap_or(u64::MAX);
                    if let Some(h) = shard.latency_ms.as_mut() {
                        h.saturating_record(ms.clamp(1, 3_600_000_000));
                    }
                    lat_sum += ms;
                    lat_n += 1;
                }
                Event::StallStart => stalls += 1,
                Event::Error { .. } => errors += 1,
                _ => {}
            }
        }
        drop(shard);
        let live = &self.live;
        Live::add(&live.requests, requests);
        Live::add(&live.bytes, bytes);
        Live::add(&live.errors, errors);
        Live::add(&live.stalls, stalls);
        Live::add(&live.latency_sum_ms, lat_sum);
        Live::add(&live.latency_count, lat_n);
    }

    /// Merges the shards, closing every second up to `elapsed` (rounded up).
    pub(crate) fn finish(&self, elapsed: Duration) -> (Summary, Histograms) {
        let end = Duration::from_secs(elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0));
        let mut stats = Stats::new();
        let (mut latency, mut request) = (hist(), hist());
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.stats.advance_to(end);
            stats.merge(&shard.stats);
            if let (Some(all), Some(one)) = (latency.as_mut(), shard.latency_ms.as_ref()) {
                let _ = all.add(one);
            }
            if let (Some(all), Some(one)) = (request.as_mut(), shard.request_us.as_ref()) {
                let _ = all.add(one);
            }
        }
        let histograms = Histograms {
            latency_behind_live_ms: buckets(latency.as_ref(), 1.0),
            request_ms: buckets(request.as_ref(), 1000.0),
        };
        (stats.summary(), histograms)
    }
}

/// [`BARS`] equal bars from the smallest value to the 99.9th percentile
/// (larger values land in the last bar), scaled by `to_ms`.
fn buckets(h: Option<&Histogram<u64>>, to_ms: f64) -> Vec<Bucket> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Vec::new();
    };
    let lo = h.min() as f64;
    let hi = (h.value_at_quantile(0.999) as f64).max(lo + 1.0);
    let width = (hi - lo) / BARS as f64;
    let mut bars: Vec<Bucket> = (0..BARS)
        .map(|i| Bucket {
            from: (lo + width * i as f64) / to_ms,
            to: (lo + width * (i + 1) as f64) / to_ms,
            count: 0,
        })
        .collect();
    for v in h.iter_recorded() {
        let value = v.value_iterated_to() as f64;
        let index = (((value - lo) / width) as usize).min(BARS - 1);
        if let Some(bar) = bars.get_mut(index) {
            bar.count += v.count_at_value();
        }
    }
    bars
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_sample() {
        let mut h = hist().unwrap();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let bars = buckets(Some(&h), 1.0);
        assert_eq!(bars.len(), BARS);
        assert_eq!(bars.iter().map(|b| b.count).sum::<u64>(), 1000);
        assert!(bars[0].from >= 1.0 && bars[BARS - 1].to <= 1001.0);
    }
}
