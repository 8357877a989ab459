#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

use super::{publish, PublishError, PublishOptions};
use crate::publisher::RtmpUrl;

/// Upper bound on any one test step.
const STEP: Duration = Duration::from_secs(15);

/// What the in-process test server saw: (is_video, timestamp, body[0..2]).
type Received = Vec<(bool, u32, [u8; 2])>;

/// A minimal rml_rtmp server on 127.0.0.1:0 that accepts `connect` and
/// either accepts `publish`, recording media until the client leaves, or
/// refuses it with `reason`.
async fn test_server(refuse: Option<&'static str>) -> (RtmpUrl, tokio::task::JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        serve(&mut socket, refuse).await
    });
    (RtmpUrl::new("127.0.0.1", port, "live", "test-key"), task)
}

async fn serve(socket: &mut TcpStream, refuse: Option<&'static str>) -> Received {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 64 * 1024];
    let leftover = loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "client left during handshake");
        match handshake.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.unwrap();
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await.unwrap();
                break remaining_bytes;
            }
        }
    };
    let (mut session, initial) = ServerSession::new(ServerSessionConfig::new()).unwrap();
    let mut received = Received::new();
    let mut pending = initial;
    pending.extend(session.handle_input(&leftover).unwrap());
    loop {
        while let Some(result) = (!pending.is_empty()).then(|| pending.remove(0)) {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    socket.write_all(&packet.bytes).await.unwrap();
                }
                ServerSessionResult::RaisedEvent(event) => match event {
                    ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                        pending.extend(session.accept_request(request_id).unwrap());
                    }
                    ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                        pending.extend(match refuse {
                            Some(reason) => session
                                .reject_request(request_id, "NetStream.Publish.BadName", reason)
                                .unwrap(),
                            None => session.accept_request(request_id).unwrap(),
                        });
                    }
                    ServerSessionEvent::VideoDataReceived {
                        data, timestamp, ..
                    } => received.push((true, timestamp.value, [data[0], data[1]])),
                    ServerSessionEvent::AudioDataReceived {
                        data, timestamp, ..
                    } => received.push((false, timestamp.value, [data[0], data[1]])),
                    _ => {}
                },
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return received;
        }
        pending = session.handle_input(&buf[..n]).unwrap();
    }
}

fn options(duration_ms: u64) -> PublishOptions {
    PublishOptions {
        duration: Some(Duration::from_millis(duration_ms)),
        ..PublishOptions::default()
    }
}

#[tokio::test]
async fn publishes_paced_media_to_an_rtmp_server() {
    let (url, server) = test_server(None).await;
    let (_tx, rx) = watch::channel(false);
    let stats = timeout(STEP, publish(&url, options(1000), rx))
        .await
        .unwrap()
        .unwrap();
    let received = timeout(STEP, server).await.unwrap().unwrap();
    // Sequence headers first: AVC packet type 0, then AAC packet type 0.
    assert_eq!(received[0], (true, 0, [0x17, 0x00]));
    assert_eq!(received[1], (false, 0, [0xaf, 0x00]));
    let video = received.iter().filter(|r| r.0).count() as u64;
    let audio = received.iter().filter(|r| !r.0).count() as u64;
    assert_eq!((video, audio), (stats.video_tags, stats.audio_tags));
    // One second of 30 fps video and 46.9 fps audio, give or take a tag.
    assert!((30..=33).contains(&video), "{video} video tags");
    assert!((45..=50).contains(&audio), "{audio} audio tags");
    assert!(stats.elapsed >= Duration::from_millis(1000));
    assert!(stats.elapsed < Duration::from_secs(3), "{stats:?}");
    assert!(stats.bytes_sent > 50_000, "{stats:?}");
}

#[tokio::test]
async fn refusal_carries_the_servers_reason() {
    let (url, _server) = test_server(Some("stream key expired")).await;
    let (_tx, rx) = watch::channel(false);
    let err = timeout(STEP, publish(&url, options(1000), rx))
        .await
        .unwrap()
        .unwrap_err();
    match err {
        PublishError::PublishRejected { code, reason } => {
            assert_eq!(code, "NetStream.Publish.BadName");
            assert_eq!(reason, "stream key expired");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_ends_an_unbounded_publish() {
    let (url, server) = test_server(None).await;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let options = PublishOptions::default();
        publish(&url, options, rx).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(true).unwrap();
    let stats = timeout(STEP, task).await.unwrap().unwrap().unwrap();
    assert!(stats.video_tags >= 5, "{stats:?}");
    timeout(STEP, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn silent_server_times_out_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let accepted = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(accepted);
    });
    let url = RtmpUrl::new("127.0.0.1", port, "live", "k");
    let (_tx, rx) = watch::channel(false);
    let options = PublishOptions {
        connect_timeout: Duration::from_millis(300),
        ..options(1000)
    };
    let err = timeout(STEP, publish(&url, options, rx))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, PublishError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn refused_tcp_connect_is_a_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = RtmpUrl::new("127.0.0.1", port, "live", "k");
    let (_tx, rx) = watch::channel(false);
    let err = timeout(STEP, publish(&url, options(100), rx))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, PublishError::Connect { .. }), "{err:?}");
}

/// `None` when the tool is missing and this is not CI (then the test is
/// skipped); panics on CI, where ffmpeg must be installed.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required on CI"
        );
        eprintln!("skipping: {name} not on PATH");
    }
    found
}

fn ffprobe(ffprobe: &Path, file: &Path) -> String {
    let out = std::process::Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn ffmpeg_receives_three_seconds_of_h264_and_aac() {
    let (Some(ffmpeg), Some(ffprobe_bin)) = (tool("ffmpeg"), tool("ffprobe")) else {
        return;
    };
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = std::env::temp_dir().join(format!("livecdn-publisher-{port}.flv"));
    let url = RtmpUrl::new("127.0.0.1", port, "live", "test");
    let mut child = tokio::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y", "-listen", "1"])
        .args(["-timeout", "15", "-f", "flv", "-i"])
        .arg(url.to_string())
        .args(["-c", "copy", "-f", "flv"])
        .arg(&out)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // ffmpeg listens once, so no probe connection: retry the publish itself
    // while the port still refuses.
    let (_tx, rx) = watch::channel(false);
    let started = tokio::time::Instant::now();
    let stats = loop {
        match publish(&url, options(3000), rx.clone()).await {
            Err(PublishError::Connect { .. }) if started.elapsed() < STEP => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other.unwrap(),
        }
    };
    let status = timeout(STEP, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "ffmpeg exited with {status}");

    let probe = ffprobe(&ffprobe_bin, &out);
    eprintln!("{probe}{stats:?}");
    let _ = std::fs::remove_file(&out);
    assert!(probe.contains("codec_name=h264"), "{probe}");
    assert!(probe.contains("codec_name=aac"), "{probe}");
    let duration: f64 = probe
        .lines()
        .find_map(|line| line.strip_prefix("duration="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (2.7..=3.3).contains(&duration),
        "duration {duration} s, {stats:?}"
    );
}
