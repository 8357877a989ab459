//! livecdn viewer chat: a WebSocket room per stream at
//! `/live/STREAM/chat` on every edge (schema: [`livecdn_shared::chat`]).
//!
//! The edge's chat service checks the request and upgrades the
//! connection; everything after that is here: [`Chat::admit`] decides who
//! may join (chat token, anonymous reading, connection limits), and
//! [`Chat::serve`] runs the connection ([`session`]). Rooms span edges
//! through the [`relay`]: Redis Streams when configured, this process
//! otherwise.

pub mod entry;
pub mod fuzz;
pub mod id;
pub mod limit;
pub mod metrics;
pub mod relay;
pub mod room;
pub mod rooms;
pub mod session;

use entry::EntryKind;
use livecdn_shared::auth::{verify_chat, ChatRole, KeyError};
use livecdn_shared::chat::{close, Me};
use livecdn_shared::config::ChatConfig;
use livecdn_shared::limit::{AddrPermit, PerAddr};
use metrics::ChatMetrics;
use relay::{now_ms, Relay, RelayError};
use rooms::Rooms;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// This edge's viewers of a stream (its HLS and WebRTC viewer counts).
pub type LocalViewers = Arc<dyn Fn(&str) -> u64 + Send + Sync>;

/// How often rooms' viewer counts are refreshed.
const VIEWERS_EVERY: Duration = Duration::from_secs(2);
/// Largest frame or message a client may send: a message's text is
/// `max_chars` characters of up to 4 bytes, in JSON.
fn max_frame(config: &ChatConfig) -> usize {
    (config.max_chars * 4 + 256).max(1024)
}

/// The WebSocket settings every chat connection runs with: small frames
/// in, a bounded write buffer out.
pub fn ws_config(config: &ChatConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_frame(config)))
        .max_frame_size(Some(max_frame(config)))
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
}

/// `Sec-WebSocket-Accept` for a request's `Sec-WebSocket-Key` (RFC 6455
/// section 4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
}

/// Why the chat service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    #[error("chat.redis: {0}")]
    Relay(#[from] RelayError),
    #[error("chat tokens need a secret (auth.secret or LIVECDN_SECRET)")]
    NoSecret,
    #[error("invalid chat token claims: {0}")]
    Claims(KeyError),
}

/// Who a connection speaks as, and the limits' permits it holds while it
/// lasts.
pub struct Admission {
    pub stream: String,
    /// `None`: read-only (no token, anonymous reading allowed).
    pub me: Option<Me>,
    _ip: Option<AddrPermit>,
    _slot: OwnedSemaphorePermit,
}

/// Why a connection may not join: sent as its close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
}

/// The chat service of one edge.
pub struct Chat {
    config: ChatConfig,
    secret: Option<Vec<u8>>,
    rooms: Arc<Rooms>,
    relay: Arc<Relay>,
    pub metrics: Arc<ChatMetrics>,
    per_ip: Arc<PerAddr>,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
}

/// A name for this node in Redis: the host name and process id.
fn default_node() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "edge".into());
    format!("{host}-{}", std::process::id())
}

impl Chat {
    /// Starts the service (the relay's reader and the viewer counts) on
    /// the current runtime; it stops with `stop`.
    pub fn start(
        config: ChatConfig,
        secret: Option<&str>,
        viewers: LocalViewers,
        stop: CancellationToken,
    ) -> Result<Arc<Chat>, ChatError> {
        let metrics = Arc::new(ChatMetrics::default());
        metrics
            .relay_up
            .store(1, std::sync::atomic::Ordering::Relaxed);
        let relay = match &config.redis {
            Some(url) => Relay::Redis(relay::redis::RedisRelay::new(
                url,
                config.node.clone().unwrap_or_else(default_node),
                config.retain,
                config.history,
            )?),
            None => Relay::Local(relay::local::LocalRelay::new(config.retain, config.history)),
        };
        let chat = Arc::new(Chat {
            rooms: Rooms::new(config.history, config.queue, metrics.clone()),
            relay: Arc::new(relay),
            per_ip: PerAddr::new(config.max_per_ip),
            slots: Arc::new(Semaphore::new(config.max_connections.max(1))),
            secret: secret.map(|s| s.as_bytes().to_vec()),
            metrics,
            config,
            stop,
        });
        tokio::spawn(chat.relay.clone().run(
            chat.rooms.clone(),
            chat.metrics.clone(),
            chat.stop.clone(),
        ));
        tokio::spawn(count_viewers(chat.clone(), viewers));
        Ok(chat)
    }

