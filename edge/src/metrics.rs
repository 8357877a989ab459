//! Edge metrics: counters by stream, status and cache outcome, and
//! hdrhistogram latency distributions exported as Prometheus summaries.

use hdrhistogram::Histogram;
use livecdn_shared::exposition::{self, Kind};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Mutex;
use std::time::Duration;

/// Label (name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

/// An extra gauge for [`EdgeMetrics::render`]: name, help, and (labels,
/// value) rows.
pub type Gauge<'a> = (&'a str, &'a str, Vec<(Labels, f64)>);

/// A latency distribution in microseconds, 1 µs to 60 s, 3 significant
/// digits (a few tens of KiB each).
pub struct Latency(Mutex<Histogram<u64>>);

impl Latency {
    fn new() -> Self {
        #[allow(clippy::expect_used)]
        let h = Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid"); // ok: constant arguments
        Self(Mutex::new(h))
    }

    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, 60_000_000);
        if let Ok(mut h) = self.0.lock() {
            let _ = h.record(us);
        }
    }

    /// (count, p50, p90, p99, max) in seconds.
    pub fn snapshot(&self) -> (u64, [f64; 4]) {
        let Ok(h) = self.0.lock() else {
            return (0, [0.0; 4]);
        };
        let s = |v: u64| v as f64 / 1e6;
        (
            h.len(),
            [
                s(h.value_at_quantile(0.5)),
                s(h.value_at_quantile(0.9)),
                s(h.value_at_quantile(0.99)),
                s(h.max()),
            ],
        )
    }
}

pub struct EdgeMetrics {
    registry: prometheus_client::registry::Registry,
    requests: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    cache: Family<Labels, Counter>,
    upstream_fetches: Family<Labels, Counter>,
    pub ttfb: Latency,
    pub upstream: Latency,
    /// How long after its answer reached the edge (pulled or pushed) a
    /// held blocking reload was answered.
    pub blocking_release: Latency,
}

impl Default for EdgeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EdgeMetrics {
    pub fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::with_prefix("livecdn_edge");
        let requests = Family::<Labels, Counter>::default();
        let bytes = Family::<Labels, Counter>::default();
        let cache = Family::<Labels, Counter>::default();
        let upstream_fetches = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Requests by stream, object kind, protocol and status",
            requests.clone(),
        );
        registry.register("response_bytes", "Body bytes sent by stream", bytes.clone());
        registry.register(
            "cache",
            "Cache outcomes (hit, miss, coalesced, stale) by object kind",
            cache.clone(),
        );
        registry.register(
            "upstream_fetches",
            "Upstream requests by upstream and status",
            upstream_fetches.clone(),
        );
        Self {
            registry,
            requests,
            bytes,
            cache,
            upstream_fetches,
            ttfb: Latency::new(),
            upstream: Latency::new(),
            blocking_release: Latency::new(),
        }
    }

    pub fn request(&self, stream: &str, kind: &'static str, protocol: &'static str, status: u16) {
        self.requests
            .get_or_create(&vec![
                ("stream", stream.to_string()),
                ("kind", kind.to_string()),
                ("protocol", protocol.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    pub fn bytes(&self, stream: &str, n: u64) {
        self.bytes
            .get_or_create(&vec![("stream", stream.to_string())])
            .inc_by(n);
    }

    pub fn cache(&self, status: &'static str, kind: &'static str) {
        self.cache
            .get_or_create(&vec![
                ("status", status.to_string()),
                ("kind", kind.to_string()),
            ])
            .inc();
    }

    pub fn upstream_fetch(&self, upstream: &str, status: u16) {
        self.upstream_fetches
            .get_or_create(&vec![
                ("upstream", upstream.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// Prometheus text: counters, latency summaries, then `extra` gauges.
    /// The registry, the latency summaries, `extra` gauges and `text`
    /// (whole families rendered elsewhere, such as the access log's).
    pub fn render(&self, extra: &[Gauge<'_>], text: &str) -> String {
        let mut out = String::with_capacity(8192);
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_err() {
            out.clear();
        }
        for (name, help, h) in [
            ("ttfb_seconds", "Time to response headers", &self.ttfb),
            (
                "upstream_latency_seconds",
                "Upstream time to response headers",
                &self.upstream,
            ),
            (
                "blocking_release_seconds",
                "Held blocking reloads: from the answer's arrival at the edge to the response",
                &self.blocking_release,
            ),
        ] {
            let (count, q) = h.snapshot();
            let name = format!("livecdn_edge_{name}");
            let mut f = exposition::family(&mut out, &name, Kind::Summary, help);
            for (quantile, v) in ["0.5", "0.9", "0.99", "1"].iter().zip(q) {
                f.sample(&[("quantile", quantile)], v);
            }
            f.count(count);
        }
        for (name, help, rows) in extra {
            let name = format!("livecdn_edge_{name}");
            let mut f = exposition::family(&mut out, &name, Kind::Gauge, help);
            for (labels, v) in rows {
                f.sample(labels, *v);
            }
        }
        out.push_str(text);
        exposition::finish(&mut out);
        out
    }
}
