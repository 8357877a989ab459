//! Access logs against real processes: the edge writes one JSON line per
//! request (a miss and a hit of the same object, a 403 without a playback
//! token, a 404) with the client, stream, status, bytes, cache outcome,
//! timings, protocol and the player's CMCD; and an origin whose log
//! destination blocks (a FIFO nobody reads) keeps answering, dropping and
//! counting the lines it cannot queue.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::{get, get_with, wait_ok};
use support::{have, key, Ffmpeg, Origin, TempConfig, SECRET};

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "livecdn-access-{}-{}-{name}",
        std::process::id(),
        support::rand_u64()
    ))
}

/// The log's lines, parsed, once `done` holds for them (bounded wait).
async fn wait_lines(path: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if done(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "log lines so far: {lines:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_logs_hits_misses_403s_and_404s_with_every_field() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&["--ladder", "source"]);
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("logged")), 30);
    let log_path = temp_path("edge.log");
    let log_arg = log_path.to_str().unwrap();
    let edge = Edge::start(
        &origin,
        &[
            "--access-log",
            log_arg,
            "--require-token",
            "--secret",
            SECRET,
        ],
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = livecdn_shared::auth::sign_token(SECRET.as_bytes(), "logged", exp);
    let playlist_url = edge.url(&format!(
        "/live/logged/source/index.m3u8?token={token}&CMCD=ot%3Dm%2Csid%3D%22s-1%22"
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let playlist = loop {
        let text = wait_ok(&playlist_url, Duration::from_secs(20)).await.text();
        if text.contains("#EXT-X-MAP:") {
            break text;
        }
        assert!(Instant::now() < deadline, "no segment listed: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let init = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no map in {playlist}"));
    let init_path = format!("/live/logged/source/{init}");
    let cmcd = [
        ("cmcd-request", "bl=2100,mtp=25400"),
        ("cmcd-object", "br=800,ot=i"),
        ("cmcd-session", "sid=\"s-1\",st=l"),
        ("user-agent", "e2e-player/1"),
    ];
    let url = edge.url(&format!("{init_path}?token={token}"));
    let first = get_with(&url, &cmcd, false).await;
    let second = get_with(&url, &cmcd, false).await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(get(&edge.url("/live/logged/master.m3u8")).await.status, 403);
    assert_eq!(get(&edge.url("/no/such/path")).await.status, 404);

    let lines = wait_lines(&log_path, |lines| {
        lines
            .iter()
            .filter(|l| l["path"] == init_path.as_str())
            .count()
            >= 2
            && lines.iter().any(|l| l["status"] == 403)
            && lines.iter().any(|l| l["path"] == "/no/such/path")
    })
    .await;
    let inits: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"] == init_path.as_str())
        .collect();
    let outcomes: Vec<&str> = inits.iter().map(|l| l["cache"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["MISS", "HIT"], "{inits:#?}");
    for l in &inits {
        assert_eq!(l["status"], 200);
        assert_eq!(l["stream"], "logged");
        assert_eq!(l["bytes"], first.body.len() as u64);
        assert_eq!(l["client"], "127.0.0.1");
        assert_eq!(l["method"], "GET");
        assert_eq!(l["protocol"], "h1");
        assert_eq!(l["complete"], true);
        assert_eq!(l["user_agent"], "e2e-player/1");
        // The token is a credential: never written out.
        assert_eq!(l["query"], "token=-");
        assert_eq!(l["cmcd"]["bl"], 2100);
        assert_eq!(l["cmcd"]["ot"], "i");
        assert_eq!(l["cmcd"]["sid"], "s-1");
        let (ttfb, total) = (
            l["ttfb_ms"].as_f64().unwrap(),
            l["duration_ms"].as_f64().unwrap(),
        );
        assert!(ttfb > 0.0 && ttfb <= total, "{l}");
        assert!(l["ts"].as_str().unwrap().ends_with('Z'));
    }
    let playlist_line = lines
        .iter()
        .find(|l| l["path"] == "/live/logged/source/index.m3u8" && l["status"] == 200)
        .unwrap();
    assert_eq!(playlist_line["cmcd"]["ot"], "m");
    assert!(!playlist_line["query"].as_str().unwrap().contains(&token));
    let forbidden = lines.iter().find(|l| l["status"] == 403).unwrap();
    assert_eq!(forbidden["path"], "/live/logged/master.m3u8");
    assert_eq!(forbidden["stream"], "logged");
    assert!(forbidden.get("cache").is_none(), "{forbidden}");
    let missing = lines.iter().find(|l| l["path"] == "/no/such/path").unwrap();
    assert_eq!(missing["status"], 404);
    assert!(missing.get("stream").is_none(), "{missing}");

    let metrics = get(&edge.url("/metrics")).await.text();
    assert!(metric(&metrics, "livecdn_edge_access_log_lines_total") >= 5);
    assert_eq!(metric(&metrics, "livecdn_edge_access_log_dropped_total"), 0);
    let _ = std::fs::remove_file(&log_path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_log_destination_drops_and_counts_lines_and_requests_go_on() {
    let fifo = temp_path("blocked.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let config = TempConfig::new(
        "blocked",
        &format!(
            "[access_log]\nenabled = true\npath = {:?}\nqueue = 32\n",
            fifo.to_str().unwrap()
        ),
    );
    let origin = Origin::start(&["--config", config.arg()]);
    // Nobody reads the FIFO: the writer is stuck opening it. Every request
    // is still answered, bounded in time, though at most the queue (32)
    // plus the line in the writer's hands can be kept.
    let requests = 300u64;
    let answered = tokio::time::timeout(Duration::from_secs(60), async {
        for _ in 0..requests {
            assert_eq!(get(&origin.url("/healthz")).await.status, 200);
        }
    })
    .await;
    assert!(answered.is_ok(), "requests stalled behind the access log");
    let metrics = get(&origin.url("/metrics")).await.text();
    let dropped = metric(&metrics, "livecdn_origin_access_log_dropped_total");
    assert!(dropped >= requests - 33, "dropped {dropped}\n{metrics}");
    assert_eq!(metric(&metrics, "livecdn_origin_access_log_lines_total"), 0);

    // A reader arrives: the queued lines come out, intact, in order.
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let f = std::fs::File::open(&fifo).unwrap();
        let lines: Vec<String> = std::io::BufReader::new(f)
            .lines()
            .take(33)
            .map(Result::unwrap)
            .collect();
        let _ = std::fs::remove_file(&fifo);
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "queued lines never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = reader.join().unwrap();
    assert_eq!(lines.len(), 33);
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["path"], "/healthz");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 3);
    }
}
