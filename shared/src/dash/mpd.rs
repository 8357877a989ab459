//! The MPD model and its XML rendering: only what a live CMAF stream needs
//! (ISO/IEC 23009-1, DASH-IF IOP low-latency), built by the origin from the
//! same window the HLS playlists come from.

use crate::playlist::date::format_rfc3339_millis;
use std::fmt::{self, Write};
use std::time::{Duration, SystemTime};

/// A dynamic (live) Media Presentation Description.
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    /// `availabilityStartTime`: the wall-clock origin every Period start is
    /// counted from (the Unix epoch here, so it never changes).
    pub availability_start: SystemTime,
    /// `publishTime`: when this version was made.
    pub publish_time: SystemTime,
    /// `minimumUpdatePeriod`: how often a client refetches the MPD.
    pub minimum_update_period: Duration,
    /// `minBufferTime`.
    pub min_buffer_time: Duration,
    /// `timeShiftBufferDepth`: how far back the window reaches.
    pub time_shift_buffer_depth: Duration,
    /// `suggestedPresentationDelay`.
    pub suggested_presentation_delay: Duration,
    /// `maxSegmentDuration`.
    pub max_segment_duration: Duration,
    /// `ServiceDescription/Latency@target`.
    pub latency_target: Duration,
    /// `ServiceDescription/Latency@min` and `@max`.
    pub latency_range: (Duration, Duration),
    /// `ServiceDescription/PlaybackRate@min` and `@max`.
    pub playback_rate: (f64, f64),
    /// `UTCTiming` (`urn:mpeg:dash:utc:http-iso:2014`): where a client reads
    /// the server's clock.
    pub utc_timing: String,
    /// Periods, oldest first.
    pub periods: Vec<Period>,
}

/// A Period: media on one timeline with one set of codec configurations.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// `@id`, stable across MPD updates.
    pub id: String,
    /// `@start`, from `availabilityStartTime`.
    pub start: Duration,
    /// Video first, then audio.
    pub adaptation_sets: Vec<AdaptationSet>,
}

/// Video or audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// Video: every rung of the ladder.
    Video,
    /// Audio.
    Audio,
}

impl ContentType {
    fn as_str(self) -> &'static str {
        match self {
            ContentType::Video => "video",
            ContentType::Audio => "audio",
        }
    }
    fn mime(self) -> &'static str {
        match self {
            ContentType::Video => "video/mp4",
            ContentType::Audio => "audio/mp4",
        }
    }
}

/// An AdaptationSet: the switchable Representations of one content type.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptationSet {
    /// `@id`.
    pub id: u32,
    /// Video or audio.
    pub content_type: ContentType,
    /// Highest bandwidth first.
    pub representations: Vec<Representation>,
}

/// One rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    /// `@id`: the rendition name, also the directory of its media.
    pub id: String,
    /// `@codecs` (RFC 6381).
    pub codecs: String,
    /// `@bandwidth`, bits per second.
    pub bandwidth: u64,
    /// `@width`, `@height` (video).
    pub resolution: Option<(u32, u32)>,
    /// `@frameRate` (video).
    pub frame_rate: Option<f64>,
    /// `@audioSamplingRate` and channel count (audio).
    pub audio: Option<(u32, u8)>,
    /// Where its segments are.
    pub template: SegmentTemplate,
}

/// `SegmentTemplate` with a `SegmentTimeline`, numbered by `$Number$`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentTemplate {
    /// `@timescale`: ticks per second of the track.
    pub timescale: u32,
    /// `@media`, relative to the MPD, with `$Number$`.
    pub media: String,
    /// `@initialization`, relative to the MPD.
    pub initialization: String,
    /// `@startNumber`: the number of the first `S`; equal to the HLS media
    /// sequence number of that segment.
    pub start_number: u64,
    /// `@presentationTimeOffset`, in ticks.
    pub presentation_time_offset: u64,
    /// `@availabilityTimeOffset`, seconds: how much earlier than its end a
    /// segment may be requested (it is then streamed as it is produced).
    pub availability_time_offset: f64,
    /// `@availabilityTimeComplete`: false when a segment requested early
    /// arrives while it is produced (chunked).
    pub availability_time_complete: bool,
    /// Segments, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// One `S` element: `r + 1` segments of duration `d` from time `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEntry {
    /// `@t`: decode time of the first, in ticks.
    pub t: u64,
    /// `@d`: duration of each, in ticks.
    pub d: u64,
    /// `@r`: how many more of the same duration follow.
    pub r: u32,
}

impl SegmentTemplate {
    /// Appends a segment at `t` lasting `d`, folding equal durations that
    /// follow on without a gap into one `S` (its `@r`).
    pub fn push(&mut self, t: u64, d: u64) {
        if let Some(last) = self.timeline.last_mut() {
            let end = last.t + last.d * (u64::from(last.r) + 1);
            if last.d == d && end == t {
                last.r += 1;
                return;
            }
        }
        self.timeline.push(TimelineEntry { t, d, r: 0 });
    }

    /// Segments listed.
    pub fn len(&self) -> u64 {
        self.timeline.iter().map(|s| u64::from(s.r) + 1).sum()
    }

    /// Whether no segment is listed.
    pub fn is_empty(&self) -> bool {
        self.timeline.is_empty()
    }

    /// `(number, t, d)` of every listed segment.
    pub fn segments(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.timeline
            .iter()
            .flat_map(|s| (0..=u64::from(s.r)).map(move |i| (s.t + i * s.d, s.d)))
            .zip(self.start_number..)
            .map(|((t, d), n)| (n, t, d))
    }
}

