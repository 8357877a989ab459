//! Reading a [`MediaPlaylist`] from text: ours, or any other LL-HLS server's.
//!
//! Lenient where the RFC lets clients be (unknown tags and attributes are ignored,
//! blank lines and CRLF are fine, numbers may be `1` or `1.00000`), strict where a
//! wrong guess would mislead a player (a known tag with an unreadable value is an
//! error, not a silently missing field). Input is bounded in bytes, lines and
//! segments before any work that grows with it, and nothing here panics on any
//! input (`fuzz_media_playlist` checks that).

use std::time::SystemTime;

use super::attr::{parse_decimal, parse_integer, AttrList};
use super::date::parse_rfc3339;
use super::media::{
    MediaPlaylist, Part, PlaylistType, PreloadHint, PreloadHintType, RenditionReport, Segment,
    ServerControl, Skip,
};
use super::{PlaylistError, MAX_PLAYLIST_BYTES, MAX_PLAYLIST_LINES, MAX_PLAYLIST_SEGMENTS};

/// Tags seen since the last segment URI: they belong to the next segment.
#[derive(Default)]
struct Pending {
    discontinuity: bool,
    map_uri: Option<String>,
    program_date_time: Option<SystemTime>,
    gap: bool,
    parts: Vec<Part>,
    /// Duration and line number of the `#EXTINF` awaiting its URI.
    extinf: Option<(f64, usize)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.discontinuity
            && self.map_uri.is_none()
            && self.program_date_time.is_none()
            && !self.gap
            && self.parts.is_empty()
            && self.extinf.is_none()
    }

    fn into_segment(self, duration: f64, uri: Option<String>) -> Segment {
        Segment {
            duration,
            uri,
            discontinuity: self.discontinuity,
            program_date_time: self.program_date_time,
            map_uri: self.map_uri,
            parts: self.parts,
            gap: self.gap,
        }
    }
}

