//! Sans-IO pacing of a looped FLV clip: which tag to send, with which RTMP
//! timestamp, and when.
//!
//! A [`Schedule`] holds the clip's tags split per track. It releases both
//! sequence headers first (timestamp 0), then every media tag at its real-time
//! position after `start`, looping the clip forever. Each loop is shifted by
//! the loop length (the video span plus one frame duration), so timestamps
//! keep increasing smoothly per track across loops; the audio kept per loop
//! is the window of the same length starting at the first audio tag, so the
//! audio gap across a loop boundary is never larger than one audio frame.
//! A loop rarely holds a whole number of audio frames (4 s of AAC at 48 kHz
//! is 187.5 frames; the window keeps 188), and a server times audio by
//! counting samples, so an audio frame is dropped whenever the audio sent
//! would otherwise run half a frame or more ahead of the timeline: without
//! that, the demo's audio ran 10.7 ms per loop (0.27 %) ahead of its video,
//! and players that align the two by timestamps drifted apart with it.
//! Output timestamps wrap like RTMP's 32-bit millisecond clock.
//!
//! # Drive contract
//!
//! No clock is read here (STYLE.md rule 1): the caller passes `now`.
//! 1. Call [`Schedule::poll`] until it returns `None`, sending every
//!    [`Action`] in order.
//! 2. Sleep until [`Schedule::next_deadline`] (or until other I/O wakes you),
//!    then go to 1.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use livecdn_loadtest::publisher::{Action, Schedule};
//!
//! let start = Instant::now();
//! let mut schedule = Schedule::from_flv(livecdn_loadtest::sample_flv(), start).unwrap();
//! let mut now = start;
//! let mut sent = 0;
//! while now < start + Duration::from_millis(500) {
//!     while let Some(action) = schedule.poll(now) {
//!         match action {
//!             Action::Video(tag) | Action::Audio(tag) => assert!(!tag.body.is_empty()),
//!         }
//!         sent += 1;
//!     }
//!     now = schedule.next_deadline(); // a real driver sleeps until here
//! }
//! assert!(sent > 20);
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use livecdn_shared::flv::{
    parse_audio_tag, parse_video_tag, AudioTag, FlvError, FlvReader, FlvTag, TagType, VideoTag,
};

#[cfg(test)]
mod tests;

/// One tag to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send as an RTMP video message (type 9).
    Video(ScheduledTag),
    /// Send as an RTMP audio message (type 8).
    Audio(ScheduledTag),
}

impl Action {
    /// The tag, whichever track it belongs to.
    pub fn tag(&self) -> &ScheduledTag {
        match self {
            Action::Video(tag) | Action::Audio(tag) => tag,
        }
    }
}

/// An FLV tag body with its rewritten timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledTag {
    /// RTMP timestamp (decode time) in ms; wraps at `u32::MAX`.
    pub timestamp_ms: u32,
    /// The FLV tag body, unchanged from the clip (composition offsets stay
    /// valid because they are relative to the decode time).
    pub body: Bytes,
    /// A video keyframe (always `false` for audio).
    pub keyframe: bool,
    /// The codec sequence header (AVC decoder config / AAC
    /// AudioSpecificConfig) rather than a frame.
    pub sequence_header: bool,
}

