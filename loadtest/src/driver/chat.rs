//! `livecdn loadtest chat`: N chat clients spread over one or more edges'
//! rooms (`ws://HOST:PORT/live/STREAM/chat`), some of which send load
//! messages at a given total rate, and every client counts what it gets
//! ([`super::chat_tally`]): delivery latency, loss, duplicates.
//!
//! Clients join first (bounded wait), then the messages go out, then the
//! run waits until every joined client has every relayed message or the
//! drain time ends. Chat tokens are minted with `--secret` for users
//! `load0`, `load1`, ...; each sender sends at most `rate / senders` a
//! second, so with the default of one sender per message a second, the
//! edges' default per-connection rate limit is kept.

use super::chat_tally::{self, ChatReport, ClientTally};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use livecdn_shared::auth::{sign_chat, ChatClaims, ChatRole};
use livecdn_shared::chat::ServerEvent;
use livecdn_shared::route::{LiveObject, Route};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// What to run.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Rooms' URLs, `ws://HOST:PORT/live/STREAM/chat`; clients go to them
    /// in turn.
    pub urls: Vec<String>,
    pub clients: usize,
    /// Load messages in all.
    pub messages: u32,
    /// Load messages a second, all senders together.
    pub rate: f64,
    /// Clients that send (the first ones); 0: one per message a second.
    pub senders: usize,
    /// Mints the clients' chat tokens; without it clients join read-only
    /// (where the edge allows it) and nobody can send.
    pub secret: Option<String>,
    /// After the last message, wait at most this long for deliveries.
    pub drain: Duration,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A room URL's `host:port` and stream.
fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow::anyhow!("{url}: the harness speaks ws:// to 127.0.0.1"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("{url}: no path"))?;
    let path = format!("/{}", path.split('?').next().unwrap_or(path));
    match Route::parse(&path) {
        Some(Route::Live {
            stream,
            object: LiveObject::Chat,
        }) => Ok((host.to_owned(), stream.to_owned())),
        _ => anyhow::bail!("{url}: not a /live/STREAM/chat URL"),
    }
}

/// Counters every client task updates.
#[derive(Default)]
struct Shared {
    joined: AtomicUsize,
    delivered: AtomicU64,
    refused: AtomicU64,
    closed: AtomicUsize,
    first_close: std::sync::Mutex<Option<String>>,
}

/// One client: connects, joins, sends what `say` brings, and tallies load
/// messages until `stop`.
async fn client(
    host: String,
    url: String,
    shared: Arc<Shared>,
    mut say: mpsc::UnboundedReceiver<u32>,
    stop: CancellationToken,
) -> Option<(ClientTally, Histogram<u64>)> {
    let tcp = tokio::net::TcpStream::connect(&host).await.ok()?;
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.ok()?;
    let (mut sink, mut stream) = ws.split();
    let mut tally = ClientTally::default();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok()?;
    let mut joined = false;
    // Only senders keep their channel's sender: the others' closes at
    // once, and must not be polled again.
    let mut speaking = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            seq = say.recv(), if joined && speaking => {
                let Some(seq) = seq else {
                    speaking = false;
                    continue;
                };
                let json = serde_json::json!({"type": "message", "text": chat_tally::message_text(seq, now_us())});
                if sink.send(Message::text(json.to_string())).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        let why = c.map(|c| format!("{} {}", u16::from(c.code), c.reason)).unwrap_or_default();
                        shared.first_close.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why);
                        break;
                    }
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => break,
                };
                match serde_json::from_str::<ServerEvent>(text.as_str()) {
                    Ok(ServerEvent::Join { .. }) if !joined => {
                        joined = true;
                        shared.joined.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerEvent::Message(m)) => {
                        if let Some((seq, sent)) = chat_tally::parse_text(&m.text) {
                            let before = tally.received;
                            tally.record(seq);
                            if tally.received > before {
                                shared.delivered.fetch_add(1, Ordering::Relaxed);
                                let _ = latency.record(now_us().saturating_sub(sent).max(1));
                            }
                        }
                    }
                    Ok(ServerEvent::Error { .. }) => {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
    }
    joined.then_some((tally, latency))
}

