//! What to request next: [`Player::poll_request`].
//!
//! Priority, for each track in turn (main, then audio), within
//! `max_parallel` requests in flight per track:
//! 1. the URL the player was given (once, retried with backoff);
//! 2. the track's playlist, plain, when the player has none;
//! 3. the init section the next media needs, then the next media itself,
//!    sequentially (one part or segment at a time, as hls.js loads fragments);
//! 4. once every listed part is fetched (or the buffer is full, or a part was
//!    404), ONE playlist reload: blocking for the next part when the server can
//!    block, else plain, paced at one part target;
//! 5. the preload-hinted part, when it is the next media (one at a time).
//!
//! The audio track loads no media before its start point is known (the main
//! track's) and the main track's first media has arrived: hls.js's audio
//! stream controller waits for the main playlist, then for the main
//! fragment's timestamps (`WAITING_INIT_PTS`) before it loads audio.
//!
//! At most one playlist request per track and rendition is ever in flight, so
//! there is no polling storm whatever the server answers.

use std::time::{Duration, Instant};

use livecdn_shared::playlist::PreloadHintType;

use super::model::{Flight, Player, Request, RequestKind, Target, Track};
use super::window::{live_edge, lookup, resolve_url, with_query, Lookup, Position};

/// Most gap or already-fetched parts skipped in one poll.
const MAX_SKIPS: usize = 64;

/// The next media request, worked out while the playlist is borrowed.
enum Next {
    Init(String),
    Media {
        url: String,
        kind: RequestKind,
        pos: Position,
    },
}

impl Player {
    /// The next request to send, or `None` until an answer or a timeout
    /// changes something. Call until `None` after every `handle_*`.
    pub fn poll_request(&mut self) -> Option<Request> {
        if !self.master_loaded {
            let in_flight = self
                .flights
                .iter()
                .any(|f| matches!(f.target, Target::Master));
            if in_flight || self.waiting(self.st(Track::Main).playlist_wait) {
                return None;
            }
            let (url, target) = (self.url.clone(), Target::Master);
            return Some(self.issue(Track::Main, url, RequestKind::Master, target));
        }
        for &track in self.active_tracks() {
            if let Some(request) = self.poll_track(track) {
                return Some(request);
            }
        }
        None
    }

    /// The playlist URL of `track`.
    fn track_url(&self, track: Track) -> Option<String> {
        match track {
            Track::Main => self.renditions.get(self.current).map(|r| r.url.clone()),
            Track::Audio => self.audio_url.clone(),
        }
    }

    fn poll_track(&mut self, track: Track) -> Option<Request> {
        let in_flight = self.flights.iter().filter(|f| f.track == track).count();
        if in_flight >= self.config.max_parallel.max(1) {
            return None;
        }
        let base = self.track_url(track)?;
        let current = self.current;
        let playlist_in_flight = self.flights.iter().any(|f| {
            f.track == track
                && matches!(f.target, Target::Playlist)
                && (track == Track::Audio || f.rendition == current)
        });
        if self.st(track).playlist.is_none() {
            if playlist_in_flight || self.waiting(self.st(track).playlist_wait) {
                return None;
            }
            return Some(self.issue(track, base, RequestKind::Playlist, Target::Playlist));
        }
        if let Some(request) = self.poll_media(track, &base) {
            return Some(request);
        }
        if !playlist_in_flight {
            if let Some(request) = self.poll_reload(track, &base) {
                return Some(request);
            }
        }
        self.poll_hint(track, &base)
    }

    /// When a plain (non-blocking) reload of `track` is next due.
    pub(super) fn plain_reload_at(&self, track: Track) -> Option<Instant> {
        let st = self.st(track);
        let pl = st.playlist.as_ref()?;
        if pl.end_list || st.can_block() {
            return None;
        }
        let interval = pl.part_target.unwrap_or(pl.target_duration as f64);
        Some(st.playlist_at? + super::window::secs(interval.max(0.1)))
    }

