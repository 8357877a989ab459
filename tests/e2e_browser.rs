//! Headless Chromium (Debian's) plays the player page from the origin, with
//! hls.js from the npm package, driven by `player/test/play.mjs`.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::http::wait_ok;
use support::Origin;

/// Runs the browser driver; returns its JSON report.
fn play(url: &str, seconds: u32, min_frames: u32) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("player/test/play.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(url)
        .args([
            "--seconds",
            &seconds.to_string(),
            "--min-frames",
            &min_frames.to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_demo_stream_from_the_player_page() {
    if !support::browser_ready() {
        return;
    }
    let origin = Origin::up_demo();
    wait_ok(
        &origin.url("/live/demo/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let page = wait_ok(&origin.url("/"), Duration::from_secs(5)).await;
    assert!(page.text().contains("hls.min.js"));
    let report = play(&origin.url("/?stream=demo"), 30, 90);
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["decodedFrames"].as_u64().unwrap() >= 90, "{report}");
    assert!(report["fatalError"].is_null(), "{report}");
    // hls.js in low-latency mode plays within a few seconds of live.
    let latency = report["latency"].as_f64().unwrap();
    assert!(
        latency > 0.0 && latency < 6.0,
        "latency {latency}: {report}"
    );
}