/// Polls `done` every 20 ms until it holds or `limit` passes.
async fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

pub async fn run(opts: ChatOptions) -> anyhow::Result<ChatReport> {
    anyhow::ensure!(!opts.urls.is_empty(), "at least one room URL");
    anyhow::ensure!(opts.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(opts.rate > 0.0, "--rate must be positive");
    let rooms: Vec<(String, String, String)> = opts
        .urls
        .iter()
        .map(|u| parse_url(u).map(|(h, s)| (h, s, u.clone())))
        .collect::<anyhow::Result<_>>()?;
    let senders = match opts.senders {
        0 => (opts.rate.ceil() as usize).max(1),
        n => n,
    }
    .min(opts.clients);
    let shared = Arc::new(Shared::default());
    let stop = CancellationToken::new();
    let start = Instant::now();
    let expires = now_us() / 1_000_000 + 86_400;
    let mut tasks = Vec::with_capacity(opts.clients);
    let mut mouths = Vec::with_capacity(senders);
    for i in 0..opts.clients {
        let (host, stream, url) = &rooms[i % rooms.len()];
        let url = match &opts.secret {
            Some(secret) => {
                let claims = ChatClaims {
                    stream: stream.clone(),
                    user: format!("load{i}"),
                    name: format!("load {i}"),
                    role: ChatRole::Viewer,
                    expires,
                };
                let token = sign_chat(secret.as_bytes(), &claims)?;
                format!("{url}?token={token}")
            }
            None => url.clone(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        if i < senders {
            mouths.push(tx);
        }
        tasks.push(tokio::spawn(client(
            host.clone(),
            url,
            shared.clone(),
            rx,
            stop.clone(),
        )));
    }
    let all_joined = wait_for(Duration::from_secs(60), || {
        shared.joined.load(Ordering::Relaxed) >= opts.clients
    })
    .await;
    if !all_joined {
        tracing::warn!(
            joined = shared.joined.load(Ordering::Relaxed),
            clients = opts.clients,
            "not every client joined within 60 s; sending anyway"
        );
    }
    let joined = shared.joined.load(Ordering::Relaxed) as u64;
    let sending = tokio::time::Instant::now();
    let cpu0 = super::monitor::cpu_seconds();
    for seq in 0..opts.messages {
        tokio::time::sleep_until(sending + Duration::from_secs_f64(f64::from(seq) / opts.rate))
            .await;
        let _ = mouths[seq as usize % mouths.len()].send(seq);
    }
    let sent = u64::from(opts.messages);
    wait_for(opts.drain, || {
        let refused = shared.refused.load(Ordering::Relaxed);
        shared.delivered.load(Ordering::Relaxed) >= sent.saturating_sub(refused) * joined
    })
    .await;
    let busy = match (cpu0, super::monitor::cpu_seconds()) {
        (Some(a), Some(b)) => 100.0 * (b - a) / sending.elapsed().as_secs_f64().max(1e-3),
        _ => 0.0,
    };
    stop.cancel();
    let mut tallies = Vec::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for t in tasks {
        if let Ok(Some((tally, h))) = t.await {
            tallies.push(tally);
            latency.add(&h)?;
        }
    }
    let first_close = shared
        .first_close
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(chat_tally::report(
        opts.clients,
        &tallies,
        sent,
        shared.refused.load(Ordering::Relaxed),
        &latency,
        shared.closed.load(Ordering::Relaxed),
        first_close,
        start.elapsed().as_secs_f64(),
        busy,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn room_urls() {
        assert_eq!(
            super::parse_url("ws://127.0.0.1:8081/live/cam/chat").ok(),
            Some(("127.0.0.1:8081".into(), "cam".into()))
        );
        assert!(super::parse_url("wss://h/live/cam/chat").is_err());
        assert!(super::parse_url("ws://h/live/cam/master.m3u8").is_err());
    }
}