/// `xs:duration` as `PT…S` with millisecond precision.
pub struct XsDuration(pub Duration);

impl fmt::Display for XsDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        write!(f, "PT{}.{:03}S", ms / 1000, ms % 1000)
    }
}

/// XML attribute text: `&`, `<`, `>`, `"` escaped.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Profiles this MPD conforms to: ISO live and CMAF.
pub const PROFILES: &str = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019";

impl fmt::Display for Mpd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            f,
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="{PROFILES}" type="dynamic" availabilityStartTime="{}" publishTime="{}" minimumUpdatePeriod="{}" minBufferTime="{}" timeShiftBufferDepth="{}" suggestedPresentationDelay="{}" maxSegmentDuration="{}">"#,
            format_rfc3339_millis(self.availability_start),
            format_rfc3339_millis(self.publish_time),
            XsDuration(self.minimum_update_period),
            XsDuration(self.min_buffer_time),
            XsDuration(self.time_shift_buffer_depth),
            XsDuration(self.suggested_presentation_delay),
            XsDuration(self.max_segment_duration),
        )?;
        writeln!(f, r#"  <ServiceDescription id="0">"#)?;
        writeln!(
            f,
            r#"    <Latency target="{}" min="{}" max="{}" referenceId="0"/>"#,
            self.latency_target.as_millis(),
            self.latency_range.0.as_millis(),
            self.latency_range.1.as_millis()
        )?;
        writeln!(
            f,
            r#"    <PlaybackRate min="{}" max="{}"/>"#,
            self.playback_rate.0, self.playback_rate.1
        )?;
        writeln!(f, "  </ServiceDescription>")?;
        for p in &self.periods {
            p.fmt(f)?;
        }
        writeln!(
            f,
            r#"  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="{}"/>"#,
            Escaped(&self.utc_timing)
        )?;
        writeln!(f, "</MPD>")
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            r#"  <Period id="{}" start="{}">"#,
            Escaped(&self.id),
            XsDuration(self.start)
        )?;
        for a in &self.adaptation_sets {
            a.fmt(f)?;
        }
        writeln!(f, "  </Period>")
    }
}

impl fmt::Display for AdaptationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let video = self.content_type == ContentType::Video;
        write!(
            f,
            r#"    <AdaptationSet id="{}" contentType="{}" mimeType="{}" segmentAlignment="true" startWithSAP="1""#,
            self.id,
            self.content_type.as_str(),
            self.content_type.mime()
        )?;
        if video {
            let max = |g: fn(&Representation) -> u32| self.representations.iter().map(g).max();
            if let (Some(w), Some(h)) = (
                max(|r| r.resolution.map_or(0, |x| x.0)),
                max(|r| r.resolution.map_or(0, |x| x.1)),
            ) {
                write!(f, r#" maxWidth="{w}" maxHeight="{h}""#)?;
            }
        }
        writeln!(f, ">")?;
        for r in &self.representations {
            r.fmt(f)?;
        }
        writeln!(f, "    </AdaptationSet>")
    }
}

impl fmt::Display for Representation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"      <Representation id="{}" codecs="{}" bandwidth="{}""#,
            Escaped(&self.id),
            Escaped(&self.codecs),
            self.bandwidth
        )?;
        if let Some((w, h)) = self.resolution {
            write!(f, r#" width="{w}" height="{h}" sar="1:1""#)?;
        }
        if let Some(fps) = self.frame_rate {
            write!(f, r#" frameRate="{}""#, frame_rate(fps))?;
        }
        if let Some((rate, _)) = self.audio {
            write!(f, r#" audioSamplingRate="{rate}""#)?;
        }
        writeln!(f, ">")?;
        if let Some((_, channels)) = self.audio {
            writeln!(
                f,
                r#"        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="{channels}"/>"#
            )?;
        }
        self.template.fmt(f)?;
        writeln!(f, "      </Representation>")
    }
}

/// `@frameRate` as an integer or a ratio (`30000/1001`).
fn frame_rate(fps: f64) -> String {
    let whole = fps.round();
    if (fps - whole).abs() < 0.001 {
        return format!("{whole}");
    }
    let ntsc = (fps * 1001.0 / 1000.0).round();
    if (fps - ntsc * 1000.0 / 1001.0).abs() < 0.001 {
        return format!("{}/1001", ntsc * 1000.0);
    }
    format!("{}/1000", (fps * 1000.0).round())
}

impl fmt::Display for SegmentTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            r#"        <SegmentTemplate timescale="{}" media="{}" initialization="{}" startNumber="{}" presentationTimeOffset="{}" availabilityTimeOffset="{:.3}" availabilityTimeComplete="{}">"#,
            self.timescale,
            Escaped(&self.media),
            Escaped(&self.initialization),
            self.start_number,
            self.presentation_time_offset,
            self.availability_time_offset,
            self.availability_time_complete
        )?;
        writeln!(f, "          <SegmentTimeline>")?;
        for s in &self.timeline {
            write!(f, r#"            <S t="{}" d="{}""#, s.t, s.d)?;
            if s.r > 0 {
                write!(f, r#" r="{}""#, s.r)?;
            }
            writeln!(f, "/>")?;
        }
        writeln!(f, "          </SegmentTimeline>")?;
        writeln!(f, "        </SegmentTemplate>")
    }
}
