//! Moving viewers between the ladder's renditions: the session task's side
//! of [`crate::abr`].
//!
//! A viewer starts on the stream's main feed. When its bandwidth estimate
//! asks for another rendition, the session is marked as moving, the
//! rendition's feed is started if nobody had it, and the move happens at
//! that feed's next keyframe (the viewer keeps its picture until then).
//! The main feed may itself send a rung (a source with B-frames), which
//! it says; the ladder then starts at that rung.

use super::{RungFeed, Task};
use crate::abr::Rung;
use crate::feed::Frame;
use crate::gop::Gop;
use crate::sink::{FeedKey, FeedSink};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

impl Task {
    /// The ladder a viewer of `stream` moves on: the source's, from the
    /// rendition the main feed sends down.
    pub(super) fn ladder(&self, stream: &str) -> Vec<Rung> {
        let mut ladder = self.source.ladder(stream);
        ladder.sort_by_key(|r| std::cmp::Reverse(r.bitrate));
        let top = self.streams.get(stream).and_then(|st| st.top.clone());
        if let Some(at) = top.and_then(|t| ladder.iter().position(|r| *r.name == *t)) {
            ladder.drain(..at);
        }
        ladder
    }

    /// Acts on a session's newest bandwidth estimate.
    pub(super) fn steer(&mut self, id: &str) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let Some(estimate) = s.estimate.take() else {
            return;
        };
        let Some(abr) = s.abr.as_mut() else {
            return;
        };
        let from = abr.current().bitrate;
        let Some(to) = abr.estimate(estimate, now).cloned() else {
            return;
        };
        let stream = s.stream.clone();
        let top = self.streams.get(&stream).and_then(|st| st.top.clone());
        // The main feed's rendition is had from the main feed.
        let target = match &top {
            Some(t) if **t == *to.name => None,
            None if abr.ladder().first().is_some_and(|r| r.name == to.name) => None,
            _ => Some(Arc::<str>::from(to.name.as_str())),
        };
        let m = &self.metrics;
        let counter = if to.bitrate < from {
            &m.moves_down
        } else {
            &m.moves_up
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%stream, session = %id, rendition = %to.name, estimate, "whep viewer moves");
        if target == s.rendition {
            s.pending = None;
            self.prune_rungs(&stream);
            return;
        }
        s.pending = Some(target.clone());
        if let Some(r) = target {
            if !self.follow_rung(&stream, &r) {
                if let Some(s) = self.sessions.get_mut(id) {
                    s.pending = None;
                }
            }
        }
        self.prune_rungs(&stream);
    }

    /// Starts the feed of rendition `r` of `stream` unless it runs.
    fn follow_rung(&mut self, stream: &Arc<str>, r: &Arc<str>) -> bool {
        let Some(st) = self.streams.get_mut(stream) else {
            return false;
        };
        if st.rungs.contains_key(r) {
            return true;
        }
        let cancel = CancellationToken::new();
        let sink = FeedSink {
            key: FeedKey {
                stream: stream.clone(),
                rendition: Some(r.clone()),
            },
            tx: self.media_tx.clone(),
            cancel: cancel.clone(),
            metrics: self.metrics.clone(),
        };
        if !self.source.follow_rendition(stream, r, sink) {
            tracing::debug!(%stream, rendition = %r, "webrtc: rendition cannot be followed");
            return false;
        }
        st.rungs.insert(
            r.clone(),
            RungFeed {
                gop: Gop::new(),
                cancel,
            },
        );
        true
    }

    /// Stops the rendition feeds nobody gets or moves to.
    pub(super) fn prune_rungs(&mut self, stream: &Arc<str>) {
        let Some(st) = self.streams.get_mut(stream) else {
            return;
        };
        let wanted = |r: &Arc<str>| {
            st.sessions.iter().any(|id| {
                self.sessions.get(id).is_some_and(|s| {
                    s.rendition.as_ref() == Some(r)
                        || s.pending.as_ref().is_some_and(|p| p.as_ref() == Some(r))
                })
            })
        };
        let idle: Vec<Arc<str>> = st.rungs.keys().filter(|r| !wanted(r)).cloned().collect();
        for r in idle {
            if let Some(f) = st.rungs.remove(&r) {
                f.cancel.cancel();
            }
        }
    }

    /// The main feed says which rendition it sends: the viewers' ladders
    /// start there.
    pub(super) fn sending(&mut self, stream: &Arc<str>, rendition: Arc<str>) {
        let Some(st) = self.streams.get_mut(stream) else {
            return;
        };
        if st.top.as_ref() == Some(&rendition) {
            return;
        }
        st.top = Some(rendition);
        let ladder = self.ladder(stream);
        let ids: Vec<String> = self
            .streams
            .get(stream)
            .map(|st| st.sessions.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.abr = s.abr.take().and_then(|a| a.relist(ladder.clone()));
            }
        }
    }

    /// A rendition feed's first frames: its keyframe cache only (its
    /// viewers move at a live keyframe).
    pub(super) fn rung_history(&mut self, stream: &Arc<str>, r: &Arc<str>, frames: &[Frame]) {
        let Some(f) = self
            .streams
            .get_mut(stream)
            .and_then(|st| st.rungs.get_mut(r))
        else {
            return;
        };
        f.gop = Gop::new();
        for frame in frames {
            f.gop.push(frame);
        }
    }

    /// A rendition feed ended (the rung went): its viewers go back to the
    /// main feed at its next keyframe.
    pub(super) fn rung_ended(&mut self, stream: &Arc<str>, r: &Arc<str>) {
        let Some(st) = self.streams.get_mut(stream) else {
            return;
        };
        if let Some(f) = st.rungs.remove(r) {
            f.cancel.cancel();
        }
        for id in &st.sessions {
            if let Some(s) = self.sessions.get_mut(id) {
                let on = s.rendition.as_ref() == Some(r);
                let moving = s.pending.as_ref().is_some_and(|p| p.as_ref() == Some(r));
                if on {
                    s.pending = Some(None);
                } else if moving {
                    s.pending = None;
                }
            }
        }
    }
}
