//! One recording in memory: its renditions and segment lists, built by
//! applying journal lines, the same way while recording and when a start
//! reads the journal back ([`Recording::rebuild`]).

use super::fragment;
use super::journal::{Line, MediaKind, ObjectRef, RecordingMeta, RenditionMeta, SegmentEntry};
use serde::Serialize;
use std::collections::BTreeSet;

/// Where a recording stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum State {
    /// Being written.
    Recording,
    /// The stream ended; complete.
    Done,
    /// Found unfinished at a start (the process died) and closed then.
    Recovered,
    /// Stopped by an error; what was written before it plays.
    Error(String),
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Recording => "recording",
            State::Done => "done",
            State::Recovered => "recovered",
            State::Error(_) => "error",
        }
    }

    /// No more segments will come: a VOD (EXT-X-ENDLIST).
    pub fn is_final(&self) -> bool {
        !matches!(self, State::Recording)
    }
}

/// One recorded rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionIndex {
    pub meta: RenditionMeta,
    pub inits: BTreeSet<u32>,
    pub segments: Vec<SegmentEntry>,
}

impl RenditionIndex {
    /// Seconds of media.
    pub fn duration_secs(&self) -> f64 {
        let ticks = saturating_sum(self.segments.iter().map(|s| s.duration));
        ticks as f64 / f64::from(self.meta.timescale.max(1))
    }

    /// Peak and average bits per second over its segments.
    pub fn bandwidth(&self) -> (u64, u64) {
        let ts = f64::from(self.meta.timescale.max(1));
        let rate = |bytes: u64, ticks: u64| match ticks {
            0 => 0,
            t => (bytes as f64 * 8.0 / (t as f64 / ts)) as u64,
        };
        let peak = self
            .segments
            .iter()
            .map(|s| rate(s.bytes, s.duration))
            .max()
            .unwrap_or(0);
        let bytes = saturating_sum(self.segments.iter().map(|s| s.bytes));
        let ticks = saturating_sum(self.segments.iter().map(|s| s.duration));
        (peak, rate(bytes, ticks))
    }

    fn last_msn(&self) -> Option<u64> {
        self.segments.last().map(|s| s.msn)
    }
}

/// A recording: who, when, what, and how far.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub meta: RecordingMeta,
    pub renditions: Vec<RenditionIndex>,
    pub state: State,
    /// Bytes of media written (init sections and segments).
    pub bytes: u64,
    /// When it stopped (Unix ms), once it has.
    pub ended_ms: Option<u64>,
    /// Where it was uploaded, once it was.
    pub uploaded: Option<Vec<ObjectRef>>,
}

impl Recording {
    pub fn new(meta: RecordingMeta) -> Self {
        Self {
            meta,
            renditions: Vec::new(),
            state: State::Recording,
            bytes: 0,
            ended_ms: None,
            uploaded: None,
        }
    }

    pub fn rendition(&self, name: &str) -> Option<&RenditionIndex> {
        self.renditions.iter().find(|r| r.meta.name == name)
    }

    /// The first video rendition (the source when recorded), else audio:
    /// what the recording's duration is measured on.
    pub fn main(&self) -> Option<&RenditionIndex> {
        self.renditions
            .iter()
            .find(|r| r.meta.kind == MediaKind::Video)
            .or_else(|| self.renditions.first())
    }

    pub fn duration_secs(&self) -> f64 {
        self.main().map_or(0.0, RenditionIndex::duration_secs)
    }

    /// Applies one journal line.
    pub fn apply(&mut self, line: &Line) {
        match line {
            Line::Rendition(meta) => {
                if self.rendition(&meta.name).is_none() {
                    self.renditions.push(RenditionIndex {
                        meta: meta.clone(),
                        inits: BTreeSet::new(),
                        segments: Vec::new(),
                    });
                }
            }
            Line::Init {
                rendition,
                gen,
                bytes,
            } => {
                if let Some(r) = self.rendition_mut(rendition) {
                    r.inits.insert(*gen);
                    self.bytes = self.bytes.saturating_add(*bytes);
                }
            }
            Line::Segment(entry) => {
                if let Some(r) = self.rendition_mut(&entry.rendition) {
                    if r.last_msn().is_none_or(|m| entry.msn > m) {
                        r.segments.push(entry.clone());
                        self.bytes = self.bytes.saturating_add(entry.bytes);
                    }
                }
            }
            Line::Error { at_ms, reason } => {
                self.state = State::Error(reason.clone());
                self.ended_ms = Some(*at_ms);
            }
            Line::End { at_ms } => {
                self.state = State::Done;
                self.ended_ms = Some(*at_ms);
            }
            Line::Recovered { at_ms } => {
                self.state = State::Recovered;
                self.ended_ms = Some(*at_ms);
            }
            Line::Uploaded { objects, .. } => self.uploaded = Some(objects.clone()),
        }
    }

