//! The playback buffer: fetched media waiting to be played, drained in real
//! time once playback starts.
//!
//! One queue per track (the main one, and the separate audio rendition's
//! when there is one) under one playhead, as a media element plays what all
//! its source buffers hold: the level is the least any track has buffered,
//! playback starts when every track reaches the start position, and the
//! playhead stalls when any track runs dry. Playback starts with the first
//! chunk that reaches the start position (hls.js in low-latency mode starts
//! on one part). From then the playhead advances with the clock passed in;
//! when the buffer runs dry it is stalled from the exact instant it ran dry
//! until every track has media again. The playhead moves at a playback rate
//! (1, or more while catching up with live: `latency.rs`). Sans-IO like the
//! rest of the player: no clock is read here.

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

/// One track's media ahead of the playhead.
#[derive(Debug, Default, Clone)]
struct Queue {
    chunks: VecDeque<Chunk>,
    /// How much of the front chunk has been played.
    offset: Duration,
    /// Program date-time of the end of the last chunk played out (or
    /// decoded and skipped before the start position).
    played_end_pdt: Option<SystemTime>,
}

impl Queue {
    fn level(&self) -> Duration {
        let total: Duration = self.chunks.iter().map(|c| c.duration).sum();
        total.saturating_sub(self.offset)
    }

    /// Plays out `d` (at most the level).
    fn consume(&mut self, mut d: Duration) {
        while let Some(front) = self.chunks.front() {
            let remaining = front.duration.saturating_sub(self.offset);
            if d < remaining || (d == remaining && self.chunks.len() == 1) {
                // Exactly at the end of the last chunk: empty, kept for its
                // program date-time.
                self.offset += d;
                return;
            }
            d -= remaining;
            self.played_end_pdt = front.pdt.and_then(|p| p.checked_add(front.duration));
            self.chunks.pop_front();
            self.offset = Duration::ZERO;
        }
    }

    fn playhead_pdt(&self) -> Option<SystemTime> {
        match self.chunks.front() {
            Some(front) => front.pdt?.checked_add(self.offset),
            None => self.played_end_pdt,
        }
    }

    fn end_pdt(&self) -> Option<SystemTime> {
        match self.chunks.back() {
            Some(back) => back.pdt?.checked_add(back.duration),
            None => self.played_end_pdt,
        }
    }
}

/// Buffered media ahead of the playhead, per track.
#[derive(Debug)]
pub struct PlaybackBuffer {
    /// Track 0 is the main one: the playhead's program date-time is its.
    queues: Vec<Queue>,
    /// The instant the playhead was last advanced to; `None` before playback.
    clock: Option<Instant>,
    /// When the current stall began.
    stalled_since: Option<Instant>,
    /// The stream ended: running dry is the end, not a stall.
    finished: bool,
    /// Where presentation starts (program date-time): media before it is
    /// fetched and decoded but not played, as hls.js seeks to its start
    /// position inside the independent part it had to begin loading at.
    start_at: Option<SystemTime>,
    /// Media seconds played per second (above 1 while catching up).
    rate: f64,
    /// Media every track must hold ahead of the start position before
    /// playback starts.
    start_level: Duration,
}

impl PlaybackBuffer {
    /// An empty buffer for `tracks` tracks (at least one); playback has not
    /// started.
    pub fn new(tracks: usize) -> PlaybackBuffer {
        PlaybackBuffer {
            queues: vec![Queue::default(); tracks.max(1)],
            clock: None,
            stalled_since: None,
            finished: false,
            start_at: None,
            rate: 1.0,
            start_level: Duration::ZERO,
        }
    }

    /// Playback starts once every track holds `level` ahead of the start
    /// position (or the stream ended), not as soon as it is reached: a
    /// media element plays once it can advance (`HAVE_FUTURE_DATA`, after
    /// its renderers preroll), not on the last frames of one part.
    pub fn set_start_level(&mut self, level: Duration) {
        self.start_level = level;
    }

    /// Plays out media up to `now` at the old rate, then plays at `rate`
    /// (clamped to 1..=16).
    pub fn set_rate(&mut self, now: Instant, rate: f64) -> Option<BufferEvent> {
        let event = self.advance(now);
        self.rate = if rate.is_finite() {
            rate.clamp(1.0, 16.0)
        } else {
            1.0
        };
        event
    }

