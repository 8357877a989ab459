//! What brings a stream's frames to the session task: a [`MediaSource`]
//! (the origin's packager, an edge's pushed chunks) follows a stream into
//! a [`FeedSink`] while someone watches it. The queue between them is
//! bounded; frames that do not fit are dropped and counted.

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
}

pub(crate) type MediaTx = mpsc::Sender<(Arc<str>, FeedEvent)>;

/// Frames of one stream on their way to the session task.
#[derive(Clone)]
pub struct FeedSink {
    pub(crate) stream: Arc<str>,
    pub(crate) tx: MediaTx,
    pub(crate) cancel: CancellationToken,
    pub(crate) metrics: Arc<RtcMetrics>,
}

impl FeedSink {
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Hands frames on; when the queue is full they are dropped (and
    /// counted): viewers recover at the next keyframe.
    pub fn send(&self, frames: Vec<Frame>) {
        if frames.is_empty() {
            return;
        }
        let n = frames.len() as u64;
        let event = FeedEvent::Frames(frames);
        if self.tx.try_send((self.stream.clone(), event)).is_err() {
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
        if self.tx.try_send((self.stream.clone(), event)).is_err() {
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
        if self.tx.try_send((self.stream.clone(), event)).is_err() {
            self.metrics.frames_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The stream ended (not a publisher's reconnect, which the source
    /// rides out): its viewers' sessions end too.
    pub async fn ended(&self) {
        let _ = self.tx.send((self.stream.clone(), FeedEvent::Ended)).await;
    }

    /// Resolves when nobody watches the stream any more.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
