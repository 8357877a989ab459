//! The edge takes hold times, TTLs and the blocking-reload limits from each
//! stream's own PART-TARGET and TARGETDURATION, learned from the playlists
//! it serves: behind an origin with 1 s parts and 4 s segments a blocking
//! reload two segments ahead is held until answered (not timed out into a
//! 504), and behind one with 0.1 s parts every next part is answered and a
//! part past the Advance Part Limit is refused at once. Real ffmpeg, real
//! origin and edge processes.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::{get, wait_ok};
use support::{have, key, Ffmpeg, Origin};

/// One origin-with-publisher at a time: each test runs an encoder.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn playlist(url: &str) -> MediaPlaylist {
    let r = get(url).await;
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    MediaPlaylist::parse(&r.text()).unwrap()
}

/// The timing the edge reports having learned for `stream`.
async fn learned(edge: &Edge, stream: &str) -> (f64, f64) {
    let api: serde_json::Value =
        serde_json::from_str(&get(&edge.url("/api/streams")).await.text()).unwrap();
    let t = &api["timing"][stream];
    (
        t["part_target"].as_f64().unwrap_or(0.0),
        t["target_duration"].as_f64().unwrap_or(0.0),
    )
}

/// Waits (bounded) until `url` lists at least `n` complete segments.
async fn wait_segments(url: &str, n: usize) -> MediaPlaylist {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get(url).await;
        if r.status == 200 {
            let pl = MediaPlaylist::parse(&r.text()).unwrap();
            if pl.segments.iter().filter(|s| s.is_complete()).count() >= n {
                return pl;
            }
        }
        assert!(Instant::now() < deadline, "{url}: fewer than {n} segments");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reloads_of_four_second_segments_are_held_until_answered() {
    if !have("ffmpeg") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let origin = Origin::start(&[
        "--part-target",
        "1s",
        "--segment-target",
        "4s",
        "--ladder",
        "source",
    ]);
    let _ff = Ffmpeg::publish_args(
        &origin.rtmp_url(&key("slow")),
        90,
        &["-preset", "veryfast", "-g", "120"],
    );
    let edge = Edge::start(&origin, &[]);
    let path = "/live/slow/source/index.m3u8";
    wait_ok(&edge.url(path), Duration::from_secs(30)).await;
    let pl = wait_segments(&edge.url(path), 1).await;
    // Catch a segment boundary: `_HLS_msn=N` returns as segment N
    // completes, i.e. as N+1 starts.
    let n = pl.next_msn();
    let at_boundary = playlist(&edge.url(&format!("{path}?_HLS_msn={n}"))).await;
    assert_eq!(at_boundary.last_msn(), Some(n));
    // N+2 completes one whole 4 s segment after N+1, about 8 s from now:
    // longer than a 2 s-segment edge would hold a request (7 s).
    let ahead = n + 2;
    let started = Instant::now();
    let r = get(&edge.url(&format!("{path}?_HLS_msn={ahead}"))).await;
    let waited = started.elapsed();
    assert_eq!(r.status, 200, "after {waited:?}: {}", r.text());
    let answered = MediaPlaylist::parse(&r.text()).unwrap();
    assert!(
        answered.last_msn() >= Some(ahead),
        "after {waited:?} the answer ends at {:?}",
        answered.last_msn()
    );
    let (part_target, target) = learned(&edge, "slow").await;
    assert!((1.0..1.1).contains(&part_target), "{part_target}");
    assert_eq!(target, 4.0);
    eprintln!("two segments ahead answered after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenth_of_a_second_parts_are_followed_part_by_part() {
    if !have("ffmpeg") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let origin = Origin::start(&["--part-target", "100ms", "--ladder", "source"]);
    let _ff = Ffmpeg::publish_args(
        &origin.rtmp_url(&key("fast")),
        90,
        &["-preset", "veryfast", "-g", "60"],
    );
    let edge = Edge::start(&origin, &[]);
    let path = "/live/fast/source/index.m3u8";
    wait_ok(&edge.url(path), Duration::from_secs(30)).await;
    let mut pl = wait_segments(&edge.url(path), 1).await;
    // Thirty next parts in a row (3 s of media), each held until listed.
    for _ in 0..30 {
        let (msn, part) = pl.next_part();
        pl = playlist(&edge.url(&format!("{path}?_HLS_msn={msn}&_HLS_part={part}"))).await;
        let last = pl.last_part().unwrap();
        assert!(last >= (msn, part), "asked {msn}.{part}, got {last:?}");
    }
    let (part_target, target) = learned(&edge, "fast").await;
    assert!((0.1..0.11).contains(&part_target), "{part_target}");
    assert_eq!(target, 2.0);
    // The Advance Part Limit at 0.1 s parts is 30: one past it is refused
    // at once.
    let (msn, part) = pl.last_part().unwrap();
    let started = Instant::now();
    let r = get(&edge.url(&format!("{path}?_HLS_msn={msn}&_HLS_part={}", part + 31))).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(1));
}
