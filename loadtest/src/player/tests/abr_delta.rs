//! Rendition switching by throughput, and delta updates.

use std::sync::Arc;

use livecdn_shared::playlist::MediaPlaylist;

use super::Sim;
use crate::player::{Event, ParseCache, PlayerConfig, RequestKind};

const LADDER: [u64; 3] = [500_000, 1_000_000, 2_000_000];

fn switches(sim: &Sim) -> Vec<(usize, usize, &'static str)> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Switch { from, to, reason } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn switches_up_on_a_fast_link_down_on_a_slow_one_and_back_up() {
    let mut sim = Sim::new(PlayerConfig::default(), LADDER.to_vec());
    sim.run_until(sim.at(10.0));
    assert_eq!(
        sim.player.rendition(),
        2,
        "fast link: top variant; {:?}",
        switches(&sim)
    );
    assert!(switches(&sim).iter().all(|(from, to, _)| to > from));

    sim.server.link_bps = 700_000;
    sim.run_until(sim.at(20.0));
    let down: Vec<_> = switches(&sim)
        .into_iter()
        .filter(|(f, t, _)| t < f)
        .collect();
    assert!(!down.is_empty(), "switched down: {:?}", switches(&sim));
    assert_eq!(sim.player.rendition(), 0, "{:?}", switches(&sim));
    // The new rendition's playlist, then its init, then media from it.
    let after = sim.sent_between(sim.at(10.0), sim.at(20.0));
    assert!(after
        .iter()
        .any(|r| r.rendition == 0 && r.kind == RequestKind::Init));
    assert!(after.iter().any(|r| r.rendition == 0 && r.kind.is_media()));

    sim.server.link_bps = 50_000_000;
    sim.run_until(sim.at(32.0));
    assert_eq!(sim.player.rendition(), 2, "{:?}", switches(&sim));
    assert_eq!(sim.max_blocking_in_flight, 1);
}

#[test]
fn switch_continues_at_the_same_position_without_refetching() {
    let mut sim = Sim::new(PlayerConfig::default(), LADDER.to_vec());
    sim.run_until(sim.at(12.0));
    let mut positions = std::collections::HashSet::new();
    for (_, r) in &sim.sent {
        if r.kind.is_media() {
            let file = Sim::path(r)
                .split_once('/')
                .map(|(_, f)| f.to_owned())
                .unwrap();
            assert!(
                positions.insert(file.clone()),
                "{file} fetched in two renditions"
            );
        }
    }
    assert!(switches(&sim).len() >= 2);
}

#[test]
fn delta_updates_ask_for_skip_and_merge_into_the_full_playlist() {
    let config = PlayerConfig {
        use_delta: true,
        abr: false,
        ..PlayerConfig::default()
    };
    let mut sim = Sim::new(config, LADDER[..1].to_vec());
    sim.server.delta = true;
    sim.run_secs(20.0);
    let playlists: Vec<_> = sim
        .sent
        .iter()
        .filter(|(_, r)| {
            matches!(
                r.kind,
                RequestKind::Playlist | RequestKind::BlockingPlaylist
            )
        })
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        playlists[0].kind,
        RequestKind::Playlist,
        "first a full playlist"
    );
    assert!(playlists.len() > 50);
    for r in &playlists[1..] {
        assert!(r.url.ends_with("&_HLS_skip=YES"), "{}", r.url);
    }
    assert!(sim.server.delta_responses > 50);
    assert!(sim
        .events_matching(|e| matches!(e, Event::Error { .. } | Event::StallStart))
        .is_empty());
    assert!(
        sim.events_matching(|e| matches!(e, Event::Latency { .. }))
            .len()
            > 50
    );
}

#[test]
fn merged_delta_equals_the_full_playlist() {
    let sim = {
        let mut sim = Sim::new(PlayerConfig::default(), LADDER.to_vec());
        sim.server.delta = true;
        sim
    };
    for n in [62, 66, 67, 72, 100] {
        let reparse = |p: MediaPlaylist| MediaPlaylist::parse(&p.render()).unwrap();
        let previous = reparse(sim.server.playlist(n - 1, false));
        let full = reparse(sim.server.playlist(n, false));
        let delta = reparse(sim.server.playlist(n, true));
        assert!(delta.skip.as_ref().is_some_and(|s| s.skipped_segments > 0));
        let merged = crate::player::window::merge_delta(&previous, delta).unwrap();
        assert_eq!(merged.next_part(), full.next_part());
        for i in 0..full.segments.len() {
            assert_eq!(
                merged.map_uri_for(i),
                Some("init.mp4"),
                "n = {n}, segment {i}"
            );
        }
        assert_eq!(merged.segments, full.segments, "n = {n}");
    }
}

/// Viewers that share a [`ParseCache`] share the parsed (and merged)
/// playlists of byte-identical responses, and behave exactly as a viewer
/// parsing alone: the same requests at the same instants, the same events.
#[test]
fn players_sharing_parses_behave_as_one_parsing_alone() {
    let cache = Arc::new(ParseCache::new());
    let run = |cache: Option<&Arc<ParseCache>>| {
        let config = PlayerConfig {
            use_delta: true,
            ..PlayerConfig::default()
        };
        let mut sim = Sim::with_server(config, LADDER.to_vec(), |s| {
            s.audio = true;
            s.delta = true;
        });
        if let Some(cache) = cache {
            sim.player.share_parses(cache.clone());
        }
        sim
    };
    // Two viewers in step, as a run's viewers are, and one alone.
    let (mut a, mut b, mut alone) = (run(Some(&cache)), run(Some(&cache)), run(None));
    for step in 1..=200 {
        let secs = f64::from(step) * 0.1;
        a.run_until(a.at(secs));
        b.run_until(b.at(secs));
    }
    alone.run_until(alone.at(20.0));
    assert!(a.server.delta_responses > 20, "delta updates were merged");
    let trace = |sim: &Sim| {
        let t0 = sim.server.t0;
        let sent: Vec<String> = sim
            .sent
            .iter()
            .map(|(at, r)| format!("{:?} {:?} {}", *at - t0, r.kind, Sim::path(r)))
            .collect();
        let events: Vec<String> = sim
            .events
            .iter()
            .map(|(at, e)| format!("{:?} {e:?}", *at - t0))
            .collect();
        (sent, events)
    };
    assert_eq!(trace(&a), trace(&alone));
    assert_eq!(trace(&b), trace(&alone));
    for track in [0, 1] {
        let (pa, pb) = (
            &a.player.tracks[track].playlist,
            &b.player.tracks[track].playlist,
        );
        let (Some(pa), Some(pb)) = (pa, pb) else {
            panic!("track {track} has no playlist");
        };
        assert!(Arc::ptr_eq(pa, pb), "track {track}: one shared playlist");
    }
}
