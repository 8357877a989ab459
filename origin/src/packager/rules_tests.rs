//! The RFC 8216bis server rules the packager's playlists and blocking
//! checks keep, on the virtual clock of [`super::tests::Feed`]: part
//! durations within PART-TARGET in every rendition, the skip boundary of
//! delta updates in the numbers a client reads, and a part index past the
//! end of a completed segment naming the next segment's first part.

#![allow(clippy::unwrap_used)]

use super::tests::Feed;
use super::*;
use livecdn_shared::playlist::{MediaPlaylist, SkipRequest};
use std::time::SystemTime;

/// A decimal as written in a playlist, in units of 10 µs.
fn units(secs: f64) -> u64 {
    (secs * 100_000.0).round() as u64
}

#[test]
fn a_part_index_past_a_completed_segment_waits_for_the_next_segment() {
    let mut f = Feed::new(true, true);
    // The IDR at 2 s closes segment 0 (parts 0-5) and opens segment 1,
    // which has no complete part yet; the audio follows with its frame at
    // 2005 ms.
    f.run_until(2_010.0);
    for name in [SOURCE, AUDIO] {
        let t = f.p.track(name).unwrap();
        let seg = t.segment(0).unwrap();
        assert!(seg.complete, "{name}");
        let last = seg.parts.last().unwrap().index;
        assert!(t.satisfies(0, Some(last)), "{name}");
        assert!(t.satisfies(0, None), "{name}");
        assert!(
            !t.satisfies(0, Some(last + 1)),
            "{name}: {}.{} is 1.0, not produced yet",
            0,
            last + 1
        );
        assert!(!t.satisfies(1, Some(0)), "{name}");
    }
    f.run_until(2_400.0);
    for name in [SOURCE, AUDIO] {
        let t = f.p.track(name).unwrap();
        let last = t.segment(0).unwrap().parts.last().unwrap().index;
        assert_eq!(t.last_complete_part(), Some((1, 0)), "{name}");
        assert!(t.satisfies(0, Some(last + 1)), "{name}");
        assert!(t.satisfies(1, Some(0)), "{name}");
        assert!(!t.satisfies(1, Some(1)), "{name}");
        assert_eq!(t.last_listed_msn(), Some(1), "{name}");
    }
}

