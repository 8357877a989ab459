//! The typed Low-Latency HLS media playlist (RFC 8216bis with partial segments).
//!
//! m3u8-rs 6 drops everything LL-HLS adds (parts, preload hints, rendition reports,
//! skips), so the origin renders and the edge and load tester read this model
//! instead. Rendering is in `render.rs`, reading in `parse.rs`; this file holds the
//! data and the sequence-number arithmetic a player needs.
//!
//! Media sequence numbers (MSNs) are never stored per segment: they follow from
//! `media_sequence`, the number of segments a delta update skipped, and the index,
//! exactly as a client must compute them (RFC 8216bis 6.2.5.1).

use std::time::SystemTime;

/// A live or finished LL-HLS media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-VERSION`: 9 when `skip` is present (delta updates), else 6 or more.
    /// Rendered as set; the caller owns compatibility decisions.
    pub version: u8,
    /// `EXT-X-TARGETDURATION` in whole seconds.
    pub target_duration: u64,
    /// `EXT-X-PART-INF:PART-TARGET` in seconds; `None` for a playlist without parts.
    pub part_target: Option<f64>,
    /// `EXT-X-SERVER-CONTROL`: what the server lets clients ask for.
    pub server_control: Option<ServerControl>,
    /// `EXT-X-PLAYLIST-TYPE`: `VOD` (a finished recording) or `EVENT` (one
    /// that only grows); `None` for a live sliding window.
    pub playlist_type: Option<PlaylistType>,
    /// `EXT-X-MEDIA-SEQUENCE`: MSN of the first segment, counting skipped ones.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`; rendered only when non-zero.
    pub discontinuity_sequence: u64,
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// `EXT-X-SKIP`: present in a delta update, which omits the oldest segments.
    pub skip: Option<Skip>,
    /// The listed segments, after any skipped ones. Only the last may be in
    /// progress (`uri: None`).
    pub segments: Vec<Segment>,
    /// `EXT-X-PRELOAD-HINT`: the next part (or map) a client may request early.
    pub preload_hint: Option<PreloadHint>,
    /// `EXT-X-RENDITION-REPORT`s: where the other renditions are, for fast switching.
    pub rendition_reports: Vec<RenditionReport>,
    /// `EXT-X-ENDLIST`: the stream is over and the playlist will not change.
    pub end_list: bool,
}

impl Default for MediaPlaylist {
    /// An empty live playlist at version 6, as a base for struct-update syntax.
    fn default() -> Self {
        MediaPlaylist {
            version: 6,
            target_duration: 0,
            part_target: None,
            server_control: None,
            playlist_type: None,
            media_sequence: 0,
            discontinuity_sequence: 0,
            independent_segments: false,
            skip: None,
            segments: Vec::new(),
            preload_hint: None,
            rendition_reports: Vec::new(),
            end_list: false,
        }
    }
}

/// `EXT-X-PLAYLIST-TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaylistType {
    /// The playlist will not change.
    Vod,
    /// Segments are only added, never removed.
    Event,
}

impl PlaylistType {
    /// The tag's value.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaylistType::Vod => "VOD",
            PlaylistType::Event => "EVENT",
        }
    }
}

/// `EXT-X-SERVER-CONTROL` attributes; durations in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerControl {
    /// `CAN-BLOCK-RELOAD=YES`: the server honours `_HLS_msn`/`_HLS_part`.
    pub can_block_reload: bool,
    /// `PART-HOLD-BACK`: how far from the live edge a part-aware client should play.
    pub part_hold_back: Option<f64>,
    /// `HOLD-BACK`: the same for clients that ignore parts.
    pub hold_back: Option<f64>,
    /// `CAN-SKIP-UNTIL`: delta updates may skip segments older than this.
    pub can_skip_until: Option<f64>,
    /// `CAN-SKIP-DATERANGES=YES`: delta updates may also skip old `EXT-X-DATERANGE`s.
    pub can_skip_dateranges: bool,
}

/// `EXT-X-SKIP`: how many segments a delta update left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skip {
    /// `SKIPPED-SEGMENTS`.
    pub skipped_segments: u64,
    /// `RECENTLY-REMOVED-DATERANGES` (tab-separated on the wire), for `_HLS_skip=v2`
    /// responses; `Some(vec![])` renders the attribute empty. Ids must not contain
    /// tabs, quotes or line breaks.
    pub recently_removed_dateranges: Option<Vec<String>>,
}

/// One media segment, complete or in progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segment {
    /// `EXTINF` duration in seconds. Not rendered for an in-progress segment; the
    /// reader sets it to the sum of the listed parts there.
    pub duration: f64,
    /// The segment URI; `None` while the segment is still being produced, when only
    /// its parts are listed.
    pub uri: Option<String>,
    /// `EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME` of the first sample (rendered to the millisecond).
    pub program_date_time: Option<SystemTime>,
    /// `EXT-X-MAP:URI` rendered before this segment. It applies to this and every
    /// later segment until the next one; see [`MediaPlaylist::map_uri_for`].
    pub map_uri: Option<String>,
    /// `EXT-X-PART`s of this segment, in order.
    pub parts: Vec<Part>,
    /// `EXT-X-GAP`: the segment is missing; clients must not load it.
    pub gap: bool,
}

