//! What to request next: [`Player::poll_request`].
//!
//! Priority, within `max_parallel` requests in flight:
//! 1. the URL the player was given (once, retried with backoff);
//! 2. the current rendition's playlist, plain, when the player has none;
//! 3. the init section the next media needs, then the next media itself,
//!    sequentially (one part or segment at a time, as hls.js loads fragments);
//! 4. once every listed part is fetched (or the buffer is full, or a part was
//!    404), ONE playlist reload: blocking for the next part when the server can
//!    block, else plain, paced at one part target;
//! 5. the preload-hinted part, when it is the next media (one at a time).
//!
//! At most one playlist request per rendition is ever in flight, so there is
//! no polling storm whatever the server answers.

use std::time::{Duration, Instant};

use livecdn_shared::playlist::PreloadHintType;

use super::model::{Flight, Player, Request, RequestKind, Target};
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
        if self.flights.len() >= self.config.max_parallel.max(1) {
            return None;
        }
        if !self.master_loaded {
            let in_flight = self
                .flights
                .iter()
                .any(|f| matches!(f.target, Target::Master));
            if in_flight || self.waiting(self.playlist_wait) {
                return None;
            }
            return Some(self.issue(self.url.clone(), RequestKind::Master, Target::Master));
        }
        let base = self.renditions.get(self.current)?.url.clone();
        let current = self.current;
        let playlist_in_flight = self
            .flights
            .iter()
            .any(|f| matches!(f.target, Target::Playlist) && f.rendition == current);
        if self.playlist.is_none() {
            if playlist_in_flight || self.waiting(self.playlist_wait) {
                return None;
            }
            let target = Target::Playlist;
            return Some(self.issue(base, RequestKind::Playlist, target));
        }
        if let Some(request) = self.poll_media(&base) {
            return Some(request);
        }
        if !playlist_in_flight {
            if let Some(request) = self.poll_reload(&base) {
                return Some(request);
            }
        }
        self.poll_hint(&base)
    }

    /// When a plain (non-blocking) reload is next due.
    pub(super) fn plain_reload_at(&self) -> Option<Instant> {
        let pl = self.playlist.as_ref()?;
        if pl.end_list || self.can_block() {
            return None;
        }
        let interval = pl.part_target.unwrap_or(pl.target_duration as f64);
        Some(self.playlist_at? + super::window::secs(interval.max(0.1)))
    }

    fn can_block(&self) -> bool {
        let server = self
            .playlist
            .as_ref()
            .and_then(|p| p.server_control.as_ref());
        self.blocking_ok && server.is_some_and(|s| s.can_block_reload)
    }

    pub(super) fn waiting(&self, until: Option<Instant>) -> bool {
        until.is_some_and(|at| self.now < at)
    }

    fn media_blocked(&self) -> bool {
        self.media_needs_playlist
            || self.waiting(self.media_wait)
            || self.buffer.level() >= self.config.max_buffer
            || self
                .flights
                .iter()
                .any(|f| matches!(f.target, Target::Init { .. }))
    }

    /// The in-flight hinted part for `pos`, if any.
    fn hint_covers(&self, pos: Position) -> bool {
        self.flights.iter().any(|f| {
            f.kind == RequestKind::HintedPart
                && matches!(f.target, Target::Media { pos: p, epoch } if p == pos && epoch == self.epoch)
        })
    }

    fn poll_media(&mut self, base: &str) -> Option<Request> {
        if self.media_blocked() {
            return None;
        }
        let sequential_busy = self.flights.iter().any(|f| {
            f.kind != RequestKind::HintedPart
                && matches!(f.target, Target::Media { epoch, .. } if epoch == self.epoch)
        });
        if sequential_busy {
            return None;
        }
        let pl = self.playlist.as_ref()?;
        let mut pos = self.pos?;
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
            if gap || self.hinted_url.as_deref() == Some(url.as_str()) {
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
            if self.hint_covers(pos)
                || self
                    .flights
                    .iter()
                    .any(|f| f.kind == RequestKind::HintedPart && f.url == url)
            {
                break;
            }
            if let Some(map) = pl.map_uri_for(index) {
                let map = resolve_url(base, map);
                if self.init.as_deref() != Some(map.as_str()) {
                    next = Some(Next::Init(map));
                    break;
                }
            }
            next = Some(Next::Media { url, kind, pos });
            break;
        }
        self.pos = Some(pos);
        match next? {
            Next::Init(url) => {
                Some(self.issue(url.clone(), RequestKind::Init, Target::Init { url }))
            }
            Next::Media { url, kind, pos } => {
                let target = Target::Media {
                    pos,
                    epoch: self.epoch,
                };
                Some(self.issue(url, kind, target))
            }
        }
    }

    fn poll_reload(&mut self, base: &str) -> Option<Request> {
        let pl = self.playlist.as_ref()?;
        if pl.end_list || self.waiting(self.playlist_wait) {
            return None;
        }
        if !self.can_block() {
            let due = self.plain_reload_at().is_none_or(|at| self.now >= at);
            let target = Target::Playlist;
            return due.then(|| self.issue(base.to_owned(), RequestKind::Playlist, target));
        }
        let caught_up = match self.pos {
            None => true,
            Some(pos) => {
                let (pos, found) = lookup(pl, pos);
                matches!(found, Lookup::NotYet | Lookup::Gone) || self.hint_covers(pos)
            }
        };
        let full = self.buffer.level() >= self.config.max_buffer;
        if !(caught_up || full || self.media_needs_playlist) {
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
            let age = self
                .playlist_at
                .map(|at| self.now.saturating_duration_since(at));
            age.is_some_and(|age| age < super::window::secs(until / 2.0))
        };
        let skip = self.config.use_delta && skip_until.is_some_and(fresh);
        if skip {
            query.push_str("&_HLS_skip=YES");
        }
        let url = with_query(base, &query);
        Some(self.issue(url, RequestKind::BlockingPlaylist, Target::Playlist))
    }

    fn poll_hint(&mut self, base: &str) -> Option<Request> {
        if self.media_blocked()
            || self
                .flights
                .iter()
                .any(|f| f.kind == RequestKind::HintedPart)
        {
            return None;
        }
        let pl = self.playlist.as_ref()?;
        let hint = pl
            .preload_hint
            .as_ref()
            .filter(|h| h.hint_type == PreloadHintType::Part)?;
        let pos = self.pos?;
        let edge = live_edge(pl);
        if lookup(pl, pos).0 != edge {
            return None;
        }
        let url = resolve_url(base, &hint.uri);
        if self.hinted_url.as_deref() == Some(url.as_str()) {
            return None;
        }
        let last = pl.segments.len().checked_sub(1)?;
        if let Some(map) = pl.map_uri_for(last) {
            let map = resolve_url(base, map);
            if self.init.as_deref() != Some(map.as_str()) {
                return Some(self.issue(map.clone(), RequestKind::Init, Target::Init { url: map }));
            }
        }
        let target = Target::Media {
            pos: edge,
            epoch: self.epoch,
        };
        Some(self.issue(url, RequestKind::HintedPart, target))
    }

    fn issue(&mut self, url: String, kind: RequestKind, target: Target) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        let rendition = self.current;
        self.flights.push(Flight {
            id,
            url: url.clone(),
            kind,
            rendition,
            target,
        });
        Request {
            id,
            url,
            kind,
            rendition,
        }
    }

    /// How far behind live to start in `pl`.
    pub(super) fn start_behind(&self) -> Duration {
        if let Some(behind) = self.config.start_behind {
            return behind;
        }
        let Some(pl) = self.playlist.as_ref() else {
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
