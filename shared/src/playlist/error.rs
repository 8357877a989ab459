//! The one error type for reading playlists (media and multivariant).
//!
//! Every variant is the fault of whoever produced the text (an upstream origin,
//! a third-party server under load test): a caller maps the whole type to
//! "upstream sent garbage" (502 at an edge, a failed check in the load tester).

/// Why a playlist could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaylistError {
    /// The text is bigger than [`MAX_PLAYLIST_BYTES`](super::MAX_PLAYLIST_BYTES):
    /// no sane live playlist is, and the bound caps what a hostile upstream costs us.
    #[error("playlist is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Size of the input in bytes.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// The text has more than [`MAX_PLAYLIST_LINES`](super::MAX_PLAYLIST_LINES) lines.
    #[error("playlist has more than {max} lines")]
    TooManyLines {
        /// The limit it exceeded.
        max: usize,
    },
    /// The text lists more than [`MAX_PLAYLIST_SEGMENTS`](super::MAX_PLAYLIST_SEGMENTS) segments.
    #[error("playlist has more than {max} segments")]
    TooManySegments {
        /// The limit it exceeded.
        max: usize,
    },
    /// The first non-blank line is not `#EXTM3U`, so this is not a playlist at all.
    #[error("playlist does not start with #EXTM3U")]
    MissingHeader,
    /// A tag the specification makes mandatory is absent.
    #[error("playlist has no {tag} tag")]
    MissingTag {
        /// The tag name, without `#`.
        tag: &'static str,
    },
    /// A tag we understand carries a value we cannot read.
    #[error("line {line}: malformed {tag}: {reason}")]
    Malformed {
        /// 1-based line number in the input.
        line: usize,
        /// The tag name, without `#`.
        tag: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A URI line appears without an `#EXTINF` before it, so its duration is unknown.
    #[error("line {line}: segment URI without a preceding #EXTINF")]
    UriWithoutExtinf {
        /// 1-based line number of the URI.
        line: usize,
    },
    /// An `#EXTINF` is never followed by its segment URI.
    #[error("line {line}: #EXTINF is not followed by a segment URI")]
    ExtinfWithoutUri {
        /// 1-based line number of the `#EXTINF`.
        line: usize,
    },
    /// m3u8-rs rejected a multivariant playlist, or it held a value our model cannot carry.
    #[error("multivariant playlist: {0}")]
    Multivariant(String),
}
