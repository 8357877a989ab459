//! What one subscription has not been sent yet: a pure diff of the packager's
//! window against what was sent before. No I/O; called under the hub's lock,
//! so it only clones `Bytes` handles and renders playlists.
//!
//! The tracker remembers, per rendition, the last init generation, part,
//! segment and playlist version it handed out. Each [`Tracker::poll`] returns
//! what the window holds beyond that. If the sender fell behind and parts
//! left the window meanwhile, they are simply not there to send: a slow edge
//! skips old parts (and pulls them if a viewer asks) instead of making the
//! origin buffer without limit.

use crate::packager::{Packager, Track};
use bytes::Bytes;
use livecdn_shared::push::{ObjectHeader, PushKind};
use std::collections::HashMap;

/// One object to push: its header and its body chunks (shared `Bytes`).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub header: ObjectHeader,
    pub body: Vec<Bytes>,
}

#[derive(Debug, Default)]
struct Sent {
    init_gen: Option<u32>,
    part: Option<(u64, u32)>,
    segment: Option<u64>,
    /// Last complete part and ENDLIST state of the last playlist sent.
    playlist: Option<(Option<(u64, u32)>, bool)>,
}

/// Per-subscription record of what was sent.
#[derive(Debug)]
pub struct Tracker {
    stream: String,
    renditions: HashMap<String, Sent>,
}

impl Tracker {
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_string(),
            renditions: HashMap::new(),
        }
    }

    /// Everything new since the last poll. The first poll of a rendition
    /// sends its init sections and current playlist; parts and segments
    /// already complete then count as sent (the edge pulls old ones if asked).
    /// Without `send_playlists` (a DVR stream: see [`livecdn_shared::push`]) no
    /// playlist is sent.
    pub fn poll(&mut self, p: &Packager, send_playlists: bool) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut playlists = Vec::new();
        // The Opus rendition too: edges serve WebRTC from it.
        for t in p.tracks().chain(p.opus()) {
            let first = !self.renditions.contains_key(&t.name);
            let sent = self.renditions.entry(t.name.clone()).or_default();
            if first {
                sent.part = t.last_complete_part();
                sent.segment = t.last_complete_msn();
            }
            let ctype = p.content_type(&t.name);
            let base = format!("/live/{}/{}", self.stream, t.name);
            new_inits(t, sent, &base, ctype, &mut out);
            new_media(t, sent, &base, ctype, &mut out);
            let last = t.last_complete_part();
            let version = (last, p.is_ended());
            if send_playlists && last.is_some() && sent.playlist != Some(version) {
                if let Some(pl) = p.media_playlist(&t.name, None) {
                    sent.playlist = Some(version);
                    let (msn, part) = last.map_or((0, None), |(m, x)| (m, Some(x)));
                    playlists.push(Outgoing {
                        header: ObjectHeader {
                            kind: PushKind::Playlist,
                            path: format!("{base}/index.m3u8"),
                            msn,
                            part,
                            content_type: "application/vnd.apple.mpegurl".into(),
                        },
                        body: vec![Bytes::from(pl.to_string())],
                    });
                }
            }
        }
        // Playlists last: the parts they list are already on their way.
        out.extend(playlists);
        out
    }
}

fn new_inits(t: &Track, sent: &mut Sent, base: &str, ctype: &str, out: &mut Vec<Outgoing>) {
    let newest = t.segments().back().map_or(0, |s| s.init_gen);
    let from = sent.init_gen.map_or(0, |g| g + 1);
    for gen in from..=newest {
        if let Some(bytes) = t.init(gen) {
            out.push(Outgoing {
                header: ObjectHeader {
                    kind: PushKind::Init,
                    path: format!("{base}/{}", Track::init_uri(gen)),
                    msn: 0,
                    part: None,
                    content_type: ctype.to_string(),
                },
                body: vec![bytes],
            });
        }
        sent.init_gen = Some(gen);
    }
}

