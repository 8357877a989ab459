//! Headless Chromium: the player page plays a stream through one edge and
//! chats with a second page on another edge, the room fanned out through
//! a real `redis-server`; both pages show the stream's viewers summed
//! across the edges.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::chat::{token, Redis};
use support::edge::Edge;
use support::http::wait_ok;
use support::{key, Ffmpeg, Origin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_on_two_edges_play_and_chat() {
    if !support::browser_ready() || !support::have("ffmpeg") || !support::have("redis-server") {
        return;
    }
    let redis = Redis::start();
    // A cluster of one origin: the edges find the stream in the map.
    let origin = Origin::start(&["--redis", &redis.url()]);
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 120);
    let chat = ["--redis", &redis.url(), "--secret", support::SECRET];
    let a = Edge::start(&origin, &chat);
    let b = Edge::start(&origin, &chat);
    for e in [&a, &b] {
        wait_ok(&e.url("/live/cam/master.m3u8"), Duration::from_secs(30)).await;
    }
    let ta = token("cam", "alice", livecdn_shared::auth::ChatRole::Viewer);
    let tb = token("cam", "bob", livecdn_shared::auth::ChatRole::Viewer);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("player/test/chat.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(format!("http://{}/?stream=cam&chat={ta}", a.http))
            .args([
                "--peer",
                &format!("http://{}/?stream=cam&chat={tb}", b.http),
            ])
            .args([
                "--seconds",
                "60",
                "--min-frames",
                "30",
                "--min-viewers",
                "2",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["decodedFrames"].as_u64().unwrap() >= 30, "{report}");
    assert_eq!(report["a"]["me"]["user"], "alice", "{report}");
    assert_eq!(report["b"]["me"]["user"], "bob", "{report}");
    let texts = |side: &str| -> Vec<String> {
        report[side]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}: {}",
                    m["user"].as_str().unwrap(),
                    m["text"].as_str().unwrap()
                )
            })
            .collect()
    };
    let want = ["alice: hello from A", "bob: hello back from B"];
    assert_eq!(texts("a"), want, "{report}");
    assert_eq!(texts("b"), want, "{report}");
    assert!(report["a"]["viewers"].as_u64().unwrap() >= 2, "{report}");
}
