#![allow(clippy::unwrap_used)]

use super::*;
use crate::packager::tests::Feed;
use crate::packager::SOURCE;

fn meta() -> RecordingMeta {
    RecordingMeta {
        stream: "cam".into(),
        id: "20261206T195000Z".into(),
        started_ms: 1_800_000_000_000,
    }
}

fn video() -> RenditionMeta {
    RenditionMeta {
        name: SOURCE.into(),
        kind: MediaKind::Video,
        codecs: "avc1.64001f".into(),
        timescale: 90_000,
        width: Some(640),
        height: Some(360),
        frame_rate: Some(30.0),
        channels: None,
    }
}

fn seg(msn: u64, start: u64, bytes: u64) -> SegmentEntry {
    SegmentEntry {
        rendition: SOURCE.into(),
        msn,
        gen: 0,
        start,
        duration: 180_000,
        pdt_ms: 1_800_000_000_000 + msn * 2000,
        discontinuity: false,
        bytes,
    }
}

fn journal(lines: &[Line]) -> String {
    lines.iter().map(Line::to_line).collect()
}

#[test]
fn applying_lines_builds_the_index() {
    let lines = [
        Line::Rendition(video()),
        Line::Init {
            rendition: SOURCE.into(),
            gen: 0,
            bytes: 700,
        },
        Line::Segment(seg(0, 0, 1000)),
        Line::Segment(seg(1, 180_000, 3000)),
        // A repeat is ignored.
        Line::Segment(seg(1, 180_000, 3000)),
        Line::End { at_ms: 5 },
    ];
    let (rec, used) = Recording::rebuild(meta(), &journal(&lines));
    assert_eq!(used, journal(&lines).len());
    assert_eq!(rec.state, State::Done);
    assert_eq!(rec.bytes, 4700);
    assert_eq!(rec.duration_secs(), 4.0);
    let r = rec.rendition(SOURCE).unwrap();
    assert_eq!(r.segments.len(), 2);
    // 3000 bytes in 2 s is the peak; 4000 in 4 s the average.
    assert_eq!(r.bandwidth(), (12_000, 8_000));
    assert_eq!(rec.media_end_ms(), 1_800_000_000_000 + 2000 + 2000);
}

#[test]
fn a_torn_line_ends_the_journal() {
    let whole = journal(&[Line::Rendition(video()), Line::Segment(seg(0, 0, 1000))]);
    let torn = format!("{whole}{{\"event\":\"segment\",\"rendi");
    let (rec, used) = Recording::rebuild(meta(), &torn);
    assert_eq!(used, whole.len());
    assert_eq!(rec.segment_count(), 1);
    assert_eq!(rec.state, State::Recording);
    // A line that is whole but not JSON ends it too.
    let (rec, used) = Recording::rebuild(meta(), &format!("{whole}garbage\n{whole}"));
    assert_eq!((rec.segment_count(), used), (1, whole.len()));
}

#[test]
fn segment_files_the_journal_missed_are_parsed_back_in() {
    let mut f = Feed::new(true, false);
    f.run_until(9_000.0);
    let track = f.p.track(SOURCE).unwrap();
    let done: Vec<_> = track.segments().iter().filter(|s| s.complete).collect();
    assert!(done.len() >= 3);
    let file = |i: usize| -> Vec<u8> {
        done[i]
            .body()
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect()
    };
    let mut rec = Recording::new(meta());
    rec.apply(&Line::Rendition(video()));
    let first = &done[0];
    rec.apply(&Line::Segment(SegmentEntry {
        rendition: SOURCE.into(),
        msn: first.msn,
        gen: 0,
        start: first.start,
        duration: first.duration(),
        pdt_ms: 1_800_000_000_000,
        discontinuity: false,
        bytes: file(0).len() as u64,
    }));
    let on_disk: Vec<u64> = done.iter().map(|s| s.msn).collect();
    assert_eq!(rec.unlisted(SOURCE, &on_disk), on_disk[1..].to_vec());
    let line = rec.recover_segment(SOURCE, done[1].msn, &file(1)).unwrap();
    match line {
        Line::Segment(e) => {
            // Its samples' durations as written (the playlist's span is
            // not in the file).
            let written: u64 = done[1].parts.iter().map(|p| p.duration).sum();
            assert_eq!((e.start, e.duration), (done[1].start, written));
            assert!(!e.discontinuity);
            assert_eq!(
                e.pdt_ms,
                1_800_000_000_000 + first.duration() * 1000 / 90_000
            );
        }
        other => panic!("{other:?}"),
    }
    // A file cut short by the crash is not taken.
    let torn = file(2);
    assert!(rec
        .recover_segment(SOURCE, done[2].msn, &torn[..torn.len() - 10])
        .is_none());
    assert_eq!(rec.rendition(SOURCE).unwrap().segments.len(), 2);
}

#[test]
fn final_states() {
    assert!(!State::Recording.is_final());
    for s in [State::Done, State::Recovered, State::Error("x".into())] {
        assert!(s.is_final());
    }
    let mut rec = Recording::new(meta());
    rec.apply(&Line::Error {
        at_ms: 9,
        reason: "disk full".into(),
    });
    assert_eq!(rec.state, State::Error("disk full".into()));
    assert_eq!(rec.ended_ms, Some(9));
}
