#![allow(clippy::unwrap_used)]

use super::*;
use crate::packager::tests::Feed;
use crate::packager::PackagerConfig;

fn segments(writes: &[Write]) -> Vec<(String, u64, bool)> {
    writes
        .iter()
        .filter_map(|w| match w {
            Write::Segment { entry, .. } => {
                Some((entry.rendition.clone(), entry.msn, entry.discontinuity))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn hands_out_each_complete_segment_once_after_its_rendition_and_init() {
    let mut f = Feed::new(true, true);
    f.run_until(7_000.0);
    let mut follower = Follower::new(Renditions::Source);
    let first = follower.poll(&f.p);
    // Per rendition: its metadata, then its init section, then segments.
    for name in [SOURCE, AUDIO] {
        let at = |pred: &dyn Fn(&Write) -> bool| first.iter().position(pred).unwrap();
        let r = at(&|w| matches!(w, Write::Rendition(m) if m.name == name));
        let i = at(&|w| matches!(w, Write::Init { rendition, gen: 0, .. } if rendition == name));
        let s = at(&|w| matches!(w, Write::Segment { entry, .. } if entry.rendition == name));
        assert!(r < i && i < s, "{name}: {r} {i} {s}");
    }
    let got = segments(&first);
    let complete: Vec<u64> =
        f.p.track(SOURCE)
            .unwrap()
            .segments()
            .iter()
            .filter(|s| s.complete)
            .map(|s| s.msn)
            .collect();
    assert!(complete.len() >= 2, "{complete:?}");
    let source: Vec<u64> = got.iter().filter(|s| s.0 == SOURCE).map(|s| s.1).collect();
    assert_eq!(source, complete, "only complete segments, in order");
    assert!(got.iter().all(|s| !s.2), "no discontinuity in a clean run");
    // The body is the segment's bytes, and the entry says how many.
    for w in &first {
        if let Write::Segment { entry, body } = w {
            let seg =
                f.p.track(&entry.rendition)
                    .unwrap()
                    .segment(entry.msn)
                    .unwrap();
            let joined: Vec<u8> = body.iter().flat_map(|b| b.iter().copied()).collect();
            let expected: Vec<u8> = seg.body().iter().flat_map(|b| b.iter().copied()).collect();
            assert_eq!(joined, expected);
            assert_eq!(entry.bytes as usize, joined.len());
            assert_eq!(entry.duration, seg.duration());
        }
    }
    // Nothing new: nothing handed out.
    assert!(follower.poll(&f.p).is_empty());
    f.run_until(11_000.0);
    let next = segments(&follower.poll(&f.p));
    assert!(!next.is_empty());
    let last = *source.last().unwrap();
    assert!(next.iter().filter(|s| s.0 == SOURCE).all(|s| s.1 > last));
}

#[test]
fn segments_the_window_dropped_make_the_next_one_a_discontinuity() {
    let cfg = PackagerConfig {
        window_segments: 3,
        ..PackagerConfig::default()
    };
    let mut f = Feed::with_config(true, false, cfg);
    f.run_until(5_000.0);
    let mut follower = Follower::new(Renditions::Source);
    let before = segments(&follower.poll(&f.p));
    let last = before.last().unwrap().1;
    // A disk slower than the stream: the window moves on meanwhile.
    f.run_until(30_000.0);
    let after = segments(&follower.poll(&f.p));
    assert!(after[0].1 > last + 1, "{after:?} after {last}");
    assert!(after[0].2, "the first after a skip is a discontinuity");
    assert!(after[1..].iter().all(|s| !s.2));
}

#[test]
fn the_end_is_handed_out_once_and_a_restart_announces_again() {
    let mut f = Feed::new(true, true);
    f.run_until(5_000.0);
    let mut follower = Follower::new(Renditions::Source);
    follower.poll(&f.p);
    follower.restart();
    let again = follower.poll(&f.p);
    assert!(again
        .iter()
        .any(|w| matches!(w, Write::Rendition(m) if m.name == SOURCE)));
    assert!(again
        .iter()
        .any(|w| matches!(w, Write::Init { rendition, .. } if rendition == AUDIO)));
    assert!(
        segments(&again).is_empty(),
        "segments are not written twice"
    );
    let now = f.now();
    f.p.handle_stop(now);
    let end = follower.poll(&f.p);
    assert!(matches!(end.last(), Some(Write::End)));
    assert!(follower.poll(&f.p).iter().all(|w| !matches!(w, Write::End)));
}

#[test]
fn renditions_choice() {
    assert!(Renditions::Source.wants(SOURCE) && Renditions::Source.wants(AUDIO));
    assert!(!Renditions::Source.wants("720p"));
    assert!(Renditions::All.wants("720p"));
}
