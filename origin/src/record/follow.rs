//! What a recording has not written yet: a pure diff of the packager's
//! window against what was handed out before, as the push tracker does
//! for edges. Called under the stream's lock, so it only clones `Bytes`
//! handles: the packager's own CMAF goes to disk, never re-muxed.
//!
//! Only complete segments are recorded (a recording has no use for parts).
//! A segment the window dropped before the recorder got to it (a disk
//! slower than the stream) is skipped, and the next one is marked as a
//! discontinuity; so is a transcoded rung's placeholder for media its
//! encoder did not make.

use super::journal::{MediaKind, RenditionMeta, SegmentEntry};
use crate::packager::{Packager, Track, AUDIO, SOURCE};
use bytes::Bytes;
use std::collections::HashMap;
use std::time::UNIX_EPOCH;

/// Which renditions a stream's recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renditions {
    /// The publisher's own video and the audio.
    Source,
    /// Those and every transcoded rung.
    All,
}

impl Renditions {
    pub fn wants(self, name: &str) -> bool {
        match self {
            Renditions::Source => name == SOURCE || name == AUDIO,
            Renditions::All => true,
        }
    }
}

/// One thing to put on disk, in order.
#[derive(Debug, Clone)]
pub enum Write {
    /// A rendition appears: journal what a master playlist needs.
    Rendition(RenditionMeta),
    /// An init section generation.
    Init {
        rendition: String,
        gen: u32,
        body: Bytes,
    },
    /// A complete segment: its parts' chunks, in order.
    Segment {
        entry: SegmentEntry,
        body: Vec<Bytes>,
    },
    /// The stream ended; everything before this was handed out.
    End,
}

#[derive(Debug, Default)]
struct Seen {
    announced: bool,
    init_gen: Option<u32>,
    msn: Option<u64>,
    /// The next recorded segment does not continue the last one.
    broken: bool,
}

/// Per-stream record of what was handed out.
#[derive(Debug)]
pub struct Follower {
    which: Renditions,
    seen: HashMap<String, Seen>,
    ended: bool,
}

impl Follower {
    pub fn new(which: Renditions) -> Self {
        Self {
            which,
            seen: HashMap::new(),
            ended: false,
        }
    }

    /// A new recording starts (after a failed one): renditions and init
    /// sections are handed out again; segments go on from where they were,
    /// the first one not continuing anything.
    pub fn restart(&mut self) {
        for s in self.seen.values_mut() {
            s.announced = false;
            s.init_gen = None;
            s.broken = false;
        }
        self.ended = false;
    }

    /// Everything new since the last poll.
    pub fn poll(&mut self, p: &Packager) -> Vec<Write> {
        let mut out = Vec::new();
        for t in p.tracks().filter(|t| self.which.wants(&t.name)) {
            let seen = self.seen.entry(t.name.clone()).or_default();
            if !seen.announced {
                let Some(meta) = rendition_meta(p, t) else {
                    continue;
                };
                seen.announced = true;
                out.push(Write::Rendition(meta));
            }
            new_inits(t, seen, &mut out);
            new_segments(t, seen, &mut out);
        }
        if p.is_ended() && !self.ended {
            self.ended = true;
            out.push(Write::End);
        }
        out
    }
}

fn new_inits(t: &Track, seen: &mut Seen, out: &mut Vec<Write>) {
    let newest = t.segments().back().map_or(0, |s| s.init_gen);
    let from = seen.init_gen.map_or(0, |g| g + 1);
    for gen in from..=newest {
        if let Some(body) = t.init(gen) {
            out.push(Write::Init {
                rendition: t.name.clone(),
                gen,
                body,
            });
        }
        seen.init_gen = Some(gen);
    }
}

fn new_segments(t: &Track, seen: &mut Seen, out: &mut Vec<Write>) {
    for s in t.segments().iter().filter(|s| s.complete) {
        if seen.msn.is_some_and(|last| s.msn <= last) {
            continue;
        }
        let skipped = seen.msn.is_some_and(|last| s.msn != last + 1);
        let first = seen.msn.is_none();
        seen.msn = Some(s.msn);
        if s.gap.is_some() {
            seen.broken = true;
            continue;
        }
        let discontinuity = !first && (s.discontinuity || skipped || seen.broken);
        seen.broken = false;
        let pdt_ms = s
            .pdt
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        out.push(Write::Segment {
            entry: SegmentEntry {
                rendition: t.name.clone(),
                msn: s.msn,
                gen: s.init_gen,
                start: s.start,
                duration: s.duration(),
                pdt_ms,
                discontinuity,
                bytes: s.bytes() as u64,
            },
            body: s.body(),
        });
    }
}

/// Codecs and picture (or channels) of a rendition, once its decoder
/// configuration is known.
fn rendition_meta(p: &Packager, t: &Track) -> Option<RenditionMeta> {
    if t.name == AUDIO {
        let a = p.audio_config()?;
        return Some(RenditionMeta {
            name: t.name.clone(),
            kind: MediaKind::Audio,
            codecs: a.codec_string(),
            timescale: t.timescale,
            width: None,
            height: None,
            frame_rate: None,
            channels: Some(a.channels),
        });
    }
    let v = p.video_config_of(&t.name)?;
    Some(RenditionMeta {
        name: t.name.clone(),
        kind: MediaKind::Video,
        codecs: v.codec_string(),
        timescale: t.timescale,
        width: Some(v.width),
        height: Some(v.height),
        frame_rate: v.frame_rate.or_else(|| t.measured_frame_rate()),
        channels: None,
    })
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
