//! Writing a [`MediaPlaylist`] as text.
//!
//! Output is deterministic (same model, same bytes), so every edge and shield that
//! renders or caches the playlist produces identical bodies. Tag order follows
//! RFC 8216bis examples: header tags, then per segment
//! `DISCONTINUITY, MAP, PROGRAM-DATE-TIME, GAP, PART..., EXTINF, URI`, then the
//! preload hint, rendition reports and `EXT-X-ENDLIST`. Every duration has five
//! decimals (see `attr::Decimal`).
//!
//! The writer trusts the model: URIs and ids must not contain `"` or line breaks,
//! durations must be finite and non-negative, and only the last segment may be in
//! progress. The origin builds the model from its own state, so these hold there;
//! anything read by [`MediaPlaylist::parse`] satisfies them too.

use std::fmt::{self, Write};

use super::attr::Decimal;
use super::date::format_rfc3339_millis;
use super::media::{MediaPlaylist, Part, Segment, ServerControl, Skip};

impl MediaPlaylist {
    /// Writes the playlist to any `fmt::Write` (a `String`, a `Formatter`).
    pub fn write_to<W: Write>(&self, w: &mut W) -> fmt::Result {
        w.write_str("#EXTM3U\n")?;
        writeln!(w, "#EXT-X-VERSION:{}", self.version)?;
        writeln!(w, "#EXT-X-TARGETDURATION:{}", self.target_duration)?;
        if let Some(control) = &self.server_control {
            write_server_control(w, control)?;
        }
        if let Some(target) = self.part_target {
            writeln!(w, "#EXT-X-PART-INF:PART-TARGET={}", Decimal(target))?;
        }
        if let Some(t) = self.playlist_type {
            writeln!(w, "#EXT-X-PLAYLIST-TYPE:{}", t.as_str())?;
        }
        writeln!(w, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence)?;
        if self.discontinuity_sequence != 0 {
            writeln!(
                w,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            )?;
        }
        if self.independent_segments {
            w.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        if let Some(skip) = &self.skip {
            write_skip(w, skip)?;
        }
        for segment in &self.segments {
            write_segment(w, segment)?;
        }
        if let Some(hint) = &self.preload_hint {
            writeln!(
                w,
                "#EXT-X-PRELOAD-HINT:TYPE={},URI=\"{}\"",
                hint.hint_type.as_str(),
                hint.uri
            )?;
        }
        for report in &self.rendition_reports {
            write!(
                w,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
                report.uri, report.last_msn
            )?;
            if let Some(part) = report.last_part {
                write!(w, ",LAST-PART={part}")?;
            }
            w.write_char('\n')?;
        }
        if self.end_list {
            w.write_str("#EXT-X-ENDLIST\n")?;
        }
        Ok(())
    }

    /// The playlist as a `String` (same as `to_string()`).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(128 + self.segments.len() * 256);
        // Writing into a String cannot fail.
        let _ = self.write_to(&mut out);
        out
    }
}

impl fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// Writes `CAN-BLOCK-RELOAD, CAN-SKIP-UNTIL, CAN-SKIP-DATERANGES, HOLD-BACK,
/// PART-HOLD-BACK` in that order, omitting absent ones.
fn write_server_control<W: Write>(w: &mut W, control: &ServerControl) -> fmt::Result {
    w.write_str("#EXT-X-SERVER-CONTROL:")?;
    let mut sep = "";
    let mut attr = |w: &mut W, text: fmt::Arguments<'_>| -> fmt::Result {
        w.write_str(sep)?;
        sep = ",";
        w.write_fmt(text)
    };
    if control.can_block_reload {
        attr(w, format_args!("CAN-BLOCK-RELOAD=YES"))?;
    }
    if let Some(until) = control.can_skip_until {
        attr(w, format_args!("CAN-SKIP-UNTIL={}", Decimal(until)))?;
    }
    if control.can_skip_dateranges {
        attr(w, format_args!("CAN-SKIP-DATERANGES=YES"))?;
    }
    if let Some(hold_back) = control.hold_back {
        attr(w, format_args!("HOLD-BACK={}", Decimal(hold_back)))?;
    }
    if let Some(part_hold_back) = control.part_hold_back {
        attr(
            w,
            format_args!("PART-HOLD-BACK={}", Decimal(part_hold_back)),
        )?;
    }
    w.write_char('\n')
}

fn write_skip<W: Write>(w: &mut W, skip: &Skip) -> fmt::Result {
    write!(w, "#EXT-X-SKIP:SKIPPED-SEGMENTS={}", skip.skipped_segments)?;
    if let Some(ids) = &skip.recently_removed_dateranges {
        w.write_str(",RECENTLY-REMOVED-DATERANGES=\"")?;
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                w.write_char('\t')?;
            }
            w.write_str(id)?;
        }
        w.write_char('"')?;
    }
    w.write_char('\n')
}

fn write_segment<W: Write>(w: &mut W, segment: &Segment) -> fmt::Result {
    if segment.discontinuity {
        w.write_str("#EXT-X-DISCONTINUITY\n")?;
    }
    if let Some(map) = &segment.map_uri {
        writeln!(w, "#EXT-X-MAP:URI=\"{map}\"")?;
    }
    if let Some(pdt) = segment.program_date_time {
        writeln!(w, "#EXT-X-PROGRAM-DATE-TIME:{}", format_rfc3339_millis(pdt))?;
    }
    if segment.gap {
        w.write_str("#EXT-X-GAP\n")?;
    }
    for part in &segment.parts {
        write_part(w, part)?;
    }
    if let Some(uri) = &segment.uri {
        writeln!(w, "#EXTINF:{},\n{uri}", Decimal(segment.duration))?;
    }
    Ok(())
}

fn write_part<W: Write>(w: &mut W, part: &Part) -> fmt::Result {
    write!(
        w,
        "#EXT-X-PART:DURATION={},URI=\"{}\"",
        Decimal(part.duration),
        part.uri
    )?;
    if part.independent {
        w.write_str(",INDEPENDENT=YES")?;
    }
    if part.gap {
        w.write_str(",GAP=YES")?;
    }
    w.write_char('\n')
}
