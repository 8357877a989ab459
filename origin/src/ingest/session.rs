//! One RTMP connection: handshake, then rml_rtmp's `ServerSession` driven by
//! socket bytes. Everything that can go wrong with the peer's bytes ends this
//! session with a reason; nothing here can affect another stream.

use super::auth::{self, Refusal};
use crate::registry::{PublishRole, StreamHub};
use crate::OriginState;
use bytes::Bytes;
use livecdn_shared::flv::{self, AudioTag, VideoTag};
use livecdn_shared::media::{Frame, TrackKind};
use livecdn_shared::rtmp::ChunkGuard;
use livecdn_shared::{aac, avc};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Publisher session ids (RTMP and WHIP alike): the registry tells
/// publishers apart by them.
pub(crate) static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing arrived within the idle timeout.
    #[error("idle for {0:?}")]
    Idle(Duration),
    /// The handshake did not complete within the handshake timeout.
    #[error("no handshake within {0:?}")]
    HandshakeDeadline(Duration),
    /// No publish was accepted within the publish timeout of connecting.
    #[error("no publish within {0:?} of connecting")]
    PublishDeadline(Duration),
    /// A write to the publisher did not finish within the write timeout.
    #[error("write blocked for {0:?}")]
    WriteTimeout(Duration),
    /// The TLS handshake of an RTMPS connection failed (a plain-RTMP
    /// client on the RTMPS port ends here).
    #[error("tls: {0}")]
    Tls(String),
    /// The handshake bytes were invalid.
    #[error("handshake: {0}")]
    Handshake(String),
    /// Malformed RTMP chunks or messages.
    #[error("rtmp protocol: {0}")]
    Protocol(String),
    /// Malformed FLV tag, AVC or AAC configuration.
    #[error("media: {0}")]
    Media(String),
    /// A codec we do not package.
    #[error("unsupported codec {0}")]
    Unsupported(String),
    /// The publish was refused.
    #[error("publish refused: {0}")]
    Refused(String),
    /// The operator disconnected the publisher (a revoked key, a stop).
    #[error("disconnected by the operator")]
    Kicked,
}

/// The publish in progress on this connection.
struct Publishing {
    hub: Arc<StreamHub>,
    stream: String,
    /// Bytes in each NAL length prefix, from the AVC config.
    nal_length: u8,
}

struct Conn<S> {
    socket: S,
    peer: SocketAddr,
    id: u64,
    state: Arc<OriginState>,
    session: ServerSession,
    /// Checks every chunk before rml_rtmp parses it (see `ChunkGuard`).
    guard: ChunkGuard,
    publishing: Option<Publishing>,
    /// Turns true when the operator disconnects this publisher.
    kick: Option<watch::Receiver<bool>>,
}

