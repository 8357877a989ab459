//! What brings a stream's frames to the session task: a [`MediaSource`]
//! (the origin's packager, an edge's pushed chunks) follows a stream into
//! a [`FeedSink`] while someone watches it. The queue between them is
//! bounded; frames that do not fit are dropped and counted.
//!
//! A stream has one main feed (the rendition every viewer starts on, and
//! the stream's audio) and, for viewers the bandwidth estimate moved to
//! another rendition of the ladder, one video-only feed per rendition.

use crate::abr::Rung;
use crate::audio::AudioFrame;
use crate::feed::Frame;
use crate::metrics::RtcMetrics;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a stream's frames come from.
pub trait MediaSource: Send + Sync + 'static {
    /// Whether `stream` can be played now.
    fn exists(&self, stream: &str) -> bool;
    /// Starts following `stream`: its frames go to `sink` until the sink
    /// is cancelled. False if there is no such stream.
    fn follow(&self, stream: &str, sink: FeedSink) -> bool;
    /// The video renditions a viewer may be moved between, with their
    /// bitrates; empty (or one) where there is nothing to move between.
    fn ladder(&self, _stream: &str) -> Vec<Rung> {
        Vec::new()
    }
    /// Starts following one rendition (a name from [`MediaSource::ladder`])
    /// of `stream`, video only: history first, then live frames.
    fn follow_rendition(&self, _stream: &str, _rendition: &str, _sink: FeedSink) -> bool {
        false
    }
}

/// What a feed hands the session task.
pub(crate) enum FeedEvent {
    Frames(Vec<Frame>),
    /// Frames from a keyframe up to now of a rendition just (re)joined:
    /// the keyframe cache starts over from them, and connected viewers
    /// get them as a burst, as a joiner does.
    History(Vec<Frame>),
    /// Opus packets of the stream's `opus` rendition, live only: a joiner
    /// hears from the next one (there is no audio burst to catch up).
    Audio(Vec<AudioFrame>),
    /// The stream ended: its sessions are closed.
    Ended,
    /// The main feed sends this rendition (from now on).
    Sending(Arc<str>),
}

/// Which feed an event is from: a stream's main feed, or one rendition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FeedKey {
    pub stream: Arc<str>,
    pub rendition: Option<Arc<str>>,
}

pub(crate) type MediaTx = mpsc::Sender<(FeedKey, FeedEvent)>;

/// Frames of one stream on their way to the session task.
#[derive(Clone)]
pub struct FeedSink {
    pub(crate) key: FeedKey,
    pub(crate) tx: MediaTx,
    pub(crate) cancel: CancellationToken,
    pub(crate) metrics: Arc<RtcMetrics>,
}

impl FeedSink {
    pub fn stream(&self) -> &str {
        &self.key.stream
    }

    /// The main feed says which rendition it sends (the source, or a rung
    /// standing in for a source WebRTC cannot carry).
    pub fn sending(&self, rendition: &str) {
        let event = FeedEvent::Sending(Arc::from(rendition));
        let _ = self.tx.try_send((self.key.clone(), event));
    }

    /// Hands frames on; when the queue is full they are dropped (and
    /// counted): viewers recover at the next keyframe.
    pub fn send(&self, frames: Vec<Frame>) {
        if frames.is_empty() {
            return;
        }
        let n = frames.len() as u64;
        let event = FeedEvent::Frames(frames);
        if self.tx.try_send((self.key.clone(), event)).is_err() {
            self.metrics.frames_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Frames from a keyframe up to now, read when the feed started or
    /// moved to another rendition: not replayed at their own pace, but
    /// sent as the keyframe cache is to a joiner.
    pub fn send_history(&self, frames: Vec<Frame>) {
        if frames.is_empty() {
            return;
        }
        let n = frames.len() as u64;
        let event = FeedEvent::History(frames);
        if self.tx.try_send((self.key.clone(), event)).is_err() {
            self.metrics.frames_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Hands Opus packets on; dropped (and counted) when the queue is full.
    pub fn send_audio(&self, frames: Vec<AudioFrame>) {
        if frames.is_empty() {
            return;
        }
        let n = frames.len() as u64;
        let event = FeedEvent::Audio(frames);
        if self.tx.try_send((self.key.clone(), event)).is_err() {
            self.metrics.frames_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The stream ended (not a publisher's reconnect, which the source
    /// rides out): its viewers' sessions end too.
    pub async fn ended(&self) {
        let _ = self.tx.send((self.key.clone(), FeedEvent::Ended)).await;
    }

    /// Resolves when nobody watches the stream any more.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
