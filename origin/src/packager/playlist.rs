//! Building LL-HLS media playlists from the live window.

use super::track::{Segment, Track};
use super::{Packager, AUDIO, SOURCE};
use livecdn_shared::playlist::{
    MediaPlaylist, Part as PlaylistPart, PreloadHint, PreloadHintType, RenditionReport,
    Segment as PlaylistSegment, ServerControl, Skip, SkipRequest,
};
use std::time::Duration;

/// Part URI inside a rendition directory.
pub fn part_uri(msn: u64, part: u32) -> String {
    format!("{msn}.{part}.m4s")
}

/// Where a rung's playlist finds the source's media.
const SOURCE_DIR: &str = "../source/";

/// One segment as a playlist lists it: the rendition's own, or the source's
/// standing in for media a rung does not have.
struct View<'a> {
    seg: &'a Segment,
    prefix: &'static str,
    discontinuity: bool,
}

/// The segments rendition `track` lists. A rung's placeholders (segments
/// its encoder missed) become the source's segment of the same MSN, and a
/// rung that is down continues with the source's newer segments; each
/// switch between the rung's media and the source's is a discontinuity.
fn segment_views<'a>(track: &'a Track, source: Option<&'a Track>, down: bool) -> Vec<View<'a>> {
    let mut views: Vec<View<'a>> = Vec::with_capacity(track.segments().len() + 2);
    let mut borrowing = false;
    for s in track.segments() {
        // Placeholders carry the discontinuity of a switch to the source (the
        // first of a run) and the rung's first own segment after them
        // carries the switch back, so the discontinuity sequence counts them.
        match s.gap.and(source.and_then(|src| src.segment(s.msn))) {
            Some(src) => views.push(View {
                seg: src,
                prefix: SOURCE_DIR,
                discontinuity: s.discontinuity || src.discontinuity,
            }),
            None => views.push(View {
                seg: s,
                prefix: "",
                discontinuity: s.discontinuity,
            }),
        }
        borrowing = s.gap.is_some();
    }
    if let (true, Some(src)) = (down, source) {
        let next = track.next_msn();
        for s in src.segments().iter().filter(|s| s.msn >= next) {
            views.push(View {
                seg: s,
                prefix: SOURCE_DIR,
                discontinuity: !borrowing || s.discontinuity,
            });
            borrowing = true;
        }
    }
    views
}

/// A duration as a playlist writes it: five decimals of a second, i.e.
/// units of 10 µs. Playlists are built from these integers, so every sum a
/// server rule compares (the skip boundary) is exact and equals what a
/// client adds up from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Units(u64);

impl Units {
    const PER_SECOND: u64 = 100_000;

    /// `ticks` of a `timescale` clock, rounded to the nearest unit.
    fn of(ticks: u64, timescale: u32) -> Units {
        let ts = u128::from(timescale.max(1));
        let u = (u128::from(ticks) * u128::from(Self::PER_SECOND) + ts / 2) / ts;
        Units(u64::try_from(u).unwrap_or(u64::MAX))
    }

    fn from_secs(secs: u64) -> Units {
        Units(secs.saturating_mul(Self::PER_SECOND))
    }

    /// Seconds; `{:.5}` of this prints exactly the units.
    fn secs(self) -> f64 {
        self.0 as f64 / Self::PER_SECOND as f64
    }
}

/// Segment URI inside a rendition directory.
pub fn segment_uri(msn: u64) -> String {
    format!("{msn}.m4s")
}

impl Packager {
    /// EXT-X-TARGETDURATION: the configured target rounded up, or larger if
    /// an encoder's GOP made longer segments (every EXTINF, rounded, must fit).
    pub fn target_duration(&self) -> u64 {
        let cfg = self.config().segment_target.as_secs_f64().ceil() as u64;
        let longest = self
            .tracks()
            .flat_map(|t| {
                t.segments()
                    .iter()
                    .filter(|s| s.complete)
                    .map(move |s| (s.duration() as f64 / f64::from(t.timescale)).round() as u64)
            })
            .max()
            .unwrap_or(0);
        cfg.max(longest).max(1)
    }

