#![allow(clippy::unwrap_used)]

use super::*;
use crate::record::journal::{Line, RecordingMeta, RenditionMeta, SegmentEntry};
use livecdn_shared::playlist::MediaPlaylist;

fn rendition(name: &str, kind: MediaKind, codecs: &str, timescale: u32) -> Line {
    Line::Rendition(RenditionMeta {
        name: name.into(),
        kind,
        codecs: codecs.into(),
        timescale,
        width: (kind == MediaKind::Video).then_some(1280),
        height: (kind == MediaKind::Video).then_some(720),
        frame_rate: (kind == MediaKind::Video).then_some(30.0),
        channels: (kind == MediaKind::Audio).then_some(2),
    })
}

fn seg(rendition: &str, msn: u64, gen: u32, ticks: u64, disc: bool) -> Line {
    Line::Segment(SegmentEntry {
        rendition: rendition.into(),
        msn,
        gen,
        start: msn * ticks,
        duration: ticks,
        pdt_ms: 1_800_000_000_000 + msn * 2000,
        discontinuity: disc,
        bytes: 250_000,
    })
}

fn recording(done: bool) -> Recording {
    let mut r = Recording::new(RecordingMeta {
        stream: "cam".into(),
        id: "20261206T195000Z".into(),
        started_ms: 1_800_000_000_000,
    });
    let mut lines = vec![
        rendition("source", MediaKind::Video, "avc1.64001f", 90_000),
        rendition("audio", MediaKind::Audio, "mp4a.40.2", 48_000),
    ];
    for msn in 4..8 {
        let gen = u32::from(msn >= 6);
        lines.push(seg("source", msn, gen, 180_000, msn == 6));
        lines.push(seg("audio", msn, 0, 96_000, false));
    }
    if done {
        lines.push(Line::End { at_ms: 1 });
    }
    for l in &lines {
        r.apply(l);
    }
    r
}

#[test]
fn master_lists_video_with_the_audio_group() {
    let m = master(&recording(true)).unwrap();
    assert_eq!(m.variants.len(), 1);
    let v = &m.variants[0];
    assert_eq!(v.uri, "source/index.m3u8");
    assert_eq!(v.codecs, "avc1.64001f,mp4a.40.2");
    assert_eq!(v.resolution, Some((1280, 720)));
    assert_eq!(v.audio_group.as_deref(), Some("audio"));
    // 250 kB per 2 s of video plus 250 kB per 2 s of audio.
    assert_eq!(v.bandwidth, 2_000_000);
    assert_eq!(m.audio.len(), 1);
    assert_eq!(m.audio[0].uri, "audio/index.m3u8");
    let text = m.render();
    assert!(text.contains("#EXT-X-MEDIA:TYPE=AUDIO"), "{text}");
}

#[test]
fn a_finished_recording_is_a_vod_playlist() {
    let p = media(&recording(true), "source").unwrap();
    let text = p.render();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:4"), "{text}");
    // The init section changes where the generation does, with a
    // discontinuity.
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{text}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init-1.mp4\""), "{text}");
    let back = MediaPlaylist::parse(&text).unwrap();
    assert_eq!(back.playlist_type, Some(PlaylistType::Vod));
    assert_eq!(back.segments.len(), 4);
    assert!(back.end_list);
    assert_eq!(back.target_duration, 2);
    let disc: Vec<bool> = back.segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(disc, [false, false, true, false]);
    assert_eq!(back.segments[0].uri.as_deref(), Some("4.m4s"));
    assert_eq!(
        back.segments[1].program_date_time,
        Some(UNIX_EPOCH + Duration::from_millis(1_800_000_010_000))
    );
    let audio = MediaPlaylist::parse(&media(&recording(true), "audio").unwrap().render()).unwrap();
    assert_eq!(audio.segments.len(), 4);
}

#[test]
fn a_recording_in_progress_is_an_event_playlist() {
    let text = media(&recording(false), "source").unwrap().render();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(media(&recording(false), "720p").is_none());
}

#[test]
fn audio_only_recording_is_one_variant() {
    let mut r = Recording::new(RecordingMeta {
        stream: "radio".into(),
        id: "x".into(),
        started_ms: 0,
    });
    r.apply(&rendition("audio", MediaKind::Audio, "mp4a.40.2", 48_000));
    assert!(master(&r).is_none(), "nothing recorded yet");
    r.apply(&seg("audio", 0, 0, 96_000, false));
    let m = master(&r).unwrap();
    assert_eq!(m.variants.len(), 1);
    assert_eq!(m.variants[0].uri, "audio/index.m3u8");
    assert!(m.audio.is_empty());
}
