//! The packager: FLV frames in, a live window of CMAF parts, segments and
//! LL-HLS playlists out. Sans-IO: no sockets, no tasks, no clock reads.
//!
//! # Drive contract
//!
//! The I/O layer owns one `Packager` per live stream (behind a short-lived
//! lock, never held across an await) and:
//!
//! 1. feeds decoder configuration with [`Packager::handle_video_config`] /
//!    [`Packager::handle_audio_config`] and media with
//!    [`Packager::handle_frame`], passing the arrival time `now`;
//! 2. reports publisher loss and return with [`Packager::handle_publisher_lost`]
//!    and [`Packager::handle_publisher_back`];
//! 3. calls [`Packager::handle_timeout`] when [`Packager::poll_timeout`] says;
//! 4. after any call that returned `true` (something changed), wakes the
//!    requests waiting for new parts or playlists, which then read the window
//!    through [`Packager::track`] and [`Packager::media_playlist`].
//!
//! ```
//! use livecdn_origin::packager::{Packager, PackagerConfig};
//! use std::time::{Instant, SystemTime};
//! let now = Instant::now();
//! let mut p = Packager::new(PackagerConfig::default(), now, SystemTime::now());
//! assert!(p.track("source").is_none()); // nothing until a config arrives
//! assert_eq!(p.poll_timeout(), None);
//! ```
//!
//! # Cutting
//!
//! One track leads (video when there is video, else audio): it cuts a part
//! when the next frame would make it longer than the advertised PART-TARGET,
//! and a segment at the first IDR after the segment target. Each cut becomes
//! a boundary (media time, MSN, part number) that the other track applies when
//! its media reaches that time, so MSN and part numbers name the same media
//! time in every rendition.

mod cut;
mod dash;
mod health;
mod playlist;
mod renumber;
mod rung;
mod timeline;
mod track;

#[cfg(test)]
mod normal_tests;
#[cfg(test)]
mod opus_tests;
#[cfg(test)]
mod renumber_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod rung_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use dash::UTC_TIMING;
pub use health::{Health, HealthReport};
pub use rung::RungCounters;
pub use track::{Part, PartLookup, Segment, Track};

use bytes::Bytes;
use cut::TrackState;
use livecdn_shared::cmaf::{self, AudioInit, OpusInit, TrackInit, VideoInit, OPUS_TIMESCALE};
use livecdn_shared::media::{AudioConfig, Frame, TrackKind, VideoConfig};
use std::time::{Duration, Instant, SystemTime};

/// Video decode timestamps use the MPEG 90 kHz clock: FLV milliseconds map to
/// it exactly.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Rendition name of the passthrough video.
pub const SOURCE: &str = livecdn_shared::config::SOURCE_RUNG;
/// Rendition name of the audio.
pub const AUDIO: &str = livecdn_shared::config::AUDIO_RENDITION;
/// The Opus rendition made from the AAC for WebRTC viewers (see
/// [`crate::opus`]). Served and pushed like the others, but not listed in
/// the multivariant playlist or the MPD: HLS players get the AAC.
pub const OPUS: &str = livecdn_shared::config::OPUS_RENDITION;
/// Opus frames the follower may hold boundaries for before its first
/// packet: a transcoder that never produces one cannot grow them.
const MAX_OPUS_PENDING: usize = 256;

/// Packaging parameters (from `[llhls]` in the origin config).
#[derive(Debug, Clone, Copy)]
pub struct PackagerConfig {
    pub part_target: Duration,
    pub segment_target: Duration,
    pub window_segments: usize,
    pub reconnect_grace: Duration,
    /// LL-HLS: parts, preload hints and blocking reload advertised, and
    /// the segment in production listed in the MPD. Off for a channel in
    /// `NORMAL` latency mode ([`PackagerConfig::normal_latency`]).
    pub low_latency: bool,
    /// Make the `opus` rendition from the AAC (for WebRTC viewers, at the
    /// origin and at edges).
    pub opus: bool,
}

/// A `NORMAL` latency stream's segment target.
pub const NORMAL_SEGMENT_TARGET: Duration = Duration::from_secs(6);

impl Default for PackagerConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(333),
            segment_target: Duration::from_secs(2),
            window_segments: 10,
            reconnect_grace: Duration::from_secs(10),
            low_latency: true,
            opus: false,
        }
    }
}

