//! Many origins behind the same edges, through the stream map in a real
//! `redis-server`: each origin enters the streams it ingests, edges pull
//! (and take push of) each stream from the origin that has it and ask no
//! other, a publisher that moves to another origin moves its viewers'
//! fetches within about a second, and shields announced in Redis are
//! chosen per stream by rendezvous hashing over the live set.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use livecdn_cluster::{Store, StreamMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::chat::Redis;
use support::cluster::{self, store};
use support::edge::Edge;
use support::http::{complete_segments, get, get_with, wait_ok, wait_playlist};
use support::{key, Ffmpeg, Origin};

const WAIT: Duration = Duration::from_secs(40);

fn ready() -> bool {
    support::have("ffmpeg") && support::have("redis-server")
}

fn cluster_origin(redis: &Redis, name: &str) -> (Origin, String, PathBuf) {
    cluster::origin(redis, name, "")
}

async fn wait_entry(store: &Store, stream: &str, origin: &Origin) -> Instant {
    cluster::wait_entry(store, stream, origin, WAIT).await
}

/// A Prometheus counter's sum over the lines that contain every `labels`.
async fn counter(url: &str, name: &str, labels: &[&str]) -> f64 {
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let text = get_with(url, &[("authorization", &auth)], false)
        .await
        .text();
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The request paths an origin's access log holds, after a clean exit
/// (which flushes it).
fn logged_paths(mut origin: Origin, log: &Path) -> Vec<String> {
    origin.terminate();
    assert!(
        origin.wait_exit(Duration::from_secs(20)).is_some(),
        "origin did not exit"
    );
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["path"].as_str().map(str::to_string))
        .collect()
}

