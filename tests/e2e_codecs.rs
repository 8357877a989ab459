//! What reaches the origin besides H.264 + AAC: video-only and audio-only
//! streams package; codecs we do not package are refused with a log line
//! naming them, and nothing else is disturbed.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MultivariantPlaylist;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::http::{get, wait_ok};
use support::{have, key, Origin};

/// ffmpeg publishing a lavfi source with the given codec arguments.
fn ffmpeg(url: &str, seconds: u32, args: &[&str]) -> std::process::Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
        ])
        .args(["-t", &seconds.to_string()])
        .args(args)
        .args(["-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_log(o: &Origin, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if o.log().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_only_and_audio_only_streams_play_and_mp3_is_refused() {
    if !have("ffmpeg") {
        return;
    }
    let mut origin = Origin::start(&[]);
    let x264 = [
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30",
    ];
    let mut video = ffmpeg(
        &origin.rtmp_url(&key("video")),
        20,
        &[&x264[..], &["-an"]].concat(),
    );
    let mut audio = ffmpeg(&origin.rtmp_url(&key("audio")), 20, &["-vn", "-c:a", "aac"]);

    let m = wait_ok(
        &origin.url("/live/video/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let mv = MultivariantPlaylist::parse(&m.text()).unwrap();
    assert_eq!(mv.variants.len(), 1);
    assert!(
        mv.audio.is_empty(),
        "no audio group without audio: {}",
        m.text()
    );
    assert!(!mv.variants[0].codecs.contains("mp4a"));
    assert_eq!(
        get(&origin.url("/live/video/audio/index.m3u8"))
            .await
            .status,
        404
    );

    let m = wait_ok(
        &origin.url("/live/audio/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let mv = MultivariantPlaylist::parse(&m.text()).unwrap();
    assert_eq!(mv.variants[0].codecs, "mp4a.40.2", "{}", m.text());
    assert_eq!(mv.variants[0].uri, "audio/index.m3u8");
    let pl = get(&origin.url("/live/audio/audio/index.m3u8")).await;
    assert_eq!(pl.status, 200);
    assert!(
        pl.text().contains("#EXT-X-PART:"),
        "audio-only cuts its own parts"
    );

    // MP3 audio: refused with a clear reason; the other streams go on.
    let mut mp3 = ffmpeg(
        &origin.rtmp_url(&key("mp3")),
        5,
        &[&x264[..], &["-c:a", "libmp3lame"]].concat(),
    );
    assert!(
        wait_log(&origin, "unsupported codec").await,
        "log: {}",
        origin.log()
    );
    assert!(
        origin.log().to_lowercase().contains("mp3"),
        "the log names the codec"
    );
    let before = get(&origin.url("/api/streams/video")).await;
    assert_eq!(before.status, 200);
    assert!(origin.alive());
    let v: serde_json::Value =
        serde_json::from_slice(&get(&origin.url("/api/streams/video")).await.body).unwrap();
    assert_eq!(v["live"], true);
    for c in [&mut video, &mut audio, &mut mp3] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
