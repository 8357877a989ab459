//! Addressing media in a live playlist: positions, lookups, the start point,
//! program date-times, delta-update merges and URL resolution.
//!
//! Pure functions over [`MediaPlaylist`]; the player keeps one playlist per
//! session and asks these where its next part is.

use std::time::{Duration, SystemTime};

use livecdn_shared::playlist::{MediaPlaylist, Part, Segment};

/// Tolerance when comparing summed durations with a hold-back (playlists carry
/// five decimals, so `3 × 0.333` must count as `0.999`).
const EPSILON_SECS: f64 = 0.001;

/// Where a piece of media sits in the stream: `(msn, part)`. For a segment
/// fetched whole (no parts listed), `part` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Media sequence number of the segment.
    pub msn: u64,
    /// Index of the part within the segment.
    pub part: u64,
}

impl Position {
    /// The position after this one when it was a part.
    pub(crate) fn next_part(self) -> Position {
        Position {
            msn: self.msn,
            part: self.part.saturating_add(1),
        }
    }

    /// The position after this one when it was a whole segment.
    pub(crate) fn next_segment(self) -> Position {
        Position {
            msn: self.msn.saturating_add(1),
            part: 0,
        }
    }
}

/// What a playlist says about a position.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    /// A listed part.
    Part { part: &'a Part, index: usize },
    /// A complete segment without parts: fetch it whole.
    Segment { segment: &'a Segment, index: usize },
    /// Not listed yet: the live edge is at or before it.
    NotYet,
    /// Older than the window: the player fell behind.
    Gone,
}

/// Looks `pos` up, first moving it past the end of a finished segment (a part
/// index equal to the part count of a complete segment means the next segment).
/// Returns the normalised position with the answer.
pub(crate) fn lookup(pl: &MediaPlaylist, pos: Position) -> (Position, Lookup<'_>) {
    let mut pos = pos;
    // Two rounds: at most one normalisation is ever needed.
    for _ in 0..2 {
        let Some(index) = pl.index_of_msn(pos.msn) else {
            let gone = pos.msn < pl.first_listed_msn();
            return (pos, if gone { Lookup::Gone } else { Lookup::NotYet });
        };
        let Some(segment) = pl.segments.get(index) else {
            return (pos, Lookup::NotYet);
        };
        let listed = segment.parts.len() as u64;
        if pos.part < listed {
            if let Some(part) = segment.parts.get(pos.part as usize) {
                return (pos, Lookup::Part { part, index });
            }
        }
        if !segment.is_complete() {
            return (pos, Lookup::NotYet);
        }
        if listed == 0 && pos.part == 0 {
            return (pos, Lookup::Segment { segment, index });
        }
        pos = pos.next_segment();
    }
    (pos, Lookup::NotYet)
}

/// The normalised `(msn, part)` of the next unlisted part, as a position.
pub(crate) fn live_edge(pl: &MediaPlaylist) -> Position {
    let (msn, part) = pl.next_part();
    lookup(pl, Position { msn, part }).0
}

/// Duration of a segment in seconds (the sum of its parts while in progress).
fn segment_secs(segment: &Segment) -> f64 {
    if segment.is_complete() {
        segment.duration
    } else {
        segment.parts.iter().map(|p| p.duration).sum()
    }
}

/// Seconds to a `Duration`, treating garbage (negative, NaN, huge) as zero.
pub(crate) fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_default()
}

/// Program date-time of the point `offset` seconds into `segments[index]`,
/// counting forward from the nearest earlier `PROGRAM-DATE-TIME`.
pub(crate) fn pdt_at(pl: &MediaPlaylist, index: usize, offset: f64) -> Option<SystemTime> {
    let mut acc = offset;
    for j in (0..=index).rev() {
        let segment = pl.segments.get(j)?;
        if j < index {
            acc += segment_secs(segment);
        }
        if let Some(pdt) = segment.program_date_time {
            return pdt.checked_add(secs(acc));
        }
    }
    None
}