    pub(super) fn waiting(&self, until: Option<Instant>) -> bool {
        until.is_some_and(|at| self.now < at)
    }

    fn media_blocked(&self, track: Track) -> bool {
        let st = self.st(track);
        let audio_waits = track == Track::Audio && !self.st(Track::Main).got_media;
        audio_waits
            || st.media_needs_playlist
            || self.waiting(st.media_wait)
            || self.buffer.track_level(track.index()) >= self.config.max_buffer
            || self
                .flights
                .iter()
                .any(|f| f.track == track && matches!(f.target, Target::Init { .. }))
    }

    /// The in-flight hinted part of `track` for `pos`, if any.
    fn hint_covers(&self, track: Track, pos: Position) -> bool {
        let epoch = self.st(track).epoch;
        self.flights.iter().any(|f| {
            f.track == track
                && f.kind == RequestKind::HintedPart
                && matches!(f.target, Target::Media { pos: p, epoch: e } if p == pos && e == epoch)
        })
    }

    fn poll_media(&mut self, track: Track, base: &str) -> Option<Request> {
        if self.media_blocked(track) {
            return None;
        }
        let st = self.st(track);
        let sequential_busy = self.flights.iter().any(|f| {
            f.track == track
                && f.kind != RequestKind::HintedPart
                && matches!(f.target, Target::Media { epoch, .. } if epoch == st.epoch)
        });
        if sequential_busy {
            return None;
        }
        let pl = st.playlist.as_ref()?;
        let mut pos = st.pos?;
        let mut next = None;
        for _ in 0..MAX_SKIPS {
            let (at, found) = lookup(pl, pos);
            pos = at;
            let (uri, index, kind) = match found {
                Lookup::Part { part, index } => (&part.uri, index, RequestKind::Part),
                Lookup::Segment { segment, index } => match &segment.uri {
                    Some(uri) => (uri, index, RequestKind::Segment),
                    None => break,
                },
                Lookup::NotYet | Lookup::Gone => break,
            };
            let url = resolve_url(base, uri);
            let gap = match found {
                Lookup::Part { part, .. } => part.gap,
                _ => pl.segments.get(index).is_some_and(|s| s.gap),
            };
            if gap || st.hinted_url.as_deref() == Some(url.as_str()) {
                pos = if kind == RequestKind::Segment {
                    pos.next_segment()
                } else {
                    pos.next_part()
                };
                continue;
            }
            // A hint names its part by URL: when the server hinted the next
            // segment's first part, the in-flight hint was filed under the
            // position after the last listed part, not this one.
            if self.hint_covers(track, pos)
                || self
                    .flights
                    .iter()
                    .any(|f| f.track == track && f.kind == RequestKind::HintedPart && f.url == url)
            {
                break;
            }
            if let Some(map) = pl.map_uri_for(index) {
                let map = resolve_url(base, map);
                if st.init.as_deref() != Some(map.as_str()) {
                    next = Some(Next::Init(map));
                    break;
                }
            }
            next = Some(Next::Media { url, kind, pos });
            break;
        }
        self.st_mut(track).pos = Some(pos);
        match next? {
            Next::Init(url) => {
                let target = Target::Init { url: url.clone() };
                Some(self.issue(track, url, RequestKind::Init, target))
            }
            Next::Media { url, kind, pos } => {
                let epoch = self.st(track).epoch;
                Some(self.issue(track, url, kind, Target::Media { pos, epoch }))
            }
        }
    }

