//! Streaming single flight through a running edge (DESIGN.md section 5): a
//! thousand concurrent viewers of one cold part, or of one blocking playlist
//! reload, cost the origin exactly one request, and every viewer streams the
//! body as the origin sends it; and a viewer that leaves mid-fetch does
//! not cancel the fetch the next viewer wants.
//!
//! The viewers are 700 HTTP/2 requests multiplexed over 10 h2c connections
//! plus 300 HTTP/1.1 requests, one per connection.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::client::{h1_connect, h1_get_counted, h2_get, h2_get_counted, h2c_connect, Got};
use common::{bounded, edge_config, wait_until, FakeConfig, FakeUpstream, RunningEdge};
use livecdn_edge::cache::CacheKey;
use livecdn_shared::config::EdgeRole;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

const H2_CONNS: usize = 10;
const H2_PER_CONN: usize = 70;
const H1_CONNS: usize = 300;
const VIEWERS: usize = H2_CONNS * H2_PER_CONN + H1_CONNS;
/// How long the test waits for every viewer to be in place before it lets
/// the origin finish anyway (the assertions then say what went wrong).
const SETTLE: Duration = Duration::from_secs(10);

type Viewers = JoinSet<(usize, Result<Got, String>)>;

/// Opens the connections, then starts [`VIEWERS`] concurrent GETs, viewer
/// `i` asking for `path(i)`. `first_bytes` counts viewers whose first body
/// bytes have arrived.
async fn start_viewers(
    edge: SocketAddr,
    path: impl Fn(usize) -> String,
    first_bytes: &Arc<AtomicUsize>,
) -> Viewers {
    let mut h2 = Vec::new();
    for _ in 0..H2_CONNS {
        h2.push(h2c_connect(edge).await.unwrap());
    }
    let mut h1 = Vec::new();
    for _ in 0..H1_CONNS {
        h1.push(h1_connect(edge).await.unwrap());
    }
    let mut tasks = JoinSet::new();
    let mut i = 0;
    for conn in &h2 {
        for _ in 0..H2_PER_CONN {
            let (mut send, p, n) = (conn.clone(), path(i), first_bytes.clone());
            tasks.spawn(async move { (i, h2_get_counted(&mut send, &p, Some(&n)).await) });
            i += 1;
        }
    }
    for mut send in h1 {
        let (p, n) = (path(i), first_bytes.clone());
        tasks.spawn(async move { (i, h1_get_counted(&mut send, &p, Some(&n)).await) });
        i += 1;
    }
    tasks
}

async fn finish(mut tasks: Viewers) -> Vec<Got> {
    let mut out: Vec<Option<Got>> = vec![None; VIEWERS];
    while let Some(joined) = bounded("viewers", tasks.join_next()).await {
        let (i, got) = joined.unwrap();
        out[i] = Some(got.unwrap_or_else(|e| panic!("viewer {i}: {e}")));
    }
    out.into_iter().map(Option::unwrap).collect()
}

