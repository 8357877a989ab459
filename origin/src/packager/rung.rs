//! Transcoded renditions ("rungs"): video tracks that follow the source's
//! cuts by presentation time.
//!
//! An encoder returns each rung with the source's timestamps (`-copyts`) and
//! keyframes forced where the source has them, but without B-frames and a
//! few hundred milliseconds later. A rung therefore applies the boundaries
//! the source published when its own presentation time reaches theirs, and a
//! segment may only start on a keyframe: a rung whose frame at a segment
//! boundary is not one is counted as misaligned and waits for the next
//! segment, rather than publishing a segment that does not start with an IDR
//! or numbering media differently from the source.
//!
//! While a rung's encoder is down the rung keeps a placeholder segment for
//! each of the source's (so MSNs stay contiguous), and its playlist lists the
//! source's media for them and follows the source's live edge (see
//! `playlist.rs`): a player on the rung plays on. When the encoder is back
//! the rung resumes at the next segment boundary after a discontinuity.

use super::cut::{Boundary, TrackState};
use super::track::Track;
use super::{Packager, VIDEO_TIMESCALE};
use livecdn_shared::cmaf::{self, TrackInit, VideoInit};
use livecdn_shared::media::{Frame, TrackKind, VideoConfig};
use std::time::SystemTime;

/// Boundaries a rung holds for media it has not produced yet. At the default
/// part target this is about a minute: far more than any encoder delay,
/// small enough that a stalled rung costs little.
const MAX_PENDING: usize = 180;

/// Counters about a rung's alignment, for metrics and the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RungCounters {
    /// Segment boundaries that landed on a non-keyframe of this rung.
    pub misaligned: u64,
    /// Placeholder segments (encoder down), played from the source.
    pub gaps: u64,
    /// Frames dropped (before sync, out of order, or after a misalignment).
    pub dropped_frames: u64,
    /// Boundaries discarded because the rung fell too far behind.
    pub overrun: u64,
}

#[derive(Debug)]
pub(super) struct Rung {
    pub(super) state: TrackState,
    pub(super) config: Option<VideoConfig>,
    /// Frames are dropped until a segment boundary lands on a keyframe.
    synced: bool,
    /// The encoder is not running: keep placeholders for the source's
    /// segments.
    down: bool,
    /// The part was closed after the last frame because the next frame
    /// would reach the next boundary: that frame applies it in any case.
    closed_early: bool,
    pub(super) counters: RungCounters,
}

impl Rung {
    fn new(name: &str, window: usize) -> Self {
        Self {
            state: TrackState::new(
                TrackKind::Video,
                name,
                VIDEO_TIMESCALE,
                window,
                u64::from(VIDEO_TIMESCALE / 60),
            ),
            config: None,
            synced: false,
            down: false,
            closed_early: false,
            counters: RungCounters::default(),
        }
    }

    pub(super) fn push_boundaries(&mut self, boundaries: &[Boundary]) {
        if self.down {
            return;
        }
        self.state.pending.extend(boundaries.iter().cloned());
        while self.state.pending.len() > MAX_PENDING {
            self.state.pending.pop_front();
            self.counters.overrun += 1;
        }
    }

    /// Stops the rung; the next segment follows a discontinuity. The segment
    /// in progress is closed as it is (`keep`), or dropped so that the
    /// source's stands in for it as a whole (an encoder that died mid-way
    /// leaves media that ends early, which would be a hole in playback).
    fn stop(&mut self, keep: bool) {
        if keep {
            self.state.track.close_segment();
        } else {
            self.state.track.discard_open_segment();
        }
        self.state.track.mark_discontinuity();
        self.state.pending.clear();
        self.state.label = None;
        self.synced = false;
        self.closed_early = false;
    }
}

/// Where a gap segment's numbers come from: the source's segment of that
/// MSN, or a placeholder of one segment target when the source no longer
/// holds it.
fn gap_of(source: Option<&Track>, msn: u64, fallback: u64) -> (u64, u64, SystemTime) {
    match source.and_then(|t| t.segment(msn)).filter(|s| s.complete) {
        Some(s) => (s.start, s.duration(), s.pdt),
        None => (0, fallback, SystemTime::UNIX_EPOCH),
    }
}

