//! Frames and Opus packets from the feeds to the sessions: each viewer's
//! packets made and sent before the next viewer's, moves between
//! renditions carried out at keyframes, and the keyframe caches kept.

use super::Task;
use crate::audio::AudioFrame;
use crate::feed::Frame;
use crate::gop::Gop;
use crate::session::{Happened, Session};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use str0m::net::Transmit;

impl Task {
    /// Live frames of the main feed (`rendition` None) or of one
    /// rendition's: to the viewers on it, and to those moving to it from
    /// its first keyframe on.
    pub(super) fn frames(
        &mut self,
        stream: &Arc<str>,
        rendition: Option<&Arc<str>>,
        frames: &[Frame],
    ) {
        let Some(st) = self.streams.get_mut(stream) else {
            return;
        };
        let gop = match rendition {
            None => &mut st.gop,
            Some(r) => match st.rungs.get_mut(r) {
                Some(f) => &mut f.gop,
                None => return,
            },
        };
        for f in frames {
            gop.push(f);
        }
        let mut moved = 0;
        let sent = self.fan_out(stream, |s, now, out| {
            if !s.connected {
                return None;
            }
            let on = s.rendition.as_ref() == rendition;
            let moving = s.pending.as_ref().is_some_and(|p| p.as_ref() == rendition);
            if !on && !moving {
                return None;
            }
            let mut h = Happened::default();
            let mut mine = on;
            for f in frames {
                if !mine {
                    // The move happens at this rendition's keyframe.
                    if !(f.keyframe && s.started) {
                        continue;
                    }
                    s.rendition = s.pending.take().flatten();
                    mine = true;
                    moved += 1;
                }
                if !s.started {
                    if !f.keyframe {
                        continue;
                    }
                    s.started = true;
                }
                h.merge(s.write(f, now, out));
            }
            mine.then_some(h)
        });
        self.metrics
            .frames_sent
            .fetch_add(sent * frames.len() as u64, Ordering::Relaxed);
        if moved > 0 {
            self.prune_rungs(stream);
        }
    }

    /// Opus packets to every viewer whose picture has started (so sound
    /// never runs ahead of the first keyframe).
    pub(super) fn audio(&mut self, stream: &Arc<str>, frames: &[AudioFrame]) {
        let sent = self.fan_out(stream, |s, now, out| {
            if !s.connected || !s.started || !s.has_audio() {
                return None;
            }
            let mut h = Happened::default();
            for f in frames {
                h.merge(s.write_audio(f, now, out));
            }
            Some(h)
        });
        self.metrics
            .audio_sent
            .fetch_add(sent * frames.len() as u64, Ordering::Relaxed);
    }

    /// `write` for each session of `stream`, sending what it queued
    /// session by session (one viewer's packets leave before the next
    /// viewer's are made); `write` answers None to skip a session, else
    /// what its drains reported. Sessions whose peer is gone are removed.
    /// The sessions written to.
    fn fan_out(
        &mut self,
        stream: &Arc<str>,
        mut write: impl FnMut(&mut Session, Instant, &mut Vec<Transmit>) -> Option<Happened>,
    ) -> u64 {
        let Some(st) = self.streams.get(stream) else {
            return 0;
        };
        let ids: Vec<String> = st.sessions.iter().cloned().collect();
        let now = Instant::now();
        let mut gone = Vec::new();
        let mut sent = 0;
        for id in &ids {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            let Some(h) = write(s, now, &mut self.out) else {
                continue;
            };
            sent += 1;
            self.count(&h);
            if h.closed {
                gone.push(id.clone());
            }
            self.flush();
        }
        for id in gone {
            self.remove(&id, false);
        }
        sent
    }

    /// The main feed (re)started: the cache holds these frames alone, and
    /// every connected viewer on it gets them as a burst (a rendition
    /// change looks like a new join, without adding the GOP's span to its
    /// delay).
    pub(super) fn history(&mut self, stream: &Arc<str>, frames: &[Frame]) {
        let Some(st) = self.streams.get_mut(stream) else {
            return;
        };
        st.gop = Gop::new();
        for f in frames {
            st.gop.push(f);
        }
        let connected: Vec<String> = st
            .sessions
            .iter()
            .filter(|id| {
                self.sessions
                    .get(*id)
                    .is_some_and(|s| s.connected && s.rendition.is_none())
            })
            .cloned()
            .collect();
        for id in connected {
            self.start(&id);
        }
    }

    /// The stream ended: its sessions end (the viewer's page sees the
    /// connection close, as an HLS player sees ENDLIST).
    pub(super) fn ended(&mut self, stream: &Arc<str>) {
        let ids: Vec<String> = self
            .streams
            .get(stream)
            .map(|st| st.sessions.iter().cloned().collect())
            .unwrap_or_default();
        tracing::info!(%stream, sessions = ids.len(), "stream ended: whep sessions close");
        for id in ids {
            self.remove(&id, true);
        }
    }
}
