//! Startup, steady state, a publisher pause and a discontinuity.

use std::collections::HashSet;
use std::time::Duration;

use super::server::{PART, PARTS_PER_SEGMENT};
use super::{fixed, Sim};
use crate::player::{Event, RequestKind};

const ONE: [u64; 1] = [1_000_000];

#[test]
fn startup_fetches_master_playlist_init_then_three_parts_back_then_one_reload_and_hint() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    sim.run_secs(0.25);
    let got: Vec<(RequestKind, &str)> = sim
        .sent
        .iter()
        .map(|(_, r)| (r.kind, Sim::path(r)))
        .collect();
    // 62 parts are out at start: the newest is p10.1, so PART-HOLD-BACK (3
    // parts) behind live starts at p9.5.
    let want = [
        (RequestKind::Master, "master.m3u8"),
        (RequestKind::Playlist, "v0/index.m3u8"),
        (RequestKind::Init, "v0/init.mp4"),
        (RequestKind::Part, "v0/p9.5.m4s"),
        (RequestKind::Part, "v0/p10.0.m4s"),
        (RequestKind::Part, "v0/p10.1.m4s"),
        (
            RequestKind::BlockingPlaylist,
            "v0/index.m3u8?_HLS_msn=10&_HLS_part=2",
        ),
        (RequestKind::HintedPart, "v0/p10.2.m4s"),
    ];
    assert_eq!(got, want);
    let first = sim.events_matching(|e| matches!(e, Event::FirstPart { .. }));
    assert_eq!(first.len(), 1);
    assert!(matches!(first[0].1, Event::FirstPart { after } if after < Duration::from_millis(200)));
}

#[test]
fn steady_state_is_one_reload_and_one_part_per_part_without_stalls() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    sim.run_secs(31.0);
    let (window, _) = two_requests_per_part(&sim);
    assert!(window.iter().all(|r| matches!(
        r.kind,
        RequestKind::BlockingPlaylist | RequestKind::HintedPart | RequestKind::Part
    )));

    let mut seen = HashSet::new();
    for (_, r) in &sim.sent {
        if r.kind.is_media() {
            assert!(
                seen.insert(Sim::path(r).to_owned()),
                "fetched twice: {}",
                r.url
            );
        }
    }
    assert!(sim
        .events_matching(|e| matches!(e, Event::StallStart | Event::Error { .. }))
        .is_empty());

    let hold_back = Duration::from_millis(999);
    let latencies = latencies(&sim);
    assert!(latencies.len() > 80, "{} samples", latencies.len());
    for latency in latencies {
        assert!(
            latency >= hold_back - PART && latency <= hold_back + Duration::from_secs(1),
            "{latency:?} behind live"
        );
    }
}

/// A server that keeps a finished segment open and already hints the next
/// segment's first part (as livecdn's origin does): no part is fetched, or
/// played, twice, and latency does not creep. (The race that once made the
/// player fetch such a part twice needs real timing; `tests/e2e_loadtest.rs`
/// covers it against the real origin.)
#[test]
fn a_hint_for_the_next_segment_is_not_fetched_again_when_listed() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    sim.server.close_late = true;
    sim.run_secs(31.0);
    let mut seen = HashSet::new();
    for (_, r) in &sim.sent {
        if r.kind.is_media() {
            assert!(
                seen.insert(Sim::path(r).to_owned()),
                "fetched twice: {}",
                r.url
            );
        }
    }
    let latencies = latencies(&sim);
    let (first, last) = (latencies[5], latencies[latencies.len() - 1]);
    assert!(
        last <= first + PART,
        "latency crept from {first:?} to {last:?}"
    );
}

#[test]
fn publisher_pause_stalls_for_the_pause_minus_the_buffer() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    let pause_from = sim.at(10.0);
    sim.server.pause = Some((pause_from, Duration::from_secs(5)));
    sim.run_until(pause_from);
    let buffered = sim.player.buffer_level();
    let sent_before = sim.sent.len();
    sim.run_until(sim.at(14.9));
    assert!(
        sim.sent.len() - sent_before <= 2,
        "no polling storm while the server is silent"
    );
    sim.run_until(sim.at(25.0));

    sim.assert_one_stall_of(Duration::from_secs(5).saturating_sub(buffered));
    let parts_after = sim.sent_between(sim.at(16.0), sim.at(25.0));
    assert!(
        parts_after
            .iter()
            .any(|r| r.kind == RequestKind::HintedPart),
        "playback resumed"
    );
}

