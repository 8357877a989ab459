//! The ABR ladder end to end: real ffmpeg publishes 1280x720 30 fps H.264
//! (x264 `-preset medium`, so with B-frames) plus AAC; the origin's own
//! supervised ffmpeg makes the rungs. Checked over real HTTP with ffprobe.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::collections::BTreeMap;
use std::time::Duration;
use support::http::{get, wait_master};
use support::{ffprobe, have, key, Ffmpeg, Origin};

/// One 720p publisher at a time: each test also runs an encoder ladder, and
/// the machine has two cores.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 1280x720 30 fps, x264 medium with B-frames, constant 3.5 Mb/s (filler
/// NAL units), keyframe every second; 96 kb/s AAC.
fn publish_720p(url: &str, seconds: u32) -> Ffmpeg {
    Ffmpeg::publish_sized(
        url,
        seconds,
        "1280x720",
        &[
            "-preset",
            "medium",
            "-bf",
            "2",
            "-g",
            "30",
            "-b:v",
            "3500k",
            "-minrate",
            "3500k",
            "-maxrate",
            "3500k",
            "-bufsize",
            "3500k",
            "-x264-params",
            "nal-hrd=cbr",
        ],
    )
}

fn need_ffmpeg() -> bool {
    if have("ffmpeg") && have("ffprobe") {
        return true;
    }
    assert!(!support::ci(), "CI must have ffmpeg");
    false
}

async fn playlist(o: &Origin, stream: &str, rendition: &str) -> MediaPlaylist {
    let f = get(&o.url(&format!("/live/{stream}/{rendition}/index.m3u8"))).await;
    assert_eq!(f.status, 200, "{rendition}: {}", f.text());
    MediaPlaylist::parse(&f.text()).unwrap_or_else(|e| panic!("{e}: {}", f.text()))
}

async fn fetch_to(o: &Origin, path: &str, file: &std::path::Path, append: bool) {
    let f = get(&o.url(path)).await;
    assert_eq!(f.status, 200, "{path}");
    let mut bytes = if append {
        std::fs::read(file).unwrap_or_default()
    } else {
        Vec::new()
    };
    bytes.extend_from_slice(&f.body);
    std::fs::write(file, bytes).unwrap();
}