fn x_cache_counts(got: &[Got]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for g in got {
        *counts.entry(g.x_cache().to_string()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_viewers_of_a_cold_part_make_one_upstream_request_and_stream_it() {
    let path = "/live/cam/source/5.3.m4s";
    let (open, gate) = watch::channel(false);
    let origin = FakeUpstream::start(FakeConfig {
        chunks: 10,
        chunk_gap: Duration::from_millis(50),
        media_len: 20 * 1024,
        // The last chunk also waits until every viewer has its first bytes
        // (or SETTLE passes): a buffering edge cannot pass by being quick.
        gate: Some(gate),
        ..FakeConfig::default()
    })
    .await;
    let edge = RunningEdge::start(edge_config(EdgeRole::Edge, &[origin.url()], &[])).await;
    let first_bytes = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks = start_viewers(edge.http, |_| path.to_string(), &first_bytes).await;
    let all_streaming = wait_until(SETTLE, || first_bytes.load(Ordering::SeqCst) == VIEWERS).await;
    let streaming_after = start.elapsed();
    open.send(true).unwrap();
    let got = finish(tasks).await;
    eprintln!(
        "{VIEWERS} viewers had first bytes after {streaming_after:?}, done after {:?}",
        start.elapsed()
    );

    assert_eq!(
        origin.count(path),
        1,
        "upstream requests: {:?}",
        origin.counts()
    );
    assert_eq!(origin.total(), 1);
    assert!(
        all_streaming,
        "only {} of {VIEWERS} viewers got body bytes before the upstream body ended",
        first_bytes.load(Ordering::SeqCst)
    );
    let want = origin.body(path).unwrap();
    let finished = origin.finished_at(path).unwrap();
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.status, 200, "viewer {i}");
        assert_eq!(g.body.len(), want.len(), "viewer {i}");
        assert!(g.body == want, "viewer {i}: body differs");
        let first = g.first_byte.unwrap();
        assert!(
            first < finished,
            "viewer {i} ({:?}) got its first bytes {:?} after the upstream finished",
            g.version,
            first - finished
        );
    }
    let versions = got
        .iter()
        .filter(|g| g.version == http::Version::HTTP_2)
        .count();
    assert_eq!(versions, H2_CONNS * H2_PER_CONN);
    let outcomes = x_cache_counts(&got);
    assert_eq!(outcomes.get("MISS"), Some(&1), "{outcomes:?}");
    assert_eq!(
        outcomes.get("COALESCED"),
        Some(&(VIEWERS - 1)),
        "{outcomes:?}"
    );
    edge.stop().await;
    origin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_viewers_blocked_on_the_next_playlist_share_one_upstream_request() {
    let playlist = "/live/cam/source/index.m3u8";
    let canonical = format!("{playlist}?_HLS_msn=7&_HLS_part=2");
    let (open, gate) = watch::channel(false);
    let origin = FakeUpstream::start(FakeConfig {
        blocking_hold: Duration::from_millis(300),
        // Held past 300 ms until every viewer waits on the one fetch.
        gate: Some(gate),
        ..FakeConfig::default()
    })
    .await;
    let edge = RunningEdge::start(edge_config(EdgeRole::Edge, &[origin.url()], &[])).await;
    let key = CacheKey::from_request(playlist, Some("_HLS_msn=7&_HLS_part=2"));
    let first_bytes = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    // Every 100th viewer carries a token and another parameter order: the
    // token is not part of the key, so it joins the same fetch.
    let path = |i: usize| {
        if i.is_multiple_of(100) {
            format!("{playlist}?token=abc&_HLS_part=2&_HLS_msn=7")
        } else {
            canonical.clone()
        }
    };
    let tasks = start_viewers(edge.http, path, &first_bytes).await;
    let cache = edge.edge.cache.clone();
    let all_waiting = wait_until(SETTLE, || cache.waiting(&key) == VIEWERS - 1).await;
    let waiting_after = start.elapsed();
    open.send(true).unwrap();
    let got = finish(tasks).await;
    eprintln!(
        "{} followers waiting after {waiting_after:?}, done after {:?}",
        VIEWERS - 1,
        start.elapsed()
    );

    assert_eq!(origin.count_path(playlist), 1, "{:?}", origin.counts());
    assert_eq!(origin.count(&canonical), 1, "{:?}", origin.counts());
    assert!(
        all_waiting,
        "not every viewer joined the fetch before it ended"
    );
    let want = origin.body(&canonical).unwrap();
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.status, 200, "viewer {i}");
        assert!(g.body == want, "viewer {i}: body differs");
    }
    let outcomes = x_cache_counts(&got);
    assert_eq!(outcomes.get("MISS"), Some(&1), "{outcomes:?}");
    assert_eq!(
        outcomes.get("COALESCED"),
        Some(&(VIEWERS - 1)),
        "{outcomes:?}"
    );
    // Once filled, a late viewer with a token is a hit on the same entry.
    let mut late = h1_connect(edge.http).await.unwrap();
    let late = h1_get_counted(&mut late, &path(0), None).await.unwrap();
    assert_eq!(late.x_cache(), "HIT");
    assert!(late.body == want);
    assert_eq!(origin.count_path(playlist), 1);
    edge.stop().await;
    origin.stop().await;
}

/// A viewer that goes away while the edge waits on upstream (here a
/// blocking reload the origin holds) does not cancel the fetch: the next
/// viewer of the same object gets it from that one upstream request, as
/// in flight or from the cache, and the origin is asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_leaves_does_not_cancel_the_fetch_the_next_one_wants() {
    let playlist = "/live/cam/source/index.m3u8";
    let canonical = format!("{playlist}?_HLS_msn=7&_HLS_part=2");
    let origin = FakeUpstream::start(FakeConfig {
        blocking_hold: Duration::from_millis(500),
        ..FakeConfig::default()
    })
    .await;
    let edge = RunningEdge::start(edge_config(EdgeRole::Edge, &[origin.url()], &[])).await;
    let mut first = h2c_connect(edge.http).await.unwrap();
    let leaving = {
        let path = canonical.clone();
        tokio::spawn(async move { h2_get(&mut first, &path).await })
    };
    assert!(
        wait_until(SETTLE, || origin.count(&canonical) == 1).await,
        "the edge never asked upstream"
    );
    // The viewer goes: its stream is reset while the origin still holds
    // the answer.
    leaving.abort();
    let _ = leaving.await;
    let mut second = h2c_connect(edge.http).await.unwrap();
    let got = bounded("the next viewer", h2_get(&mut second, &canonical))
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    assert!(got.body == origin.body(&canonical).unwrap());
    assert_eq!(origin.count(&canonical), 1, "{:?}", origin.counts());
    edge.stop().await;
    origin.stop().await;
}
