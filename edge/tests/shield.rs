//! The shield tier (DESIGN.md section 5): edges pull through a shield, so
//! the origin sees one fetch per object however many edges ask; edges pick
//! a stream's shield by rendezvous hashing, so with several shields each
//! object is still fetched from the origin once.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::client::{h2_get, h2c_connect, Got};
use common::{bounded, edge_config, FakeConfig, FakeUpstream, RunningEdge};
use livecdn_edge::upstream::rendezvous_order;
use livecdn_shared::config::EdgeRole;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;

/// Twenty objects of one stream: master, init, segments, parts and blocking
/// playlist reloads, in two renditions. (A plain playlist is left out: its
/// TTL is half a part target, so a second round could not be a hit.)
fn objects(stream: &str) -> Vec<String> {
    let mut out = vec![
        format!("/live/{stream}/master.m3u8"),
        format!("/live/{stream}/source/init.mp4"),
        format!("/live/{stream}/audio/init.mp4"),
    ];
    out.extend((1..=4).map(|m| format!("/live/{stream}/source/{m}.m4s")));
    out.extend((0..6).map(|p| format!("/live/{stream}/source/5.{p}.m4s")));
    out.extend((0..3).map(|p| format!("/live/{stream}/audio/5.{p}.m4s")));
    out.extend(
        (0..3).map(|p| format!("/live/{stream}/source/index.m3u8?_HLS_msn=5&_HLS_part={p}")),
    );
    out.push(format!(
        "/live/{stream}/audio/index.m3u8?_HLS_msn=5&_HLS_part=1"
    ));
    out
}

/// GETs every path through every edge at once (one h2c connection per
/// edge); returns (edge index, path, response).
async fn round(edges: &[SocketAddr], paths: &[String]) -> Vec<(usize, String, Got)> {
    let mut tasks = JoinSet::new();
    for (e, addr) in edges.iter().enumerate() {
        let conn = h2c_connect(*addr).await.unwrap();
        for path in paths {
            let (mut send, path) = (conn.clone(), path.clone());
            tasks.spawn(async move {
                let got = h2_get(&mut send, &path).await;
                (e, path, got)
            });
        }
    }
    let mut out = Vec::new();
    while let Some(joined) = bounded("round", tasks.join_next()).await {
        let (e, path, got) = joined.unwrap();
        let got = got.unwrap_or_else(|err| panic!("edge {e} {path}: {err}"));
        out.push((e, path, got));
    }
    out
}

fn origin_config() -> FakeConfig {
    FakeConfig {
        chunks: 4,
        chunk_gap: Duration::from_millis(20),
        blocking_hold: Duration::from_millis(150),
        ..FakeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edges_behind_one_shield_cost_the_origin_one_fetch_per_object() {
    let origin = FakeUpstream::start(origin_config()).await;
    let origins = [origin.url()];
    let shield = RunningEdge::start(edge_config(EdgeRole::Shield, &origins, &[])).await;
    let shields = [shield.url()];
    let a = RunningEdge::start(edge_config(EdgeRole::Edge, &origins, &shields)).await;
    let b = RunningEdge::start(edge_config(EdgeRole::Edge, &origins, &shields)).await;
    let paths = objects("cam");
    assert_eq!(paths.len(), 20);

    let first = round(&[a.http, b.http], &paths).await;
    for (e, path, got) in &first {
        assert_eq!(got.status, 200, "edge {e} {path}");
        assert!(got.body == origin.body(path).unwrap(), "edge {e} {path}");
    }
    for path in &paths {
        assert_eq!(origin.count(path), 1, "{path}: {:?}", origin.counts());
    }
    assert_eq!(origin.total(), paths.len(), "{:?}", origin.counts());
    let stats = shield.edge.cache.stats();
    assert_eq!(stats.misses, 20, "shield: {stats:?}");
    assert_eq!(stats.hits + stats.coalesced, 20, "shield: {stats:?}");

    let second = round(&[a.http, b.http], &paths).await;
    for (e, path, got) in &second {
        assert_eq!(got.status, 200, "edge {e} {path}");
        assert!(got.body == origin.body(path).unwrap(), "edge {e} {path}");
        assert!(
            got.x_cache() == "HIT" || got.headers.contains_key("age"),
            "edge {e} {path}: second round not a hit: {:?}",
            got.headers
        );
    }
    assert_eq!(origin.total(), paths.len(), "{:?}", origin.counts());
    assert_eq!(shield.edge.cache.stats().misses, 20);
    for e in [a, b, shield] {
        e.stop().await;
    }
    origin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_edges_meet_at_each_streams_rendezvous_shield() {
    let origin = FakeUpstream::start(origin_config()).await;
    let origins = [origin.url()];
    let s1 = RunningEdge::start(edge_config(EdgeRole::Shield, &origins, &[])).await;
    let s2 = RunningEdge::start(edge_config(EdgeRole::Shield, &origins, &[])).await;
    let shields = [s1.url(), s2.url()];
    let mut edges = Vec::new();
    for _ in 0..3 {
        edges.push(RunningEdge::start(edge_config(EdgeRole::Edge, &origins, &shields)).await);
    }
    let streams: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    let paths: Vec<String> = streams
        .iter()
        .flat_map(|s| {
            [
                format!("/live/{s}/source/3.1.m4s"),
                format!("/live/{s}/source/2.m4s"),
                format!("/live/{s}/source/index.m3u8?_HLS_msn=3&_HLS_part=2"),
            ]
        })
        .collect();
    let addrs: Vec<SocketAddr> = edges.iter().map(|e| e.http).collect();
    for (e, path, got) in round(&addrs, &paths).await {
        assert_eq!(got.status, 200, "edge {e} {path}");
        assert!(got.body == origin.body(&path).unwrap(), "edge {e} {path}");
    }
    for path in &paths {
        assert_eq!(origin.count(path), 1, "{path}: {:?}", origin.counts());
    }
    // Each stream's objects were filled by its rendezvous shield only.
    let mut per_shield = [0u64; 2];
    for stream in &streams {
        per_shield[rendezvous_order(stream, &shields)[0]] += 3;
    }
    let misses = [s1.edge.cache.stats().misses, s2.edge.cache.stats().misses];
    assert_eq!(misses, per_shield, "shield misses vs rendezvous choice");
    for e in edges {
        e.stop().await;
    }
    s1.stop().await;
    s2.stop().await;
    origin.stop().await;
}
