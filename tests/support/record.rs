//! Recording helpers shared by the recording and edge VOD tests.

use super::http::get;
use super::{ffprobe, Origin};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("livecdn-e2e-record-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An origin recording every stream (source only) into `dir`.
pub fn start(dir: &Path, extra: &[&str]) -> Origin {
    let mut args = vec![
        "--record",
        "--recording-dir",
        dir.to_str().unwrap(),
        "--ladder",
        "source",
        "--reconnect-grace",
        "1s",
    ];
    args.extend_from_slice(extra);
    Origin::start(&args)
}

/// `/api/recordings` of `o`.
pub async fn recordings(o: &Origin) -> Vec<Value> {
    let f = get(&o.url("/api/recordings")).await;
    assert_eq!(f.status, 200, "{}", f.text());
    let v: Value = serde_json::from_slice(&f.body).unwrap();
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// Polls `/api/recordings` (bounded) until one of `stream` satisfies `ok`.
pub async fn wait_recording(
    o: &Origin,
    stream: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = recordings(o).await;
        if let Some(r) = all.iter().find(|r| r["stream"] == stream && ok(r)) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no recording of {stream} {what} within 60 s: {all:?}\n{}",
            o.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A recording's `durationSeconds`.
pub fn secs(v: &Value) -> f64 {
    v["durationSeconds"].as_f64().unwrap()
}

/// ffprobe's view of a media file: its duration and its streams' kinds.
pub fn probe(file: &Path) -> (f64, Vec<String>) {
    let out = ffprobe(
        &[
            "-show_entries",
            "format=duration:stream=codec_type",
            "-of",
            "json",
        ],
        file,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let d = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    let kinds = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap().to_string())
        .collect();
    (d, kinds)
}
