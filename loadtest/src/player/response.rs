//! Digesting answers: [`Player::handle_response`].
//!
//! * 2xx: a master picks the variants; a playlist replaces (or, as a delta
//!   update, merges into) the current one and places the playhead; media goes
//!   into the buffer and feeds the throughput estimate.
//! * 503: the same request again after `retry_503`.
//! * 404 on media: no media until the next playlist. 404 elsewhere, other
//!   statuses and network failures: retry with capped exponential backoff.
//! * 400 on a blocking reload: the server cannot block; reload plainly.
//!
//! Each answer acts on the track its request served; a track's failures
//! and retries do not hold up the other's.

use std::time::Duration;

use bytes::Bytes;
use livecdn_shared::playlist::MultivariantPlaylist;

use super::buffer::BufferEvent;
use super::model::{Event, Flight, Outcome, Player, Rendition, RequestKind, Target, Track};
use super::parse_cache::{resolve, Resolved};
use super::window::{
    live_edge, lookup, part_pdt, pdt_at, playlist_end_pdt, position_at_pdt, resolve_url, secs,
    start_position, Lookup, Position,
};

impl Player {
    /// Feeds the answer to request `id`. Unknown ids are ignored.
    pub fn handle_response(
        &mut self,
        now: std::time::Instant,
        wall: std::time::SystemTime,
        id: u64,
        outcome: Outcome,
    ) {
        self.tick(now, wall);
        let Some(index) = self.flights.iter().position(|f| f.id == id) else {
            return;
        };
        let flight = self.flights.remove(index);
        match outcome {
            Outcome::Failed { kind, .. } => {
                self.push_event(Event::Request {
                    kind: flight.kind,
                    track: flight.track,
                    status: None,
                    ttfb: Duration::ZERO,
                    total: Duration::ZERO,
                    bytes: 0,
                });
                self.push_event(Event::Error {
                    kind: kind.as_str(),
                });
                self.retry_later(&flight, None);
            }
            Outcome::Ok {
                status,
                body,
                ttfb,
                total,
            } => {
                let bytes = body.len() as u64;
                self.push_event(Event::Request {
                    kind: flight.kind,
                    track: flight.track,
                    status: Some(status),
                    ttfb,
                    total,
                    bytes,
                });
                if (200..300).contains(&status) {
                    self.on_success(flight, body, ttfb, total);
                } else {
                    self.on_status(&flight, status);
                }
            }
        }
    }

    /// Schedules a retry of this flight's class: after `delay`, or after an
    /// exponential backoff when `None`.
    fn retry_later(&mut self, flight: &Flight, delay: Option<Duration>) {
        let playlist = matches!(flight.target, Target::Master | Target::Playlist);
        let st = self.st_mut(flight.track);
        let failures = if playlist {
            &mut st.playlist_failures
        } else {
            &mut st.media_failures
        };
        *failures = failures.saturating_add(1);
        let failures = *failures;
        let at = self.now + delay.unwrap_or_else(|| self.backoff(failures));
        let st = self.st_mut(flight.track);
        if playlist {
            st.playlist_wait = Some(at);
        } else {
            st.media_wait = Some(at);
        }
    }

    fn on_status(&mut self, flight: &Flight, status: u16) {
        let kind = match status {
            400 => "http_400",
            404 => "http_404",
            503 => "http_503",
            401..=499 => "http_4xx",
            500..=599 => "http_5xx",
            _ => "http_other",
        };
        self.push_event(Event::Error { kind });
        match (status, &flight.target) {
            (503, _) => self.retry_later(flight, Some(self.config.retry_503)),
            (404, Target::Media { .. }) => self.st_mut(flight.track).media_needs_playlist = true,
            (400, _) if flight.kind == RequestKind::BlockingPlaylist => {
                self.st_mut(flight.track).blocking_ok = false;
            }
            _ => self.retry_later(flight, None),
        }
    }

    fn on_success(&mut self, flight: Flight, body: Bytes, ttfb: Duration, total: Duration) {
        match flight.target {
            Target::Master => self.on_master(&body),
            Target::Playlist => {
                let blocking = flight.kind == RequestKind::BlockingPlaylist;
                self.on_playlist(flight.track, flight.rendition, &body, blocking);
            }
            Target::Init { url } => {
                let st = self.st_mut(flight.track);
                st.init = Some(url);
                st.media_failures = 0;
            }
            Target::Media { pos, epoch } if epoch == self.st(flight.track).epoch => {
                let transfer = if flight.kind == RequestKind::HintedPart {
                    total.saturating_sub(ttfb)
                } else {
                    total
                };
                self.on_media(&flight, pos, body.len() as u64, transfer);
            }
            Target::Media { .. } => {}
        }
    }