/// A part of `stream` through `edge`: its media playlist (waiting, bounded,
/// until it lists a part) and the last part it lists.
async fn play(edge: &Edge, stream: &str) {
    let url = edge.url(&format!("/live/{stream}/source/index.m3u8"));
    let deadline = Instant::now() + WAIT;
    let part = loop {
        let playlist = get(&url).await;
        let text = playlist.text();
        let last = text.lines().rev().find_map(|l| {
            l.strip_prefix("#EXT-X-PART:")?
                .split(',')
                .find_map(|a| a.strip_prefix("URI=\""))
                .map(|u| u.trim_end_matches('"').to_string())
        });
        match last {
            Some(part) if playlist.status == 200 => break part,
            _ => assert!(
                Instant::now() < deadline,
                "{stream}: no part listed: {} {text}",
                playlist.status
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got = get(&edge.url(&format!("/live/{stream}/source/{part}"))).await;
    assert_eq!(got.status, 200, "{stream} part {part}");
    assert!(!got.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_is_fetched_from_the_origin_that_has_it_and_no_other() {
    if !ready() {
        return;
    }
    let redis = Redis::start();
    let (a, pin_a, log_a) = cluster_origin(&redis, "a");
    let (b, pin_b, log_b) = cluster_origin(&redis, "b");
    let _fa = Ffmpeg::publish(&a.rtmp_url(&key("one")), 120);
    let _fb = Ffmpeg::publish(&b.rtmp_url(&key("two")), 120);
    let edge = cluster::node(&redis, &[&pin_a, &pin_b], &[]);

    let map = store(&redis);
    wait_entry(&map, "one", &a).await;
    wait_entry(&map, "two", &b).await;
    for _ in 0..3 {
        play(&edge, "one").await;
        play(&edge, "two").await;
    }
    wait_ok(&edge.url("/live/one/master.m3u8"), WAIT).await;
    wait_ok(&edge.url("/live/two/master.m3u8"), WAIT).await;
    // The edge's API says where each watched stream comes from.
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let api = get_with(
        &edge.url("/api/streams"),
        &[("authorization", &auth)],
        false,
    )
    .await;
    let api: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(
        api["cluster"]["origins"]["one"],
        format!("http://{}", a.http),
        "{api}"
    );
    assert_eq!(
        api["cluster"]["origins"]["two"],
        format!("http://{}", b.http),
        "{api}"
    );
    assert_eq!(api["cluster"]["redis_reachable"], true, "{api}");
    // A stream no origin has is a 404 at the edge, asked of no origin.
    assert_eq!(
        get(&edge.url("/live/nowhere/master.m3u8")).await.status,
        404
    );

    // Push follows the map too: the edge subscribes each stream at the
    // push endpoint of its origin, so it holds one connection to each.
    let deadline = Instant::now() + WAIT;
    while counter(&edge.url("/metrics"), "livecdn_edge_push_connections ", &[]).await < 2.0 {
        assert!(Instant::now() < deadline, "push did not reach both origins");
        play(&edge, "one").await;
        play(&edge, "two").await;
    }

    drop(edge);
    let (paths_a, paths_b) = (logged_paths(a, &log_a), logged_paths(b, &log_b));
    assert!(
        paths_a.iter().any(|p| p.starts_with("/live/one/")),
        "{paths_a:?}"
    );
    assert!(
        paths_b.iter().any(|p| p.starts_with("/live/two/")),
        "{paths_b:?}"
    );
    for (origin, paths, other) in [("a", &paths_a, "two"), ("b", &paths_b, "one")] {
        let asked: Vec<&String> = paths
            .iter()
            .filter(|p| {
                p.starts_with(&format!("/live/{other}/")) || p.starts_with("/live/nowhere/")
            })
            .collect();
        assert!(
            asked.is_empty(),
            "origin {origin} was asked for a stream it does not have: {asked:?}"
        );
    }
    // A clean exit takes the origins' entries out of the map.
    assert_eq!(map.lookup(&["one", "two"]).await.unwrap(), vec![None, None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_moves_origin_moves_the_edges_within_a_second() {
    if !ready() {
        return;
    }
    let redis = Redis::start();
    let (a, pin_a, _log_a) = cluster_origin(&redis, "move-a");
    let (b, pin_b, _log_b) = cluster_origin(&redis, "move-b");
    let mut fa = Ffmpeg::publish(&a.rtmp_url(&key("cam")), 120);
    let edge = cluster::node(&redis, &[&pin_a, &pin_b], &[]);
    let map = store(&redis);
    wait_entry(&map, "cam", &a).await;
    play(&edge, "cam").await;
    let b_metrics = b.url("/metrics");
    let playlists_at_b = || {
        counter(
            &b_metrics,
            "livecdn_origin_http_requests_total{",
            &["kind=\"playlist\""],
        )
    };
    assert_eq!(playlists_at_b().await, 0.0, "b has no viewer yet");

    // Where a's numbering stands as the publisher leaves it.
    let at_a = wait_playlist(
        &a.url("/live/cam/source/index.m3u8"),
        WAIT,
        "a complete segment",
        |pl| complete_segments(pl) > 0,
    )
    .await;
    let a_next = at_a.media_sequence + at_a.segments.len() as u64;

    // The encoder reconnects through a load balancer that sends it to b.
    fa.stop();
    let _fb = Ffmpeg::publish(&b.rtmp_url(&key("cam")), 120);
    let moved = wait_entry(&map, "cam", &b).await;
    // A viewer keeps reloading; its edge follows the map to b.
    let followed = loop {
        let _ = get(&edge.url("/live/cam/source/index.m3u8")).await;
        if playlists_at_b().await > 0.0 {
            break moved.elapsed();
        }
        assert!(moved.elapsed() < WAIT, "the edge never fetched from b");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("edge followed the moved stream {followed:?} after the map changed");
    assert!(
        followed < Duration::from_secs(3),
        "followed after {followed:?}"
    );
    play(&edge, "cam").await;
    // b numbers the stream on from where a left it, after a discontinuity,
    // so no object name means a's media in one cache and b's in another.
    let at_b = wait_playlist(
        &b.url("/live/cam/source/index.m3u8"),
        WAIT,
        "a listed segment",
        |pl| !pl.segments.is_empty(),
    )
    .await;
    assert!(
        at_b.media_sequence >= a_next,
        "b lists {} while a had reached {a_next}",
        at_b.media_sequence
    );
    assert!(
        at_b.discontinuity_sequence > at_a.discontinuity_sequence,
        "no discontinuity between a's media and b's"
    );
    // The old origin lost the entry for good, though its stream still
    // waits for its publisher within the reconnect grace.
    let entry = StreamMap::new(map.clone(), Duration::ZERO)
        .resolve("cam")
        .await
        .unwrap();
    assert_eq!(entry.unwrap().http, format!("http://{}", b.http));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_hash_streams_over_the_shields_that_announce_themselves() {
    if !ready() {
        return;
    }
    let redis = Redis::start();
    let (origin, _pin, _log) = cluster_origin(&redis, "shields");
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 120);
    let map = store(&redis);
    wait_entry(&map, "cam", &origin).await;
    let mut shields = [
        cluster::node(&redis, &[], &["--role", "shield"]),
        cluster::node(&redis, &[], &["--role", "shield"]),
    ];
    let bases = shields.each_ref().map(|s| format!("http://{}", s.http));
    let deadline = Instant::now() + WAIT;
    while map.live(livecdn_cluster::SHIELDS_KEY).await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "shields never announced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let edge = cluster::node(&redis, &[], &[]);
    let order = livecdn_edge::upstream::rendezvous_order("cam", &bases);
    let (chosen, other) = (order[0], order[1]);
    let fetched_via = |shield: usize| {
        let base = format!("upstream=\"{}\"", bases[shield]);
        let url = edge.url("/metrics");
        async move { counter(&url, "livecdn_edge_upstream_fetches_total{", &[&base]).await }
    };
    // The edge learns the live set within its follow interval.
    let deadline = Instant::now() + WAIT;
    while fetched_via(chosen).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the edge never used the rendezvous shield"
        );
        play(&edge, "cam").await;
    }
    play(&edge, "cam").await;
    assert_eq!(
        fetched_via(other).await,
        0.0,
        "only the stream's shield is asked"
    );
    // The shield fetched from the origin the map names.
    let to_origin = format!("upstream=\"http://{}\"", origin.http);
    let shield_metrics = shields[chosen].url("/metrics");
    let via_shield = counter(
        &shield_metrics,
        "livecdn_edge_upstream_fetches_total{",
        &[&to_origin],
    )
    .await;
    assert!(via_shield > 0.0, "the shield never fetched from the origin");

    // Its shield dies: the next fetches go to the other at once.
    shields[chosen].kill();
    let deadline = Instant::now() + WAIT;
    while fetched_via(other).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no failover to the remaining shield"
        );
        let _ = get(&edge.url("/live/cam/source/index.m3u8")).await;
    }
    play(&edge, "cam").await;
}

/// The map's rules, straight against Redis: the newest attach owns an
/// entry, an origin removes only its own, and entries and memberships
/// that are not renewed expire (a crashed node leaves nothing behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_go_to_the_newest_publisher_and_expire_unless_renewed() {
    if !support::have("redis-server") {
        return;
    }
    let redis = Redis::start();
    let map = store(&redis);
    let ranked = |node: &str, since_ms: u64, rank: u8| livecdn_cluster::OriginEntry {
        node: node.to_string(),
        http: format!("http://{node}:8080"),
        push: Some(format!("{node}:8090")),
        since_ms,
        rank,
    };
    let entry = |node: &str, since_ms: u64| ranked(node, since_ms, 1);
    let lease = Duration::from_secs(30);
    assert!(map.claim("s", &entry("a", 100), lease).await.unwrap());
    assert!(
        map.claim("s", &entry("a", 100), lease).await.unwrap(),
        "renewal"
    );
    assert!(
        !map.claim("s", &entry("b", 50), lease).await.unwrap(),
        "an older publisher loses"
    );
    assert!(
        map.claim("s", &entry("b", 200), lease).await.unwrap(),
        "a newer one takes over"
    );
    assert!(
        !map.claim("s", &entry("a", 100), lease).await.unwrap(),
        "and keeps it"
    );
    assert!(
        !map.release("s", "a").await.unwrap(),
        "a cannot remove b's entry"
    );
    assert_eq!(
        map.lookup(&["s"]).await.unwrap(),
        vec![Some(entry("b", 200))]
    );
    assert!(map.release("s", "b").await.unwrap());
    assert_eq!(map.lookup(&["s", "t"]).await.unwrap(), vec![None, None]);

    // A backup publisher on another origin does not take a primary's
    // entry, however late it attached; it takes over once the entry is
    // gone, and a returning primary takes it back.
    assert!(map.claim("f", &entry("a", 100), lease).await.unwrap());
    assert!(!map.claim("f", &ranked("b", 900, 0), lease).await.unwrap());
    assert!(map.release("f", "a").await.unwrap());
    assert!(map.claim("f", &ranked("b", 900, 0), lease).await.unwrap());
    assert!(map.claim("f", &entry("a", 100), lease).await.unwrap());
    assert_eq!(
        map.lookup(&["f"]).await.unwrap(),
        vec![Some(entry("a", 100))]
    );

    // Not renewed: gone after the lease.
    let short = Duration::from_millis(150);
    assert!(map.claim("s", &entry("a", 1), short).await.unwrap());
    map.join("set", "http://shield:1", short).await.unwrap();
    map.join("set", "http://shield:2", lease).await.unwrap();
    assert_eq!(map.live("set").await.unwrap().len(), 2);
    let deadline = Instant::now() + WAIT;
    loop {
        let entry = map.lookup(&["s"]).await.unwrap();
        let live = map.live("set").await.unwrap();
        if entry == vec![None] && live == vec!["http://shield:2".to_string()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lease never ran out: {entry:?} {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    map.leave("set", "http://shield:2").await.unwrap();
    assert!(map.live("set").await.unwrap().is_empty());
}