    /// The WebSocket settings for this service's connections.
    pub fn ws_config(&self) -> WebSocketConfig {
        ws_config(&self.config)
    }

    /// Decides, before the upgrade, whether a client from `peer` with
    /// `token` may join `stream`'s room. A refusal is sent as the close
    /// frame right after the upgrade, so a browser sees the reason.
    pub fn admit(
        &self,
        stream: &str,
        token: Option<&str>,
        peer: IpAddr,
    ) -> Result<Admission, Refusal> {
        let refuse = |code, reason| {
            ChatMetrics::add(&self.metrics.refused_total, 1);
            Err(Refusal { code, reason })
        };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return refuse(close::TOO_MANY, "edge chat at capacity");
        };
        let ip = if self.config.max_per_ip > 0 {
            match self.per_ip.try_acquire(peer) {
                Some(p) => Some(p),
                None => return refuse(close::TOO_MANY, "too many connections from this address"),
            }
        } else {
            None
        };
        let me = match (token, &self.secret) {
            (None, _) if self.config.anonymous_read => None,
            (None, _) => return refuse(close::UNAUTHENTICATED, "chat token required"),
            (Some(_), None) => {
                return refuse(close::UNAUTHENTICATED, "chat tokens are not configured")
            }
            (Some(t), Some(secret)) => match verify_chat(secret, t, now_ms() / 1000) {
                Ok(c) if c.stream != stream => {
                    return refuse(close::FORBIDDEN, "token is for another stream")
                }
                Ok(c) => Some(Me {
                    user: c.user,
                    name: c.name,
                    role: c.role,
                }),
                Err(KeyError::Expired { .. }) => {
                    return refuse(close::UNAUTHENTICATED, "token expired")
                }
                Err(_) => return refuse(close::UNAUTHENTICATED, "invalid chat token"),
            },
        };
        Ok(Admission {
            stream: stream.to_owned(),
            me,
            _ip: ip,
            _slot: slot,
        })
    }

    /// Runs an upgraded connection: the refusal as its close frame, or
    /// the session.
    pub async fn serve<S>(&self, mut ws: WebSocketStream<S>, admitted: Result<Admission, Refusal>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match admitted {
            Err(r) => {
                session::close_with(&mut ws, r.code, r.reason, self.config.send_timeout).await;
            }
            Ok(admission) => {
                let m = &self.metrics;
                ChatMetrics::add(&m.connections_total, 1);
                m.connections
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let span = tracing::debug_span!("chat", stream = %admission.stream);
                let _entered = span.enter();
                session::run(self, &mut ws, &admission).await;
                m.connections
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// [`Chat::serve`] on a raw upgraded connection (HTTP/1.1 after 101,
    /// or an HTTP/2 extended CONNECT stream): the WebSocket framing starts
    /// at once, no handshake bytes are read.
    pub async fn serve_upgraded<S>(&self, io: S, admitted: Result<Admission, Refusal>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(self.ws_config())).await;
        self.serve(ws, admitted).await;
    }

    /// Moderation from the API: delete a message, ban or unban a user.
    pub async fn moderate(&self, stream: &str, action: EntryKind) -> Result<(), RelayError> {
        self.relay.publish(&self.rooms, stream, action).await
    }

    /// Mints a chat token for the API.
    pub fn mint(
        &self,
        stream: &str,
        user: &str,
        name: &str,
        role: ChatRole,
        ttl: Duration,
    ) -> Result<String, ChatError> {
        let secret = self.secret.as_deref().ok_or(ChatError::NoSecret)?;
        let claims = livecdn_shared::auth::ChatClaims {
            stream: stream.into(),
            user: user.into(),
            name: name.into(),
            role,
            expires: now_ms() / 1000 + ttl.as_secs(),
        };
        livecdn_shared::auth::sign_chat(secret, &claims).map_err(ChatError::Claims)
    }
}

/// Refreshes every open room's viewer count (this edge's, summed across
/// edges through Redis) until the service stops.
async fn count_viewers(chat: Arc<Chat>, local: LocalViewers) {
    let mut tick = tokio::time::interval(VIEWERS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = chat.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for room in chat.rooms.all() {
            if room.opened.get().is_none() {
                continue;
            }
            let here = local(&room.stream);
            match chat.relay.viewers(&room.stream, here).await {
                Ok(n) => room.set_viewers(n),
                Err(e) => {
                    ChatMetrics::add(&chat.metrics.relay_errors, 1);
                    tracing::debug!(stream = %room.stream, error = %e, "chat viewer count not shared");
                    room.set_viewers(here);
                }
            }
        }
    }
}
