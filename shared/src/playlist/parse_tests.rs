//! Tests for reading media playlists: the published LL-HLS example, other
//! servers' habits, malformed input and the size bounds.

use super::media_tests::pdt;
use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The LL-HLS example of RFC 8216bis appendix / Apple's LL-HLS documentation.
pub(super) const APPLE_EXAMPLE: &str = "#EXTM3U
# In this example, a Partial Segment is about 333 ms long.
#EXT-X-TARGETDURATION:4
#EXT-X-VERSION:6
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:36.106Z
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:4.00008,
fileSequence266.mp4
#EXTINF:4.00008,
fileSequence267.mp4
#EXTINF:4.00008,
fileSequence268.mp4
#EXTINF:4.00008,
fileSequence269.mp4
#EXTINF:4.00008,
fileSequence270.mp4
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.0.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.1.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.2.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.3.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.4.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.5.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.6.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.7.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.8.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.9.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.10.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart271.11.mp4\"
#EXTINF:4.00008,
fileSequence271.mp4
#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:14:00.106Z
#EXT-X-PART:DURATION=0.33334,URI=\"filePart272.a.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart272.b.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart272.c.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart272.d.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart272.e.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"filePart272.f.mp4\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart272.g.mp4\"

#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=273,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI=\"../4M/waitForMSN.php\",LAST-MSN=273,LAST-PART=1
";

#[test]
fn parses_apple_ll_hls_example() -> TestResult {
    let p = MediaPlaylist::parse(APPLE_EXAMPLE)?;
    assert_eq!((p.version, p.target_duration), (6, 4));
    assert_eq!(p.part_target, Some(0.33334));
    let control = p.server_control.clone().ok_or("no server control")?;
    assert!(control.can_block_reload);
    assert_eq!(control.part_hold_back, Some(1.0));
    assert_eq!(control.can_skip_until, Some(12.0));
    assert_eq!(control.hold_back, None);
    assert_eq!(p.segments.len(), 7);
    assert_eq!(p.segments[0].map_uri.as_deref(), Some("init.mp4"));
    assert_eq!(
        p.segments[0].program_date_time,
        Some(pdt(1_550_110_416, 106))
    );
    assert_eq!(p.segments[5].parts.len(), 12);
    assert!(p.segments[5].parts[4].independent);
    let live = &p.segments[6];
    assert_eq!(live.uri, None);
    assert_eq!(live.parts.len(), 6);
    assert_eq!(live.parts[0].uri, "filePart272.a.mp4");
    assert_eq!(live.program_date_time, Some(pdt(1_550_110_440, 106)));
    assert_eq!(p.last_msn(), Some(271));
    assert_eq!(p.next_part(), (272, 6));
    assert_eq!(p.map_uri_for(6), Some("init.mp4"));
    let hint = p.preload_hint.clone().ok_or("no preload hint")?;
    assert_eq!(hint.hint_type, PreloadHintType::Part);
    assert_eq!(hint.uri, "filePart272.g.mp4");
    assert_eq!(p.rendition_reports.len(), 2);
    assert_eq!(p.rendition_reports[1].last_part, Some(1));
    // Our render of it is a fixed point.
    let again = MediaPlaylist::parse(&p.render())?;
    assert_eq!(again, p);
    Ok(())
}

#[test]
fn reads_other_servers_variants() -> TestResult {
    let text = "\u{feff}#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXT-X-KEY:METHOD=NONE\r\n\
        #EXT-X-DATERANGE:ID=\"a,b\",START-DATE=\"2019-02-14T02:13:36Z\"\r\n\
        #EXTINF:2,title, with comma\r\nhttp://x/a.ts?x=1\r\n#EXTINF:2.5\r\nb.ts\r\n";
    let p = MediaPlaylist::parse(text)?;
    assert_eq!(p.version, 1);
    assert_eq!(p.segments.len(), 2);
    assert_eq!(p.segments[0].duration, 2.0);
    assert_eq!(p.segments[0].uri.as_deref(), Some("http://x/a.ts?x=1"));
    assert_eq!(p.segments[1].duration, 2.5);
    Ok(())
}

#[test]
fn rejects_malformed_playlists() -> TestResult {
    type Check = fn(&PlaylistError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, PlaylistError::MissingHeader)),
        ("#EXT-X-TARGETDURATION:2", |e| {
            matches!(e, PlaylistError::MissingHeader)
        }),
        ("#EXTM3U\n#EXTINF:1,\na.ts", |e| {
            matches!(e, PlaylistError::MissingTag { .. })
        }),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts", |e| {
            matches!(e, PlaylistError::UriWithoutExtinf { line: 3 })
        }),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1,", |e| {
            matches!(e, PlaylistError::ExtinfWithoutUri { line: 3 })
        }),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:two", |e| {
            matches!(
                e,
                PlaylistError::Malformed {
                    line: 2,
                    tag: "EXT-X-TARGETDURATION",
                    ..
                }
            )
        }),
        ("#EXTM3U\n#EXT-X-VERSION:300\n", |e| {
            matches!(
                e,
                PlaylistError::Malformed {
                    tag: "EXT-X-VERSION",
                    ..
                }
            )
        }),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:URI=\"a\"",
            |e| {
                matches!(
                    e,
                    PlaylistError::Malformed {
                        tag: "EXT-X-PART",
                        ..
                    }
                )
            },
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:NaN,\na.ts",
            |e| matches!(e, PlaylistError::Malformed { tag: "EXTINF", .. }),
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PRELOAD-HINT:TYPE=X,URI=\"a\"",
            |e| {
                matches!(
                    e,
                    PlaylistError::Malformed {
                        tag: "EXT-X-PRELOAD-HINT",
                        ..
                    }
                )
            },
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:yesterday",
            |e| {
                matches!(
                    e,
                    PlaylistError::Malformed {
                        tag: "EXT-X-PROGRAM-DATE-TIME",
                        ..
                    }
                )
            },
        ),
    ];
    for (text, check) in cases {
        let Err(err) = MediaPlaylist::parse(text) else {
            return Err(format!("{text:?} should not parse").into());
        };
        assert!(check(&err), "{text:?} gave {err:?}");
    }
    Ok(())
}

#[test]
fn enforces_size_bounds() -> TestResult {
    let big = format!("#EXTM3U\n{}", "#".repeat(MAX_PLAYLIST_BYTES));
    assert!(matches!(
        MediaPlaylist::parse(&big),
        Err(PlaylistError::TooLarge { .. })
    ));
    let lines = format!("#EXTM3U\n{}", "\n".repeat(MAX_PLAYLIST_LINES));
    assert!(matches!(
        MediaPlaylist::parse(&lines),
        Err(PlaylistError::TooManyLines { .. })
    ));
    // Exactly MAX_PLAYLIST_LINES lines (with a final newline) is accepted. Each
    // segment takes two lines, so the segment bound is a second line of defence.
    let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n");
    for i in 0..(MAX_PLAYLIST_LINES / 2 - 1) {
        text.push_str(&format!("#EXTINF:1\n{i}\n"));
    }
    assert_eq!(text.lines().count(), MAX_PLAYLIST_LINES);
    let p = MediaPlaylist::parse(&text)?;
    assert_eq!(p.segments.len(), MAX_PLAYLIST_LINES / 2 - 1);
    text.push_str("#EXT-X-ENDLIST\n");
    assert!(matches!(
        MediaPlaylist::parse(&text),
        Err(PlaylistError::TooManyLines { .. })
    ));
    Ok(())
}