    /// An unparsable playlist of `track`: retried after a backoff.
    fn parse_failed(&mut self, track: Track) {
        self.push_event(Event::Error { kind: "parse" });
        let st = self.st_mut(track);
        st.playlist_failures = st.playlist_failures.saturating_add(1);
        let failures = st.playlist_failures;
        let at = self.now + self.backoff(failures);
        self.st_mut(track).playlist_wait = Some(at);
    }

    fn on_master(&mut self, body: &Bytes) {
        let Ok(text) = std::str::from_utf8(body) else {
            return self.parse_failed(Track::Main);
        };
        if !text.contains("#EXT-X-STREAM-INF") {
            self.renditions = vec![Rendition {
                url: self.url.clone(),
                bandwidth: 0,
                audio_group: None,
            }];
            self.master_loaded = true;
            self.current = 0;
            return self.on_playlist(Track::Main, 0, body, false);
        }
        let Ok(master) = MultivariantPlaylist::parse(text) else {
            return self.parse_failed(Track::Main);
        };
        let mut renditions: Vec<Rendition> = master
            .variants
            .iter()
            .map(|v| Rendition {
                url: resolve_url(&self.url, &v.uri),
                bandwidth: v.bandwidth,
                audio_group: v.audio_group.clone(),
            })
            .collect();
        if renditions.is_empty() {
            return self.parse_failed(Track::Main);
        }
        renditions.sort_by_key(|r| r.bandwidth);
        self.current = self
            .config
            .start_rendition
            .unwrap_or(0)
            .min(renditions.len() - 1);
        // The starting variant's AUDIO group decides the audio rendition
        // (its DEFAULT one, else its first); one with no URI is muxed into
        // the variant. Like hls.js, the rendition is kept across switches.
        let group = renditions
            .get(self.current)
            .and_then(|r| r.audio_group.as_ref());
        let audio = group.and_then(|group| {
            let in_group = || master.audio.iter().filter(|a| &a.group_id == group);
            in_group()
                .find(|a| a.default)
                .or_else(|| in_group().next())
                .filter(|a| !a.uri.is_empty())
        });
        self.audio_url = audio.map(|a| resolve_url(&self.url, &a.uri));
        if self.audio_url.is_some() {
            self.buffer = super::buffer::PlaybackBuffer::new(2);
        }
        self.renditions = renditions;
        self.master_loaded = true;
        self.st_mut(Track::Main).playlist_failures = 0;
    }

    fn on_playlist(&mut self, track: Track, rendition: usize, body: &Bytes, blocking: bool) {
        if track == Track::Main && rendition != self.current {
            return;
        }
        let previous = self.st(track).playlist.as_ref();
        let playlist = match resolve(self.parse_cache.as_deref(), body, previous) {
            Resolved::Playlist(playlist) => playlist,
            Resolved::Unparsable => return self.parse_failed(track),
            Resolved::DeltaFailed => return self.delta_failed(track),
        };
        let previous_edge = previous.map(|p| live_edge(p));
        let edge = live_edge(&playlist);
        if blocking && previous_edge == Some(edge) {
            // The server answered a blocking reload without the part: do not
            // ask again at once.
            let wait = playlist.part_target.map_or(self.config.retry_503, secs);
            self.st_mut(track).playlist_wait = Some(self.now + wait);
        }
        if playlist.end_list {
            self.buffer.finish();
        }
        let now = self.now;
        let st = self.st_mut(track);
        st.part_target = playlist.part_target.or(st.part_target);
        st.playlist = Some(playlist);
        st.playlist_at = Some(now);
        st.playlist_failures = 0;
        st.media_needs_playlist = false;
        self.place_playhead(track);
        if track == Track::Main && self.audio_url.is_some() {
            // The audio track may have been waiting for the start point.
            self.place_playhead(Track::Audio);
        }
        if track == Track::Main && previous_edge.is_some_and(|e| e != edge) {
            // hls.js's latency controller runs when the playlist advances.
            self.update_rate();
        }
    }

    /// A delta update that cannot be merged: drop the playlist, so the next
    /// request is a plain full reload.
    fn delta_failed(&mut self, track: Track) {
        self.push_event(Event::Error {
            kind: "delta_merge",
        });
        let st = self.st_mut(track);
        st.playlist = None;
        st.playlist_at = None;
    }

