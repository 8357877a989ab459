//! A separate audio rendition (`EXT-X-MEDIA:TYPE=AUDIO` in the variant's
//! `AUDIO` group), followed like hls.js's audio stream controller: its own
//! playlist loop with blocking reloads, parts, preload hints, init section
//! and delta updates; no switching with ABR; playback needs both tracks.

use std::collections::HashSet;
use std::time::Duration;

use super::server::PART;
use super::{fixed, Sim};
use crate::player::{Event, PlayerConfig, Request, RequestKind, Track};

const ONE: [u64; 1] = [1_000_000];
const LADDER: [u64; 3] = [500_000, 1_000_000, 2_000_000];

fn audio_requests(sim: &Sim) -> Vec<&Request> {
    sim.sent
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.track == Track::Audio)
        .collect()
}

/// hls.js's order: both playlists right after the master; audio media only
/// once the main track's first fragment is in (its timestamps anchor the
/// audio's: `WAITING_INIT_PTS`); audio loads from the part holding the
/// presentation start the main track chose, init first; then, caught up, one
/// blocking reload for the next audio part and the hinted audio part.
#[test]
fn audio_starts_after_the_first_main_part_at_the_same_point_then_blocks_for_the_next_part() {
    let mut sim = Sim::with_audio(fixed(), ONE.to_vec());
    sim.run_secs(0.3);
    assert!(sim.player.has_audio());
    let got: Vec<(Track, RequestKind, &str)> = sim
        .sent
        .iter()
        .map(|(_, r)| (r.track, r.kind, Sim::path(r)))
        .collect();
    let (m, a) = (Track::Main, Track::Audio);
    let want = [
        (m, RequestKind::Master, "master.m3u8"),
        (m, RequestKind::Playlist, "v0/index.m3u8"),
        (a, RequestKind::Playlist, "a/index.m3u8"),
        (m, RequestKind::Init, "v0/init.mp4"),
        (m, RequestKind::Part, "v0/p9.5.m4s"),
        (m, RequestKind::Part, "v0/p10.0.m4s"),
        (a, RequestKind::Init, "a/init.mp4"),
        (m, RequestKind::Part, "v0/p10.1.m4s"),
        (a, RequestKind::Part, "a/p9.5.m4s"),
        (a, RequestKind::Part, "a/p10.0.m4s"),
        (
            m,
            RequestKind::BlockingPlaylist,
            "v0/index.m3u8?_HLS_msn=10&_HLS_part=2",
        ),
        (m, RequestKind::HintedPart, "v0/p10.2.m4s"),
        (a, RequestKind::Part, "a/p10.1.m4s"),
        (
            a,
            RequestKind::BlockingPlaylist,
            "a/index.m3u8?_HLS_msn=10&_HLS_part=2",
        ),
        (a, RequestKind::HintedPart, "a/p10.2.m4s"),
    ];
    assert_eq!(got, want);
    let first_main = sim
        .sent
        .iter()
        .position(|(_, r)| r.kind == RequestKind::Part)
        .unwrap();
    let (first_main_sent, _) = sim.sent[first_main];
    let first_audio_media = sim
        .sent
        .iter()
        .find(|(_, r)| r.track == Track::Audio && r.kind != RequestKind::Playlist)
        .unwrap()
        .0;
    assert!(first_audio_media > first_main_sent, "audio waits for main");
    assert!(sim
        .events_matching(|e| matches!(e, Event::StallStart | Event::Error { .. }))
        .is_empty());
}

#[test]
fn steady_state_is_a_reload_and_a_part_per_track_per_part_without_a_storm() {
    let mut sim = Sim::with_audio(fixed(), ONE.to_vec());
    sim.run_secs(31.0);
    assert_eq!(sim.max_blocking_in_flight, 1, "never two blocking reloads");
    let (from, to) = (sim.at(1.0), sim.at(31.0));
    let window = sim.sent_between(from, to);
    let parts_published = sim.server.count(to) - sim.server.count(from);
    for track in Track::ALL {
        let n = window.iter().filter(|r| r.track == track).count();
        let per_part = n as f64 / parts_published as f64;
        assert!(
            (1.8..=2.2).contains(&per_part),
            "{track:?}: {per_part} requests per part"
        );
    }
    // Every audio blocking reload asks for the part after the previous one.
    let mut last: Option<(u64, u64)> = None;
    let mut hinted = 0;
    let mut seen = HashSet::new();
    for r in audio_requests(&sim) {
        assert!(Sim::path(r).starts_with("a/"), "{}", r.url);
        if r.kind.is_media() {
            assert!(seen.insert(Sim::path(r).to_owned()), "twice: {}", r.url);
        }
        hinted += usize::from(r.kind == RequestKind::HintedPart);
        if r.kind != RequestKind::BlockingPlaylist {
            continue;
        }
        let query = Sim::path(r).split_once('?').unwrap().1;
        let q = livecdn_shared::playlist::HlsQuery::parse(query).unwrap();
        let at = (q.msn.unwrap(), q.part.unwrap());
        if let Some((msn, part)) = last {
            let next = if part == 5 {
                (msn + 1, 0)
            } else {
                (msn, part + 1)
            };
            assert_eq!(at, next, "blocking reload for the next audio part");
        }
        last = Some(at);
    }
    assert!(hinted > 80, "{hinted} audio hints");
    assert!(sim
        .events_matching(|e| matches!(e, Event::StallStart | Event::Error { .. }))
        .is_empty());
}

