//! Requests for made-up stream names cannot grow the edge's state: metric
//! series, viewer entries and push subscriptions are kept only for streams
//! the edge knows to be real (one of their playlists came from upstream),
//! and everything else is counted under one `-` label. A real stream keeps
//! playing and keeps its own series. Runs `livecdn up --demo` (origin and
//! edge in one process, push wired) on real sockets.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::http::{get, wait_ok};
use support::Origin;

/// Distinct made-up names requested.
const NAMES: usize = 100_000;

/// The value of label `stream` in a series, if it has one.
fn stream_label(series: &str) -> Option<&str> {
    let labels = series.split_once('{')?.1;
    labels
        .split(',')
        .find_map(|l| l.strip_prefix("stream=\""))
        .and_then(|v| v.split('"').next())
}

/// Every series of the edge's `/metrics` with a `stream` label.
fn stream_series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| stream_label(s).is_some())
        .map(str::to_string)
        .collect()
}

fn streams_named(series: &BTreeSet<String>) -> BTreeSet<String> {
    series
        .iter()
        .filter_map(|s| stream_label(s))
        .map(str::to_string)
        .collect()
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_stream_names_leave_metrics_bounded_and_real_streams_playing() {
    let up = Origin::up_demo_with_edge();
    let playlist = up.edge_url("/live/demo/source/index.m3u8");
    wait_ok(&playlist, Duration::from_secs(30)).await;
    // The edge knows the stream is real once a playlist of it came back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get(&up.edge_url("/api/streams"))
        .await
        .text()
        .contains("\"demo\":{")
    {
        assert!(
            Instant::now() < deadline,
            "the edge never learned the stream"
        );
        get(&playlist).await;
    }
    let rss_before = rss_kib(up.origin.pid());

    // One h2c connection, 64 requests in flight: a single client making
    // up names as fast as the edge answers.
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<Bytes>>();
    let base = format!("http://{}", up.edge_http);
    let statuses = futures::stream::iter(0..NAMES)
        .map(|i| {
            let file = match i % 3 {
                0 => "master.m3u8".to_string(),
                1 => "source/index.m3u8".to_string(),
                _ => format!("source/{i}.m4s"),
            };
            let url = format!("{base}/live/made-up-{i}/{file}");
            let client = client.clone();
            async move {
                let req = http::Request::get(url)
                    .body(http_body_util::Empty::new())
                    .unwrap();
                match tokio::time::timeout(Duration::from_secs(30), client.request(req)).await {
                    Ok(Ok(resp)) => {
                        // Read the body as a player would; dropping it
                        // unread would reset the stream.
                        let status = resp.status().as_u16();
                        match resp.into_body().collect().await {
                            Ok(_) => status,
                            Err(_) => 2,
                        }
                    }
                    Ok(Err(e)) => {
                        eprintln!("request failed: {e:?}");
                        0
                    }
                    Err(_) => 1,
                }
            }
        })
        .buffer_unordered(64)
        .fold(
            std::collections::BTreeMap::new(),
            |mut n, status| async move {
                *n.entry(status).or_insert(0usize) += 1;
                n
            },
        )
        .await;
    assert_eq!(
        statuses.get(&404),
        Some(&NAMES),
        "every made-up name is a 404: {statuses:?}"
    );

    // The real stream still plays through the edge.
    let r = get(&playlist).await;
    assert_eq!(r.status, 200);
    let metrics = get(&up.edge_url("/metrics")).await.text();
    let series = stream_series(&metrics);
    let named = streams_named(&series);
    assert!(
        named.iter().all(|s| s == "demo" || s == "-"),
        "stream labels beyond the real stream and `-`: {:?}",
        named.iter().take(5).collect::<Vec<_>>()
    );
    assert!(named.contains("demo"), "{named:?}");
    assert!(
        series.len() < 100,
        "{} series with a stream label",
        series.len()
    );
    let rss_after = rss_kib(up.origin.pid());
    eprintln!(
        "{NAMES} made-up names: {} series with a stream label; resident {rss_before} -> {rss_after} KiB",
        series.len()
    );
}
