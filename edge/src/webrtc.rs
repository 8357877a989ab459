//! WHEP at the edge: `/live/STREAM/whep` served from the chunks push
//! brings ([`crate::live`]), so WebRTC viewers scale out with the edges
//! and the origin sends each edge one feed, whatever its viewer count.
//!
//! A watched stream has one follower task: it keeps the stream subscribed
//! (as an HLS viewer's requests do), turns the chosen video rendition's
//! chunks into frames (the source, or the first rung when the source has
//! B-frames, as at the origin) and the `opus` rendition's into packets,
//! and hands them to the WebRTC server. The server, the session code and
//! the WHEP contract are the origin's ([`livecdn_webrtc`]). Viewers whose
//! bandwidth estimate moves them to another rendition get a follower of
//! that rendition's video; the ladder is the pushed renditions at the
//! bitrates they arrive.
//!
//! An edge serves WHEP when it has a `[webrtc]` section and push
//! (`upstream.push`): without push it has no frames as they are made.

use crate::body::full;
use crate::error::EdgeError;
use crate::live::{Live, LiveEvent, RenditionState};
use crate::push::Push;
use crate::serve::{Body, Conn, RequestBody};
use crate::state::Edge;
use http::{Method, Request, Response};
use livecdn_shared::config::{AUDIO_RENDITION, OPUS_RENDITION, SOURCE_RUNG};
use livecdn_webrtc::audio::AudioFeed;
use livecdn_webrtc::video::VideoTrack;
use livecdn_webrtc::whep;
use livecdn_webrtc::{Feed, FeedSink, MediaSource, Rung};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// How long an offer for a stream the edge does not have yet waits for
/// push to bring its first keyframe.
const FIRST_PICTURE: Duration = Duration::from_secs(5);
/// How often a follower renews the stream's push subscription.
const TOUCH_EVERY: Duration = Duration::from_millis(500);

/// The edge's streams, for the WebRTC server.
pub struct EdgeSource {
    live: Arc<Live>,
    push: Arc<Push>,
}

impl EdgeSource {
    pub fn new(live: Arc<Live>, push: Arc<Push>) -> Self {
        Self { live, push }
    }

    /// A follower of `stream` (`only`: one rendition's video).
    fn spawn(&self, stream: &str, sink: FeedSink, only: Option<Arc<str>>) {
        let (live, push) = (self.live.clone(), self.push.clone());
        tokio::spawn(follow(live, push, stream.to_string(), sink, only));
    }
}

impl MediaSource for EdgeSource {
    fn exists(&self, stream: &str) -> bool {
        self.live.ready(stream, SOURCE_RUNG)
    }

    fn follow(&self, stream: &str, sink: FeedSink) -> bool {
        if self.live.watch(stream).is_none() {
            return false;
        }
        self.spawn(stream, sink, None);
        true
    }

    /// The video renditions pushed to this edge, at the rates they arrive.
    fn ladder(&self, stream: &str) -> Vec<Rung> {
        self.live
            .bitrates(stream)
            .into_iter()
            .filter(|(n, _)| ![AUDIO_RENDITION, OPUS_RENDITION].contains(&&**n))
            .map(|(n, bitrate)| Rung {
                name: n.to_string(),
                bitrate,
            })
            .collect()
    }

    fn follow_rendition(&self, stream: &str, rendition: &str, sink: FeedSink) -> bool {
        if [AUDIO_RENDITION, OPUS_RENDITION].contains(&rendition)
            || !self.live.ready(stream, rendition)
        {
            return false;
        }
        self.spawn(stream, sink, Some(Arc::from(rendition)));
        true
    }
}

/// Serves a WHEP request for `stream` (`session` for `.../whep/ID`).
pub async fn serve(
    edge: &Edge,
    req: &Request<()>,
    conn: Conn,
    stream: &str,
    session: Option<&str>,
) -> Result<Response<Body>, EdgeError> {
    let (Some(server), Some(push)) = (edge.webrtc.as_ref(), edge.push.as_ref()) else {
        return Err(EdgeError::NotFound);
    };
    if req.method() == Method::POST {
        crate::access::check(edge, req, conn, stream, edge.streams.needs_token(stream))?;
        // A stream nobody here watched yet: subscribe, and wait (bounded)
        // for its first keyframe to be pushed.
        push.touch(stream, Instant::now());
        edge.live
            .wait_ready(stream, SOURCE_RUNG, FIRST_PICTURE)
            .await;
    }
    let body = req
        .extensions()
        .get::<RequestBody>()
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let body = http_body_util::Full::new(body);
    let reply = match whep::serve(server, req.method(), stream, session, req.headers(), body).await
    {
        Ok(reply) => reply,
        Err(e) => {
            tracing::debug!(%stream, error = %e, "whep refused");
            e.reply()
        }
    };
    let mut resp = Response::new(full(reply.body));
    *resp.status_mut() = reply.status;
    *resp.headers_mut() = reply.headers;
    Ok(resp)
}

