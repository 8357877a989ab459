//! Packager scenarios on a virtual clock: synthetic frames (the packager
//! never looks inside NAL units), time advanced by the test, every loop
//! bounded by a frame count.

#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;
use livecdn_shared::playlist::{MediaPlaylist, SkipRequest};
use mp4_atom::{Decode, Moof, TrunEntry};

const FPS: u32 = 30;
const GOP: u32 = 60;

pub(crate) fn video_config() -> VideoConfig {
    VideoConfig {
        avcc: Bytes::from_static(&[
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 1, 0x68,
        ]),
        width: 640,
        height: 360,
        profile_idc: 0x64,
        constraint_flags: 0,
        level_idc: 0x1f,
        nal_length_size: 4,
        frame_rate: None,
    }
}

fn audio_config() -> AudioConfig {
    AudioConfig {
        asc: Bytes::from_static(&[0x11, 0x90]),
        object_type: 2,
        sample_rate: 48_000,
        channels: 2,
    }
}

/// Drives a packager with interleaved 30 fps video and 48 kHz AAC in
/// arrival order, like ffmpeg sends them.
pub(crate) struct Feed {
    pub(crate) p: Packager,
    t0: Instant,
    /// Media time (ms, f64) of the next video and audio frame.
    next_video: f64,
    next_audio: f64,
    video_index: u32,
    /// Added to FLV timestamps (to test wraps and restarts).
    ts_offset: u32,
    /// B-frame style composition offsets on non-IDR frames.
    bframes: bool,
    audio: bool,
    video: bool,
}

impl Feed {
    pub(crate) fn new(video: bool, audio: bool) -> Self {
        Self::with_config(video, audio, PackagerConfig::default())
    }

    pub(crate) fn with_config(video: bool, audio: bool, cfg: PackagerConfig) -> Self {
        let t0 = Instant::now();
        let mut p = Packager::new(
            cfg,
            t0,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        );
        if video {
            p.handle_video_config(video_config());
        }
        if audio {
            p.handle_audio_config(audio_config());
        }
        Self {
            p,
            t0,
            next_video: 0.0,
            next_audio: 0.0,
            video_index: 0,
            ts_offset: 0,
            bframes: false,
            audio,
            video,
        }
    }

    /// Feeds media until `until_ms` of media time.
    pub(crate) fn run_until(&mut self, until_ms: f64) {
        for _ in 0..1_000_000 {
            let v = if self.video {
                self.next_video
            } else {
                f64::MAX
            };
            let a = if self.audio {
                self.next_audio
            } else {
                f64::MAX
            };
            let t = v.min(a);
            if t >= until_ms {
                return;
            }
            let now = self.t0 + Duration::from_secs_f64(t / 1000.0);
            let ms = self.ts_offset.wrapping_add(t.round() as u32);
            if v <= a {
                let i = self.video_index;
                let key = i.is_multiple_of(GOP);
                let cts = if self.bframes && !key {
                    [66, 0, 33][(i % 3) as usize]
                } else {
                    0
                };
                let data = Bytes::from(vec![(i % 251) as u8; 500 + (i % 7) as usize * 10]);
                self.p.handle_frame(
                    now,
                    Frame {
                        track: TrackKind::Video,
                        dts_ms: ms,
                        cts_ms: cts,
                        keyframe: key,
                        data,
                    },
                );
                self.video_index += 1;
                self.next_video += 1000.0 / f64::from(FPS);
            } else {
                let data = Bytes::from(vec![0xAA; 200]);
                self.p.handle_frame(
                    now,
                    Frame {
                        track: TrackKind::Audio,
                        dts_ms: ms,
                        cts_ms: 0,
                        keyframe: true,
                        data,
                    },
                );
                self.next_audio += 1024.0 * 1000.0 / 48_000.0;
            }
        }
        panic!("feed did not reach {until_ms} ms");
    }

    pub(crate) fn now(&self) -> Instant {
        self.t0 + Duration::from_secs_f64(self.next_video.max(self.next_audio) / 1000.0)
    }
}

