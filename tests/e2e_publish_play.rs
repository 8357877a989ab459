//! Real ffmpeg publishes H.264 (with B-frames) + AAC over RTMP; everything a
//! player does with the result is checked over real HTTP.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::{MediaPlaylist, MultivariantPlaylist};
use std::path::Path;
use std::time::Duration;
use support::http::{complete_segments, get, get_with, wait_ok, wait_playlist};
use support::{ffprobe, have, key, Ffmpeg, Origin};

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("livecdn-e2e-{}-{name}", std::process::id()))
}

async fn playlist(o: &Origin, rendition: &str, query: &str) -> (MediaPlaylist, String) {
    let f = get(&o.url(&format!("/live/cam/{rendition}/index.m3u8{query}"))).await;
    assert_eq!(f.status, 200, "{}", f.text());
    let text = f.text();
    (
        MediaPlaylist::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_serves_valid_ll_hls() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let origin = Origin::start(&[]);
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 60);

    // Master playlist: attributes from the SPS/ASC and measured bandwidth.
    let master = wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let mv = MultivariantPlaylist::parse(&master.text()).unwrap();
    assert_eq!(mv.variants.len(), 1);
    let v = &mv.variants[0];
    assert_eq!(v.resolution, Some((640, 360)));
    assert!(
        v.codecs.starts_with("avc1.64"),
        "x264 medium is High profile: {}",
        v.codecs
    );
    assert!(v.codecs.contains("mp4a.40.2"));
    assert!(v.bandwidth > 50_000 && v.average_bandwidth.unwrap() <= v.bandwidth);
    assert_eq!(v.audio_group.as_deref(), Some("audio"));
    assert_eq!(mv.audio.len(), 1);
    assert!(mv.independent_segments);

    // A few complete segments in both renditions.
    for r in ["source", "audio"] {
        wait_playlist(
            &origin.url(&format!("/live/cam/{r}/index.m3u8")),
            Duration::from_secs(20),
            "three segments long",
            |pl| complete_segments(pl) >= 3,
        )
        .await;
    }
    check_media_playlists(&origin).await;
    check_blocking_reload(&origin).await;
    check_too_far_ahead_and_bad_queries(&origin).await;
    check_delta_update(&origin).await;
    check_hinted_part_is_streamed(&origin).await;
    check_decodable_media(&origin).await;
    check_headers(&origin).await;
}

async fn check_media_playlists(o: &Origin) {
    let mut hold_backs = Vec::new();
    for r in ["source", "audio"] {
        let (pl, text) = playlist(o, r, "").await;
        assert!(
            text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"),
            "{text}"
        );
        assert!(pl.part_target.is_some());
        let sc = pl.server_control.clone().unwrap();
        // At least three of its own PART-TARGET (the audio's allows for
        // its parts following the video's cuts), the same everywhere.
        let hold_back = sc.part_hold_back.unwrap();
        assert!(hold_back >= 3.0 * pl.part_target.unwrap() - 1e-6, "{text}");
        hold_backs.push(hold_back);
        assert!(
            pl.segments.iter().filter(|s| s.uri.is_some()).count() >= 2,
            "{text}"
        );
        assert!(pl.segments.iter().all(|s| s.program_date_time.is_some()));
        assert!(pl.preload_hint.is_some());
        assert_eq!(pl.rendition_reports.len(), 1, "{text}");
        assert_eq!(pl.segments[0].map_uri.as_deref(), Some("init.mp4"));
        for s in pl.segments.iter().filter(|s| s.uri.is_some()) {
            assert!(s.duration <= pl.target_duration as f64 + 0.5, "{text}");
        }
    }
    assert_eq!(hold_backs[0], hold_backs[1], "PART-HOLD-BACK differs");
    // Video and audio list the same MSNs with the same part numbers.
    let (v, _) = playlist(o, "source", "").await;
    let (a, _) = playlist(o, "audio", "").await;
    assert_eq!(v.media_sequence, a.media_sequence);
}

