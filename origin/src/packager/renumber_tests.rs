//! Renumbering when a hub takes a stream over in a cluster: the window
//! moves up to the new MSNs (the segment in progress goes on), every
//! rendition agrees, and later tracks start at the floors.

#![allow(clippy::unwrap_used)]

use super::tests::Feed;
use super::*;
use livecdn_cluster::Rebase;
use livecdn_shared::playlist::MediaPlaylist;

const TAKEOVER: Rebase = Rebase {
    msn: 100,
    discontinuities: 4,
    init_gen: 3,
};

fn playlist(p: &Packager, name: &str) -> MediaPlaylist {
    MediaPlaylist::parse(&p.media_playlist(name, None).unwrap().to_string()).unwrap()
}

#[test]
fn the_window_moves_up_to_the_new_msns_and_the_open_segment_goes_on() {
    let mut f = Feed::new(true, true);
    f.run_until(9_100.0);
    let before = f.p.position();
    let v = f.p.track(SOURCE).unwrap();
    let (first, open) = (v.segments()[0].msn, v.open_segment().unwrap().msn);
    let listed = v.segments().len();
    let parts = v.open_segment().unwrap().parts.len();
    assert!(before.next_msn < TAKEOVER.msn && parts > 0 && listed > 2);

    let after = f.p.rebase(TAKEOVER);
    let moved = TAKEOVER.msn - first;
    assert_eq!(after.next_msn, open + moved + 1);
    assert_eq!(after.init_gen, TAKEOVER.init_gen);
    for name in [SOURCE, AUDIO] {
        let t = f.p.track(name).unwrap();
        assert!(
            t.segments().iter().all(|s| s.msn >= TAKEOVER.msn),
            "{name} keeps a segment numbered below the takeover"
        );
        assert!(t.lookup_part(open, 0, 0) == PartLookup::Gone, "{name}");
    }
    let v = f.p.track(SOURCE).unwrap();
    assert_eq!(v.segments().len(), listed, "the window stays listed");
    let kept = v.open_segment().unwrap();
    assert_eq!((kept.msn, kept.parts.len()), (open + moved, parts));
    assert!(matches!(
        v.lookup_part(open + moved, 0, 0),
        PartLookup::Available { .. }
    ));
    assert!(f.p.init(SOURCE, TAKEOVER.init_gen).is_some());
    assert!(
        f.p.init(SOURCE, 0).is_none(),
        "the old generation's name is gone"
    );

    // The playlists say so: the media sequence is the takeover's, one
    // discontinuity (the switch) slid out before it, the map names the
    // new generation; the next segments follow on.
    f.run_until(15_000.0);
    for name in [SOURCE, AUDIO] {
        let pl = playlist(&f.p, name);
        assert_eq!(pl.media_sequence, TAKEOVER.msn, "{name}");
        assert_eq!(
            pl.discontinuity_sequence, TAKEOVER.discontinuities,
            "{name}"
        );
        assert!(pl.segments.iter().all(|s| !s.discontinuity), "{name}");
        assert!(pl.segments.len() > listed, "{name}: {}", pl.segments.len());
        assert_eq!(pl.map_uri_for(0), Some("init-3.mp4"), "{name}");
    }
    let v = f.p.track(SOURCE).unwrap();
    let msns: Vec<u64> = v.segments().iter().map(|s| s.msn).collect();
    assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{msns:?}");
    // Audio and video still share MSN and part numbers.
    let a = f.p.track(AUDIO).unwrap();
    assert_eq!(a.last_complete_msn(), v.last_complete_msn());
}

#[test]
fn numbers_never_move_down_and_later_tracks_start_at_the_floors() {
    // A hub already past the takeover's MSN keeps its numbers.
    let mut f = Feed::new(true, true);
    f.run_until(60_000.0);
    let v = f.p.track(SOURCE).unwrap();
    let (first, open) = (v.segments()[0].msn, v.open_segment().unwrap().msn);
    assert!(first > 10);
    f.p.rebase(Rebase {
        msn: first - 10,
        ..TAKEOVER
    });
    let v = f.p.track(SOURCE).unwrap();
    assert_eq!(
        (v.segments()[0].msn, v.open_segment().unwrap().msn),
        (first, open)
    );

    // A hub with no media yet (the claim comes as the publisher
    // attaches), and a rung whose encoder starts afterwards.
    let mut f = Feed::new(true, true);
    assert_eq!(f.p.rebase(TAKEOVER).next_msn, TAKEOVER.msn);
    f.run_until(5_000.0);
    let pl = playlist(&f.p, SOURCE);
    assert_eq!(pl.media_sequence, TAKEOVER.msn);
    assert_eq!(pl.discontinuity_sequence, TAKEOVER.discontinuities);
    assert_eq!(pl.map_uri_for(0), Some("init-3.mp4"));
    assert_eq!(f.p.position().discontinuities, TAKEOVER.discontinuities);
    assert!(f.p.handle_rung_config("240p", super::tests::video_config()));
    let rung = f.p.track("240p").unwrap();
    assert!(rung.next_msn() >= TAKEOVER.msn);
    assert_eq!(rung.init_gen(), TAKEOVER.init_gen);
}
