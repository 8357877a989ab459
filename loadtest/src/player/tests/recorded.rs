//! Playlists recorded from `livecdn up --demo` (`recorded/`: the master, the
//! lowest variant's and the audio rendition's media playlists at one instant,
//! and both blocking reloads for the next part), answered at once on a
//! virtual clock: the player plays the variant and the audio rendition the
//! master names, each from the right part, and asks each for its own next
//! part.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::fixed;
use crate::player::{Outcome, Player, Request, RequestKind, Track};

const BASE: &str = "http://127.0.0.1:8081/live/demo";

fn recorded(path: &str) -> Option<&'static str> {
    Some(match path {
        "master.m3u8" => include_str!("recorded/master.m3u8"),
        "144p/index.m3u8" => include_str!("recorded/144p.m3u8"),
        "audio/index.m3u8" => include_str!("recorded/audio.m3u8"),
        "144p/index.m3u8?_HLS_msn=9&_HLS_part=3" => include_str!("recorded/144p-9.3.m3u8"),
        "audio/index.m3u8?_HLS_msn=9&_HLS_part=3" => include_str!("recorded/audio-9.3.m3u8"),
        _ => return None,
    })
}

/// Answers every request at once (playlists from `recorded/`, media as a
/// few bytes) until the player asks for something not recorded; returns
/// every request sent.
fn play(player: &mut Player, now: Instant, wall: SystemTime) -> Vec<Request> {
    let mut sent = Vec::new();
    let mut pending: Vec<Request> = Vec::new();
    for _ in 0..200 {
        while let Some(request) = player.poll_request() {
            sent.push(request.clone());
            pending.push(request);
        }
        let Some(i) = pending.iter().position(|r| {
            let path = r.url.strip_prefix(BASE).unwrap().trim_start_matches('/');
            r.kind != RequestKind::BlockingPlaylist || recorded(path).is_some()
        }) else {
            break;
        };
        let request = pending.remove(i);
        let path = request
            .url
            .strip_prefix(BASE)
            .unwrap()
            .trim_start_matches('/');
        let body = match recorded(path) {
            Some(text) => Bytes::from_static(text.as_bytes()),
            None if request.kind.is_media() || request.kind == RequestKind::Init => {
                Bytes::from_static(&[0; 1000])
            }
            None => panic!("not recorded: {path}"),
        };
        let outcome = Outcome::Ok {
            status: 200,
            body,
            ttfb: Duration::from_millis(1),
            total: Duration::from_millis(2),
        };
        player.handle_response(now, wall, request.id, outcome);
        while player.poll_event().is_some() {}
    }
    sent
}

#[test]
fn livecdn_master_plays_the_lowest_variant_and_its_audio_rendition_each_from_its_part() {
    let now = Instant::now();
    // Just after the recorded instant: segment 9 started at 14:13:09.049Z
    // and held about 0.99 s of parts.
    let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_615_990_100);
    let mut player = Player::new(&format!("{BASE}/master.m3u8"), fixed(), now, wall);
    let sent = play(&mut player, now, wall);
    let got: Vec<(Track, RequestKind, &str)> = sent
        .iter()
        .map(|r| {
            let path = r.url.strip_prefix(BASE).unwrap().trim_start_matches('/');
            (r.track, r.kind, path)
        })
        .collect();
    let (m, a) = (Track::Main, Track::Audio);
    use RequestKind::{BlockingPlaylist, HintedPart, Init, Master, Part, Playlist};
    // Video walks back from PART-HOLD-BACK (1.009 s) to its keyframe part
    // 8.3; audio (every part independent) waits for the first video part,
    // then starts at 8.5, which holds the presentation start. Each track then
    // asks for 9.3 with its hint in flight, is answered, and asks for 9.4.
    let want = [
        (m, Master, "master.m3u8"),
        (m, Playlist, "144p/index.m3u8"),
        (a, Playlist, "audio/index.m3u8"),
        (m, Init, "144p/init.mp4"),
        (m, Part, "144p/8.3.m4s"),
        (m, Part, "144p/8.4.m4s"),
        (a, Init, "audio/init.mp4"),
        (m, Part, "144p/8.5.m4s"),
        (a, Part, "audio/8.5.m4s"),
        (m, Part, "144p/9.0.m4s"),
        (a, Part, "audio/9.0.m4s"),
        (m, Part, "144p/9.1.m4s"),
        (a, Part, "audio/9.1.m4s"),
        (m, Part, "144p/9.2.m4s"),
        (a, Part, "audio/9.2.m4s"),
        (
            m,
            BlockingPlaylist,
            "144p/index.m3u8?_HLS_msn=9&_HLS_part=3",
        ),
        (m, HintedPart, "144p/9.3.m4s"),
        (
            a,
            BlockingPlaylist,
            "audio/index.m3u8?_HLS_msn=9&_HLS_part=3",
        ),
        (a, HintedPart, "audio/9.3.m4s"),
        (
            m,
            BlockingPlaylist,
            "144p/index.m3u8?_HLS_msn=9&_HLS_part=4",
        ),
        (m, HintedPart, "144p/9.4.m4s"),
        (
            a,
            BlockingPlaylist,
            "audio/index.m3u8?_HLS_msn=9&_HLS_part=4",
        ),
        (a, HintedPart, "audio/9.4.m4s"),
    ];
    assert_eq!(got, want);
    assert!(player.has_audio());
}
