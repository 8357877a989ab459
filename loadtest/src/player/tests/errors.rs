//! 503, 404, 400 and network failures.

use std::time::Duration;

use super::{fixed, Sim};
use crate::player::{Event, Failure, Outcome, Player, PlayerConfig, RequestKind};

const ONE: [u64; 1] = [1_000_000];

#[test]
fn playlist_503_is_retried_after_backoff_without_a_storm() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    sim.run_until(sim.at(5.0));
    let (from, to) = (sim.at(5.0), sim.at(10.0));
    sim.server.playlist_fault = Some((503, to));
    sim.run_until(to);
    let during = sim.sent_between(from, to);
    assert!(
        during.len() <= 15,
        "{} requests in 5 s of 503s",
        during.len()
    );
    let reloads: Vec<_> = during
        .iter()
        .filter(|r| r.kind == RequestKind::BlockingPlaylist)
        .collect();
    assert!(reloads.len() >= 5, "kept retrying: {}", reloads.len());
    // The retry is the same blocking request.
    let urls: std::collections::HashSet<&str> = reloads.iter().map(|r| r.url.as_str()).collect();
    assert!(urls.len() <= 2, "{urls:?}");
    let errors = sim.events_matching(|e| matches!(e, Event::Error { kind: "http_503" }));
    assert!(errors.len() >= 5);
    sim.run_until(sim.at(20.0));
    let after = sim.sent_between(sim.at(12.0), sim.at(20.0));
    assert!(
        after
            .iter()
            .filter(|r| r.kind == RequestKind::HintedPart)
            .count()
            > 15,
        "recovered"
    );
}

#[test]
fn part_404_waits_for_the_next_playlist_before_refetching() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    sim.server.part_404_once = Some("p10.0.m4s".into());
    sim.run_secs(2.0);
    let paths: Vec<(RequestKind, &str)> = sim
        .sent
        .iter()
        .map(|(_, r)| (r.kind, Sim::path(r)))
        .collect();
    let failed = paths
        .iter()
        .position(|(_, p)| *p == "v0/p10.0.m4s")
        .unwrap();
    assert_eq!(
        paths[failed + 1].0,
        RequestKind::BlockingPlaylist,
        "{paths:?}"
    );
    let retry = paths
        .iter()
        .skip(failed + 1)
        .position(|(_, p)| *p == "v0/p10.0.m4s");
    let retry = retry
        .map(|i| i + failed + 1)
        .expect("refetched after the playlist");
    assert!(retry > failed + 1);
    let (sent_404, _) = sim.sent[failed];
    let (sent_retry, _) = sim.sent[retry];
    assert!(
        sent_retry - sent_404 >= Duration::from_millis(200),
        "waited for the reload"
    );
    assert_eq!(
        sim.events_matching(|e| matches!(e, Event::Error { kind: "http_404" }))
            .len(),
        1
    );
}

#[test]
fn blocking_400_falls_back_to_plain_reloads_at_part_pace() {
    let mut sim = Sim::new(fixed(), ONE.to_vec());
    sim.server.reject_blocking = true;
    sim.run_secs(10.0);
    let kinds: Vec<RequestKind> = sim.sent.iter().map(|(_, r)| r.kind).collect();
    let rejected = kinds
        .iter()
        .position(|k| *k == RequestKind::BlockingPlaylist)
        .unwrap();
    let next_playlist = kinds[rejected + 1..]
        .iter()
        .find(|k| matches!(k, RequestKind::Playlist | RequestKind::BlockingPlaylist));
    assert_eq!(next_playlist, Some(&RequestKind::Playlist));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == RequestKind::BlockingPlaylist)
            .count(),
        1
    );
    let window = sim.sent_between(sim.at(5.0), sim.at(10.0));
    let playlists = window
        .iter()
        .filter(|r| r.kind == RequestKind::Playlist)
        .count();
    assert!(
        (10..=16).contains(&playlists),
        "{playlists} plain reloads in 5 s"
    );
    assert!(window
        .iter()
        .any(|r| r.kind == RequestKind::HintedPart || r.kind == RequestKind::Part));
}

#[test]
fn network_failures_back_off_exponentially_with_a_cap() {
    let config = PlayerConfig::default();
    let (base, cap) = (config.retry_base, config.retry_max);
    let t0 = std::time::Instant::now();
    let wall = std::time::SystemTime::UNIX_EPOCH;
    let mut player = Player::new("http://cdn.test/x.m3u8", config, t0, wall);
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..10 {
        let request = player.poll_request().unwrap();
        assert!(
            player.poll_request().is_none(),
            "one master request at a time"
        );
        player.handle_response(
            now,
            wall,
            request.id,
            Outcome::Failed {
                kind: Failure::Protocol,
                error: "reset".into(),
            },
        );
        let at = player.poll_timeout().unwrap();
        delays.push(at - now);
        now = at;
        player.handle_timeout(now, wall);
    }
    assert_eq!(delays[0], base);
    assert_eq!(delays[1], base * 2);
    assert_eq!(*delays.last().unwrap(), cap);
    let errors = std::iter::from_fn(|| player.poll_event())
        .filter(|e| matches!(e, Event::Error { kind: "protocol" }))
        .count();
    assert_eq!(errors, 10);
}

#[test]
fn garbage_answers_never_panic_and_are_parse_errors() {
    let t0 = std::time::Instant::now();
    let wall = std::time::SystemTime::UNIX_EPOCH;
    let mut player = Player::new("http://cdn.test/x.m3u8", fixed(), t0, wall);
    let bodies: [&[u8]; 4] = [
        b"",
        b"\xff\xfe",
        b"#EXTM3U\n#EXT-X-STREAM-INF:\n",
        b"#EXTM3U\n#EXT-X-PART:DURATION=x\n",
    ];
    let mut now = t0;
    for body in bodies {
        now += Duration::from_secs(10);
        player.handle_timeout(now, wall);
        let request = player.poll_request().unwrap();
        let outcome = Outcome::Ok {
            status: 200,
            body: bytes::Bytes::from_static(body),
            ttfb: Duration::ZERO,
            total: Duration::ZERO,
        };
        player.handle_response(now, wall, request.id, outcome);
    }
    let parse_errors = std::iter::from_fn(|| player.poll_event())
        .filter(|e| matches!(e, Event::Error { kind: "parse" }))
        .count();
    assert!(parse_errors >= 3, "{parse_errors}");
}
