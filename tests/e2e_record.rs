//! Recording end to end with real ffmpeg: a stream recorded while live
//! becomes a VOD (playlists, segments with byte ranges) and a progressive
//! MP4 that ffprobe and ffmpeg read; `kill -9` mid-recording loses
//! nothing that was written; a full disk stops the recording, not the
//! stream.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::{MediaPlaylist, MultivariantPlaylist, PlaylistType};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::hook::{hook_server, next_hook};
use support::http::{get, get_with, send, wait_ok, wait_playlist};
use support::record::{probe, recordings, secs, start, temp_dir, wait_recording};
use support::{have, key, Ffmpeg, Origin, ADMIN_TOKEN};

const FAST: &[&str] = &["-preset", "veryfast", "-g", "60"];

fn tools() -> bool {
    let ok = have("ffmpeg") && have("ffprobe");
    assert!(
        ok || !support::ci(),
        "ffmpeg and ffprobe are needed under CI"
    );
    ok
}

async fn media_playlist(url: &str) -> MediaPlaylist {
    let f = wait_ok(url, Duration::from_secs(10)).await;
    MediaPlaylist::parse(&f.text()).unwrap_or_else(|e| panic!("{e}: {}", f.text()))
}

fn listed(pl: &MediaPlaylist) -> f64 {
    pl.segments.iter().map(|s| s.duration).sum()
}

async fn download(o: &Origin, vod: &str, to: &Path) -> Vec<u8> {
    let f = get(&o.url(&format!("{vod}download.mp4"))).await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(f.header("content-type").as_deref(), Some("video/mp4"));
    std::fs::write(to, &f.body).unwrap();
    f.body.to_vec()
}

