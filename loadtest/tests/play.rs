//! `loadtest play` end to end against an in-process LL-HLS server on
//! 127.0.0.1: 50 viewers for 4 s over h1 and over h2 (the master with its
//! audio rendition, and a media playlist alone), checked through the JSON
//! report the CLI writes.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use clap::Parser;
use livecdn_loadtest::cli::{run, LoadtestArgs};
use serde_json::Value;

fn play(protocol: &str, playlist: &str) -> Value {
    play_at(support::start(), protocol, playlist)
}

fn play_at(addr: std::net::SocketAddr, protocol: &str, playlist: &str) -> Value {
    // One directory per run: tests of one protocol run at once, and one
    // removing a shared directory would lose the other's report.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_id = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "livecdn-loadtest-{protocol}-{}-{run_id}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let html = dir.join("report.html");
    let url = format!("http://{addr}/{playlist}");
    let args = LoadtestArgs::try_parse_from([
        "livecdn-loadtest",
        "play",
        &url,
        "--viewers",
        "50",
        "--protocol",
        protocol,
        "--duration",
        "4s",
        "--ramp",
        "500ms",
        "--connections",
        "4",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ])
    .unwrap();
    let started = std::time::Instant::now();
    run(args).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the run is bounded by its duration"
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report
}

fn check(report: &Value) {
    let s = &report["summary"];
    assert!(s["bytes"].as_u64().unwrap() > 50 * 4 * 600, "{s}");
    assert_eq!(
        s["errors"],
        serde_json::json!({}),
        "no errors: {}",
        s["errors"]
    );
    assert_eq!(s["stalls"], 0, "no stalls");
    let kinds = &s["requests_by_kind"];
    let parts = ["part", "hinted_part"]
        .iter()
        .filter_map(|k| kinds[k]["total"]["count"].as_u64())
        .sum::<u64>();
    // 4 s at 5 parts/s, minus start-up and ramp: well over 10 per viewer.
    assert!(parts > 50 * 10, "parts fetched: {parts}");
    for kind in kinds.as_object().unwrap().values() {
        assert_eq!(kind["failed"], 0);
    }
    let latency = &s["latency_behind_live"];
    let p50 = latency["p50"].as_f64().unwrap();
    assert!(
        (200.0..3000.0).contains(&p50),
        "latency behind live p50 {p50} ms"
    );
    assert_eq!(s["time_to_first_part"]["count"], 50, "every viewer played");
    let harness = &report["harness"];
    assert_eq!(harness["peak_viewers"], 50);
    assert!(harness["cpu_seconds"].as_f64().unwrap() > 0.0);
    assert!(harness["loop_lag"]["count"].as_u64().unwrap() > 10);
    assert!(!report["histograms"]["latency_behind_live_ms"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(report["timeline"].as_array().unwrap().len() >= 3);
    assert_eq!(s["intervals"].as_array().unwrap().len(), 4);
}

#[test]
fn fifty_h1_viewers_play_a_master_playlist() {
    let report = play("h1", "master.m3u8");
    assert_eq!(report["run"]["protocol"], "h1");
    check(&report);
    check_audio(&report);
}

/// The audio rendition's requests are counted on their own, by kind: each
/// viewer follows it with blocking reloads and parts like the variant.
fn check_audio(report: &Value) {
    let audio = &report["summary"]["audio_requests_by_kind"];
    let count = |k: &str| audio[k]["total"]["count"].as_u64().unwrap_or(0);
    assert_eq!(count("playlist"), 50, "{audio}");
    assert_eq!(count("init"), 50, "{audio}");
    assert!(count("blocking_playlist") > 50 * 10, "{audio}");
    assert!(count("part") + count("hinted_part") > 50 * 10, "{audio}");
    for kind in audio.as_object().unwrap().values() {
        assert_eq!(kind["failed"], 0);
    }
    assert!(audio["hinted_part"]["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn fifty_h2_viewers_play_video_and_audio_over_the_same_shared_connections() {
    let (addr, accepted) = support::start_counting();
    let report = play_at(addr, "h2", "master.m3u8");
    assert_eq!(report["run"]["connections"], 4);
    check(&report);
    check_audio(&report);
    let opened = accepted.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(opened, 4, "audio rides the video's four h2 connections");
}

#[test]
fn fifty_h2_viewers_play_a_media_playlist_over_shared_connections() {
    let report = play("h2", "v0/index.m3u8");
    assert_eq!(report["run"]["connections"], 4);
    check(&report);
    let audio = &report["summary"]["audio_requests_by_kind"];
    assert_eq!(audio, &serde_json::json!({}), "no audio without a master");
}
