//! The WebRTC server of one process: the UDP sockets every session's media
//! goes through, and one task that owns every session, every stream's
//! keyframe cache, and the feeds that bring frames in.
//!
//! Requests reach the task as [`Command`]s with a reply channel; frames
//! come from a [`MediaSource`] (the origin's packager, or an edge's pushed
//! chunks) through a bounded queue; datagrams from one reader task per
//! socket. Sends never wait: a datagram the socket cannot take now is
//! dropped and counted (it is UDP; NACKs and keyframes recover).
//!
//! A frame becomes several RTP packets to the same viewer, all of the
//! packetizer's size but the last: they leave in one `sendmsg` with UDP
//! GSO (quinn-udp's, as QUIC uses it) where the kernel has it, so the
//! per-packet cost is the encryption, not a system call each.
//!
//! A stream is followed while it has sessions: the first viewer starts its
//! feed, the last one leaving cancels it. Viewers the bandwidth estimate
//! moves to another rendition of the ladder ([`steer`]) get it from a feed
//! of that rendition, followed while someone gets it or is moving to it.

mod fanout;
mod steer;

use crate::abr::Abr;
use crate::gop::Gop;
use crate::handle::Command;
pub use crate::handle::{Answer, RtcServer, ServerError};
use crate::ingest::IngestSink;
use crate::metrics::RtcMetrics;
use crate::session::{Happened, Session};
use crate::sink::{FeedEvent, FeedKey, MediaTx};
pub use crate::sink::{FeedSink, MediaSource};
use crate::socket::{batch_len, bind, read_socket, Bound, Datagram, MAX_GSO_SEND};
use livecdn_shared::config::WebRtcConfig;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Input};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Datagrams waiting for the session task.
const NET_QUEUE: usize = 8192;
/// Frame batches waiting for the session task.
const MEDIA_QUEUE: usize = 1024;
/// The task wakes at least this often (connect timeouts).
const TICK: Duration = Duration::from_millis(500);

impl RtcServer {
    /// Binds the media sockets and starts the session task, which runs
    /// until `shutdown` is cancelled.
    pub async fn start(
        config: &WebRtcConfig,
        source: Arc<dyn MediaSource>,
        shutdown: CancellationToken,
    ) -> std::io::Result<RtcServer> {
        let sockets = bind(config)?;
        let local: Vec<SocketAddr> = sockets.iter().map(|s| s.candidate).collect();
        let metrics = Arc::new(RtcMetrics::default());
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (net_tx, net_rx) = mpsc::channel(NET_QUEUE);
        let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
        for s in &sockets {
            tokio::spawn(read_socket(
                s.socket.clone(),
                s.candidate,
                net_tx.clone(),
                metrics.clone(),
                shutdown.clone(),
            ));
        }
        tracing::info!(candidates = ?local, "webrtc listening");
        let task = Task {
            config: config.clone(),
            sockets,
            source,
            metrics: metrics.clone(),
            media_tx,
            sessions: HashMap::new(),
            by_addr: HashMap::new(),
            streams: HashMap::new(),
            out: Vec::new(),
            batch: Vec::with_capacity(MAX_GSO_SEND),
        };
        tokio::spawn(task.run(cmd_rx, net_rx, media_rx, shutdown));
        Ok(RtcServer {
            cmd: cmd_tx,
            config: Arc::new(config.clone()),
            local: local.into(),
            metrics,
        })
    }
}

struct StreamState {
    gop: Gop,
    sessions: HashSet<String>,
    cancel: CancellationToken,
    /// The rendition the main feed sends, once it has said.
    top: Option<Arc<str>>,
    /// Feeds of other renditions, for viewers moved to them.
    rungs: HashMap<Arc<str>, RungFeed>,
}

/// A video-only feed of one rendition.
struct RungFeed {
    gop: Gop,
    cancel: CancellationToken,
}