impl PackagerConfig {
    /// This configuration for a `NORMAL` latency stream: 6 s segments (or
    /// the configured target if longer) and no parts in its playlists.
    /// Parts are still cut inside, at 1 s, so that the window's memory and
    /// the code paths stay the same; nothing lists them.
    pub fn normal_latency(self) -> Self {
        Self {
            segment_target: self.segment_target.max(NORMAL_SEGMENT_TARGET),
            part_target: Duration::from_secs(1),
            low_latency: false,
            ..self
        }
    }

    /// The PART-TARGET we advertise: 1% above the configured target, so that
    /// e.g. ten 30 fps frames (333.3 ms) fit a 333 ms target.
    pub fn advertised_part_target(&self) -> Duration {
        self.part_target + self.part_target / 100
    }

    /// A segment without an IDR is cut anyway after this long, so a broken
    /// encoder cannot grow the window without bound.
    pub fn max_segment(&self) -> Duration {
        (self.segment_target * 3).max(Duration::from_secs(10))
    }
}

/// Which track drives the cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    Undecided,
    Video,
    Audio,
}

/// The live state of one stream: every rendition's window.
#[derive(Debug)]
pub struct Packager {
    cfg: PackagerConfig,
    video: Option<TrackState>,
    audio: Option<TrackState>,
    /// The AAC as Opus, following the lead's cuts like the audio.
    opus: Option<TrackState>,
    /// Transcoded video renditions, following the source's cuts.
    rungs: Vec<rung::Rung>,
    /// Output-timeline decode time (ms) of the last source video frame
    /// accepted, for feeding the encoder; None if the last call took none.
    last_video_out: Option<u32>,
    video_config: Option<VideoConfig>,
    audio_config: Option<AudioConfig>,
    lead: Lead,
    /// Clock anchors: wall time = wall0 + (now - mono0).
    mono0: Instant,
    wall0: SystemTime,
    /// PROGRAM-DATE-TIME anchor for this publisher session: media time (ms
    /// of the output timeline) and the wall clock when it arrived.
    pdt_anchor: Option<(f64, SystemTime)>,
    /// Raw FLV time of this publisher session's first frame, and where on the
    /// output timeline (ms) that session starts.
    session_origin: Option<(u32, f64)>,
    resume_at_ms: f64,
    lost_at: Option<Instant>,
    ended: bool,
    health: Health,
    /// Numbering floors from taking the stream over in a cluster, for
    /// tracks made afterwards.
    floor: Option<livecdn_cluster::Rebase>,
    /// Frames dropped because they came before the first IDR or config.
    pub dropped_frames: u64,
}

impl Packager {
    pub fn new(cfg: PackagerConfig, now: Instant, wall: SystemTime) -> Self {
        Self {
            cfg,
            video: None,
            audio: None,
            opus: None,
            rungs: Vec::new(),
            last_video_out: None,
            video_config: None,
            audio_config: None,
            lead: Lead::Undecided,
            mono0: now,
            wall0: wall,
            pdt_anchor: None,
            session_origin: None,
            resume_at_ms: 0.0,
            lost_at: None,
            ended: false,
            health: Health::default(),
            floor: None,
            dropped_frames: 0,
        }
    }

    pub fn config(&self) -> &PackagerConfig {
        &self.cfg
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.wall0 + now.saturating_duration_since(self.mono0)
    }

    /// A video sequence header. A changed config after a reconnect makes a
    /// new init segment generation.
    pub fn handle_video_config(&mut self, config: VideoConfig) -> bool {
        let init = cmaf::init_segment(&TrackInit::Video(VideoInit {
            timescale: VIDEO_TIMESCALE,
            width: config.width,
            height: config.height,
            avcc: config.avcc.clone(),
        }));
        // Duration of the first frame, before any interval is measured:
        // whole milliseconds of the SPS frame rate (FLV timestamps are whole
        // milliseconds, so this never overlaps the next frame), else 1/60 s.
        let fallback = config
            .frame_rate
            .filter(|f| *f > 1.0 && *f < 300.0)
            .map_or(VIDEO_TIMESCALE / 60, |f| (1000.0 / f).floor() as u32 * 90);
        let fallback = u64::from(fallback);
        let (window, floor) = (self.cfg.window_segments, self.floor);
        let state = self.video.get_or_insert_with(|| {
            TrackState::new(TrackKind::Video, SOURCE, VIDEO_TIMESCALE, window, fallback)
                .floored(floor)
        });
        state.track.set_init(init);
        self.video_config = Some(config);
        true
    }

