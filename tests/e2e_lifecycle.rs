//! Stream lifecycle end to end with real ffmpeg: a publisher reconnecting
//! within the grace period, a stream ending after it, and a backup publisher
//! taking over from a primary that dies.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::time::{Duration, Instant};
use support::http::{get, wait_ok, wait_playlist};
use support::{ffprobe, have, key, streams, wait_log, Ffmpeg, Origin};

/// Lighter x264 settings for tests that run two encoders at once.
const FAST: &[&str] = &["-preset", "veryfast", "-g", "60"];

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "livecdn-e2e-lifecycle-{}-{name}",
        std::process::id()
    ))
}

async fn playlist(o: &Origin, stream: &str, rendition: &str) -> (MediaPlaylist, String) {
    let f = get(&o.url(&format!("/live/{stream}/{rendition}/index.m3u8"))).await;
    assert_eq!(f.status, 200, "{}", f.text());
    let text = f.text();
    (
        MediaPlaylist::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        text,
    )
}

/// MSN of the last segment listed (complete or in progress).
fn last_listed_msn(pl: &MediaPlaylist) -> u64 {
    pl.segment_msn(pl.segments.len().saturating_sub(1))
}

/// Waits (bounded) until the video playlist has a discontinuity followed by
/// a complete segment whose MSN is above `above`; returns the playlist and
/// the index of that segment.
async fn wait_segment_after_discontinuity(
    o: &Origin,
    stream: &str,
    above: u64,
    limit: Duration,
) -> (MediaPlaylist, String, usize) {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    for _ in 0..200 {
        let (pl, text) = playlist(o, stream, "source").await;
        if let Some(d) = pl.segments.iter().position(|s| s.discontinuity) {
            if let Some(i) = (d..pl.segments.len())
                .find(|&i| pl.segments[i].uri.is_some() && pl.segment_msn(i) > above)
            {
                return (pl, text, i);
            }
        }
        last = text;
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "no complete segment after a discontinuity above msn {above} within {limit:?}:\n{last}\n{}",
        o.log()
    );
}

