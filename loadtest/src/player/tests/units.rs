//! Playlist addressing, URL resolution, and stats fed with player events.

use std::time::Duration;

use livecdn_shared::playlist::{MediaPlaylist, Part, Segment};

use crate::player::window::{live_edge, lookup, start_position, Lookup, Position};
use crate::player::{resolve_url, Event, PlayerConfig, RequestKind, Track};
use crate::stats::Stats;

use super::Sim;

fn playlist(independent: impl Fn(u64, usize) -> bool) -> MediaPlaylist {
    let segments = (5..8u64)
        .map(|msn| Segment {
            duration: 2.0,
            uri: (msn < 7).then(|| format!("s{msn}.m4s")),
            parts: (0..if msn < 7 { 4 } else { 2 })
                .map(|p| Part {
                    duration: 0.5,
                    uri: format!("p{msn}.{p}.m4s"),
                    independent: independent(msn, p),
                    gap: false,
                })
                .collect(),
            ..Segment::default()
        })
        .collect();
    MediaPlaylist {
        target_duration: 2,
        part_target: Some(0.5),
        media_sequence: 5,
        segments,
        ..MediaPlaylist::default()
    }
}

#[test]
fn start_walks_back_to_an_independent_part() {
    let all = playlist(|_, _| true);
    let pos = |msn, part| Some(Position { msn, part });
    assert_eq!(start_position(&all, Duration::from_millis(1500)), pos(6, 3));
    assert_eq!(start_position(&all, Duration::from_millis(1400)), pos(6, 3));
    assert_eq!(start_position(&all, Duration::ZERO), pos(7, 1));
    let keyframes = playlist(|_, p| p == 0);
    assert_eq!(
        start_position(&keyframes, Duration::from_millis(1500)),
        pos(6, 0)
    );
    let unmarked = playlist(|_, _| false);
    assert_eq!(
        start_position(&unmarked, Duration::from_millis(1500)),
        pos(6, 0)
    );
    assert_eq!(
        start_position(&all, Duration::from_secs(60)),
        pos(5, 0),
        "clamped to the window"
    );
    assert_eq!(
        start_position(&MediaPlaylist::default(), Duration::ZERO),
        None
    );
}

#[test]
fn lookup_normalises_past_finished_segments() {
    let pl = playlist(|_, _| true);
    let (at, found) = lookup(&pl, Position { msn: 6, part: 4 });
    assert_eq!(at, Position { msn: 7, part: 0 });
    assert!(matches!(found, Lookup::Part { part, .. } if part.uri == "p7.0.m4s"));
    assert!(matches!(
        lookup(&pl, Position { msn: 7, part: 2 }).1,
        Lookup::NotYet
    ));
    assert!(matches!(
        lookup(&pl, Position { msn: 4, part: 0 }).1,
        Lookup::Gone
    ));
    assert_eq!(live_edge(&pl), Position { msn: 7, part: 2 });
}

#[test]
fn urls_resolve_like_a_browser() {
    let base = "https://cdn.test/live/v0/index.m3u8?token=abc";
    assert_eq!(
        resolve_url(base, "p1.0.m4s"),
        "https://cdn.test/live/v0/p1.0.m4s"
    );
    assert_eq!(
        resolve_url(base, "../v1/index.m3u8"),
        "https://cdn.test/live/v1/index.m3u8"
    );
    assert_eq!(
        resolve_url(base, "/other/x.m4s?a=1"),
        "https://cdn.test/other/x.m4s?a=1"
    );
    assert_eq!(
        resolve_url(base, "//edge.test/y.m4s"),
        "https://edge.test/y.m4s"
    );
    assert_eq!(
        resolve_url(base, "http://o.test/z.m4s"),
        "http://o.test/z.m4s"
    );
    assert_eq!(resolve_url("http://h", "a.m4s"), "http://h/a.m4s");
    assert_eq!(
        resolve_url(base, "./p/../q.m4s?x=1#f"),
        "https://cdn.test/live/v0/q.m4s?x=1#f"
    );
    assert_eq!(
        resolve_url("http://h/a/./b/../c/index.m3u8", "d.m4s"),
        "http://h/a/c/d.m4s"
    );
    assert_eq!(resolve_url("http://h/a/b.m3u8", "."), "http://h/a/");
}

#[test]
fn stats_record_a_run_and_merge() {
    let mut sim = Sim::new(
        PlayerConfig {
            abr: false,
            ..PlayerConfig::default()
        },
        vec![1_000_000],
    );
    sim.run_secs(10.0);
    let mut stats = Stats::new();
    for (at, event) in &sim.events {
        stats.advance_to(at.duration_since(sim.server.t0));
        stats.record(event);
    }
    stats.advance_to(Duration::from_secs(10));
    let summary = stats.summary();
    assert_eq!(summary.intervals.len(), 10);
    assert_eq!(
        summary.requests,
        sim.sent.len() as u64 - sim.outstanding.len() as u64
    );
    assert!(summary.requests_by_kind["hinted_part"]
        .total
        .is_some_and(|p| p.count > 20));
    let latency = summary.latency_behind_live.unwrap();
    assert!(latency.p50 > 600.0 && latency.p50 < 2000.0, "{latency:?}");
    let first = summary.time_to_first_part.unwrap();
    assert!(first.max < 200.0, "{first:?}");
    let steady = &summary.intervals[5];
    assert!(
        steady.requests >= 5 && steady.throughput_bps > 500_000,
        "{steady:?}"
    );
    assert_eq!(summary.stalls, 0);

    let mut twice = stats.clone();
    twice.merge(&stats);
    let merged = twice.summary();
    assert_eq!(merged.requests, 2 * summary.requests);
    assert_eq!(merged.intervals.len(), 10);
    assert_eq!(merged.intervals[5].requests, 2 * steady.requests);
    assert_eq!(
        twice.request_count(RequestKind::Part),
        2 * stats.request_count(RequestKind::Part)
    );
    let json = serde_json::to_string(&merged).unwrap();
    assert!(json.contains("\"latency_behind_live\""));
}

#[test]
fn stats_count_errors_stalls_and_switches() {
    let mut stats = Stats::new();
    stats.record(&Event::Error { kind: "http_503" });
    stats.record(&Event::Error { kind: "http_503" });
    stats.record(&Event::StallStart);
    stats.record(&Event::StallEnd {
        duration: Duration::from_millis(1500),
    });
    stats.record(&Event::Switch {
        from: 1,
        to: 0,
        reason: "stall",
    });
    stats.record(&Event::Request {
        kind: RequestKind::Part,
        track: Track::Main,
        status: None,
        ttfb: Duration::ZERO,
        total: Duration::ZERO,
        bytes: 0,
    });
    stats.advance_to(Duration::from_millis(2500));
    let summary = stats.summary();
    assert_eq!(summary.errors["http_503"], 2);
    assert_eq!((summary.stalls, summary.switches), (1, 1));
    let stall = summary.stall_duration.unwrap();
    assert!((stall.max - 1500.0).abs() < 20.0, "{stall:?}");
    assert_eq!(summary.requests_by_kind["part"].failed, 1);
    assert_eq!(summary.intervals.len(), 2, "second 0 and an empty second 1");
    assert_eq!(summary.intervals[0].errors, 2);
    assert_eq!(
        summary.intervals[1],
        crate::stats::Interval {
            second: 1,
            ..Default::default()
        }
    );
}
