//! Where parts and segments are cut: the leading track decides, the other
//! follows the boundaries it publishes.

use super::timeline::Timeline;
use super::track::Track;
use super::PackagerConfig;
use bytes::Bytes;
use livecdn_shared::cmaf::Sample;
use livecdn_shared::media::{Frame, TrackKind};
use std::collections::VecDeque;
use std::time::SystemTime;

/// A cut made by the leading track, for the following track to apply when
/// its own media reaches `at_ms` (output timeline, milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary {
    pub at_ms: f64,
    /// Presentation time of the cut (ms): `at_ms` plus the lead's decoding
    /// delay (the composition offset of its keyframes, non-zero with
    /// B-frames). Transcoded rungs have no B-frames, so they cut by this.
    pub pts_ms: f64,
    pub msn: u64,
    /// Part number that starts at the boundary (0 for a new segment).
    pub part: u32,
    /// A new segment starts here (with this PROGRAM-DATE-TIME).
    pub segment: Option<SystemTime>,
}

/// How many recent frame intervals the duration estimate looks at.
const RECENT: usize = 32;

#[derive(Debug)]
pub struct TrackState {
    pub kind: TrackKind,
    pub track: Track,
    timeline: Timeline,
    /// Decode time and end (dts + duration) of the last sample emitted.
    last_dts: Option<u64>,
    pub(super) last_end: u64,
    recent: VecDeque<u64>,
    fallback_duration: u64,
    /// Boundaries published by the leading track, not yet reached.
    pub pending: VecDeque<Boundary>,
    /// (msn, part) the follower's next part gets.
    pub(super) label: Option<(u64, u32)>,
    /// The lead closed a part at what may be the end of its segment and
    /// holds the boundary back until the next frame says whether a new
    /// segment starts there (then one segment boundary covers both).
    owed_part_boundary: bool,
    /// Composition offset (ms) of the lead's last keyframe: its decoding
    /// delay, constant for an encoder configuration.
    delay_ms: f64,
}

impl TrackState {
    pub fn new(
        kind: TrackKind,
        name: &str,
        timescale: u32,
        window: usize,
        fallback_duration: u64,
    ) -> Self {
        Self {
            kind,
            track: Track::new(name, timescale, window),
            timeline: Timeline::new(timescale),
            last_dts: None,
            last_end: 0,
            recent: VecDeque::with_capacity(RECENT),
            fallback_duration: fallback_duration.max(1),
            pending: VecDeque::new(),
            label: None,
            owed_part_boundary: false,
            delay_ms: 0.0,
        }
    }

    /// Renumbers the track and the boundaries it has yet to apply (see
    /// [`Track::rebase`]).
    pub fn rebase(&mut self, offset: u64, keep_from: u64, discontinuities: u64, init_gen: u32) {
        self.track
            .rebase(offset, keep_from, discontinuities, init_gen);
        for b in &mut self.pending {
            b.msn += offset;
        }
        if let Some((msn, _)) = &mut self.label {
            *msn += offset;
        }
    }

    pub fn ticks_to_ms(&self, ticks: u64) -> f64 {
        ticks as f64 * 1000.0 / f64::from(self.track.timescale)
    }

    fn ms_to_ticks(&self, ms: f64) -> u64 {
        (ms.max(0.0) * f64::from(self.track.timescale) / 1000.0).round() as u64
    }

    pub fn end_ms(&self) -> f64 {
        self.ticks_to_ms(self.last_end)
    }

    /// Where a first frame at output time `ms` should land, never before the
    /// end of what this track already emitted.
    pub fn continue_at(&self, ms: f64) -> u64 {
        self.ms_to_ticks(ms).max(self.last_end)
    }

    pub fn reset_timeline(&mut self) {
        self.timeline.reset();
        self.recent.clear();
        self.label = None;
    }

    /// Output decode time of a frame. Audio keeps a steady sample count
    /// (millisecond FLV timestamps jitter by up to a millisecond, which would
    /// otherwise make gaps and overlaps between AAC frames) unless the input
    /// drifts more than two frames away from it.
    pub fn map_dts(&mut self, raw_ms: u32, continue_at: u64) -> u64 {
        let mapped = self.timeline.map(raw_ms, continue_at);
        if mapped.jumped {
            tracing::info!(
                track = self.kind.as_str(),
                "timestamp jump; output continues"
            );
        }
        match (self.kind, self.last_dts) {
            (TrackKind::Audio, Some(_)) if !mapped.jumped => {
                let expected = self.last_end;
                let drift = mapped.dts.abs_diff(expected);
                if drift <= 2 * self.fallback_duration {
                    expected
                } else {
                    mapped.dts.max(expected)
                }
            }
            // Video keeps its true decode times: the duration estimate is
            // the shortest recent interval, so it never runs past them.
            _ => mapped.dts,
        }
    }

    /// Duration of a sample whose successor has not arrived yet. Video uses
    /// the shortest recent interval, so that an estimate never overlaps the
    /// next frame (at worst it leaves a gap of a millisecond); audio frames
    /// have a fixed length.
    pub(super) fn estimate(&self) -> u64 {
        match self.kind {
            TrackKind::Audio => self.fallback_duration,
            TrackKind::Video => self
                .recent
                .iter()
                .copied()
                .min()
                .unwrap_or(self.fallback_duration),
        }
    }

    /// Mean recent frame interval: where the next frame is expected. Cuts
    /// made after a frame are placed there, not at the (shorter) estimated
    /// end, so the following track sees the boundary where media resumes.
    pub(super) fn mean_interval(&self) -> u64 {
        if self.recent.is_empty() {
            return self.estimate();
        }
        self.recent.iter().sum::<u64>() / self.recent.len() as u64
    }

