//! A recording's playlists: the multivariant playlist of every recorded
//! rendition and one media playlist per rendition, straight from the
//! index. `EXT-X-PLAYLIST-TYPE:VOD` with `EXT-X-ENDLIST` once the
//! recording is final; `EVENT` (segments only added) while it is written,
//! so a player can follow a recording in progress.

use super::index::{Recording, RenditionIndex};
use super::journal::{init_file, segment_file, MediaKind};
use crate::packager::AUDIO;
use livecdn_shared::playlist::{
    AudioRendition, MediaPlaylist, MultivariantPlaylist, PlaylistType, Segment, Variant,
};
use std::time::{Duration, UNIX_EPOCH};

/// The audio group's id, as the live master names it.
const AUDIO_GROUP: &str = "audio";

/// The multivariant playlist; `None` if nothing playable was recorded.
pub fn master(rec: &Recording) -> Option<MultivariantPlaylist> {
    let audio = rec
        .renditions
        .iter()
        .find(|r| r.meta.kind == MediaKind::Audio && !r.segments.is_empty());
    let (audio_peak, audio_avg) = audio.map_or((0, 0), RenditionIndex::bandwidth);
    let mut out = MultivariantPlaylist {
        independent_segments: true,
        variants: Vec::new(),
        audio: Vec::new(),
    };
    let videos = rec
        .renditions
        .iter()
        .filter(|r| r.meta.kind == MediaKind::Video && !r.segments.is_empty());
    for r in videos {
        let (peak, avg) = r.bandwidth();
        let codecs = match audio {
            Some(a) => format!("{},{}", r.meta.codecs, a.meta.codecs),
            None => r.meta.codecs.clone(),
        };
        out.variants.push(Variant {
            uri: format!("{}/index.m3u8", r.meta.name),
            bandwidth: peak + audio_peak,
            average_bandwidth: Some(avg + audio_avg),
            codecs,
            resolution: r.meta.width.zip(r.meta.height),
            frame_rate: r.meta.frame_rate,
            audio_group: audio.map(|_| AUDIO_GROUP.to_string()),
            name: Some(r.meta.name.clone()),
        });
    }
    out.variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
    match (out.variants.is_empty(), audio) {
        (true, Some(a)) => out.variants.push(Variant {
            uri: format!("{AUDIO}/index.m3u8"),
            bandwidth: audio_peak,
            average_bandwidth: Some(audio_avg),
            codecs: a.meta.codecs.clone(),
            resolution: None,
            frame_rate: None,
            audio_group: None,
            name: Some(AUDIO.to_string()),
        }),
        (false, Some(a)) => out.audio.push(AudioRendition {
            group_id: AUDIO_GROUP.to_string(),
            name: AUDIO.to_string(),
            uri: format!("{AUDIO}/index.m3u8"),
            default: true,
            autoselect: true,
            channels: a.meta.channels,
            language: None,
        }),
        (true, None) => return None,
        (false, None) => {}
    }
    Some(out)
}

/// A rendition's media playlist; `None` if the recording has no such
/// rendition.
pub fn media(rec: &Recording, rendition: &str) -> Option<MediaPlaylist> {
    let r = rec.rendition(rendition)?;
    let ts = f64::from(r.meta.timescale.max(1));
    let final_ = rec.state.is_final();
    let mut gen = None;
    let segments: Vec<Segment> = r
        .segments
        .iter()
        .map(|s| {
            let map_uri = (gen != Some(s.gen)).then(|| init_file(s.gen));
            gen = Some(s.gen);
            Segment {
                duration: s.duration as f64 / ts,
                uri: Some(segment_file(s.msn)),
                discontinuity: s.discontinuity,
                program_date_time: Some(UNIX_EPOCH + Duration::from_millis(s.pdt_ms)),
                map_uri,
                parts: Vec::new(),
                gap: false,
            }
        })
        .collect();
    // TARGETDURATION: the longest segment, rounded to the nearest second
    // (RFC 8216bis 4.4.3.1), at least 1.
    let target = segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    Some(MediaPlaylist {
        version: 6,
        target_duration: target,
        playlist_type: Some(if final_ {
            PlaylistType::Vod
        } else {
            PlaylistType::Event
        }),
        media_sequence: r.segments.first().map_or(0, |s| s.msn),
        independent_segments: true,
        segments,
        end_list: final_,
        ..MediaPlaylist::default()
    })
}

#[cfg(test)]
#[path = "vod_tests.rs"]
mod tests;