    /// An AAC sequence header.
    pub fn handle_audio_config(&mut self, config: AudioConfig) -> bool {
        let init = cmaf::init_segment(&TrackInit::Audio(AudioInit {
            timescale: config.sample_rate,
            sample_rate: config.sample_rate,
            channels: config.channels,
            asc: config.asc.clone(),
        }));
        let (window, floor) = (self.cfg.window_segments, self.floor);
        let spf = u64::from(config.samples_per_frame());
        let rate = config.sample_rate;
        let state = self.audio.get_or_insert_with(|| {
            TrackState::new(TrackKind::Audio, AUDIO, rate, window, spf).floored(floor)
        });
        if state.track.timescale != rate {
            tracing::warn!(
                old = state.track.timescale,
                new = rate,
                "audio sample rate changed mid-stream; keeping the old track"
            );
            return false;
        }
        state.track.set_init(init);
        self.audio_config = Some(config);
        true
    }

    /// The Opus rendition's configuration (from [`crate::opus`]): mono or
    /// stereo, and the encoder's lookahead.
    pub fn handle_opus_config(&mut self, channels: u8, pre_skip: u16) -> bool {
        let init = cmaf::init_segment(&TrackInit::Opus(OpusInit { channels, pre_skip }));
        let (window, floor) = (self.cfg.window_segments, self.floor);
        let frame = crate::opus::OPUS_FRAME as u64;
        let state = self.opus.get_or_insert_with(|| {
            TrackState::new(TrackKind::Audio, OPUS, OPUS_TIMESCALE, window, frame).floored(floor)
        });
        state.track.set_init(init);
        true
    }