/// Resolves when `kick` turns true; never without one (or once its
/// stream dropped it).
async fn kicked(kick: Option<&mut watch::Receiver<bool>>) {
    if let Some(rx) = kick {
        if rx.wait_for(|k| *k).await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Runs one RTMP session on `socket` (TCP, or TLS over it) until the peer
/// leaves, a deadline passes or `shutdown` flips. `accepted` is when the
/// connection was accepted: the handshake and publish deadlines count from
/// it, TLS included.
pub async fn run<S>(
    mut socket: S,
    peer: SocketAddr,
    accepted: tokio::time::Instant,
    state: Arc<OriginState>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hs_limit = state.config.ingest.handshake_timeout;
    let leftover = tokio::time::timeout_at(accepted + hs_limit, handshake(&mut socket))
        .await
        .map_err(|_| SessionError::HandshakeDeadline(hs_limit))??;
    let (session, initial) = ServerSession::new(ServerSessionConfig::new())
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    let mut conn = Conn {
        socket,
        peer,
        id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
        state,
        session,
        guard: ChunkGuard::new(),
        publishing: None,
        kick: None,
    };
    let result = conn.drive(initial, leftover, accepted, &mut shutdown).await;
    conn.finish().await;
    result
}

async fn handshake<S>(socket: &mut S) -> Result<Vec<u8>, SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(SessionError::Handshake("closed during handshake".into()));
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| SessionError::Handshake(format!("{e:?}")))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await?;
                socket.flush().await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await?;
                socket.flush().await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn drive(
        &mut self,
        initial: Vec<ServerSessionResult>,
        leftover: Vec<u8>,
        accepted: tokio::time::Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionError> {
        let idle = self.state.config.ingest.idle_timeout;
        let publish_limit = self.state.config.ingest.publish_timeout;
        let publish_deadline = accepted + publish_limit;
        self.handle_results(initial).await?;
        if !leftover.is_empty() {
            self.input(&leftover).await?;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Until a publish is accepted, the whole connection has a
            // deadline, not just each read: trickled bytes cannot hold it.
            let unpublished = self.publishing.is_none();
            let read = tokio::select! {
                r = tokio::time::timeout(idle, self.socket.read(&mut buf)) => r,
                _ = tokio::time::sleep_until(publish_deadline), if unpublished => {
                    return Err(SessionError::PublishDeadline(publish_limit));
                }
                _ = shutdown.changed() => return Ok(()),
                _ = kicked(self.kick.as_mut()) => return Err(SessionError::Kicked),
            };
            let n = read.map_err(|_| SessionError::Idle(idle))??;
            if n == 0 {
                return Ok(());
            }
            self.input(&buf[..n]).await?;
        }
    }

    async fn input(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.guard
            .inspect(bytes)
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        // rml_rtmp's chunk parser is fed untrusted bytes; its errors are
        // typed, but a panic inside it must not take the process down either.
        let session = &mut self.session;
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(bytes)))
                .map_err(|_| SessionError::Protocol("rtmp parser panicked on input".into()))?
                .map_err(|e| SessionError::Protocol(e.to_string()))?;
        self.handle_results(results).await
    }

    async fn handle_results(
        &mut self,
        results: Vec<ServerSessionResult>,
    ) -> Result<(), SessionError> {
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.write(&p.bytes).await?,
                ServerSessionResult::RaisedEvent(ev) => self.event(ev).await?,
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    /// Writes to the publisher, bounded by the write timeout: a client that
    /// stops reading cannot park this task on a full socket buffer.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let limit = self.state.config.ingest.write_timeout;
        // TLS buffers what it encrypts: flush so the bytes reach the socket.
        let written = async {
            self.socket.write_all(bytes).await?;
            self.socket.flush().await
        };
        tokio::time::timeout(limit, written)
            .await
            .map_err(|_| SessionError::WriteTimeout(limit))??;
        Ok(())
    }

    async fn event(&mut self, ev: ServerSessionEvent) -> Result<(), SessionError> {
        match ev {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                if app_name.trim_end_matches('/') != self.state.config.ingest.app {
                    let r = self.session.reject_request(
                        request_id,
                        "NetConnection.Connect.Rejected",
                        "unknown application",
                    );
                    self.send(r).await?;
                    return Err(SessionError::Refused(
                        Refusal::WrongApp(app_name).to_string(),
                    ));
                }
                let r = self.session.accept_request(request_id);
                self.send(r).await
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => self.publish(request_id, &app_name, &stream_key).await,
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.finish().await;
                Ok(())
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                let r = self.session.reject_request(
                    request_id,
                    "NetStream.Play.Failed",
                    "playback is over HLS",
                );
                self.send(r).await
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.video(data, timestamp.value),
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.audio(data, timestamp.value),
            _ => Ok(()),
        }
    }

    async fn send(
        &mut self,
        results: Result<Vec<ServerSessionResult>, rml_rtmp::sessions::ServerSessionError>,
    ) -> Result<(), SessionError> {
        let results = results.map_err(|e| SessionError::Protocol(e.to_string()))?;
        Box::pin(self.handle_results(results)).await
    }

    async fn publish(&mut self, request_id: u32, app: &str, key: &str) -> Result<(), SessionError> {
        if self.publishing.is_some() {
            return Err(SessionError::Protocol(
                "second publish on one connection".into(),
            ));
        }
        let state = self.state.clone();
        let grant = auth::authorize(
            &state.config,
            state.control.as_ref(),
            &state.webhooks,
            app,
            key,
            self.peer,
        )
        .await;
        let grant = match grant {
            Ok(g) => g,
            Err(refusal) => {
                state.metrics.publish(refusal.as_str());
                // The client learns only the kind of refusal; the details
                // (which check failed, and why) go to the log.
                let r = self.session.reject_request(
                    request_id,
                    "NetStream.Publish.BadName",
                    &format!("publish refused: {}", refusal.as_str()),
                );
                self.send(r).await?;
                return Err(SessionError::Refused(refusal.to_string()));
            }
        };
        let claim = state.registry.claim(
            &grant.stream,
            self.id,
            grant.backup,
            grant.low_latency,
            Instant::now(),
        );
        let (hub, role) = match claim {
            Ok(x) => x,
            Err(e) => {
                state.metrics.publish("already_live");
                let r = self.session.reject_request(
                    request_id,
                    "NetStream.Publish.BadName",
                    &e.to_string(),
                );
                self.send(r).await?;
                return Err(SessionError::Refused(e.to_string()));
            }
        };
        tracing::Span::current().record("stream", grant.stream.as_str());
        tracing::info!(role = ?role, "publish accepted");
        state.metrics.publish("accepted");
        begin(&state, &hub, role, &grant);
        self.kick = Some(hub.watch_kick(self.id, grant.key_id.clone()));
        self.publishing = Some(Publishing {
            hub,
            stream: grant.stream,
            nal_length: 4,
        });
        // Authorised: media messages may now be as large as media gets.
        self.guard.authorise();
        let r = self.session.accept_request(request_id);
        self.send(r).await?;
        if role == PublishRole::Backup {
            tracing::info!("standing by as backup publisher");
        }
        Ok(())
    }

    fn video(&mut self, data: Bytes, ts: u32) -> Result<(), SessionError> {
        let Some(p) = self.publishing.as_mut() else {
            return Err(SessionError::Protocol("media before publish".into()));
        };
        match flv::parse_video_tag(data).map_err(|e| SessionError::Media(e.to_string()))? {
            VideoTag::AvcSequenceHeader(avcc) => {
                let config =
                    avc::video_config(avcc).map_err(|e| SessionError::Media(e.to_string()))?;
                tracing::info!(width = config.width, height = config.height, codec = %config.codec_string(), "video config");
                p.nal_length = config.nal_length_size;
                p.hub.video_config(self.id, config);
            }
            VideoTag::AvcNalus {
                keyframe,
                cts_ms,
                data,
            } => {
                if data.is_empty() {
                    return Ok(());
                }
                // FLV's keyframe flag is what encoders set for IDRs; trust
                // it only when an IDR NAL is really there.
                let keyframe = keyframe
                    && avc::contains_idr(&data, p.nal_length)
                        .map_err(|e| SessionError::Media(e.to_string()))?;
                p.hub.frame(
                    self.id,
                    Instant::now(),
                    Frame {
                        track: TrackKind::Video,
                        dts_ms: ts,
                        cts_ms,
                        keyframe,
                        data,
                    },
                );
            }
            VideoTag::AvcEndOfSequence | VideoTag::CommandFrame => {}
            VideoTag::Unsupported { codec } => return Err(SessionError::Unsupported(codec)),
        }
        Ok(())
    }

    fn audio(&mut self, data: Bytes, ts: u32) -> Result<(), SessionError> {
        let Some(p) = self.publishing.as_mut() else {
            return Err(SessionError::Protocol("media before publish".into()));
        };
        match flv::parse_audio_tag(data).map_err(|e| SessionError::Media(e.to_string()))? {
            AudioTag::AacSequenceHeader(asc) => {
                let config =
                    aac::audio_config(asc).map_err(|e| SessionError::Media(e.to_string()))?;
                tracing::info!(
                    rate = config.sample_rate,
                    channels = config.channels,
                    "audio config"
                );
                p.hub.audio_config(self.id, config);
            }
            AudioTag::AacRaw(data) => {
                if !data.is_empty() {
                    p.hub.frame(
                        self.id,
                        Instant::now(),
                        Frame {
                            track: TrackKind::Audio,
                            dts_ms: ts,
                            cts_ms: 0,
                            keyframe: true,
                            data,
                        },
                    );
                }
            }
            AudioTag::Unsupported { codec } => return Err(SessionError::Unsupported(codec)),
        }
        Ok(())
    }

    /// Detaches from the stream (once) and tells the webhook.
    async fn finish(&mut self) {
        let Some(p) = self.publishing.take() else {
            return;
        };
        p.hub.detach(self.id, Instant::now());
        tracing::info!("publish finished");
        if let Some(url) = self.state.config.webhooks.on_publish_done.clone() {
            let body = serde_json::json!({"event": "publish_done", "stream": p.stream, "client": self.peer.to_string()});
            self.state.webhooks.notify(url, body, "on_publish_done");
        }
    }
}

/// What an accepted publish starts: the ladder's encoder and the recorder,
/// for a primary publisher, as its grant allows. RTMP and WHIP alike.
pub(crate) fn begin(
    state: &OriginState,
    hub: &Arc<StreamHub>,
    role: PublishRole,
    grant: &auth::Grant,
) {
    if role == PublishRole::Primary && state.transcode.enabled {
        if grant.source_only {
            tracing::info!("this stream's key asks for the source only: no transcoding");
        } else if hub.claim_transcoder() {
            tokio::spawn(crate::transcode::run(hub.clone(), state.transcode.clone()));
        }
    }
    if let Some(rec) = state.recorder.as_ref() {
        if role == PublishRole::Primary && rec.wants(grant.record) && hub.claim_recorder() {
            rec.record(hub.clone());
        }
    }
}
