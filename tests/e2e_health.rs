//! Stream health end to end: real ffmpeg publishers that go bad while
//! keeping their connection, the origin's verdict on
//! `/api/channels/NAME/stream` and its `on_health` webhook (one call per
//! change, received by a server in the test).

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::hook::{hook_server, next_hook};
use support::http::send;
use support::{have, Ffmpeg, Origin, TempConfig};

/// x264 at up to 2 Mb/s, a keyframe a second.
const VIDEO: &[&str] = &[
    "-preset", "veryfast", "-g", "30", "-b:v", "2000k", "-maxrate", "2000k", "-bufsize", "2000k",
];

fn origin(hook: &str) -> (Origin, TempConfig, std::path::PathBuf) {
    let db = std::env::temp_dir().join(format!(
        "livecdn-e2e-health-{}-{}.db",
        std::process::id(),
        rand()
    ));
    let conf = TempConfig::new(
        "health",
        &format!(
            "[control]\ndatabase = {:?}\n[webhooks]\non_health = {hook:?}\n",
            db.display().to_string()
        ),
    );
    (Origin::start(&["--config", conf.arg()]), conf, db)
}

fn rand() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

async fn channel_key(origin: &Origin, name: &str) -> String {
    let f = send(
        "POST",
        &origin.url("/api/channels"),
        &[],
        &format!("{{\"name\": \"{name}\"}}"),
    )
    .await;
    assert_eq!(f.status, 201, "{}", f.text());
    let v: Value = serde_json::from_slice(&f.body).unwrap();
    v["streamKey"]["value"].as_str().unwrap().to_string()
}

/// Polls the stream's health until it is `want` (bounded); the answer.
async fn wait_health(origin: &Origin, name: &str, want: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let f = send(
            "GET",
            &origin.url(&format!("/api/channels/{name}/stream")),
            &[],
            "",
        )
        .await;
        let v: Value = serde_json::from_slice(&f.body).unwrap_or(Value::Null);
        if v["health"] == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "not {want} within {limit:?}: {v}\n{}",
            origin.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_of_the_bitrate_starves_the_stream_and_recovery_heals_it_one_call_each() {
    if !have("ffmpeg") {
        return;
    }
    let (url, mut hooks) = hook_server("204 No Content", "").await;
    let (origin, _conf, db) = origin(&url);
    let key = channel_key(&origin, "busy").await;
    // 16 s of busy video, 12 s of black (a few kb/s), then busy again.
    let graph = "testsrc2=size=640x360:rate=30:duration=16[a];\
                 color=c=black:size=640x360:rate=30:duration=12[b];\
                 testsrc2=size=640x360:rate=30[c];[a][b][c]concat=n=3:v=1:a=0[out0]";
    let _ff = Ffmpeg::publish_lavfi(&origin.rtmp_url(&key), 60, graph, VIDEO);
    let healthy = wait_health(&origin, "busy", "HEALTHY", Duration::from_secs(20)).await;
    assert_eq!(healthy["state"], "LIVE");
    let starving = wait_health(&origin, "busy", "STARVING", Duration::from_secs(30)).await;
    assert!(
        starving["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "bitrate_drop"),
        "{starving}"
    );
    let first = next_hook(&mut hooks, Duration::from_secs(5)).await;
    assert_eq!(first.body["event"], "health");
    assert_eq!(
        (first.body["stream"].as_str(), first.body["health"].as_str()),
        (Some("busy"), Some("STARVING"))
    );
    assert_eq!(first.body["previous"], "HEALTHY");
    wait_health(&origin, "busy", "HEALTHY", Duration::from_secs(30)).await;
    // The next call is the recovery: nothing in between, however long it
    // starved.
    let second = next_hook(&mut hooks, Duration::from_secs(5)).await;
    assert_eq!(
        (
            second.body["health"].as_str(),
            second.body["previous"].as_str()
        ),
        (Some("HEALTHY"), Some("STARVING"))
    );
    let metrics = support::http::get(&origin.url("/metrics")).await.text();
    assert!(
        metrics.contains("livecdn_origin_health_changes_total{to=\"STARVING\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("livecdn_origin_stream_healthy{stream=\"busy\"} 1"),
        "{metrics}"
    );
    let _ = std::fs::remove_file(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_that_stops_while_the_connection_stays_starves_the_stream() {
    if !have("ffmpeg") {
        return;
    }
    let (url, mut hooks) = hook_server("204 No Content", "").await;
    let (origin, _conf, db) = origin(&url);
    let key = channel_key(&origin, "mute").await;
    // Video for 14 s; the tone goes on for 40.
    let mut ff = Ffmpeg::publish_lavfi(
        &origin.rtmp_url(&key),
        40,
        "testsrc2=size=640x360:rate=30:duration=14",
        VIDEO,
    );
    wait_health(&origin, "mute", "HEALTHY", Duration::from_secs(20)).await;
    let starving = wait_health(&origin, "mute", "STARVING", Duration::from_secs(25)).await;
    assert_eq!(
        starving["state"], "LIVE",
        "the connection stays: {starving}"
    );
    assert!(
        starving["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "no_video"),
        "{starving}"
    );
    let hook = next_hook(&mut hooks, Duration::from_secs(5)).await;
    assert_eq!(hook.body["health"], "STARVING");
    assert!(
        hook.body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "no_video"),
        "{:?}",
        hook.body
    );
    ff.stop();
    let _ = std::fs::remove_file(db);
}