async fn check_blocking_reload(o: &Origin) {
    let (pl, _) = playlist(o, "source", "").await;
    let (msn, part) = pl.next_part();
    // Ask for the part after the next: the server must hold the request
    // until that part is in the playlist.
    let want = format!("{msn}.{}.m4s", part + 1);
    let q = format!("?_HLS_msn={msn}&_HLS_part={}", part + 1);
    let f = get(&o.url(&format!("/live/cam/source/index.m3u8{q}"))).await;
    assert_eq!(f.status, 200);
    let text = f.text();
    // Either the part is listed, or the segment closed before reaching it
    // (then the next segment's first part must be there).
    assert!(
        text.contains(&format!("\"{want}\"")) || text.contains(&format!("\"{}.0.m4s\"", msn + 1)),
        "blocking reload did not wait for {want}: {text}"
    );
    assert!(
        f.total > Duration::from_millis(100),
        "held only {:?}",
        f.total
    );
    assert!(f.header("cache-control").unwrap().contains("max-age=12"));
}

async fn check_too_far_ahead_and_bad_queries(o: &Origin) {
    let (pl, _) = playlist(o, "source", "").await;
    // The newest segment listed, the open one included.
    let last = pl.segment_msn(pl.segments.len() - 1);
    let f = get(&o.url(&format!(
        "/live/cam/source/index.m3u8?_HLS_msn={}",
        last + 3
    )))
    .await;
    assert_eq!(f.status, 400, "{}", f.text());
    assert_eq!(
        f.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let f = get(&o.url("/live/cam/source/index.m3u8?_HLS_part=1")).await;
    assert_eq!(f.status, 400, "_HLS_part without _HLS_msn");
    let f = get(&o.url("/live/cam/source/index.m3u8?_HLS_msn=abc")).await;
    assert_eq!(f.status, 400);
    // An msn older than the window gets the current playlist at once.
    if pl.media_sequence > 0 {
        let f = get(&o.url("/live/cam/source/index.m3u8?_HLS_msn=0&_HLS_part=0")).await;
        assert_eq!(f.status, 200);
        assert!(f.total < Duration::from_millis(200));
    }
    let f = get(&o.url("/live/nope/source/index.m3u8")).await;
    assert_eq!(f.status, 404);
}

async fn check_delta_update(o: &Origin) {
    // Wait until the window is longer than CAN-SKIP-UNTIL (12 s) plus a bit.
    wait_playlist(
        &o.url("/live/cam/source/index.m3u8"),
        Duration::from_secs(40),
        "longer than 16 s",
        |pl| pl.segments.iter().map(|s| s.duration).sum::<f64>() > 16.0,
    )
    .await;
    let (full, _) = playlist(o, "source", "").await;
    let (msn, part) = full.next_part();
    let q = format!("?_HLS_msn={msn}&_HLS_part={part}");
    let (after, _) = playlist(o, "source", &q).await;
    let (delta, text) = playlist(o, "source", &format!("{q}&_HLS_skip=YES")).await;
    let skipped = delta.skip.as_ref().expect("EXT-X-SKIP").skipped_segments as usize;
    assert!(skipped >= 1, "{text}");
    assert_eq!(delta.version, 9);
    assert_eq!(delta.media_sequence, after.media_sequence);
    let tail = &after.segments[skipped..];
    let n = tail.len().min(delta.segments.len()) - 1;
    for (d, f) in delta.segments.iter().zip(tail).take(n) {
        assert_eq!(
            d.uri, f.uri,
            "delta must list the same segments as the full playlist"
        );
    }
}

async fn check_hinted_part_is_streamed(o: &Origin) {
    // Fetch the preload-hinted part: its first bytes must arrive well before
    // the part is complete (the origin streams it while producing it).
    let mut best = None;
    for _ in 0..3 {
        let (pl, _) = playlist(o, "source", "").await;
        let hint = pl.preload_hint.unwrap().uri;
        let f = get(&o.url(&format!("/live/cam/source/{hint}"))).await;
        assert_eq!(f.status, 200);
        let first = f.first_byte.unwrap();
        if f.total > first + Duration::from_millis(100) && f.frames > 2 {
            best = Some((first, f.total, f.frames));
            break;
        }
    }
    let (first, total, frames) = best.expect("a hinted part streamed in several frames");
    assert!(
        first < total,
        "first byte {first:?}, complete {total:?}, {frames} frames"
    );
}

async fn check_decodable_media(o: &Origin) {
    let (pl, _) = playlist(o, "source", "").await;
    let init = get(&o.url("/live/cam/source/init.mp4")).await.body;
    let complete: Vec<_> = pl.segments.iter().filter_map(|s| s.uri.clone()).collect();
    assert!(complete.len() >= 3);
    for uri in complete.iter().rev().take(3) {
        let seg = get(&o.url(&format!("/live/cam/source/{uri}"))).await.body;
        let path = tmp(&format!("seg-{uri}.mp4"));
        std::fs::write(&path, [init.as_ref(), seg.as_ref()].concat()).unwrap();
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
        let first = frames.lines().next().unwrap_or("");
        assert!(
            first.starts_with("1,I"),
            "segment {uri} must start with an IDR: {first}"
        );
        assert!(
            frames.lines().count() >= 55,
            "segment {uri}: {} frames",
            frames.lines().count()
        );
        assert!(
            frames.lines().any(|l| l.ends_with(",B")),
            "B-frames survive packaging"
        );
        // The segment is its parts joined.
        let idx = pl
            .segments
            .iter()
            .position(|s| s.uri.as_ref() == Some(uri))
            .unwrap();
        if !pl.segments[idx].parts.is_empty() {
            let mut joined = Vec::new();
            for p in &pl.segments[idx].parts {
                joined.extend_from_slice(
                    &get(&o.url(&format!("/live/cam/source/{}", p.uri)))
                        .await
                        .body,
                );
            }
            assert_eq!(joined, seg.to_vec(), "segment {uri} = its parts joined");
            let path = tmp(&format!("parts-{uri}.mp4"));
            std::fs::write(&path, [init.as_ref(), &joined].concat()).unwrap();
            let n = ffprobe(
                &[
                    "-count_frames",
                    "-select_streams",
                    "v",
                    "-show_entries",
                    "stream=nb_read_frames",
                    "-of",
                    "csv=p=0",
                ],
                &path,
            );
            assert!(n.trim().parse::<u32>().unwrap() >= 55);
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_file(&path);
    }
    // Audio decodes too.
    let (apl, _) = playlist(o, "audio", "").await;
    let ainit = get(&o.url("/live/cam/audio/init.mp4")).await.body;
    let auri = apl
        .segments
        .iter()
        .rev()
        .find_map(|s| s.uri.clone())
        .unwrap();
    let aseg = get(&o.url(&format!("/live/cam/audio/{auri}"))).await.body;
    let path = tmp("audio.mp4");
    std::fs::write(&path, [ainit.as_ref(), aseg.as_ref()].concat()).unwrap();
    let out = ffprobe(
        &[
            "-show_entries",
            "stream=codec_name,sample_rate",
            "-of",
            "csv=p=0",
        ],
        &path,
    );
    assert_eq!(out.trim(), "aac,48000");
    let _ = std::fs::remove_file(Path::new(&path));
}

async fn check_headers(o: &Origin) {
    let f = get_with(
        &o.url("/live/cam/source/index.m3u8"),
        &[("accept-encoding", "gzip")],
        false,
    )
    .await;
    assert_eq!(f.header("content-encoding").as_deref(), Some("gzip"));
    let f = get(&o.url("/live/cam/source/init.mp4")).await;
    assert!(f.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(f.header("timing-allow-origin").as_deref(), Some("*"));
    let f = get(&o.url("/definitely/not/here")).await;
    assert_eq!(f.status, 404);
    assert_eq!(
        f.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    // HTTP/2 prior knowledge (h2c) on the same port.
    let f = get_with(&o.url("/live/cam/master.m3u8"), &[], true).await;
    assert_eq!(f.status, 200);
    // The API and metrics see the stream.
    let api: serde_json::Value =
        serde_json::from_slice(&get(&o.url("/api/streams/cam")).await.body).unwrap();
    assert_eq!(api["live"], true);
    assert!(api["health"]["bitrate_bps"].as_u64().unwrap() > 10_000);
    assert!(api["health"]["video_fps"].as_f64().unwrap() > 20.0);
    let metrics = get(&o.url("/metrics")).await.text();
    assert!(
        metrics.contains("livecdn_origin_publishes_total{result=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("livecdn_origin_ingest_bitrate_bps{stream=\"cam\"}"));
}
