//! WebRTC publish (WHIP) into the origin: a str0m publisher sends H.264
//! that x264 made (one keyframe in six seconds: the publisher sends one
//! more only when asked, as a browser does) and Opus; the stream is packaged into LL-HLS that ffprobe
//! reads, a WHEP viewer watches it, and the refusals are the clear ones.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use livecdn_webrtc::client::Viewer;
use livecdn_webrtc::ingest::VideoCodec;
use livecdn_webrtc::publisher::{access_units, ivf_frames, Publisher};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::http::{get, send_raw, wait_playlist};
use support::{key, Origin, TempConfig};
use tokio_util::sync::CancellationToken;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn tools() -> bool {
    let ok = support::have("ffmpeg");
    assert!(ok || !support::ci(), "ffmpeg is needed under CI");
    ok
}

/// Six seconds of 640x360 30 fps baseline H.264, the first frame the only
/// keyframe, an access unit delimiter before each frame.
fn h264(dir: &std::path::Path) -> Vec<std::sync::Arc<[u8]>> {
    let file = dir.join("whip.h264");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=size=640x360:rate=30", "-t", "6"])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
        ])
        .args(["-bf", "0", "-g", "1000", "-sc_threshold", "0"])
        .args(["-x264-params", "aud=1", "-f", "h264"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    access_units(&std::fs::read(&file).unwrap())
}

/// A second of 20 ms stereo Opus packets of a 440 Hz tone at a quarter of
/// full scale (-15 dB RMS).
fn tone() -> Vec<Vec<u8>> {
    let mut enc =
        ropus::Encoder::builder(48_000, ropus::Channels::Stereo, ropus::Application::Audio)
            .build()
            .unwrap();
    (0..50)
        .map(|i| {
            let pcm: Vec<i16> = (0..1920)
                .map(|j| {
                    let t = f64::from(i * 960 + j / 2) / 48_000.0;
                    ((t * 440.0 * std::f64::consts::TAU).sin() * 8192.0) as i16
                })
                .collect();
            let mut out = vec![0; 1500];
            let n = enc.encode(&pcm, &mut out).unwrap();
            out.truncate(n);
            out
        })
        .collect()
}

/// The start time ffprobe reads from `init` + `segment`, in seconds.
fn start_time(dir: &std::path::Path, name: &str, init: &[u8], segment: &[u8]) -> f64 {
    let file = dir.join(name);
    std::fs::write(&file, [init, segment].concat()).unwrap();
    let out = support::ffprobe(
        &["-show_entries", "format=start_time", "-of", "csv=p=0"],
        &file,
    );
    out.trim().parse().unwrap()
}

/// Waits for three complete segments of `stream`'s source, each under
/// 2.9 s (cut near the 2 s target), and checks that ffprobe reads the
/// second as 640x360 H.264; the init section.
async fn h264_segments(o: &Origin, stream: &str, dir: &std::path::Path) -> support::http::Fetched {
    let pl = wait_playlist(
        &o.url(&format!("/live/{stream}/source/index.m3u8")),
        Duration::from_secs(30),
        "listing three complete segments",
        |p| support::http::complete_segments(p) >= 3,
    )
    .await;
    let done: Vec<_> = pl.segments.iter().filter(|s| s.uri.is_some()).collect();
    let longest = done.iter().map(|s| s.duration).fold(0.0, f64::max);
    assert!(
        longest < 2.9,
        "a segment of {longest} s waited for a keyframe"
    );
    let init = get(&o.url(&format!("/live/{stream}/source/init.mp4"))).await;
    let uri = done[1].uri.as_deref().unwrap();
    let seg = get(&o.url(&format!("/live/{stream}/source/{uri}"))).await;
    assert_eq!((init.status, seg.status), (200, 200));
    let file = dir.join(format!("{stream}.mp4"));
    std::fs::write(&file, [init.body.as_ref(), seg.body.as_ref()].concat()).unwrap();
    let probe = support::ffprobe(
        &[
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ],
        &file,
    );
    assert_eq!(probe.trim(), "h264,640,360");
    init
}

async fn post(o: &Origin, headers: &[(&str, &str)], body: String) -> support::http::Fetched {
    send_raw("POST", &o.url("/live/whip"), headers, Bytes::from(body)).await
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publisher_is_packaged_watched_and_asked_for_keyframes() {
    if !tools() {
        return;
    }
    let config = TempConfig::new(
        "whip",
        "[webrtc]\nlisten = \"127.0.0.1:0\"\nconnect_timeout = \"3s\"\n",
    );
    let o = Origin::start(&["--config", config.arg()]);
    let dir = support::record::temp_dir("whip");
    let frames = h264(&dir);
    assert_eq!(frames.len(), 180, "one access unit per frame");
    let idr = |au: &[u8]| {
        au.windows(4)
            .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
    };
    assert_eq!(frames.iter().filter(|f| idr(f)).count(), 1);

    // Refusals first: no key, a wrong one, not SDP.
    let (_, offer) = Publisher::offer(LOCAL).await.unwrap();
    let sdp = ("content-type", "application/sdp");
    let r = post(&o, &[sdp], offer.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = post(&o, &[sdp, ("authorization", "Bearer nope")], offer.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let bearer = format!("Bearer {}", key("cam"));
    let auth = ("authorization", bearer.as_str());
    let r = post(&o, &[("content-type", "text/plain"), auth], offer.clone()).await;
    assert_eq!(r.status, 415);
    let r = post(&o, &[sdp, auth], "v=0 not sdp".into()).await;
    assert_eq!(r.status, 400, "{}", r.text());

    let (mut publisher, offer) = Publisher::offer(LOCAL).await.unwrap();
    publisher.with_sound(tone());
    let r = post(&o, &[sdp, auth], offer).await;
    assert_eq!(r.status, 201, "{}\n{}", r.text(), o.log());
    let location = r.header("location").unwrap();
    assert!(location.starts_with("/live/whip/"), "{location}");
    publisher.answer(&r.text()).unwrap();
    let sent = publisher.sent.clone();
    let stop = CancellationToken::new();
    tokio::spawn(publisher.run(frames, 30, stop.clone(), Duration::from_secs(60)));

    // A second publisher for the same stream: it is live already.
    let (_, other) = Publisher::offer(LOCAL).await.unwrap();
    let r = post(&o, &[sdp, auth], other).await;
    assert_eq!(r.status, 409, "{}", r.text());

    // Packaged: segments cut at keyframes the origin asked for (without
    // them a segment would last the file's six seconds; the target is two).
    let init = h264_segments(&o, "cam", &dir).await;
    assert!(sent.keyframe_requests.load(Ordering::Relaxed) >= 1);

    // The publisher's Opus, transcoded once to AAC: the audio rendition
    // every HLS player plays, in step with the video.
    let master = get(&o.url("/live/cam/master.m3u8")).await.text();
    assert!(master.contains("TYPE=AUDIO"), "{master}");
    let apl = wait_playlist(
        &o.url("/live/cam/audio/index.m3u8"),
        Duration::from_secs(20),
        "listing two complete audio segments",
        |p| support::http::complete_segments(p) >= 2,
    )
    .await;
    let audio_init = get(&o.url("/live/cam/audio/init.mp4")).await;
    let uri = apl
        .segments
        .iter()
        .filter_map(|s| s.uri.as_deref())
        .nth(1)
        .unwrap();
    let audio_seg = get(&o.url(&format!("/live/cam/audio/{uri}"))).await;
    let video_seg = get(&o.url(&format!("/live/cam/source/{uri}"))).await;
    assert_eq!(
        (audio_init.status, audio_seg.status, video_seg.status),
        (200, 200, 200)
    );
    let file = dir.join("audio.mp4");
    std::fs::write(
        &file,
        [audio_init.body.as_ref(), audio_seg.body.as_ref()].concat(),
    )
    .unwrap();
    let probe = support::ffprobe(
        &[
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
        ],
        &file,
    );
    assert_eq!(probe.trim(), "aac,48000,2");
    let mean = support::mean_volume(&file);
    assert!((-19.0..-11.0).contains(&mean), "mean volume {mean} dB");
    let a = start_time(&dir, "a.mp4", &audio_init.body, &audio_seg.body);
    let v = start_time(&dir, "v.mp4", &init.body, &video_seg.body);
    assert!(
        (a - v).abs() < 0.1,
        "segment {uri}: audio at {a} s, video at {v} s"
    );

    // Watched by WHEP, picture and the publisher's own Opus.
    let (mut viewer, offer) = Viewer::offer(LOCAL).await.unwrap();
    let r = send_raw("POST", &o.url("/live/cam/whep"), &[sdp], Bytes::from(offer)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    viewer.answer(&r.text()).unwrap();
    let seen = viewer.seen.clone();
    tokio::spawn(viewer.run(stop.clone(), Duration::from_secs(60)));
    until("frames and sound", Duration::from_secs(20), || {
        seen.frames.load(Ordering::Relaxed) >= 60 && seen.audio.load(Ordering::Relaxed) >= 25
    })
    .await;
    assert!(seen.keyframes.load(Ordering::Relaxed) >= 1);

    let m = get(&o.url("/metrics")).await.text();
    assert!(m.contains("livecdn_origin_webrtc_publishers 1\n"), "{m}");
    assert!(
        !m.contains("livecdn_origin_webrtc_publish_plis_total 0\n"),
        "{m}"
    );

    // DELETE ends the publish: the stream loses its publisher.
    let url = o.url(&location);
    assert_eq!(
        send_raw("DELETE", &url, &[], Bytes::new()).await.status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: serde_json::Value =
            serde_json::from_str(&get(&o.url("/api/streams/cam")).await.text()).unwrap();
        if info["live"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "still live: {info}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = get(&o.url("/metrics")).await.text();
    assert!(m.contains("livecdn_origin_webrtc_publishers 0\n"), "{m}");
    assert!(o.log().contains("whip publish finished"), "{}", o.log());
    assert_eq!(
        send_raw("DELETE", &url, &[], Bytes::new()).await.status,
        404
    );
    stop.cancel();
}

/// Four seconds of 640x360 30 fps VP8 (libvpx, realtime), the first frame
/// the only keyframe.
fn vp8(dir: &std::path::Path) -> Vec<std::sync::Arc<[u8]>> {
    let file = dir.join("whip.ivf");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=size=640x360:rate=30", "-t", "4"])
        .args(["-pix_fmt", "yuv420p", "-c:v", "libvpx", "-b:v", "1M"])
        .args(["-deadline", "realtime", "-cpu-used", "8", "-g", "1000"])
        .args(["-auto-alt-ref", "0", "-f", "ivf"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ivf_frames(&std::fs::read(&file).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp8_publisher_is_transcoded_once_to_h264() {
    if !tools() {
        return;
    }
    let config = TempConfig::new(
        "whip-vp8",
        "[webrtc]\nlisten = \"127.0.0.1:0\"\nconnect_timeout = \"3s\"\n",
    );
    let o = Origin::start(&["--config", config.arg()]);
    let dir = support::record::temp_dir("whip-vp8");
    let frames = vp8(&dir);
    assert_eq!(frames.len(), 120);
    let (mut publisher, offer) = Publisher::offer_video(LOCAL, VideoCodec::Vp8)
        .await
        .unwrap();
    assert!(!offer.contains("H264"), "{offer}");
    let bearer = format!("Bearer {}", key("vp8"));
    let headers = [
        ("content-type", "application/sdp"),
        ("authorization", bearer.as_str()),
    ];
    let r = post(&o, &headers, offer).await;
    assert_eq!(r.status, 201, "{}\n{}", r.text(), o.log());
    assert!(r.text().contains("VP8"), "{}", r.text());
    publisher.answer(&r.text()).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(publisher.run(frames, 30, stop.clone(), Duration::from_secs(60)));

    // Packaged as H.264, cut at the segment target although the publisher
    // sent a single keyframe: the transcoder places them.
    h264_segments(&o, "vp8", &dir).await;
    let master = get(&o.url("/live/vp8/master.m3u8")).await.text();
    assert!(master.contains("avc1."), "{master}");

    // A WHEP viewer gets the H.264.
    let (mut viewer, offer) = Viewer::offer(LOCAL).await.unwrap();
    let sdp = [("content-type", "application/sdp")];
    let r = send_raw("POST", &o.url("/live/vp8/whep"), &sdp, Bytes::from(offer)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    viewer.answer(&r.text()).unwrap();
    let seen = viewer.seen.clone();
    tokio::spawn(viewer.run(stop.clone(), Duration::from_secs(60)));
    until("frames", Duration::from_secs(20), || {
        seen.frames.load(Ordering::Relaxed) >= 60
    })
    .await;
    assert!(seen.keyframes.load(Ordering::Relaxed) >= 1);
    stop.cancel();
}