fn new_media(t: &Track, sent: &mut Sent, base: &str, ctype: &str, out: &mut Vec<Outgoing>) {
    for s in t.segments() {
        for part in s.parts.iter().filter(|x| x.complete) {
            let id = (s.msn, part.index);
            if sent.part.is_some_and(|last| id <= last) {
                continue;
            }
            sent.part = Some(id);
            out.push(Outgoing {
                header: ObjectHeader {
                    kind: PushKind::Part,
                    path: format!("{base}/{}.{}.m4s", s.msn, part.index),
                    msn: s.msn,
                    part: Some(part.index),
                    content_type: ctype.to_string(),
                },
                body: part.chunks.clone(),
            });
        }
        if s.complete && sent.segment.is_none_or(|last| s.msn > last) {
            sent.segment = Some(s.msn);
            out.push(Outgoing {
                header: ObjectHeader {
                    kind: PushKind::Segment,
                    path: format!("{base}/{}.m4s", s.msn),
                    msn: s.msn,
                    part: None,
                    content_type: ctype.to_string(),
                },
                body: s.body(),
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::packager::PackagerConfig;
    use livecdn_shared::media::{Frame, TrackKind, VideoConfig};
    use std::time::{Duration, Instant, SystemTime};

    fn packager() -> (Packager, Instant) {
        let t0 = Instant::now();
        let mut p = Packager::new(PackagerConfig::default(), t0, SystemTime::UNIX_EPOCH);
        p.handle_video_config(VideoConfig {
            avcc: Bytes::from_static(&[
                1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 1, 0x68,
            ]),
            width: 640,
            height: 360,
            profile_idc: 0x64,
            constraint_flags: 0,
            level_idc: 0x1f,
            nal_length_size: 4,
            frame_rate: None,
        });
        (p, t0)
    }

    /// 30 fps video, an IDR every 60 frames, frames `from..to`.
    fn feed(p: &mut Packager, t0: Instant, from: u32, to: u32) {
        for i in from..to {
            let ms = i * 1000 / 30;
            let frame = Frame {
                track: TrackKind::Video,
                dts_ms: ms,
                cts_ms: 0,
                keyframe: i % 60 == 0,
                data: Bytes::from(vec![0, 0, 0, 1, 0x65]),
            };
            p.handle_frame(t0 + Duration::from_millis(u64::from(ms)), frame);
        }
    }

    fn kinds(out: &[Outgoing]) -> Vec<(PushKind, String)> {
        out.iter()
            .map(|o| (o.header.kind, o.header.path.clone()))
            .collect()
    }

    #[test]
    fn sends_init_and_playlist_first_then_only_new_parts_and_segments() {
        let (mut p, t0) = packager();
        feed(&mut p, t0, 0, 40);
        let mut tr = Tracker::new("cam");
        let first = tr.poll(&p, true);
        let k = kinds(&first);
        assert_eq!(k[0], (PushKind::Init, "/live/cam/source/init.mp4".into()));
        assert_eq!(k.last().unwrap().0, PushKind::Playlist);
        assert!(k.iter().all(|(kind, _)| *kind != PushKind::Part), "{k:?}");
        assert!(tr.poll(&p, true).is_empty(), "nothing new, nothing sent");

        // Past the first segment boundary (frame 60) and a few parts more.
        feed(&mut p, t0, 40, 75);
        let next = tr.poll(&p, true);
        let k = kinds(&next);
        let parts: Vec<_> = next
            .iter()
            .filter(|o| o.header.kind == PushKind::Part)
            .map(|o| (o.header.msn, o.header.part.unwrap()))
            .collect();
        assert!(!parts.is_empty() && parts.windows(2).all(|w| w[0] < w[1]));
        assert!(k.contains(&(PushKind::Segment, "/live/cam/source/0.m4s".into())));
        let pl = next.last().unwrap();
        assert_eq!(pl.header.kind, PushKind::Playlist);
        assert_eq!(
            (pl.header.msn, pl.header.part),
            p.track("source")
                .unwrap()
                .last_complete_part()
                .map(|(m, x)| (m, Some(x)))
                .unwrap()
        );
        assert!(next.iter().all(|o| !o.body.is_empty()));
        let again = tr.poll(&p, true);
        assert!(again.is_empty(), "{:?}", kinds(&again));

        // A DVR stream: media still pushed, playlists not.
        feed(&mut p, t0, 75, 100);
        let dvr = tr.poll(&p, false);
        assert!(dvr.iter().any(|o| o.header.kind == PushKind::Part));
        assert!(
            dvr.iter().all(|o| o.header.kind != PushKind::Playlist),
            "{:?}",
            kinds(&dvr)
        );
    }
}
