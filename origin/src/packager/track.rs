//! One rendition's live window: segments made of parts made of CMAF chunks.
//!
//! The track does not decide where parts and segments are cut (the stream
//! packager does, so that every rendition cuts at the same media times); it
//! appends chunks, closes parts and segments when told, and answers what a
//! playlist or a request for a part needs. Everything is `Bytes`, so serving a
//! part to many viewers is reference counting, never copying.

use bytes::Bytes;
use livecdn_shared::cmaf::{self, Sample};
use std::collections::VecDeque;
use std::time::SystemTime;

/// A partial segment: one or more CMAF chunks (moof+mdat), one per frame.
#[derive(Debug, Clone)]
pub struct Part {
    pub index: u32,
    /// Decode time of the first sample, in track ticks.
    pub start: u64,
    /// Sum of its sample durations, in track ticks.
    pub duration: u64,
    /// Starts with a sync sample (IDR for video; always for audio).
    pub independent: bool,
    /// Chunk bytes in order: for each chunk its header then its payloads.
    pub chunks: Vec<Bytes>,
    pub bytes: usize,
    pub complete: bool,
    /// Decode time where the next part starts, when known as it closed:
    /// what its listed duration is measured to.
    pub end: Option<u64>,
}

impl Part {
    /// The duration a playlist lists: the decode-time span to where the
    /// next part starts when that was known as it closed, else the sum of
    /// its sample durations. Sample durations of video are estimates that
    /// never overlap the next frame (the shortest recent interval), so
    /// their sum runs short of the media by up to a millisecond a frame;
    /// the span does not.
    pub fn listed_duration(&self) -> u64 {
        span(self.start, self.end, self.duration)
    }
}

/// `end - start` if `end` is known and within an eighth of `sum` (a span
/// across a publisher's reconnect is not a duration; the first frame's
/// duration is a guess), else `sum`.
fn span(start: u64, end: Option<u64>, sum: u64) -> u64 {
    match end.and_then(|e| e.checked_sub(start)) {
        Some(d) if d.abs_diff(sum) <= sum / 8 => d,
        _ => sum,
    }
}

/// A segment: its parts joined.
#[derive(Debug, Clone)]
pub struct Segment {
    pub msn: u64,
    pub start: u64,
    pub pdt: SystemTime,
    pub discontinuity: bool,
    /// Generation of the init segment (codec config) its samples need.
    pub init_gen: u32,
    pub parts: Vec<Part>,
    pub complete: bool,
    /// Decode time where the next segment starts, set as it starts.
    pub end: Option<u64>,
    /// A placeholder for media this rendition does not have (its encoder was
    /// down), of this duration (ticks), so that MSNs keep naming the same
    /// media time in every rendition. Playlists list the source's segment in
    /// its place, or EXT-X-GAP when the source no longer holds it.
    pub gap: Option<u64>,
}

impl Segment {
    /// Its duration: a placeholder's, else the decode-time span to the next
    /// segment's start once that is known (see [`Part::listed_duration`]),
    /// else the sum of its parts.
    pub fn duration(&self) -> u64 {
        self.gap.unwrap_or_else(|| {
            let sum = self.parts.iter().map(|p| p.duration).sum();
            span(self.start, self.end, sum)
        })
    }
    pub fn bytes(&self) -> usize {
        self.parts.iter().map(|p| p.bytes).sum()
    }
    /// All chunk bytes of the segment, in order (the segment body).
    pub fn body(&self) -> Vec<Bytes> {
        self.parts
            .iter()
            .flat_map(|p| p.chunks.iter().cloned())
            .collect()
    }
}

/// What a request for `MSN.PART.m4s` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartLookup {
    /// The part exists: the chunks produced so far, and whether it is done.
    Available { chunks: Vec<Bytes>, complete: bool },
    /// Not produced yet but about to be: hold the request.
    Upcoming,
    /// Older than the window, or a part number the segment never reached.
    Gone,
    /// So far ahead that it is not going to be produced soon.
    TooFarAhead,
}

