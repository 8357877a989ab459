//! The multivariant ("master") playlist: the renditions of a stream and their
//! shared audio.
//!
//! Read through m3u8-rs, which handles this format fully. Written by hand, because
//! m3u8-rs writes `FRAME-RATE` with `f64`'s `Display` (`30`, `29.97002997`) where
//! we want a fixed three decimals, and it cannot order or force attributes; a small
//! writer keeps the output exact and deterministic.

use std::fmt::{self, Write};

use m3u8_rs::{AlternativeMedia, AlternativeMediaType, QuotedOrUnquoted, VariantStream};

use super::{PlaylistError, MAX_PLAYLIST_BYTES};

/// A multivariant playlist as livecdn publishes it: variants plus audio renditions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MultivariantPlaylist {
    /// `EXT-X-INDEPENDENT-SEGMENTS`: every segment starts with a keyframe.
    pub independent_segments: bool,
    /// `EXT-X-STREAM-INF` entries, in order of preference.
    pub variants: Vec<Variant>,
    /// `EXT-X-MEDIA:TYPE=AUDIO` renditions; other media types are not modelled.
    pub audio: Vec<AudioRendition>,
}

/// One `EXT-X-STREAM-INF` and its media playlist URI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variant {
    /// Media playlist URI.
    pub uri: String,
    /// `BANDWIDTH`: peak bits per second.
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`: average bits per second.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`, e.g. `avc1.64001f,mp4a.40.2`; empty is not rendered.
    pub codecs: String,
    /// `RESOLUTION` as (width, height).
    pub resolution: Option<(u32, u32)>,
    /// `FRAME-RATE`, rendered with three decimals.
    pub frame_rate: Option<f64>,
    /// `AUDIO`: the `GROUP-ID` of the audio renditions to play with this variant.
    pub audio_group: Option<String>,
    /// `NAME`: not in the RFC, but hls.js and others show it as the level name.
    pub name: Option<String>,
}

/// One `EXT-X-MEDIA:TYPE=AUDIO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioRendition {
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`, shown to the viewer.
    pub name: String,
    /// `URI` of the audio media playlist.
    pub uri: String,
    /// `DEFAULT=YES`.
    pub default: bool,
    /// `AUTOSELECT=YES`.
    pub autoselect: bool,
    /// `CHANNELS` (the count before any `/`).
    pub channels: Option<u8>,
    /// `LANGUAGE` (RFC 5646 tag).
    pub language: Option<String>,
}

impl MultivariantPlaylist {
    /// Writes the playlist; quoted values must not contain `"` or line breaks.
    pub fn write_to<W: Write>(&self, w: &mut W) -> fmt::Result {
        w.write_str("#EXTM3U\n#EXT-X-VERSION:6\n")?;
        if self.independent_segments {
            w.write_str("#EXT-X-INDEPENDENT-SEGMENTS\n")?;
        }
        for a in &self.audio {
            write!(
                w,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\",NAME=\"{}\"",
                a.group_id, a.name
            )?;
            if let Some(language) = &a.language {
                write!(w, ",LANGUAGE=\"{language}\"")?;
            }
            write!(
                w,
                ",DEFAULT={},AUTOSELECT={}",
                yes_no(a.default),
                yes_no(a.autoselect)
            )?;
            if let Some(channels) = a.channels {
                write!(w, ",CHANNELS=\"{channels}\"")?;
            }
            writeln!(w, ",URI=\"{}\"", a.uri)?;
        }
        for v in &self.variants {
            write!(w, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth)?;
            if let Some(average) = v.average_bandwidth {
                write!(w, ",AVERAGE-BANDWIDTH={average}")?;
            }
            if !v.codecs.is_empty() {
                write!(w, ",CODECS=\"{}\"", v.codecs)?;
            }
            if let Some((width, height)) = v.resolution {
                write!(w, ",RESOLUTION={width}x{height}")?;
            }
            if let Some(rate) = v.frame_rate {
                write!(w, ",FRAME-RATE={rate:.3}")?;
            }
            if let Some(group) = &v.audio_group {
                write!(w, ",AUDIO=\"{group}\"")?;
            }
            if let Some(name) = &v.name {
                write!(w, ",NAME=\"{name}\"")?;
            }
            writeln!(w, "\n{}", v.uri)?;
        }
        Ok(())
    }

    /// The playlist as a `String`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Parses a multivariant playlist with m3u8-rs. I-frame variants and
    /// non-audio renditions are skipped; values our model cannot hold are errors.
    pub fn parse(text: &str) -> Result<MultivariantPlaylist, PlaylistError> {
        if text.len() > MAX_PLAYLIST_BYTES {
            return Err(PlaylistError::TooLarge {
                len: text.len(),
                max: MAX_PLAYLIST_BYTES,
            });
        }
        let master = m3u8_rs::parse_master_playlist_res(text.as_bytes())
            .map_err(|e| PlaylistError::Multivariant(format!("{:?}", e.map(|e| e.code))))?;
        let variants = master
            .variants
            .iter()
            .filter(|v| !v.is_i_frame)
            .map(variant_from_m3u8)
            .collect::<Result<_, _>>()?;
        let audio = master
            .alternatives
            .iter()
            .filter(|a| a.media_type == AlternativeMediaType::Audio)
            .map(audio_from_m3u8)
            .collect::<Result<_, _>>()?;
        Ok(MultivariantPlaylist {
            independent_segments: master.independent_segments,
            variants,
            audio,
        })
    }
}

