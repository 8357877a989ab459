//! Catching up with live like hls.js with `maxLiveSyncPlaybackRate` above 1:
//! a player that started far behind plays faster until it is near its
//! target; without it (the default) it stays where it started; each stall
//! raises the target by a second, so after a stall it stays behind.

use std::time::Duration;

use super::{fixed, Sim};
use crate::player::{Event, PlayerConfig};

const ONE: [u64; 1] = [1_000_000];

/// The median latency behind live sampled in the last `secs` of the run.
fn late_latency(sim: &Sim, secs: f64) -> Duration {
    let from = sim.now - Duration::from_secs_f64(secs);
    let mut late: Vec<Duration> = sim
        .events
        .iter()
        .filter(|(t, _)| *t >= from)
        .filter_map(|(_, e)| match e {
            Event::Latency { behind_live } => Some(*behind_live),
            _ => None,
        })
        .collect();
    late.sort();
    assert!(late.len() > 5, "{} samples", late.len());
    late[late.len() / 2]
}

/// Starts 2.8 s behind live (mid-part, so the first part does not run out
/// before the next arrives: that start-up stall would raise the target).
fn late_start(rate: f64) -> PlayerConfig {
    PlayerConfig {
        start_behind: Some(Duration::from_millis(2800)),
        max_live_sync_playback_rate: rate,
        ..fixed()
    }
}

#[test]
fn a_late_start_catches_up_to_the_hold_back_only_with_a_live_sync_rate() {
    let mut stays = Sim::with_audio(late_start(1.0), ONE.to_vec());
    stays.run_secs(20.0);
    let behind = late_latency(&stays, 5.0);
    assert!(behind > Duration::from_millis(2700), "{behind:?}");

    let mut catches_up = Sim::with_audio(late_start(1.5), ONE.to_vec());
    catches_up.run_secs(20.0);
    let caught_up = late_latency(&catches_up, 5.0);
    let mut normal = Sim::with_audio(fixed(), ONE.to_vec());
    normal.run_secs(20.0);
    let reference = late_latency(&normal, 5.0);
    // Catching up stops once one second or less is buffered: about where a
    // player that started at the hold-back point plays.
    assert!(
        caught_up.abs_diff(reference) <= Duration::from_millis(350),
        "caught up to {caught_up:?}, a prompt start plays at {reference:?}"
    );
    assert!(catches_up
        .events_matching(|e| matches!(e, Event::StallStart))
        .is_empty());
}

#[test]
fn a_stall_raises_the_target_latency_by_a_second() {
    let run = |increase: Duration| {
        let config = PlayerConfig {
            max_live_sync_playback_rate: 1.5,
            live_sync_on_stall_increase: increase,
            ..fixed()
        };
        let mut sim = Sim::with_audio(config, ONE.to_vec());
        sim.run_until(sim.at(5.0));
        // Two seconds of 503s for every playlist: the player runs dry
        // while the stream goes on, then fetches what it missed (a pause
        // of the publisher would not do: its media stays late for good).
        sim.server.playlist_fault = Some((503, sim.at(7.0)));
        sim.run_until(sim.at(30.0));
        let stalls = sim.events_matching(|e| matches!(e, Event::StallStart));
        assert_eq!(stalls.len(), 1);
        late_latency(&sim, 5.0)
    };
    let with_increase = run(Duration::from_secs(1));
    let without = run(Duration::ZERO);
    // The stall left it about 1.8 s behind, within the raised target
    // (1 s + 1 s): no catching up.
    assert!(
        with_increase > Duration::from_millis(1700),
        "stays where the stall left it: {with_increase:?}"
    );
    assert!(
        without < Duration::from_millis(1500),
        "catches up again: {without:?}"
    );
}