/// Program date-time of a part: its segment's plus the parts before it.
pub(crate) fn part_pdt(pl: &MediaPlaylist, index: usize, part: u64) -> Option<SystemTime> {
    let segment = pl.segments.get(index)?;
    let before: f64 = segment
        .parts
        .iter()
        .take(part as usize)
        .map(|p| p.duration)
        .sum();
    pdt_at(pl, index, before)
}

/// Program date-time of the end of what `pl` lists: the end of its last
/// listed part or complete segment.
pub(crate) fn playlist_end_pdt(pl: &MediaPlaylist) -> Option<SystemTime> {
    let index = pl.segments.len().checked_sub(1)?;
    let last = pl.segments.get(index)?;
    let listed = if last.is_complete() {
        last.duration
    } else {
        last.parts.iter().map(|p| p.duration).sum()
    };
    pdt_at(pl, index, listed)
}

/// Where to start playing `behind` seconds before the live edge: walk back
/// from the newest part (or segment, where no parts are listed) summing
/// durations, then further back to the nearest independent part. When no part
/// in the playlist is marked `INDEPENDENT`, part 0 of each segment counts as
/// independent. `None` when nothing playable is listed.
pub(crate) fn start_position(pl: &MediaPlaylist, behind: Duration) -> Option<Position> {
    let behind = behind.as_secs_f64() - EPSILON_SECS;
    let mut sum = 0.0;
    let mut earliest = None;
    for c in candidates_back(pl) {
        sum += c.duration;
        earliest = Some(c.pos);
        if sum >= behind && c.startable {
            return Some(c.pos);
        }
    }
    earliest
}

/// A position a player could load from, as [`candidates_back`] lists them.
struct Candidate {
    pos: Position,
    /// Index of its segment in the playlist.
    index: usize,
    duration: f64,
    /// Whether playback may start here: an independent part that is not a
    /// gap, or a whole segment.
    startable: bool,
}

/// Every part (or whole complete segment, where no parts are listed) from
/// the newest back. When no part in the playlist is marked `INDEPENDENT`,
/// part 0 of each segment counts as independent.
fn candidates_back(pl: &MediaPlaylist) -> impl Iterator<Item = Candidate> + '_ {
    let any_independent = marks_independent_parts(pl);
    pl.segments
        .iter()
        .enumerate()
        .rev()
        .flat_map(move |(index, segment)| {
            let msn = pl.segment_msn(index);
            let whole = (segment.parts.is_empty() && segment.is_complete() && !segment.gap)
                .then_some(Candidate {
                    pos: Position { msn, part: 0 },
                    index,
                    duration: segment.duration,
                    startable: true,
                });
            let parts = segment
                .parts
                .iter()
                .enumerate()
                .rev()
                .map(move |(p, part)| Candidate {
                    pos: Position {
                        msn,
                        part: p as u64,
                    },
                    index,
                    duration: part.duration,
                    startable: (part.independent || (!any_independent && p == 0)) && !part.gap,
                });
            whole.into_iter().chain(parts)
        })
}

/// The position holding program date-time `at`: the last part (or
/// segment, where no parts are listed) starting at or before it, walked
/// back to an independent part. Where `at` is older than the window, the
/// first listed position; `None` when no program date-time is known.
/// A second track starts here, at the presentation point the first chose.
pub(crate) fn position_at_pdt(pl: &MediaPlaylist, at: SystemTime) -> Option<Position> {
    // Half a millisecond of slack: playlists carry date-times in ms.
    let at = at.checked_add(Duration::from_micros(500))?;
    let mut earliest = None;
    for c in candidates_back(pl) {
        earliest = Some(c.pos);
        if c.startable && part_pdt(pl, c.index, c.pos.part)? <= at {
            return Some(c.pos);
        }
    }
    earliest
}

