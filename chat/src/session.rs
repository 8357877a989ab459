//! One client's connection, after the upgrade: join the room, then relay
//! the room's events out and the client's messages in, until either side
//! ends it.
//!
//! Bounded everywhere: the room's broadcast channel holds at most
//! `chat.queue` events for the slowest client, which is closed as a slow
//! consumer when it falls further behind or takes longer than
//! `chat.send_timeout` to take a write; frames are capped by the
//! WebSocket config ([`crate::ws_config`]); messages are rate-limited per
//! connection, and a client refused `FLOOD_REFUSALS` times in a row is
//! closed.

use crate::entry::EntryKind;
use crate::id::EntryId;
use crate::limit::TokenBucket;
use crate::metrics::ChatMetrics;
use crate::relay::now_ms;
use crate::room::render;
use crate::{Admission, Chat};
use futures::{SinkExt, StreamExt};
use livecdn_shared::auth::{valid_chat_user, ChatRole};
use livecdn_shared::chat::{check_text, close, ClientMsg, ErrorCode, ServerEvent};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Refused messages in a row before the client is closed as a flood.
const FLOOD_REFUSALS: u32 = 20;
/// Events written in one flush at most (the rest wait for the next turn,
/// so reading the client is not starved).
const BATCH: usize = 64;

/// Why the loop ended, for the close frame.
struct Ending {
    code: u16,
    reason: &'static str,
}

impl Ending {
    fn new(code: u16, reason: &'static str) -> Option<Ending> {
        Some(Ending { code, reason })
    }
}

