//! Recordings through a real `livecdn edge`: VOD playlists and segments
//! are cached (memory, then the disk tier below it), `download.mp4` is
//! relayed with its byte ranges, and none of it counts as live viewing.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::{MediaPlaylist, MultivariantPlaylist, PlaylistType};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::{get, get_with, wait_ok};
use support::record::{start, temp_dir, wait_recording};
use support::{have, key, Ffmpeg, ADMIN_TOKEN};

/// About 3 Mbit/s whatever the picture (filler keeps x264 at its rate), so
/// a 2 s segment is bigger than half the edge's 1 MiB memory.
const CBR: &[&str] = &[
    "-preset",
    "veryfast",
    "-g",
    "60",
    "-b:v",
    "3M",
    "-minrate",
    "3M",
    "-maxrate",
    "3M",
    "-bufsize",
    "1M",
    "-x264-params",
    "nal-hrd=cbr",
];

async fn edge_api(edge: &Edge) -> Value {
    let f = get_with(
        &edge.url("/api/streams"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        false,
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.text());
    serde_json::from_slice(&f.body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn recordings_play_through_the_edge_from_memory_and_from_its_disk_tier() {
    let ok = have("ffmpeg");
    assert!(ok || !support::ci(), "ffmpeg is needed under CI");
    if !ok {
        return;
    }
    let dir = temp_dir("edge-vod");
    let tier_dir = temp_dir("edge-vod-tier");
    let o = start(&dir, &[]);
    let ff = Ffmpeg::publish_args(&o.rtmp_url(&key("tiered")), 10, CBR);
    let (ok, err) = ff.wait(Duration::from_secs(60));
    assert!(ok, "ffmpeg: {err}");
    let done = wait_recording(&o, "tiered", "done", |r| r["state"] == "done").await;
    let vod = done["vod"]
        .as_str()
        .unwrap()
        .trim_end_matches("master.m3u8")
        .to_string();

    let budget = 64 * 1024 * 1024;
    let edge = Edge::start(
        &o,
        &[
            "--cache-bytes",
            "1048576",
            "--cache-disk-dir",
            tier_dir.to_str().unwrap(),
            "--cache-disk-bytes",
            &budget.to_string(),
        ],
    );

    // Playlists through the edge: the recording's, not live ones.
    let master = wait_ok(
        &edge.url(&format!("{vod}master.m3u8")),
        Duration::from_secs(10),
    )
    .await;
    let mv = MultivariantPlaylist::parse(&master.text()).unwrap();
    assert_eq!(mv.variants[0].uri, "source/index.m3u8");
    let text = get(&edge.url(&format!("{vod}source/index.m3u8")))
        .await
        .text();
    let pl = MediaPlaylist::parse(&text).unwrap();
    assert_eq!(pl.playlist_type, Some(PlaylistType::Vod), "{text}");
    assert!(pl.end_list && pl.segments.len() >= 4, "{text}");
    let uris: Vec<String> = pl
        .segments
        .iter()
        .map(|s| format!("{vod}source/{}", s.uri.as_deref().unwrap()))
        .collect();

    // Every segment through the edge is the origin's, byte for byte.
    let mut originals = Vec::new();
    for uri in &uris {
        let from_origin = get(&o.url(uri)).await;
        let first = get(&edge.url(uri)).await;
        assert_eq!(first.status, 200, "{uri}");
        assert_eq!(first.header("x-cache").as_deref(), Some("MISS"), "{uri}");
        assert!(
            first.body == from_origin.body,
            "{uri} differs through the edge"
        );
        assert!(
            first.body.len() > 300_000,
            "{uri}: {} bytes",
            first.body.len()
        );
        originals.push(from_origin.body);
    }
    // 1 MiB of memory cannot hold them: the first ones went down to disk.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let api = edge_api(&edge).await;
        let disk = &api["cache"]["disk"];
        if disk["writes"].as_u64().unwrap_or(0) >= 2 {
            assert!(disk["bytes"].as_u64().unwrap() <= budget, "{disk}");
            break;
        }
        assert!(Instant::now() < deadline, "nothing written to disk: {api}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = get(&edge.url(&uris[0])).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-cache").as_deref(), Some("DISK"));
    assert!(again.body == originals[0], "the disk tier's copy differs");
    assert_eq!(
        get(&edge.url(&uris[0])).await.header("x-cache").as_deref(),
        Some("HIT"),
        "back in memory"
    );
    let metrics = get_with(
        &edge.url("/metrics"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        false,
    )
    .await
    .text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("livecdn_edge_cache_disk_hits{io=") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // download.mp4: relayed with its ranges, never cached whole.
    let url = format!("{vod}download.mp4");
    let whole = get(&o.url(&url)).await;
    assert_eq!(whole.status, 200);
    let relayed = get(&edge.url(&url)).await;
    assert_eq!(relayed.status, 200);
    assert_eq!(relayed.header("x-cache").as_deref(), Some("PASS"));
    assert!(
        relayed.body == whole.body,
        "download.mp4 differs through the edge"
    );
    let from = whole.body.len() / 3;
    let range = format!("bytes={from}-{}", from + 999);
    let part = get_with(&edge.url(&url), &[("range", &range)], false).await;
    assert_eq!(part.status, 206);
    assert_eq!(&part.body[..], &whole.body[from..from + 1000]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes {from}-{}/{}", from + 999, whole.body.len()))
    );

    // None of this was live viewing.
    let api = edge_api(&edge).await;
    let streams = api["streams"].as_array().unwrap();
    assert!(
        streams
            .iter()
            .all(|s| s["name"] != "tiered" || s["viewers"] == 0),
        "{api}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&tier_dir);
}