/// Why a delta update could not be merged into the previous playlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The previous playlist does not hold every segment the update skipped.
    #[error("delta update skips msn {first}..{end} which the previous playlist lacks")]
    MissingSegments {
        /// First skipped MSN.
        first: u64,
        /// One past the last skipped MSN.
        end: u64,
    },
}

/// Rebuilds a full playlist from a delta update (`EXT-X-SKIP`) and the
/// previous full playlist, matching segments by MSN. The result lists the
/// skipped segments taken from `previous`, then the update's own.
pub(crate) fn merge_delta(
    previous: &MediaPlaylist,
    mut delta: MediaPlaylist,
) -> Result<MediaPlaylist, MergeError> {
    let Some(skip) = delta.skip.take() else {
        return Ok(delta);
    };
    let first = delta.media_sequence;
    let end = first.saturating_add(skip.skipped_segments);
    let missing = MergeError::MissingSegments { first, end };
    if skip.skipped_segments == 0 {
        return Ok(delta);
    }
    let start = previous.index_of_msn(first).ok_or(missing.clone())?;
    let last = previous
        .index_of_msn(end - 1)
        .filter(|&last| last >= start)
        .ok_or(missing)?;
    let mut segments: Vec<Segment> = previous.segments.get(start..=last).unwrap_or(&[]).to_vec();
    // The EXT-X-MAP in force may sit on a segment older than the update's
    // window: carry it onto the first kept segment.
    if let Some(first) = segments.first_mut() {
        if first.map_uri.is_none() {
            first.map_uri = previous.map_uri_for(start).map(str::to_owned);
        }
    }
    segments.append(&mut delta.segments);
    delta.segments = segments;
    Ok(delta)
}

/// Resolves a URI reference against an absolute base URL (RFC 3986 section 5,
/// enough of it for playlists: absolute, scheme-relative, absolute-path and
/// relative references, with `.`/`..` segments removed).
pub fn resolve_url(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    if let Some(stripped) = reference.strip_prefix("//") {
        return format!("{scheme}://{stripped}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let base_path = path_and_query.split(['?', '#']).next().unwrap_or("");
    let (ref_path, ref_tail) = match reference.find(['?', '#']) {
        Some(i) => reference.split_at(i),
        None => (reference, ""),
    };
    let (dir, ref_path) = if ref_path.starts_with('/') {
        ("", ref_path)
    } else if ref_path.is_empty() {
        ("", base_path)
    } else {
        (
            base_path.rfind('/').map_or("/", |i| &base_path[..=i]),
            ref_path,
        )
    };
    // Players resolve a URL for every request they consider (on every
    // wakeup), so the usual case, no `.` or `..` anywhere, is one
    // allocation. `dir` ends in '/', so joining makes no new segment.
    let mut url = String::with_capacity(
        scheme.len() + 3 + authority.len() + dir.len() + ref_path.len() + ref_tail.len(),
    );
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(authority);
    if has_dot_segment(dir) || has_dot_segment(ref_path) {
        url.push_str(&remove_dot_segments(&format!("{dir}{ref_path}")));
    } else {
        url.push_str(dir);
        url.push_str(ref_path);
    }
    url.push_str(ref_tail);
    url
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

fn has_scheme(reference: &str) -> bool {
    match reference.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
            }
            s => out.push(s),
        }
        if i == last && matches!(*segment, "." | "..") {
            out.push("");
        }
    }
    out.join("/")
}

/// Appends `query` to a URL's query string.
pub(crate) fn with_query(url: &str, query: &str) -> String {
    let (url, fragment) = url
        .split_once('#')
        .map_or((url, None), |(u, f)| (u, Some(f)));
    let sep = if url.contains('?') { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{url}{sep}{query}#{f}"),
        None => format!("{url}{sep}{query}"),
    }
}

/// Whether the playlist marks independent parts at all; where it does not,
/// a segment's first part is taken as the independent one.
fn marks_independent_parts(pl: &MediaPlaylist) -> bool {
    pl.segments
        .iter()
        .flat_map(|s| &s.parts)
        .any(|p| p.independent)
}
