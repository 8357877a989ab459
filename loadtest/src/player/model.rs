//! The player's public types and its sans-IO entry points.
//!
//! Decisions live in sibling files: `fetch.rs` decides what to request next
//! ([`Player::poll_request`]) and `response.rs` digests answers
//! ([`Player::handle_response`]); `track.rs` holds what each track (the
//! variant's, and the separate audio rendition's) is loading. This file holds
//! the state they share, the clock handling and the event queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::abr::Abr;
use super::buffer::{BufferEvent, PlaybackBuffer};
pub use super::config::PlayerConfig;
use super::parse_cache::ParseCache;
use super::track::TrackState;
use super::window::Position;

/// Most events held for [`Player::poll_event`]; later ones are dropped (the
/// driver drains events after every call, so this only bounds a broken driver).
const MAX_EVENTS: usize = 4096;

/// How often Chromium fires `timeupdate` while playing, when hls.js
/// reconsiders the playback rate.
const TIMEUPDATE: Duration = Duration::from_millis(250);

/// What a request fetches; also the label of its latency metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    /// The URL the player was given (multivariant, or a media playlist).
    Master,
    /// A media playlist without delivery directives.
    Playlist,
    /// A media playlist with `_HLS_msn`/`_HLS_part` (held until the part exists).
    BlockingPlaylist,
    /// An `EXT-X-MAP` initialisation section.
    Init,
    /// A listed part.
    Part,
    /// The part named by `EXT-X-PRELOAD-HINT`, requested before it exists.
    HintedPart,
    /// A whole segment.
    Segment,
}

impl RequestKind {
    /// Every kind, in declaration order.
    pub const ALL: [RequestKind; 7] = [
        RequestKind::Master,
        RequestKind::Playlist,
        RequestKind::BlockingPlaylist,
        RequestKind::Init,
        RequestKind::Part,
        RequestKind::HintedPart,
        RequestKind::Segment,
    ];

    /// A metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Master => "master",
            RequestKind::Playlist => "playlist",
            RequestKind::BlockingPlaylist => "blocking_playlist",
            RequestKind::Init => "init",
            RequestKind::Part => "part",
            RequestKind::HintedPart => "hinted_part",
            RequestKind::Segment => "segment",
        }
    }

    /// Whether this fetches media (counted as throughput and fed to ABR).
    pub fn is_media(self) -> bool {
        matches!(
            self,
            RequestKind::Part | RequestKind::HintedPart | RequestKind::Segment
        )
    }
}

/// Which media a request serves. hls.js loads a variant's playlist and media
/// in its main stream controller and a separate audio rendition
/// (`EXT-X-MEDIA:TYPE=AUDIO` of the variant's `AUDIO` group) in its audio
/// stream controller, each with its own playlist loop; so does the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Track {
    /// The variant: its playlist and media (video, with audio when muxed),
    /// and the URL the player was given.
    Main,
    /// The separate audio rendition.
    Audio,
}

impl Track {
    /// Both tracks, main first.
    pub const ALL: [Track; 2] = [Track::Main, Track::Audio];

    /// A metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Main => "main",
            Track::Audio => "audio",
        }
    }

    /// Index into per-track arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Track::Main => 0,
            Track::Audio => 1,
        }
    }
}

/// A request for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Pass back to [`Player::handle_response`].
    pub id: u64,
    /// Absolute URL, resolved against the playlist that named it.
    pub url: String,
    /// What it fetches.
    pub kind: RequestKind,
    /// Which track it serves.
    pub track: Track,
    /// Index of the variant it belongs to (ascending bandwidth order); for
    /// audio requests the variant playing when it was sent (the audio
    /// rendition does not switch).
    pub rendition: usize,
}

/// How a request ended, as the driver saw it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An HTTP response (any status) with its whole body.
    Ok {
        /// HTTP status code.
        status: u16,
        /// The body.
        body: Bytes,
        /// From sending the request to the first byte of the response.
        ttfb: Duration,
        /// From sending the request to the last byte of the body.
        total: Duration,
    },
    /// No HTTP response: connect, TLS, reset or timeout.
    Failed {
        /// Which kind of failure, counted by kind in the report.
        kind: Failure,
        /// Human-readable reason, for logs.
        error: String,
    },
}