    fn poll_reload(&mut self, track: Track, base: &str) -> Option<Request> {
        let st = self.st(track);
        let pl = st.playlist.as_ref()?;
        if pl.end_list || self.waiting(st.playlist_wait) {
            return None;
        }
        if !st.can_block() {
            let due = self.plain_reload_at(track).is_none_or(|at| self.now >= at);
            let target = Target::Playlist;
            return due.then(|| self.issue(track, base.to_owned(), RequestKind::Playlist, target));
        }
        let caught_up = match st.pos {
            None => true,
            Some(pos) => {
                let (pos, found) = lookup(pl, pos);
                matches!(found, Lookup::NotYet | Lookup::Gone) || self.hint_covers(track, pos)
            }
        };
        let full = self.buffer.track_level(track.index()) >= self.config.max_buffer;
        if !(caught_up || full || st.media_needs_playlist) {
            return None;
        }
        let mut query = if pl.part_target.is_some() {
            let (msn, part) = pl.next_part();
            format!("_HLS_msn={msn}&_HLS_part={part}")
        } else {
            format!("_HLS_msn={}", pl.next_msn())
        };
        let skip_until = pl.server_control.as_ref().and_then(|s| s.can_skip_until);
        let fresh = |until: f64| {
            let age = st
                .playlist_at
                .map(|at| self.now.saturating_duration_since(at));
            age.is_some_and(|age| age < super::window::secs(until / 2.0))
        };
        let skip = self.config.use_delta && skip_until.is_some_and(fresh);
        if skip {
            query.push_str("&_HLS_skip=YES");
        }
        let url = with_query(base, &query);
        Some(self.issue(track, url, RequestKind::BlockingPlaylist, Target::Playlist))
    }

    fn poll_hint(&mut self, track: Track, base: &str) -> Option<Request> {
        if !self.config.use_hints
            || self.media_blocked(track)
            || self
                .flights
                .iter()
                .any(|f| f.track == track && f.kind == RequestKind::HintedPart)
        {
            return None;
        }
        let st = self.st(track);
        let pl = st.playlist.as_ref()?;
        let hint = pl
            .preload_hint
            .as_ref()
            .filter(|h| h.hint_type == PreloadHintType::Part)?;
        let pos = st.pos?;
        let edge = live_edge(pl);
        if lookup(pl, pos).0 != edge {
            return None;
        }
        let url = resolve_url(base, &hint.uri);
        if st.hinted_url.as_deref() == Some(url.as_str()) {
            return None;
        }
        let last = pl.segments.len().checked_sub(1)?;
        if let Some(map) = pl.map_uri_for(last) {
            let map = resolve_url(base, map);
            if st.init.as_deref() != Some(map.as_str()) {
                let target = Target::Init { url: map.clone() };
                return Some(self.issue(track, map, RequestKind::Init, target));
            }
        }
        let target = Target::Media {
            pos: edge,
            epoch: st.epoch,
        };
        Some(self.issue(track, url, RequestKind::HintedPart, target))
    }

    fn issue(&mut self, track: Track, url: String, kind: RequestKind, target: Target) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        let rendition = self.current;
        self.flights.push(Flight {
            id,
            url: url.clone(),
            kind,
            track,
            rendition,
            target,
        });
        Request {
            id,
            url,
            kind,
            track,
            rendition,
        }
    }

    /// How far behind live the main track starts.
    pub(super) fn start_behind(&self) -> Duration {
        self.config
            .start_behind
            .unwrap_or_else(|| self.target_latency())
    }

    /// The server's target latency: `PART-HOLD-BACK` (else `HOLD-BACK`, else
    /// three target durations), as hls.js in low-latency mode reads it.
    pub(super) fn target_latency(&self) -> Duration {
        let Some(pl) = self.st(Track::Main).playlist.as_ref() else {
            return Duration::ZERO;
        };
        let control = pl.server_control.as_ref();
        let part_hold_back = control
            .and_then(|c| c.part_hold_back)
            .filter(|_| pl.part_target.is_some());
        let hold_back = control.and_then(|c| c.hold_back);
        let secs = part_hold_back
            .or(hold_back)
            .unwrap_or(3.0 * pl.target_duration as f64);
        super::window::secs(secs)
    }
}
