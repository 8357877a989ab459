//! Publish authorisation end to end: real ffmpeg against the real origin
//! with wrong, expired and unknown keys, `on_publish` / `on_publish_done`
//! webhooks served by a tiny HTTP server in the test, and a second
//! publisher on a live stream name.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::playlist::MediaPlaylist;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::hook::{hook_server, next_hook};
use support::http::{get, wait_ok};
use support::{have, key, streams, wait_log, Ffmpeg, Origin, SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a refused ffmpeg may take to give up.
const REFUSAL_LIMIT: Duration = Duration::from_secs(10);

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `livecdn_origin_publishes_total{result="RESULT"}`, 0 when absent.
async fn publishes(o: &Origin, result: &str) -> u64 {
    let text = get(&o.url("/metrics")).await.text();
    let prefix = format!("livecdn_origin_publishes_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Publishes with `key` and checks the publish is refused: ffmpeg fails in
/// bounded time, no stream appears, the metric counts `result`, and the log
/// names the reason (`log_reason`).
async fn assert_refused(o: &Origin, key: &str, result: &str, log_reason: &str) {
    let start = Instant::now();
    let ff = Ffmpeg::publish(&o.rtmp_url(key), 5);
    let (ok, stderr) = ff.wait(REFUSAL_LIMIT);
    let took = start.elapsed();
    assert!(
        !ok && stderr != "timed out",
        "ffmpeg must be refused within {REFUSAL_LIMIT:?} (ok={ok}, {took:?}): {stderr}\n{}",
        o.log()
    );
    eprintln!(
        "refused ({result}) after {took:?}; ffmpeg said: {}",
        stderr.trim()
    );
    let log = wait_log(o, log_reason, Duration::from_secs(5)).await;
    assert!(
        log.contains("rtmp session closed") && log.contains("publish refused"),
        "{log}"
    );
    assert!(!log.contains("publish accepted"), "{log}");
    assert_eq!(publishes(o, result).await, 1, "metric result={result}");
    assert_eq!(publishes(o, "accepted").await, 0);
    assert!(streams(o).await.is_empty(), "no stream may appear");
    assert_eq!(get(&o.url("/live/cam/master.m3u8")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_signed_with_another_secret_is_refused() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&[]);
    let forged =
        livecdn_shared::auth::sign_key(b"some-other-secret-entirely-42", "cam", now_unix() + 3600);
    assert_ne!(forged, key("cam"));
    assert_refused(
        &origin,
        &forged,
        "bad_key",
        "invalid stream key: bad signature",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_key_is_refused() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&[]);
    let expired = livecdn_shared::auth::sign_key(SECRET.as_bytes(), "cam", now_unix() - 60);
    assert_refused(&origin, &expired, "bad_key", "credential expired at").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_unknown_key_is_refused() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&[]);
    assert_refused(&origin, "cam", "unknown_key", "unknown stream key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_webhook_403_refuses_a_valid_key() {
    if !have("ffmpeg") {
        return;
    }
    let (url, mut rx) = hook_server("403 Forbidden", "").await;
    let origin = Origin::start(&["--on-publish", &url]);
    let valid = key("cam");
    let start = Instant::now();
    let ff = Ffmpeg::publish(&origin.rtmp_url(&valid), 5);
    let req = next_hook(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook");
    assert_eq!(req.body["event"], "publish", "{:?}", req.body);
    assert_eq!(req.body["stream"], "cam", "{:?}", req.body);
    assert_eq!(req.body["key"], valid.as_str(), "{:?}", req.body);
    let client = req.body["client"].as_str().unwrap_or_default();
    let client: std::net::SocketAddr = client
        .parse()
        .unwrap_or_else(|e| panic!("client {client:?}: {e}"));
    assert!(client.ip().is_loopback() && client.port() != 0, "{client}");

    let (ok, stderr) = ff.wait(REFUSAL_LIMIT);
    assert!(!ok && stderr != "timed out", "{stderr}\n{}", origin.log());
    eprintln!("webhook refusal after {:?}", start.elapsed());
    wait_log(
        &origin,
        "on_publish webhook refused: status 403",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(publishes(&origin, "webhook").await, 1);
    assert_eq!(publishes(&origin, "accepted").await, 0);
    assert!(streams(&origin).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_webhook_names_the_stream_for_an_opaque_key() {
    if !have("ffmpeg") {
        return;
    }
    let (url, mut rx) = hook_server("200 OK", r#"{"stream":"hooked"}"#).await;
    let origin = Origin::start(&["--on-publish", &url]);
    let opaque = "opaque-backend-key-7f3a";
    let _ff = Ffmpeg::publish(&origin.rtmp_url(opaque), 8);
    let req = next_hook(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.body["key"], opaque, "{:?}", req.body);
    assert!(req.body["stream"].is_null(), "unknown key: {:?}", req.body);

    let master = wait_ok(
        &origin.url("/live/hooked/master.m3u8"),
        Duration::from_secs(20),
    )
    .await
    .text();
    assert!(!master.contains(opaque), "{master}");
    let media = wait_ok(
        &origin.url("/live/hooked/source/index.m3u8"),
        Duration::from_secs(10),
    )
    .await
    .text();
    MediaPlaylist::parse(&media).unwrap_or_else(|e| panic!("{e}: {media}"));
    assert!(!media.contains(opaque), "{media}");
    let api = get(&origin.url("/api/streams")).await.text();
    assert!(!api.contains(opaque), "{api}");
    let list = streams(&origin).await;
    assert_eq!(list.len(), 1, "{api}");
    assert_eq!(list[0]["name"], "hooked");
    assert_eq!(list[0]["live"], true);
    assert_eq!(
        get(&origin.url(&format!("/live/{opaque}/master.m3u8")))
            .await
            .status,
        404
    );
    assert_eq!(publishes(&origin, "accepted").await, 1);
    let log = origin.log();
    assert!(log.contains("publish accepted"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_done_is_posted_when_the_publisher_stops() {
    if !have("ffmpeg") {
        return;
    }
    let (url, mut rx) = hook_server("200 OK", "{}").await;
    let mut origin = Origin::start(&["--on-publish-done", &url]);
    let ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 4);
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    assert!(rx.try_recv().is_err(), "nothing is posted while publishing");
    let (ok, stderr) = ff.wait(Duration::from_secs(20));
    assert!(ok, "{stderr}");
    let stopped = Instant::now();
    let req = next_hook(&mut rx, Duration::from_secs(10)).await;
    eprintln!(
        "on_publish_done {:?} after ffmpeg exited",
        stopped.elapsed()
    );
    assert_eq!(req.method, "POST");
    assert_eq!(req.body["event"], "publish_done", "{:?}", req.body);
    assert_eq!(req.body["stream"], "cam", "{:?}", req.body);
    assert!(
        req.body["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{:?}",
        req.body
    );
    // Exactly once: a second notification would be delivered before the
    // origin exits (it flushes its webhooks on SIGTERM).
    origin.terminate();
    assert!(origin.wait_exit(Duration::from_secs(15)).is_some());
    assert!(rx.try_recv().is_err(), "on_publish_done posted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_on_a_live_stream_is_refused() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&[]);
    let first = Ffmpeg::publish_args(
        &origin.rtmp_url(&key("cam")),
        10,
        &["-preset", "veryfast", "-g", "60"],
    );
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let before = last_part(&origin).await;

    let start = Instant::now();
    let second = Ffmpeg::publish_args(
        &origin.rtmp_url(&key("cam")),
        5,
        &["-preset", "veryfast", "-g", "60"],
    );
    let (ok, stderr) = second.wait(REFUSAL_LIMIT);
    assert!(!ok && stderr != "timed out", "{stderr}\n{}", origin.log());
    eprintln!("second publisher refused after {:?}", start.elapsed());
    wait_log(
        &origin,
        "stream \"cam\" already has a live publisher",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(publishes(&origin, "already_live").await, 1);
    assert_eq!(publishes(&origin, "accepted").await, 1);

    // The first publisher keeps going: the playlist still advances.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut after = before;
    while Instant::now() < deadline && after <= before {
        tokio::time::sleep(Duration::from_millis(300)).await;
        after = last_part(&origin).await;
    }
    assert!(after > before, "stream stalled at {before:?}");
    let list = streams(&origin).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["live"], true);
    let (ok, stderr) = first.wait(Duration::from_secs(20));
    assert!(ok, "first publisher must finish normally: {stderr}");
}

/// The last complete part `(msn, part)` of the video playlist.
async fn last_part(o: &Origin) -> (u64, u64) {
    let f = get(&o.url("/live/cam/source/index.m3u8")).await;
    assert_eq!(f.status, 200, "{}", f.text());
    MediaPlaylist::parse(&f.text())
        .unwrap()
        .last_part()
        .unwrap_or_default()
}

/// SIGTERM during a publish: the origin stops taking connections, answers a
/// held blocking reload at once with a complete response (a clean 503 the
/// player retries elsewhere), delivers `on_publish_done` and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_held_requests_and_delivers_on_publish_done() {
    if !have("ffmpeg") {
        return;
    }
    let (url, mut rx) = hook_server("200 OK", "{}").await;
    let mut origin = Origin::start(&["--on-publish-done", &url, "--ladder", "source"]);
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 60);
    let playlist = wait_ok(
        &origin.url("/live/cam/source/index.m3u8"),
        Duration::from_secs(20),
    )
    .await
    .text();
    let pl = MediaPlaylist::parse(&playlist).unwrap();
    // Part 0 of the segment after the next: held for about a segment.
    let (next_msn, _) = pl.next_part();
    let path = format!(
        "/live/cam/source/index.m3u8?_HLS_msn={}&_HLS_part=0",
        next_msn + 1
    );
    let mut tcp = tokio::net::TcpStream::connect(origin.http).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    wait_log(&origin, "request held", Duration::from_secs(5)).await;

    origin.terminate();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        // Until the headers and the whole declared body are in.
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if len.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "held request not answered within 10 s of SIGTERM"
    );
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(
        text.starts_with("HTTP/1.1 503") || text.starts_with("HTTP/1.1 200"),
        "{text:?}\n{}",
        origin.log()
    );
    assert!(text.contains("\r\n\r\n"), "incomplete answer {text:?}");

    let req = next_hook(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(req.body["event"], "publish_done", "{:?}", req.body);
    assert_eq!(req.body["stream"], "cam", "{:?}", req.body);
    let status = origin.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}\n{}",
        origin.log()
    );
    assert!(origin.log().contains("origin stopped"), "{}", origin.log());
}
