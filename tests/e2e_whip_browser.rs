//! Headless Chromium publishes its fake camera and microphone by WHIP
//! (the player page's `#publish=KEY` mode, H.264 and Opus); hls.js plays
//! the stream's LL-HLS and a second Chromium plays it by WHEP.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::http::{complete_segments, get, wait_playlist};
use support::{key, Origin, TempConfig};

/// The publishing browser; killed (with its Chromium) on drop.
struct Publishing {
    child: Child,
    report: mpsc::Receiver<String>,
}

impl Publishing {
    /// Starts the page publishing `key` to `origin` and waits (bounded)
    /// until it has sent frames.
    fn start(o: &Origin, key: &str) -> Publishing {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("player/test/publish.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(o.url(&format!("/#publish={key}")))
            .args(["--seconds", "150", "--min-frames", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (said, heard) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = said.send(line);
            }
        });
        let (tx, report) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut p = Publishing { child, report };
        loop {
            match heard.recv_timeout(Duration::from_secs(60)) {
                Ok(l) if l == "PUBLISHING" => return p,
                Ok(_) => {}
                Err(_) => {
                    let _ = p.child.kill();
                    let out = p.report.recv_timeout(Duration::from_secs(5));
                    panic!("the page never published: {out:?}\n{}", o.log());
                }
            }
        }
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_by_whip_and_plays_by_hls_and_whep() {
    let ok = support::have("ffmpeg") && support::browser_ready();
    assert!(ok || !support::ci(), "chromium is needed under CI");
    if !ok {
        return;
    }
    let config = TempConfig::new("whip-browser", "[webrtc]\nlisten = \"127.0.0.1:0\"\n");
    let o = Origin::start(&["--config", config.arg()]);
    let publisher = Publishing::start(&o, &key("cam"));

    // Packaged into LL-HLS with segments of about the target: the origin
    // asks the browser for the keyframes they start with.
    let pl = wait_playlist(
        &o.url("/live/cam/source/index.m3u8"),
        Duration::from_secs(60),
        "listing three complete segments",
        |p| complete_segments(p) >= 3,
    )
    .await;
    let longest = pl
        .segments
        .iter()
        .filter(|s| s.uri.is_some())
        .map(|s| s.duration)
        .fold(0.0, f64::max);
    assert!(longest < 3.0, "a segment waited {longest} s for a keyframe");
    let m = get(&o.url("/metrics")).await.text();
    assert!(m.contains("livecdn_origin_webrtc_publishers 1\n"), "{m}");
    assert!(
        !m.contains("livecdn_origin_webrtc_publish_plis_total 0\n"),
        "{m}"
    );

    let page = o.url("/?stream=cam");
    let hls = tokio::task::spawn_blocking(move || support::browser::play(&page, &[], 40, 60))
        .await
        .unwrap();
    println!("hls.js: {hls}");
    assert_eq!(hls["ok"], true, "{hls}");
    assert!(hls["decodedFrames"].as_u64().unwrap() >= 60, "{hls}");
    // The browser's Opus reaches hls.js as AAC.
    assert!(hls["audioDecodedBytes"].as_u64().unwrap_or(0) > 0, "{hls}");

    let page = o.url("/?stream=cam&engine=webrtc");
    let flags = ["--allow-loopback-in-peer-connection".to_string()];
    let rtc = tokio::task::spawn_blocking(move || support::browser::play(&page, &flags, 40, 60))
        .await
        .unwrap();
    println!("whep: {}", rtc["webrtc"]);
    assert_eq!(rtc["ok"], true, "{rtc}");
    assert_eq!(rtc["engine"], "WebRTC (WHEP)", "{rtc}");
    assert_eq!(rtc["webrtc"]["state"], "connected", "{rtc}");
    // The browser's own Opus, passed through to the viewer.
    let audio = &rtc["webrtc"]["audio"];
    assert_eq!(audio["track"], "live", "{rtc}");
    assert!(audio["packetsReceived"].as_u64().unwrap_or(0) > 0, "{rtc}");
    drop(publisher);
}