impl Segment {
    /// Whether the segment is finished (has a URI and an `EXTINF`).
    pub fn is_complete(&self) -> bool {
        self.uri.is_some()
    }
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    /// `DURATION` in seconds.
    pub duration: f64,
    /// `URI` (rendered quoted; must not contain `"` or line breaks).
    pub uri: String,
    /// `INDEPENDENT=YES`: starts with a sync sample, so playback may start here.
    pub independent: bool,
    /// `GAP=YES`: the part is unavailable.
    pub gap: bool,
}

/// `EXT-X-PRELOAD-HINT:TYPE=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreloadHintType {
    /// The next partial segment.
    Part,
    /// The next media initialisation section.
    Map,
}

impl PreloadHintType {
    /// The attribute value, also usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PreloadHintType::Part => "PART",
            PreloadHintType::Map => "MAP",
        }
    }
}

/// `EXT-X-PRELOAD-HINT`: a resource the client may request before it exists; the
/// server holds the request open until it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    /// `TYPE`.
    pub hint_type: PreloadHintType,
    /// `URI`.
    pub uri: String,
}

/// `EXT-X-RENDITION-REPORT`: the newest segment and part of another rendition, so a
/// client switching to it can issue a blocking request straight away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// `URI` of the other rendition's media playlist, relative to this one.
    pub uri: String,
    /// `LAST-MSN`.
    pub last_msn: u64,
    /// `LAST-PART`, when that rendition has parts.
    pub last_part: Option<u64>,
}

impl MediaPlaylist {
    /// MSN of the first listed segment: `media_sequence` plus any skipped segments.
    pub fn first_listed_msn(&self) -> u64 {
        let skipped = self.skip.as_ref().map_or(0, |s| s.skipped_segments);
        self.media_sequence.saturating_add(skipped)
    }

    /// MSN of `segments[index]`, accounting for a delta update's skip.
    pub fn segment_msn(&self, index: usize) -> u64 {
        self.first_listed_msn().saturating_add(index as u64)
    }

    /// MSN of the last complete segment, or `None` when none is complete yet.
    pub fn last_msn(&self) -> Option<u64> {
        let index = self.segments.iter().rposition(Segment::is_complete)?;
        Some(self.segment_msn(index))
    }

    /// `(msn, part index)` of the last listed part, which is what a rendition report
    /// for this playlist carries as `LAST-MSN`/`LAST-PART`.
    pub fn last_part(&self) -> Option<(u64, u64)> {
        let index = self.segments.iter().rposition(|s| !s.parts.is_empty())?;
        let parts = self.segments.get(index)?.parts.len() as u64;
        Some((self.segment_msn(index), parts - 1))
    }

    /// `(msn, part)` of the first part not yet listed: what a client passes as
    /// `_HLS_msn`/`_HLS_part` to block until the playlist grows.
    pub fn next_part(&self) -> (u64, u64) {
        match self.segments.last() {
            Some(last) if !last.is_complete() => (
                self.segment_msn(self.segments.len() - 1),
                last.parts.len() as u64,
            ),
            _ => (self.next_msn(), 0),
        }
    }

    /// MSN of the first segment not yet complete: what a client without part
    /// support passes as `_HLS_msn`.
    pub fn next_msn(&self) -> u64 {
        match self.last_msn() {
            Some(msn) => msn.saturating_add(1),
            None => self.first_listed_msn(),
        }
    }

    /// Index into `segments` of the segment with this MSN, if listed.
    pub fn index_of_msn(&self, msn: u64) -> Option<usize> {
        let index = usize::try_from(msn.checked_sub(self.first_listed_msn())?).ok()?;
        (index < self.segments.len()).then_some(index)
    }

    /// The `EXT-X-MAP` URI in force for `segments[index]`: the nearest one at or
    /// before it (a delta update may have skipped the tag itself).
    pub fn map_uri_for(&self, index: usize) -> Option<&str> {
        self.segments
            .get(..=index)?
            .iter()
            .rev()
            .find_map(|s| s.map_uri.as_deref())
    }

    /// Whether this is a delta update (`EXT-X-SKIP` present).
    pub fn is_delta(&self) -> bool {
        self.skip.is_some()
    }
}

/// Fuzz body: parse arbitrary bytes; whatever parses must render to text that
/// parses again and renders identically (render is a fixed point after one trip).
///
/// Meant for a one-line `cargo fuzz` target; a unit test runs it over seeds and
/// mutations so stable CI exercises it too.
pub fn fuzz_media_playlist(data: &[u8]) {
    use super::PlaylistError;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(first) = MediaPlaylist::parse(text) else {
        return;
    };
    let rendered = first.to_string();
    let second = match MediaPlaylist::parse(&rendered) {
        Ok(p) => p,
        // Rendering normalises numbers and adds header tags, so input right at the
        // size bounds may grow past them; that is not a bug.
        Err(PlaylistError::TooLarge { .. } | PlaylistError::TooManyLines { .. }) => return,
        Err(e) => panic!("rendered playlist does not parse: {e}\n{rendered}"),
    };
    assert_eq!(rendered, second.to_string(), "render is not stable");
    assert_eq!(first.segments.len(), second.segments.len());
    assert_eq!(first.last_msn(), second.last_msn());
    assert_eq!(first.next_part(), second.next_part());
}
