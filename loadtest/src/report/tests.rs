//! The writers on a synthetic report: JSON parses back with every figure,
//! HTML is one page with inline SVG charts and nothing fetched.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use super::*;
use crate::player::{Event, RequestKind, Track};
use crate::stats::Stats;

fn report() -> PlayReport {
    let mut stats = Stats::new();
    for second in 0..5u64 {
        stats.advance_to(Duration::from_secs(second));
        for i in 0..20u64 {
            stats.record(&Event::Request {
                kind: RequestKind::Part,
                track: Track::Main,
                status: Some(200),
                ttfb: Duration::from_millis(5 + i),
                total: Duration::from_millis(10 + i),
                bytes: 1000,
            });
            stats.record(&Event::Latency {
                behind_live: Duration::from_millis(900 + 10 * i),
            });
        }
    }
    stats.advance_to(Duration::from_secs(5));
    PlayReport {
        run: RunInfo {
            url: "http://127.0.0.1:1/<live>&.m3u8".into(),
            protocol: "h2".into(),
            viewers: 20,
            connections: 8,
            duration_ms: 5000,
            ramp_ms: 1000,
            elapsed_ms: 5001,
            started_unix_ms: 1,
        },
        summary: stats.summary(),
        harness: Harness {
            cores: 2,
            cpu_seconds: 0.5,
            cpu_percent_mean: 10.0,
            cpu_percent_max: 20.0,
            loop_lag: None,
            max_rss_kib: 1024,
            peak_viewers: 20,
            saturated: false,
        },
        timeline: (0..5)
            .map(|second| Sample {
                second,
                viewers: 20,
                cpu_percent: 10.0,
                loop_lag_max_ms: 1.0,
            })
            .collect(),
        histograms: Histograms {
            latency_behind_live_ms: (0..10)
                .map(|i| Bucket {
                    from: 900.0 + 20.0 * f64::from(i),
                    to: 920.0 + 20.0 * f64::from(i),
                    count: 10,
                })
                .collect(),
            request_ms: Vec::new(),
        },
    }
}

#[test]
fn json_parses_back_with_every_section() {
    let text = json::to_string(&report()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["summary"]["requests"], 100);
    assert_eq!(value["summary"]["bytes"], 100_000);
    assert_eq!(value["summary"]["intervals"].as_array().unwrap().len(), 5);
    assert_eq!(value["run"]["protocol"], "h2");
    assert_eq!(value["harness"]["cores"], 2);
    assert_eq!(value["timeline"].as_array().unwrap().len(), 5);
    assert_eq!(
        value["histograms"]["latency_behind_live_ms"][0]["count"],
        10
    );
}

#[test]
fn html_is_self_contained_with_svg_charts() {
    let page = html::play(&report()).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        page.matches("<svg").count() >= 4,
        "latency, histogram, throughput, viewers"
    );
    assert!(!page.contains("<script"), "no scripts");
    assert!(!page.contains("src=\"http"), "nothing fetched");
    assert!(page.contains("&lt;live&gt;&amp;"), "the URL is escaped");
    assert!(!page.contains("<live>"));
}

#[test]
fn html_draws_an_empty_run() {
    let mut empty = report();
    empty.summary = Stats::new().summary();
    empty.timeline.clear();
    empty.histograms = Histograms::default();
    assert!(html::play(&empty).unwrap().contains("<svg"));
}

#[test]
fn text_names_the_saturated_harness() {
    let mut r = report();
    assert!(!text::play(&r).contains("SATURATED"));
    r.harness.saturated = true;
    assert!(text::play(&r).contains("SATURATED"));
}
