//! Upstream failover and stale-if-error (DESIGN.md section 5): when an
//! origin dies the edge fetches from the next one, keeps serving what it has
//! cached, reports the dead origin unhealthy, and uses it again once its
//! health check passes.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::client::get;
use common::{edge_config, FakeConfig, FakeUpstream, RunningEdge};
use livecdn_shared::config::EdgeRole;
use std::net::SocketAddr;
use std::time::Duration;

fn tagged(tag: &'static str) -> FakeConfig {
    FakeConfig {
        tag,
        ..FakeConfig::default()
    }
}

/// The value of `livecdn_edge_upstream_healthy` for `upstream`, if listed.
async fn healthy_gauge(edge: SocketAddr, upstream: &str) -> Option<f64> {
    let metrics = get(edge, "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    let prefix = format!("livecdn_edge_upstream_healthy{{upstream=\"{upstream}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.trim().parse().unwrap())
}

/// `upstreams[].healthy` for `upstream` in `/api/streams`.
async fn api_healthy(edge: SocketAddr, upstream: &str) -> Option<bool> {
    let api = get(edge, "/api/streams").await;
    assert_eq!(api.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    // The API carries the latency histograms too; by now requests were served.
    assert!(
        json["latency_seconds"]["ttfb"]["count"].as_u64().unwrap() > 0,
        "{json}"
    );
    assert!(
        json["latency_seconds"]["upstream"]["count"]
            .as_u64()
            .unwrap()
            > 0,
        "{json}"
    );
    json["upstreams"]
        .as_array()?
        .iter()
        .find(|u| u["url"] == upstream)
        .and_then(|u| u["healthy"].as_bool())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_origin_fails_over_to_the_next_and_cached_parts_stay_served() {
    let a = FakeUpstream::start(tagged("a")).await;
    let b = FakeUpstream::start(tagged("b")).await;
    let (a_url, b_url, a_addr) = (a.url(), b.url(), a.addr);
    let edge = RunningEdge::start(edge_config(
        EdgeRole::Edge,
        &[a_url.clone(), b_url.clone()],
        &[],
    ))
    .await;
    let cached: Vec<String> = (0..3)
        .map(|p| format!("/live/cam/source/1.{p}.m4s"))
        .collect();
    let cached_bodies: Vec<_> = cached.iter().map(|p| a.body(p).unwrap()).collect();
    for path in &cached {
        let got = get(edge.http, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.x_cache(), "MISS", "{path}");
        assert!(got.body == a.body(path).unwrap(), "{path} not from A");
        assert_eq!(a.count(path), 1);
    }
    assert_eq!(b.total(), 0);
    assert_eq!(healthy_gauge(edge.http, &a_url).await, Some(1.0));

    a.stop().await;
    let fresh: Vec<String> = (0..3)
        .map(|p| format!("/live/cam/source/2.{p}.m4s"))
        .collect();
    for (i, path) in fresh.iter().enumerate() {
        let got = get(edge.http, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert!(got.body == b.body(path).unwrap(), "{path} not from B");
        assert_eq!(b.total(), i + 1, "{:?}", b.counts());
    }
    for (path, body) in cached.iter().zip(&cached_bodies) {
        let got = get(edge.http, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.x_cache(), "HIT", "{path}");
        assert!(got.body == *body, "{path}");
    }
    assert_eq!(b.total(), fresh.len(), "cached parts were fetched again");
    assert_eq!(healthy_gauge(edge.http, &a_url).await, Some(0.0));
    assert_eq!(healthy_gauge(edge.http, &b_url).await, Some(1.0));
    assert_eq!(api_healthy(edge.http, &a_url).await, Some(false));
    assert_eq!(api_healthy(edge.http, &b_url).await, Some(true));
    assert_eq!(get(edge.http, "/readyz").await.status, 200);

    // A comes back on the same port: its health check passes within a few
    // intervals and, being listed first, it serves new objects again.
    let a = FakeUpstream::start_at(a_addr, tagged("a")).await;
    let mut back = false;
    for _ in 0..100 {
        if healthy_gauge(edge.http, &a_url).await == Some(1.0) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "A not healthy again after 5 s (health checks seen: {})",
        a.health_checks()
    );
    let path = "/live/cam/source/3.0.m4s";
    let got = get(edge.http, path).await;
    assert_eq!(got.status, 200);
    assert!(
        got.body == a.body(path).unwrap(),
        "recovered A not preferred"
    );
    assert_eq!(b.count(path), 0);
    edge.stop().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_only_origin_gone_cached_parts_are_still_served() {
    let origin = FakeUpstream::start(FakeConfig::default()).await;
    let url = origin.url();
    let edge =
        RunningEdge::start(edge_config(EdgeRole::Edge, std::slice::from_ref(&url), &[])).await;
    let part = "/live/cam/source/9.1.m4s";
    let segment = "/live/cam/source/8.m4s";
    let bodies = [origin.body(part).unwrap(), origin.body(segment).unwrap()];
    for path in [part, segment] {
        assert_eq!(get(edge.http, path).await.status, 200);
    }
    origin.stop().await;

    // Immutable objects have a long TTL: they are simply hits.
    for (path, body) in [part, segment].into_iter().zip(&bodies) {
        let got = get(edge.http, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert!(got.body == *body, "{path}");
    }
    // Something never fetched cannot be served: 502, and the origin is
    // then reported unhealthy (readiness fails).
    let missing = get(edge.http, "/live/cam/source/9.2.m4s").await;
    assert_eq!(missing.status, 502);
    assert_eq!(api_healthy(edge.http, &url).await, Some(false));
    assert_eq!(get(edge.http, "/readyz").await.status, 503);
    // Still served after the origin was marked unhealthy.
    let again = get(edge.http, part).await;
    assert_eq!(again.status, 200);
    assert!(again.body == bodies[0]);
    edge.stop().await;
}