#[test]
fn discontinuity_with_new_map_refetches_init_before_its_parts() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    // 62 parts out at start; segment 13 begins 16 parts (5.3 s) later.
    sim.server.discontinuity_at = Some(13);
    sim.run_secs(12.0);
    let media: Vec<&str> = sim
        .sent
        .iter()
        .filter(|(_, r)| r.kind == RequestKind::Init || r.kind.is_media())
        .map(|(_, r)| Sim::path(r))
        .collect();
    let inits: Vec<usize> = media
        .iter()
        .enumerate()
        .filter(|(_, p)| p.contains("init"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(inits.len(), 2, "{media:?}");
    assert_eq!(media[inits[1]], "v0/init-b.mp4");
    let first_new = media.iter().position(|p| p.starts_with("v0/p13.")).unwrap();
    assert!(
        inits[1] < first_new,
        "new init before segment 13: {media:?}"
    );
    assert!(
        media.iter().filter(|p| p.starts_with("v0/p13.")).count() == PARTS_PER_SEGMENT as usize
    );
    assert!(sim
        .events_matching(|e| matches!(e, Event::StallStart))
        .is_empty());
}

/// Every latency-behind-live sample the player reported.
fn latencies(sim: &Sim) -> Vec<Duration> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Latency { behind_live } => Some(*behind_live),
            _ => None,
        })
        .collect()
}

/// Without hints (as hls.js 1.7 plays): one blocking reload and one part
/// per part, each part asked for only once a playlist lists it (so it is
/// already published), never a hinted one, and playback still keeps up.
#[test]
fn without_hints_each_part_is_fetched_once_listed() {
    let config = crate::player::PlayerConfig {
        use_hints: false,
        ..fixed()
    };
    let mut sim = Sim::new(config, ONE.to_vec());
    sim.run_secs(31.0);
    let (_, parts_published) = two_requests_per_part(&sim);
    let mut seen = HashSet::new();
    let mut parts = 0;
    for (at, r) in &sim.sent {
        assert_ne!(r.kind, RequestKind::HintedPart, "{}", r.url);
        if r.kind != RequestKind::Part {
            continue;
        }
        parts += 1;
        assert!(
            seen.insert(Sim::path(r).to_owned()),
            "fetched twice: {}",
            r.url
        );
        // `v0/pMSN.PART.m4s`: its place in the publishing order.
        let name = Sim::path(r)
            .trim_start_matches("v0/p")
            .trim_end_matches(".m4s");
        let (msn, part) = name.split_once('.').unwrap();
        let index = msn.parse::<u64>().unwrap() * PARTS_PER_SEGMENT + part.parse::<u64>().unwrap();
        assert!(
            index < sim.server.count(*at),
            "{} asked for before it was published",
            r.url
        );
    }
    assert!(parts as u64 >= parts_published, "{parts} parts fetched");
    assert!(sim
        .events_matching(|e| matches!(e, Event::StallStart | Event::Error { .. }))
        .is_empty());
    let latencies = latencies(&sim);
    assert!(latencies.len() > 80, "{} samples", latencies.len());
    for latency in latencies {
        assert!(
            latency <= Duration::from_millis(999) + Duration::from_secs(1),
            "{latency:?} behind live"
        );
    }
}

/// Over seconds 1 to 31 of a 31 s run: never two blocking reloads at once
/// and about two requests (a reload and a part) per published part. Returns
/// the requests of that window and the parts published in it.
fn two_requests_per_part(sim: &Sim) -> (Vec<&crate::player::Request>, u64) {
    assert_eq!(sim.max_blocking_in_flight, 1, "never two blocking reloads");
    let (from, to) = (sim.at(1.0), sim.at(31.0));
    let window = sim.sent_between(from, to);
    let parts_published = sim.server.count(to) - sim.server.count(from);
    let per_part = window.len() as f64 / parts_published as f64;
    assert!(
        (1.8..=2.2).contains(&per_part),
        "{per_part} requests per part"
    );
    (window, parts_published)
}