/// Lists every MSN the rung skipped up to (not including) `msn` as a gap.
fn fill_gaps(source: Option<&Track>, rung: &mut Rung, msn: u64, fallback: u64, window: u64) {
    let track = &mut rung.state.track;
    // A rung that never started has nothing to keep contiguous.
    if track.segments().is_empty() {
        return;
    }
    // Never more than a window of gaps: older ones would slide out at once.
    let from = track.next_msn().max(msn.saturating_sub(window));
    for m in from..msn {
        let (start, duration, pdt) = gap_of(source, m, fallback);
        track.push_gap(m, start, duration, pdt);
        rung.counters.gaps += 1;
    }
}

impl Packager {
    fn rung_mut(&mut self, name: &str) -> Option<&mut Rung> {
        self.rungs.iter_mut().find(|r| r.state.track.name == name)
    }

    fn segment_ticks(&self) -> u64 {
        (self.cfg.segment_target.as_secs_f64() * f64::from(VIDEO_TIMESCALE)) as u64
    }

    /// The decoder configuration of transcoded rung `name` (from its
    /// encoder's sequence header). Creates the rung on first use.
    pub fn handle_rung_config(&mut self, name: &str, config: VideoConfig) -> bool {
        if name == super::SOURCE || name == super::AUDIO {
            return false;
        }
        let init = cmaf::init_segment(&TrackInit::Video(VideoInit {
            timescale: VIDEO_TIMESCALE,
            width: config.width,
            height: config.height,
            avcc: config.avcc.clone(),
        }));
        let window = self.cfg.window_segments;
        if self.rung_mut(name).is_none() {
            let mut rung = Rung::new(name, window);
            rung.state = rung.state.floored(self.floor);
            self.rungs.push(rung);
        }
        let Some(rung) = self.rung_mut(name) else {
            return false;
        };
        rung.state.track.set_init(init);
        rung.config = Some(config);
        rung.down = false;
        true
    }

    /// A frame of rung `name`, timestamped on the output timeline (the
    /// timestamps the encoder was fed). Returns true if the window changed.
    pub fn handle_rung_frame(&mut self, name: &str, frame: Frame) -> bool {
        if self.ended {
            return false;
        }
        let fallback = self.segment_ticks();
        let window = self.cfg.window_segments as u64;
        let Some(idx) = self.rungs.iter().position(|r| r.state.track.name == name) else {
            return false;
        };
        let source = self.video.as_ref().map(|s| &s.track);
        let rung = &mut self.rungs[idx];
        if rung.config.is_none() || frame.track != TrackKind::Video {
            rung.counters.dropped_frames += 1;
            return false;
        }
        let ticks_per_ms = u64::from(VIDEO_TIMESCALE / 1000);
        let dts = u64::from(frame.dts_ms) * ticks_per_ms;
        if rung.synced && dts < rung.state.last_end.saturating_sub(ticks_per_ms) {
            rung.counters.dropped_frames += 1;
            return false;
        }
        rung.down = false;
        rung.state.note_dts(dts);
        let pts_ms = f64::from(frame.dts_ms) + f64::from(frame.cts_ms);
        let slack = rung.state.ticks_to_ms(rung.state.estimate()) / 2.0;

        // Every boundary this frame has reached; only the last segment
        // start among them and the parts after it matter.
        let mut reached = Vec::new();
        if std::mem::take(&mut rung.closed_early) {
            reached.extend(rung.state.pending.pop_front());
        }
        while rung
            .state
            .pending
            .front()
            .is_some_and(|b| b.pts_ms <= pts_ms + slack)
        {
            reached.extend(rung.state.pending.pop_front());
        }
        let seg_at = reached.iter().rposition(|b| b.segment.is_some());
        if let Some(i) = seg_at {
            let b = &reached[i];
            let Some(pdt) = b.segment else {
                return false;
            };
            if !frame.keyframe {
                if rung.synced {
                    rung.counters.misaligned += 1;
                    tracing::warn!(
                        rendition = name,
                        msn = b.msn,
                        "segment boundary fell on a non-keyframe; rendition waits for the next segment"
                    );
                }
                rung.stop(true);
                rung.counters.dropped_frames += 1;
                return true;
            }
            if b.msn < rung.state.track.next_msn() {
                rung.counters.dropped_frames += 1;
                return false;
            }
            let msn = b.msn;
            fill_gaps(source, rung, msn, fallback, window);
            rung.state.track.start_segment(msn, dts, pdt);
            rung.state.label = Some((msn, 0));
            rung.synced = true;
        }
        if !rung.synced {
            rung.counters.dropped_frames += 1;
            return false;
        }
        let open_msn = rung.state.track.open_segment().map(|s| s.msn);
        for b in &reached[seg_at.map_or(0, |i| i + 1)..] {
            if Some(b.msn) == open_msn && b.segment.is_none() {
                rung.state.track.close_part_at(dts);
                rung.state.label = Some((b.msn, b.part));
            }
        }
        let Some((_, part)) = rung.state.label else {
            return false;
        };
        let duration = rung.state.estimate();
        let sample = rung.state.sample(&frame, duration);
        if !rung.state.emit(part, dts, sample, &frame.data) {
            return false;
        }
        // Close the part now if the next frame will reach the next boundary,
        // so it is listed without waiting a frame for it (as the source does).
        let next_ms = pts_ms + rung.state.ticks_to_ms(rung.state.mean_interval());
        if rung
            .state
            .pending
            .front()
            .is_some_and(|b| b.pts_ms <= next_ms + slack)
        {
            let next = dts + rung.state.mean_interval();
            rung.state.track.close_part_at(next);
            rung.closed_early = true;
        }
        true
    }