/// Video keeps coming, audio does not: the playhead needs both, so it
/// stalls for the audio gap less what was buffered, and the audio loop waits
/// on its one held blocking reload meanwhile.
#[test]
fn audio_running_dry_alone_stalls_playback() {
    let mut sim = Sim::with_audio(fixed(), ONE.to_vec());
    let pause_from = sim.at(10.0);
    sim.server.audio_pause = Some((pause_from, Duration::from_secs(3)));
    sim.run_until(pause_from);
    let buffered = sim.player.buffer_level();
    sim.run_until(sim.at(12.9));
    let during = sim.sent_between(sim.at(10.5), sim.at(12.9));
    let audio = during.iter().filter(|r| r.track == Track::Audio).count();
    assert!(audio <= 1, "no audio polling storm: {audio} requests");
    let video_hints = during
        .iter()
        .filter(|r| r.track == Track::Main && r.kind == RequestKind::HintedPart)
        .count();
    assert!(video_hints >= 6, "video went on: {video_hints} hints");
    sim.run_until(sim.at(20.0));

    sim.assert_one_stall_of(Duration::from_secs(3).saturating_sub(buffered));
    // Back to steady playback: a few hundred ms of buffer, not seconds.
    assert!(
        sim.player.buffer_level() <= 2 * PART,
        "{:?}",
        sim.player.buffer_level()
    );
}

#[test]
fn abr_switches_leave_the_audio_rendition_alone() {
    let mut sim = Sim::with_audio(PlayerConfig::default(), LADDER.to_vec());
    sim.run_until(sim.at(10.0));
    sim.server.link_bps = 700_000;
    sim.run_until(sim.at(20.0));
    let switches = sim.events_matching(|e| matches!(e, Event::Switch { .. }));
    assert!(switches.len() >= 2, "{switches:?}");
    let audio = audio_requests(&sim);
    let plain = audio
        .iter()
        .filter(|r| r.kind == RequestKind::Playlist)
        .count();
    assert_eq!(plain, 1, "the audio playlist is never reloaded afresh");
    assert_eq!(
        audio.iter().filter(|r| r.kind == RequestKind::Init).count(),
        1
    );
    let mut seen = HashSet::new();
    for r in audio.iter().filter(|r| r.kind.is_media()) {
        assert!(seen.insert(Sim::path(r)), "twice: {}", r.url);
    }
    assert!(audio.len() > 100);
}

#[test]
fn audio_reloads_ask_for_delta_updates_too() {
    let config = PlayerConfig {
        use_delta: true,
        ..fixed()
    };
    let mut sim = Sim::with_audio(config, ONE.to_vec());
    sim.server.delta = true;
    sim.run_secs(10.0);
    let reloads: Vec<&Request> = audio_requests(&sim)
        .into_iter()
        .filter(|r| r.kind == RequestKind::BlockingPlaylist)
        .collect();
    assert!(reloads.len() > 20);
    assert!(reloads.iter().all(|r| r.url.ends_with("&_HLS_skip=YES")));
    assert!(sim
        .events_matching(|e| matches!(e, Event::StallStart | Event::Error { .. }))
        .is_empty());
}

#[test]
fn a_media_playlist_url_plays_without_an_audio_track() {
    let mut sim = Sim::with_audio(fixed(), ONE.to_vec());
    let url = format!("{}/v0/index.m3u8", super::server::BASE);
    sim.player = crate::player::Player::new(&url, fixed(), sim.now, sim.server.wall(sim.now));
    sim.run_secs(5.0);
    assert!(!sim.player.has_audio());
    assert!(audio_requests(&sim).is_empty());
    assert!(sim
        .sent
        .iter()
        .any(|(_, r)| r.kind == RequestKind::HintedPart));
}