/// First decoded video frame of `file`: (presentation time s, keyframe,
/// picture type), plus the decoded size and frame count.
fn probe(file: &std::path::Path) -> (f64, bool, String, (u32, u32), usize) {
    let out = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=best_effort_timestamp_time,key_frame,pict_type,width,height",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    let frames: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    assert!(!frames.is_empty(), "{} decodes to nothing", file.display());
    let f = &frames[0];
    // Columns come in ffprobe's order: key_frame, best_effort_timestamp_time,
    // width, height, pict_type.
    let key = f[0] == "1";
    let pts: f64 = f[1].parse().unwrap();
    let size = (f[2].parse().unwrap(), f[3].parse().unwrap());
    (pts, key, f[4].to_string(), size, frames.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_720p_source_gets_aligned_480p_and_360p_rungs() {
    if !need_ffmpeg() {
        return;
    }
    let _heavy = HEAVY.lock().await;
    let origin = Origin::start(&[]);
    let _ff = publish_720p(&origin.rtmp_url(&key("ladder")), 90);

    let (mv, names, master) = wait_master(
        &origin.url("/live/ladder/master.m3u8"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(names, ["source", "480p", "360p"], "{master}");
    let sizes: Vec<_> = mv.variants.iter().map(|v| v.resolution.unwrap()).collect();
    assert_eq!(sizes, [(1280, 720), (854, 480), (640, 360)]);
    for w in mv.variants.windows(2) {
        assert!(w[0].bandwidth > w[1].bandwidth, "highest first: {master}");
    }
    for v in &mv.variants {
        assert!(
            v.codecs.starts_with("avc1.") && v.codecs.ends_with(",mp4a.40.2"),
            "{}",
            v.codecs
        );
        assert_eq!(v.audio_group.as_deref(), Some("audio"));
        assert!(v.average_bandwidth.unwrap() <= v.bandwidth);
    }
    // Transcoded rungs have no B-frames: x264 picks High profile for the
    // configured profile, the source keeps its own.
    assert!(
        origin.log().contains("rung skipped"),
        "720p rung skip is logged"
    );

    // Wait (bounded) until every rung lists the same five complete
    // segments at the end of its window.
    let dir = std::env::temp_dir().join(format!("livecdn-ladder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rungs = ["source", "480p", "360p"];
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let (lists, last_common) = loop {
        let mut lists = BTreeMap::new();
        for r in rungs {
            lists.insert(r, playlist(&origin, "ladder", r).await);
        }
        // Per rung: the first and last MSN it has complete.
        let spans: Vec<(u64, u64)> = lists
            .values()
            .map(|pl| {
                let complete = pl.segments.iter().filter(|s| s.uri.is_some()).count() as u64;
                (
                    pl.media_sequence,
                    (pl.media_sequence + complete).saturating_sub(1),
                )
            })
            .collect();
        let last_common = spans.iter().map(|s| s.1).min().unwrap();
        let no_gaps = |pl: &MediaPlaylist| {
            (last_common.saturating_sub(4)..=last_common).all(|msn| {
                msn.checked_sub(pl.media_sequence)
                    .and_then(|i| pl.segments.get(i as usize))
                    .is_some_and(|s| !s.gap)
            })
        };
        if spans.iter().all(|s| last_common >= s.0 + 4) && lists.values().all(no_gaps) {
            break (lists, last_common);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rungs never shared five complete segments: {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let msns: Vec<u64> = (last_common - 4..=last_common).collect();
    let mut previous_start = -1.0;
    for &msn in &msns {
        let mut pts = Vec::new();
        let mut reference: Option<&livecdn_shared::playlist::Segment> = None;
        for (r, (w, h)) in rungs.iter().zip(sizes.iter()) {
            let pl = &lists[r];
            let seg = &pl.segments[(msn - pl.media_sequence) as usize];
            assert!(!seg.gap, "{r} msn {msn} is a gap");
            // Segment: init + segment decodes, at the advertised size,
            // starting with an IDR.
            let file = dir.join(format!("{r}-{msn}.mp4"));
            fetch_to(&origin, &format!("/live/ladder/{r}/init.mp4"), &file, false).await;
            fetch_to(&origin, &format!("/live/ladder/{r}/{msn}.m4s"), &file, true).await;
            let (p, keyframe, pict, size, frames) = probe(&file);
            assert!(keyframe && pict == "I", "{r} msn {msn} starts with {pict}");
            assert_eq!(size, (*w, *h), "{r} decodes at its advertised size");
            assert!(frames >= 55, "{r} msn {msn}: {frames} frames");
            pts.push((r, p));
            if let Some(o) = reference {
                // EXTINF, part count and part durations agree within a frame.
                assert!(
                    (seg.duration - o.duration).abs() <= 0.034,
                    "{r} msn {msn} EXTINF"
                );
                assert_eq!(
                    seg.program_date_time, o.program_date_time,
                    "{r} msn {msn} PDT"
                );
                if !seg.parts.is_empty() && !o.parts.is_empty() {
                    assert_eq!(seg.parts.len(), o.parts.len(), "{r} msn {msn} parts");
                    for (a, b) in seg.parts.iter().zip(&o.parts) {
                        assert!(
                            (a.duration - b.duration).abs() <= 0.034,
                            "{r} msn {msn} part"
                        );
                    }
                }
            } else {
                reference = Some(seg);
            }
        }
        let first = pts[0].1;
        assert!(
            first > previous_start + 0.5,
            "msn {msn} starts at {first}, after {previous_start}"
        );
        previous_start = first;
        eprintln!("msn {msn}: {pts:?}");
        for (r, p) in &pts {
            assert!(
                (p - first).abs() <= 0.017,
                "msn {msn}: {r} IDR at {p}, source at {first}"
            );
        }
    }

    // Parts of every rung decode too (init + the parts of the last listed
    // segment that has them).
    for (r, (w, h)) in rungs.iter().zip(sizes.iter()) {
        let pl = playlist(&origin, "ladder", r).await;
        let seg = pl
            .segments
            .iter()
            .rev()
            .find(|s| s.parts.len() >= 2 && s.uri.is_some())
            .unwrap();
        let file = dir.join(format!("{r}-parts.mp4"));
        fetch_to(&origin, &format!("/live/ladder/{r}/init.mp4"), &file, false).await;
        for p in &seg.parts {
            fetch_to(&origin, &format!("/live/ladder/{r}/{}", p.uri), &file, true).await;
        }
        let (_, keyframe, _, size, _) = probe(&file);
        assert!(keyframe);
        assert_eq!(size, (*w, *h));
        // Every playlist reports every sibling.
        let reports: Vec<_> = pl.rendition_reports.iter().map(|r| r.uri.clone()).collect();
        for other in rungs.iter().chain(["audio"].iter()).filter(|o| *o != r) {
            assert!(
                reports.contains(&format!("../{other}/index.m3u8")),
                "{r}: {reports:?}"
            );
        }
    }

    // The API lists the renditions and the encoder.
    let api = get(&origin.url("/api/streams/ladder")).await;
    let v: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(v["transcode"]["state"], "running", "{v}");
    assert_eq!(v["transcode"]["skipped"][0][0], "720p", "{v}");
    let rendition_names: Vec<_> = v["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rendition_names, ["source", "480p", "360p", "audio"]);
    assert!(
        v["transcode"]["speed"].as_f64().is_some_and(|s| s > 0.5),
        "{v}"
    );
    let metrics = get(&origin.url("/metrics")).await.text();
    assert!(metrics
        .contains("livecdn_origin_rendition_bitrate_bps{stream=\"ladder\",rendition=\"480p\"}"));
    assert!(metrics.contains("livecdn_origin_transcode_restarts{stream=\"ladder\"} 0"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ffmpeg_the_origin_warns_once_and_serves_the_source() {
    let origin = Origin::start_with_env(&[], &[("LIVECDN_FFMPEG", "/nonexistent/ffmpeg")]);
    let log = support::wait_log(&origin, "ffmpeg not found", Duration::from_secs(10)).await;
    assert_eq!(log.matches("ffmpeg not found").count(), 1, "{log}");
    assert!(log.contains("source only"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_encoder_is_restarted_and_its_rungs_come_back() {
    if !need_ffmpeg() {
        return;
    }
    let _heavy = HEAVY.lock().await;
    let origin = Origin::up_demo();
    let (_, names, master) = wait_master(
        &origin.url("/live/demo/master.m3u8"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(names, ["source", "240p", "144p"], "{master}");
    let stuck = origin.encoder_pids();
    assert_eq!(stuck.len(), 1, "one encoder per stream");
    // Stopped, not dead: the process and its pipes stay open, nothing comes
    // out. Only the no-output watchdog can notice.
    std::process::Command::new("kill")
        .args(["-STOP", &stuck[0]])
        .status()
        .unwrap();
    let stopped = std::time::Instant::now();
    let mut restarted = None;
    for _ in 0..150 {
        let api = get(&origin.url("/api/streams/demo")).await;
        let v: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
        let pl = MediaPlaylist::parse(&get(&origin.url("/live/demo/240p/index.m3u8")).await.text())
            .unwrap();
        let own_edge = pl
            .segments
            .last()
            .and_then(|s| s.parts.last())
            .is_some_and(|p| !p.uri.starts_with("../source/"));
        if v["transcode"]["restarts"] == 1 && v["transcode"]["state"] == "running" && own_edge {
            restarted = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restarted = restarted.unwrap_or_else(|| panic!("no restart:\n{}", origin.log()));
    println!("stuck encoder replaced, rung back after {restarted:?}");
    let log = origin.log();
    assert!(log.contains("no output for"), "{log}");
    // The stuck process was killed and a new one runs.
    let now = origin.encoder_pids();
    assert_eq!(now.len(), 1);
    assert_ne!(now, stuck);
}
