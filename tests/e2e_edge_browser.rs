//! Headless Chromium (Debian's) plays the demo stream through the edge of
//! `livecdn up --demo`: over HTTP/2 (TLS, pinned self-signed certificate),
//! over HTTP/3 (QUIC forced on the edge's port) and over cleartext HTTP.
//! The player page, hls.js and the media all come through the edge cache.
//!
//! The pinned self-signed certificate is enough for QUIC too (Chromium 156
//! accepts `--ignore-certificate-errors-spki-list` for h3). Without
//! `--origin-to-force-quic-on`, Chromium stays on h2 despite the edge's
//! `Alt-Svc: h3`, so HTTP/3 is forced here.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::http::wait_ok;
use support::{Origin, Up};

/// One browser at a time: three chromiums and three demo streams on a
/// 2-core machine would make frame counts flaky.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Each playback may take this long (the driver stops earlier once the
/// frame threshold is reached).
const SECONDS: u32 = 20;
const MIN_FRAMES: u32 = 60;

fn play(url: &str, flags: &[String]) -> serde_json::Value {
    support::browser::play(url, flags, SECONDS, MIN_FRAMES)
}

/// `livecdn up --demo`, waiting (bounded) until the edge serves the stream.
async fn up() -> Up {
    let up = Origin::up_demo_with_edge();
    wait_ok(
        &up.edge_url("/live/demo/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let page = wait_ok(&up.edge_url("/"), Duration::from_secs(5)).await;
    assert!(page.text().contains("hls.min.js"));
    up
}

fn assert_played(report: &serde_json::Value, protocol: &str) {
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["decodedFrames"].as_u64().unwrap_or(0) >= u64::from(MIN_FRAMES),
        "{report}"
    );
    assert!(report["fatalError"].is_null(), "{report}");
    assert_eq!(report["protocol"], protocol, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_through_the_edge_over_http2() {
    if !support::browser_ready() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let up = up().await;
    let url = format!("https://localhost:{}/?stream=demo", up.edge_https.port());
    let report = play(&url, &support::browser::h2_flags(&up.spki));
    assert_played(&report, "h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_through_the_edge_over_http3() {
    if !support::browser_ready() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let up = up().await;
    let port = up.edge_https.port();
    let url = format!("https://localhost:{port}/?stream=demo");
    let report = play(&url, &support::browser::h3_flags(port, &up.spki));
    assert_played(&report, "h3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_through_the_cleartext_edge() {
    if !support::browser_ready() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let up = up().await;
    let url = format!("http://127.0.0.1:{}/?stream=demo", up.edge_http.port());
    let report = play(&url, &[]);
    assert_played(&report, "http/1.1");
}