/// Why a request got no HTTP response. A report that only said "network"
/// could not tell a server that stopped answering in time from one that
/// reset streams or refused connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the request timeout.
    Timeout,
    /// TCP or QUIC connect (or name resolution) failed or timed out.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The connection or stream broke mid-exchange (reset, GOAWAY, closed,
    /// malformed framing).
    Protocol,
    /// The body was larger than the client accepts.
    BodyTooLarge,
    /// Anything else (a URL the client cannot send).
    Other,
}

impl Failure {
    /// The error kind in reports: `timeout`, `connect`, `tls`, `protocol`,
    /// `body_too_large` or `network`.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
            Failure::Tls => "tls",
            Failure::Protocol => "protocol",
            Failure::BodyTooLarge => "body_too_large",
            Failure::Other => "network",
        }
    }
}

/// A measurement, for [`crate::stats::Stats::record`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A request finished.
    Request {
        /// What it fetched.
        kind: RequestKind,
        /// Which track it served.
        track: Track,
        /// HTTP status; `None` when the request failed without a response.
        status: Option<u16>,
        /// Time to first byte.
        ttfb: Duration,
        /// Time to last byte.
        total: Duration,
        /// Body length.
        bytes: u64,
    },
    /// The first media arrived this long after the player was created.
    FirstPart {
        /// Time since [`Player::new`].
        after: Duration,
    },
    /// The playhead's distance behind live: wall clock minus its
    /// `PROGRAM-DATE-TIME`. Sampled whenever media is appended.
    Latency {
        /// Distance behind live.
        behind_live: Duration,
    },
    /// Playback stalled: the buffer of a track ran dry (with a separate
    /// audio rendition, the playhead needs both).
    StallStart,
    /// Playback resumed.
    StallEnd {
        /// How long it was stalled.
        duration: Duration,
    },
    /// The player changed rendition.
    Switch {
        /// Previous variant index.
        from: usize,
        /// New variant index.
        to: usize,
        /// `"throughput"` or `"stall"`.
        reason: &'static str,
    },
    /// Something went wrong; see [`Player`] for the kinds.
    Error {
        /// A [`Failure`] kind (`timeout`, `connect`, `tls`, `protocol`,
        /// `body_too_large`, `network`), `http_400`, `http_404`, `http_503`, `http_4xx`,
        /// `http_5xx`, `parse`, `delta_merge`, `fell_behind`, `playlist_reset`.
        kind: &'static str,
    },
}

/// One variant of the stream.
#[derive(Debug, Clone)]
pub(super) struct Rendition {
    pub(super) url: String,
    pub(super) bandwidth: u64,
    /// `AUDIO`: the group of its separate audio renditions.
    pub(super) audio_group: Option<String>,
}

/// What an in-flight request is for.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Master,
    Playlist,
    Init { url: String },
    Media { pos: Position, epoch: u64 },
}

/// A request that has not been answered.
#[derive(Debug, Clone)]
pub(super) struct Flight {
    pub(super) id: u64,
    pub(super) url: String,
    pub(super) kind: RequestKind,
    pub(super) track: Track,
    pub(super) rendition: usize,
    pub(super) target: Target,
}

/// A sans-IO LL-HLS player; see the [module docs](super) for the drive contract.
#[derive(Debug)]
pub struct Player {
    pub(super) config: PlayerConfig,
    pub(super) url: String,
    pub(super) created: Instant,
    pub(super) now: Instant,
    pub(super) wall: SystemTime,
    pub(super) next_id: u64,
    pub(super) master_loaded: bool,
    pub(super) renditions: Vec<Rendition>,
    pub(super) current: usize,
    /// URL of the separate audio rendition's playlist, when the starting
    /// variant names an `AUDIO` group with a `URI`.
    pub(super) audio_url: Option<String>,
    /// What each track is loading, by [`Track::index`].
    pub(super) tracks: [TrackState; 2],
    /// Where presentation starts (program date-time), once the main track
    /// has chosen it; the audio track starts at the same point.
    pub(super) start_pdt: Option<SystemTime>,
    pub(super) flights: Vec<Flight>,
    pub(super) buffer: PlaybackBuffer,
    pub(super) abr: Abr,
    pub(super) last_switch: Option<Instant>,
    pub(super) first_part: bool,
    /// Stalls since playback started (each raises the target latency).
    pub(super) stalls: u32,
    /// When the playback rate is next reconsidered (`timeupdate`).
    pub(super) rate_check_at: Option<Instant>,
    pub(super) events: VecDeque<Event>,
    /// Shared with other players of the run, if the driver gave one.
    pub(super) parse_cache: Option<Arc<ParseCache>>,
}