#[derive(Debug)]
pub struct Track {
    pub name: String,
    pub timescale: u32,
    /// Init segments by generation; only generations still referenced by the
    /// window are kept.
    inits: Vec<(u32, Bytes)>,
    init_gen: u32,
    /// Complete segments, then possibly the open one at the back.
    segments: VecDeque<Segment>,
    window_segments: usize,
    next_msn: u64,
    sequence: u32,
    pending_discontinuity: bool,
    /// Discontinuities that have slid out of the window
    /// (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuity_sequence: u64,
    /// Lifetime count of complete segments, for stats.
    pub segments_completed: u64,
}

impl Track {
    pub fn new(name: impl Into<String>, timescale: u32, window_segments: usize) -> Self {
        Self {
            name: name.into(),
            timescale,
            inits: Vec::new(),
            init_gen: 0,
            segments: VecDeque::new(),
            window_segments,
            next_msn: 0,
            sequence: 0,
            pending_discontinuity: false,
            discontinuity_sequence: 0,
            segments_completed: 0,
        }
    }

    /// Sets the init segment; a different one than before starts a new
    /// generation (new EXT-X-MAP from the next segment on).
    pub fn set_init(&mut self, init: Bytes) {
        if self.inits.last().is_some_and(|(_, b)| *b == init) {
            return;
        }
        if !self.inits.is_empty() {
            self.init_gen += 1;
        }
        self.inits.push((self.init_gen, init));
    }

    pub fn has_init(&self) -> bool {
        !self.inits.is_empty()
    }

