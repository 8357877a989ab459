//! The shipped monitoring config: `promtool check rules` passes on the
//! Prometheus alerting rules, the Grafana dashboard is valid JSON with a
//! query per panel, and every metric either of them names is exported by a
//! running origin or edge (`livecdn up --demo`, scraped after some viewing
//! through the edge).

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::http::{get, wait_ok};
use support::{have, Origin};

fn shipped(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// Every `livecdn_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("livecdn_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every `expr` of the dashboard's panels.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    let mut out = Vec::new();
    for p in panels {
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("no targets: {p}"));
        assert!(!targets.is_empty(), "{p}");
        for t in targets {
            out.push(
                t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no expr: {t}"))
                    .to_string(),
            );
        }
    }
    out
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    if !have("promtool") {
        assert!(
            !support::ci(),
            "promtool is missing (Debian package prometheus)"
        );
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/livecdn-alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_rules_name_is_exported() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&shipped("config/grafana/livecdn-dashboard.json")).unwrap();
    let mut wanted = BTreeSet::new();
    for q in dashboard_queries(&dashboard) {
        let names = metric_names(&q);
        assert!(!names.is_empty(), "a query naming no livecdn metric: {q}");
        wanted.extend(names);
    }
    wanted.extend(metric_names(&shipped(
        "config/prometheus/livecdn-alerts.yml",
    )));
    if !have("ffmpeg") {
        return;
    }
    let up = Origin::up_demo_with_edge();
    // Live through the edge (a viewer, cache hits and misses), with the
    // ladder's rungs running.
    wait_ok(
        &up.edge_url("/live/demo/master.m3u8"),
        Duration::from_secs(30),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut exported = BTreeSet::new();
    loop {
        for _ in 0..3 {
            get(&up.edge_url("/live/demo/source/index.m3u8")).await;
        }
        exported.clear();
        for url in [up.origin.url("/metrics"), up.edge_url("/metrics")] {
            let f = get(&url).await;
            assert_eq!(f.status, 200, "{url}");
            for line in f.text().lines() {
                let name = line
                    .strip_prefix("# TYPE ")
                    .unwrap_or(line)
                    .split(['{', ' '])
                    .next()
                    .unwrap_or("");
                if name.starts_with("livecdn_") {
                    exported.insert(name.to_string());
                }
            }
        }
        let missing: Vec<_> = wanted.difference(&exported).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "named by the dashboard or rules but not exported: {missing:?}\nexported: {exported:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "{} metric names checked against {} exported",
        wanted.len(),
        exported.len()
    );
}

#[test]
fn names_are_found_in_queries() {
    let q = r#"sum by (instance) (rate(livecdn_edge_cache_total{status="hit"}[1m])) / livecdn_origin_x"#;
    let names: Vec<_> = metric_names(q).into_iter().collect();
    assert_eq!(names, ["livecdn_edge_cache_total", "livecdn_origin_x"]);
}
