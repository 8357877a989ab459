//! An independent reading of the playlists under test.
//!
//! The conformance checks read the raw text themselves rather than through
//! `livecdn_shared::playlist`, so a bug shared by the server's renderer and
//! the project's parser cannot hide a violation: every `EXTINF` and
//! `EXT-X-PART` duration is the number as written, every MSN is computed
//! from `EXT-X-MEDIA-SEQUENCE` and `EXT-X-SKIP` as a client must
//! (RFC 8216bis 6.2.5.1), and a part's index is its position in its parent
//! segment (6.2.5.2).

/// An attribute list (RFC 8216bis 4.2), quotes stripped from values.
#[derive(Debug, Clone, Default)]
pub struct Attrs(Vec<(String, String)>);

impl Attrs {
    pub fn parse(text: &str) -> Attrs {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(eq) = rest.find('=') else { break };
            let name = rest[..eq].trim().to_string();
            rest = &rest[eq + 1..];
            let value;
            if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"').unwrap_or(quoted.len());
                value = quoted[..end].to_string();
                rest = quoted.get(end + 1..).unwrap_or("");
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].to_string();
                rest = &rest[end..];
            }
            rest = rest.strip_prefix(',').unwrap_or(rest);
            out.push((name, value));
        }
        Attrs(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn decimal(&self, name: &str) -> Option<f64> {
        self.get(name)?.parse().ok()
    }

    pub fn integer(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    pub fn yes(&self, name: &str) -> bool {
        self.get(name) == Some("YES")
    }
}

/// One `EXT-X-PART` line.
#[derive(Debug, Clone)]
pub struct PartLine {
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// One media segment as listed: complete (`EXTINF` + URI) or the open one
/// (parts only, last in the playlist).
#[derive(Debug, Clone, Default)]
pub struct Seg {
    pub msn: u64,
    pub extinf: Option<f64>,
    pub uri: Option<String>,
    pub parts: Vec<PartLine>,
    pub program_date_time: bool,
    /// `EXT-X-MAP` URI written right before this segment.
    pub map: Option<String>,
}

impl Seg {
    pub fn complete(&self) -> bool {
        self.uri.is_some()
    }

    /// What the segment contributes to the playlist's duration: its
    /// `EXTINF`, or the sum of its listed parts while open.
    pub fn listed_duration(&self) -> f64 {
        self.extinf
            .unwrap_or_else(|| self.parts.iter().map(|p| p.duration).sum())
    }
}

/// A media playlist, read line by line.
#[derive(Debug, Clone, Default)]
pub struct Media {
    pub text: String,
    pub version: Option<u64>,
    pub target_duration: Option<u64>,
    pub part_inf: Option<Attrs>,
    pub server_control: Option<Attrs>,
    pub media_sequence: Option<u64>,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`, when the playlist is a delta update.
    pub skipped: Option<u64>,
    pub independent_segments: bool,
    pub segs: Vec<Seg>,
    pub preload_hints: Vec<Attrs>,
    pub rendition_reports: Vec<Attrs>,
    pub end_list: bool,
}

impl Media {
    pub fn parse(text: &str) -> Result<Media, String> {
        let mut lines = text.lines().map(str::trim_end);
        if lines.next() != Some("#EXTM3U") {
            return Err("first line is not #EXTM3U".into());
        }
        let mut pl = Media {
            text: text.to_string(),
            ..Media::default()
        };
        let mut cur = Seg::default();
        for line in lines {
            let (tag, value) = match line.split_once(':') {
                Some((t, v)) if line.starts_with('#') => (t, v),
                _ => (line, ""),
            };
            let num = |what: &str| -> Result<u64, String> {
                value.parse().map_err(|_| format!("bad {what} in {line:?}"))
            };
            match tag {
                "" => {}
                "#EXT-X-VERSION" => pl.version = Some(num("version")?),
                "#EXT-X-TARGETDURATION" => pl.target_duration = Some(num("target")?),
                "#EXT-X-MEDIA-SEQUENCE" => pl.media_sequence = Some(num("sequence")?),
                "#EXT-X-PART-INF" => pl.part_inf = Some(Attrs::parse(value)),
                "#EXT-X-SERVER-CONTROL" => pl.server_control = Some(Attrs::parse(value)),
                "#EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
                "#EXT-X-ENDLIST" => pl.end_list = true,
                "#EXT-X-PRELOAD-HINT" => pl.preload_hints.push(Attrs::parse(value)),
                "#EXT-X-RENDITION-REPORT" => pl.rendition_reports.push(Attrs::parse(value)),
                "#EXT-X-SKIP" => {
                    let skipped = Attrs::parse(value).integer("SKIPPED-SEGMENTS");
                    pl.skipped = Some(skipped.ok_or(format!("no SKIPPED-SEGMENTS: {line:?}"))?);
                }
                "#EXT-X-MAP" => {
                    cur.map = Attrs::parse(value).get("URI").map(str::to_string);
                }
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    cur.program_date_time = true;
                }
                "#EXT-X-PART" => {
                    let a = Attrs::parse(value);
                    cur.parts.push(PartLine {
                        duration: a.decimal("DURATION").ok_or(format!("bad part {line:?}"))?,
                        uri: a.get("URI").ok_or(format!("no URI: {line:?}"))?.into(),
                        independent: a.yes("INDEPENDENT"),
                    });
                }
                "#EXTINF" => {
                    let secs = value.split(',').next().unwrap_or("");
                    cur.extinf = Some(secs.parse().map_err(|_| format!("bad {line:?}"))?);
                }
                t if t.starts_with('#') => {}
                uri => {
                    if cur.extinf.is_none() {
                        return Err(format!("segment URI {uri:?} without EXTINF"));
                    }
                    cur.uri = Some(uri.to_string());
                    pl.segs.push(std::mem::take(&mut cur));
                }
            }
        }
        if !cur.parts.is_empty() {
            pl.segs.push(cur);
        }
        let first = pl.media_sequence.unwrap_or(0) + pl.skipped.unwrap_or(0);
        for (i, s) in pl.segs.iter_mut().enumerate() {
            s.msn = first + i as u64;
        }
        Ok(pl)
    }

    pub fn part_target(&self) -> Option<f64> {
        self.part_inf.as_ref()?.decimal("PART-TARGET")
    }

    pub fn control(&self, name: &str) -> Option<f64> {
        self.server_control.as_ref()?.decimal(name)
    }

    pub fn seg(&self, msn: u64) -> Option<&Seg> {
        self.segs.iter().find(|s| s.msn == msn)
    }

    /// MSN of the last listed segment, open or complete.
    pub fn last_msn(&self) -> Option<u64> {
        self.segs.last().map(|s| s.msn)
    }

    /// `(msn, index)` of the last listed part.
    pub fn last_part(&self) -> Option<(u64, u64)> {
        let s = self.segs.iter().rev().find(|s| !s.parts.is_empty())?;
        Some((s.msn, s.parts.len() as u64 - 1))
    }

    /// What a player asks for next: the part after the last listed one, or
    /// part 0 of the next segment when the last listed segment is complete.
    pub fn next_part(&self) -> (u64, u64) {
        match self.segs.last() {
            Some(s) if !s.complete() => (s.msn, s.parts.len() as u64),
            Some(s) => (s.msn + 1, 0),
            None => (self.media_sequence.unwrap_or(0), 0),
        }
    }

    /// Whether this playlist answers a blocking request for `(msn, part)`
    /// as RFC 8216bis 6.2.5.2 defines it: the part is listed, or segment
    /// `msn` is complete with fewer parts and the next segment has begun
    /// (a part index past the last part of a complete segment means part 0
    /// of the next one), or the playlist has moved past `msn`.
    pub fn reaches(&self, msn: u64, part: u64) -> bool {
        if self.segs.iter().any(|s| s.msn > msn) {
            return true;
        }
        self.seg(msn).is_some_and(|s| (s.parts.len() as u64) > part)
    }

    /// The listed part that follows `(msn, part)` in playlist order.
    pub fn part_after(&self, msn: u64, part: u64) -> Option<(u64, u64, &PartLine)> {
        if let Some(p) = self.seg(msn).and_then(|s| s.parts.get(part as usize + 1)) {
            return Some((msn, part + 1, p));
        }
        let next = self.seg(msn + 1)?.parts.first()?;
        Some((msn + 1, 0, next))
    }

    /// Every listed part in order, as `(msn, index)`.
    pub fn part_ids(&self) -> Vec<(u64, u64)> {
        self.segs
            .iter()
            .flat_map(|s| (0..s.parts.len() as u64).map(move |i| (s.msn, i)))
            .collect()
    }

    /// Listed duration: every `EXTINF`, plus the open segment's parts.
    pub fn listed_duration(&self) -> f64 {
        self.segs.iter().map(Seg::listed_duration).sum()
    }

    /// `msn.part` of the last listed part, for messages.
    pub fn describe_end(&self) -> String {
        match self.last_part() {
            Some((m, p)) => {
                let open = self.segs.last().is_some_and(|s| !s.complete());
                let state = if open { "open" } else { "complete" };
                format!("last part {m}.{p} (segment {m} {state})")
            }
            None => "no parts".into(),
        }
    }

    /// The last `n` lines, for messages.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// A multivariant playlist: the variant URIs and the `EXT-X-MEDIA` renditions.
#[derive(Debug, Default)]
pub struct Master {
    pub variants: Vec<String>,
    pub media: Vec<Attrs>,
}

impl Master {
    pub fn parse(text: &str) -> Master {
        let mut out = Master::default();
        let mut want_uri = false;
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA:") {
                out.media.push(Attrs::parse(v));
            } else if line.starts_with("#EXT-X-STREAM-INF:") {
                want_uri = true;
            } else if want_uri && !line.is_empty() && !line.starts_with('#') {
                out.variants.push(line.to_string());
                want_uri = false;
            }
        }
        out
    }
}
