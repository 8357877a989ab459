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
//!
//! A part goes out while it is made: its stream opens with its first
//! chunk ([`Stage::First`]), each poll adds the chunks made since
//! ([`Stage::More`]), and the poll that sees it complete ends it
//! ([`Stage::Last`]). An edge thus has every frame as the origin does
//! (its WebRTC viewers need no more), and still stores the part whole.

use crate::packager::{Packager, Track};
use bytes::Bytes;
use livecdn_shared::push::{ObjectHeader, PushKind};
use std::collections::HashMap;

/// One object to push: its header and its body chunks (shared `Bytes`).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub header: ObjectHeader,
    pub body: Vec<Bytes>,
    pub stage: Stage,
}

/// Which piece of its object an [`Outgoing`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The whole object: one stream, written and finished.
    Whole,
    /// The start of a part still being made: its stream stays open.
    First,
    /// Chunks the open part gained, for the stream its `First` opened.
    More,
    /// The part's last chunks (maybe none): its stream ends.
    Last,
}

/// The part being sent while it is made.
#[derive(Debug)]
struct OpenPart {
    id: (u64, u32),
    /// Chunks sent so far.
    sent: usize,
    /// Its first chunk: a part discarded and made again under the same
    /// numbers (a publisher that stopped mid-segment) starts over.
    first: Bytes,
}

#[derive(Debug, Default)]
struct Sent {
    init_gen: Option<u32>,
    part: Option<(u64, u32)>,
    segment: Option<u64>,
    /// Last complete part and ENDLIST state of the last playlist sent.
    playlist: Option<(Option<(u64, u32)>, bool)>,
    open: Option<OpenPart>,
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
    /// sends its init sections, the open segment's parts so far (from its
    /// keyframe: an edge's first WebRTC viewer gets a picture at once) and
    /// its current playlist; older parts and segments count as sent (the
    /// edge pulls them if asked).
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
                sent.part = before_open_segment(t);
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
                        stage: Stage::Whole,
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
                stage: Stage::Whole,
            });
        }
        sent.init_gen = Some(gen);
    }
}

/// The last part before the open segment (or before the newest segment,
/// when none is open): what a new subscription counts as sent.
fn before_open_segment(t: &Track) -> Option<(u64, u32)> {
    let open = t.open_segment().map(|s| s.msn);
    t.segments()
        .iter()
        .rev()
        .filter(|s| Some(s.msn) != open)
        .find_map(|s| s.parts.last().map(|p| (s.msn, p.index)))
        .or_else(|| {
            // Nothing before the open segment: all of it is new.
            open.and_then(|m| m.checked_sub(1)).map(|m| (m, u32::MAX))
        })
}

fn new_media(t: &Track, sent: &mut Sent, base: &str, ctype: &str, out: &mut Vec<Outgoing>) {
    for s in t.segments() {
        for part in &s.parts {
            let id = (s.msn, part.index);
            if sent.part.is_some_and(|last| id <= last) {
                continue;
            }
            let continuing = sent.open.as_ref().is_some_and(|o| {
                o.id == id && part.chunks.first().is_some_and(|c| same(c, &o.first))
            });
            let from = match (&sent.open, continuing) {
                (Some(o), true) => o.sent.min(part.chunks.len()),
                _ => 0,
            };
            let stage = match (part.complete, continuing) {
                (true, false) => Stage::Whole,
                (true, true) => Stage::Last,
                (false, false) => Stage::First,
                (false, true) => Stage::More,
            };
            if part.complete {
                sent.part = Some(id);
                sent.open = None;
            } else {
                let Some(head) = part.chunks.first() else {
                    continue;
                };
                if continuing && from == part.chunks.len() {
                    continue;
                }
                sent.open = Some(OpenPart {
                    id,
                    sent: part.chunks.len(),
                    first: head.clone(),
                });
            }
            out.push(Outgoing {
                header: ObjectHeader {
                    kind: PushKind::Part,
                    path: format!("{base}/{}.{}.m4s", s.msn, part.index),
                    msn: s.msn,
                    part: Some(part.index),
                    content_type: ctype.to_string(),
                },
                body: part.chunks[from..].to_vec(),
                stage,
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
                stage: Stage::Whole,
            });
        }
    }
}

/// Whether two handles share one buffer.
fn same(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
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
        // The open segment's parts so far, from its keyframe: whole ones
        // whole (an open one would be opened).
        let parts: Vec<_> = first
            .iter()
            .filter(|o| o.header.kind == PushKind::Part)
            .map(|o| (o.header.part.unwrap(), o.stage))
            .collect();
        assert_eq!(parts[0], (0, Stage::Whole), "{parts:?}");
        assert!(parts.len() >= 3, "{parts:?}");
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
        assert!(next
            .iter()
            .all(|o| !o.body.is_empty() || o.stage == Stage::Last));
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

    #[test]
    fn a_part_goes_out_while_it_is_made_and_ends_when_it_closes() {
        let (mut p, t0) = packager();
        feed(&mut p, t0, 0, 2);
        let mut tr = Tracker::new("cam");
        let media = |out: Vec<Outgoing>| -> Vec<(u64, u32, Stage, usize)> {
            out.into_iter()
                .filter(|o| o.header.kind == PushKind::Part)
                .map(|o| (o.header.msn, o.header.part.unwrap(), o.stage, o.body.len()))
                .collect()
        };
        // Two frames of part 0.0: opened with both (header and payload each).
        assert_eq!(media(tr.poll(&p, true)), [(0, 0, Stage::First, 4)]);
        assert!(media(tr.poll(&p, true)).is_empty());
        feed(&mut p, t0, 2, 3);
        assert_eq!(media(tr.poll(&p, true)), [(0, 0, Stage::More, 2)]);
        // Past 333 ms: part 0.0 closes (its last frame) and 0.1 opens.
        feed(&mut p, t0, 3, 11);
        let out = media(tr.poll(&p, true));
        assert_eq!(out[0].0, 0);
        assert_eq!((out[0].1, out[0].2), (0, Stage::Last), "{out:?}");
        assert_eq!((out[1].1, out[1].2), (1, Stage::First), "{out:?}");
        // Every chunk of 0.0 went out once, in order.
        let sent: usize = [4, 2, out[0].3].iter().sum();
        let whole = p.track("source").unwrap().segments()[0].parts[0]
            .chunks
            .len();
        assert_eq!(sent, whole);
    }
}