fn tfdt_and_trun(chunk_header: &Bytes) -> (u64, Vec<TrunEntry>) {
    let mut buf = &chunk_header[..];
    let moof = Moof::decode(&mut buf).unwrap();
    let traf = &moof.traf[0];
    (
        traf.tfdt.as_ref().unwrap().base_media_decode_time,
        traf.trun[0].samples.iter().collect(),
    )
}

/// (tfdt, duration) of every chunk of a track, in order.
fn chunk_times(t: &Track) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for s in t.segments() {
        for p in &s.parts {
            for h in p.chunks.iter().step_by(2) {
                let (tfdt, entries) = tfdt_and_trun(h);
                let d: u64 = entries.iter().map(|e| u64::from(e.duration.unwrap())).sum();
                out.push((tfdt, d));
            }
        }
    }
    out
}

#[test]
fn segments_cut_at_idr_after_target_with_parts_within_part_target() {
    let mut f = Feed::new(true, true);
    f.run_until(12_000.0);
    let v = f.p.track(SOURCE).unwrap();
    let complete: Vec<_> = v.segments().iter().filter(|s| s.complete).collect();
    assert!(complete.len() >= 5, "{} segments", complete.len());
    let max_part = f.p.config().advertised_part_target().as_secs_f64();
    for s in &complete {
        let secs = s.duration() as f64 / 90_000.0;
        assert!((1.9..=2.1).contains(&secs), "segment {} is {secs}s", s.msn);
        assert!(
            s.parts[0].independent,
            "segment {} must start with an IDR",
            s.msn
        );
        assert!(s.parts.iter().skip(1).all(|p| !p.independent));
        for p in &s.parts {
            assert!(p.duration as f64 / 90_000.0 <= max_part, "part too long");
        }
        assert_eq!(s.parts.len(), 6, "30 fps / 333 ms parts: six per segment");
    }
}

#[test]
fn audio_and_video_share_msn_and_part_numbers() {
    let mut f = Feed::new(true, true);
    f.run_until(20_000.0);
    let v = f.p.track(SOURCE).unwrap();
    let a = f.p.track(AUDIO).unwrap();
    let vs: Vec<(u64, Vec<u32>)> = v
        .segments()
        .iter()
        .filter(|s| s.complete)
        .map(|s| (s.msn, s.parts.iter().map(|p| p.index).collect()))
        .collect();
    let as_: Vec<(u64, Vec<u32>)> = a
        .segments()
        .iter()
        .filter(|s| s.complete)
        .map(|s| (s.msn, s.parts.iter().map(|p| p.index).collect()))
        .collect();
    assert!(vs.len() >= 8);
    // Every complete audio segment has the MSN and part numbers of the
    // video segment at the same media time.
    for (msn, parts) in &as_ {
        let vp = vs.iter().find(|(m, _)| m == msn).map(|x| &x.1);
        assert_eq!(vp, Some(parts), "msn {msn}");
    }
    // Same PROGRAM-DATE-TIME per MSN, and starts within one audio frame.
    for s in a.segments().iter().filter(|s| s.complete) {
        let vseg = v.segment(s.msn).unwrap();
        assert_eq!(s.pdt, vseg.pdt);
        let a_start = s.start as f64 / 48_000.0;
        let v_start = vseg.start as f64 / 90_000.0;
        assert!(
            (a_start - v_start).abs() < 0.03,
            "msn {}: audio {a_start} video {v_start}",
            s.msn
        );
    }
}

#[test]
fn segment_bytes_are_parts_joined_and_decode_times_are_continuous() {
    let mut f = Feed::new(true, true);
    f.run_until(8_000.0);
    for name in [SOURCE, AUDIO] {
        let t = f.p.track(name).unwrap();
        for s in t.segments() {
            let joined: Vec<u8> = s
                .parts
                .iter()
                .flat_map(|p| p.chunks.iter().flat_map(|c| c.to_vec()))
                .collect();
            let body: Vec<u8> = s.body().iter().flat_map(|c| c.to_vec()).collect();
            assert_eq!(joined, body);
            assert_eq!(body.len(), s.bytes());
        }
        let times = chunk_times(t);
        // The first frame's duration is a guess (no interval measured yet);
        // from the second on, durations come from measured intervals.
        for w in times.windows(2).skip(1) {
            let ((t0, d0), (t1, _)) = (w[0], w[1]);
            assert!(t1 > t0, "{name}: decode time must increase");
            // Never overlaps; video may leave at most a millisecond of gap.
            assert!(t0 + d0 <= t1, "{name}: overlap at {t0}");
            assert!(
                t1 - (t0 + d0) <= t.timescale as u64 / 1000 + 1,
                "{name}: gap at {t0}"
            );
        }
    }
    // Audio decode times advance by exactly 1024 samples.
    let a = chunk_times(f.p.track(AUDIO).unwrap());
    assert!(a.windows(2).all(|w| w[1].0 - w[0].0 == 1024));
}

