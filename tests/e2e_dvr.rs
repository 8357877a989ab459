//! DVR end to end with real ffmpeg: a recorded stream's live playlists
//! reach back into its recording; through an edge subscribed over push
//! (which then pulls the playlists and gets the media pushed), a player
//! seeks 40 s back while the stream is live and plays from there; once the
//! publisher stops, the recording's MP4 through the edge has both tracks
//! and its duration. (Playing a VOD to its ENDLIST in Chromium, `kill -9`
//! and the rest: `e2e_record.rs`.)

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::time::Duration;
use support::edge::{origin_with_push, Edge};
use support::http::{get, wait_ok};
use support::record::{probe, secs, temp_dir, wait_recording};
use support::{have, key, Ffmpeg};

const FAST: &[&str] = &["-preset", "veryfast", "-g", "60"];

#[tokio::test(flavor = "multi_thread")]
async fn a_player_seeks_forty_seconds_back_through_the_edge_while_live() {
    let ok = have("ffmpeg");
    assert!(ok || !support::ci(), "ffmpeg is needed under CI");
    if !ok {
        return;
    }
    let dir = temp_dir("dvr");
    let d = dir.to_str().unwrap();
    let (o, push, pin) = origin_with_push(
        "",
        &["--record", "--recording-dir", d, "--ladder", "source"],
    );
    let edge = Edge::start(&o, &["--push", &push, "--push-spki", &pin]);
    // 70 s: long enough to have 45 s behind the live edge and keep going
    // while the player seeks into them.
    let ff = Ffmpeg::publish_args(&o.rtmp_url(&key("dvr")), 70, FAST);
    let rec = wait_recording(&o, "dvr", "45 s long", |r| {
        r["state"] == "recording" && secs(r) >= 45.0
    })
    .await;
    let id = rec["id"].as_str().unwrap().to_string();

    // The live playlist, through the edge, reaches back into the recording.
    let url = edge.url("/live/dvr/source/index.m3u8");
    let text = wait_ok(&url, Duration::from_secs(10)).await.text();
    let pl = MediaPlaylist::parse(&text).unwrap();
    let listed: f64 = pl.segments.iter().map(|s| s.duration).sum();
    assert!(listed >= 44.0, "{listed} s listed:\n{text}");
    assert!(
        pl.media_sequence <= 1,
        "from the recording's start:\n{text}"
    );
    assert!(!pl.end_list);
    assert_eq!(
        pl.segments[0].map_uri.as_deref(),
        Some("init.mp4"),
        "{text}"
    );
    // A delta update skips most of it.
    let delta = get(&edge.url("/live/dvr/source/index.m3u8?_HLS_skip=YES"))
        .await
        .text();
    let d = MediaPlaylist::parse(&delta).unwrap();
    let skipped = d.skip.as_ref().unwrap().skipped_segments;
    assert!(skipped >= 10, "{delta}");
    // What it lists is the last CAN-SKIP-UNTIL (12 s) or so; with what it
    // skipped, the whole window (give or take what the live edge moved
    // between the two requests).
    assert!(d.segments.len() <= 10, "{delta}");
    let whole = d.segments.len() as u64 + skipped;
    assert!(
        whole.abs_diff(pl.segments.len() as u64) <= 2,
        "{whole} against {}",
        pl.segments.len()
    );
    // An old segment, served under its live URL, is the recorded file.
    let old = pl.segments[2].uri.as_deref().unwrap();
    let through_edge = get(&edge.url(&format!("/live/dvr/source/{old}"))).await;
    assert_eq!(through_edge.status, 200, "{old}");
    let on_disk = std::fs::read(dir.join("dvr").join(&id).join("source").join(old)).unwrap();
    assert!(
        through_edge.body == on_disk,
        "{old} differs from the recording"
    );

    // The player page through the edge: seek 40 s back, play from there.
    if support::browser_ready() {
        let page = edge.url("/?stream=dvr");
        let report = support::browser::play_args(
            &page,
            &[],
            30,
            30,
            &["--seek-back", "40", "--hold", "5", "--max-stalls", "1"],
        );
        eprintln!("{report}");
        assert_eq!(report["ok"], true, "{report}");
        let behind = report["hold_behind_live_median_s"].as_f64().unwrap();
        assert!(
            (33.0..=50.0).contains(&behind),
            "played {behind} s behind live: {report}"
        );
    }
    // The edge took the media over push and pulled the playlists.
    assert!(edge.log().contains("push connected"), "{}", edge.log());
    let (ok, err) = ff.wait(Duration::from_secs(60));
    assert!(ok, "ffmpeg: {err}");

    // After the stream: the recording lists as done, its MP4 through the
    // edge has both tracks and the recorded duration (within a segment).
    let done = wait_recording(&o, "dvr", "done", |r| r["id"] == id && r["state"] == "done").await;
    assert!(secs(&done) >= 68.0, "{done}");
    let vod = done["vod"]
        .as_str()
        .unwrap()
        .replace("master.m3u8", "download.mp4");
    let mp4 = get(&edge.url(&vod)).await;
    assert_eq!(mp4.status, 200, "{}", mp4.text());
    let file = dir.join("dvr.mp4");
    std::fs::write(&file, &mp4.body).unwrap();
    let (d, kinds) = probe(&file);
    assert_eq!(kinds, ["video", "audio"]);
    assert!(
        (d - secs(&done)).abs() <= 2.0,
        "mp4 {d} s, recorded {}",
        secs(&done)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
