#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use livecdn_shared::flv::{parse_video_tag, FlvTag, TagType, VideoTag};

use super::{read_tags, Action, Schedule, ScheduleError};

/// Drives a schedule on a virtual clock that jumps to each deadline, until
/// `until` after start; returns every action with the time it was released.
/// Bounded by a step count so a bug cannot hang the test.
fn drive(schedule: &mut Schedule, start: Instant, until: Duration) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    let mut now = start;
    for _ in 0..100_000 {
        if now > start + until {
            return out;
        }
        while let Some(action) = schedule.poll(now) {
            out.push((now, action));
            assert!(out.len() < 100_000, "poll never drained");
        }
        let deadline = schedule.next_deadline();
        assert!(deadline > now, "deadline did not move forward");
        now = deadline;
    }
    panic!("step bound reached");
}

fn sample(start: Instant) -> Schedule {
    Schedule::from_flv(crate::sample_flv(), start).unwrap()
}

fn split(actions: &[(Instant, Action)]) -> (Vec<&super::ScheduledTag>, Vec<&super::ScheduledTag>) {
    let media = actions
        .iter()
        .map(|(_, a)| a)
        .filter(|a| !a.tag().sequence_header);
    let video = media
        .clone()
        .filter_map(|a| match a {
            Action::Video(t) => Some(t),
            Action::Audio(_) => None,
        })
        .collect();
    let audio = media
        .filter_map(|a| match a {
            Action::Audio(t) => Some(t),
            Action::Video(_) => None,
        })
        .collect();
    (video, audio)
}

#[test]
fn loop_length_is_video_span_plus_one_frame() {
    let schedule = sample(Instant::now());
    // 120 frames at 30 fps: stamped 0..=3967, plus 33.3 ms.
    assert_eq!(schedule.loop_length(), Duration::from_millis(4000));
}

#[test]
fn sequence_headers_come_first_at_timestamp_zero() {
    let start = Instant::now();
    let mut schedule = sample(start);
    assert_eq!(schedule.next_deadline(), start);
    let first = schedule.poll(start).unwrap();
    let second = schedule.poll(start).unwrap();
    assert!(matches!(&first, Action::Video(t) if t.sequence_header && t.timestamp_ms == 0));
    assert!(matches!(&second, Action::Audio(t) if t.sequence_header && t.timestamp_ms == 0));
    assert!(matches!(
        parse_video_tag(first.tag().body.clone()).unwrap(),
        VideoTag::AvcSequenceHeader(_)
    ));
    // Then the first keyframe, also at 0.
    let third = schedule.poll(start).unwrap();
    assert!(matches!(&third, Action::Video(t) if t.keyframe && t.timestamp_ms == 0));
}

#[test]
fn timestamps_strictly_increase_per_track_across_three_loops() {
    let start = Instant::now();
    let mut schedule = sample(start);
    let actions = drive(&mut schedule, start, Duration::from_millis(3 * 4000 + 100));
    let (video, audio) = split(&actions);
    // Three full loops of 120 video frames each, and then some.
    assert!(video.len() > 3 * 120, "{} video tags", video.len());
    assert!(audio.len() > 3 * 187, "{} audio tags", audio.len());
    // An audio frame dropped to keep the sample count on the timeline
    // leaves one gap of two frames, at most once a loop.
    let mut dropped = 0;
    for (track, tags, max_gap) in [("video", &video, 34), ("audio", &audio, 44)] {
        for pair in tags.windows(2) {
            let gap = pair[1].timestamp_ms.wrapping_sub(pair[0].timestamp_ms);
            dropped += usize::from(track == "audio" && gap > 22);
            assert!(
                gap > 0 && gap <= max_gap,
                "{track}: {} -> {} (gap {gap})",
                pair[0].timestamp_ms,
                pair[1].timestamp_ms
            );
        }
    }
    assert!(
        dropped <= 3,
        "{dropped} audio frames dropped in three loops"
    );
    // Each loop is the clip shifted by exactly the loop length.
    assert_eq!(video[120].timestamp_ms, video[0].timestamp_ms + 4000);
    assert_eq!(video[240].body, video[0].body);
    let a0 = audio[0].timestamp_ms;
    assert!(audio.iter().any(|t| t.timestamp_ms == a0 + 8000));
}

#[test]
fn no_tag_is_released_before_its_time() {
    let start = Instant::now();
    let mut schedule = sample(start);
    let actions = drive(&mut schedule, start, Duration::from_millis(9000));
    for (released, action) in &actions {
        let due = start + Duration::from_millis(u64::from(action.tag().timestamp_ms));
        assert!(*released >= due, "released early: {action:?}");
        // The virtual clock jumps straight to deadlines, so nothing is late either.
        assert_eq!(*released, due);
    }
    // Just before a deadline, nothing comes out.
    let deadline = schedule.next_deadline();
    assert_eq!(schedule.poll(deadline - Duration::from_micros(1)), None);
    assert!(schedule.poll(deadline).is_some());
}

#[test]
fn first_video_tag_after_each_loop_is_a_keyframe() {
    let start = Instant::now();
    let mut schedule = sample(start);
    let actions = drive(&mut schedule, start, Duration::from_millis(3 * 4000 + 50));
    let (video, _) = split(&actions);
    for loop_index in 0..=3 {
        let tag = video[loop_index * 120];
        assert_eq!(tag.timestamp_ms, 4000 * loop_index as u32);
        assert!(tag.keyframe, "loop {loop_index} starts without a keyframe");
    }
    // Keyframes every 30 frames (one GOP per second), nowhere else.
    let keyframes: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
    assert!(keyframes.iter().all(|i| i % 30 == 0), "{keyframes:?}");
}