#[test]
fn b_frame_composition_offsets_are_kept_signed_per_sample() {
    let mut f = Feed::new(true, false);
    f.bframes = true;
    f.run_until(3_000.0);
    let v = f.p.track(SOURCE).unwrap();
    let seg = v.segment(0).unwrap();
    let mut cts = Vec::new();
    let mut flags = Vec::new();
    for p in &seg.parts {
        for h in p.chunks.iter().step_by(2) {
            let (_, e) = tfdt_and_trun(h);
            cts.push(e[0].cts.unwrap());
            flags.push(e[0].flags.unwrap());
        }
    }
    assert_eq!(&cts[..4], &[0, 0, 33 * 90, 66 * 90]);
    assert_eq!(flags[0], 0x0200_0000, "IDR is a sync sample");
    assert!(flags[1..].iter().all(|f| *f == 0x0101_0000));
}

#[test]
fn video_only_and_audio_only_streams_package() {
    let mut f = Feed::new(true, false);
    f.run_until(6_000.0);
    assert!(f.p.track(AUDIO).is_none());
    let pl = f.p.media_playlist(SOURCE, None).unwrap();
    assert!(pl.rendition_reports.is_empty());
    assert!(pl.segments.iter().filter(|s| s.uri.is_some()).count() >= 2);

    let mut f = Feed::new(false, true);
    f.run_until(6_000.0);
    let a = f.p.track(AUDIO).unwrap();
    let complete: Vec<_> = a.segments().iter().filter(|s| s.complete).collect();
    assert!(
        complete.len() >= 2,
        "audio-only stream cuts its own segments"
    );
    assert!(complete.iter().all(|s| s.parts.len() >= 5));
}

#[test]
fn frames_before_the_first_idr_are_dropped() {
    let t0 = Instant::now();
    let mut p = Packager::new(PackagerConfig::default(), t0, SystemTime::now());
    p.handle_video_config(video_config());
    for i in 0..10u32 {
        let f = Frame {
            track: TrackKind::Video,
            dts_ms: i * 33,
            cts_ms: 0,
            keyframe: i == 5,
            data: Bytes::from_static(b"x"),
        };
        p.handle_frame(t0, f);
    }
    assert_eq!(p.dropped_frames, 5);
    let seg = p.track(SOURCE).unwrap().segment(0).unwrap();
    assert!(seg.parts[0].independent);
}

#[test]
fn thirty_two_bit_timestamp_wrap_keeps_decode_time_continuous() {
    let mut f = Feed::new(true, true);
    f.ts_offset = u32::MAX - 3_000; // wraps 3 s in
    f.run_until(8_000.0);
    for name in [SOURCE, AUDIO] {
        let times = chunk_times(f.p.track(name).unwrap());
        let ts = f.p.track(name).unwrap().timescale as u64;
        for w in times.windows(2) {
            assert!(
                w[1].0 > w[0].0 && w[1].0 - w[0].0 < ts / 10,
                "{name}: step {:?}",
                w
            );
        }
    }
    let v = f.p.track(SOURCE).unwrap();
    assert!(v.segments().iter().filter(|s| s.complete).count() >= 3);
}

#[test]
fn timestamp_jump_backwards_continues_the_timeline() {
    let mut f = Feed::new(true, true);
    f.run_until(4_000.0);
    f.ts_offset = 0u32.wrapping_sub(3_000); // input jumps back by 3 s
    f.run_until(8_000.0);
    for name in [SOURCE, AUDIO] {
        let times = chunk_times(f.p.track(name).unwrap());
        let ts = f.p.track(name).unwrap().timescale as u64;
        for w in times.windows(2) {
            assert!(
                w[1].0 > w[0].0 && w[1].0 - w[0].0 < ts / 10,
                "{name}: step {:?}",
                w
            );
        }
    }
}