    /// The playback rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Media buffered ahead of the playhead in every track: the least any
    /// track holds.
    pub fn level(&self) -> Duration {
        self.queues
            .iter()
            .map(Queue::level)
            .min()
            .unwrap_or_default()
    }

    /// Media buffered ahead of the playhead in one track (zero for an
    /// unknown track).
    pub fn track_level(&self, track: usize) -> Duration {
        self.queues.get(track).map(Queue::level).unwrap_or_default()
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
    /// the end of the media every track holds. Media arriving exactly as the
    /// buffer empties keeps playback going.
    pub fn dry_at(&self) -> Option<Instant> {
        let clock = self.clock?;
        if self.stalled_since.is_some() || self.finished {
            return None;
        }
        clock.checked_add(self.level().div_f64(self.rate) + Duration::from_nanos(1))
    }

    /// Plays out media up to `now`. Returns `StallStart` (dated when the
    /// first track emptied) once the playhead is past the end of what every
    /// track holds.
    pub fn advance(&mut self, now: Instant) -> Option<BufferEvent> {
        let clock = self.clock?;
        if now <= clock {
            return None;
        }
        self.clock = Some(now);
        if self.stalled_since.is_some() {
            return None;
        }
        let elapsed = (now - clock).mul_f64(self.rate);
        let level = self.level();
        let played = elapsed.min(level);
        for queue in &mut self.queues {
            queue.consume(played);
        }
        if elapsed <= level || self.finished {
            return None;
        }
        let at = clock + played.div_f64(self.rate);
        self.stalled_since = Some(at);
        Some(BufferEvent::StallStart { at })
    }

    /// Sets where presentation will start; ignored once playback started.
    pub fn start_at(&mut self, pdt: SystemTime) {
        if self.clock.is_none() {
            self.start_at = Some(pdt);
        }
    }

    /// Adds a fetched chunk of `track` at `now` (call
    /// [`advance`](Self::advance) first). Playback starts (from the start
    /// position) once every track holds media reaching it; a stall ends
    /// once every track holds media again.
    pub fn append(
        &mut self,
        track: usize,
        now: Instant,
        duration: Duration,
        pdt: Option<SystemTime>,
    ) -> Option<BufferEvent> {
        let playing = self.clock.is_some();
        let start_at = self.start_at;
        let queue = self.queues.get_mut(track)?;
        if !playing && queue.chunks.is_empty() {
            if let (Some(start), Some(at)) = (start_at, pdt) {
                let end = at.checked_add(duration).unwrap_or(at);
                if end <= start {
                    // Decoded to reach the start position, never shown.
                    queue.played_end_pdt = Some(end);
                    return None;
                }
                queue.offset = start.duration_since(at).unwrap_or_default();
            }
        }
        queue.chunks.push_back(Chunk { duration, pdt });
        if !playing {
            let short = |q: &Queue| q.chunks.is_empty() || q.level() < self.start_level;
            if !self.finished && self.queues.iter().any(short) {
                return None;
            }
            self.clock = Some(now);
            return Some(BufferEvent::Started);
        }
        if self.level().is_zero() {
            return None;
        }
        let since = self.stalled_since.take()?;
        self.clock = Some(now);
        Some(BufferEvent::StallEnd {
            duration: now.saturating_duration_since(since),
        })
    }

    /// Program date-time at the main track's playhead: its front chunk's plus
    /// the played offset, or the end of its last played chunk while stalled.
    pub fn playhead_pdt(&self) -> Option<SystemTime> {
        self.queues.first()?.playhead_pdt()
    }

    /// Program date-time of the end of one track's buffered media, when
    /// known: where a part fetched before it was listed (a preload hint)
    /// begins.
    pub fn end_pdt(&self, track: usize) -> Option<SystemTime> {
        self.queues.get(track)?.end_pdt()
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
        let mut buffer = PlaybackBuffer::new(1);
        // Start 1.5 parts in: the first part is skipped, the second plays
        // from its middle.
        buffer.start_at(w0 + PART + PART / 2);
        assert_eq!(buffer.append(0, t0, PART, Some(w0)), None);
        assert!(!buffer.is_playing());
        assert_eq!(buffer.end_pdt(0), Some(w0 + PART));
        assert_eq!(
            buffer.append(0, t0, PART, Some(w0 + PART)),
            Some(BufferEvent::Started)
        );
        assert_eq!(buffer.playhead_pdt(), Some(w0 + PART + PART / 2));
        assert_eq!(buffer.level(), PART / 2);
    }

    #[test]
    fn playback_starts_on_first_chunk_and_drains_in_real_time() {
        let t0 = Instant::now();
        let mut buffer = PlaybackBuffer::new(1);
        assert_eq!(buffer.advance(t0 + PART), None, "not playing yet");
        assert_eq!(buffer.append(0, t0, PART, None), Some(BufferEvent::Started));
        assert_eq!(buffer.append(0, t0, PART, None), None);
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
        let mut buffer = PlaybackBuffer::new(1);
        buffer.append(0, t0, PART, None);
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
            buffer.append(0, resumed, PART, None),
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
        let mut buffer = PlaybackBuffer::new(1);
        buffer.append(0, t0, PART, None);
        assert_eq!(buffer.advance(t0 + PART), None);
        assert_eq!(buffer.level(), Duration::ZERO);
        assert_eq!(buffer.append(0, t0 + PART, PART, None), None);
        let mut dry = PlaybackBuffer::new(1);
        dry.append(0, t0, PART, None);
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
        let mut buffer = PlaybackBuffer::new(1);
        buffer.append(0, t0, PART, Some(w0));
        buffer.advance(t0 + Duration::from_millis(100));
        assert_eq!(buffer.playhead_pdt(), Some(w0 + Duration::from_millis(100)));
        assert_eq!(buffer.end_pdt(0), Some(w0 + PART));
        buffer.advance(t0 + Duration::from_secs(1));
        assert_eq!(buffer.playhead_pdt(), Some(w0 + PART));
    }

    #[test]
    fn finished_stream_does_not_stall() {
        let t0 = Instant::now();
        let mut buffer = PlaybackBuffer::new(1);
        buffer.append(0, t0, PART, None);
        buffer.finish();
        assert_eq!(buffer.advance(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn two_tracks_start_together_and_stall_when_either_runs_dry() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut buffer = PlaybackBuffer::new(2);
        buffer.start_at(w0 + PART / 2);
        // Video from its keyframe, a part before the start.
        assert_eq!(buffer.append(0, t0, PART, Some(w0)), None);
        assert_eq!(buffer.append(0, t0, PART, Some(w0 + PART)), None);
        assert!(!buffer.is_playing(), "no audio yet");
        assert_eq!(buffer.level(), Duration::ZERO);
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(
            buffer.append(1, t1, PART, Some(w0)),
            Some(BufferEvent::Started)
        );
        assert_eq!(buffer.playhead_pdt(), Some(w0 + PART / 2));
        assert_eq!(buffer.track_level(0), PART + PART / 2);
        assert_eq!(buffer.level(), PART / 2, "the audio holds less");
        // Audio runs dry first: the stall starts then, video still buffered.
        let late = t1 + PART;
        assert_eq!(
            buffer.advance(late),
            Some(BufferEvent::StallStart { at: t1 + PART / 2 })
        );
        assert_eq!(buffer.track_level(0), PART);
        // More video does not end the stall; audio does.
        assert_eq!(buffer.append(0, late, PART, Some(w0 + 2 * PART)), None);
        assert!(buffer.is_stalled());
        assert_eq!(
            buffer.append(1, late, PART, Some(w0 + PART)),
            Some(BufferEvent::StallEnd {
                duration: late - (t1 + PART / 2)
            })
        );
        assert_eq!(buffer.level(), PART);
        assert_eq!(buffer.playhead_pdt(), Some(w0 + PART));
    }

    #[test]
    fn playback_waits_for_a_start_level_ahead_of_the_start_position() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut buffer = PlaybackBuffer::new(1);
        buffer.set_start_level(PART);
        // The start falls 20 ms before the end of the first part.
        buffer.start_at(w0 + PART - Duration::from_millis(20));
        assert_eq!(buffer.append(0, t0, PART, Some(w0)), None);
        assert!(!buffer.is_playing(), "20 ms ahead is not enough");
        let t1 = t0 + Duration::from_millis(30);
        assert_eq!(buffer.advance(t1), None);
        assert_eq!(
            buffer.append(0, t1, PART, Some(w0 + PART)),
            Some(BufferEvent::Started)
        );
        assert_eq!(buffer.level(), PART + Duration::from_millis(20));
        assert_eq!(
            buffer.playhead_pdt(),
            Some(w0 + PART - Duration::from_millis(20))
        );
    }
}
