//! Players beyond hls.js, in headless Chromium, through the edge of
//! `livecdn up --demo` over HTTP/2 and HTTP/3: dash.js plays the LL-DASH
//! MPD, Shaka Player plays the MPD and the HLS playlists. Each must decode
//! frames with no fatal error; the page says which engine played, and the
//! report carries each player's distance behind live (the playhead's
//! wall-clock time: PROGRAM-DATE-TIME for HLS, the presentation time for
//! DASH, whose availabilityStartTime is the epoch).

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::time::{Duration, Instant};
use support::browser::{h2_flags, h3_flags, play};
use support::http::{get, wait_ok};
use support::{Origin, Up};

/// One browser at a time on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECONDS: u32 = 25;
const MIN_FRAMES: u32 = 60;

async fn up() -> Up {
    let up = Origin::up_demo_with_edge();
    wait_ok(
        &up.edge_url("/live/demo/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    // Every rendition with a complete segment, in its playlist and in the
    // MPD: Shaka Player 5.2 probes a live HLS playlist's middle segment,
    // which fails while a rung's only segment is the one in progress (it
    // has no URI yet).
    let master = get(&up.edge_url("/live/demo/master.m3u8")).await.text();
    // Variant lines and EXT-X-MEDIA URIs alike.
    let playlists: Vec<String> = master
        .split(['\n', '"'])
        .filter(|l| !l.starts_with('#') && l.ends_with("/index.m3u8"))
        .map(|l| format!("/live/demo/{l}"))
        .collect();
    assert!(playlists.len() >= 2, "{master}");
    let deadline = Instant::now() + Duration::from_secs(30);
    for path in &playlists {
        loop {
            let pl = get(&up.edge_url(path)).await;
            let complete = MediaPlaylist::parse(&pl.text())
                .map(|p| p.segments.iter().any(|s| s.is_complete()))
                .unwrap_or(false);
            if pl.status == 200 && complete {
                break;
            }
            assert!(Instant::now() < deadline, "{path}: {}", pl.text());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    loop {
        let mpd = get(&up.edge_url("/live/demo/manifest.mpd")).await;
        if mpd.status == 200 && mpd.text().matches("<Representation ").count() >= playlists.len() {
            break;
        }
        assert!(Instant::now() < deadline, "MPD: {}", mpd.text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    up
}

/// Plays `query` over h2 and then h3; checks and prints each report.
async fn plays_over_h2_and_h3(query: &str, engine: &str) {
    let _serial = SERIAL.lock().await;
    let up = up().await;
    let port = up.edge_https.port();
    let url = format!("https://localhost:{port}/?stream=demo&{query}");
    for (protocol, flags) in [("h2", h2_flags(&up.spki)), ("h3", h3_flags(port, &up.spki))] {
        let report = play(&url, &flags, SECONDS, MIN_FRAMES);
        eprintln!("{query} over {protocol}: {report}");
        assert_eq!(report["ok"], true, "{protocol}: {report}");
        assert!(
            report["decodedFrames"].as_u64().unwrap_or(0) >= u64::from(MIN_FRAMES),
            "{protocol}: {report}"
        );
        assert!(report["fatalError"].is_null(), "{protocol}: {report}");
        assert_eq!(report["protocol"], protocol, "{report}");
        let played_by = report["engine"].as_str().unwrap_or_default();
        assert!(played_by.starts_with(engine), "{played_by} is not {engine}");
        let behind = report["pdtLatency"].as_f64();
        assert!(
            behind.is_some_and(|s| s > 0.0 && s < 30.0),
            "{protocol}: distance behind live {behind:?}: {report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashjs_plays_ll_dash_through_the_edge() {
    if !support::browser_ready() {
        return;
    }
    plays_over_h2_and_h3("engine=dashjs", "dash.js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaka_plays_ll_dash_through_the_edge() {
    if !support::browser_ready() {
        return;
    }
    plays_over_h2_and_h3("engine=shaka&format=dash", "Shaka Player").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaka_plays_ll_hls_through_the_edge() {
    if !support::browser_ready() {
        return;
    }
    plays_over_h2_and_h3("engine=shaka", "Shaka Player").await;
}
