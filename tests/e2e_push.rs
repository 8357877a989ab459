//! Origin-to-edge push with real processes: ffmpeg publishes to a real
//! origin, a real `livecdn edge` subscribes over QUIC. With push, parts are
//! in the edge cache before anyone asks and blocking reloads are answered
//! without an upstream request; with the push port unreachable, viewers
//! still get everything by pull.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::time::{Duration, Instant};
use support::edge::{free_udp_port, Edge};
use support::http::{get, wait_ok, wait_playlist, Fetched};
use support::{have, key, Ffmpeg, Origin};

fn origin_with_push() -> (Origin, String, String) {
    support::edge::origin_with_push("", &[])
}

/// Sum of the origin's HTTP request counter for one object kind.
async fn origin_requests(origin: &Origin, kind: &str) -> u64 {
    let text = get(&origin.url("/metrics")).await.text();
    let label = format!("kind=\"{kind}\"");
    text.lines()
        .filter(|l| l.starts_with("livecdn_origin_http_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The last complete (msn, part) of the video rendition, from the origin API.
async fn last_part(origin: &Origin) -> (u64, u64) {
    let api = get(&origin.url("/api/streams/cam")).await;
    let v: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    let r = v["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "source")
        .unwrap()
        .clone();
    (
        r["last_msn"].as_u64().unwrap(),
        r["last_part"].as_u64().unwrap(),
    )
}

async fn edge_get(edge: &Edge, path: &str) -> Fetched {
    let f = get(&edge.url(path)).await;
    assert_eq!(f.status, 200, "{path}: {}", f.text());
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_parts_and_playlists_are_served_without_upstream_requests() {
    if !have("ffmpeg") {
        return;
    }
    let (origin, push, pin) = origin_with_push();
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 60);
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let edge = Edge::start(&origin, &["--push", &push, "--push-spki", &pin]);

    // A viewer arrives; the edge subscribes and reports it to the origin.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        edge_get(&edge, "/live/cam/source/index.m3u8").await;
        let api = get(&origin.url("/api/streams/cam")).await;
        let v: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
        if v["viewers"].as_u64().is_some_and(|n| n >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no viewer report: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // (a) A part completed after the subscription is already at the edge.
    let before = last_part(&origin).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (msn, part) = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        edge_get(&edge, "/live/cam/source/index.m3u8").await; // stay a viewer
        let now = last_part(&origin).await;
        if now > before {
            break now;
        }
        assert!(Instant::now() < deadline, "no new part after {before:?}");
    };
    // Wait until the edge's playlist lists the part after it: that one was
    // pushed a part duration after ours, whose own stream had long landed.
    wait_playlist(
        &edge.url("/live/cam/source/index.m3u8"),
        Duration::from_secs(10),
        "past the part",
        |pl| pl.last_part() > Some((msn, part)),
    )
    .await;
    let parts_before = origin_requests(&origin, "part").await;
    let path = format!("/live/cam/source/{msn}.{part}.m4s");
    let at_edge = edge_get(&edge, &path).await;
    assert_eq!(at_edge.header("x-cache").as_deref(), Some("HIT"), "{path}");
    assert_eq!(
        origin_requests(&origin, "part").await,
        parts_before,
        "{path}"
    );
    let at_origin = get(&origin.url(&path)).await;
    assert_eq!(
        at_edge.body, at_origin.body,
        "pushed bytes differ for {path}"
    );

    // (b) Blocking reloads, as a player makes them (each asks for the part
    // after the last one listed), are answered by the push: held at the
    // edge until the playlist arrives, never sent upstream.
    let playlists_before = origin_requests(&origin, "playlist").await;
    let (mut msn, mut part) = last_part(&origin).await;
    let mut held = Duration::ZERO;
    for _ in 0..6 {
        let q = format!(
            "/live/cam/source/index.m3u8?_HLS_msn={msn}&_HLS_part={}",
            part + 1
        );
        let started = Instant::now();
        let blocking = edge_get(&edge, &q).await;
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(3), "{q} took {waited:?}");
        held = held.max(waited);
        let pl = MediaPlaylist::parse(&blocking.text()).unwrap();
        let last = pl.segments.len() as u64 - 1 + pl.media_sequence;
        let seg = pl.segments.last().unwrap();
        let asked = (msn, part + 1);
        (msn, part) = match seg.parts.len() {
            0 => (
                last - 1,
                pl.segments[pl.segments.len() - 2].parts.len() as u64 - 1,
            ),
            n => (last, n as u64 - 1),
        };
        assert!(
            (msn, part) >= asked,
            "{q} answered with an older playlist:\n{}",
            blocking.text()
        );
    }
    assert_eq!(
        origin_requests(&origin, "playlist").await,
        playlists_before,
        "blocking reloads went upstream"
    );
    assert!(
        held > Duration::from_millis(50),
        "no reload was held: {held:?}"
    );
    // Delta updates are not pushed: a blocking `_HLS_skip` reload goes
    // upstream at once rather than waiting for a push that never comes.
    let q = format!(
        "/live/cam/source/index.m3u8?_HLS_msn={msn}&_HLS_part={}&_HLS_skip=YES",
        part + 1
    );
    let started = Instant::now();
    let delta = edge_get(&edge, &q).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{q} took {:?}",
        started.elapsed()
    );
    assert!(
        delta.text().contains("#EXT-X-SKIP") || delta.text().contains("#EXT-X-PART"),
        "{}",
        delta.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_served_by_pull_when_the_push_port_is_unreachable() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&[]);
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 40);
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let closed = format!("127.0.0.1:{}", free_udp_port());
    let edge = Edge::start(&origin, &["--push", &closed, "--push-insecure"]);

    wait_ok(&edge.url("/live/cam/master.m3u8"), Duration::from_secs(10)).await;
    let text = edge_get(&edge, "/live/cam/source/index.m3u8").await.text();
    let pl = MediaPlaylist::parse(&text).unwrap();
    let seg = pl
        .segments
        .iter()
        .rev()
        .find(|s| !s.parts.is_empty())
        .unwrap();
    let part = seg.parts.last().unwrap().uri.clone();
    let media = edge_get(&edge, &format!("/live/cam/source/{part}")).await;
    assert!(!media.body.is_empty());

    let (msn, p) = last_part(&origin).await;
    let started = Instant::now();
    let q = format!(
        "/live/cam/source/index.m3u8?_HLS_msn={msn}&_HLS_part={}",
        p + 1
    );
    edge_get(&edge, &q).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "blocking reload by pull took {:?}",
        started.elapsed()
    );
}