    fn rendition_mut(&mut self, name: &str) -> Option<&mut RenditionIndex> {
        self.renditions.iter_mut().find(|r| r.meta.name == name)
    }

    /// Reads a journal back. Lines apply until the first that does not
    /// parse (a line torn by a crash ends the journal); also returns the
    /// length of the text that applied, where further lines may go.
    pub fn rebuild(meta: RecordingMeta, journal: &str) -> (Self, usize) {
        let mut rec = Recording::new(meta);
        let mut used = 0;
        for text in journal.split_inclusive('\n') {
            let Some(body) = text.strip_suffix('\n') else {
                break;
            };
            match serde_json::from_str::<Line>(body) {
                Ok(line) => rec.apply(&line),
                Err(_) => break,
            }
            used += text.len();
        }
        (rec, used)
    }

    /// Unix ms where the recorded media ends (by the main rendition), or
    /// the start if nothing was recorded.
    pub fn media_end_ms(&self) -> u64 {
        self.main()
            .and_then(|r| {
                let ts = u64::from(r.meta.timescale.max(1));
                r.segments
                    .last()
                    .map(|s| s.pdt_ms.saturating_add(ms(s.duration, ts)))
            })
            .unwrap_or(self.meta.started_ms)
    }

    /// Segments over every rendition.
    pub fn segment_count(&self) -> usize {
        self.renditions.iter().map(|r| r.segments.len()).sum()
    }

    /// The MSNs after a rendition's last journaled segment that a crash
    /// may have left on disk unlisted, among the `on_disk` ones.
    pub fn unlisted(&self, rendition: &str, on_disk: &[u64]) -> Vec<u64> {
        let after = self.rendition(rendition).and_then(|r| r.last_msn());
        let mut v: Vec<u64> = on_disk
            .iter()
            .copied()
            .filter(|m| after.is_none_or(|a| *m > a))
            .collect();
        v.sort_unstable();
        v
    }

    /// A segment file the journal does not list (written just before a
    /// crash): parsed, and listed after the rendition's last segment if it
    /// is whole. Returns the journal line for it, if it was taken.
    pub fn recover_segment(&mut self, rendition: &str, msn: u64, file: &[u8]) -> Option<Line> {
        let scanned = fragment::scan(file).ok()?;
        let r = self.rendition(rendition)?;
        let ts = u64::from(r.meta.timescale.max(1));
        let prev = r.segments.last();
        let (gen, pdt_ms, continuous) = match prev {
            Some(p) => {
                let end = p.start.saturating_add(p.duration);
                let pdt = p.pdt_ms.saturating_add(ms(p.duration, ts));
                (
                    p.gen,
                    pdt,
                    p.msn.checked_add(1) == Some(msn) && end == scanned.start,
                )
            }
            None => (
                r.inits.last().copied().unwrap_or(0),
                self.meta.started_ms,
                true,
            ),
        };
        let line = Line::Segment(SegmentEntry {
            rendition: rendition.to_string(),
            msn,
            gen,
            start: scanned.start,
            duration: scanned.duration,
            pdt_ms,
            discontinuity: prev.is_some() && !continuous,
            bytes: file.len() as u64,
        });
        self.apply(&line);
        Some(line)
    }
}

/// A sum that stops at `u64::MAX` (journals are read back from disk and
/// may say anything).
fn saturating_sum(v: impl Iterator<Item = u64>) -> u64 {
    v.fold(0, u64::saturating_add)
}

/// `ticks` of a `timescale` in milliseconds, without overflowing.
fn ms(ticks: u64, timescale: u64) -> u64 {
    (u128::from(ticks) * 1000 / u128::from(timescale.max(1)))
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