/// The video rendition to send: the source, or, when it has B-frames, the
/// first rung.
fn rung_of(renditions: &[RenditionState]) -> Option<Arc<str>> {
    renditions
        .iter()
        .map(|r| r.name.clone())
        .find(|n| ![SOURCE_RUNG, AUDIO_RENDITION, OPUS_RENDITION].contains(&&**n))
}

/// One follower's decoders.
struct Following {
    rendition: Arc<str>,
    /// The stream's main feed (it may stand a rung in for a B-frame
    /// source, and carries the audio), or one rendition's video.
    main: bool,
    feed: Feed,
    audio: AudioFeed,
    warned: bool,
}

impl Following {
    fn init(&mut self, stream: &str, name: &str, init: &[u8]) {
        if name == OPUS_RENDITION {
            if !self.main {
                return;
            }
            if let Err(e) = self.audio.set_init(init) {
                tracing::warn!(%stream, error = %e, "webrtc: opus init not usable");
            }
        } else if *name == *self.rendition {
            match VideoTrack::from_init(init) {
                Ok(t) => self.feed.set_track(t),
                Err(e) => {
                    tracing::warn!(%stream, rendition = %name, error = %e, "webrtc: init not usable")
                }
            }
        }
    }

    /// Whether the source turned out to have B-frames and a rung can stand
    /// in (the follower then starts over on it).
    fn switch(&mut self, stream: &str, renditions: &[RenditionState], sink: &FeedSink) -> bool {
        if !self.main || !self.feed.reorders() || *self.rendition != *SOURCE_RUNG {
            return false;
        }
        match rung_of(renditions) {
            Some(rung) => {
                tracing::info!(%stream, %rung, "webrtc: source has B-frames, sending a rung");
                sink.sending(&rung);
                self.rendition = rung;
                self.feed = Feed::new();
                true
            }
            None => {
                if !self.warned {
                    self.warned = true;
                    tracing::warn!(%stream, "webrtc: source has B-frames and no rung to send instead");
                }
                false
            }
        }
    }
}

async fn follow(
    live: Arc<Live>,
    push: Arc<Push>,
    stream: String,
    sink: FeedSink,
    only: Option<Arc<str>>,
) {
    let main = only.is_none();
    if main {
        sink.sending(SOURCE_RUNG);
    }
    let mut f = Following {
        rendition: only.unwrap_or_else(|| Arc::from(SOURCE_RUNG)),
        main,
        feed: Feed::new(),
        audio: AudioFeed::new(),
        warned: false,
    };
    let mut touch = tokio::time::interval(TOUCH_EVERY);
    tracing::debug!(%stream, "webrtc follows the pushed stream");
    'watch: loop {
        let Some((renditions, mut rx)) = live.watch(&stream) else {
            sink.ended().await;
            break;
        };
        // History first: the segment so far, from its keyframe.
        for r in &renditions {
            if let Some(init) = &r.init {
                f.init(&stream, &r.name, init);
            }
        }
        let now = Instant::now();
        let mut history = Vec::new();
        if let Some(r) = renditions.iter().find(|r| r.name == f.rendition) {
            for chunk in &r.segment {
                if let Ok(frames) = f.feed.chunk(std::slice::from_ref(chunk), now) {
                    history.extend(frames);
                }
            }
        }
        if f.switch(&stream, &renditions, &sink) {
            continue 'watch;
        }
        sink.send_history(history);
        loop {
            let event = tokio::select! {
                _ = sink.cancelled() => break 'watch,
                _ = touch.tick() => {
                    push.touch(&stream, Instant::now());
                    continue;
                }
                e = rx.recv() => e,
            };
            match event {
                Ok(LiveEvent::Init(name, init)) => f.init(&stream, &name, &init),
                Ok(LiveEvent::Chunk(name, chunk)) if *name == *OPUS_RENDITION && f.main => {
                    match f.audio.chunk(std::slice::from_ref(&chunk), Instant::now()) {
                        Ok(packets) => sink.send_audio(packets),
                        Err(e) => {
                            tracing::debug!(%stream, error = %e, "webrtc: opus chunk skipped")
                        }
                    }
                }
                Ok(LiveEvent::Chunk(name, chunk)) if name == f.rendition => {
                    match f.feed.chunk(std::slice::from_ref(&chunk), Instant::now()) {
                        Ok(frames) => {
                            if f.switch(&stream, &renditions, &sink) {
                                continue 'watch;
                            }
                            sink.send(frames);
                        }
                        Err(e) => {
                            tracing::debug!(%stream, rendition = %name, error = %e, "webrtc: chunk skipped")
                        }
                    }
                }
                Ok(LiveEvent::Chunk(..)) => {}
                Ok(LiveEvent::Ended) | Err(RecvError::Closed) => {
                    sink.ended().await;
                    break 'watch;
                }
                // Fell behind: start over from the segment's keyframe.
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(%stream, missed = n, "webrtc follower lagged");
                    continue 'watch;
                }
            }
        }
    }
    tracing::debug!(%stream, "webrtc stops following the pushed stream");
}