/// Fuzz body: any bytes as a multivariant playlist, as the load-test
/// harness reads one from a server. Never a panic; what parses renders to
/// text that parses again.
pub fn fuzz_multivariant(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mv) = MultivariantPlaylist::parse(text) {
        let rendered = mv.to_string();
        assert!(
            MultivariantPlaylist::parse(&rendered).is_ok(),
            "render of {text:?} does not parse: {rendered:?}"
        );
    }
}

impl fmt::Display for MultivariantPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "YES"
    } else {
        "NO"
    }
}

fn variant_from_m3u8(v: &VariantStream) -> Result<Variant, PlaylistError> {
    let resolution = v
        .resolution
        .map(
            |r| match (u32::try_from(r.width), u32::try_from(r.height)) {
                (Ok(w), Ok(h)) => Ok((w, h)),
                _ => Err(PlaylistError::Multivariant(format!(
                    "resolution {r} out of range"
                ))),
            },
        )
        .transpose()?;
    let name = match v.other_attributes.as_ref().and_then(|a| a.get("NAME")) {
        Some(QuotedOrUnquoted::Quoted(name)) => Some(name.clone()),
        _ => None,
    };
    Ok(Variant {
        uri: v.uri.clone(),
        bandwidth: v.bandwidth,
        average_bandwidth: v.average_bandwidth,
        codecs: v.codecs.clone().unwrap_or_default(),
        resolution,
        frame_rate: v.frame_rate,
        audio_group: v.audio.clone(),
        name,
    })
}

fn audio_from_m3u8(a: &AlternativeMedia) -> Result<AudioRendition, PlaylistError> {
    let channels = a
        .channels
        .as_deref()
        .map(|c| {
            let count = c.split('/').next().unwrap_or(c);
            count
                .parse::<u8>()
                .map_err(|_| PlaylistError::Multivariant(format!("invalid CHANNELS {c:?}")))
        })
        .transpose()?;
    Ok(AudioRendition {
        group_id: a.group_id.clone(),
        name: a.name.clone(),
        uri: a.uri.clone().unwrap_or_default(),
        default: a.default,
        autoselect: a.autoselect,
        channels,
        language: a.language.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sample() -> MultivariantPlaylist {
        MultivariantPlaylist {
            independent_segments: true,
            variants: vec![
                Variant {
                    uri: "720p/index.m3u8".into(),
                    bandwidth: 3_200_000,
                    average_bandwidth: Some(2_800_000),
                    codecs: "avc1.64001f,mp4a.40.2".into(),
                    resolution: Some((1280, 720)),
                    frame_rate: Some(30.0),
                    audio_group: Some("aud".into()),
                    name: Some("720p".into()),
                },
                Variant {
                    uri: "360p/index.m3u8".into(),
                    bandwidth: 900_000,
                    average_bandwidth: None,
                    codecs: "avc1.42c01e,mp4a.40.2".into(),
                    resolution: Some((640, 360)),
                    frame_rate: Some(29.97),
                    audio_group: Some("aud".into()),
                    name: None,
                },
            ],
            audio: vec![AudioRendition {
                group_id: "aud".into(),
                name: "English".into(),
                uri: "audio/index.m3u8".into(),
                default: true,
                autoselect: true,
                channels: Some(2),
                language: Some("en".into()),
            }],
        }
    }

    #[test]
    fn renders_all_attributes() {
        let text = sample().render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
        );
        assert_eq!(
            lines[3],
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",\
             DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\""
        );
        assert_eq!(
            lines[4],
            "#EXT-X-STREAM-INF:BANDWIDTH=3200000,AVERAGE-BANDWIDTH=2800000,\
             CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,\
             AUDIO=\"aud\",NAME=\"720p\""
        );
        assert_eq!(lines[5], "720p/index.m3u8");
        assert!(lines[6].contains("FRAME-RATE=29.970,"));
    }

    #[test]
    fn fuzz_multivariant_survives_seeds_and_mutations() {
        let text = sample().render();
        let recorded = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.4d401e\"\nx.m3u8\n";
        crate::bytes_reader::fuzz_input::exercise(
            &[text.as_bytes(), recorded.as_bytes(), b"#EXTM3U\n"],
            2000,
            fuzz_multivariant,
        );
    }

    #[test]
    fn round_trips_through_m3u8_rs() -> TestResult {
        let original = sample();
        let text = original.render();
        let raw =
            m3u8_rs::parse_master_playlist_res(text.as_bytes()).map_err(|e| format!("{e:?}"))?;
        assert_eq!(raw.version, Some(6));
        assert_eq!(raw.variants[0].frame_rate, Some(30.0));
        assert_eq!(raw.alternatives[0].channels.as_deref(), Some("2"));
        assert_eq!(MultivariantPlaylist::parse(&text)?, original);
        Ok(())
    }

    #[test]
    fn parse_skips_what_we_do_not_model_and_rejects_garbage() -> TestResult {
        let text = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"en\",URI=\"s.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"Atmos\",CHANNELS=\"16/JOC\",URI=\"a.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1000\nlow.m3u8\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100,URI=\"i.m3u8\"\n";
        let parsed = MultivariantPlaylist::parse(text)?;
        assert_eq!(parsed.variants.len(), 1);
        assert_eq!(parsed.variants[0].codecs, "");
        assert_eq!(parsed.audio.len(), 1);
        assert_eq!(parsed.audio[0].channels, Some(16));
        assert!(!parsed.audio[0].default);
        assert!(MultivariantPlaylist::parse("not a playlist").is_err());
        let too_big = "#EXTM3U\n".repeat(MAX_PLAYLIST_BYTES / 8 + 1);
        assert!(matches!(
            MultivariantPlaylist::parse(&too_big),
            Err(PlaylistError::TooLarge { .. })
        ));
        Ok(())
    }
}
