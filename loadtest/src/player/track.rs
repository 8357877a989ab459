//! [`TrackState`]: what one track is loading.
//!
//! The player runs one playlist loop per track, as hls.js runs one stream
//! controller per track: the main one (the variant, which ABR switches) and,
//! when the variant's `AUDIO` group names a separate rendition, the audio one.
//! Each has its own playlist, position, init section, retry timers and
//! preload-hinted part; they share the request budget per track
//! ([`super::PlayerConfig::max_parallel`]), the clock and the playback buffer.

use std::sync::Arc;
use std::time::Instant;

use livecdn_shared::playlist::MediaPlaylist;

use super::window::Position;

/// One track's loading state.
#[derive(Debug, Clone)]
pub(crate) struct TrackState {
    /// The track's playlist (delta updates merged in).
    pub(crate) playlist: Option<Arc<MediaPlaylist>>,
    pub(crate) playlist_at: Option<Instant>,
    /// `PART-TARGET` of the last playlist, kept across switches: the length
    /// of a hinted part that is not listed yet.
    pub(crate) part_target: Option<f64>,
    /// Next media to fetch; `None` until a start point is chosen.
    pub(crate) pos: Option<Position>,
    /// Bumped on a jump, so answers for the old positions are not appended.
    pub(crate) epoch: u64,
    /// URL of the loaded initialisation section.
    pub(crate) init: Option<String>,
    /// Playlist requests wait until then (retry backoff, no-progress guard).
    pub(crate) playlist_wait: Option<Instant>,
    /// Media requests wait until then.
    pub(crate) media_wait: Option<Instant>,
    pub(crate) playlist_failures: u32,
    pub(crate) media_failures: u32,
    /// A part was 404: fetch no media until the next playlist.
    pub(crate) media_needs_playlist: bool,
    /// The server took blocking reloads (cleared on 400).
    pub(crate) blocking_ok: bool,
    /// URL of the last part fetched through a preload hint, so it is not
    /// fetched again when the playlist lists it.
    pub(crate) hinted_url: Option<String>,
    /// Some media of this track arrived (hls.js's audio controller waits
    /// for the main track's first fragment: its timestamps anchor audio's).
    pub(crate) got_media: bool,
}

impl TrackState {
    /// Nothing loaded yet.
    pub(crate) fn new() -> TrackState {
        TrackState {
            playlist: None,
            playlist_at: None,
            part_target: None,
            pos: None,
            epoch: 0,
            init: None,
            playlist_wait: None,
            media_wait: None,
            playlist_failures: 0,
            media_failures: 0,
            media_needs_playlist: false,
            blocking_ok: true,
            hinted_url: None,
            got_media: false,
        }
    }

    /// Whether the server takes blocking reloads for this track.
    pub(crate) fn can_block(&self) -> bool {
        let server = self
            .playlist
            .as_ref()
            .and_then(|p| p.server_control.as_ref());
        self.blocking_ok && server.is_some_and(|s| s.can_block_reload)
    }
}
