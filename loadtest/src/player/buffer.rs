//! The playback buffer: fetched media waiting to be played, drained in real
//! time once playback starts.
//!
//! Playback starts with the first chunk (hls.js in low-latency mode starts on
//! one part). From then the playhead advances with the clock passed in; when
//! the buffer runs dry the buffer is stalled from the exact instant it ran dry
//! until the next chunk arrives. Sans-IO like the rest of the player: no clock
//! is read here.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// One appended piece of media.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    duration: Duration,
    /// Program date-time of its first sample, when known.
    pdt: Option<SystemTime>,
}

/// What a buffer operation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferEvent {
    /// Playback started with the first chunk.
    Started,
    /// The buffer ran dry at this instant.
    StallStart {
        /// When the last buffered media finished playing.
        at: Instant,
    },
    /// Media arrived after a stall of this length.
    StallEnd {
        /// From running dry to the arrival of the next chunk.
        duration: Duration,
    },
}

/// Buffered media ahead of the playhead.
#[derive(Debug, Default)]
pub struct PlaybackBuffer {
    chunks: VecDeque<Chunk>,
    /// How much of the front chunk has been played.
    offset: Duration,
    /// The instant the playhead was last advanced to; `None` before playback.
    clock: Option<Instant>,
    /// When the current stall began.
    stalled_since: Option<Instant>,
    /// Program date-time of the end of the last chunk played out.
    played_end_pdt: Option<SystemTime>,
    /// The stream ended: running dry is the end, not a stall.
    finished: bool,
    /// Where presentation starts (program date-time): media before it is
    /// fetched and decoded but not played, as hls.js seeks to its start
    /// position inside the independent part it had to begin loading at.
    start_at: Option<SystemTime>,
}

impl PlaybackBuffer {
    /// An empty buffer; playback has not started.
    pub fn new() -> PlaybackBuffer {
        PlaybackBuffer::default()
    }

    /// Media buffered ahead of the playhead.
    pub fn level(&self) -> Duration {
        let total: Duration = self.chunks.iter().map(|c| c.duration).sum();
        total.saturating_sub(self.offset)
    }

    /// Whether playback has started.
    pub fn is_playing(&self) -> bool {
        self.clock.is_some()
    }

    /// Whether playback is stalled.
    pub fn is_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// Marks the stream as finished: running dry from now on is not a stall.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// When a stall begins if nothing arrives (for `poll_timeout`): just past
    /// the end of the buffered media. Media arriving exactly as the buffer
    /// empties keeps playback going.
    pub fn dry_at(&self) -> Option<Instant> {
        let clock = self.clock?;
        if self.stalled_since.is_some() || self.finished {
            return None;
        }
        clock.checked_add(self.level() + Duration::from_nanos(1))
    }

    /// Plays out media up to `now`. Returns `StallStart` (dated when the
    /// buffer emptied) once the playhead is past the end of the media.
    pub fn advance(&mut self, now: Instant) -> Option<BufferEvent> {
        let clock = self.clock?;
        if now <= clock {
            return None;
        }
        self.clock = Some(now);
        if self.stalled_since.is_some() {
            return None;
        }
        let mut left = now - clock;
        while let Some(front) = self.chunks.front() {
            let remaining = front.duration.saturating_sub(self.offset);
            if left < remaining {
                self.offset += left;
                return None;
            }
            if left == remaining && self.chunks.len() == 1 {
                // Exactly at the end: empty, but not stalled yet.
                self.offset = front.duration;
                return None;
            }
            left -= remaining;
            self.played_end_pdt = front.pdt.and_then(|p| p.checked_add(front.duration));
            self.chunks.pop_front();
            self.offset = Duration::ZERO;
        }
        if self.finished {
            return None;
        }
        let at = now.checked_sub(left).unwrap_or(now);
        self.stalled_since = Some(at);
        Some(BufferEvent::StallStart { at })
    }

    /// Sets where presentation will start; ignored once playback started.
    pub fn start_at(&mut self, pdt: SystemTime) {
        if self.clock.is_none() {
            self.start_at = Some(pdt);
        }
    }

    /// Adds a fetched chunk at `now` (call [`advance`](Self::advance) first).
    /// Starts playback on the first chunk that reaches the start position
    /// (from that position) and ends a stall.
    pub fn append(
        &mut self,
        now: Instant,
        duration: Duration,
        pdt: Option<SystemTime>,
    ) -> Option<BufferEvent> {
        if self.clock.is_none() {
            if let (Some(start), Some(at)) = (self.start_at, pdt) {
                let end = at.checked_add(duration).unwrap_or(at);
                if end <= start {
                    // Decoded to reach the start position, never shown.
                    self.played_end_pdt = Some(end);
                    return None;
                }
                self.chunks.push_back(Chunk { duration, pdt });
                self.offset = start.duration_since(at).unwrap_or_default();
                self.clock = Some(now);
                return Some(BufferEvent::Started);
            }
        }
        self.chunks.push_back(Chunk { duration, pdt });
        if self.clock.is_none() {
            self.clock = Some(now);
            return Some(BufferEvent::Started);
        }
        let since = self.stalled_since.take()?;
        self.clock = Some(now);
        Some(BufferEvent::StallEnd {
            duration: now.saturating_duration_since(since),
        })
    }

