//! The frames an edge has as the origin makes them: push hands over each
//! CMAF chunk of a part while the part's stream is still open (see
//! `livecdn_shared::cmaf::ChunkSplitter`), and the edge's WebRTC service
//! reads them here to build RTP, so WebRTC viewers scale out with the
//! edges and the origin sees one feed per edge.
//!
//! Per pushed stream and rendition it keeps the newest init section and
//! the chunks since the current segment's first part (a keyframe: a
//! viewer's picture starts from them), and broadcasts every chunk, in part
//! order ([`order`]), to the streams' watchers. Push writes; nothing here
//! calls into a service.
//!
//! Each rendition's bitrate is measured as its chunks arrive, for the
//! ladder a WebRTC viewer's bandwidth estimate moves it on.
//!
//! Bounded: streams by the push subscription bound, a segment's chunks by
//! count and bytes, the broadcast by length (a watcher that lags starts
//! over from the segment's keyframe).

mod order;

pub use order::PartId;

use bytes::Bytes;
use order::Sequencer;
use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Notify};

/// Streams tracked at most (as many as push subscribes to).
const MAX_STREAMS: usize = 4096;
/// A segment's chunks kept at most, per rendition.
const MAX_SEGMENT_CHUNKS: usize = 2048;
const MAX_SEGMENT_BYTES: usize = 32 * 1024 * 1024;
/// Events a watcher may fall behind by.
const EVENTS: usize = 1024;
/// A rendition's bitrate is the bytes of this long a window.
const RATE_WINDOW: Duration = Duration::from_secs(4);

/// What a watcher of a stream is told.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A rendition's (new) init section.
    Init(Arc<str>, Bytes),
    /// A rendition's next chunk (one frame, or a run of audio frames).
    Chunk(Arc<str>, Bytes),
    /// The stream ended or was purged.
    Ended,
}

/// A rendition as a new watcher finds it.
#[derive(Debug, Clone)]
pub struct RenditionState {
    pub name: Arc<str>,
    pub init: Option<Bytes>,
    /// Chunks since the current segment's first part, when the edge has it
    /// from there (else empty: the picture starts at the next segment).
    pub segment: Vec<Bytes>,
}

#[derive(Default)]
struct Rendition {
    init: Option<Bytes>,
    order: Sequencer,
    segment: Vec<Bytes>,
    segment_bytes: usize,
    /// The segment `segment` holds, when it holds it from its first part.
    segment_msn: Option<u64>,
    rate: Rate,
}

/// Bytes over a window of arrival time: the last whole window's bitrate.
#[derive(Debug, Default)]
struct Rate {
    since: Option<Instant>,
    bytes: u64,
    bps: Option<u64>,
}

impl Rate {
    fn add(&mut self, bytes: usize, now: Instant) {
        let since = *self.since.get_or_insert(now);
        let span = now.saturating_duration_since(since);
        if span >= RATE_WINDOW {
            self.bps = Some((self.bytes as f64 * 8.0 / span.as_secs_f64()) as u64);
            self.since = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }
}

impl Rendition {
    fn keep(&mut self, (msn, part): PartId, chunk: &Bytes) {
        if self.segment_msn != Some(msn) {
            self.segment.clear();
            self.segment_bytes = 0;
            self.segment_msn = (part == 0).then_some(msn);
        }
        if self.segment_msn.is_none()
            || self.segment.len() >= MAX_SEGMENT_CHUNKS
            || self.segment_bytes + chunk.len() > MAX_SEGMENT_BYTES
        {
            return;
        }
        self.segment_bytes += chunk.len();
        self.segment.push(chunk.clone());
    }
}

struct StreamInner {
    /// In the order they were first pushed (the origin's order: the
    /// source, its rungs, the audio).
    renditions: Vec<(Arc<str>, Rendition)>,
    tx: broadcast::Sender<LiveEvent>,
}

impl StreamInner {
    fn rendition(&mut self, name: &str) -> &mut Rendition {
        let at = match self.renditions.iter().position(|(n, _)| &**n == name) {
            Some(i) => i,
            None => {
                self.renditions
                    .push((Arc::from(name), Rendition::default()));
                self.renditions.len() - 1
            }
        };
        &mut self.renditions[at].1
    }

    fn name(&self, name: &str) -> Arc<str> {
        self.renditions
            .iter()
            .find(|(n, _)| &**n == name)
            .map_or_else(|| Arc::from(name), |(n, _)| n.clone())
    }

    fn send(&self, event: LiveEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }
}

/// Every pushed stream's live chunks.
#[derive(Default)]
pub struct Live {
    streams: Mutex<HashMap<String, StreamInner>>,
    /// Woken when a stream gains a segment start.
    changed: Notify,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, StreamInner>> {
        // Every update leaves the map consistent: poisoning is ignored.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<R>(&self, stream: &str, f: impl FnOnce(&mut StreamInner) -> R) -> Option<R> {
        let mut map = self.lock();
        if !map.contains_key(stream) {
            if map.len() >= MAX_STREAMS {
                return None;
            }
            let (tx, _) = broadcast::channel(EVENTS);
            map.insert(
                stream.to_string(),
                StreamInner {
                    renditions: Vec::new(),
                    tx,
                },
            );
        }
        map.get_mut(stream).map(f)
    }