/// ffmpeg decodes every frame of `input` without an error.
fn decodes(input: &str) {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-nostdin",
            "-i",
            input,
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{input}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_stream_becomes_a_vod_and_an_mp4() {
    if !tools() {
        return;
    }
    let dir = temp_dir("vod");
    let (hook, mut hooks) = hook_server("200 OK", "{}").await;
    let o = start(&dir, &["--on-record-done", &hook]);
    let ff = Ffmpeg::publish_args(&o.rtmp_url(&key("rec")), 12, FAST);

    // While live, the recording is listed and its playlist is an EVENT.
    let live = wait_recording(&o, "rec", "with segments", |r| {
        r["state"] == "recording" && secs(r) >= 2.0
    })
    .await;
    let vod = live["vod"]
        .as_str()
        .unwrap()
        .trim_end_matches("master.m3u8")
        .to_string();
    let event = media_playlist(&o.url(&format!("{vod}source/index.m3u8"))).await;
    assert_eq!(event.playlist_type, Some(PlaylistType::Event));
    assert!(!event.end_list);
    // The MP4 is made once the recording ends.
    let early = get(&o.url(&format!("{vod}download.mp4"))).await;
    assert_eq!(early.status, 409, "{}", early.text());

    let (ok, err) = ff.wait(Duration::from_secs(60));
    assert!(ok, "ffmpeg: {err}");
    let done = wait_recording(&o, "rec", "done", |r| r["state"] == "done").await;
    let id = done["id"].as_str().unwrap();
    assert!((secs(&done) - 12.0).abs() <= 2.5, "{done}");
    let names: Vec<&str> = done["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["source", "audio"]);
    assert!(done["bytes"].as_u64().unwrap() > 10_000);
    // The backend hears of it once, with where it is.
    let told = next_hook(&mut hooks, Duration::from_secs(10)).await;
    assert_eq!(told.body["event"], "record_done");
    assert_eq!(told.body["stream"], "rec");
    assert_eq!(told.body["recording"], id);
    assert_eq!(told.body["state"], "done");
    assert_eq!(told.body["bytes"], done["bytes"]);
    assert!((secs(&told.body) - secs(&done)).abs() < 0.01);
    // Files on disk where the layout says.
    let rec_dir = dir.join("rec").join(id);
    assert_eq!(
        Path::new(told.body["path"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        rec_dir.canonicalize().unwrap()
    );
    assert!(rec_dir.join("index.jsonl").is_file() && rec_dir.join("source/init.mp4").is_file());

    // The VOD: a master of the source and the audio, VOD playlists.
    let master = wait_ok(&o.url(&format!("{vod}master.m3u8")), Duration::from_secs(5)).await;
    let mv = MultivariantPlaylist::parse(&master.text()).unwrap();
    assert_eq!(mv.variants.len(), 1, "{}", master.text());
    assert_eq!(mv.variants[0].uri, "source/index.m3u8");
    assert_eq!(mv.audio.len(), 1);
    for rendition in ["source", "audio"] {
        let pl = media_playlist(&o.url(&format!("{vod}{rendition}/index.m3u8"))).await;
        assert_eq!(pl.playlist_type, Some(PlaylistType::Vod));
        assert!(pl.end_list);
        assert!(
            (listed(&pl) - 12.0).abs() <= 2.5,
            "{rendition}: {}",
            listed(&pl)
        );
        assert!(pl.segments[0].program_date_time.is_some());
    }
    // A segment whole, and a range of it.
    let pl = media_playlist(&o.url(&format!("{vod}source/index.m3u8"))).await;
    let seg_url = o.url(&format!(
        "{vod}source/{}",
        pl.segments[1].uri.as_deref().unwrap()
    ));
    let whole = get(&seg_url).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
    let part = get_with(&seg_url, &[("range", "bytes=100-299")], false).await;
    assert_eq!(part.status, 206);
    assert_eq!(&part.body[..], &whole.body[100..300]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-299/{}", whole.body.len()))
    );
    let past = get_with(&seg_url, &[("range", "bytes=99999999-")], false).await;
    assert_eq!(past.status, 416);
    // ffmpeg plays the VOD through HLS from start to end.
    decodes(&o.url(&format!("{vod}master.m3u8")));

    // The progressive MP4: moov first, both tracks, the right duration.
    let file = dir.join("download.mp4");
    let mp4 = download(&o, &vod, &file).await;
    assert_eq!(&mp4[4..8], b"ftyp");
    let moov = u32::from_be_bytes(mp4[0..4].try_into().unwrap()) as usize;
    assert_eq!(&mp4[moov + 4..moov + 8], b"moov", "moov right after ftyp");
    let (d, kinds) = probe(&file);
    assert_eq!(kinds, ["video", "audio"]);
    assert!(
        (d - secs(&done)).abs() <= 2.0,
        "mp4 {d} s, recorded {}",
        secs(&done)
    );
    decodes(file.to_str().unwrap());
    // Ranges of it, as a <video> element seeks.
    let url = o.url(&format!("{vod}download.mp4"));
    let from = mp4.len() / 2;
    let tail = get_with(&url, &[("range", &format!("bytes={from}-"))], false).await;
    assert_eq!(tail.status, 206);
    assert_eq!(&tail.body[..], &mp4[from..]);

    // hls.js in headless Chromium plays the VOD from start to end.
    if support::browser_ready() {
        let page = o.url(&format!("/?src={vod}master.m3u8"));
        let report = support::browser::play_args(&page, &[], 60, 30, &["--until-ended"]);
        assert_eq!(report["ok"], true, "{report}");
        let played = report["currentTime"].as_f64().unwrap();
        assert!(
            (played - secs(&done)).abs() <= 2.0,
            "played {played} s of {}",
            secs(&done)
        );
    }

    // Metrics say which disk path ran; the API deletes.
    let metrics = get(&o.url("/metrics")).await.text();
    assert!(
        metrics.contains("livecdn_origin_recording_io{backend=\"io_uring\"} 1")
            || metrics.contains("livecdn_origin_recording_io{backend=\"std\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("livecdn_origin_recordings{state=\"done\"} 1"),
        "{metrics}"
    );
    let one = o.url(&format!("/api/recordings/rec/{id}"));
    let anon = send("DELETE", &one, &[("authorization", "Bearer wrong")], "").await;
    assert_eq!(anon.status, 401);
    let del = send(
        "DELETE",
        &one,
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        "",
    )
    .await;
    assert_eq!(del.status, 204, "{}", del.text());
    assert!(recordings(&o).await.is_empty());
    assert!(!rec_dir.exists());
    assert_eq!(get(&o.url(&format!("{vod}master.m3u8"))).await.status, 404);
    assert!(
        hooks.try_recv().is_err(),
        "on_record_done came more than once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_recording_is_recovered_at_restart() {
    if !tools() {
        return;
    }
    let dir = temp_dir("kill");
    let mut o = start(&dir, &[]);
    let _ff = Ffmpeg::publish_args(&o.rtmp_url(&key("crash")), 60, FAST);
    let before = wait_recording(&o, "crash", "6 s long", |r| secs(r) >= 6.0).await;
    let id = before["id"].as_str().unwrap().to_string();
    // The last segment the index had; the kill comes right after.
    o.kill9();
    // The backend is down when the restart reports the recovery: the
    // report is retried, then given up with an error in the log.
    let (hook, mut hooks) = hook_server("503 Service Unavailable", "").await;
    let o = start(&dir, &["--on-record-done", &hook]);
    let after = wait_recording(&o, "crash", "recovered", |r| r["state"] == "recovered").await;
    assert_eq!(after["id"], id.as_str());
    for _ in 0..3 {
        let told = next_hook(&mut hooks, Duration::from_secs(10)).await;
        assert_eq!(
            (told.body["recording"].as_str(), told.body["state"].as_str()),
            (Some(id.as_str()), Some("recovered"))
        );
    }
    support::wait_log(&o, "webhook failed; giving up", Duration::from_secs(10)).await;
    // Nothing written is lost: at least what was listed before the kill,
    // and at most one segment more than that (one written, not yet listed).
    let (b, a) = (secs(&before), secs(&after));
    assert!(a >= b && a <= b + 4.5, "before {b} s, recovered {a} s");
    let vod = format!("/vod/crash/{id}/");
    let pl = media_playlist(&o.url(&format!("{vod}source/index.m3u8"))).await;
    assert!(pl.end_list && pl.playlist_type == Some(PlaylistType::Vod));
    decodes(&o.url(&format!("{vod}master.m3u8")));
    let file = dir.join("recovered.mp4");
    download(&o, &vod, &file).await;
    let (d, kinds) = probe(&file);
    assert_eq!(kinds, ["video", "audio"]);
    assert!((d - a).abs() <= 2.0, "mp4 {d} s, recovered {a} s");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small tmpfs for the recordings; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_the_recording_not_the_stream() {
    if !tools() {
        return;
    }
    let dir = temp_dir("full");
    let Some(_fs) = Tmpfs::mount(&dir, "1m") else {
        assert!(
            !support::ci(),
            "mounting a tmpfs is needed under CI (run as root)"
        );
        return;
    };
    let o = start(&dir, &[]);
    let _ff = Ffmpeg::publish_args(&o.rtmp_url(&key("full")), 60, FAST);
    let failed = wait_recording(&o, "full", "stopped by the full disk", |r| {
        r["state"] == "error"
    })
    .await;
    assert!(
        failed["error"].as_str().unwrap().contains("disk full"),
        "{failed}"
    );
    // Live playback goes on: new segments keep coming after the error.
    let url = o.url("/live/full/source/index.m3u8");
    let now = media_playlist(&url).await;
    let last = now.last_msn().unwrap();
    wait_playlist(&url, Duration::from_secs(15), "three segments on", |pl| {
        pl.last_msn().is_some_and(|m| m >= last + 3)
    })
    .await;
    let metrics = get(&o.url("/metrics")).await.text();
    assert!(
        metrics.contains("livecdn_origin_recordings{state=\"error\"} 1"),
        "{metrics}"
    );
    assert!(!o.log().contains("panicked"), "{}", o.log());
    // Space comes back (the operator deletes the failed recording): the
    // recorder resumes in a new recording.
    let id = failed["id"].as_str().unwrap();
    let del = send(
        "DELETE",
        &o.url(&format!("/api/recordings/full/{id}")),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        "",
    )
    .await;
    assert_eq!(del.status, 204, "{}", del.text());
    let resumed = wait_recording(&o, "full", "resumed", |r| {
        r["state"] == "recording" && secs(r) >= 2.0
    })
    .await;
    assert_ne!(resumed["id"], failed["id"]);
}

/// The S3-compatible server the upload test runs against (s3s-fs, which
/// `.ci/run` installs with cargo): on PATH or in cargo's bin directory.
fn s3_server() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let found = have("s3s-fs")
        .then(|| PathBuf::from("s3s-fs"))
        .or_else(|| home.map(|h| h.join("bin/s3s-fs")).filter(|p| p.is_file()));
    assert!(
        found.is_some() || !support::ci(),
        "s3s-fs is needed under CI (.ci/run installs it)"
    );
    found
}

/// A running s3s-fs, killed on drop.
struct S3(std::process::Child);

impl S3 {
    /// Starts s3s-fs on a port it picks itself (so no other process can
    /// take the port between choosing and binding it) and returns it with
    /// that port, read from the line it logs once it listens.
    fn start(bin: &Path, root: &Path) -> (S3, u16) {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args([
                "--access-key",
                "AKLIVECDNTEST",
                "--secret-key",
                "sk-livecdn-test-0123456789",
            ])
            .arg(root)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let server = S3(child);
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some((_, addr)) = line.split_once("server is running at http://") {
                    let port = addr.trim().rsplit(':').next().and_then(|p| p.parse().ok());
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .expect("s3s-fs did not say where it listens");
        (server, port)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_recordings_upload_to_s3_and_failures_are_retried() {
    if !tools() {
        return;
    }
    let Some(bin) = s3_server() else {
        return;
    };
    let dir = temp_dir("upload");
    let store = temp_dir("upload-store");
    std::fs::create_dir_all(&store).unwrap();
    // The bucket's directory is a plain file at first: every write to the
    // store fails until it is replaced by a directory.
    std::fs::write(store.join("media"), b"not a bucket").unwrap();
    let (_s3, port) = S3::start(&bin, &store);
    let config = support::TempConfig::new(
        "upload",
        &format!(
            "[recording.upload]\nendpoint = \"http://127.0.0.1:{port}\"\nbucket = \"media\"\n\
             prefix = \"vod\"\naccess_key_id = \"AKLIVECDNTEST\"\n\
             secret_access_key = \"sk-livecdn-test-0123456789\"\ntries = 8\n"
        ),
    );
    let (hook, mut hooks) = hook_server("200 OK", "{}").await;
    let o = start(&dir, &["--config", config.arg(), "--on-record-done", &hook]);
    let ff = Ffmpeg::publish_args(&o.rtmp_url(&key("up")), 6, FAST);
    let (ok, err) = ff.wait(Duration::from_secs(60));
    assert!(ok, "ffmpeg: {err}");
    // The store fails: the upload is retried.
    support::wait_log(&o, "upload failed; retrying", Duration::from_secs(60)).await;
    std::fs::remove_file(store.join("media")).unwrap();
    std::fs::create_dir_all(store.join("media")).unwrap();
    let told = next_hook(&mut hooks, Duration::from_secs(90)).await;
    assert!(told.body.get("uploadError").is_none(), "{}", told.body);
    let id = told.body["recording"].as_str().unwrap().to_string();
    let objects = told.body["objects"].as_array().unwrap().clone();
    let keys: Vec<&str> = objects.iter().map(|x| x["key"].as_str().unwrap()).collect();
    let base = format!("vod/up/{id}/");
    for want in [
        "master.m3u8",
        "source/index.m3u8",
        "audio/index.m3u8",
        "source/init.mp4",
        "recording.mp4",
    ] {
        assert!(
            keys.contains(&format!("{base}{want}").as_str()),
            "{want} not in {keys:?}"
        );
    }
    // Each object is in the store, whole: the MP4 as the origin serves it,
    // every segment as recorded.
    let vod = format!("/vod/up/{id}/");
    for x in &objects {
        let k = x["key"].as_str().unwrap();
        let on_store = std::fs::read(store.join("media").join(k)).unwrap();
        assert_eq!(on_store.len() as u64, x["bytes"].as_u64().unwrap(), "{k}");
        assert_eq!(x["url"], format!("http://127.0.0.1:{port}/media/{k}"));
        let local = k.strip_prefix(&base).unwrap();
        let served = match local {
            "recording.mp4" => get(&o.url(&format!("{vod}download.mp4"))).await,
            _ => get(&o.url(&format!("{vod}{local}"))).await,
        };
        assert_eq!(served.status, 200, "{local}");
        assert!(
            on_store == served.body,
            "{k} differs from what the origin serves"
        );
    }
    // The API lists where it went; the metrics count it.
    let r = wait_recording(&o, "up", "uploaded", |r| r.get("objects").is_some()).await;
    assert_eq!(r["objects"].as_array().unwrap().len(), objects.len());
    let metrics = get(&o.url("/metrics")).await.text();
    assert!(
        metrics.contains("livecdn_origin_recording_uploads_total 1"),
        "{metrics}"
    );
    assert!(
        hooks.try_recv().is_err(),
        "on_record_done came more than once"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&store);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_says_whether_its_stream_is_recorded() {
    if !tools() {
        return;
    }
    let dir = temp_dir("channels");
    let config = support::TempConfig::new(
        "channels",
        &format!("[control]\ndatabase = {:?}\n", dir.join("control.db")),
    );
    // Policy none: only the channel that asks is recorded.
    let o = Origin::start(&[
        "--config",
        config.arg(),
        "--record=none",
        "--recording-dir",
        dir.join("rec").to_str().unwrap(),
        "--ladder",
        "source",
    ]);
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let mut keys = Vec::new();
    let bodies = [
        r#"{"name":"kept","recording":true,"authorized":true}"#,
        r#"{"name":"quiet"}"#,
    ];
    for body in bodies {
        let f = send(
            "POST",
            &o.url("/api/channels"),
            &[("authorization", &admin)],
            body,
        )
        .await;
        assert_eq!(f.status, 201, "{}", f.text());
        let v: Value = serde_json::from_slice(&f.body).unwrap();
        keys.push(v["streamKey"]["value"].as_str().unwrap().to_string());
    }
    let _a = Ffmpeg::publish_args(&o.rtmp_url(&keys[0]), 30, FAST);
    let _b = Ffmpeg::publish_args(&o.rtmp_url(&keys[1]), 30, FAST);
    let kept = wait_recording(&o, "kept", "with segments", |r| secs(r) >= 2.0).await;
    // An authorized channel's recording needs a viewer's token, as its
    // live stream does.
    let master = o.url(kept["vod"].as_str().unwrap());
    assert_eq!(get(&master).await.status, 403);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = livecdn_shared::auth::sign_token(support::SECRET.as_bytes(), "kept", exp);
    let with = get(&format!("{master}?token={token}")).await;
    assert_eq!(with.status, 200, "{}", with.text());
    // The other has three segments live and no recording.
    wait_playlist(
        &o.url("/live/quiet/source/index.m3u8"),
        Duration::from_secs(30),
        "three segments",
        |pl| support::http::complete_segments(pl) >= 3,
    )
    .await;
    let all = recordings(&o).await;
    assert!(all.iter().all(|r| r["stream"] != "quiet"), "{all:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shutdown_closes_the_recordings_it_was_writing() {
    if !tools() {
        return;
    }
    let dir = temp_dir("term");
    let mut o = start(&dir, &[]);
    let _ff = Ffmpeg::publish_args(&o.rtmp_url(&key("term")), 60, FAST);
    let before = wait_recording(&o, "term", "4 s long", |r| secs(r) >= 4.0).await;
    o.terminate();
    assert!(
        o.wait_exit(Duration::from_secs(20)).is_some(),
        "origin did not exit"
    );
    assert!(o.log().contains("recording finished"), "{}", o.log());
    // The next start finds it closed, not in need of recovery.
    let o = start(&dir, &[]);
    let after = wait_recording(&o, "term", "listed", |_| true).await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["state"], "done", "{after}");
    assert!(secs(&after) >= secs(&before));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn up_records_its_demo_for_the_run() {
    let mut o = Origin::up_demo();
    // Every rendition is recorded, so the live playlists reach back past
    // the ten segments memory keeps (DVR).
    let r = wait_recording(&o, "demo", "24 s long", |r| secs(r) >= 24.0).await;
    let recorded = r["renditions"].as_array().unwrap().len();
    assert!(recorded >= 3, "source, audio and rungs: {r}");
    let text = get(&o.url("/live/demo/source/index.m3u8")).await.text();
    let pl = MediaPlaylist::parse(&text).unwrap();
    let complete = pl.segments.iter().filter(|s| s.uri.is_some()).count();
    assert!(
        complete >= 11,
        "memory holds 10 segments; DVR lists more:\n{text}"
    );
    let path = PathBuf::from(r["path"].as_str().unwrap());
    let run_dir = std::env::temp_dir().join(format!("livecdn-up-{}-recordings", o.pid()));
    assert!(path.starts_with(&run_dir), "{path:?} not under {run_dir:?}");
    assert!(path.join("index.jsonl").is_file());
    o.terminate();
    assert!(
        o.wait_exit(Duration::from_secs(20)).is_some(),
        "up did not exit"
    );
    assert!(!run_dir.exists(), "the run's recordings were left behind");
}
