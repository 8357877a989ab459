//! A WHEP viewer moved between the ladder's renditions by its bandwidth
//! estimate, at the origin and at an edge: on a link narrower than the
//! source it goes down to the rung, and back up once the link is wide
//! again. The estimate is str0m's
//! congestion control over the viewer's TWCC feedback; the narrow link is
//! the test viewer's own (its RTP queues at a set rate, and is lost past a
//! quarter second of queue), so the server sees what a congested path
//! shows it: delay growing, then loss.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use livecdn_webrtc::client::Viewer;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::edge::origin_and_whep_edge;
use support::http::{get, get_with, send_raw, wait_playlist};
use support::{key, Ffmpeg};
use tokio_util::sync::CancellationToken;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// One viewer of `whep` through a link that narrows and widens again:
/// the source's height, the rung's while narrow, the source's again; the
/// moves counted in the metrics `metrics` fetches.
async fn down_and_up<F, Fut>(whep: &str, metrics: F, prefix: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let (mut viewer, offer) = Viewer::offer(LOCAL).await.unwrap();
    let sdp = [("content-type", "application/sdp")];
    let r = send_raw("POST", whep, &sdp, Bytes::from(offer)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The congestion feedback the estimate needs is negotiated.
    assert!(r.text().contains("transport-cc"), "{}", r.text());
    viewer.answer(&r.text()).unwrap();
    let seen = viewer.seen.clone();
    let rate = viewer.limit_rate();
    let stop = CancellationToken::new();
    tokio::spawn(viewer.run(stop.clone(), Duration::from_secs(150)));
    let height = || seen.height.load(Ordering::Relaxed);
    until("the source's picture", Duration::from_secs(20), || {
        height() == 360
    })
    .await;

    // Narrower than the source: the viewer moves to the 180p rung.
    rate.store(600_000, Ordering::Relaxed);
    until("the rung's picture", Duration::from_secs(40), || {
        height() == 180
    })
    .await;
    let m = metrics().await;
    assert!(
        counter(&m, &format!("{prefix}_moves_down_total")) >= 1,
        "{m}"
    );
    let frames = seen.frames.load(Ordering::Relaxed);
    until("frames of the rung", Duration::from_secs(10), || {
        seen.frames.load(Ordering::Relaxed) >= frames + 60
    })
    .await;
    assert_eq!(height(), 180, "it stays down while the link is narrow");

    // Wide again: back up to the source.
    rate.store(0, Ordering::Relaxed);
    until(
        "the source's picture again",
        Duration::from_secs(60),
        || height() == 360,
    )
    .await;
    let m = metrics().await;
    assert!(counter(&m, &format!("{prefix}_moves_up_total")) >= 1, "{m}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_link_moves_a_viewer_down_the_ladder_and_a_wide_one_back_up() {
    let ok = support::have("ffmpeg");
    assert!(ok || !support::ci(), "ffmpeg is needed under CI");
    if !ok {
        return;
    }
    let (o, e) = origin_and_whep_edge(
        "[webrtc]\nlisten = \"127.0.0.1:0\"\nconnect_timeout = \"3s\"\n\
         [[ladder.rungs]]\nname = \"source\"\n\n[[ladder.rungs]]\nname = \"180p\"\n\
         height = 180\nvideo_bitrate = \"200k\"\n",
    );
    // A constant 1.5 Mbit/s source without B-frames (passed through).
    let _ff = Ffmpeg::publish_args(
        &o.rtmp_url(&key("cam")),
        180,
        &[
            "-preset",
            "veryfast",
            "-bf",
            "0",
            "-g",
            "30",
            "-b:v",
            "1500k",
            "-minrate",
            "1500k",
            "-maxrate",
            "1500k",
            "-bufsize",
            "750k",
            "-x264-params",
            "nal-hrd=cbr",
        ],
    );
    // Both renditions measured at the origin (a complete segment each).
    for r in ["source", "180p"] {
        wait_playlist(
            &o.url(&format!("/live/cam/{r}/index.m3u8")),
            Duration::from_secs(40),
            "a complete segment",
            |p| support::http::complete_segments(p) >= 1,
        )
        .await;
    }
    let origin_metrics = || async { get(&o.url("/metrics")).await.text() };
    down_and_up(
        &o.url("/live/cam/whep"),
        origin_metrics,
        "livecdn_origin_webrtc",
    )
    .await;

    // At the edge the ladder is what push brings, measured as it arrives:
    // three more segments of it (the edge subscribed with the first
    // request) cover a measuring window.
    let url = e.url("/live/cam/180p/index.m3u8");
    let first = wait_playlist(&url, Duration::from_secs(20), "the edge's playlist", |p| {
        p.last_msn().is_some()
    })
    .await
    .last_msn()
    .unwrap();
    wait_playlist(&url, Duration::from_secs(30), "three more segments", |p| {
        p.last_msn().is_some_and(|m| m >= first + 3)
    })
    .await;
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let edge_metrics = || async {
        get_with(&e.url("/metrics"), &[("authorization", &auth)], false)
            .await
            .text()
    };
    down_and_up(
        &e.url("/live/cam/whep"),
        edge_metrics,
        "livecdn_edge_webrtc",
    )
    .await;
}