    /// One Opus packet, timed on the publisher's clock like the AAC frame
    /// it came from. It follows the lead's cuts; it never leads.
    pub fn handle_opus_frame(&mut self, frame: Frame) -> bool {
        if self.ended {
            return false;
        }
        let (Some((origin_raw, origin_ms)), Some(state)) =
            (self.session_origin, self.opus.as_mut())
        else {
            return false;
        };
        let rel_ms = f64::from(frame.dts_ms.wrapping_sub(origin_raw) as i32);
        let continue_at = state.continue_at(origin_ms + rel_ms);
        let dts = state.map_dts(frame.dts_ms, continue_at);
        state.follow_frame(dts, &frame)
    }

    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video_config.as_ref()
    }

    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio_config.as_ref()
    }

    /// One frame. Returns true if the window changed.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) -> bool {
        self.last_video_out = None;
        if self.ended {
            return false;
        }
        self.health.record(now, &frame);
        if self.lead == Lead::Undecided {
            self.lead = if self.video.is_some() {
                Lead::Video
            } else if self.audio.is_some() {
                Lead::Audio
            } else {
                self.dropped_frames += 1;
                return false;
            };
        }
        let leads = matches!(
            (self.lead, frame.track),
            (Lead::Video, TrackKind::Video) | (Lead::Audio, TrackKind::Audio)
        );
        let (origin_raw, origin_ms) = *self
            .session_origin
            .get_or_insert((frame.dts_ms, self.resume_at_ms));
        let wall = self.wall(now);
        let cfg = self.cfg;
        let state = match frame.track {
            TrackKind::Video => self.video.as_mut(),
            TrackKind::Audio => self.audio.as_mut(),
        };
        let Some(state) = state else {
            self.dropped_frames += 1;
            return false;
        };
        // Where this track's first frame of the session lands on the output
        // timeline, keeping A/V offsets of the input.
        let rel_ms = f64::from(frame.dts_ms.wrapping_sub(origin_raw) as i32);
        let continue_at = state.continue_at(origin_ms + rel_ms);
        let dts = state.map_dts(frame.dts_ms, continue_at);
        if leads {
            let anchor = *self
                .pdt_anchor
                .get_or_insert((state.ticks_to_ms(dts), wall));
            let pdt_of =
                |ms: f64| anchor.1 + Duration::from_secs_f64(((ms - anchor.0) / 1000.0).max(0.0));
            let Ok(boundaries) = state.lead_frame(&cfg, dts, &frame, &pdt_of) else {
                self.dropped_frames += 1;
                return false;
            };
            if frame.track == TrackKind::Video {
                self.last_video_out = Some(rung::output_ms(dts));
                for r in &mut self.rungs {
                    r.push_boundaries(&boundaries);
                }
                if let Some(msn) = boundaries
                    .iter()
                    .find(|b| b.segment.is_some())
                    .map(|b| b.msn)
                {
                    self.mirror_down_rungs(msn);
                }
            }
            if let Some(o) = self.opus.as_mut() {
                if o.pending.len() < MAX_OPUS_PENDING {
                    o.pending.extend(boundaries.iter().cloned());
                }
            }
            let follower = match frame.track {
                TrackKind::Video => self.audio.as_mut(),
                TrackKind::Audio => self.video.as_mut(),
            };
            if let Some(f) = follower {
                f.pending.extend(boundaries);
            }
            true
        } else if state.follow_frame(dts, &frame) {
            if frame.track == TrackKind::Video {
                self.last_video_out = Some(rung::output_ms(dts));
            }
            true
        } else {
            self.dropped_frames += 1;
            false
        }
    }

    /// The publisher disconnected: close what is open and wait for it to come
    /// back within the grace period.
    pub fn handle_publisher_lost(&mut self, now: Instant) -> bool {
        self.lost_at = Some(now);
        let mut end_ms: f64 = self.resume_at_ms;
        for s in [self.video.as_mut(), self.audio.as_mut(), self.opus.as_mut()]
            .into_iter()
            .flatten()
        {
            s.track.close_segment();
            s.pending.clear();
            s.track.mark_discontinuity();
            s.reset_timeline();
            end_ms = end_ms.max(s.end_ms());
        }
        self.resume_at_ms = end_ms;
        self.stop_rungs();
        self.session_origin = None;
        self.pdt_anchor = None;
        true
    }

    /// A publisher is back on the same stream (same or backup encoder).
    pub fn handle_publisher_back(&mut self, _now: Instant) -> bool {
        self.lost_at = None;
        self.ended = false;
        true
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.lost_at, self.ended) {
            (Some(at), false) => Some(at + self.cfg.reconnect_grace),
            _ => None,
        }
    }

    /// Ends the stream (EXT-X-ENDLIST) once the grace period has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(at) if now >= at => {
                self.ended = true;
                true
            }
            _ => false,
        }
    }

    /// The operator stopped the stream: it ends now (EXT-X-ENDLIST), with
    /// no grace period for the publisher to come back.
    pub fn handle_stop(&mut self, now: Instant) -> bool {
        if self.lost_at.is_none() {
            self.handle_publisher_lost(now);
        }
        self.ended = true;
        true
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn is_live(&self) -> bool {
        self.lost_at.is_none() && !self.ended
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// A rendition's window by name (`source`, `audio`, `opus`).
    pub fn track(&self, name: &str) -> Option<&Track> {
        self.tracks().chain(self.opus()).find(|t| t.name == name)
    }

    /// The media type of a rendition's init sections, parts and segments.
    pub fn content_type(&self, rendition: &str) -> &'static str {
        if rendition == AUDIO || rendition == OPUS || self.video_config.is_none() {
            "audio/mp4"
        } else {
            "video/mp4"
        }
    }

    /// The Opus rendition, once it has an init segment. Not among
    /// [`Packager::tracks`], which are what HLS and DASH players list.
    pub fn opus(&self) -> Option<&Track> {
        self.opus
            .as_ref()
            .map(|s| &s.track)
            .filter(|t| t.has_init())
    }

    /// Every rendition that has an init segment: the source, the
    /// transcoded rungs, the audio.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.video
            .iter()
            .chain(self.rungs.iter().map(|r| &r.state))
            .chain(self.audio.iter())
            .map(|s| &s.track)
            .filter(|t| t.has_init())
    }

    /// Output-timeline decode time (ms) of the source video frame the last
    /// [`Packager::handle_frame`] accepted: what the encoder is fed.
    pub fn last_video_out_ms(&self) -> Option<u32> {
        self.last_video_out
    }

    /// Raw bytes of a rendition's init segment generation.
    pub fn init(&self, name: &str, gen: u32) -> Option<Bytes> {
        self.track(name)?.init(gen)
    }
}