    /// Rung `name`'s encoder stopped (crashed, stalled or being restarted):
    /// it keeps placeholders for the source's segments (played from the
    /// source) until frames come again.
    pub fn handle_rung_down(&mut self, name: &str) -> bool {
        match self.rung_mut(name) {
            Some(rung) if !rung.down => {
                rung.stop(false);
                rung.down = true;
                true
            }
            _ => false,
        }
    }

    /// Called when the source starts segment `msn`: rungs that are down list
    /// the segments before it as gaps.
    pub(super) fn mirror_down_rungs(&mut self, msn: u64) {
        let fallback = self.segment_ticks();
        let window = self.cfg.window_segments as u64;
        let source = self.video.as_ref().map(|s| &s.track);
        for rung in self.rungs.iter_mut().filter(|r| r.down) {
            fill_gaps(source, rung, msn, fallback, window);
        }
    }

    /// Publisher lost: every rung closes what it has; it resumes after a
    /// discontinuity at the next segment boundary on a keyframe.
    pub(super) fn stop_rungs(&mut self) {
        for rung in &mut self.rungs {
            rung.stop(true);
        }
    }

    /// Names of the transcoded rungs, in the order they first appeared.
    pub fn rung_names(&self) -> impl Iterator<Item = &str> {
        self.rungs.iter().map(|r| r.state.track.name.as_str())
    }

    /// The decoder configuration of any video rendition, source or rung.
    pub fn video_config_of(&self, name: &str) -> Option<&VideoConfig> {
        if name == super::SOURCE {
            self.video_config()
        } else {
            self.rung_config(name)
        }
    }

    pub fn rung_config(&self, name: &str) -> Option<&VideoConfig> {
        self.rungs
            .iter()
            .find(|r| r.state.track.name == name)
            .and_then(|r| r.config.as_ref())
    }

    pub fn rung_counters(&self, name: &str) -> Option<RungCounters> {
        self.rungs
            .iter()
            .find(|r| r.state.track.name == name)
            .map(|r| r.counters)
    }

    /// Whether rung `name` is marked down (its encoder is not running).
    pub fn rung_is_down(&self, name: &str) -> bool {
        self.rungs
            .iter()
            .any(|r| r.state.track.name == name && r.down)
    }

    /// How far rung `name` trails the source, in media time (ms): the
    /// encoder's delay plus any backlog.
    pub fn rung_lag_ms(&self, name: &str) -> Option<f64> {
        let source = self.video.as_ref()?;
        let rung = self.rungs.iter().find(|r| r.state.track.name == name)?;
        Some((source.end_ms() - rung.state.end_ms()).max(0.0))
    }

    /// Pending boundaries of rung `name` (how many cuts it has yet to make).
    pub fn rung_backlog(&self, name: &str) -> usize {
        self.rungs
            .iter()
            .find(|r| r.state.track.name == name)
            .map_or(0, |r| r.state.pending.len())
    }
}

/// Video frames of the source as the encoder must see them: decode time on
/// the output timeline, so the rungs come back on the same clock.
pub(super) fn output_ms(ticks: u64) -> u32 {
    u32::try_from(ticks / u64::from(VIDEO_TIMESCALE / 1000)).unwrap_or(u32::MAX)
}