impl Player {
    /// A player for `url` (a multivariant or media playlist); nothing is sent
    /// until the first [`poll_request`](Self::poll_request).
    pub fn new(url: &str, config: PlayerConfig, now: Instant, wall: SystemTime) -> Player {
        let abr = Abr::new(config.abr_half_life);
        Player {
            config,
            url: url.to_owned(),
            created: now,
            now,
            wall,
            next_id: 0,
            master_loaded: false,
            renditions: Vec::new(),
            current: 0,
            audio_url: None,
            tracks: [TrackState::new(), TrackState::new()],
            start_pdt: None,
            flights: Vec::new(),
            buffer: PlaybackBuffer::new(1),
            abr,
            last_switch: None,
            first_part: false,
            stalls: 0,
            rate_check_at: None,
            events: VecDeque::new(),
            parse_cache: None,
        }
    }

    /// Shares playlist parsing with the other players given the same cache
    /// (see [`ParseCache`]); what the player does is unchanged.
    pub fn share_parses(&mut self, cache: Arc<ParseCache>) {
        self.parse_cache = Some(cache);
    }

    /// Advances playback to `now`: plays out buffered media (a dry buffer is a
    /// stall) and lets waiting retries go.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.tick(now, wall);
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) has work:
    /// the buffer running dry or a retry becoming due. Always after the last
    /// `now` passed in.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active_tracks()
            .iter()
            .flat_map(|&t| {
                let st = self.st(t);
                [st.playlist_wait, st.media_wait, self.plain_reload_at(t)]
            })
            .chain([self.buffer.dry_at(), self.rate_check_at])
            .flatten()
            .filter(|&at| at > self.now)
            .min()
    }

    /// The next measurement; drain after every `handle_*` call.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Index of the playing variant (ascending bandwidth order).
    pub fn rendition(&self) -> usize {
        self.current
    }

    /// Media buffered ahead of the playhead (what every track has).
    pub fn buffer_level(&self) -> Duration {
        self.buffer.level()
    }

    /// Whether the player follows a separate audio rendition.
    pub fn has_audio(&self) -> bool {
        self.audio_url.is_some()
    }

    /// The tracks being loaded: main, and audio when the variant has a
    /// separate audio rendition.
    pub(super) fn active_tracks(&self) -> &'static [Track] {
        if self.audio_url.is_some() {
            &Track::ALL
        } else {
            &Track::ALL[..1]
        }
    }

    pub(super) fn st(&self, track: Track) -> &TrackState {
        &self.tracks[track.index()]
    }

    pub(super) fn st_mut(&mut self, track: Track) -> &mut TrackState {
        &mut self.tracks[track.index()]
    }

    pub(super) fn push_event(&mut self, event: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        }
    }

    /// Moves the clock forward and plays out the buffer.
    pub(super) fn tick(&mut self, now: Instant, wall: SystemTime) {
        if now > self.now {
            self.now = now;
        }
        if wall > self.wall {
            self.wall = wall;
        }
        let event = self.buffer.advance(self.now);
        self.on_buffer_event(event);
        if self.rate_check_at.is_some_and(|at| self.now >= at) {
            self.update_rate();
        }
    }

    /// Reports a stall the buffer saw.
    pub(super) fn on_buffer_event(&mut self, event: Option<BufferEvent>) {
        if let Some(BufferEvent::StallStart { .. }) = event {
            self.stalls = self.stalls.saturating_add(1);
            self.push_event(Event::StallStart);
            self.consider_switch();
        }
    }

    /// Sets the playback rate as hls.js's latency controller would, from
    /// the main playlist's end plus its age (hls.js's live-edge estimate)
    /// against the playhead, by program date-time. hls.js decides on the
    /// media element's `timeupdate` (every 250 ms of playback in Chromium)
    /// and when the main playlist advances (before the new part is loaded),
    /// and the rate holds in between; so does this.
    pub(super) fn update_rate(&mut self) {
        let max_rate = self.config.max_live_sync_playback_rate;
        if max_rate <= 1.0 || !self.buffer.is_playing() {
            self.rate_check_at = None;
            return;
        }
        self.rate_check_at = Some(self.now + TIMEUPDATE);
        if self.buffer.is_stalled() {
            return;
        }
        let main = self.st(Track::Main);
        let sync = main
            .playlist
            .as_ref()
            .filter(|pl| !pl.end_list)
            .and_then(|pl| {
                let edge = super::window::playlist_end_pdt(pl)?;
                let age = self.now.saturating_duration_since(main.playlist_at?);
                let head = self.buffer.playhead_pdt()?;
                let latency = match (edge + age).duration_since(head) {
                    Ok(ahead) => ahead.as_secs_f64(),
                    Err(behind) => -behind.duration().as_secs_f64(),
                };
                let target_duration = pl.target_duration as f64;
                let part_target = pl.part_target.unwrap_or(target_duration);
                let increase =
                    self.config.live_sync_on_stall_increase.as_secs_f64() * f64::from(self.stalls);
                Some(super::latency::LiveSync {
                    latency,
                    target: self.target_latency().as_secs_f64() + increase.min(target_duration),
                    target_duration,
                    forward_buffer: self.buffer.level().as_secs_f64(),
                    edge_stalled: (age.as_secs_f64() - 3.0 * part_target).max(0.0),
                    max_rate,
                })
            });
        let rate = sync.map_or(1.0, |s| s.rate());
        if rate != self.buffer.rate() {
            let event = self.buffer.set_rate(self.now, rate);
            self.on_buffer_event(event);
        }
    }

    /// Runs the ABR decision and switches when it says so.
    pub(super) fn consider_switch(&mut self) {
        if !self.config.abr || self.renditions.len() < 2 {
            return;
        }
        if let Some(last) = self.last_switch {
            if self.now < last + self.config.abr_min_interval {
                return;
            }
        }
        let bandwidths: Vec<u64> = self.renditions.iter().map(|r| r.bandwidth).collect();
        let state = super::abr::AbrState {
            current: self.current,
            bandwidths: &bandwidths,
            buffer: self.buffer.track_level(Track::Main.index()),
            healthy_buffer: self.config.abr_healthy_buffer,
            stalled: self.buffer.is_stalled(),
        };
        if let Some((to, reason)) = self.abr.decide(state) {
            self.switch_to(to, reason);
        }
    }

    /// Changes rendition; the new playlist is fetched and playback continues
    /// at the same position (renditions are aligned). The audio rendition
    /// stays (hls.js's audio stream controller does not follow ABR).
    pub(super) fn switch_to(&mut self, to: usize, reason: &'static str) {
        if to == self.current || to >= self.renditions.len() {
            return;
        }
        self.push_event(Event::Switch {
            from: self.current,
            to,
            reason,
        });
        self.current = to;
        let main = self.st_mut(Track::Main);
        main.playlist = None;
        main.playlist_at = None;
        main.playlist_wait = None;
        self.last_switch = Some(self.now);
    }

    /// Samples latency behind live at the playhead.
    pub(super) fn sample_latency(&mut self) {
        if let Some(pdt) = self.buffer.playhead_pdt() {
            let behind_live = self.wall.duration_since(pdt).unwrap_or_default();
            self.push_event(Event::Latency { behind_live });
        }
    }

    /// Backoff after `failures` consecutive failures.
    pub(super) fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.config
            .retry_base
            .saturating_mul(factor)
            .min(self.config.retry_max)
    }
}
