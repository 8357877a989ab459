//! A virtual LL-HLS player as a sans-IO state machine: playlists in, the next
//! requests out, behaving like hls.js in low-latency mode.
//!
//! [`Player`] loads the URL it is given (a multivariant playlist, or a media
//! playlist directly), picks the lowest variant (or
//! [`PlayerConfig::start_rendition`]), loads its playlist plainly and starts
//! loading at the `INDEPENDENT` part at or before `PART-HOLD-BACK` behind the
//! live edge, and presents from the hold-back point itself (hls.js seeks to
//! its start position; the media before it is decoded, not shown). It then
//! fetches the init section and the parts in order, and, once caught up, keeps
//! exactly one blocking reload (`_HLS_msn`/`_HLS_part`, plus `_HLS_skip=YES`
//! with [`PlayerConfig::use_delta`]) and one preload-hinted part in flight. A
//! playback buffer drains in real time; a dry buffer is a stall. Throughput
//! measured on media downloads drives rendition switches ([`abr`]).
//!
//! When the starting variant names an `AUDIO` group whose rendition has a
//! `URI` (livecdn's master always does), the player also follows that audio
//! rendition, like hls.js's audio stream controller: a second [`Track`] with
//! its own playlist loop, blocking reloads, parts, preload hints, init section
//! and delta updates. It starts at the presentation point the main track
//! chose (by program date-time) once the main track's first media is in,
//! never switches, and does not feed ABR. Playback needs both: the buffer is
//! what both tracks hold, and either running dry stalls the playhead.
//!
//! Like hls.js, the player stays as far behind live as its start left it,
//! unless [`PlayerConfig::max_live_sync_playback_rate`] lets it play faster
//! to reach its target latency (hls.js's latency controller: `latency.rs`).
//!
//! # Drive contract
//!
//! The player never reads a clock or touches the network. The driver:
//! 1. sends every request [`Player::poll_request`] returns (until `None`);
//! 2. passes each answer to [`Player::handle_response`] with the time it
//!    arrived, and [`Player::handle_timeout`] when [`Player::poll_timeout`] is
//!    reached;
//! 3. after every `handle_*`, drains [`Player::poll_event`] into
//!    [`crate::stats::Stats`] and goes back to 1.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use livecdn_loadtest::player::{Failure, Outcome, Player, PlayerConfig, RequestKind};
//!
//! let now = Instant::now();
//! let mut player = Player::new("http://cdn.test/live/index.m3u8", PlayerConfig::default(), now, SystemTime::now());
//! let request = player.poll_request().expect("the first request is the given URL");
//! assert_eq!(request.kind, RequestKind::Master);
//! assert!(player.poll_request().is_none(), "nothing else until it is answered");
//! // A real driver sends `request.url` and reports what happened:
//! let outcome = Outcome::Failed { kind: Failure::Connect, error: "connection refused".into() };
//! player.handle_response(now, SystemTime::now(), request.id, outcome);
//! let retry_at = player.poll_timeout().expect("a failed request is retried later");
//! assert!(retry_at > now);
//! player.handle_timeout(retry_at, SystemTime::now());
//! assert_eq!(player.poll_request().map(|r| r.kind), Some(RequestKind::Master));
//! while let Some(event) = player.poll_event() {
//!     let _ = event; // stats.record(&event)
//! }
//! ```
//!
//! Files: `model.rs` (types, state, clock), `track.rs` (per-track loading
//! state), `config.rs`, `fetch.rs` (what to request next), `latency.rs`
//! (catching up with live),
//! `response.rs` (answers), `parse_cache.rs` (playlists shared between
//! viewers sent the same bytes), `window.rs` (positions in a playlist, delta
//! merges, URLs), `buffer.rs` (playback buffer over both tracks), `abr.rs` (throughput
//! estimate and switching); virtual-clock scenarios against a scripted
//! server in `tests/`.

pub mod abr;
pub mod buffer;
mod config;
mod fetch;
mod latency;
mod model;
mod parse_cache;
mod response;
mod track;
mod window;

#[cfg(test)]
mod tests;

pub use model::{Event, Failure, Outcome, Player, PlayerConfig, Request, RequestKind, Track};
pub use parse_cache::ParseCache;
pub use window::{resolve_url, MergeError, Position};
