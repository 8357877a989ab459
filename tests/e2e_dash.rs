//! LL-DASH from the same CMAF as LL-HLS, end to end: ffmpeg publishes to a
//! real origin, a real edge pulls from it. The MPD (origin and edge) names
//! each segment by its HLS media sequence number with the segment's own
//! decode time, the one in production included; ffmpeg's DASH demuxer reads the MPD and decodes; the next
//! segment asked for early is held until it starts and then streamed,
//! never a 404; `/time` gives the clock the MPD's `UTCTiming` names.

#![allow(clippy::unwrap_used)]

#[path = "e2e_conformance/mp4.rs"]
mod mp4;
mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use support::edge::Edge;
use support::http::{get, wait_ok};
use support::{have, key, Ffmpeg, Origin};

/// `(number, t, d)` of every segment of a Representation's timeline.
fn timeline(rep: roxmltree::Node) -> (u32, Vec<(u64, u64, u64)>) {
    let tpl = rep
        .children()
        .find(|n| n.has_tag_name("SegmentTemplate"))
        .unwrap();
    let timescale = tpl.attribute("timescale").unwrap().parse().unwrap();
    let mut n: u64 = tpl.attribute("startNumber").unwrap().parse().unwrap();
    let mut out = Vec::new();
    for s in tpl.descendants().filter(|x| x.has_tag_name("S")) {
        let t: u64 = s.attribute("t").unwrap().parse().unwrap();
        let d: u64 = s.attribute("d").unwrap().parse().unwrap();
        let r: u64 = s.attribute("r").map_or(0, |r| r.parse().unwrap());
        for i in 0..=r {
            out.push((n, t + i * d, d));
            n += 1;
        }
    }
    (timescale, out)
}

async fn mpd(base: &str) -> String {
    let r = get(&format!("{base}/live/dash/manifest.mpd")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/dash+xml")
    );
    r.text()
}

/// Checks one server's MPD against its HLS playlists and media.
async fn same_media_as_hls(base: &str) {
    let text = mpd(base).await;
    let doc = roxmltree::Document::parse(&text).unwrap();
    let reps: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Representation"))
        .collect();
    let ids: Vec<_> = reps.iter().map(|r| r.attribute("id").unwrap()).collect();
    assert!(ids.contains(&"source") && ids.contains(&"audio"), "{ids:?}");
    for rep in reps {
        let id = rep.attribute("id").unwrap();
        let (timescale, segments) = timeline(rep);
        assert!(segments.len() >= 2, "{id}: {text}");
        let hls = get(&format!("{base}/live/dash/{id}/index.m3u8")).await;
        let hls = MediaPlaylist::parse(&hls.text()).unwrap();
        let init = get(&format!("{base}/live/dash/{id}/init.mp4")).await.body;
        assert_eq!(mp4::timescale(&init).unwrap(), u64::from(timescale), "{id}");
        let trex = mp4::default_duration(&init).unwrap();
        let last = segments.last().map(|s| s.0);
        for (n, t, d) in segments.iter().rev().take(3) {
            // $Number$ n is HLS segment n: listed there, and its bytes
            // start at the timeline's t and last its d.
            // (The last may be the segment in production: listed in HLS
            // by its parts only.)
            if let Some(i) = hls
                .index_of_msn(*n)
                .filter(|i| hls.segments[*i].is_complete())
            {
                assert_eq!(
                    hls.segments[i].uri.as_deref(),
                    Some(format!("{n}.m4s").as_str())
                );
            }
            let media = get(&format!("{base}/live/dash/{id}/{n}.m4s")).await;
            assert_eq!(media.status, 200, "{id}/{n}.m4s");
            let frags = mp4::fragments(&media.body, trex).unwrap();
            assert_eq!(frags[0].decode_time, *t, "{id} segment {n}: tfdt vs S@t");
            // The last S may be the segment that was in production when
            // the MPD was written: its d is then the expected duration,
            // corrected by the next MPD, so only its start is exact.
            if Some(*n) == last {
                continue;
            }
            let span: u64 = frags.iter().map(|f| f.duration).sum();
            assert!(
                span.abs_diff(*d) * 100 <= *d,
                "{id} segment {n}: {span} vs S@d {d}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mpd_over_the_hls_segments_plays_in_ffmpeg_through_origin_and_edge() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&["--ladder", "source"]);
    let _ff = Ffmpeg::publish_args(
        &origin.rtmp_url(&key("dash")),
        90,
        &["-preset", "veryfast", "-g", "60"],
    );
    let edge = Edge::start(&origin, &[]);
    let origin_base = format!("http://{}", origin.http);
    let edge_base = format!("http://{}", edge.http);
    // Three complete segments first.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get(&origin.url("/live/dash/source/index.m3u8")).await;
        if r.status == 200
            && MediaPlaylist::parse(&r.text())
                .map(|p| p.segments.iter().filter(|s| s.is_complete()).count() >= 3)
                .unwrap_or(false)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no segments: {}", r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_ok(
        &format!("{edge_base}/live/dash/manifest.mpd"),
        Duration::from_secs(10),
    )
    .await;
    same_media_as_hls(&origin_base).await;
    same_media_as_hls(&edge_base).await;

    // The segment in production is listed, so that a player fetches it as
    // it is produced: the MPD read after the playlist lists at least the
    // segment the playlist shows in progress.
    let pl = get(&origin.url("/live/dash/source/index.m3u8")).await;
    let in_production = MediaPlaylist::parse(&pl.text()).unwrap().next_msn();
    let text = mpd(&origin_base).await;
    let doc = roxmltree::Document::parse(&text).unwrap();
    let source = doc
        .descendants()
        .find(|n| n.has_tag_name("Representation") && n.attribute("id") == Some("source"))
        .unwrap();
    let (_, listed) = timeline(source);
    let last = listed.last().unwrap().0;
    assert!(
        last >= in_production,
        "last listed {last}, in production {in_production}"
    );

    // The clock UTCTiming names, at origin and edge.
    for base in [&origin_base, &edge_base] {
        let r = get(&format!("{base}/time")).await;
        assert_eq!(r.status, 200);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let year = 1970 + now / 31_556_952;
        assert!(r.text().starts_with(&year.to_string()), "{}", r.text());
        assert!(r.text().ends_with('Z'), "{}", r.text());
    }

    // The segment after the one in progress, asked for early: held until
    // it starts, then streamed (origin and edge).
    for base in [&origin_base, &edge_base] {
        let pl = get(&format!("{base}/live/dash/source/index.m3u8")).await;
        let pl = MediaPlaylist::parse(&pl.text()).unwrap();
        let next = pl.next_msn() + 1;
        let started = Instant::now();
        let r = get(&format!("{base}/live/dash/source/{next}.m4s")).await;
        assert_eq!(r.status, 200, "{base} {next}.m4s: {}", r.text());
        assert!(r.frames > 1, "{base}: {next}.m4s was not streamed");
        eprintln!("{base}: {next}.m4s answered in {:?}", started.elapsed());
    }

    // ffmpeg's DASH demuxer reads the MPD (through the edge) and decodes
    // video and audio.
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "info"])
        .args(["-i", &format!("{edge_base}/live/dash/manifest.mpd")])
        .args([
            "-map", "0:v:0", "-map", "0:a:0", "-t", "2", "-f", "null", "-",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Video: h264") && log.contains("Audio: aac"),
        "{log}"
    );
    let frames: u64 = log
        .rsplit("frame=")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 30, "decoded {frames} frames: {log}");
}
