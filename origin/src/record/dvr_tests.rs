#![allow(clippy::unwrap_used)]

use super::dvr::extend;
use super::index::Recording;
use super::journal::{Line, MediaKind, RecordingMeta, RenditionMeta, SegmentEntry};
use livecdn_shared::playlist::{MediaPlaylist, SkipRequest};
use std::time::{Duration, UNIX_EPOCH};

const BASE_MS: u64 = 1_800_000_000_000;

/// A live playlist whose window starts at MSN 10 (2 s segments, PDT
/// `BASE_MS + msn * 2 s`), discontinuity sequence 1, an open segment 13.
fn live() -> MediaPlaylist {
    let text = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n\
         #EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:10\n\
         #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MAP:URI=\"init-1.mp4\"\n\
         #EXTINF:2.00000,\n10.m4s\n#EXTINF:2.00000,\n11.m4s\n#EXTINF:2.00000,\n12.m4s\n\
         #EXT-X-PART:DURATION=0.33334,URI=\"13.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.1.m4s\"\n";
    let mut pl = MediaPlaylist::parse(text).unwrap();
    for (i, s) in pl.segments.iter_mut().enumerate() {
        let msn = 10 + i as u64;
        s.program_date_time = Some(UNIX_EPOCH + Duration::from_millis(BASE_MS + msn * 2000));
    }
    pl
}

/// Recorded MSNs `msns` of the source (2 s each), a new init generation
/// and a discontinuity at 6.
fn recorded(msns: impl IntoIterator<Item = u64>) -> Recording {
    let mut r = Recording::new(RecordingMeta {
        stream: "cam".into(),
        id: "20261206T195000Z".into(),
        started_ms: BASE_MS,
    });
    r.apply(&Line::Rendition(RenditionMeta {
        name: "source".into(),
        kind: MediaKind::Video,
        codecs: "avc1.64001f".into(),
        timescale: 90_000,
        width: Some(1280),
        height: Some(720),
        frame_rate: Some(30.0),
        channels: None,
    }));
    for msn in msns {
        r.apply(&Line::Segment(SegmentEntry {
            rendition: "source".into(),
            msn,
            gen: u32::from(msn >= 6),
            start: msn * 180_000,
            duration: 180_000,
            pdt_ms: BASE_MS + msn * 2000,
            discontinuity: msn == 6,
            bytes: 250_000,
        }));
    }
    r
}

#[test]
fn recorded_segments_go_in_front_with_their_maps_and_numbers() {
    // MSN 2 was missed: the unbroken run back from 10 is 3..=9; what the
    // recording also has of the live window is not listed twice.
    let rec = recorded((0..2).chain(3..13));
    let mut pl = live();
    let added = extend(
        &mut pl,
        rec.rendition("source").unwrap(),
        Duration::from_secs(3600),
        None,
    );
    assert_eq!(added, 7);
    assert_eq!(pl.media_sequence, 3);
    // 10's number stays 1; the discontinuity at 6 lies between.
    assert_eq!(pl.discontinuity_sequence, 0);
    let uris: Vec<_> = pl.segments.iter().map(|s| s.uri.clone()).collect();
    assert_eq!(uris[0].as_deref(), Some("3.m4s"));
    assert_eq!(uris[7].as_deref(), Some("10.m4s"));
    assert_eq!(pl.segments.len(), 11);
    let maps: Vec<(usize, &str)> = pl
        .segments
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map_uri.as_deref().map(|m| (i, m)))
        .collect();
    assert_eq!(
        maps,
        [(0, "init.mp4"), (3, "init-1.mp4"), (7, "init-1.mp4")]
    );
    let discs: Vec<usize> = (0..pl.segments.len())
        .filter(|&i| pl.segments[i].discontinuity)
        .collect();
    assert_eq!(discs, [3]);
    // What a client reads back is the same playlist.
    let text = pl.to_string();
    let again = MediaPlaylist::parse(&text).unwrap();
    assert_eq!(again.media_sequence, 3);
    assert_eq!(again.segments.len(), 11);
    assert!(text.contains("#EXTINF:2.00000,\n3.m4s"), "{text}");
}

#[test]
fn the_window_bounds_how_far_back() {
    let rec = recorded(0..13);
    let mut pl = live();
    // Newest PDT is 13's (26 s); 9 s back reaches 17 s: MSNs 9 and up.
    let added = extend(
        &mut pl,
        rec.rendition("source").unwrap(),
        Duration::from_secs(9),
        None,
    );
    assert_eq!(added, 1);
    assert_eq!(pl.media_sequence, 9);
    assert_eq!(pl.discontinuity_sequence, 1);
    assert_eq!(pl.segments[0].map_uri.as_deref(), Some("init-1.mp4"));
}

#[test]
fn a_gap_just_before_the_live_window_adds_nothing() {
    let rec = recorded(0..9);
    let mut pl = live();
    let before = pl.clone();
    assert_eq!(
        extend(
            &mut pl,
            rec.rendition("source").unwrap(),
            Duration::from_secs(3600),
            None
        ),
        0
    );
    assert_eq!(pl, before);
    // A delta update of it: 6.33 s listed, nothing ends 12 s before the end.
    let mut delta = live();
    let source = rec.rendition("source").unwrap();
    extend(
        &mut delta,
        source,
        Duration::from_secs(3600),
        Some(SkipRequest::Yes),
    );
    assert_eq!(delta.skip.as_ref().unwrap().skipped_segments, 0);
    assert_eq!(delta.segments, before.segments);
}

#[test]
fn delta_updates_skip_what_ends_before_can_skip_until() {
    let rec = recorded(0..13);
    let full = {
        let mut pl = live();
        extend(
            &mut pl,
            rec.rendition("source").unwrap(),
            Duration::from_secs(3600),
            None,
        );
        pl
    };
    for kind in [SkipRequest::Yes, SkipRequest::V2] {
        let mut pl = live();
        extend(
            &mut pl,
            rec.rendition("source").unwrap(),
            Duration::from_secs(3600),
            Some(kind),
        );
        let skip = pl.skip.clone().unwrap();
        assert_eq!(pl.version, 9);
        // 13 listed: 10 recorded + 3 live complete (2 s each) + an open
        // segment of one part (0.33334 s); 26.33334 s in all. Skipped:
        // those ending at least 12 s before the end, i.e. ending by
        // 14.33334 s: the first 7 segments.
        assert_eq!(skip.skipped_segments, 7);
        assert_eq!(
            pl.segments.len() as u64 + skip.skipped_segments,
            full.segments.len() as u64
        );
        assert_eq!(pl.media_sequence, full.media_sequence);
        assert_eq!(pl.discontinuity_sequence, full.discontinuity_sequence);
        // The first one sent says which init section it needs.
        assert_eq!(pl.segments[0].uri.as_deref(), Some("7.m4s"));
        assert_eq!(pl.segments[0].map_uri.as_deref(), Some("init-1.mp4"));
        assert_eq!(
            skip.recently_removed_dateranges.is_some(),
            kind == SkipRequest::V2
        );
        let text = pl.to_string();
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=7"), "{text}");
        MediaPlaylist::parse(&text).unwrap();
    }
}
