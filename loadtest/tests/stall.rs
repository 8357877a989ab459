//! `loadtest play` against an in-process LL-HLS server that stops
//! publishing parts for 5 s in the middle of the run: every viewer must
//! report a stall, timed from the moment its buffer ran dry to the first part
//! after the pause, that is the pause minus what the viewer had buffered.
//! The same run without the pause has no stall.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use livecdn_loadtest::cli::{run, LoadtestArgs};
use serde_json::Value;

const VIEWERS: u64 = 20;
/// The pause starts this long after the server (and the run) start...
const PAUSE_AT: Duration = Duration::from_secs(3);
/// ...and lasts this long.
const PAUSE: Duration = Duration::from_secs(5);
/// Run length: the pause ends (8 s) well before the run does.
const RUN_SECONDS: u64 = 11;
const TOLERANCE_MS: f64 = 500.0;

fn play(addr: SocketAddr, name: &str) -> Value {
    let dir = std::env::temp_dir().join(format!(
        "livecdn-loadtest-stall-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let url = format!("http://{addr}/master.m3u8");
    let args = LoadtestArgs::try_parse_from([
        "livecdn-loadtest",
        "play",
        &url,
        "--viewers",
        &VIEWERS.to_string(),
        "--protocol",
        "h1",
        "--duration",
        &format!("{RUN_SECONDS}s"),
        "--ramp",
        "500ms",
        "--threads",
        "1",
        "--json",
        json.to_str().unwrap(),
    ])
    .unwrap();
    let started = Instant::now();
    run(args).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(RUN_SECONDS + 5),
        "the run is bounded by its duration"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// Median of the per-second latency medians of the seconds before the
/// pause (second 0 is start-up): what each viewer has buffered when a part
/// arrives, since a part's program date-time ends at the instant it is
/// published.
fn buffered_before_pause_ms(report: &Value) -> f64 {
    let mut before: Vec<f64> = report["summary"]["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| (1..PAUSE_AT.as_secs()).contains(&i["second"].as_u64().unwrap()))
        .map(|i| i["latency_p50_ms"].as_f64().unwrap())
        .collect();
    before.sort_by(f64::total_cmp);
    assert!(!before.is_empty(), "{}", report["summary"]);
    before[before.len() / 2]
}

#[test]
fn a_five_second_publishing_pause_is_one_stall_per_viewer_of_the_pause_minus_the_buffer() {
    let addr = support::start_paused(PAUSE_AT, PAUSE);
    let report = play(addr, "paused");
    let s = &report["summary"];
    let buffered = buffered_before_pause_ms(&report);
    // The last part before the pause is published at PAUSE_AT, the next one
    // a part later plus the pause; the buffer left when the last one arrived
    // plays out first.
    let gap_ms = (PAUSE + support::PART).as_secs_f64() * 1000.0;
    let expected = gap_ms - buffered;
    let stalls = s["stalls"].as_u64().unwrap();
    let d = &s["stall_duration"];
    eprintln!(
        "stalls {stalls}, buffered {buffered:.0} ms, expected {expected:.0} ms, stall durations {d}, \
         errors {}",
        s["errors"]
    );
    assert!(
        stalls >= VIEWERS,
        "at least one stall per viewer, got {stalls}: {s}"
    );
    assert!(
        d["count"].as_u64().unwrap() >= VIEWERS,
        "every stall ended before the run did: {d}"
    );
    // Exactly one stall per viewer begins while the pause is on (once its
    // buffer runs dry); any later ones begin after it.
    let intervals = s["intervals"].as_array().unwrap();
    let field = |i: &Value, k: &str| i[k].as_f64().unwrap();
    let pause_s = PAUSE_AT.as_secs()..(PAUSE_AT + PAUSE).as_secs();
    let during: f64 = intervals
        .iter()
        .filter(|i| pause_s.contains(&i["second"].as_u64().unwrap()))
        .map(|i| field(i, "stalls"))
        .sum();
    let before: f64 = intervals
        .iter()
        .filter(|i| i["second"].as_u64().unwrap() < PAUSE_AT.as_secs())
        .map(|i| field(i, "stalls"))
        .sum();
    assert_eq!(
        (before, during),
        (0.0, VIEWERS as f64),
        "stalls before / during the pause: {s}"
    );
    // Those stalls' lengths: the longest one, and the mean over viewers of
    // all stall time (other stalls, if any, are short: at the live edge
    // right after the pause, a part may arrive a hair after the single part
    // buffered has played out).
    let total_ms: f64 = intervals.iter().map(|i| field(i, "stall_ms")).sum();
    let mean_ms = total_ms / VIEWERS as f64;
    let max_ms = d["max"].as_f64().unwrap();
    for (what, ms) in [
        ("longest stall", max_ms),
        ("stall time per viewer", mean_ms),
    ] {
        assert!(
            (ms - expected).abs() <= TOLERANCE_MS,
            "{what} {ms:.0} ms, expected {expected:.0} ms (pause {PAUSE:?} + a part - \
             {buffered:.0} ms buffered): {d}"
        );
    }
    assert_eq!(
        s["time_to_first_part"]["count"], VIEWERS,
        "every viewer played"
    );
}

#[test]
fn without_the_pause_nobody_stalls() {
    let addr = support::start();
    let report = play(addr, "steady");
    let s = &report["summary"];
    assert_eq!(s["stalls"], 0, "{s}");
    assert!(s["stall_duration"].is_null(), "{s}");
    assert_eq!(s["errors"], serde_json::json!({}), "{s}");
    assert_eq!(
        s["time_to_first_part"]["count"], VIEWERS,
        "every viewer played"
    );
}