    /// Where `track` starts. Main: the independent part at or before
    /// `PART-HOLD-BACK` behind the live edge, presenting from the hold-back
    /// point itself. Audio (hls.js aligns it to the main playlist by
    /// program date-time): the part holding that same presentation point;
    /// `None` until the main track has chosen it.
    fn start_of(&self, track: Track) -> Option<Position> {
        let pl = self.st(track).playlist.as_ref()?;
        match track {
            Track::Main => start_position(pl, self.start_behind()),
            Track::Audio => {
                self.st(Track::Main).pos?;
                match self.start_pdt {
                    Some(pdt) => {
                        position_at_pdt(pl, pdt).or_else(|| start_position(pl, self.start_behind()))
                    }
                    None => start_position(pl, self.start_behind()),
                }
            }
        }
    }

    /// Chooses the start point, or checks the next position still makes sense
    /// in the new playlist and jumps back to the hold-back point when not.
    fn place_playhead(&mut self, track: Track) {
        let behind = self.start_behind();
        let st = self.st(track);
        let Some(pl) = st.playlist.as_ref() else {
            return;
        };
        let Some(pos) = st.pos else {
            let start = self.start_of(track);
            if track == Track::Main {
                // Like hls.js: load from the independent part, present from
                // the hold-back point behind the live edge.
                let target = playlist_end_pdt(pl).and_then(|end| end.checked_sub(behind));
                // A part's worth ahead: the start position falls anywhere in
                // a part (livecdn's PART-HOLD-BACK is three part targets,
                // its parts a little shorter), and a player starting on the
                // last milliseconds of one would stall at once.
                let ahead = secs(pl.part_target.unwrap_or(0.0));
                if let Some(target) = target {
                    self.buffer.start_at(target);
                    self.start_pdt = Some(target);
                }
                self.buffer.set_start_level(ahead);
            }
            self.st_mut(track).pos = start;
            return;
        };
        let (pos, found) = lookup(pl, pos);
        let jump = if matches!(found, Lookup::Gone) {
            Some("fell_behind")
        } else if pos.msn > live_edge(pl).msn.saturating_add(1) {
            Some("playlist_reset")
        } else {
            None
        };
        let restart = start_position(pl, behind);
        let st = self.st_mut(track);
        st.pos = Some(pos);
        if let Some(kind) = jump {
            st.pos = restart;
            st.epoch += 1;
            st.hinted_url = None;
            self.push_event(Event::Error { kind });
        }
    }

    fn on_media(
        &mut self,
        flight: &Flight,
        pos: super::window::Position,
        bytes: u64,
        transfer: Duration,
    ) {
        let track = flight.track;
        let segment = flight.kind == RequestKind::Segment;
        let mut duration = None;
        let mut pdt = None;
        let mut at = pos;
        if let Some(pl) = self.st(track).playlist.as_ref() {
            // Renditions are aligned, so a position means the same media in
            // any of them (a part fetched before a switch included).
            let (normal, found) = lookup(pl, pos);
            at = normal;
            match found {
                Lookup::Part { part, index } => {
                    duration = Some(part.duration);
                    pdt = part_pdt(pl, index, normal.part);
                }
                Lookup::Segment { segment, index } => {
                    duration = Some(segment.duration);
                    pdt = pdt_at(pl, index, 0.0);
                }
                Lookup::NotYet | Lookup::Gone => {}
            }
        }
        let fallback = self.st(track).part_target.unwrap_or(0.0);
        let duration = secs(duration.unwrap_or(fallback));
        let pdt = pdt.or_else(|| self.buffer.end_pdt(track.index()));
        if track == Track::Main {
            // hls.js's bandwidth estimate ignores audio fragments.
            self.abr.sample(bytes, transfer, duration);
        }
        let st = self.st_mut(track);
        st.pos = Some(if segment {
            at.next_segment()
        } else {
            at.next_part()
        });
        if flight.kind == RequestKind::HintedPart {
            st.hinted_url = Some(flight.url.clone());
        }
        st.media_failures = 0;
        st.got_media = true;
        match self.buffer.append(track.index(), self.now, duration, pdt) {
            Some(BufferEvent::StallEnd { duration }) => {
                self.push_event(Event::StallEnd { duration })
            }
            Some(BufferEvent::Started) => self.update_rate(),
            Some(BufferEvent::StallStart { .. }) | None => {}
        }
        if !self.first_part && track == Track::Main {
            self.first_part = true;
            let after = self.now.saturating_duration_since(self.created);
            self.push_event(Event::FirstPart { after });
        }
        self.sample_latency();
        self.consider_switch();
    }
}