    /// The media playlist of rendition `name`, or its delta update.
    ///
    /// A transcoded rung whose encoder was down lists the source's media for
    /// the segments it misses (URIs into `../source/`, with the source's
    /// EXT-X-MAP and a discontinuity at each switch), and while it is down
    /// its live edge is the source's: a player on the rung plays on at the
    /// source's quality instead of stalling, and MSNs stay aligned.
    pub fn media_playlist(&self, name: &str, skip: Option<SkipRequest>) -> Option<MediaPlaylist> {
        let track = self.track(name)?;
        let source = self
            .track(SOURCE)
            .filter(|_| self.rung_config(name).is_some());
        let down = self.rung_is_down(name);
        let views = segment_views(track, source, down);
        let ts = track.timescale;
        let target = self.target_duration();
        let part_target = self.part_target_of(name);
        let part_max = u64::try_from(part_target.as_nanos() / 10_000).unwrap_or(u64::MAX);
        // A part as listed: its measured span, never above PART-TARGET
        // (a MUST; a frame arriving a millisecond late is not worth a
        // broken rule).
        let part_units =
            |p: &super::track::Part| Units::of(p.listed_duration(), ts).0.min(part_max);
        let part_target = part_target.as_secs_f64();
        let skip_until = 6 * target;
        // NORMAL latency: complete segments only, no LL-HLS tags.
        let low_latency = self.config().low_latency;
        // What each segment adds to the playlist as listed: a complete one
        // its EXTINF, the open one its complete parts.
        let listed_units = |s: &Segment| -> u64 {
            if s.complete {
                Units::of(s.duration(), ts).0
            } else {
                s.parts.iter().filter(|p| p.complete).map(part_units).sum()
            }
        };
        let end: u64 = views.iter().map(|v| listed_units(v.seg)).sum();

        // Delta update: skip complete segments that end at least
        // CAN-SKIP-UNTIL before the end of the playlist (RFC 8216bis
        // 6.2.5.1). Compared in the units the playlist is written in, so
        // what a client adds up from the EXTINFs and parts it is sent is
        // exactly what was compared.
        let mut skipped = 0usize;
        if skip.is_some() {
            let mut at = 0;
            for v in views.iter().filter(|v| v.seg.complete) {
                at += listed_units(v.seg);
                if end - at >= Units::from_secs(skip_until).0 {
                    skipped += 1;
                } else {
                    break;
                }
            }
        }
        // Parts are listed only near the live edge (RFC 8216bis 4.4.4.9:
        // three target durations).
        let parts_from = end.saturating_sub(Units::from_secs(3 * target).0);

        let mut out = Vec::with_capacity(views.len());
        let mut at = 0;
        let mut prev_init = None;
        for (i, v) in views.iter().enumerate() {
            let s = v.seg;
            let dur = listed_units(s);
            let start = at;
            at += dur;
            let init = (v.prefix, s.init_gen);
            let init_changed = prev_init != Some(init);
            prev_init = Some(init);
            if i < skipped {
                continue;
            }
            let with_parts = low_latency && (start + dur > parts_from || !s.complete);
            let parts = if with_parts {
                s.parts
                    .iter()
                    .filter(|p| p.complete)
                    .map(|p| PlaylistPart {
                        duration: Units(part_units(p)).secs(),
                        uri: format!("{}{}", v.prefix, part_uri(s.msn, p.index)),
                        independent: p.independent,
                        gap: false,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if !s.complete && parts.is_empty() {
                continue;
            }
            out.push(PlaylistSegment {
                // An open segment lasts as long as its listed parts.
                duration: Units(dur).secs(),
                uri: s
                    .complete
                    .then(|| format!("{}{}", v.prefix, segment_uri(s.msn))),
                discontinuity: v.discontinuity,
                program_date_time: Some(s.pdt),
                map_uri: (init_changed || i == skipped)
                    .then(|| format!("{}{}", v.prefix, Track::init_uri(s.init_gen))),
                parts,
                gap: s.gap.is_some(),
            });
        }

        let ended = self.is_ended();
        // While down, the rung's live edge is the source's.
        let (edge, edge_prefix) = match (down, source) {
            (true, Some(src)) => (src, SOURCE_DIR),
            _ => (track, ""),
        };
        let preload_hint = (!ended && low_latency).then(|| PreloadHint {
            hint_type: PreloadHintType::Part,
            uri: {
                let (msn, part) = self.next_part(edge);
                format!("{edge_prefix}{}", part_uri(msn, part))
            },
        });
        let rendition_reports = self
            .tracks()
            .filter(|t| low_latency && t.name != track.name)
            .filter_map(|t| {
                let (msn, part) = self.progress(&t.name)?;
                Some(RenditionReport {
                    uri: format!("../{}/index.m3u8", t.name),
                    last_msn: msn,
                    last_part: Some(u64::from(part)),
                })
            })
            .collect();

        Some(MediaPlaylist {
            version: if skip.is_some() { 9 } else { 6 },
            target_duration: target,
            part_target: low_latency.then_some(part_target),
            playlist_type: None,
            server_control: Some(ServerControl {
                can_block_reload: low_latency,
                part_hold_back: low_latency.then(|| self.part_hold_back().as_secs_f64()),
                hold_back: Some(3.0 * target as f64),
                can_skip_until: Some(skip_until as f64),
                can_skip_dateranges: false,
            }),
            media_sequence: views.first().map_or(track.next_msn(), |v| v.seg.msn),
            discontinuity_sequence: track.discontinuity_sequence(),
            independent_segments: true,
            skip: skip.map(|k| Skip {
                skipped_segments: skipped as u64,
                recently_removed_dateranges: matches!(k, SkipRequest::V2).then(Vec::new),
            }),
            segments: out,
            preload_hint,
            rendition_reports,
            end_list: ended,
        })
    }

    /// PART-TARGET of rendition `name`.
    ///
    /// The leading track cuts its parts at the advertised target. The audio,
    /// when video leads, applies the video's cuts at its own frame
    /// boundaries: a frame goes to the part where most of it plays (up to
    /// half a frame more at the start), and a frame that arrives just before
    /// the video frame that publishes a cut stays in the old part (up to one
    /// and a half frames more at the end). So its parts can run up to two
    /// audio frames longer than the video's, and its PART-TARGET says so,
    /// since every part must be at most the PART-TARGET of its playlist
    /// (RFC 8216bis 4.4.4.9). Rounded up to the playlist's 10 µs so the
    /// written value is never below a part.
    pub fn part_target_of(&self, name: &str) -> Duration {
        let base = self.cfg.advertised_part_target();
        let follows_video = self.lead != super::Lead::Audio && self.video.is_some();
        // The Opus follows whichever track leads, in its own 20 ms frames.
        let follower = match name {
            AUDIO if follows_video => self.audio.as_ref(),
            super::OPUS => self.opus.as_ref(),
            _ => None,
        };
        let extra = match follower {
            Some(a) => {
                let ts = u128::from(a.track.timescale.max(1));
                // Whole nanoseconds, rounded up.
                let nanos = (2 * u128::from(a.frame_ticks()) * 1_000_000_000).div_ceil(ts);
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        };
        let nanos = (base + extra).as_nanos().div_ceil(10_000) * 10_000;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// PART-HOLD-BACK, the same in every rendition: three times the largest
    /// PART-TARGET of any (RFC 8216bis 4.4.3.8), so that a player switching
    /// between audio and video playlists keeps one latency target.
    pub fn part_hold_back(&self) -> Duration {
        let largest = self
            .tracks()
            .map(|t| self.part_target_of(&t.name))
            .max()
            .unwrap_or_else(|| self.cfg.advertised_part_target());
        largest * 3
    }

    /// The track whose progress rendition `name`'s playlist follows: its
    /// own, or the source's while a rung's encoder is down. Blocking
    /// reloads wait on this one.
    pub fn playlist_track(&self, name: &str) -> Option<&Track> {
        let own = self.track(name)?;
        if self.rung_is_down(name) {
            return self.track(SOURCE).or(Some(own));
        }
        Some(own)
    }

    /// (msn, part) of the last complete part rendition `name`'s playlist
    /// lists (RENDITION-REPORT).
    pub fn progress(&self, name: &str) -> Option<(u64, u32)> {
        self.playlist_track(name)?.last_complete_part()
    }

    /// The part a player should preload next: the one in progress, or the
    /// one the next frame will open.
    pub fn next_part(&self, track: &Track) -> (u64, u32) {
        match track.open_segment() {
            Some(seg) => {
                if seg.parts.last().is_some_and(|p| !p.complete) {
                    return (seg.msn, track.next_part_index());
                }
                let ts = f64::from(track.timescale);
                let elapsed = seg.duration() as f64 / ts;
                let half_frame = 0.02;
                if elapsed + half_frame >= self.config().segment_target.as_secs_f64() {
                    (seg.msn + 1, 0)
                } else {
                    (seg.msn, track.next_part_index())
                }
            }
            None => (track.next_msn(), 0),
        }
    }
}