    /// A rendition's init section was pushed.
    pub fn init(&self, stream: &str, rendition: &str, init: Bytes) {
        self.with(stream, |s| {
            s.rendition(rendition).init = Some(init.clone());
            let name = s.name(rendition);
            s.send(LiveEvent::Init(name, init));
        });
    }

    /// A chunk of part `id` of a rendition arrived.
    pub fn chunk(&self, stream: &str, rendition: &str, id: PartId, chunk: Bytes) {
        let out = self.with(stream, |s| s.rendition(rendition).order.chunk(id, chunk));
        self.release(stream, rendition, out.unwrap_or_default());
    }

    /// Part `id` of a rendition has no more chunks (its stream ended, or
    /// failed).
    pub fn part_ended(&self, stream: &str, rendition: &str, id: PartId) {
        let out = self.with(stream, |s| s.rendition(rendition).order.ended(id));
        self.release(stream, rendition, out.unwrap_or_default());
    }

    fn release(&self, stream: &str, rendition: &str, chunks: Vec<(PartId, Bytes)>) {
        if chunks.is_empty() {
            return;
        }
        let starts = chunks.iter().any(|((_, part), _)| *part == 0);
        let now = Instant::now();
        self.with(stream, |s| {
            let name = s.name(rendition);
            for (id, chunk) in chunks {
                let r = s.rendition(rendition);
                r.rate.add(chunk.len(), now);
                r.keep(id, &chunk);
                s.send(LiveEvent::Chunk(name.clone(), chunk));
            }
        });
        if starts {
            self.changed.notify_waiters();
        }
    }

    /// The stream ended (ENDLIST) or was purged: its watchers are told and
    /// what was kept is dropped.
    pub fn ended(&self, stream: &str) {
        if let Some(s) = self.lock().remove(stream) {
            s.send(LiveEvent::Ended);
        }
    }

    /// Forgets the streams `keep` refuses (no longer subscribed).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock()
            .retain(|name, s| keep(name) || s.tx.receiver_count() > 0);
    }

    /// The stream's renditions now and every event after, with nothing
    /// missed or repeated between the two.
    pub fn watch(
        &self,
        stream: &str,
    ) -> Option<(Vec<RenditionState>, broadcast::Receiver<LiveEvent>)> {
        let map = self.lock();
        let s = map.get(stream)?;
        let renditions = s
            .renditions
            .iter()
            .map(|(name, r)| RenditionState {
                name: name.clone(),
                init: r.init.clone(),
                segment: r.segment.clone(),
            })
            .collect();
        Some((renditions, s.tx.subscribe()))
    }

    /// Each rendition's measured bitrate (bits/s), where a window has
    /// passed.
    pub fn bitrates(&self, stream: &str) -> Vec<(Arc<str>, u64)> {
        self.lock().get(stream).map_or_else(Vec::new, |s| {
            s.renditions
                .iter()
                .filter_map(|(n, r)| Some((n.clone(), r.rate.bps?)))
                .collect()
        })
    }

    /// Whether `rendition` of `stream` has an init section and a segment
    /// from its first part: a picture can start now.
    pub fn ready(&self, stream: &str, rendition: &str) -> bool {
        self.lock().get(stream).is_some_and(|s| {
            s.renditions
                .iter()
                .any(|(n, r)| &**n == rendition && r.init.is_some() && !r.segment.is_empty())
        })
    }

    /// Waits up to `limit` for [`Live::ready`].
    pub async fn wait_ready(&self, stream: &str, rendition: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            if self.ready(stream, rendition) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.ready(stream, rendition);
            }
        }
    }

    /// Chunks dropped because they came after a later part's (all streams).
    pub fn late(&self) -> u64 {
        self.lock()
            .values()
            .flat_map(|s| s.renditions.iter().map(|(_, r)| r.order.late))
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn b(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[tokio::test]
    async fn a_watcher_gets_the_segment_so_far_then_every_chunk_in_order() {
        let live = Live::default();
        live.init("cam", "source", Bytes::from_static(b"init"));
        assert!(!live.ready("cam", "source"));
        // Joined mid-segment: nothing kept until a segment starts.
        live.chunk("cam", "source", (3, 2), b(1));
        live.part_ended("cam", "source", (3, 2));
        assert!(!live.ready("cam", "source"));
        let ready = live.wait_ready("cam", "source", Duration::from_secs(5));
        let mut ready = pin!(ready);
        assert!(futures::poll!(ready.as_mut()).is_pending());
        live.chunk("cam", "source", (4, 0), b(2));
        assert!(ready.await);
        live.chunk("cam", "source", (4, 0), b(3));
        let (renditions, mut rx) = live.watch("cam").unwrap();
        assert_eq!(&*renditions[0].name, "source");
        assert_eq!(renditions[0].segment, [b(2), b(3)]);
        // A later part's chunk waits for the earlier part to end.
        live.chunk("cam", "source", (4, 1), b(5));
        assert!(rx.try_recv().is_err());
        live.chunk("cam", "source", (4, 0), b(4));
        live.part_ended("cam", "source", (4, 0));
        let got: Vec<u8> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(LiveEvent::Chunk(_, c)) => Some(c[0]),
            _ => None,
        })
        .collect();
        assert_eq!(got, [4, 5]);
        live.ended("cam");
        assert!(matches!(rx.try_recv(), Ok(LiveEvent::Ended)));
        assert!(live.watch("cam").is_none());
    }
}
