//! WebRTC playback (WHEP) from an edge, built from the chunks the origin
//! pushes while it makes each part: a str0m viewer gets a picture at once
//! and then every frame, the origin serves the edge one push feed and no
//! WebRTC session, and headless Chromium plays the edge's WHEP (a B-frame
//! source, so through a rung, with the Opus audio).

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use livecdn_webrtc::client::Viewer;
use livecdn_webrtc::video::has_parameter_sets;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::edge::{origin_and_whep_edge, Edge};
use support::http::{get, get_with, send_raw, wait_master, wait_playlist};
use support::{key, Ffmpeg, Origin};
use tokio_util::sync::CancellationToken;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn tools() -> bool {
    let ok = support::have("ffmpeg");
    assert!(ok || !support::ci(), "ffmpeg is needed under CI");
    ok
}

/// An origin pushing to an edge that serves WHEP; `ladder` adds a 240p
/// rung.
fn origin_and_edge(ladder: bool) -> (Origin, Edge) {
    let mut text = "[webrtc]\nlisten = \"127.0.0.1:0\"\n".to_string();
    if ladder {
        text.push_str(
            "[[ladder.rungs]]\nname = \"source\"\n\n[[ladder.rungs]]\nname = \"240p\"\n\
             height = 240\nvideo_bitrate = \"400k\"\n",
        );
    }
    origin_and_whep_edge(&text)
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(e: &Edge) -> String {
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    get_with(&e.url("/metrics"), &[("authorization", &auth)], false)
        .await
        .text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_serves_whep_from_pushed_chunks_with_a_picture_at_once() {
    if !tools() {
        return;
    }
    let (o, e) = origin_and_edge(false);
    let mut ff = Ffmpeg::publish_args(
        &o.rtmp_url(&key("cam")),
        120,
        &["-preset", "veryfast", "-bf", "0", "-g", "90"],
    );
    wait_playlist(
        &o.url("/live/cam/source/index.m3u8"),
        Duration::from_secs(30),
        "listing a segment",
        |p| !p.segments.is_empty(),
    )
    .await;

    // Nobody watched the stream at this edge: the offer subscribes it and
    // waits for the open segment's keyframe to be pushed.
    let (mut viewer, offer) = Viewer::offer(LOCAL).await.unwrap();
    let r = send_raw(
        "POST",
        &e.url("/live/cam/whep"),
        &[("content-type", "application/sdp")],
        Bytes::from(offer),
    )
    .await;
    assert_eq!(r.status, 201, "{}\n{}", r.text(), e.log());
    let location = r.header("location").unwrap();
    assert!(location.starts_with("/live/cam/whep/"), "{location}");
    let answer = r.text();
    assert!(answer.contains("H264") && answer.contains("opus/48000/2"));
    viewer.answer(&answer).unwrap();
    let seen = viewer.seen.clone();
    let stop = CancellationToken::new();
    tokio::spawn(viewer.run(stop.clone(), Duration::from_secs(60)));
    until("90 frames", Duration::from_secs(20), || {
        seen.frames.load(Ordering::Relaxed) >= 90
    })
    .await;
    // The segment so far came first, from its keyframe: a picture at
    // once, not at the next keyframe three seconds on.
    let first = seen.first.lock().unwrap().clone().unwrap();
    assert!(has_parameter_sets(&first), "the first frame is a keyframe");
    let ms = seen.first_keyframe_ms.load(Ordering::Relaxed);
    assert!(ms < 300, "first keyframe {ms} ms after connecting");
    assert_eq!(seen.broken.load(Ordering::Relaxed), 0, "frames torn");
    until("a second of audio", Duration::from_secs(10), || {
        seen.audio.load(Ordering::Relaxed) >= 50
    })
    .await;
    // Frames come as they are made, not a part (a third of a second) at a
    // time: a part's worth of frames at once would be a gap of ten frame
    // intervals each time, a freeze three times a second. Each reaches the
    // viewer soon after the edge has it.
    let delivered = || {
        seen.delivery_us
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |h| h.len())
    };
    until("frames after the burst", Duration::from_secs(10), || {
        delivered() >= 60
    })
    .await;
    let p95_us = seen
        .delivery_us
        .lock()
        .unwrap()
        .as_ref()
        .map_or(u64::MAX, |h| h.value_at_quantile(0.95));
    println!("edge arrival to viewer p95: {p95_us} us");
    assert!(p95_us < 250_000, "p95 edge-arrival-to-viewer {p95_us} us");
    let (freezes, gap) = (
        seen.freezes.load(Ordering::Relaxed),
        seen.max_gap_ms.load(Ordering::Relaxed),
    );
    println!("freezes {freezes}, longest gap {gap} ms");
    assert!(freezes <= 1, "{freezes} freezes, longest gap {gap} ms");

    // The edge holds the session; the origin none (it pushes, once).
    let m = metrics(&e).await;
    assert!(m.contains("livecdn_edge_webrtc_sessions 1\n"), "{m}");
    assert!(
        m.contains("livecdn_edge_webrtc_stream_sessions{stream=\"cam\"} 1\n"),
        "{m}"
    );
    let om = get(&o.url("/metrics")).await.text();
    assert!(om.contains("livecdn_origin_webrtc_sessions 0\n"), "{om}");
    // The edge lists its WebRTC viewer and reports it to the origin over
    // push, where the stream's viewers add up every edge's.
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let api: serde_json::Value = serde_json::from_str(
        &get_with(&e.url("/api/streams"), &[("authorization", &auth)], false)
            .await
            .text(),
    )
    .unwrap();
    let cam = api["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "cam")
        .cloned()
        .unwrap_or_default();
    assert_eq!(cam["webrtc_viewers"], 1, "{api}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: serde_json::Value =
            serde_json::from_str(&get(&o.url("/api/streams/cam")).await.text()).unwrap();
        if info["viewers"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no viewer reported: {info}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bad requests get the origin's refusals.
    let bad = send_raw(
        "POST",
        &e.url("/live/cam/whep"),
        &[("content-type", "application/sdp")],
        Bytes::from_static(b"v=0 not sdp"),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let huge = send_raw(
        "POST",
        &e.url("/live/cam/whep"),
        &[("content-type", "application/sdp")],
        Bytes::from(vec![b'a'; 2 * 1024 * 1024]),
    )
    .await;
    assert_eq!(huge.status, 413);
    let unknown = send_raw(
        "POST",
        &e.url("/live/nobody/whep"),
        &[("content-type", "application/sdp")],
        Bytes::from(Viewer::offer(LOCAL).await.unwrap().1),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());

    // DELETE ends it.
    let url = e.url(&location);
    assert_eq!(
        send_raw("DELETE", &url, &[], Bytes::new()).await.status,
        200
    );
    let m = metrics(&e).await;
    assert!(m.contains("livecdn_edge_webrtc_sessions 0\n"), "{m}");
    stop.cancel();
    ff.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_whep_from_an_edge_with_a_b_frame_source() {
    if !tools() || !support::browser_ready() {
        return;
    }
    let (o, e) = origin_and_edge(true);
    // B-frames, which WebRTC receivers do not reorder: the edge finds them
    // in the pushed source and sends the rung.
    let mut ff = Ffmpeg::publish_args(
        &o.rtmp_url(&key("cam")),
        120,
        &["-preset", "veryfast", "-g", "60"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, names, master) =
            wait_master(&o.url("/live/cam/master.m3u8"), Duration::from_secs(30)).await;
        if names.contains(&"240p".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "no 240p rung: {master}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_playlist(
        &o.url("/live/cam/240p/index.m3u8"),
        Duration::from_secs(30),
        "listing a segment of the rung",
        |p| !p.segments.is_empty(),
    )
    .await;

    let page = e.url("/?stream=cam&engine=webrtc");
    let flags = ["--allow-loopback-in-peer-connection".to_string()];
    let report = tokio::task::spawn_blocking(move || {
        support::browser::play_args(&page, &flags, 60, 30, &["--hold", "30"])
    })
    .await
    .unwrap();
    println!("webrtc playback from the edge: {}", report["webrtc"]);
    assert_eq!(report["ok"], true, "{report}\n{}", e.log());
    assert_eq!(report["engine"], "WebRTC (WHEP)", "{report}");
    assert_eq!(report["stalls"], 0, "{report}");
    let rtc = &report["webrtc"];
    assert_eq!(rtc["state"], "connected", "{report}");
    // As from the origin (e2e_whep): on this 2-core machine the
    // publisher's and the rung's encoders and the browser share the cores.
    assert!(rtc["freezes"].as_u64().unwrap() <= 1, "{report}");
    assert!(rtc["framesReceived"].as_u64().unwrap() >= 600, "{report}");
    assert!(report["decodedFrames"].as_u64().unwrap() >= 600, "{report}");
    assert_eq!(rtc["audio"]["track"], "live", "{report}");
    assert!(
        rtc["audio"]["packetsReceived"].as_u64().unwrap() >= 1000,
        "{report}"
    );
    assert!(
        e.log().contains("source has B-frames, sending a rung"),
        "{}",
        e.log()
    );
    let om = get(&o.url("/metrics")).await.text();
    assert!(om.contains("livecdn_origin_webrtc_sessions 0\n"), "{om}");
    ff.stop();
}