    /// Program date-time at the playhead: the front chunk's plus the played
    /// offset, or the end of the last played chunk while stalled.
    pub fn playhead_pdt(&self) -> Option<SystemTime> {
        match self.chunks.front() {
            Some(front) => front.pdt?.checked_add(self.offset),
            None => self.played_end_pdt,
        }
    }

    /// Program date-time of the end of the buffered media, when known: where a
    /// part fetched before it was listed (a preload hint) begins.
    pub fn end_pdt(&self) -> Option<SystemTime> {
        match self.chunks.back() {
            Some(back) => back.pdt?.checked_add(back.duration),
            None => self.played_end_pdt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PART: Duration = Duration::from_millis(333);

    #[test]
    fn playback_starts_at_the_start_position_inside_the_first_chunks() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut buffer = PlaybackBuffer::new();
        // Start 1.5 parts in: the first part is skipped, the second plays
        // from its middle.
        buffer.start_at(w0 + PART + PART / 2);
        assert_eq!(buffer.append(t0, PART, Some(w0)), None);
        assert!(!buffer.is_playing());
        assert_eq!(buffer.end_pdt(), Some(w0 + PART));
        assert_eq!(
            buffer.append(t0, PART, Some(w0 + PART)),
            Some(BufferEvent::Started)
        );
        assert_eq!(buffer.playhead_pdt(), Some(w0 + PART + PART / 2));
        assert_eq!(buffer.level(), PART / 2);
    }

    #[test]
    fn playback_starts_on_first_chunk_and_drains_in_real_time() {
        let t0 = Instant::now();
        let mut buffer = PlaybackBuffer::new();
        assert_eq!(buffer.advance(t0 + PART), None, "not playing yet");
        assert_eq!(buffer.append(t0, PART, None), Some(BufferEvent::Started));
        assert_eq!(buffer.append(t0, PART, None), None);
        assert_eq!(
            buffer.dry_at(),
            Some(t0 + 2 * PART + Duration::from_nanos(1))
        );
        assert_eq!(buffer.advance(t0 + PART), None);
        assert_eq!(buffer.level(), PART);
    }

    #[test]
    fn stall_is_timed_from_running_dry_to_next_chunk() {
        let t0 = Instant::now();
        let mut buffer = PlaybackBuffer::new();
        buffer.append(t0, PART, None);
        let late = t0 + Duration::from_secs(2);
        assert_eq!(
            buffer.advance(late),
            Some(BufferEvent::StallStart { at: t0 + PART })
        );
        assert!(buffer.is_stalled());
        assert_eq!(buffer.dry_at(), None);
        let resumed = late + Duration::from_secs(1);
        assert_eq!(buffer.advance(resumed), None);
        assert_eq!(
            buffer.append(resumed, PART, None),
            Some(BufferEvent::StallEnd {
                duration: resumed - (t0 + PART)
            })
        );
        assert_eq!(
            buffer.dry_at(),
            Some(resumed + PART + Duration::from_nanos(1))
        );
    }

    #[test]
    fn media_arriving_exactly_as_the_buffer_empties_is_not_a_stall() {
        let t0 = Instant::now();
        let mut buffer = PlaybackBuffer::new();
        buffer.append(t0, PART, None);
        assert_eq!(buffer.advance(t0 + PART), None);
        assert_eq!(buffer.level(), Duration::ZERO);
        assert_eq!(buffer.append(t0 + PART, PART, None), None);
        let mut dry = PlaybackBuffer::new();
        dry.append(t0, PART, None);
        dry.advance(t0 + PART);
        let at = dry.dry_at().unwrap_or(t0);
        assert_eq!(
            dry.advance(at),
            Some(BufferEvent::StallStart { at: t0 + PART })
        );
    }

    #[test]
    fn playhead_pdt_tracks_offset_and_stall() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut buffer = PlaybackBuffer::new();
        buffer.append(t0, PART, Some(w0));
        buffer.advance(t0 + Duration::from_millis(100));
        assert_eq!(buffer.playhead_pdt(), Some(w0 + Duration::from_millis(100)));
        assert_eq!(buffer.end_pdt(), Some(w0 + PART));
        buffer.advance(t0 + Duration::from_secs(1));
        assert_eq!(buffer.playhead_pdt(), Some(w0 + PART));
    }

    #[test]
    fn finished_stream_does_not_stall() {
        let t0 = Instant::now();
        let mut buffer = PlaybackBuffer::new();
        buffer.append(t0, PART, None);
        buffer.finish();
        assert_eq!(buffer.advance(t0 + Duration::from_secs(5)), None);
    }
}