#[test]
fn every_part_fits_the_part_target_of_its_playlist() {
    let mut f = Feed::new(true, true);
    let mut checked = 0;
    for step in 1..=120 {
        f.run_until(f64::from(step) * 250.0);
        let mut hold_backs = Vec::new();
        for name in [SOURCE, AUDIO] {
            let Some(pl) = f.p.media_playlist(name, None) else {
                continue;
            };
            // Read back from the text, as a player would.
            let pl = MediaPlaylist::parse(&pl.to_string()).unwrap();
            let target = units(pl.part_target.unwrap());
            for part in pl.segments.iter().flat_map(|s| &s.parts) {
                assert!(
                    units(part.duration) <= target,
                    "{name}: part {} lasts {} > PART-TARGET {}",
                    part.uri,
                    part.duration,
                    pl.part_target.unwrap()
                );
                checked += 1;
            }
            let sc = pl.server_control.unwrap();
            let hold_back = sc.part_hold_back.unwrap();
            assert!(units(hold_back) >= 3 * target, "{name}: {hold_back}");
            hold_backs.push(units(hold_back));
        }
        hold_backs.dedup();
        assert!(
            hold_backs.len() <= 1,
            "PART-HOLD-BACK differs: {hold_backs:?}"
        );
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn delta_updates_keep_exactly_the_skip_boundary() {
    let mut f = Feed::new(true, true);
    f.run_until(16_000.0);
    let mut versions = 0;
    // Every 7 ms of media for 10 s: the open part at every stage.
    for step in 0..1_430 {
        f.run_until(16_000.0 + f64::from(step) * 7.0);
        for name in [SOURCE, AUDIO] {
            let full = f.p.media_playlist(name, None).unwrap();
            let delta = f.p.media_playlist(name, Some(SkipRequest::Yes)).unwrap();
            let delta = MediaPlaylist::parse(&delta.to_string()).unwrap();
            let boundary = units(
                delta
                    .server_control
                    .as_ref()
                    .unwrap()
                    .can_skip_until
                    .unwrap(),
            );
            let skipped = delta.skip.as_ref().unwrap().skipped_segments as usize;
            assert!(skipped > 0, "{name}");
            // What a client adds up: the EXTINF of every complete segment
            // after the skip, and the parts of the open one.
            let kept: u64 = delta.segments.iter().map(|s| units(s.duration)).sum();
            assert!(
                kept >= boundary,
                "{name}: kept {kept} < CAN-SKIP-UNTIL {boundary} (10 us units)"
            );
            // ... and no more than needed: one more skipped would cross it.
            let first = units(delta.segments[0].duration);
            assert!(kept - first < boundary, "{name}: skipped too little");
            assert_eq!(
                delta.segments.len() + skipped,
                full.segments.len(),
                "{name} at step {step}: {}",
                delta
            );
            versions += 1;
        }
    }
    assert_eq!(versions, 2 * 1_430);
}

#[test]
fn listed_durations_are_the_media_spans() {
    let mut f = Feed::new(true, true);
    f.run_until(12_000.0);
    for name in [SOURCE, AUDIO] {
        let t = f.p.track(name).unwrap();
        let ms = |ticks: u64| ticks as f64 * 1000.0 / f64::from(t.timescale);
        let segs: Vec<_> = t.segments().iter().collect();
        for w in segs.windows(2).filter(|w| w[0].complete) {
            // EXTINF: exactly where the next segment starts.
            assert_eq!(
                w[0].duration(),
                w[1].start - w[0].start,
                "{name} {}",
                w[0].msn
            );
        }
        let parts: Vec<_> = segs.iter().flat_map(|s| &s.parts).collect();
        for w in parts.windows(2).filter(|w| w[0].complete) {
            // A part: within a millisecond of where the next one starts
            // (the lead closes a part at the frame it expects next).
            let (listed, span) = (w[0].listed_duration(), w[1].start - w[0].start);
            assert!(
                (ms(listed) - ms(span)).abs() <= 1.0,
                "{name}: part listed {} ms, media {} ms",
                ms(listed),
                ms(span)
            );
        }
    }
}

#[test]
fn the_mpd_numbers_segments_as_hls_and_keeps_its_period_as_the_window_slides() {
    let mut f = Feed::new(true, true);
    f.run_until(8_100.0);
    let early = f.p.manifest(SystemTime::UNIX_EPOCH).unwrap();
    // Twenty more seconds: the first segments have left the 10-segment
    // window.
    f.run_until(28_100.0);
    let late = f.p.manifest(SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(early.periods.len(), 1);
    assert_eq!(late.periods.len(), 1);
    let (a, b) = (&early.periods[0], &late.periods[0]);
    assert_eq!((&a.id, a.start), (&b.id, b.start), "a Period never moves");
    let first = |p: &livecdn_shared::dash::Period| {
        p.adaptation_sets[0].representations[0]
            .template
            .start_number
    };
    assert!(first(b) > first(a), "the window slid");
    let mut checked = 0;
    for set in &b.adaptation_sets {
        for rep in &set.representations {
            let t = f.p.track(&rep.id).unwrap();
            for (n, start, d) in rep.template.segments() {
                // $Number$ n is HLS segment n, with its decode time and
                // EXTINF duration; only the last may be in production.
                let s = t.segment(n).unwrap();
                if !s.complete {
                    assert_eq!(t.open_segment().map(|o| o.msn), Some(n), "{}", rep.id);
                    assert_eq!(s.start, start, "{} {n}", rep.id);
                    continue;
                }
                assert_eq!((s.start, s.duration()), (start, d), "{} {n}", rep.id);
                checked += 1;
            }
        }
    }
    assert!(checked >= 18, "{checked}");
}

#[test]
fn the_mpd_lists_the_segment_in_production_requestable_one_part_after_it_starts() {
    let mut f = Feed::new(true, true);
    // Mid-segment: a second into the fifth segment.
    f.run_until(9_000.0);
    let mpd = f.p.manifest(SystemTime::UNIX_EPOCH).unwrap();
    let part = f.p.part_target_of(SOURCE).as_secs_f64();
    let mut open_listed = 0;
    for rep in mpd
        .periods
        .iter()
        .flat_map(|p| &p.adaptation_sets)
        .flat_map(|a| &a.representations)
    {
        let t = f.p.track(&rep.id).unwrap();
        let open = t.open_segment().unwrap();
        let (n, start, d) = rep.template.segments().last().unwrap();
        assert_eq!((n, start), (open.msn, open.start), "{}", rep.id);
        // Expected to last as long as the one before (a fixed keyframe
        // interval here).
        let previous = t.segment(n - 1).unwrap();
        assert_eq!(d, previous.duration(), "{}", rep.id);
        // Requestable once its first part could exist: its end less
        // availabilityTimeOffset is at most one part after its start (less
        // by how much shorter it is than the longest listed), and the live
        // edge a player derives, now - maxSegmentDuration + offset, is one
        // part behind now.
        let ts = f64::from(rep.template.timescale);
        let ato = rep.template.availability_time_offset;
        let available_after = d as f64 / ts - ato;
        let longest = mpd.max_segment_duration.as_secs_f64();
        assert!(
            available_after <= part + 0.001
                && available_after >= part - (longest - d as f64 / ts) - 0.001,
            "{}: requestable {available_after:.3} s after its start",
            rep.id
        );
        assert!(
            (longest - ato - part).abs() < 0.001,
            "{}: live edge {:.3} s back",
            rep.id,
            longest - ato
        );
        assert!(!rep.template.availability_time_complete);
        open_listed += 1;
    }
    assert!(open_listed >= 2, "video and audio");
    assert!(
        mpd.minimum_update_period.as_secs_f64() <= part + 0.001,
        "refreshed every part"
    );
    // Where a player starts (suggestedPresentationDelay behind the
    // availability edge) is where it is asked to stay (the
    // ServiceDescription's wall-clock target): PART-HOLD-BACK behind the
    // end of the newest part, on average half a part behind now.
    let edge = mpd.max_segment_duration.as_secs_f64()
        - mpd.periods[0].adaptation_sets[0].representations[0]
            .template
            .availability_time_offset;
    let start = edge + mpd.suggested_presentation_delay.as_secs_f64();
    let target = mpd.latency_target.as_secs_f64();
    assert!(
        (start - target).abs() < 0.002,
        "starts {start:.3} s back, target {target:.3} s"
    );
    let hold_back = f.p.part_hold_back().as_secs_f64();
    assert!(
        (target - hold_back - part / 2.0).abs() < 0.002,
        "{target} vs {hold_back}"
    );
    // Once complete it lasted what was expected: the next MPD lists the
    // same start and duration, and the following segment in production.
    let listed: Vec<_> = mpd.periods[0].adaptation_sets[0].representations[0]
        .template
        .segments()
        .collect();
    f.run_until(11_000.0);
    let later = f.p.manifest(SystemTime::UNIX_EPOCH).unwrap();
    let now: Vec<_> = later.periods[0].adaptation_sets[0].representations[0]
        .template
        .segments()
        .collect();
    let (n, t, d) = *listed.last().unwrap();
    assert!(now.contains(&(n, t, d)), "{n}: {now:?}");
    assert_eq!(now.last().unwrap().0, n + 1);
}
