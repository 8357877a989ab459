//! Building LL-HLS media playlists from the live window.

use super::track::Track;
use super::Packager;
use livecdn_shared::playlist::{
    MediaPlaylist, Part as PlaylistPart, PreloadHint, PreloadHintType, RenditionReport,
    Segment as PlaylistSegment, ServerControl, Skip, SkipRequest,
};

/// Part URI inside a rendition directory.
pub fn part_uri(msn: u64, part: u32) -> String {
    format!("{msn}.{part}.m4s")
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
    pub fn media_playlist(&self, name: &str, skip: Option<SkipRequest>) -> Option<MediaPlaylist> {
        let track = self.track(name)?;
        let ts = f64::from(track.timescale);
        let target = self.target_duration();
        let part_target = self.config().advertised_part_target().as_secs_f64();
        let skip_until = 6.0 * target as f64;
        let segs = track.segments();
        let end: f64 = segs.iter().map(|s| s.duration() as f64 / ts).sum();

        // Delta update: skip complete segments that end more than
        // CAN-SKIP-UNTIL before the end of the playlist.
        let mut skipped = 0usize;
        if skip.is_some() {
            let mut at = 0.0;
            for s in segs.iter().filter(|s| s.complete) {
                at += s.duration() as f64 / ts;
                if end - at >= skip_until {
                    skipped += 1;
                } else {
                    break;
                }
            }
        }
        // Parts are listed only near the live edge (RFC 8216bis 4.4.4.9:
        // three target durations).
        let parts_from = end - 3.0 * target as f64;

        let mut out = Vec::with_capacity(segs.len());
        let mut at = 0.0;
        let mut prev_gen = None;
        for (i, s) in segs.iter().enumerate() {
            let dur = s.duration() as f64 / ts;
            let start = at;
            at += dur;
            let gen_changed = prev_gen != Some(s.init_gen);
            prev_gen = Some(s.init_gen);
            if i < skipped {
                continue;
            }
            let with_parts = start + dur > parts_from || !s.complete;
            let parts = if with_parts {
                s.parts
                    .iter()
                    .filter(|p| p.complete)
                    .map(|p| PlaylistPart {
                        duration: p.duration as f64 / ts,
                        uri: part_uri(s.msn, p.index),
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
            // An open segment lasts as long as its listed parts.
            let listed = if s.complete {
                dur
            } else {
                parts.iter().map(|p| p.duration).sum()
            };
            out.push(PlaylistSegment {
                duration: listed,
                uri: s.complete.then(|| segment_uri(s.msn)),
                discontinuity: s.discontinuity,
                program_date_time: Some(s.pdt),
                map_uri: (gen_changed || i == skipped).then(|| Track::init_uri(s.init_gen)),
                parts,
                gap: s.gap.is_some(),
            });
        }

        let ended = self.is_ended();
        let preload_hint = (!ended).then(|| PreloadHint {
            hint_type: PreloadHintType::Part,
            uri: {
                let (msn, part) = self.next_part(track);
                part_uri(msn, part)
            },
        });
        let rendition_reports = self
            .tracks()
            .filter(|t| t.name != track.name)
            .filter_map(|t| {
                let (msn, part) = t.last_complete_part()?;
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
            part_target: Some(part_target),
            server_control: Some(ServerControl {
                can_block_reload: true,
                part_hold_back: Some(3.0 * part_target),
                hold_back: Some(3.0 * target as f64),
                can_skip_until: Some(skip_until),
                can_skip_dateranges: false,
            }),
            media_sequence: segs.front().map_or(track.next_msn(), |s| s.msn),
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