    pub fn init(&self, gen: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(g, _)| *g == gen)
            .map(|(_, b)| b.clone())
    }

    pub fn init_uri(gen: u32) -> String {
        if gen == 0 {
            "init.mp4".to_string()
        } else {
            format!("init-{gen}.mp4")
        }
    }

    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    pub fn segments(&self) -> &VecDeque<Segment> {
        &self.segments
    }

    pub fn open_segment(&self) -> Option<&Segment> {
        self.segments.back().filter(|s| !s.complete)
    }

    /// Marks the next segment as following a discontinuity.
    pub fn mark_discontinuity(&mut self) {
        self.pending_discontinuity = true;
    }

    /// MSN the next segment will get.
    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// Starts segment `msn` (closing any open one, which ends there) at
    /// decode time `start`.
    pub fn start_segment(&mut self, msn: u64, start: u64, pdt: SystemTime) {
        self.close_part_at(start);
        if let Some(seg) = self.segments.back_mut().filter(|s| !s.complete) {
            seg.end = Some(start);
        }
        self.close_segment();
        self.next_msn = msn + 1;
        self.segments.push_back(Segment {
            msn,
            start,
            pdt,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            init_gen: self.init_gen,
            parts: Vec::new(),
            complete: false,
            end: None,
            gap: None,
        });
    }

    /// Appends segment `msn` as a gap of `duration` ticks (closing any open
    /// segment). The first gap of a run and the next real segment after it
    /// are discontinuities.
    pub fn push_gap(&mut self, msn: u64, start: u64, duration: u64, pdt: SystemTime) {
        self.close_segment();
        self.next_msn = msn + 1;
        // The first of a run of gaps is where playback switches away.
        let first_of_run = self.segments.back().is_none_or(|s| s.gap.is_none());
        self.segments.push_back(Segment {
            msn,
            start,
            pdt,
            discontinuity: first_of_run,
            init_gen: self.init_gen,
            parts: Vec::new(),
            complete: true,
            end: None,
            gap: Some(duration),
        });
        self.pending_discontinuity = true;
        self.segments_completed += 1;
        self.trim();
    }

    /// Appends one chunk (one or more samples) to the open segment, opening
    /// part `part_index` if the current part is closed. Returns false if no
    /// segment is open (the caller starts one first).
    pub fn append(
        &mut self,
        part_index: u32,
        dts: u64,
        samples: &[Sample],
        payloads: &[Bytes],
    ) -> bool {
        let sequence = self.sequence.wrapping_add(1);
        let Some(seg) = self.segments.back_mut().filter(|s| !s.complete) else {
            return false;
        };
        let Ok(chunk) = cmaf::chunk(sequence, dts, samples, payloads) else {
            return false;
        };
        self.sequence = sequence;
        let needs_part = seg.parts.last().is_none_or(|p| p.complete);
        if needs_part {
            seg.parts.push(Part {
                index: part_index,
                start: dts,
                duration: 0,
                independent: samples.first().is_some_and(|s| s.sync),
                chunks: Vec::new(),
                bytes: 0,
                complete: false,
                end: None,
            });
        }
        let Some(part) = seg.parts.last_mut() else {
            return false;
        };
        part.duration += samples.iter().map(|s| u64::from(s.duration)).sum::<u64>();
        part.bytes += chunk.iter().map(Bytes::len).sum::<usize>();
        part.chunks.extend(chunk);
        true
    }

    /// Index the next part of the open segment gets.
    pub fn next_part_index(&self) -> u32 {
        match self.open_segment().and_then(|s| s.parts.last()) {
            Some(p) if p.complete => p.index + 1,
            Some(p) => p.index,
            None => 0,
        }
    }

    /// Whether the open segment has a part in progress.
    pub fn part_open(&self) -> bool {
        self.open_segment()
            .and_then(|s| s.parts.last())
            .is_some_and(|p| !p.complete)
    }

    /// Decode time where the open part started and its duration so far.
    pub fn open_part_span(&self) -> Option<(u64, u64)> {
        self.open_segment()
            .and_then(|s| s.parts.last())
            .filter(|p| !p.complete)
            .map(|p| (p.start, p.duration))
    }

    /// Drops the open segment, if any: media that stops mid-segment is
    /// replaced as a whole (a segment cannot switch init mid-way).
    pub fn discard_open_segment(&mut self) {
        if self.segments.back().is_some_and(|s| !s.complete) {
            if let Some(seg) = self.segments.pop_back() {
                self.next_msn = seg.msn;
                self.pending_discontinuity |= seg.discontinuity;
            }
        }
    }

    /// Closes the open part, if any, where the next part starts (decode
    /// time `end`). Returns true if one was closed.
    pub fn close_part_at(&mut self, end: u64) -> bool {
        match self.segments.back_mut().and_then(|s| s.parts.last_mut()) {
            Some(p) if !p.complete => {
                p.complete = true;
                p.end = Some(end);
                true
            }
            _ => false,
        }
    }

    /// Closes the open part, if any, where it is not known what follows.
    /// Returns true if one was closed.
    pub fn close_part(&mut self) -> bool {
        match self.segments.back_mut().and_then(|s| s.parts.last_mut()) {
            Some(p) if !p.complete => {
                p.complete = true;
                true
            }
            _ => false,
        }
    }

    /// Closes the open segment (and its part). An open segment with no
    /// media is dropped rather than listed with zero duration.
    pub fn close_segment(&mut self) {
        self.close_part();
        if let Some(seg) = self.segments.back_mut() {
            if !seg.complete {
                if seg.parts.is_empty() {
                    let discontinuity = seg.discontinuity;
                    self.segments.pop_back();
                    self.pending_discontinuity |= discontinuity;
                } else {
                    seg.complete = true;
                    self.segments_completed += 1;
                }
            }
        }
        self.trim();
    }

    fn trim(&mut self) {
        let complete = self.segments.iter().filter(|s| s.complete).count();
        let excess = complete.saturating_sub(self.window_segments);
        for _ in 0..excess {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
        }
        if let Some(first) = self.segments.front() {
            let oldest = first.init_gen;
            // Keep the newest init even if nothing references it yet.
            let newest = self.init_gen;
            self.inits.retain(|(g, _)| *g >= oldest || *g == newest);
        }
    }

    /// Discontinuities up to the live edge: EXT-X-DISCONTINUITY-SEQUENCE
    /// plus those in the window.
    pub fn discontinuities(&self) -> u64 {
        let listed = self.segments.iter().filter(|s| s.discontinuity).count();
        self.discontinuity_sequence + listed as u64
    }

    /// The newest init generation.
    pub fn init_gen(&self) -> u32 {
        self.init_gen
    }

    /// Renumbers the window when this hub takes the stream over in a
    /// cluster (`livecdn_cluster::numbering`): every MSN moves up by
    /// `offset`, segments still numbered below `keep_from` are dropped
    /// (another origin may have named media with those numbers), the first
    /// kept segment follows a discontinuity that slid out (the switch of
    /// origins) so EXT-X-DISCONTINUITY-SEQUENCE becomes at least
    /// `discontinuities`, and init generations start at `init_gen` or
    /// above. A track with no media yet only takes the floors.
    pub fn rebase(&mut self, offset: u64, keep_from: u64, discontinuities: u64, init_gen: u32) {
        for s in &mut self.segments {
            s.msn += offset;
        }
        self.next_msn = (self.next_msn + offset).max(keep_from);
        while self.segments.front().is_some_and(|s| s.msn < keep_from) {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_sequence += 1;
            }
        }
        match self.segments.front_mut() {
            Some(first) => first.discontinuity = false,
            None => self.pending_discontinuity = false,
        }
        self.discontinuity_sequence = self.discontinuity_sequence.max(discontinuities);
        let oldest = self.inits.first().map_or(self.init_gen, |(g, _)| *g);
        let shift = init_gen.saturating_sub(oldest);
        if shift > 0 {
            for (g, _) in &mut self.inits {
                *g += shift;
            }
            for s in &mut self.segments {
                s.init_gen += shift;
            }
            self.init_gen += shift;
        }
        self.trim();
    }

    /// Measured (peak, average) bits per second over the complete segments
    /// of the window, for BANDWIDTH and AVERAGE-BANDWIDTH. Before the first
    /// segment completes, the complete parts so far stand in (the first
    /// holds the keyframe, so the early figure errs high, never low).
    pub fn bandwidth(&self) -> Option<(u64, u64)> {
        let ts = f64::from(self.timescale);
        let measure = |spans: &mut dyn Iterator<Item = (usize, u64)>| {
            let mut peak = 0f64;
            let (mut bytes, mut dur) = (0usize, 0f64);
            for (b, d) in spans {
                let d = d as f64 / ts;
                if d <= 0.0 {
                    continue;
                }
                peak = peak.max(b as f64 * 8.0 / d);
                bytes += b;
                dur += d;
            }
            (dur > 0.0).then(|| (peak as u64, (bytes as f64 * 8.0 / dur) as u64))
        };
        let complete = self.media_segments();
        measure(&mut complete.map(|s| (s.bytes(), s.duration()))).or_else(|| {
            let (bytes, dur) = self
                .segments
                .iter()
                .flat_map(|s| &s.parts)
                .filter(|p| p.complete)
                .fold((0, 0), |(b, d), p| (b + p.bytes, d + p.duration));
            measure(&mut std::iter::once((bytes, dur)))
        })
    }

    /// Complete segments that hold media (not gap placeholders).
    pub fn media_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments
            .iter()
            .filter(|s| s.complete && s.gap.is_none())
    }

    /// Mean length of the complete segments in seconds: the keyframe
    /// interval segments are cut at.
    pub fn mean_segment_seconds(&self) -> Option<f64> {
        let (n, ticks) = self
            .media_segments()
            .fold((0u64, 0u64), |(n, t), s| (n + 1, t + s.duration()));
        (n > 0).then(|| ticks as f64 / n as f64 / f64::from(self.timescale))
    }

    /// Frames per second over the window (chunks are one frame each).
    pub fn measured_frame_rate(&self) -> Option<f64> {
        let ts = f64::from(self.timescale);
        let (mut frames, mut dur) = (0usize, 0u64);
        for s in self.media_segments() {
            frames += s.parts.iter().map(|p| p.chunks.len() / 2).sum::<usize>();
            dur += s.duration();
        }
        (dur > 0).then(|| frames as f64 * ts / dur as f64)
    }

    /// Bytes of media held in the window (the memory bound).
    pub fn window_bytes(&self) -> usize {
        self.segments.iter().map(Segment::bytes).sum()
    }

    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let idx = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(idx)
    }

    /// (msn, part) of the last complete part, for RENDITION-REPORT and for
    /// deciding whether a blocking request is satisfied.
    pub fn last_complete_part(&self) -> Option<(u64, u32)> {
        self.segments.iter().rev().find_map(|s| {
            s.parts
                .iter()
                .rev()
                .find(|p| p.complete)
                .map(|p| (s.msn, p.index))
        })
    }

    /// MSN of the last complete segment.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.complete)
            .map(|s| s.msn)
    }

    /// MSN of the newest segment a playlist lists: the open one once it
    /// has a complete part, else the last complete one.
    pub fn last_listed_msn(&self) -> Option<u64> {
        let open = self.last_complete_part().map(|(msn, _)| msn);
        open.max(self.last_complete_msn())
    }

    /// Whether the playlist already satisfies `_HLS_msn=msn&_HLS_part=part`
    /// (RFC 8216bis 6.2.5.2): the segment is complete (no part asked), the
    /// part is complete or a later one of its segment is, or — for a part
    /// index past the last part of a completed segment, which names part 0
    /// of the next segment — that next part is.
    pub fn satisfies(&self, msn: u64, part: Option<u32>) -> bool {
        let (mut msn, mut part) = (msn, part);
        // Each step moves to the next segment: at most the window's length.
        for _ in 0..=self.segments.len() {
            let Some(seg) = self.segment(msn) else {
                // Older than the window counts as satisfied; newer does not.
                return self.segments.front().is_some_and(|f| msn < f.msn);
            };
            let Some(p) = part else {
                return seg.complete;
            };
            if seg.parts.iter().any(|x| x.complete && x.index >= p) {
                return true;
            }
            if !seg.complete {
                return false;
            }
            (msn, part) = (msn + 1, Some(0));
        }
        false
    }

    /// Looks up part `index` of segment `msn`, returning its chunks after
    /// the first `from` (a streaming response asks only for what is new).
    pub fn lookup_part(&self, msn: u64, index: u32, from: usize) -> PartLookup {
        let Some(first) = self.segments.front() else {
            return if msn <= self.next_msn + 1 {
                PartLookup::Upcoming
            } else {
                PartLookup::TooFarAhead
            };
        };
        if msn < first.msn {
            return PartLookup::Gone;
        }
        match self.segment(msn) {
            Some(seg) => match seg.parts.iter().find(|p| p.index == index) {
                Some(p) => PartLookup::Available {
                    chunks: p
                        .chunks
                        .get(from..)
                        .map(<[Bytes]>::to_vec)
                        .unwrap_or_default(),
                    complete: p.complete,
                },
                None if seg.complete => PartLookup::Gone,
                None if seg.parts.last().is_none_or(|p| index <= p.index + 2) => {
                    PartLookup::Upcoming
                }
                None => PartLookup::TooFarAhead,
            },
            // Parts of the next segment or the one after are worth holding
            // (a preload hint may point there).
            None if msn <= self.next_msn + 1 && index <= 2 => PartLookup::Upcoming,
            None => PartLookup::TooFarAhead,
        }
    }
}