#[test]
fn reconnect_continues_with_discontinuity_then_grace_ends_stream() {
    let mut f = Feed::new(true, true);
    f.run_until(5_000.0);
    let now = f.now();
    assert!(f.p.handle_publisher_lost(now));
    let before = f.p.track(SOURCE).unwrap().segments().back().unwrap().msn;
    assert!(f.p.poll_timeout().is_some());
    // The encoder comes back 2 s later with timestamps from zero.
    f.p.handle_publisher_back(now + Duration::from_secs(2));
    let restart = f.next_video;
    f.ts_offset = 0u32.wrapping_sub(restart.round() as u32);
    f.run_until(restart + 5_000.0);
    let v = f.p.track(SOURCE).unwrap();
    let after = v.segment(before + 1).unwrap();
    assert!(
        after.discontinuity,
        "first segment after reconnect is a discontinuity"
    );
    let pl = f.p.media_playlist(SOURCE, None).unwrap();
    assert_eq!(pl.segments.iter().filter(|s| s.discontinuity).count(), 1);
    assert!(pl.to_string().contains("#EXT-X-DISCONTINUITY\n"));
    let times = chunk_times(v);
    assert!(
        times.windows(2).all(|w| w[1].0 > w[0].0),
        "decode time keeps increasing across the reconnect"
    );
    // No publisher again; after the grace period the playlist ends.
    let now = f.now();
    f.p.handle_publisher_lost(now);
    assert!(!f.p.handle_timeout(now + Duration::from_secs(1)));
    assert!(f.p.handle_timeout(now + f.p.config().reconnect_grace));
    let pl = f.p.media_playlist(SOURCE, None).unwrap();
    assert!(pl.end_list);
    assert!(pl.preload_hint.is_none());
}

#[test]
fn window_is_bounded_by_segment_count() {
    let mut f = Feed::new(true, true);
    f.run_until(60_000.0);
    let v = f.p.track(SOURCE).unwrap();
    let complete = v.segments().iter().filter(|s| s.complete).count();
    assert_eq!(complete, f.p.config().window_segments);
    assert!(v.segments().front().unwrap().msn >= 19);
    // ~600 bytes a frame, 30 fps, 11 segments of 2 s at most.
    assert!(v.window_bytes() < 11 * 2 * 30 * 700, "{}", v.window_bytes());
}

#[test]
fn encoder_without_keyframes_is_cut_anyway() {
    let t0 = Instant::now();
    let mut p = Packager::new(PackagerConfig::default(), t0, SystemTime::now());
    p.handle_video_config(video_config());
    for i in 0..(30 * 25u32) {
        let f = Frame {
            track: TrackKind::Video,
            dts_ms: i * 33,
            cts_ms: 0,
            keyframe: i == 0,
            data: Bytes::from_static(b"x"),
        };
        p.handle_frame(t0, f);
    }
    let v = p.track(SOURCE).unwrap();
    let complete = v.segments().iter().filter(|s| s.complete).count();
    assert!(complete >= 2, "max segment length forces cuts");
}

