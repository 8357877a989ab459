//! Origin metrics in Prometheus text format: counters kept by
//! prometheus-client, per-stream ingest health read from the registry at
//! scrape time (so a removed stream disappears from the output).

use crate::registry::Registry;
use livecdn_shared::exposition::{self, Kind};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::time::Instant;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    publishes: Family<Labels, Counter>,
    http: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    health_changes: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::with_prefix("livecdn_origin");
        let publishes = Family::<Labels, Counter>::default();
        let http = Family::<Labels, Counter>::default();
        let refused = Family::<Labels, Counter>::default();
        let health_changes = Family::<Labels, Counter>::default();
        registry.register(
            "health_changes",
            "Stream health changes by the state entered (STARVING, HEALTHY)",
            health_changes.clone(),
        );
        registry.register(
            "publishes",
            "RTMP publish attempts by result (accepted or the refusal reason)",
            publishes.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by object kind and status code",
            http.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused, by listener and why (per_ip, global, credential)",
            refused.clone(),
        );
        Self {
            registry,
            publishes,
            http,
            refused,
            health_changes,
        }
    }

    /// A live stream's health changed to `to`.
    pub fn health_change(&self, to: &str) {
        self.health_changes
            .get_or_create(&vec![("to", to.to_string())])
            .inc();
    }

    pub fn publish(&self, result: &str) {
        self.publishes
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// A push connection closed for a missing or invalid cluster credential.
    pub fn push_refused(&self) {
        self.refused
            .get_or_create(&vec![
                ("listener", "push".to_string()),
                ("limit", "credential".to_string()),
            ])
            .inc();
    }

    /// An RTMP connection closed at accept because `limit` was reached.
    pub fn refused_connection(&self, listener: &'static str, limit: &'static str) {
        self.refused
            .get_or_create(&vec![
                ("listener", listener.to_string()),
                ("limit", limit.to_string()),
            ])
            .inc();
    }

    pub fn http(&self, kind: &'static str, status: u16) {
        self.http
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// The whole exposition: counters, then per-stream gauges.
    /// Everything, with `text` (families rendered elsewhere, such as the
    /// access log's) before the end marker.
    pub fn render(&self, streams: &Registry, now: Instant, text: &str) -> String {
        let mut out = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let gauges: [(&str, &str); 9] = [
            ("ingest_bitrate_bps", "Ingest bitrate over the last 5 s"),
            (
                "ingest_fps",
                "Video frames per second received over the last 5 s",
            ),
            (
                "keyframe_interval_seconds",
                "Media time between the last two IDRs",
            ),
            (
                "av_drift_ms",
                "Latest video timestamp minus latest audio timestamp",
            ),
            (
                "window_bytes",
                "Media bytes held in the live window, all renditions",
            ),
            (
                "publisher_connected",
                "1 while a publisher feeds the stream",
            ),
            (
                "stream_healthy",
                "1 while a live stream is HEALTHY, 0 while STARVING (absent when unknown)",
            ),
            (
                "ingest_bitrate_average_bps",
                "The ingest bitrate's recent average, which drops are measured against",
            ),
            (
                "publisher_clock_drift_ms",
                "The publisher's media clock minus the origin's since it started",
            ),
        ];
        let hubs = streams.list();
        let rows: Vec<_> = hubs
            .iter()
            .map(|h| {
                let (report, bytes) = h.read(|p| {
                    (
                        p.health().report(now),
                        p.tracks().map(|t| t.window_bytes()).sum::<usize>(),
                    )
                });
                let (verdict, _, (average, _)) = h.verdict();
                let healthy = match verdict {
                    crate::verdict::Verdict::Healthy => Some(1.0),
                    crate::verdict::Verdict::Starving => Some(0.0),
                    crate::verdict::Verdict::Unknown => None,
                };
                (
                    h.name().to_string(),
                    report,
                    bytes,
                    h.has_publisher(),
                    healthy,
                    average,
                )
            })
            .collect();
        for (i, (name, help)) in gauges.iter().enumerate() {
            let name = format!("livecdn_origin_{name}");
            let mut f = exposition::family(&mut out, &name, Kind::Gauge, help);
            for (stream, r, bytes, live, healthy, average) in &rows {
                let v = match i {
                    0 => Some(r.bitrate_bps as f64),
                    1 => Some(r.video_fps),
                    2 => r.keyframe_interval_s,
                    3 => r.av_drift_ms.map(|d| d as f64),
                    4 => Some(*bytes as f64),
                    5 => Some(if *live { 1.0 } else { 0.0 }),
                    6 => *healthy,
                    7 => *average,
                    _ => r.clock_drift_ms.map(|d| d as f64),
                };
                if let Some(v) = v {
                    f.sample(&[("stream", stream)], v);
                }
            }
        }
        render_ladder(&mut out, &hubs);
        out.push_str(text);
        exposition::finish(&mut out);
        out
    }
}

/// Per-rendition and per-encoder gauges: what an operator watches to see
/// whether the ladder keeps up.
fn render_ladder(out: &mut String, hubs: &[std::sync::Arc<crate::registry::StreamHub>]) {
    type Row = (String, String, [Option<f64>; 4]);
    let mut rows: Vec<Row> = Vec::new();
    for h in hubs {
        h.read(|p| {
            for t in p.tracks() {
                let rung = t.name != crate::packager::SOURCE && t.name != crate::packager::AUDIO;
                rows.push((
                    h.name().to_string(),
                    t.name.clone(),
                    [
                        t.bandwidth().map(|b| b.1 as f64),
                        t.measured_frame_rate(),
                        t.mean_segment_seconds(),
                        if rung { p.rung_lag_ms(&t.name) } else { None },
                    ],
                ));
            }
        });
    }
    let per_rendition: [(&str, &str); 4] = [
        (
            "rendition_bitrate_bps",
            "Average bitrate of a rendition over the live window",
        ),
        (
            "rendition_fps",
            "Frames per second of a rendition over the live window",
        ),
        (
            "rendition_segment_seconds",
            "Mean segment (keyframe interval) length of a rendition",
        ),
        (
            "rendition_lag_ms",
            "How far a transcoded rendition trails the source",
        ),
    ];
    for (i, (name, help)) in per_rendition.iter().enumerate() {
        let name = format!("livecdn_origin_{name}");
        let mut f = exposition::family(out, &name, Kind::Gauge, help);
        for (stream, rendition, values) in &rows {
            if let Some(v) = values[i] {
                f.sample(&[("stream", stream), ("rendition", rendition)], v);
            }
        }
    }
    let per_encoder: [(&str, &str); 4] = [
        (
            "transcode_speed",
            "Encoder speed as a multiple of real time",
        ),
        (
            "transcode_queue_depth",
            "Source frames queued for the encoder",
        ),
        ("transcode_restarts", "Encoder restarts after failures"),
        (
            "transcode_dropped_frames",
            "Source frames the encoder's full queue refused",
        ),
    ];
    let enc: Vec<_> = hubs
        .iter()
        .map(|h| {
            let s = h.transcode_status();
            let dropped = h.feed_dropped.load(std::sync::atomic::Ordering::Relaxed);
            (h.name().to_string(), s, dropped)
        })
        .filter(|(_, s, _)| s.encoder.is_some())
        .collect();
    for (i, (name, help)) in per_encoder.iter().enumerate() {
        let name = format!("livecdn_origin_{name}");
        let mut f = exposition::family(out, &name, Kind::Gauge, help);
        for (stream, s, dropped) in &enc {
            let v = match i {
                0 => s.speed,
                1 => Some(s.queue_depth as f64),
                2 => Some(s.restarts as f64),
                _ => Some(*dropped as f64),
            };
            if let Some(v) = v {
                f.sample(&[("stream", stream)], v);
            }
        }
    }
}
