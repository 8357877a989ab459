//! Tests for the media playlist model and writer, with render/parse round trips
//! and the fuzz body (kept apart so `media.rs` and `render.rs` stay one concept each).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::parse_tests::APPLE_EXAMPLE;
use super::test_rng::XorShift;
use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

pub(super) fn pdt(secs: u64, millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
}

fn part(msn: u64, index: u64, independent: bool) -> Part {
    Part {
        duration: 0.33334,
        uri: format!("seg{msn}.{index}.m4s"),
        independent,
        gap: false,
    }
}

fn complete(msn: u64) -> Segment {
    Segment {
        duration: 2.00004,
        uri: Some(format!("seg{msn}.m4s")),
        parts: (0..6).map(|i| part(msn, i, i % 3 == 0)).collect(),
        ..Segment::default()
    }
}

/// 3 complete segments with parts, a discontinuity with a new MAP and PDTs, an
/// in-progress segment with 2 parts, a preload hint and 2 rendition reports.
fn realistic() -> MediaPlaylist {
    let mut segments = vec![complete(100), complete(101), complete(102)];
    segments[0].map_uri = Some("init0.mp4".into());
    segments[0].program_date_time = Some(pdt(1_795_596_221, 123));
    segments[2].discontinuity = true;
    segments[2].map_uri = Some("init1.mp4".into());
    segments[2].program_date_time = Some(pdt(1_795_596_300, 0));
    segments[1].parts[4].gap = true;
    let parts = vec![part(103, 0, true), part(103, 1, false)];
    segments.push(Segment {
        duration: parts.iter().map(|p| p.duration).sum(),
        uri: None,
        program_date_time: Some(pdt(1_795_596_302, 1)),
        parts,
        ..Segment::default()
    });
    MediaPlaylist {
        version: 6,
        target_duration: 2,
        part_target: Some(0.33334),
        playlist_type: None,
        server_control: Some(ServerControl {
            can_block_reload: true,
            part_hold_back: Some(1.0),
            hold_back: Some(6.0),
            can_skip_until: Some(12.0),
            can_skip_dateranges: false,
        }),
        media_sequence: 100,
        discontinuity_sequence: 3,
        independent_segments: true,
        skip: None,
        segments,
        preload_hint: Some(PreloadHint {
            hint_type: PreloadHintType::Part,
            uri: "seg103.2.m4s".into(),
        }),
        rendition_reports: vec![
            RenditionReport {
                uri: "../720p/index.m3u8".into(),
                last_msn: 103,
                last_part: Some(1),
            },
            RenditionReport {
                uri: "../audio/index.m3u8".into(),
                last_msn: 102,
                last_part: None,
            },
        ],
        end_list: false,
    }
}