/// Fetches `segments[index]` with its init segment and checks it decodes
/// as video starting with an IDR; returns the frame count.
async fn assert_decodes(o: &Origin, stream: &str, pl: &MediaPlaylist, index: usize) -> usize {
    let init_uri = pl.map_uri_for(index).expect("EXT-X-MAP in force");
    let uri = pl.segments[index].uri.clone().unwrap();
    let init = get(&o.url(&format!("/live/{stream}/source/{init_uri}"))).await;
    assert_eq!(init.status, 200, "{init_uri}");
    let seg = get(&o.url(&format!("/live/{stream}/source/{uri}"))).await;
    assert_eq!(seg.status, 200, "{uri}");
    let path = tmp(&format!("{stream}-{uri}.mp4"));
    std::fs::write(&path, [init.body.as_ref(), seg.body.as_ref()].concat()).unwrap();
    let frames = ffprobe(
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "csv=p=0",
        ],
        &path,
    );
    let _ = std::fs::remove_file(&path);
    let first = frames.lines().next().unwrap_or("");
    assert!(
        first.starts_with("1,I"),
        "segment {uri} (init {init_uri}) must start with an IDR: {first:?}"
    );
    let n = frames.lines().count();
    assert!(n >= 15, "segment {uri}: only {n} frames");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_within_grace_continues_after_a_discontinuity() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let origin = Origin::start(&["--reconnect-grace", "6s"]);
    let url = origin.rtmp_url(&key("cam"));
    let first = Ffmpeg::publish(&url, 6);
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let (ok, stderr) = first.wait(Duration::from_secs(20));
    assert!(ok, "first publish: {stderr}");
    let stopped = Instant::now();
    wait_log(&origin, "publish finished", Duration::from_secs(5)).await;
    let (before, before_text) = playlist(&origin, "cam", "source").await;
    let before_last = last_listed_msn(&before);
    assert!(
        !before.segments.iter().any(|s| s.discontinuity),
        "{before_text}"
    );
    assert!(!before.end_list, "still within the grace: {before_text}");

    let _second = Ffmpeg::publish(&url, 8);
    let (pl, text, i) =
        wait_segment_after_discontinuity(&origin, "cam", before_last, Duration::from_secs(15))
            .await;
    eprintln!(
        "reconnected {:?} after stop; msn before {before_last}, first complete after {}",
        stopped.elapsed(),
        pl.segment_msn(i)
    );
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert!(!pl.end_list, "{text}");
    // The media sequence continues: everything after the discontinuity has
    // larger MSNs than anything listed before the reconnect.
    let d = pl.segments.iter().position(|s| s.discontinuity).unwrap();
    assert!(pl.segment_msn(d) > before_last, "{text}");
    assert!(pl.segment_msn(i) > before_last, "{text}");
    if before.media_sequence <= pl.media_sequence {
        // No MSN is reused: the pre-reconnect segments still listed keep
        // their numbers and URIs.
        for (j, s) in before.segments.iter().enumerate() {
            let msn = before.segment_msn(j);
            if let (Some(k), Some(uri)) = (pl.index_of_msn(msn), &s.uri) {
                assert_eq!(pl.segments[k].uri.as_ref(), Some(uri), "msn {msn}: {text}");
            }
        }
    }
    let frames = assert_decodes(&origin, "cam", &pl, i).await;
    eprintln!("segment after the discontinuity decodes: {frames} frames");

    let (audio, atext) = playlist(&origin, "cam", "audio").await;
    assert!(audio.segments.iter().any(|s| s.discontinuity), "{atext}");
    let list = streams(&origin).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["live"], true, "{list:?}");
    assert_eq!(list[0]["ended"], false, "{list:?}");
    let log = origin.log();
    assert_eq!(log.matches("publish accepted").count(), 2, "{log}");
    assert!(!log.contains("stream ended"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ends_with_endlist_after_the_grace() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&["--reconnect-grace", "2s"]);
    let ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 4);
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let (ok, stderr) = ff.wait(Duration::from_secs(20));
    assert!(ok, "{stderr}");
    let stopped = Instant::now();

    let deadline = stopped + Duration::from_secs(8);
    let (pl, text) = loop {
        let (pl, text) = playlist(&origin, "cam", "source").await;
        if pl.end_list {
            break (pl, text);
        }
        assert!(
            Instant::now() < deadline,
            "no ENDLIST 8 s after the publisher stopped:\n{text}\n{}",
            origin.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = stopped.elapsed();
    eprintln!("ENDLIST {took:?} after the publisher stopped (grace 2 s)");
    assert!(
        took <= Duration::from_millis(4500),
        "ENDLIST after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "ENDLIST before the grace ran out: {took:?}"
    );
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    assert!(!text.contains("#EXT-X-PRELOAD-HINT"), "{text}");
    assert!(pl.preload_hint.is_none());
    assert!(pl.segments.iter().any(|s| s.uri.is_some()), "{text}");
    assert!(
        pl.segments.last().is_some_and(|s| s.uri.is_some()),
        "last segment complete: {text}"
    );

    let (apl, atext) = playlist(&origin, "cam", "audio").await;
    assert!(apl.end_list, "{atext}");
    assert!(atext.trim_end().ends_with("#EXT-X-ENDLIST"), "{atext}");
    assert!(!atext.contains("#EXT-X-PRELOAD-HINT"), "{atext}");

    let list = streams(&origin).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "cam");
    assert_eq!(list[0]["ended"], true, "{list:?}");
    assert_eq!(list[0]["live"], false, "{list:?}");
    wait_log(
        &origin,
        "publisher did not come back; stream ended",
        Duration::from_secs(2),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_publisher_takes_over_when_the_primary_dies() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let config = tmp("backup.toml");
    std::fs::write(
        &config,
        "[[ingest.static_keys]]\nkey = \"studio-static-key-0042\"\nstream = \"studio\"\nbackup = true\n",
    )
    .unwrap();
    let origin = Origin::start(&["--config", config.to_str().unwrap()]);
    let url = origin.rtmp_url("studio-static-key-0042");

    let mut a = Ffmpeg::publish_args(&url, 14, FAST);
    wait_ok(
        &origin.url("/live/studio/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let b = Ffmpeg::publish_args(&url, 24, FAST);
    wait_log(
        &origin,
        "standing by as backup publisher",
        Duration::from_secs(10),
    )
    .await;
    let log = origin.log();
    assert_eq!(log.matches("publish accepted").count(), 2, "{log}");
    let list = streams(&origin).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "studio");
    assert_eq!(list[0]["live"], true);
    // While B stands by, A's stream goes on (a few more parts), alone.
    let (standing, _) = playlist(&origin, "studio", "source").await;
    let parts_then = standing.last_part();
    wait_playlist(
        &origin.url("/live/studio/source/index.m3u8"),
        Duration::from_secs(10),
        "three parts further",
        |pl| pl.last_part() >= parts_then.map(|(msn, part)| (msn, part + 3)),
    )
    .await;
    let (before, before_text) = playlist(&origin, "studio", "source").await;
    assert!(
        !before.segments.iter().any(|s| s.discontinuity),
        "{before_text}"
    );
    let before_last = last_listed_msn(&before);

    a.stop();
    let killed = Instant::now();
    let (pl, text, i) =
        wait_segment_after_discontinuity(&origin, "studio", before_last, Duration::from_secs(12))
            .await;
    eprintln!(
        "backup took over: complete segment msn {} {:?} after the primary was killed (before: {before_last})",
        pl.segment_msn(i),
        killed.elapsed()
    );
    wait_log(
        &origin,
        "backup publisher takes over",
        Duration::from_secs(2),
    )
    .await;
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert!(!pl.end_list, "{text}");
    assert_decodes(&origin, "studio", &pl, i).await;

    // The stream keeps advancing on B.
    let (p1, _) = playlist(&origin, "studio", "source").await;
    let at = p1.last_part().unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut now = at;
    while now <= at && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        now = playlist(&origin, "studio", "source")
            .await
            .0
            .last_part()
            .unwrap();
    }
    assert!(now > at, "stream stalled on the backup at {at:?}");
    let list = streams(&origin).await;
    assert_eq!(list[0]["live"], true, "{list:?}");
    assert_eq!(list[0]["ended"], false, "{list:?}");
    drop(b);
    let _ = std::fs::remove_file(&config);
}

/// RFC 8216bis rules that need a stalled publisher or a sliding window:
/// a blocking request that cannot be satisfied in three target durations
/// gets 503 with Retry-After; an msn older than the window gets the whole
/// current playlist at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reload_503_when_stalled_and_old_msn_gets_current_playlist() {
    if !have("ffmpeg") {
        return;
    }
    let cfg = tmp("window.toml");
    std::fs::write(
        &cfg,
        "[llhls]\nwindow_segments = 3\nsegment_target = \"1s\"\n",
    )
    .unwrap();
    let origin = Origin::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--reconnect-grace",
        "30s",
    ]);
    let ff = Ffmpeg::publish_args(
        &origin.rtmp_url(&key("cam")),
        9,
        &["-preset", "veryfast", "-g", "30"],
    );
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    // Wait for the window to slide past MSN 0.
    let mut slid = None;
    for _ in 0..60 {
        let (pl, _) = playlist(&origin, "cam", "source").await;
        if pl.media_sequence >= 2 {
            slid = Some(pl);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pl = slid.expect("window slid");
    let old = get(&origin.url("/live/cam/source/index.m3u8?_HLS_msn=0&_HLS_part=0")).await;
    assert_eq!(old.status, 200);
    assert!(
        old.total < Duration::from_millis(300),
        "answered at once: {:?}",
        old.total
    );
    let old_pl = MediaPlaylist::parse(&old.text()).unwrap();
    assert!(old_pl.media_sequence >= pl.media_sequence);
    assert!(old_pl.preload_hint.is_some(), "the whole current playlist");

    // Stop the publisher (the stream waits for a reconnect), then ask for
    // the next part: nothing will come, so 503 after 3 x TARGETDURATION.
    let (_ok, _err) = ff.wait(Duration::from_secs(20));
    let (pl, _) = playlist(&origin, "cam", "source").await;
    let (msn, part) = pl.next_part();
    let f = get(&origin.url(&format!(
        "/live/cam/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
    )))
    .await;
    assert_eq!(f.status, 503, "{}", f.text());
    assert!(f.header("retry-after").is_some());
    assert_eq!(
        f.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let target = pl.target_duration as f64;
    let held = f.total.as_secs_f64();
    assert!(
        held >= 3.0 * target - 0.2 && held < 3.0 * target + 2.0,
        "held {held}s, target {target}s"
    );
    // The hinted part request is held the same way and also ends in 503.
    let hint = pl.preload_hint.unwrap().uri;
    let f = get(&origin.url(&format!("/live/cam/source/{hint}"))).await;
    assert_eq!(f.status, 503);
}