#[test]
fn playlist_renders_and_reparses_with_ll_hls_tags() {
    let mut f = Feed::new(true, true);
    f.run_until(9_100.0);
    let pl = f.p.media_playlist(SOURCE, None).unwrap();
    let text = pl.to_string();
    let back = MediaPlaylist::parse(&text).unwrap();
    assert_eq!(
        back.to_string(),
        text,
        "render -> parse -> render is stable"
    );
    assert_eq!(back.segments.len(), pl.segments.len());
    let sc = pl.server_control.clone().unwrap();
    let part_target = pl.part_target.unwrap();
    assert!(sc.can_block_reload);
    // The audio's PART-TARGET is the larger; PART-HOLD-BACK is three of it
    // in every rendition.
    let audio = f.p.media_playlist(AUDIO, None).unwrap();
    let audio_target = audio.part_target.unwrap();
    assert!(audio_target > part_target);
    let hold_back = sc.part_hold_back.unwrap();
    assert!((hold_back - 3.0 * audio_target).abs() < 1e-9, "{hold_back}");
    assert_eq!(
        audio.server_control.unwrap().part_hold_back,
        Some(hold_back)
    );
    assert_eq!(sc.can_skip_until, Some(6.0 * pl.target_duration as f64));
    assert!(pl.segments[0].map_uri.as_deref() == Some("init.mp4"));
    assert!(pl.segments.iter().all(|s| s.program_date_time.is_some()));
    let hint = pl.preload_hint.clone().unwrap();
    let (msn, part) = f.p.next_part(f.p.track(SOURCE).unwrap());
    assert_eq!(hint.uri, format!("{msn}.{part}.m4s"));
    assert_eq!(pl.rendition_reports.len(), 1);
    assert_eq!(pl.rendition_reports[0].uri, "../audio/index.m3u8");
    // Parts are listed only for the last three target durations.
    let with_parts = pl.segments.iter().filter(|s| !s.parts.is_empty()).count();
    assert!((3..=4).contains(&with_parts), "{with_parts}");
}

#[test]
fn delta_update_skips_old_segments_and_matches_the_full_playlist() {
    let mut f = Feed::new(true, true);
    f.run_until(21_000.0);
    let full = f.p.media_playlist(SOURCE, None).unwrap();
    for req in [SkipRequest::Yes, SkipRequest::V2] {
        let delta = f.p.media_playlist(SOURCE, Some(req)).unwrap();
        let skipped = delta.skip.as_ref().unwrap().skipped_segments as usize;
        assert!(skipped >= 3, "skipped {skipped}");
        assert_eq!(delta.version, 9);
        assert_eq!(delta.media_sequence, full.media_sequence);
        assert_eq!(delta.segments.len() + skipped, full.segments.len());
        for (d, f) in delta.segments.iter().zip(&full.segments[skipped..]) {
            assert_eq!(d.uri, f.uri);
            assert_eq!(d.parts, f.parts);
        }
        // What was skipped is older than CAN-SKIP-UNTIL from the end.
        let tail: f64 = full.segments[skipped..].iter().map(|s| s.duration).sum();
        assert!(tail < 12.0 + 2.1, "kept {tail}s");
        assert_eq!(
            delta
                .skip
                .as_ref()
                .unwrap()
                .recently_removed_dateranges
                .is_some(),
            req == SkipRequest::V2
        );
        let text = delta.to_string();
        assert_eq!(MediaPlaylist::parse(&text).unwrap().to_string(), text);
    }
}

#[test]
fn blocking_rules_and_part_lookup() {
    let mut f = Feed::new(true, true);
    f.run_until(4_100.0);
    let v = f.p.track(SOURCE).unwrap();
    let (last_msn, last_part) = v.last_complete_part().unwrap();
    assert!(v.satisfies(last_msn, Some(last_part)));
    assert!(
        v.satisfies(0, Some(99)),
        "a part past the end of a complete segment is the next segment's part 0"
    );
    assert!(!v.satisfies(last_msn + 1, Some(0)) || v.segment(last_msn + 1).is_some());
    assert!(matches!(
        v.lookup_part(0, 0, 0),
        PartLookup::Available { complete: true, .. }
    ));
    assert_eq!(v.lookup_part(0, 50, 0), PartLookup::Gone);
    let (nm, np) = f.p.next_part(v);
    assert!(matches!(
        v.lookup_part(nm, np, 0),
        PartLookup::Upcoming
            | PartLookup::Available {
                complete: false,
                ..
            }
    ));
    assert_eq!(v.lookup_part(nm + 5, 0, 0), PartLookup::TooFarAhead);
    // Streaming reads: `from` skips what was already sent.
    if let PartLookup::Available { chunks, .. } = v.lookup_part(0, 0, 0) {
        if let PartLookup::Available { chunks: rest, .. } = v.lookup_part(0, 0, 2) {
            assert_eq!(rest.len(), chunks.len() - 2);
            assert_eq!(rest[0], chunks[2]);
        }
    }
}