/// Sends a close frame and reads what the client still sends until its
/// close reply (the closing handshake), bounded in time. Dropping the
/// socket with unread input would reset it, and a reset can destroy the
/// close frame before the client reads it.
pub(crate) async fn close_with<S>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
    limit: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason.to_owned()),
    };
    let _ = tokio::time::timeout(limit, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

pub(crate) async fn run<S>(chat: &Chat, ws: &mut WebSocketStream<S>, admission: &Admission)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &chat.config;
    let limit = config.send_timeout;
    let Some(membership) = chat.rooms.enter(&admission.stream, config.max_per_room) else {
        ChatMetrics::add(&chat.metrics.refused_total, 1);
        close_with(ws, close::TOO_MANY, "room full", limit).await;
        return;
    };
    let room = membership.room.clone();
    let opened = room
        .opened
        .get_or_try_init(|| async {
            let r = chat.relay.open(&room).await;
            chat.rooms.changed.notify_one();
            r
        })
        .await;
    if let Err(e) = opened {
        tracing::warn!(stream = %admission.stream, error = %e, "chat room could not be opened");
        ChatMetrics::add(&chat.metrics.relay_errors, 1);
        close_with(ws, 1013, "chat unavailable, try again", limit).await;
        return;
    }
    let (join, mut rx) = room.subscribe(admission.me.as_ref());
    if !matches!(
        tokio::time::timeout(limit, ws.send(Message::Text(join))).await,
        Ok(Ok(()))
    ) {
        return;
    }
    ChatMetrics::add(&chat.metrics.delivered, 1);
    let mut bucket = TokenBucket::new(config.rate_burst, config.rate_per_second, Instant::now());
    let mut refusals = 0u32;
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut heard = Instant::now();
    let ending = loop {
        tokio::select! {
            _ = chat.stop.cancelled() => break Ending::new(close::GOING_AWAY, "edge shutting down"),
            frame = ws.next() => {
                heard = Instant::now();
                let msg = match frame {
                    None => break None,
                    Some(Ok(m)) => m,
                    Some(Err(e)) => break ending_for(&e),
                };
                match msg {
                    Message::Text(text) => {
                        match handle(chat, admission, &room.stream, &mut bucket, text.as_str()).await {
                            Ok(()) => refusals = 0,
                            Err(code) => {
                                ChatMetrics::add(&chat.metrics.messages_refused, 1);
                                refusals += 1;
                                if refusals >= FLOOD_REFUSALS {
                                    break Ending::new(close::FLOOD, "too many refused messages");
                                }
                                let event = render(&ServerEvent::Error { code, message: explain(code).into() });
                                if !matches!(tokio::time::timeout(limit, ws.send(Message::Text(event))).await, Ok(Ok(()))) {
                                    break None;
                                }
                            }
                        }
                    }
                    Message::Binary(_) => break Ending::new(close::UNSUPPORTED, "binary frames are not part of the chat schema"),
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            event = rx.recv() => {
                let first = match event {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => {
                        ChatMetrics::add(&chat.metrics.slow_consumers, 1);
                        break Ending::new(close::SLOW_CONSUMER, "slow consumer");
                    }
                    Err(RecvError::Closed) => break None,
                };
                match tokio::time::timeout(limit, write_batch(ws, first, &mut rx)).await {
                    Ok(Ok(n)) => ChatMetrics::add(&chat.metrics.delivered, n),
                    Ok(Err(_)) => break None,
                    Err(_) => {
                        ChatMetrics::add(&chat.metrics.slow_consumers, 1);
                        break Ending::new(close::SLOW_CONSUMER, "slow consumer");
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > config.ping_interval * 2 {
                    break Ending::new(close::TIMEOUT, "no answer to pings");
                }
                if !matches!(tokio::time::timeout(limit, ws.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                    break None;
                }
            }
        }
    };
    if let Some(Ending { code, reason }) = ending {
        tracing::debug!(stream = %admission.stream, code, reason, "chat connection closed");
        close_with(ws, code, reason, Duration::from_secs(1)).await;
    }
}

/// Writes `first` and whatever else is queued (up to [`BATCH`]), then
/// flushes once.
async fn write_batch<S>(
    ws: &mut WebSocketStream<S>,
    first: Utf8Bytes,
    rx: &mut tokio::sync::broadcast::Receiver<Utf8Bytes>,
) -> Result<u64, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.feed(Message::Text(first)).await?;
    let mut n = 1;
    while n < BATCH as u64 {
        match rx.try_recv() {
            Ok(e) => {
                ws.feed(Message::Text(e)).await?;
                n += 1;
            }
            // A lag shows again at the next `recv`, where it is handled.
            Err(_) => break,
        }
    }
    ws.flush().await?;
    Ok(n)
}

fn ending_for(e: &WsError) -> Option<Ending> {
    match e {
        WsError::Capacity(_) => Ending::new(close::TOO_BIG, "frame or message too big"),
        WsError::Utf8(_) => Ending::new(close::BAD_UTF8, "text frame is not UTF-8"),
        WsError::Protocol(_) => Ending::new(1002, "protocol error"),
        _ => None,
    }
}

fn explain(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadMessage => "not a chat message of this schema",
        ErrorCode::BadText => "text must be 1 to the limit of characters, no control characters",
        ErrorCode::RateLimited => "too many messages: wait a moment",
        ErrorCode::Forbidden => "not allowed with this token",
        ErrorCode::Banned => "banned from this room",
        ErrorCode::RelayUnavailable => "chat relay unavailable: not sent",
    }
}

/// Acts on one client text frame.
async fn handle(
    chat: &Chat,
    admission: &Admission,
    stream: &str,
    bucket: &mut TokenBucket,
    text: &str,
) -> Result<(), ErrorCode> {
    let msg = ClientMsg::parse(text)?;
    let me = admission.me.as_ref().ok_or(ErrorCode::Forbidden)?;
    let now_unix = now_ms() / 1000;
    let kind = match msg {
        ClientMsg::Message { text } => {
            if chat
                .rooms
                .get(stream)
                .is_some_and(|r| r.state().banned(&me.user, now_unix))
            {
                return Err(ErrorCode::Banned);
            }
            check_text(&text, chat.config.max_chars)?;
            bucket
                .take(Instant::now())
                .map_err(|_| ErrorCode::RateLimited)?;
            EntryKind::Message {
                user: me.user.clone(),
                name: me.name.clone(),
                role: me.role,
                text,
                ts: now_ms(),
            }
        }
        ClientMsg::Delete { id } if me.role == ChatRole::Moderator => EntryKind::Delete {
            target: id.parse::<EntryId>().map_err(|_| ErrorCode::BadMessage)?,
        },
        ClientMsg::Ban { user, seconds } if me.role == ChatRole::Moderator => {
            if !valid_chat_user(&user) {
                return Err(ErrorCode::BadMessage);
            }
            EntryKind::Ban {
                user,
                until: seconds.map(|s| now_unix.saturating_add(s)),
            }
        }
        ClientMsg::Unban { user } if me.role == ChatRole::Moderator => EntryKind::Unban { user },
        ClientMsg::Delete { .. } | ClientMsg::Ban { .. } | ClientMsg::Unban { .. } => {
            return Err(ErrorCode::Forbidden)
        }
    };
    let is_message = matches!(kind, EntryKind::Message { .. });
    match chat.relay.publish(&chat.rooms, stream, kind).await {
        Ok(()) => {
            if is_message {
                ChatMetrics::add(&chat.metrics.messages_in, 1);
            }
            Ok(())
        }
        Err(e) => {
            ChatMetrics::add(&chat.metrics.unrelayed, 1);
            ChatMetrics::add(&chat.metrics.relay_errors, 1);
            tracing::warn!(stream, error = %e, "chat message could not be relayed");
            Err(ErrorCode::RelayUnavailable)
        }
    }
}
