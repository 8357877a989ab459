//! The `opus` rendition: packets from the stream's transcoder follow the
//! lead's cuts like the AAC does, and are served but never listed for HLS
//! players.

#![allow(clippy::unwrap_used)]

use super::tests::Feed;
use super::*;
use livecdn_shared::playlist::MediaPlaylist;

/// A stream with video, AAC and, 20 ms behind the AAC (the encoder's
/// buffering), Opus packets, up to `until_ms`.
fn feed_with_opus(until_ms: f64) -> Feed {
    let mut f = Feed::new(true, true);
    assert!(f.p.handle_opus_config(2, 312));
    let mut next = 0.0;
    for step in 1..=(until_ms / 20.0) as u32 {
        let t = f64::from(step) * 20.0;
        f.run_until(t);
        while next + 20.0 < t {
            f.p.handle_opus_frame(Frame {
                track: TrackKind::Audio,
                dts_ms: next as u32,
                cts_ms: 0,
                keyframe: true,
                data: Bytes::from_static(&[0xfc, 0xff, 0xfe]),
            });
            next += 20.0;
        }
    }
    f
}

#[test]
fn opus_packets_follow_the_video_cuts_in_20_ms_samples() {
    let f = feed_with_opus(12_000.0);
    let o = f.p.opus().unwrap();
    let v = f.p.track(SOURCE).unwrap();
    assert_eq!(o.timescale, OPUS_TIMESCALE);
    let complete: Vec<_> = o.segments().iter().filter(|s| s.complete).collect();
    assert!(complete.len() >= 4, "{} segments", complete.len());
    let part_max = f.p.part_target_of(OPUS).as_secs_f64();
    for s in &complete {
        let vseg = v.segment(s.msn).unwrap();
        let parts: Vec<u32> = s.parts.iter().map(|p| p.index).collect();
        let vparts: Vec<u32> = vseg.parts.iter().map(|p| p.index).collect();
        assert_eq!(parts, vparts, "msn {}", s.msn);
        assert_eq!(s.pdt, vseg.pdt);
        let (o_start, v_start) = (s.start as f64 / 48_000.0, vseg.start as f64 / 90_000.0);
        assert!(
            (o_start - v_start).abs() <= 0.02,
            "msn {}: {o_start} vs {v_start}",
            s.msn
        );
        for p in &s.parts {
            assert!(
                p.duration as f64 / 48_000.0 <= part_max,
                "part over {part_max}"
            );
        }
        assert_eq!(s.duration() % 960, 0, "whole 20 ms packets");
    }
}

#[test]
fn the_opus_rendition_is_served_but_not_listed_for_hls_players() {
    let mut f = feed_with_opus(6_000.0);
    assert!(f.p.tracks().all(|t| t.name != OPUS));
    assert_eq!(f.p.content_type(OPUS), "audio/mp4");
    assert_eq!(f.p.content_type(SOURCE), "video/mp4");
    let init = f.p.init(OPUS, 0).unwrap();
    assert!(init.windows(4).any(|w| w == b"dOps"));
    let text = f.p.media_playlist(OPUS, None).unwrap().to_string();
    let pl = MediaPlaylist::parse(&text).unwrap();
    assert!(!pl.segments.is_empty());
    // Its rendition reports name the HLS renditions; theirs never name it.
    let source = f.p.media_playlist(SOURCE, None).unwrap().to_string();
    assert!(!source.contains("opus/"), "{source}");
    // A stop ends it with the rest.
    let now = f.now();
    f.p.handle_stop(now);
    let ended = f.p.media_playlist(OPUS, None).unwrap();
    assert!(ended.end_list);
}

#[test]
fn opus_before_the_stream_starts_or_without_a_config_is_dropped() {
    let mut p = Packager::new(PackagerConfig::default(), Instant::now(), SystemTime::now());
    let packet = |ms| Frame {
        track: TrackKind::Audio,
        dts_ms: ms,
        cts_ms: 0,
        keyframe: true,
        data: Bytes::from_static(&[0xfc]),
    };
    assert!(!p.handle_opus_frame(packet(0)), "no opus config");
    p.handle_opus_config(1, 312);
    assert!(!p.handle_opus_frame(packet(20)), "no lead frame yet");
    assert!(p.opus().is_some_and(|t| t.segments().is_empty()));
}
