//! Load-test measurements: hdrhistograms per metric, counters, and one-second
//! intervals, fed with the player's [`Event`]s.
//!
//! Overall histograms are exact and merge exactly ([`Stats::merge`]), so one
//! `Stats` per viewer or per task can be combined at the end. Per-second
//! [`Interval`]s are snapshots; merging them sums counts exactly but only
//! approximates percentiles. For exact per-second percentiles across viewers,
//! feed all events into one `Stats`.
//!
//! Histograms hold microseconds (latency behind live: milliseconds); reports
//! ([`Summary`], [`Interval`]) are in milliseconds.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::player::{Event, RequestKind, Track};

/// Most one-second intervals kept (an hour); later seconds still count in the
/// overall figures, and [`Summary::dropped_intervals`] says how many were lost.
pub const MAX_INTERVALS: usize = 3600;
/// Largest value a histogram holds: an hour in microseconds; larger values
/// saturate.
const HIGH: u64 = 3_600_000_000;

/// A histogram that never fails: values are clamped into range.
#[derive(Debug, Clone)]
struct Hist(Option<Histogram<u64>>);

impl Default for Hist {
    fn default() -> Hist {
        Hist(Histogram::new_with_bounds(1, HIGH, 2).ok())
    }
}

impl Hist {
    fn record(&mut self, value: u64) {
        if let Some(h) = &mut self.0 {
            h.saturating_record(value.clamp(1, HIGH));
        }
    }

    fn merge(&mut self, other: &Hist) {
        if let (Some(h), Some(o)) = (&mut self.0, &other.0) {
            // Same bounds on both sides, so adding cannot go out of range.
            let _ = h.add(o);
        }
    }

    fn len(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    fn reset(&mut self) {
        if let Some(h) = &mut self.0 {
            h.reset();
        }
    }

    /// Percentiles, scaled by `to_ms` (1000.0 for microseconds), or `None`
    /// when empty.
    fn percentiles(&self, to_ms: f64) -> Option<Percentiles> {
        let h = self.0.as_ref().filter(|h| !h.is_empty())?;
        let q = |q: f64| h.value_at_quantile(q) as f64 / to_ms;
        Some(Percentiles {
            count: h.len(),
            min: h.min() as f64 / to_ms,
            mean: h.mean() / to_ms,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: h.max() as f64 / to_ms,
        })
    }
}

/// A distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

#[derive(Debug, Clone, Default)]
struct KindStats {
    total: Hist,
    ttfb: Hist,
    failed: u64,
    bytes: u64,
}

/// One second of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Interval {
    /// Seconds since the start of the run.
    pub second: u64,
    /// Requests finished.
    pub requests: u64,
    /// Errors of any kind.
    pub errors: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Media throughput (parts and segments), bits per second.
    pub throughput_bps: u64,
    /// Stalls begun.
    pub stalls: u64,
    /// Stall time ended in this second, ms.
    pub stall_ms: f64,
    /// Rendition switches.
    pub switches: u64,
    /// Median request latency (all kinds), ms.
    pub request_p50_ms: f64,
    /// 99th percentile request latency (all kinds), ms.
    pub request_p99_ms: f64,
    /// Median latency behind live, ms.
    pub latency_p50_ms: f64,
    /// Largest latency behind live, ms.
    pub latency_max_ms: f64,
}

/// Requests of one kind, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindSummary {
    /// Requests that failed without a response.
    pub failed: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Time to last byte.
    pub total: Option<Percentiles>,
    /// Time to first byte.
    pub ttfb: Option<Percentiles>,
}