#[test]
fn realistic_playlist_round_trips() -> TestResult {
    let original = realistic();
    let text = original.render();
    assert_eq!(text, original.to_string());
    let parsed = MediaPlaylist::parse(&text)?;
    assert_eq!(parsed, original);
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:3\n"));
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T08:43:41.123Z\n"));
    assert!(text
        .contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:"));
    assert!(text.contains("#EXT-X-PART:DURATION=0.33334,URI=\"seg101.4.m4s\",GAP=YES\n"));
    assert!(text.ends_with(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg103.2.m4s\"\n\
         #EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=103,LAST-PART=1\n\
         #EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=102\n"
    ));
    Ok(())
}

#[test]
fn sequence_helpers_follow_the_rfc() {
    let p = realistic();
    assert_eq!(p.segment_msn(0), 100);
    assert_eq!(p.last_msn(), Some(102));
    assert_eq!(p.next_msn(), 103);
    assert_eq!(p.next_part(), (103, 2));
    assert_eq!(p.last_part(), Some((103, 1)));
    assert_eq!(p.index_of_msn(103), Some(3));
    assert_eq!(p.index_of_msn(104), None);
    assert_eq!(p.index_of_msn(99), None);
    assert_eq!(p.map_uri_for(1), Some("init0.mp4"));
    assert_eq!(p.map_uri_for(3), Some("init1.mp4"));
    assert_eq!(p.map_uri_for(9), None);

    let mut finished = p.clone();
    finished.segments.pop();
    assert_eq!(finished.next_part(), (103, 0));
    assert_eq!(finished.last_part(), Some((102, 5)));
    let empty = MediaPlaylist {
        media_sequence: 7,
        ..MediaPlaylist::default()
    };
    assert_eq!((empty.last_msn(), empty.next_part()), (None, (7, 0)));
    assert_eq!(empty.last_part(), None);
}

#[test]
fn delta_update_renders_skip_and_counts_skipped_segments() -> TestResult {
    let mut delta = realistic();
    delta.version = 9;
    delta.skip = Some(Skip {
        skipped_segments: 2,
        recently_removed_dateranges: Some(vec!["ad-1".into(), "ad-2".into()]),
    });
    delta.segments.drain(..2);
    let text = delta.render();
    assert!(text.contains(
        "#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-SKIP:SKIPPED-SEGMENTS=2,RECENTLY-REMOVED-DATERANGES=\"ad-1\tad-2\"\n\
         #EXT-X-DISCONTINUITY\n"
    ));
    let parsed = MediaPlaylist::parse(&text)?;
    assert_eq!(parsed, delta);
    assert!(parsed.is_delta());
    assert_eq!(parsed.segment_msn(0), 102);
    assert_eq!(parsed.last_msn(), Some(102));
    assert_eq!(parsed.next_part(), (103, 2));

    // v1 skip (no date ranges) and v2 with none removed.
    delta.skip = Some(Skip {
        skipped_segments: 2,
        recently_removed_dateranges: None,
    });
    assert!(delta.render().contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n"));
    delta.skip = Some(Skip {
        skipped_segments: 2,
        recently_removed_dateranges: Some(Vec::new()),
    });
    let text = delta.render();
    assert!(text.contains("SKIPPED-SEGMENTS=2,RECENTLY-REMOVED-DATERANGES=\"\"\n"));
    assert_eq!(MediaPlaylist::parse(&text)?, delta);
    Ok(())
}

#[test]
fn small_playlist_renders_exactly() -> TestResult {
    let playlist = MediaPlaylist {
        version: 6,
        target_duration: 1,
        part_target: Some(0.5),
        server_control: Some(ServerControl {
            can_block_reload: true,
            part_hold_back: Some(1.5),
            hold_back: Some(3.0),
            can_skip_until: Some(6.0),
            can_skip_dateranges: true,
        }),
        media_sequence: 5,
        segments: vec![
            Segment {
                duration: 1.0,
                uri: Some("s5.m4s".into()),
                map_uri: Some("init.mp4".into()),
                program_date_time: Some(pdt(1_795_596_221, 123)),
                parts: vec![
                    Part {
                        duration: 0.5,
                        uri: "s5.0.m4s".into(),
                        independent: true,
                        gap: false,
                    },
                    Part {
                        duration: 0.5,
                        uri: "s5.1.m4s".into(),
                        independent: false,
                        gap: false,
                    },
                ],
                ..Segment::default()
            },
            Segment {
                duration: 1.0,
                uri: Some("s6.m4s".into()),
                gap: true,
                ..Segment::default()
            },
        ],
        end_list: true,
        ..MediaPlaylist::default()
    };
    let expected = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.00000,CAN-SKIP-DATERANGES=YES,HOLD-BACK=3.00000,PART-HOLD-BACK=1.50000
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:5
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T08:43:41.123Z
#EXT-X-PART:DURATION=0.50000,URI=\"s5.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"s5.1.m4s\"
#EXTINF:1.00000,
s5.m4s
#EXT-X-GAP
#EXTINF:1.00000,
s6.m4s
#EXT-X-ENDLIST
";
    assert_eq!(playlist.render(), expected);
    assert_eq!(MediaPlaylist::parse(expected)?, playlist);
    Ok(())
}

#[test]
fn fuzz_media_playlist_survives_seeds_and_mutations() {
    let delta = {
        let mut d = realistic();
        d.version = 9;
        d.skip = Some(Skip {
            skipped_segments: 1,
            recently_removed_dateranges: Some(vec!["x".into()]),
        });
        d.render()
    };
    let seeds = [
        realistic().render(),
        delta,
        APPLE_EXAMPLE.to_owned(),
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-GAP\n".to_owned(),
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na\n#EXT-X-ENDLIST\n".to_owned(),
    ];
    for seed in &seeds {
        fuzz_media_playlist(seed.as_bytes());
        assert!(MediaPlaylist::parse(seed).is_ok(), "seed must parse");
    }
    let alphabet = b"#EXT-:=,\"\n.0123456789YESNOPARTURIDRAMGKL\t ";
    let mut rng = XorShift::new(0x5eed_1234_abcd_ef01);
    let mut parsed_ok = 0;
    for _ in 0..3000 {
        let Some(seed) = rng.pick(&seeds) else {
            continue;
        };
        let input = rng.mutate(seed.as_bytes(), alphabet);
        fuzz_media_playlist(&input);
        if std::str::from_utf8(&input).is_ok_and(|t| MediaPlaylist::parse(t).is_ok()) {
            parsed_ok += 1;
        }
    }
    // The mutations must exercise the render/re-parse path, not just error paths.
    assert!(parsed_ok > 300, "only {parsed_ok} mutated inputs parsed");
    for _ in 0..500 {
        let len = rng.below(200);
        let noise: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        fuzz_media_playlist(&noise);
    }
}
