//! A `NORMAL` latency stream: plain HLS and DASH from the same packager,
//! with 6 s segments and none of the low-latency machinery advertised.

#![allow(clippy::unwrap_used)]

use super::tests::Feed;
use super::*;
use std::time::SystemTime;

#[test]
fn normal_latency_lists_six_second_segments_without_parts_hints_or_reports() {
    let cfg = PackagerConfig::default().normal_latency();
    assert_eq!(cfg.segment_target, NORMAL_SEGMENT_TARGET);
    let mut f = Feed::with_config(true, true, cfg);
    // Three complete segments and one in production.
    f.run_until(21_000.0);
    for name in [SOURCE, AUDIO] {
        let pl = f.p.media_playlist(name, None).unwrap();
        assert_eq!(pl.target_duration, 6, "{name}");
        assert_eq!(pl.part_target, None, "{name}");
        assert!(
            pl.preload_hint.is_none() && pl.rendition_reports.is_empty(),
            "{name}"
        );
        let control = pl.server_control.as_ref().unwrap();
        assert!(
            !control.can_block_reload && control.part_hold_back.is_none(),
            "{name}"
        );
        assert_eq!(pl.segments.len(), 3, "{name}: complete segments only");
        for s in &pl.segments {
            assert!(s.parts.is_empty() && s.uri.is_some(), "{name}");
            assert!((s.duration - 6.0).abs() < 0.1, "{name}: {}", s.duration);
        }
        let text = pl.render();
        for tag in [
            "EXT-X-PART",
            "EXT-X-PRELOAD-HINT",
            "EXT-X-RENDITION-REPORT",
            "CAN-BLOCK-RELOAD",
        ] {
            assert!(!text.contains(tag), "{name}: {tag} in\n{text}");
        }
    }
    // The MPD lists the same complete segments, each available once
    // complete, and asks players to stay three segments back.
    let mpd = f.p.manifest(SystemTime::UNIX_EPOCH).unwrap();
    let open = f.p.track(SOURCE).unwrap().open_segment().unwrap().msn;
    for rep in mpd
        .periods
        .iter()
        .flat_map(|p| &p.adaptation_sets)
        .flat_map(|a| &a.representations)
    {
        let t = &rep.template;
        assert_eq!(t.availability_time_offset, 0.0, "{}", rep.id);
        assert!(t.availability_time_complete, "{}", rep.id);
        assert!(
            t.segments().all(|(n, _, _)| n < open),
            "{}: in production listed",
            rep.id
        );
        assert_eq!(t.segments().count(), 3, "{}", rep.id);
    }
    assert_eq!(mpd.latency_target, Duration::from_secs(18));
    assert_eq!(mpd.minimum_update_period, Duration::from_secs(3));
}

#[test]
fn low_latency_is_the_default_and_lists_parts() {
    let mut f = Feed::new(true, true);
    f.run_until(5_000.0);
    let pl = f.p.media_playlist(SOURCE, None).unwrap();
    assert!(pl.part_target.is_some() && pl.preload_hint.is_some());
    assert!(pl.server_control.unwrap().can_block_reload);
}