    /// A frame's nominal length in track ticks (the fixed AAC frame; for
    /// video the first-frame fallback).
    pub(super) fn frame_ticks(&self) -> u64 {
        self.fallback_duration
    }

    pub(super) fn note_dts(&mut self, dts: u64) {
        if let Some(prev) = self.last_dts {
            let delta = dts.saturating_sub(prev);
            if delta > 0 {
                if self.recent.len() == RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back(delta);
            }
        }
        self.last_dts = Some(dts);
    }

    pub(super) fn sample(&self, frame: &Frame, duration: u64) -> Sample {
        let cts = i64::from(frame.cts_ms) * i64::from(self.track.timescale) / 1000;
        Sample {
            duration: u32::try_from(duration).unwrap_or(u32::MAX),
            size: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
            cts_offset: i32::try_from(cts).unwrap_or(0),
            sync: frame.keyframe || self.kind == TrackKind::Audio,
        }
    }

    pub(super) fn emit(&mut self, part: u32, dts: u64, sample: Sample, data: &Bytes) -> bool {
        let ok = self
            .track
            .append(part, dts, &[sample], std::slice::from_ref(data));
        if ok {
            self.last_end = dts + u64::from(sample.duration);
        }
        ok
    }

    /// The leading track's frame: cut where needed, append, and return the
    /// boundaries the follower must apply. Err if the frame cannot start or
    /// continue a segment (no IDR yet).
    pub fn lead_frame(
        &mut self,
        cfg: &PackagerConfig,
        dts: u64,
        frame: &Frame,
        pdt_of: &dyn Fn(f64) -> SystemTime,
    ) -> Result<Vec<Boundary>, ()> {
        self.note_dts(dts);
        if frame.keyframe {
            self.delay_ms = f64::from(frame.cts_ms);
        }
        let duration = self.estimate();
        let sample = self.sample(frame, duration);
        let ts = f64::from(self.track.timescale);
        let part_max = (cfg.advertised_part_target().as_secs_f64() * ts) as u64;
        let seg_target = (cfg.segment_target.as_secs_f64() * ts) as u64;
        let seg_max = (cfg.max_segment().as_secs_f64() * ts) as u64;
        let mut boundaries = Vec::new();
        let at_ms = self.ticks_to_ms(dts);
        let open_start = self.track.open_segment().map(|s| s.start);
        let new_segment = match open_start {
            None => {
                if !sample.sync {
                    return Err(());
                }
                true
            }
            Some(start) => {
                let elapsed = dts.saturating_sub(start);
                // Half a frame of slack: 60 frames of 33.3 ms make 2 s even
                // when the millisecond timestamps say 1999.
                (sample.sync && elapsed + duration / 2 >= seg_target) || elapsed >= seg_max
            }
        };
        let owed = std::mem::take(&mut self.owed_part_boundary);
        if new_segment {
            let msn = self.track.next_msn();
            let pdt = pdt_of(at_ms);
            self.track.start_segment(msn, dts, pdt);
            boundaries.push(Boundary {
                at_ms,
                pts_ms: at_ms + self.delay_ms,
                msn,
                part: 0,
                segment: Some(pdt),
            });
        } else if owed {
            boundaries.push(self.part_boundary(at_ms));
        } else if let Some((_, acc)) = self.track.open_part_span() {
            if acc + duration > part_max {
                self.track.close_part_at(dts);
                boundaries.push(self.part_boundary(at_ms));
            }
        }
        let part = self.track.next_part_index();
        if !self.emit(part, dts, sample, &frame.data) {
            return Err(());
        }
        // Close the part now if the next frame would overflow it, so that
        // it is listed without waiting for that frame.
        if let Some((_, acc)) = self.track.open_part_span() {
            if acc + duration > part_max {
                // Where the next frame is expected: the boundary the
                // followers apply, and where this part is listed to end.
                let next = dts + self.mean_interval().max(duration);
                self.track.close_part_at(next);
                let seg_elapsed = self
                    .track
                    .open_segment()
                    .map_or(0, |s| next.saturating_sub(s.start));
                if seg_elapsed + duration / 2 >= seg_target {
                    self.owed_part_boundary = true;
                } else {
                    boundaries.push(self.part_boundary(self.ticks_to_ms(next)));
                }
            }
        }
        Ok(boundaries)
    }

    fn part_boundary(&self, at_ms: f64) -> Boundary {
        let msn = self.track.open_segment().map_or(0, |s| s.msn);
        Boundary {
            at_ms,
            pts_ms: at_ms + self.delay_ms,
            msn,
            part: self.track.next_part_index(),
            segment: None,
        }
    }

    /// The following track's frame: apply every boundary its media has
    /// reached, then append. False if no segment has started yet.
    pub fn follow_frame(&mut self, dts: u64, frame: &Frame) -> bool {
        self.note_dts(dts);
        let at_ms = self.ticks_to_ms(dts);
        // Half a sample of tolerance, so a frame straddling the boundary goes
        // to the part where most of it plays.
        let slack = self.ticks_to_ms(self.fallback_duration) / 2.0;
        while let Some(b) = self.pending.front() {
            if b.at_ms > at_ms + slack {
                break;
            }
            let Some(b) = self.pending.pop_front() else {
                break;
            };
            match b.segment {
                Some(pdt) => {
                    self.track.start_segment(b.msn, dts, pdt);
                }
                None => {
                    self.track.close_part_at(dts);
                }
            }
            self.label = Some((b.msn, b.part));
        }
        let Some((_, part)) = self.label else {
            return false;
        };
        let duration = self.estimate();
        let sample = self.sample(frame, duration);
        self.emit(part, dts, sample, &frame.data)
    }
}
