//! Origin failover in a cluster: a primary publisher on one origin, a
//! backup publisher of the same stream on another, edges that follow the
//! stream map in a real `redis-server`, and hls.js in headless Chromium
//! playing through an edge. The primary origin's process is killed
//! (SIGKILL: no clean release of its entry); its lease runs out, the
//! backup's origin takes the entry over after renumbering its media past
//! the primary's (MSNs continue, one discontinuity more), the edge follows,
//! and the player plays on.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use std::time::{Duration, Instant};
use support::browser::Watched;
use support::chat::Redis;
use support::cluster::{self, store};
use support::http::{complete_segments, wait_playlist};
use support::{key, wait_log, Ffmpeg};

const WAIT: Duration = Duration::from_secs(40);
/// Short leases, so the test sees a failover in about a second (the
/// default is 3 s).
const LEASE: &str = "[cluster]\nlease = \"1s\"\n";
const BACKUP_KEY: &str = "studio-backup-key-0042";
/// Light encodes: two publishers, two origins, an edge and a browser share
/// this machine's cores.
const LIGHT: &[&str] = &["-preset", "ultrafast", "-g", "30", "-tune", "zerolatency"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_on_through_the_edge_when_the_primary_origin_dies() {
    if !support::browser_ready() || !support::have("redis-server") {
        return;
    }
    let redis = Redis::start();
    let (mut primary, pin_a, _log_a) = cluster::origin(&redis, "failover-a", LEASE);
    let backup_config = format!(
        "{LEASE}[[ingest.static_keys]]\nkey = \"{BACKUP_KEY}\"\nstream = \"studio\"\nbackup = true\n"
    );
    let (backup, pin_b, _log_b) = cluster::origin(&redis, "failover-b", &backup_config);
    // Both origins configured for the player page; streams go where the
    // map says.
    let origins = format!("http://{},http://{}", primary.http, backup.http);
    let edge = cluster::node_with_origins(&redis, &origins, &[&pin_a, &pin_b], &[]);
    let map = store(&redis);

    let _pa = Ffmpeg::publish_sized(&primary.rtmp_url(&key("studio")), 120, "320x180", LIGHT);
    cluster::wait_entry(&map, "studio", &primary, WAIT).await;
    let _pb = Ffmpeg::publish_sized(&backup.rtmp_url(BACKUP_KEY), 120, "320x180", LIGHT);
    // The backup packages the stream but leaves the entry to the primary.
    wait_playlist(
        &backup.url("/live/studio/source/index.m3u8"),
        WAIT,
        "a complete segment at the backup",
        |pl| complete_segments(pl) > 0,
    )
    .await;
    wait_log(
        &backup,
        "another origin's publisher (a primary, or a later one) holds it",
        WAIT,
    )
    .await;

    // hls.js through the edge, watched for 30 s once it plays. One stall
    // (the failover) is allowed, as long as one segment target.
    let player = Watched::start(
        &edge.url("/?stream=studio"),
        &[
            "--seconds",
            "40",
            "--min-frames",
            "30",
            "--hold",
            "30",
            "--max-stalls",
            "1",
            "--max-stuck-ms",
            "2000",
        ],
    )
    .wait_playing(
        Duration::from_secs(60),
        "the player never started playing through the edge",
    );

    // A couple of segments of playback, then the primary origin dies.
    let url_a = primary.url("/live/studio/source/index.m3u8");
    let playing = wait_playlist(&url_a, WAIT, "a listed segment", |pl| {
        !pl.segments.is_empty()
    })
    .await;
    let first = playing.media_sequence + playing.segments.len() as u64;
    let before = wait_playlist(&url_a, WAIT, "two segments further", |pl| {
        pl.media_sequence + pl.segments.len() as u64 >= first + 2
    })
    .await;
    let killed = Instant::now();
    primary.kill9();

    cluster::wait_entry(&map, "studio", &backup, WAIT).await;
    let taken_over = killed.elapsed();
    wait_log(
        &backup,
        "stream map: media renumbered past the previous holder's",
        WAIT,
    )
    .await;
    // The backup's numbers continue past every MSN the primary listed (or
    // could have named since), after one discontinuity more.
    let after = wait_playlist(
        &edge.url("/live/studio/source/index.m3u8"),
        WAIT,
        "the backup's playlist through the edge",
        |pl| pl.discontinuity_sequence > before.discontinuity_sequence,
    )
    .await;
    let before_next = before.media_sequence + before.segments.len() as u64;
    assert!(
        after.media_sequence >= before_next,
        "the backup lists MSN {} while the primary had reached {before_next}",
        after.media_sequence
    );

    let report = player.report();
    println!(
        "entry taken over {taken_over:?} after the kill; player: worst stuck {} ms, {} stall(s), \
         advanced {} s over the hold, {} s behind live over its last 10 s",
        report["hold_worst_stuck_ms"],
        report["hold_stalls"],
        report["hold_advanced_s"],
        report["hold_behind_live_end_median_s"]
    );
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["fatalError"].is_null(), "{report}");
    // The edge held the player's playlist requests across the failover
    // (cluster.failover_hold) instead of answering 502 from the dead
    // origin or 404 between the two entries.
    let refused: Vec<&str> = report["consoleErrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .filter(|e| e.starts_with("http ") && e.contains("/live/studio/") && e.contains(".m3u8"))
        .collect();
    assert!(refused.is_empty(), "playlist requests refused: {refused:?}");
    let target_ms = before.target_duration * 1000;
    assert!(
        report["hold_worst_stuck_ms"].as_u64().unwrap_or(u64::MAX) <= target_ms,
        "the player stood still longer than one segment target: {report}"
    );
}