/// Why a clip cannot be scheduled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The clip is not a readable FLV file.
    #[error("clip is not valid FLV: {0}")]
    Flv(#[from] FlvError),
    /// The clip has fewer than two video frames (or, audio-only, two audio
    /// frames), so no frame duration and loop length can be derived.
    #[error("clip has fewer than two frames; cannot derive a loop length")]
    TooFewFrames,
    /// A track has frames but no sequence header before them.
    #[error("clip has {0} frames but no {0} sequence header")]
    MissingSequenceHeader(&'static str),
    /// The first video frame is not a keyframe, so a loop would start
    /// undecodable.
    #[error("clip's first video frame is not a keyframe")]
    FirstVideoNotKeyframe,
    /// Decode timestamps of a track go backwards.
    #[error("clip's {track} timestamps go backwards at {timestamp_ms} ms")]
    TimestampsGoBackwards {
        /// `"video"` or `"audio"`.
        track: &'static str,
        /// The offending timestamp.
        timestamp_ms: u32,
    },
    /// The clip carries a codec the publisher does not send.
    #[error("clip carries unsupported codec {0}")]
    Unsupported(String),
}

/// One media frame of the clip.
#[derive(Debug, Clone)]
struct ClipTag {
    /// Timestamp in the clip, ms.
    ts: u32,
    body: Bytes,
    keyframe: bool,
}

/// One track's frames and where the schedule is in them.
#[derive(Debug, Clone)]
struct Track {
    tags: Vec<ClipTag>,
    next: usize,
    loop_index: u64,
    /// Frames sent so far (audio: to keep the sample count on the timeline).
    sent: u64,
}

impl Track {
    fn new(tags: Vec<ClipTag>) -> Track {
        Track {
            tags,
            next: 0,
            loop_index: 0,
            sent: 0,
        }
    }

    /// The mean frame duration in the clip, ms.
    fn frame_ms(&self) -> Option<f64> {
        let (first, last) = (self.tags.first()?, self.tags.last()?);
        let n = self.tags.len().checked_sub(1).filter(|&n| n > 0)?;
        Some(f64::from(last.ts - first.ts) / n as f64)
    }

    /// Whether the next frame would put the audio sent half a frame or more
    /// ahead of its timeline position (frames counted at the mean duration).
    fn runs_ahead(&self, loop_ms: u64) -> bool {
        let (Some(frame), Some(at), Some(first)) =
            (self.frame_ms(), self.next_ms(loop_ms), self.tags.first())
        else {
            return false;
        };
        let covered = self.sent as f64 * frame;
        covered - (at - u64::from(first.ts)) as f64 >= frame / 2.0
    }

    /// Timeline position (ms after start, not wrapped) of the next tag.
    fn next_ms(&self, loop_ms: u64) -> Option<u64> {
        let tag = self.tags.get(self.next)?;
        Some(u64::from(tag.ts) + self.loop_index * loop_ms)
    }

    fn advance(&mut self) -> Option<ClipTag> {
        let tag = self.tags.get(self.next)?.clone();
        self.next += 1;
        self.sent += 1;
        if self.next == self.tags.len() {
            self.next = 0;
            self.loop_index += 1;
        }
        Some(tag)
    }
}

/// Paces a looped clip in real time (see the module docs for the drive
/// contract).
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    timestamp_offset: u32,
    loop_ms: u64,
    /// Sequence headers not yet released (video first).
    headers: Vec<Action>,
    video: Track,
    audio: Track,
}

impl Schedule {
    /// Reads every tag of an FLV file and builds a schedule from them.
    pub fn from_flv(file: Bytes, start: Instant) -> Result<Schedule, ScheduleError> {
        Schedule::new(read_tags(file)?, start)
    }

    /// Builds a schedule from a clip's tags (in file order), starting the
    /// timeline at `start`.
    ///
    /// Script tags (`onMetaData`), AVC end-of-sequence and command frames
    /// are dropped, as are repeated sequence headers: each loop must not tell
    /// the server the stream ended or changed.
    pub fn new(tags: Vec<FlvTag>, start: Instant) -> Result<Schedule, ScheduleError> {
        let mut video_header = None;
        let mut audio_header = None;
        let mut video = Vec::new();
        let mut audio = Vec::new();
        for tag in tags {
            match tag.tag_type {
                TagType::Video => match parse_video_tag(tag.body.clone())? {
                    VideoTag::AvcSequenceHeader(_) => {
                        video_header.get_or_insert(tag.body);
                    }
                    VideoTag::AvcNalus { keyframe, .. } => {
                        if video_header.is_none() {
                            return Err(ScheduleError::MissingSequenceHeader("video"));
                        }
                        video.push(ClipTag {
                            ts: tag.timestamp_ms,
                            body: tag.body,
                            keyframe,
                        });
                    }
                    VideoTag::AvcEndOfSequence | VideoTag::CommandFrame => {}
                    VideoTag::Unsupported { codec } => {
                        return Err(ScheduleError::Unsupported(codec))
                    }
                },
                TagType::Audio => match parse_audio_tag(tag.body.clone())? {
                    AudioTag::AacSequenceHeader(_) => {
                        audio_header.get_or_insert(tag.body);
                    }
                    AudioTag::AacRaw(_) => {
                        if audio_header.is_none() {
                            return Err(ScheduleError::MissingSequenceHeader("audio"));
                        }
                        audio.push(ClipTag {
                            ts: tag.timestamp_ms,
                            body: tag.body,
                            keyframe: false,
                        });
                    }
                    AudioTag::Unsupported { codec } => {
                        return Err(ScheduleError::Unsupported(codec))
                    }
                },
                TagType::Script | TagType::Other(_) => {}
            }
        }
        check_monotonic(&video, "video")?;
        check_monotonic(&audio, "audio")?;
        if video.first().is_some_and(|tag| !tag.keyframe) {
            return Err(ScheduleError::FirstVideoNotKeyframe);
        }
        let primary = if video.is_empty() { &audio } else { &video };
        let loop_ms = loop_length_ms(primary).ok_or(ScheduleError::TooFewFrames)?;
        trim_to_window(&mut video, loop_ms);
        trim_to_window(&mut audio, loop_ms);

        let header = |body: Bytes| ScheduledTag {
            timestamp_ms: 0,
            body,
            keyframe: false,
            sequence_header: true,
        };
        let mut headers = Vec::new();
        if let Some(body) = audio_header.filter(|_| !audio.is_empty()) {
            headers.push(Action::Audio(header(body)));
        }
        if let Some(body) = video_header.filter(|_| !video.is_empty()) {
            headers.push(Action::Video(ScheduledTag {
                keyframe: true,
                ..header(body)
            }));
        }
        Ok(Schedule {
            start,
            timestamp_offset: 0,
            loop_ms,
            headers,
            video: Track::new(video),
            audio: Track::new(audio),
        })
    }