#[test]
fn bursts_when_the_driver_is_late_without_reordering() {
    let start = Instant::now();
    let mut schedule = sample(start);
    let mut actions = Vec::new();
    let late = start + Duration::from_millis(1000);
    while let Some(action) = schedule.poll(late) {
        actions.push(action);
        assert!(actions.len() < 1000);
    }
    // Everything up to one second, nothing after it.
    assert!(actions.iter().all(|a| a.tag().timestamp_ms <= 1000));
    assert!(schedule.next_deadline() > late);
    assert!(actions.len() > 30 + 46);
}

#[test]
fn timestamps_wrap_around_u32() {
    let start = Instant::now();
    let offset = u32::MAX - 2000;
    let mut schedule = sample(start).with_timestamp_offset(offset);
    let actions = drive(&mut schedule, start, Duration::from_millis(5000));
    let (video, _) = split(&actions);
    assert_eq!(actions[0].1.tag().timestamp_ms, offset);
    assert!(video.iter().any(|t| t.timestamp_ms < 4000), "never wrapped");
    for pair in video.windows(2) {
        let gap = pair[1].timestamp_ms.wrapping_sub(pair[0].timestamp_ms);
        assert!((33..=34).contains(&gap), "gap {gap}");
    }
}

#[test]
fn end_of_sequence_and_metadata_are_never_sent() {
    let tags = read_tags(crate::sample_flv()).unwrap();
    assert!(tags.iter().any(|t| t.tag_type == TagType::Script));
    let start = Instant::now();
    let mut schedule = Schedule::new(tags, start).unwrap();
    let actions = drive(&mut schedule, start, Duration::from_millis(8100));
    for (_, action) in &actions {
        if let Action::Video(tag) = action {
            let parsed = parse_video_tag(tag.body.clone()).unwrap();
            assert!(!matches!(parsed, VideoTag::AvcEndOfSequence));
        }
    }
}

fn video(ts: u32, body: &'static [u8]) -> FlvTag {
    FlvTag {
        tag_type: TagType::Video,
        timestamp_ms: ts,
        body: Bytes::from_static(body),
    }
}

const HEADER: &[u8] = b"\x17\x00\x00\x00\x00\x01\x4d\x00\x1e\xff";
const KEY: &[u8] = b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65";
const INTER: &[u8] = b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x41";

#[test]
fn rejects_clips_that_cannot_loop() {
    let now = Instant::now();
    let build = |tags: Vec<FlvTag>| Schedule::new(tags, now).err();
    assert_eq!(
        build(vec![video(0, KEY), video(33, INTER)]),
        Some(ScheduleError::MissingSequenceHeader("video"))
    );
    assert_eq!(
        build(vec![video(0, HEADER), video(0, INTER), video(33, KEY)]),
        Some(ScheduleError::FirstVideoNotKeyframe)
    );
    assert_eq!(
        build(vec![video(0, HEADER), video(0, KEY)]),
        Some(ScheduleError::TooFewFrames)
    );
    assert_eq!(
        build(vec![video(0, HEADER), video(40, KEY), video(10, INTER)]),
        Some(ScheduleError::TimestampsGoBackwards {
            track: "video",
            timestamp_ms: 10
        })
    );
    assert_eq!(build(vec![]), Some(ScheduleError::TooFewFrames));
    assert!(matches!(
        Schedule::from_flv(Bytes::from_static(b"not flv"), now),
        Err(ScheduleError::Flv(_))
    ));
}

#[test]
fn video_only_clip_loops_from_its_first_frame() {
    let start = Instant::now();
    // Frames at 100, 140, 180: loop = 120 ms, first frame at 100.
    let tags = vec![
        video(0, HEADER),
        video(100, KEY),
        video(140, INTER),
        video(180, INTER),
    ];
    let mut schedule = Schedule::new(tags, start).unwrap();
    assert_eq!(schedule.loop_length(), Duration::from_millis(120));
    let actions = drive(&mut schedule, start, Duration::from_millis(400));
    let stamps: Vec<u32> = actions.iter().map(|(_, a)| a.tag().timestamp_ms).collect();
    assert_eq!(stamps, [0, 100, 140, 180, 220, 260, 300, 340, 380]);
}

/// 4 s of AAC at 48 kHz is 187.5 frames: over many loops the audio frames
/// sent stay within a frame of the timeline (a server counting samples
/// keeps audio and video together), and timestamps still increase.
#[test]
fn audio_sample_count_keeps_pace_with_the_timeline_over_many_loops() {
    let start = Instant::now();
    let mut schedule = sample(start);
    let run = Duration::from_secs(400);
    let actions = drive(&mut schedule, start, run);
    let (_, audio) = split(&actions);
    let frame_ms = 1024.0 * 1000.0 / 48_000.0;
    let last = audio.last().unwrap().timestamp_ms as f64;
    let covered = audio.len() as f64 * frame_ms;
    assert!(
        (covered - (last + frame_ms)).abs() <= frame_ms,
        "{} frames = {covered:.1} ms of audio by {last} ms",
        audio.len()
    );
    assert!(audio
        .windows(2)
        .all(|w| w[1].timestamp_ms > w[0].timestamp_ms));
}
