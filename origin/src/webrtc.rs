//! WHEP at the origin: the packager's tracks as a
//! [`livecdn_webrtc::MediaSource`]. A follower task per watched stream
//! reads the chunks its video track gains (one per frame, as the packager
//! appends them, so nothing waits for a part to close) and hands them to
//! the WebRTC server's feed.
//!
//! The `opus` rendition (the AAC as Opus, made once per stream) is
//! followed beside the video, from the live edge on.
//!
//! The source rendition is passed through unless it has B-frames, which
//! WebRTC receivers do not reorder; then the first transcoded rung (rungs
//! are encoded without B-frames) is followed instead.
//!
//! The ladder a viewer's bandwidth estimate moves it on is the stream's
//! video renditions with their measured average bitrates; a viewer moved
//! to a rung gets it from a video-only follower of that rung.

use crate::packager::{Track, AUDIO, SOURCE};
use crate::registry::StreamHub;
use crate::OriginState;
use bytes::Bytes;
use livecdn_webrtc::audio::AudioFeed;
use livecdn_webrtc::feed::VIDEO_CLOCK;
use livecdn_webrtc::video::VideoTrack;
use livecdn_webrtc::{Feed, FeedSink, Frame, MediaSource, Rung};
use std::sync::{Arc, Weak};
use std::time::Instant;

/// The origin's streams, for the WebRTC server (which the state holds:
/// hence a weak reference back).
pub struct OriginSource {
    state: Weak<OriginState>,
}

impl OriginSource {
    pub fn new(state: Weak<OriginState>) -> Self {
        Self { state }
    }

    fn hub(&self, stream: &str) -> Option<Arc<StreamHub>> {
        self.state.upgrade()?.registry.get(stream)
    }
}

impl MediaSource for OriginSource {
    fn exists(&self, stream: &str) -> bool {
        self.hub(stream)
            .is_some_and(|h| h.read(|p| !p.is_ended() && p.track(SOURCE).is_some()))
    }

    fn follow(&self, stream: &str, sink: FeedSink) -> bool {
        let Some(hub) = self.hub(stream) else {
            return false;
        };
        tokio::spawn(follow(hub, sink, None));
        true
    }

    fn ladder(&self, stream: &str) -> Vec<Rung> {
        let Some(hub) = self.hub(stream) else {
            return Vec::new();
        };
        hub.read(|p| {
            p.tracks()
                .filter(|t| t.name != AUDIO)
                .filter_map(|t| {
                    let (_, average) = t.bandwidth()?;
                    Some(Rung {
                        name: t.name.clone(),
                        bitrate: average,
                    })
                })
                .collect()
        })
    }

    fn follow_rendition(&self, stream: &str, rendition: &str, sink: FeedSink) -> bool {
        let Some(hub) = self.hub(stream) else {
            return false;
        };
        if rendition == AUDIO || hub.read(|p| p.track(rendition).is_none()) {
            return false;
        }
        tokio::spawn(follow(hub, sink, Some(rendition.to_string())));
        true
    }
}

/// Where a follower is in a track: the part it read last and how many of
/// its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    msn: u64,
    part: u32,
    pieces: usize,
    init_gen: Option<u32>,
}

/// What a track gained since the cursor.
#[derive(Debug, Default)]
pub struct Gained {
    /// A new init section (the first read, or a new codec configuration)
    /// that the pieces after it need.
    pub init: Option<Bytes>,
    /// Whole chunks (headers and payloads), in order.
    pub pieces: Vec<Bytes>,
}

/// Reads what `t` gained since `cur`. The first read starts at the open
/// segment's first part (a keyframe), so the first viewer's keyframe cache
/// fills at once. A follower that fell behind the window goes on from what
/// the window still holds.
pub fn gained(t: &Track, cur: &mut Option<Cursor>) -> Gained {
    let mut out = Gained::default();
    let start = match *cur {
        Some(c) => c,
        None => {
            let Some(seg) = t.open_segment() else {
                return out;
            };
            Cursor {
                msn: seg.msn,
                part: 0,
                pieces: 0,
                init_gen: None,
            }
        }
    };
    let mut at = start;
    for seg in t.segments().iter().filter(|s| s.msn >= start.msn) {
        for part in &seg.parts {
            let from = match (seg.msn, part.index).cmp(&(start.msn, start.part)) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => start.pieces.min(part.chunks.len()),
                std::cmp::Ordering::Greater => 0,
            };
            if from < part.chunks.len() && at.init_gen != Some(seg.init_gen) {
                out.init = t.init(seg.init_gen);
                at.init_gen = Some(seg.init_gen);
            }
            out.pieces.extend(part.chunks[from..].iter().cloned());
            at.msn = seg.msn;
            at.part = part.index;
            at.pieces = part.chunks.len();
        }
    }
    *cur = Some(at);
    out
}

/// Each frame's capture time as its arrival at the origin, found by its
/// presentation time (for a rung, the source frame's it was made from);
/// else when its chunk was read, later by the packaging and any encoder.
fn stamped(hub: &StreamHub, mut frames: Vec<Frame>) -> Vec<Frame> {
    for f in &mut frames {
        let pts_ms = (f.pts / (VIDEO_CLOCK / 1000)) as u32;
        if let Some(wall) = hub.captured_at(pts_ms) {
            f.captured = wall;
        }
    }
    frames
}

/// The rendition to send: the source, or, when it has B-frames, the
/// first rung.
fn rung_of(hub: &StreamHub) -> Option<String> {
    hub.read(|p| {
        p.tracks()
            .map(|t| t.name.clone())
            .find(|n| n != SOURCE && n != AUDIO)
    })
}