impl MediaPlaylist {
    /// Parses a media playlist. Accepts everything [`MediaPlaylist::render`] emits
    /// and the usual output of other servers; trailing tags without a segment URI
    /// (parts, a program date-time) become an in-progress last segment.
    pub fn parse(text: &str) -> Result<MediaPlaylist, PlaylistError> {
        if text.len() > MAX_PLAYLIST_BYTES {
            return Err(PlaylistError::TooLarge {
                len: text.len(),
                max: MAX_PLAYLIST_BYTES,
            });
        }
        let mut playlist = MediaPlaylist {
            version: 1, // the RFC's default when EXT-X-VERSION is absent
            ..MediaPlaylist::default()
        };
        let mut target_duration_seen = false;
        let mut header_seen = false;
        let mut pending = Pending::default();

        // A final newline ends the last line; it does not start another one.
        let body = text.strip_suffix('\n').unwrap_or(text);
        for (index, raw) in body.split('\n').enumerate() {
            let line_no = index + 1;
            if line_no > MAX_PLAYLIST_LINES {
                return Err(PlaylistError::TooManyLines {
                    max: MAX_PLAYLIST_LINES,
                });
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if !header_seen {
                if line.trim_start_matches('\u{feff}') != "#EXTM3U" {
                    return Err(PlaylistError::MissingHeader);
                }
                header_seen = true;
                continue;
            }
            let Some(tag_line) = line.strip_prefix('#') else {
                let Some((duration, _)) = pending.extinf.take() else {
                    return Err(PlaylistError::UriWithoutExtinf { line: line_no });
                };
                push_segment(
                    &mut playlist.segments,
                    std::mem::take(&mut pending).into_segment(duration, Some(line.to_owned())),
                )?;
                continue;
            };
            let (name, value) = tag_line.split_once(':').unwrap_or((tag_line, ""));
            if let Err(reason) = apply_tag(&mut playlist, &mut pending, name, value, line_no) {
                let tag = KNOWN_TAGS.iter().find(|t| **t == name).copied();
                return Err(PlaylistError::Malformed {
                    line: line_no,
                    tag: tag.unwrap_or("tag"),
                    reason,
                });
            }
            if name == "EXT-X-TARGETDURATION" {
                target_duration_seen = true;
            }
        }

        if !header_seen {
            return Err(PlaylistError::MissingHeader);
        }
        if !target_duration_seen {
            return Err(PlaylistError::MissingTag {
                tag: "EXT-X-TARGETDURATION",
            });
        }
        if let Some((_, line)) = pending.extinf {
            return Err(PlaylistError::ExtinfWithoutUri { line });
        }
        if !pending.is_empty() {
            let duration = pending.parts.iter().map(|p| p.duration).sum();
            push_segment(&mut playlist.segments, pending.into_segment(duration, None))?;
        }
        Ok(playlist)
    }
}

fn push_segment(segments: &mut Vec<Segment>, segment: Segment) -> Result<(), PlaylistError> {
    if segments.len() >= MAX_PLAYLIST_SEGMENTS {
        return Err(PlaylistError::TooManySegments {
            max: MAX_PLAYLIST_SEGMENTS,
        });
    }
    segments.push(segment);
    Ok(())
}

/// Tags [`apply_tag`] understands, so an error can name its tag as `&'static str`.
const KNOWN_TAGS: [&str; 18] = [
    "EXT-X-VERSION",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-PART-INF",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-INDEPENDENT-SEGMENTS",
    "EXT-X-ENDLIST",
    "EXT-X-SKIP",
    "EXT-X-DISCONTINUITY",
    "EXT-X-GAP",
    "EXT-X-MAP",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-PART",
    "EXTINF",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
];

fn integer(value: &str) -> Result<u64, String> {
    parse_integer(value).ok_or_else(|| format!("invalid integer {value:?}"))
}

/// Applies one tag to the playlist or to the segment being collected. Unknown tags
/// and comments are ignored; a known tag with a bad value is an error.
fn apply_tag(
    playlist: &mut MediaPlaylist,
    pending: &mut Pending,
    name: &str,
    value: &str,
    line_no: usize,
) -> Result<(), String> {
    match name {
        "EXT-X-VERSION" => {
            playlist.version = u8::try_from(integer(value)?).map_err(|e| e.to_string())?;
        }
        "EXT-X-TARGETDURATION" => playlist.target_duration = integer(value)?,
        "EXT-X-MEDIA-SEQUENCE" => playlist.media_sequence = integer(value)?,
        "EXT-X-PLAYLIST-TYPE" => {
            playlist.playlist_type = Some(match value {
                "VOD" => PlaylistType::Vod,
                "EVENT" => PlaylistType::Event,
                other => return Err(format!("invalid playlist type {other:?}")),
            });
        }
        "EXT-X-DISCONTINUITY-SEQUENCE" => playlist.discontinuity_sequence = integer(value)?,
        "EXT-X-PART-INF" => {
            let attrs = AttrList::parse(value)?;
            let target = attrs.decimal("PART-TARGET")?;
            playlist.part_target = Some(target.ok_or("missing required attribute PART-TARGET")?);
        }
        "EXT-X-SERVER-CONTROL" => {
            let attrs = AttrList::parse(value)?;
            playlist.server_control = Some(ServerControl {
                can_block_reload: attrs.yes("CAN-BLOCK-RELOAD")?,
                part_hold_back: attrs.decimal("PART-HOLD-BACK")?,
                hold_back: attrs.decimal("HOLD-BACK")?,
                can_skip_until: attrs.decimal("CAN-SKIP-UNTIL")?,
                can_skip_dateranges: attrs.yes("CAN-SKIP-DATERANGES")?,
            });
        }
        "EXT-X-INDEPENDENT-SEGMENTS" => playlist.independent_segments = true,
        "EXT-X-ENDLIST" => playlist.end_list = true,
        "EXT-X-SKIP" => playlist.skip = Some(parse_skip(value)?),
        "EXT-X-DISCONTINUITY" => pending.discontinuity = true,
        "EXT-X-GAP" => pending.gap = true,
        "EXT-X-MAP" => {
            let attrs = AttrList::parse(value)?;
            pending.map_uri = Some(attrs.required_quoted("URI")?.to_owned());
        }
        "EXT-X-PROGRAM-DATE-TIME" => {
            let time = parse_rfc3339(value).ok_or_else(|| format!("invalid date {value:?}"))?;
            pending.program_date_time = Some(time);
        }
        "EXT-X-PART" => {
            let attrs = AttrList::parse(value)?;
            let duration = attrs.decimal("DURATION")?;
            pending.parts.push(Part {
                duration: duration.ok_or("missing required attribute DURATION")?,
                uri: attrs.required_quoted("URI")?.to_owned(),
                independent: attrs.yes("INDEPENDENT")?,
                gap: attrs.yes("GAP")?,
            });
        }
        "EXTINF" => {
            let number = value.split_once(',').map_or(value, |(d, _title)| d).trim();
            let duration =
                parse_decimal(number).ok_or_else(|| format!("invalid duration {number:?}"))?;
            pending.extinf = Some((duration, line_no));
        }
        "EXT-X-PRELOAD-HINT" => {
            let attrs = AttrList::parse(value)?;
            let hint_type = match attrs.enumerated("TYPE")? {
                Some("PART") => PreloadHintType::Part,
                Some("MAP") => PreloadHintType::Map,
                other => return Err(format!("TYPE must be PART or MAP, not {other:?}")),
            };
            playlist.preload_hint = Some(PreloadHint {
                hint_type,
                uri: attrs.required_quoted("URI")?.to_owned(),
            });
        }
        "EXT-X-RENDITION-REPORT" => {
            let attrs = AttrList::parse(value)?;
            let last_msn = attrs.integer("LAST-MSN")?;
            playlist.rendition_reports.push(RenditionReport {
                uri: attrs.required_quoted("URI")?.to_owned(),
                last_msn: last_msn.ok_or("missing required attribute LAST-MSN")?,
                last_part: attrs.integer("LAST-PART")?,
            });
        }
        // Comments and tags we do not model (EXT-X-DATERANGE, EXT-X-KEY, ...).
        _ => {}
    }
    Ok(())
}

fn parse_skip(value: &str) -> Result<Skip, String> {
    let attrs = AttrList::parse(value)?;
    let skipped_segments = attrs
        .integer("SKIPPED-SEGMENTS")?
        .ok_or("missing required attribute SKIPPED-SEGMENTS")?;
    let recently_removed_dateranges = attrs.quoted("RECENTLY-REMOVED-DATERANGES")?.map(|ids| {
        ids.split('\t')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect()
    });
    Ok(Skip {
        skipped_segments,
        recently_removed_dateranges,
    })
}