/// Everything measured, serialisable for the JSON and HTML reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Requests finished.
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Mean media throughput over the closed seconds, bits per second.
    pub throughput_bps: u64,
    /// Errors by kind (see [`Event::Error`]).
    pub errors: BTreeMap<String, u64>,
    /// Stalls begun.
    pub stalls: u64,
    /// Rendition switches.
    pub switches: u64,
    /// Request latency and ttfb by kind label: the main track's (the
    /// variant's playlists and media, and the URL given).
    pub requests_by_kind: BTreeMap<String, KindSummary>,
    /// The same for the separate audio rendition's requests (empty when the
    /// variant has none). `requests`, `bytes` and `throughput_bps` count
    /// both tracks.
    pub audio_requests_by_kind: BTreeMap<String, KindSummary>,
    /// Time from player start to the first media.
    pub time_to_first_part: Option<Percentiles>,
    /// Wall clock minus the playhead's program date-time.
    pub latency_behind_live: Option<Percentiles>,
    /// Length of each stall.
    pub stall_duration: Option<Percentiles>,
    /// One entry per second.
    pub intervals: Vec<Interval>,
    /// Seconds beyond [`MAX_INTERVALS`] that were not kept.
    pub dropped_intervals: u64,
}

/// Accumulated measurements; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    kinds: BTreeMap<(Track, RequestKind), KindStats>,
    first_part: Hist,
    latency: Hist,
    stall_durations: Hist,
    requests: u64,
    bytes: u64,
    media_bytes: u64,
    errors: BTreeMap<&'static str, u64>,
    stalls: u64,
    switches: u64,
    /// The open interval and its histograms.
    current: Interval,
    current_requests: Hist,
    current_latency: Hist,
    current_media_bytes: u64,
    intervals: Vec<Interval>,
    dropped_intervals: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Stats {
    /// Empty stats; the open interval is second 0.
    pub fn new() -> Stats {
        Stats::default()
    }

    /// Records one event in the overall figures and the open interval.
    pub fn record(&mut self, event: &Event) {
        match *event {
            Event::Request {
                kind,
                track,
                status,
                ttfb,
                total,
                bytes,
            } => {
                self.requests += 1;
                self.bytes += bytes;
                self.current.requests += 1;
                self.current.bytes += bytes;
                if kind.is_media() {
                    self.media_bytes += bytes;
                    self.current_media_bytes += bytes;
                }
                let entry = self.kinds.entry((track, kind)).or_default();
                entry.bytes += bytes;
                if status.is_none() {
                    entry.failed += 1;
                    return;
                }
                entry.total.record(micros(total));
                entry.ttfb.record(micros(ttfb));
                self.current_requests.record(micros(total));
            }
            Event::FirstPart { after } => self.first_part.record(micros(after)),
            Event::Latency { behind_live } => {
                let ms = u64::try_from(behind_live.as_millis()).unwrap_or(u64::MAX);
                self.latency.record(ms);
                self.current_latency.record(ms);
            }
            Event::StallStart => {
                self.stalls += 1;
                self.current.stalls += 1;
            }
            Event::StallEnd { duration } => {
                self.stall_durations.record(micros(duration));
                self.current.stall_ms += duration.as_secs_f64() * 1000.0;
            }
            Event::Switch { .. } => {
                self.switches += 1;
                self.current.switches += 1;
            }
            Event::Error { kind } => {
                *self.errors.entry(kind).or_default() += 1;
                self.current.errors += 1;
            }
        }
    }

    /// Closes every interval before the second containing `elapsed` (time
    /// since the start of the run); seconds without events become empty
    /// intervals. Call before recording events of a later second.
    pub fn advance_to(&mut self, elapsed: Duration) {
        let target = elapsed.as_secs();
        while self.current.second < target {
            self.close_interval();
        }
    }

    fn close_interval(&mut self) {
        let next = self.current.second + 1;
        let mut done = std::mem::take(&mut self.current);
        self.current.second = next;
        done.throughput_bps = self.current_media_bytes.saturating_mul(8);
        if let Some(p) = self.current_requests.percentiles(1000.0) {
            (done.request_p50_ms, done.request_p99_ms) = (p.p50, p.p99);
        }
        if let Some(p) = self.current_latency.percentiles(1.0) {
            (done.latency_p50_ms, done.latency_max_ms) = (p.p50, p.max);
        }
        self.current_requests.reset();
        self.current_latency.reset();
        self.current_media_bytes = 0;
        if self.intervals.len() < MAX_INTERVALS {
            self.intervals.push(done);
        } else {
            self.dropped_intervals += 1;
        }
    }

    /// The closed one-second intervals, oldest first.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Errors of one kind so far.
    pub fn errors(&self, kind: &str) -> u64 {
        self.errors.get(kind).copied().unwrap_or(0)
    }

    /// Adds another run's (or viewer's) figures; intervals are matched by second.
    pub fn merge(&mut self, other: &Stats) {
        for (kind, theirs) in &other.kinds {
            let ours = self.kinds.entry(*kind).or_default();
            ours.total.merge(&theirs.total);
            ours.ttfb.merge(&theirs.ttfb);
            ours.failed += theirs.failed;
            ours.bytes += theirs.bytes;
        }
        self.first_part.merge(&other.first_part);
        self.latency.merge(&other.latency);
        self.stall_durations.merge(&other.stall_durations);
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.media_bytes += other.media_bytes;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.stalls += other.stalls;
        self.switches += other.switches;
        self.dropped_intervals = self.dropped_intervals.max(other.dropped_intervals);
        for theirs in &other.intervals {
            let full = self.intervals.len() >= MAX_INTERVALS;
            match self
                .intervals
                .iter_mut()
                .find(|i| i.second == theirs.second)
            {
                Some(ours) => merge_interval(ours, theirs),
                None if full => self.dropped_intervals += 1,
                None => self.intervals.push(theirs.clone()),
            }
        }
        self.intervals.sort_by_key(|i| i.second);
    }

    /// Everything so far, for reports. The open interval is not included.
    pub fn summary(&self) -> Summary {
        let seconds = (self.intervals.len() as u64).max(1);
        Summary {
            requests: self.requests,
            bytes: self.bytes,
            throughput_bps: self.media_bytes.saturating_mul(8) / seconds,
            errors: self
                .errors
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            stalls: self.stalls,
            switches: self.switches,
            requests_by_kind: self.kind_summaries(Track::Main),
            audio_requests_by_kind: self.kind_summaries(Track::Audio),
            time_to_first_part: self.first_part.percentiles(1000.0),
            latency_behind_live: self.latency.percentiles(1.0),
            stall_duration: self.stall_durations.percentiles(1000.0),
            intervals: self.intervals.clone(),
            dropped_intervals: self.dropped_intervals,
        }
    }

    fn kind_summaries(&self, track: Track) -> BTreeMap<String, KindSummary> {
        self.kinds
            .iter()
            .filter(|((t, _), _)| *t == track)
            .map(|((_, kind), s)| {
                let summary = KindSummary {
                    failed: s.failed,
                    bytes: s.bytes,
                    total: s.total.percentiles(1000.0),
                    ttfb: s.ttfb.percentiles(1000.0),
                };
                (kind.as_str().to_owned(), summary)
            })
            .collect()
    }

    /// Requests of the main track recorded with a response, of one kind.
    pub fn request_count(&self, kind: RequestKind) -> u64 {
        self.track_request_count(Track::Main, kind)
    }

    /// Requests of one track recorded with a response, of one kind.
    pub fn track_request_count(&self, track: Track, kind: RequestKind) -> u64 {
        self.kinds.get(&(track, kind)).map_or(0, |k| k.total.len())
    }
}

/// Combines two snapshots of the same second: counts exactly, medians as a
/// request-weighted mean, p99 and max as the larger.
fn merge_interval(ours: &mut Interval, theirs: &Interval) {
    let (wa, wb) = (ours.requests as f64, theirs.requests as f64);
    let mean = |a: f64, b: f64| match wa + wb {
        0.0 => a.max(b),
        total => (a * wa + b * wb) / total,
    };
    ours.request_p50_ms = mean(ours.request_p50_ms, theirs.request_p50_ms);
    ours.latency_p50_ms = mean(ours.latency_p50_ms, theirs.latency_p50_ms);
    ours.request_p99_ms = ours.request_p99_ms.max(theirs.request_p99_ms);
    ours.latency_max_ms = ours.latency_max_ms.max(theirs.latency_max_ms);
    ours.requests += theirs.requests;
    ours.errors += theirs.errors;
    ours.bytes += theirs.bytes;
    ours.throughput_bps += theirs.throughput_bps;
    ours.stalls += theirs.stalls;
    ours.stall_ms += theirs.stall_ms;
    ours.switches += theirs.switches;
}