struct Task {
    config: WebRtcConfig,
    sockets: Vec<Bound>,
    source: Arc<dyn MediaSource>,
    metrics: Arc<RtcMetrics>,
    media_tx: MediaTx,
    sessions: HashMap<String, Session>,
    /// Peers whose datagrams a session has taken before.
    by_addr: HashMap<SocketAddr, String>,
    streams: HashMap<Arc<str>, StreamState>,
    /// Transmits of the current step, sent before the next.
    out: Vec<Transmit>,
    /// Where a GSO batch is packed.
    batch: Vec<u8>,
}

impl Task {
    async fn run(
        mut self,
        mut cmd: mpsc::Receiver<Command>,
        mut net: mpsc::Receiver<Datagram>,
        mut media: mpsc::Receiver<(FeedKey, FeedEvent)>,
        shutdown: CancellationToken,
    ) {
        let mut next = Instant::now() + TICK;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(c) = cmd.recv() => self.command(c),
                Some(d) = net.recv() => self.datagram(d),
                Some((key, event)) = media.recv() => match (key.rendition, event) {
                    (None, FeedEvent::Frames(frames)) => self.frames(&key.stream, None, &frames),
                    (None, FeedEvent::History(frames)) => self.history(&key.stream, &frames),
                    (None, FeedEvent::Audio(frames)) => self.audio(&key.stream, &frames),
                    (None, FeedEvent::Ended) => self.ended(&key.stream),
                    (None, FeedEvent::Sending(r)) => self.sending(&key.stream, r),
                    (Some(r), FeedEvent::Frames(frames)) => {
                        self.frames(&key.stream, Some(&r), &frames)
                    }
                    (Some(r), FeedEvent::History(frames)) => {
                        self.rung_history(&key.stream, &r, &frames)
                    }
                    (Some(r), FeedEvent::Ended) => self.rung_ended(&key.stream, &r),
                    (Some(_), _) => {}
                },
                _ = tokio::time::sleep_until(next.into()) => self.timeouts(Instant::now()),
            }
            next = self.next_deadline();
        }
        let ids: Vec<String> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.remove(&id, true);
        }
    }

    fn next_deadline(&self) -> Instant {
        let cap = Instant::now() + TICK;
        self.sessions
            .values()
            .map(|s| s.deadline)
            .min()
            .map_or(cap, |d| d.min(cap))
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Offer { stream, sdp, reply } => {
                let r = self.offer(&stream, &sdp);
                if r.is_err() {
                    self.metrics.offers_refused.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(r);
            }
            Command::Trickle {
                stream,
                id,
                candidates,
                reply,
            } => {
                let _ = reply.send(self.trickle(stream.as_deref(), &id, &candidates));
            }
            Command::Publish {
                stream,
                sdp,
                sink,
                reply,
            } => {
                let r = self.publish(&stream, &sdp, sink);
                if r.is_err() {
                    self.metrics.offers_refused.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(r);
            }
            Command::Close { stream, id, reply } => {
                let known = self
                    .sessions
                    .get(&id)
                    .is_some_and(|s| is_addressed(s, stream.as_deref()));
                if known {
                    self.remove(&id, true);
                }
                let _ = reply.send(known.then_some(()).ok_or(ServerError::UnknownSession));
            }
        }
    }

    fn offer(&mut self, stream: &str, sdp: &str) -> Result<Answer, ServerError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(ServerError::Full);
        }
        if !self.source.exists(stream) {
            return Err(ServerError::UnknownStream);
        }
        let id = hex::encode(rand::random::<[u8; 16]>());
        let name: Arc<str> = match self.streams.get_key_value(stream) {
            Some((k, _)) => k.clone(),
            None => Arc::from(stream),
        };
        let candidates: Vec<SocketAddr> = self.sockets.iter().map(|s| s.candidate).collect();
        let now = Instant::now();
        let abr = Abr::new(self.ladder(&name));
        let (session, answer) =
            Session::accept(id.clone(), name.clone(), sdp, &candidates, abr, now)?;
        if !self.streams.contains_key(stream) {
            let cancel = CancellationToken::new();
            let sink = FeedSink {
                key: FeedKey {
                    stream: name.clone(),
                    rendition: None,
                },
                tx: self.media_tx.clone(),
                cancel: cancel.clone(),
                metrics: self.metrics.clone(),
            };
            if !self.source.follow(stream, sink) {
                return Err(ServerError::UnknownStream);
            }
            self.streams.insert(
                name.clone(),
                StreamState {
                    gop: Gop::new(),
                    sessions: HashSet::new(),
                    cancel,
                    top: None,
                    rungs: HashMap::new(),
                },
            );
        }
        if let Some(s) = self.streams.get_mut(stream) {
            s.sessions.insert(id.clone());
            self.metrics.set_stream_sessions(&name, s.sessions.len());
        }
        tracing::info!(%stream, session = %id, "whep session offered");
        self.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
        self.sessions.insert(id.clone(), session);
        self.metrics.set_sessions(self.sessions.len());
        Ok(Answer {
            session: id,
            sdp: answer,
        })
    }

    /// A publisher's session: no stream feed to follow, its media come in.
    fn publish(
        &mut self,
        stream: &str,
        sdp: &str,
        sink: Box<dyn IngestSink>,
    ) -> Result<Answer, ServerError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(ServerError::Full);
        }
        let id = hex::encode(rand::random::<[u8; 16]>());
        let candidates: Vec<SocketAddr> = self.sockets.iter().map(|s| s.candidate).collect();
        let (session, answer) = Session::accept_publish(
            id.clone(),
            Arc::from(stream),
            sdp,
            &candidates,
            sink,
            Instant::now(),
        )?;
        tracing::info!(%stream, session = %id, "whip session offered");
        self.sessions.insert(id.clone(), session);
        self.metrics.set_sessions(self.sessions.len());
        self.metrics.publishers.fetch_add(1, Ordering::Relaxed);
        Ok(Answer {
            session: id,
            sdp: answer,
        })
    }

    fn trickle(
        &mut self,
        stream: Option<&str>,
        id: &str,
        lines: &[String],
    ) -> Result<(), ServerError> {
        let s = self
            .sessions
            .get_mut(id)
            .filter(|s| is_addressed(s, stream))
            .ok_or(ServerError::UnknownSession)?;
        for l in lines {
            let c = Candidate::from_sdp_string(l)
                .map_err(|e| ServerError::BadCandidate(e.to_string()))?;
            s.add_remote_candidate(c, &mut self.out);
        }
        self.flush();
        Ok(())
    }

    fn datagram(&mut self, d: Datagram) {
        let Ok(contents) = d.data.as_slice().try_into() else {
            self.metrics
                .datagrams_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: d.destination,
                contents,
            },
        );
        let id = match self.by_addr.get(&d.source) {
            Some(id) if self.sessions.get(id).is_some_and(|s| s.accepts(&input)) => id.clone(),
            _ => match self.sessions.iter().find(|(_, s)| s.accepts(&input)) {
                Some((id, _)) => {
                    self.by_addr.insert(d.source, id.clone());
                    id.clone()
                }
                None => {
                    self.metrics
                        .datagrams_unmatched
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let h = s.handle(input, &mut self.out);
        self.flush();
        self.after(&id, h);
    }

    /// Acts on what a session reported.
    fn after(&mut self, id: &str, h: Happened) {
        self.count(&h);
        if h.closed {
            self.remove(id, false);
            return;
        }
        if h.connected {
            self.metrics.connected_total.fetch_add(1, Ordering::Relaxed);
            self.start(id);
        }
        self.steer(id);
    }

    /// The viewer's requests a drain reported, to the metrics.
    fn count(&self, h: &Happened) {
        let m = &self.metrics;
        m.keyframe_requests
            .fetch_add(h.keyframe_requests, Ordering::Relaxed);
        m.nacks.fetch_add(h.nacks, Ordering::Relaxed);
        m.publish_frames.fetch_add(h.received, Ordering::Relaxed);
        m.publish_plis.fetch_add(h.plis, Ordering::Relaxed);
    }

    /// A session just connected: the keyframe burst, then live frames.
    fn start(&mut self, id: &str) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        if s.is_publisher() {
            tracing::info!(stream = %s.stream, session = %id, "whip session connected");
            return;
        }
        let burst = self
            .streams
            .get(&s.stream)
            .map(|st| st.gop.burst())
            .unwrap_or_default();
        let now = Instant::now();
        let mut h = Happened::default();
        for f in &burst {
            h.merge(s.write(f, now, &mut self.out));
        }
        // Without a keyframe to start from, the first live keyframe starts it.
        s.started = !burst.is_empty();
        tracing::info!(stream = %s.stream, session = %id, burst = burst.len(), "whep session connected");
        self.flush();
        self.count(&h);
        if h.closed {
            self.remove(id, false);
        }
    }

    fn timeouts(&mut self, now: Instant) {
        let due: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline <= now || !s.connected)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if !s.connected && now.duration_since(s.created) > self.config.connect_timeout {
                self.metrics
                    .connect_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(session = %id, "whep session never connected");
                self.remove(&id, false);
                continue;
            }
            if s.deadline > now {
                continue;
            }
            let h = s.handle(Input::Timeout(now), &mut self.out);
            self.flush();
            self.after(&id, h);
        }
    }

    /// Sends what the last step produced, each from its socket: runs of
    /// datagrams to one peer, equal in size but the last, in one send.
    fn flush(&mut self) {
        let out = std::mem::take(&mut self.out);
        let mut i = 0;
        while i < out.len() {
            let first = &out[i];
            let Some(b) = self
                .sockets
                .iter()
                .find(|s| s.candidate == first.source)
                .or_else(|| self.sockets.first())
            else {
                break;
            };
            let size = first.contents.len();
            let room = b
                .udp
                .max_gso_segments()
                .clamp(1, MAX_GSO_SEND / size.max(1));
            let n = batch_len(&out[i..], room);
            self.batch.clear();
            for t in &out[i..i + n] {
                self.batch.extend_from_slice(&t.contents);
            }
            let m = &self.metrics;
            if b.send_batch(first.destination, &self.batch, size, n) {
                m.datagrams_out.fetch_add(n as u64, Ordering::Relaxed);
                m.bytes_out
                    .fetch_add(self.batch.len() as u64, Ordering::Relaxed);
                m.sends.fetch_add(1, Ordering::Relaxed);
            } else {
                m.send_dropped.fetch_add(n as u64, Ordering::Relaxed);
            }
            i += n;
        }
        // Keep the vector's capacity for the next step.
        self.out = out;
        self.out.clear();
    }

    fn remove(&mut self, id: &str, tell_peer: bool) {
        let Some(mut s) = self.sessions.remove(id) else {
            return;
        };
        if tell_peer {
            s.close(&mut self.out);
            self.flush();
        }
        self.by_addr.retain(|_, v| v != id);
        if s.is_publisher() {
            self.metrics.publishers.fetch_sub(1, Ordering::Relaxed);
            self.metrics.set_sessions(self.sessions.len());
            let (frames, audio, plis) = s.received();
            tracing::info!(stream = %s.stream, session = %id, frames, audio, plis, "whip session ended");
            // Dropping the session drops its sink: the publish ends.
            return;
        }
        if let Some(st) = self.streams.get_mut(&s.stream) {
            st.sessions.remove(id);
            self.metrics
                .set_stream_sessions(&s.stream, st.sessions.len());
            if st.sessions.is_empty() {
                st.cancel.cancel();
                for f in st.rungs.values() {
                    f.cancel.cancel();
                }
                self.streams.remove(&s.stream);
            } else {
                self.prune_rungs(&s.stream);
            }
        }
        self.metrics.set_sessions(self.sessions.len());
        tracing::info!(stream = %s.stream, session = %id, frames = s.frames_sent, "whep session ended");
    }
}

/// Whether a Close or Trickle for `stream` (`None`: a publisher's) means
/// this session.
fn is_addressed(s: &Session, stream: Option<&str>) -> bool {
    match stream {
        Some(name) => !s.is_publisher() && &*s.stream == name,
        None => s.is_publisher(),
    }
}