/// The Opus packets the stream's `opus` rendition gained, to the sink. The
/// first read starts at the live edge: sound is not caught up like the
/// picture is, it starts with the next packet.
fn listen(
    hub: &StreamHub,
    (cur, feed): &mut (Option<Cursor>, AudioFeed),
    sink: &FeedSink,
    now: Instant,
) {
    let fresh = cur.is_none();
    let Some(got) = hub.read(|p| p.opus().map(|t| gained(t, cur))) else {
        return;
    };
    if let Some(init) = got.init {
        if let Err(e) = feed.set_init(&init) {
            tracing::warn!(stream = %hub.name(), error = %e, "webrtc: opus init not usable");
        }
    }
    if fresh || got.pieces.is_empty() {
        return;
    }
    match feed.chunk(&got.pieces, now) {
        Ok(packets) => sink.send_audio(packets),
        Err(e) => tracing::debug!(stream = %hub.name(), error = %e, "webrtc: opus chunk skipped"),
    }
}

/// Follows `hub`'s stream into `sink`: the main feed (`only` None: the
/// source or the rung standing in for it, and the audio), or one
/// rendition's video.
async fn follow(hub: Arc<StreamHub>, sink: FeedSink, only: Option<String>) {
    let stream = hub.name().to_string();
    let mut version = hub.subscribe();
    let main = only.is_none();
    let mut rendition = only.unwrap_or_else(|| SOURCE.to_string());
    if main {
        sink.sending(&rendition);
    }
    let mut cur = None;
    let mut feed = Feed::new();
    let mut sound = (None, AudioFeed::new());
    let mut warned = false;
    tracing::debug!(%stream, "webrtc follows the stream");
    loop {
        // A first read (of this rendition) is history: from its open
        // segment's keyframe up to now.
        let fresh = cur.is_none();
        let got = hub.read(|p| p.track(&rendition).map(|t| gained(t, &mut cur)));
        let now = Instant::now();
        let mut frames = Vec::new();
        if let Some(got) = got {
            if let Some(init) = got.init {
                match VideoTrack::from_init(&init) {
                    Ok(t) => feed.set_track(t),
                    Err(e) => {
                        tracing::warn!(%stream, %rendition, error = %e, "webrtc: init not usable")
                    }
                }
            }
            if !got.pieces.is_empty() {
                match feed.chunk(&got.pieces, now) {
                    Ok(f) => frames = stamped(&hub, f),
                    Err(e) => {
                        tracing::debug!(%stream, %rendition, error = %e, "webrtc: chunk skipped")
                    }
                }
            }
        }
        // B-frames are found before any of them is sent, where a rung can
        // stand in.
        if feed.reorders() && rendition == SOURCE && main {
            match rung_of(&hub) {
                Some(rung) => {
                    tracing::info!(%stream, %rung, "webrtc: source has B-frames, sending a rung");
                    sink.sending(&rung);
                    rendition = rung;
                    cur = None;
                    feed = Feed::new();
                    continue;
                }
                None if !warned => {
                    warned = true;
                    tracing::warn!(%stream, "webrtc: source has B-frames and no rung to send instead");
                }
                None => {}
            }
        }
        match fresh {
            true => sink.send_history(frames),
            false => sink.send(frames),
        }
        if main {
            listen(&hub, &mut sound, &sink, now);
        }
        if hub.read(|p| p.is_ended() || p.track(&rendition).is_none()) {
            sink.ended().await;
            break;
        }
        tokio::select! {
            _ = sink.cancelled() => break,
            r = version.changed() => if r.is_err() { break },
        }
    }
    tracing::debug!(%stream, "webrtc stops following the stream");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use livecdn_shared::cmaf::Sample;
    use std::time::SystemTime;

    fn frame(t: &mut Track, dts: u64, sync: bool) {
        let payload = Bytes::from(vec![0u8, 0, 0, 1, if sync { 0x65 } else { 0x41 }]);
        let s = Sample {
            duration: 3000,
            size: payload.len() as u32,
            cts_offset: 0,
            sync,
        };
        let part = t.next_part_index();
        assert!(t.append(part, dts, &[s], &[payload]));
    }

    #[test]
    fn a_follower_reads_each_piece_once_from_the_open_segment_on() {
        let mut t = Track::new("source", 90_000, 4);
        t.set_init(Bytes::from_static(b"init-0"));
        t.start_segment(7, 0, SystemTime::now());
        frame(&mut t, 0, true);
        frame(&mut t, 3000, false);
        t.close_part();
        t.close_segment();
        t.start_segment(8, 6000, SystemTime::now());
        frame(&mut t, 6000, true);
        let mut cur = None;
        let g = gained(&t, &mut cur);
        // From the open segment (8) on: one frame, header and payload.
        assert_eq!(g.init.as_deref(), Some(&b"init-0"[..]));
        assert_eq!(g.pieces.len(), 2);
        assert!(gained(&t, &mut cur).pieces.is_empty());
        frame(&mut t, 9000, false);
        t.close_part();
        frame(&mut t, 12_000, false);
        let g = gained(&t, &mut cur);
        assert!(g.init.is_none());
        assert_eq!(g.pieces.len(), 4);
        t.close_part();
        t.close_segment();
        t.start_segment(9, 15_000, SystemTime::now());
        frame(&mut t, 15_000, true);
        assert_eq!(gained(&t, &mut cur).pieces.len(), 2);
    }
}