    /// Adds `offset_ms` (wrapping) to every output timestamp, e.g. to test
    /// the 32-bit wrap or to continue another publisher's timeline.
    pub fn with_timestamp_offset(mut self, offset_ms: u32) -> Schedule {
        self.timestamp_offset = offset_ms;
        for action in &mut self.headers {
            match action {
                Action::Video(tag) | Action::Audio(tag) => tag.timestamp_ms = offset_ms,
            }
        }
        self
    }

    /// The length of one loop of the clip.
    pub fn loop_length(&self) -> Duration {
        Duration::from_millis(self.loop_ms)
    }

    /// The next tag whose time has come at `now`, or `None` until
    /// [`Schedule::next_deadline`].
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        if now < self.next_deadline() {
            return None;
        }
        if let Some(header) = self.headers.pop() {
            return Some(header);
        }
        // At most one audio frame is surplus per loop.
        if self.audio.runs_ahead(self.loop_ms) {
            self.audio.advance();
            self.audio.sent -= 1;
            if now < self.next_deadline() {
                return None;
            }
        }
        let video_ms = self.video.next_ms(self.loop_ms);
        let audio_ms = self.audio.next_ms(self.loop_ms);
        // Ties go to video, so a keyframe leads its loop.
        let take_video = match (video_ms, audio_ms) {
            (Some(v), Some(a)) => v <= a,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let (track, at_ms) = if take_video {
            (&mut self.video, video_ms)
        } else {
            (&mut self.audio, audio_ms)
        };
        let at_ms = at_ms?;
        let tag = track.advance()?;
        let scheduled = ScheduledTag {
            // Truncation to u32 is the RTMP wrap.
            timestamp_ms: self.timestamp_offset.wrapping_add(at_ms as u32),
            body: tag.body,
            keyframe: tag.keyframe,
            sequence_header: false,
        };
        Some(if take_video {
            Action::Video(scheduled)
        } else {
            Action::Audio(scheduled)
        })
    }

    /// When the next tag is due. Always in the future of the last tag
    /// released; the clip loops forever.
    pub fn next_deadline(&self) -> Instant {
        if !self.headers.is_empty() {
            return self.start;
        }
        let next = [
            self.video.next_ms(self.loop_ms),
            self.audio.next_ms(self.loop_ms),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
        self.start + Duration::from_millis(next)
    }
}

/// Reads every tag of an in-memory FLV file.
pub fn read_tags(file: Bytes) -> Result<Vec<FlvTag>, FlvError> {
    let mut reader = FlvReader::new(file)?;
    let mut tags = Vec::new();
    while let Some(tag) = reader.next_tag()? {
        tags.push(tag);
    }
    Ok(tags)
}

fn check_monotonic(tags: &[ClipTag], track: &'static str) -> Result<(), ScheduleError> {
    match tags.windows(2).find(|pair| pair[1].ts < pair[0].ts) {
        Some(pair) => Err(ScheduleError::TimestampsGoBackwards {
            track,
            timestamp_ms: pair[1].ts,
        }),
        None => Ok(()),
    }
}

/// The span of `n` frames from first to last, plus one average frame
/// duration: `(last - first) * n / (n - 1)`, rounded to the nearest ms (4000
/// for 120 frames at 30 fps stamped 0..=3967).
fn loop_length_ms(frames: &[ClipTag]) -> Option<u64> {
    let (first, last) = (frames.first()?, frames.last()?);
    let n = frames.len() as u64;
    if n < 2 {
        return None;
    }
    let span = u64::from(last.ts - first.ts);
    let loop_ms = (2 * span * n + (n - 1)) / (2 * (n - 1));
    (loop_ms > 0).then_some(loop_ms)
}

/// Keeps the tags inside `[first, first + loop_ms)`, so the next loop's
/// first tag follows the last kept one by less than one frame.
fn trim_to_window(tags: &mut Vec<ClipTag>, loop_ms: u64) {
    if let Some(first) = tags.first().map(|tag| u64::from(tag.ts)) {
        tags.retain(|tag| u64::from(tag.ts) < first + loop_ms);
    }
}
