//! Chat test helpers: a real `redis-server` child, chat edges, and a
//! WebSocket chat client speaking the schema in `livecdn_shared::chat`.

use super::edge::Edge;
use futures::{SinkExt, StreamExt};
use livecdn_shared::auth::{sign_chat, ChatClaims, ChatRole};
use livecdn_shared::chat::ServerEvent;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A `redis-server` on a free port with no persistence; killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Starts on `port` (to restart where the edges expect it) and waits
    /// until it answers.
    pub fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A chat token for `user` in `stream`, signed with the tests' secret.
pub fn token(stream: &str, user: &str, role: ChatRole) -> String {
    token_until(stream, user, role, now_unix() + 3600)
}

pub fn token_until(stream: &str, user: &str, role: ChatRole, expires: u64) -> String {
    let claims = ChatClaims {
        stream: stream.into(),
        user: user.into(),
        name: format!("Name of {user}"),
        role,
        expires,
    };
    sign_chat(super::SECRET.as_bytes(), &claims).unwrap()
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An edge with chat (a config file with `chat_toml` under `[chat]`), on
/// `http` ("127.0.0.1:0" for any port), fanned out through `redis` when
/// given. No origin: chat needs none.
pub fn chat_edge(http: &str, redis: Option<&Redis>, chat_toml: &str) -> (Edge, super::TempConfig) {
    let mut text = format!("[chat]\n{chat_toml}\n");
    if let Some(r) = redis {
        text.push_str(&format!("redis = \"{}\"\n", r.url()));
    }
    let config = super::TempConfig::new("chat-edge", &text);
    let edge = Edge::start_args(
        "http://127.0.0.1:9",
        http,
        &["--config", config.arg(), "--secret", super::SECRET],
    );
    (edge, config)
}

/// What a client read.
#[derive(Debug)]
pub enum Got {
    Event(ServerEvent),
    Closed(u16, String),
}

/// A chat client over HTTP/1.1.
pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
}

impl Client {
    /// Connects to `edge`'s room for `stream`; the first thing it reads
    /// (the join, or a close) is returned beside it.
    pub async fn connect(edge: SocketAddr, stream: &str, token: Option<&str>) -> (Client, Got) {
        let mut client = Self::open(edge, stream, token).await;
        let first = client.next(Duration::from_secs(20)).await;
        (client, first)
    }

    pub async fn open(edge: SocketAddr, stream: &str, token: Option<&str>) -> Client {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        let url = format!("ws://{edge}/live/{stream}/chat{query}");
        let tcp = TcpStream::connect(edge).await.unwrap();
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let (ws, resp) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
            .await
            .unwrap();
        assert_eq!(resp.status(), 101);
        Client { ws }
    }

    /// The next event or the close, within `limit` (`None`: nothing came).
    pub async fn next(&mut self, limit: Duration) -> Got {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("nothing from the chat in {limit:?}"),
                Ok(None) => return Got::Closed(1006, "connection ended".into()),
                Ok(Some(Err(e))) => return Got::Closed(1006, e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            match frame {
                Message::Text(t) => {
                    return Got::Event(
                        serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("not a server event ({e}): {}", t.as_str())),
                    )
                }
                Message::Close(c) => {
                    let (code, reason) = c
                        .map(|c| (u16::from(c.code), c.reason.to_string()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    return Got::Closed(code, reason);
                }
                _ => continue,
            }
        }
    }

    /// The next event, which must be one.
    pub async fn event(&mut self, limit: Duration) -> ServerEvent {
        match self.next(limit).await {
            Got::Event(e) => e,
            Got::Closed(code, reason) => panic!("closed {code}: {reason}"),
        }
    }

    pub async fn say(&mut self, text: &str) {
        let json = serde_json::json!({"type": "message", "text": text}).to_string();
        self.ws.send(Message::text(json)).await.unwrap();
    }

    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }
}
