//! HLS playlists: the typed LL-HLS media playlist, the multivariant playlist, and
//! the `_HLS_*` delivery directives of a playlist request.
//!
//! Pure text in, text out: the origin's packager fills a [`MediaPlaylist`] and
//! renders it; the edge parses [`HlsQuery`] to build cache keys; the load tester
//! parses any server's playlists to drive its player model. Nothing here reads a
//! clock or touches the network.
//!
//! ```
//! use livecdn_shared::playlist::{HlsQuery, MediaPlaylist, Part, Segment};
//!
//! let playlist = MediaPlaylist {
//!     target_duration: 2,
//!     part_target: Some(0.5),
//!     media_sequence: 10,
//!     segments: vec![Segment {
//!         duration: 0.5,
//!         parts: vec![Part { duration: 0.5, uri: "p10.0.m4s".into(), independent: true, gap: false }],
//!         ..Segment::default()
//!     }],
//!     ..MediaPlaylist::default()
//! };
//! let text = playlist.render();
//! let parsed = MediaPlaylist::parse(&text).expect("our own output parses");
//! assert_eq!(parsed.next_part(), (10, 1));
//!
//! let query = HlsQuery::parse("_HLS_part=1&_HLS_msn=10&token=x").expect("valid directives");
//! assert_eq!(query.cache_key_suffix(), "_HLS_msn=10&_HLS_part=1");
//! ```
//!
//! Files: `media.rs` (model and sequence arithmetic), `render.rs` and `parse.rs`
//! (its text form), `attr.rs` (attribute lists and numbers), `date.rs`
//! (`PROGRAM-DATE-TIME`), `multivariant.rs`, `query.rs`, `error.rs`; tests of the
//! media playlist live in `media_tests.rs` and `parse_tests.rs`.

mod attr;
pub(crate) mod date;
mod directive;
mod error;
mod media;
mod multivariant;
mod parse;
mod query;
mod render;

#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
pub(crate) mod test_rng;

pub use directive::{BlockingDirective, DirectiveError};
pub use error::PlaylistError;
pub use media::{
    fuzz_media_playlist, MediaPlaylist, Part, PlaylistType, PreloadHint, PreloadHintType,
    RenditionReport, Segment, ServerControl, Skip,
};
pub use multivariant::{fuzz_multivariant, AudioRendition, MultivariantPlaylist, Variant};
pub use query::{fuzz_query, HlsQuery, QueryError, SkipRequest};

/// Largest playlist text accepted (4 MiB). A 10-hour DVR window of 2 s segments
/// with parts is well under this; anything bigger is a broken or hostile upstream.
pub const MAX_PLAYLIST_BYTES: usize = 4 * 1024 * 1024;
/// Most lines accepted in one playlist.
pub const MAX_PLAYLIST_LINES: usize = 100_000;
/// Most segments accepted in one media playlist.
pub const MAX_PLAYLIST_SEGMENTS: usize = 100_000;
