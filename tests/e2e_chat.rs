//! Viewer chat end to end: real edges (child processes), a real
//! `redis-server`, WebSocket clients on real sockets. Rooms span edges
//! through Redis Streams: every client gets every message once, in one
//! order; an edge or Redis that goes away comes back without losing what
//! was sent after; moderation reaches every edge; bad clients are closed
//! with a reason and others carry on.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use futures::StreamExt;
use livecdn_shared::auth::ChatRole;
use livecdn_shared::chat::{close, ChatMessage, ErrorCode, ServerEvent};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;
use support::chat::{chat_edge, token, Client, Got, Redis};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

fn need_redis() -> bool {
    support::have("redis-server")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A metric's value on `edge`, if it has it.
async fn metric(edge: &support::edge::Edge, name: &str) -> Option<f64> {
    let text = support::http::get(&edge.url("/metrics")).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (bounded) until `name` on `edge` satisfies `ok`.
async fn wait_metric(edge: &support::edge::Edge, name: &str, ok: impl Fn(f64) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = metric(edge, name).await;
        if v.is_some_and(&ok) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed at {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The join's history.
fn joined(got: Got) -> Vec<ChatMessage> {
    match got {
        Got::Event(ServerEvent::Join { history, v, .. }) => {
            assert_eq!(v, livecdn_shared::chat::SCHEMA_VERSION);
            history
        }
        other => panic!("expected a join, got {other:?}"),
    }
}

/// Reads until a chat message comes (skipping viewer counts).
async fn next_message(c: &mut Client) -> ChatMessage {
    loop {
        match c.event(WAIT).await {
            ServerEvent::Message(m) => return m,
            ServerEvent::ViewerCount { .. } => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Reads until an event other than a viewer count comes.
async fn next_event(c: &mut Client) -> ServerEvent {
    loop {
        match c.event(WAIT).await {
            ServerEvent::ViewerCount { .. } => continue,
            other => return other,
        }
    }
}

/// A client task: joins, says what it is told, and reports the ids and
/// texts of the messages it got, in order, once it has `want` of them;
/// `progress` counts the clients that have `want - 1`.
fn member(
    edge: SocketAddr,
    stream: &'static str,
    user: String,
    want: usize,
    progress: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> (
    mpsc::UnboundedSender<String>,
    tokio::task::JoinHandle<Vec<(String, String)>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        let t = token(stream, &user, ChatRole::Viewer);
        let (mut c, first) = Client::connect(edge, stream, Some(&t)).await;
        joined(first);
        let mut got = Vec::new();
        let mut told = true;
        while got.len() < want {
            tokio::select! {
                say = rx.recv(), if told => match say {
                    Some(text) => c.say(&text).await,
                    None => told = false,
                },
                m = next_message(&mut c) => {
                    got.push((m.id, m.text));
                    if got.len() + 1 == want {
                        progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
        got
    });
    (tx, task)
}

#[test]
fn a_thousand_clients_on_two_edges_get_every_message_once_in_one_order() {
    if !need_redis() {
        return;
    }
    let redis = Redis::start();
    let limits = "max_per_ip = 0\nrate_burst = 50\nhistory = 50";
    let (a, _ca) = chat_edge("127.0.0.1:0", Some(&redis), limits);
    let (b, _cb) = chat_edge("127.0.0.1:0", Some(&redis), limits);
    const CLIENTS: usize = 1000;
    const MESSAGES: usize = 200;
    runtime().block_on(async {
        let mut members = Vec::new();
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for i in 0..CLIENTS {
            let edge = if i % 2 == 0 { a.http } else { b.http };
            // One more than the messages: the last is a sentinel that
            // shows nothing was delivered twice after the 200th.
            members.push(member(
                edge,
                "room",
                format!("u{i}"),
                MESSAGES + 1,
                progress.clone(),
            ));
        }
        // Every client joined once the room reports them all: wait for
        // the edges' connection gauges instead.
        for edge in [&a, &b] {
            wait_metric(edge, "livecdn_edge_chat_connections", |n| {
                n >= (CLIENTS / 2) as f64
            })
            .await;
        }
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut sent = Vec::new();
        let mut who = 0;
        for m in 0..MESSAGES {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            who = (seed % CLIENTS as u64) as usize;
            let text = format!("message {m} from u{who}");
            members[who].0.send(text.clone()).unwrap();
            sent.push(text);
        }
        // The sentinel goes last in every order: once a client has all 200,
        // all 200 are in the room's log.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while progress.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no client got all messages"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        members[who].0.send("sentinel".into()).unwrap();
        sent.push("sentinel".into());
        let mut reference: Option<Vec<(String, String)>> = None;
        for (i, (_, task)) in members.into_iter().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(120), task)
                .await
                .unwrap_or_else(|_| panic!("client {i} did not get every message"))
                .unwrap();
            assert_eq!(got.len(), MESSAGES + 1);
            assert_eq!(
                got.last().unwrap().1,
                "sentinel",
                "client {i}: extra messages"
            );
            let ids: HashSet<&String> = got.iter().map(|(id, _)| id).collect();
            assert_eq!(ids.len(), got.len(), "client {i} got a message twice");
            match &reference {
                None => {
                    let texts: HashSet<&String> = got.iter().map(|(_, t)| t).collect();
                    let want: HashSet<&String> = sent.iter().collect();
                    assert_eq!(texts, want, "client {i} did not get what was sent");
                    reference = Some(got);
                }
                Some(r) => assert_eq!(&got, r, "client {i} saw another order"),
            }
        }
        let reference = reference.unwrap();
        // A client joining now gets the tail as history, in the same order.
        for edge in [a.http, b.http] {
            let (_late, first) = Client::connect(edge, "room", None).await;
            let history: Vec<(String, String)> =
                joined(first).into_iter().map(|m| (m.id, m.text)).collect();
            assert_eq!(history, reference[reference.len() - 50..].to_vec());
        }
    });
}

#[test]
fn a_restarted_edge_s_clients_rejoin_with_history_and_lose_nothing_after() {
    if !need_redis() {
        return;
    }
    let redis = Redis::start();
    let (mut a, ca) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    let (b, _cb) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    let a_addr = a.http;
    runtime().block_on(async {
        let speaker_token = token("show", "speaker", ChatRole::Viewer);
        let (mut speaker, first) = Client::connect(b.http, "show", Some(&speaker_token)).await;
        joined(first);
        let mut on_a = Vec::new();
        for i in 0..10 {
            let (c, first) = Client::connect(a_addr, "show", None).await;
            joined(first);
            on_a.push((i, c));
        }
        speaker.say("before the crash").await;
        for (_, c) in &mut on_a {
            assert_eq!(next_message(c).await.text, "before the crash");
        }
        a.kill();
        for (_, c) in &mut on_a {
            assert!(matches!(c.next(WAIT).await, Got::Closed(..)));
        }
        // Said while edge A is down: its clients get it as history.
        speaker.say("while A was down").await;
        assert_eq!(next_message(&mut speaker).await.text, "before the crash");
        assert_eq!(next_message(&mut speaker).await.text, "while A was down");
        let _a2 = support::edge::Edge::start_args(
            "http://127.0.0.1:9",
            &a_addr.to_string(),
            &["--config", ca.arg(), "--secret", support::SECRET],
        );
        let mut rejoined = Vec::new();
        for _ in 0..10 {
            let (c, first) = Client::connect(a_addr, "show", None).await;
            let history: Vec<String> = joined(first).into_iter().map(|m| m.text).collect();
            assert_eq!(history, ["before the crash", "while A was down"]);
            rejoined.push(c);
        }
        for i in 0..20 {
            speaker.say(&format!("after {i}")).await;
            // The speaker's rate: a burst of 5, then one a second; wait for
            // each to come back rather than run into the limit.
            loop {
                match next_event(&mut speaker).await {
                    ServerEvent::Message(m) if m.text == format!("after {i}") => break,
                    ServerEvent::Message(_) => continue,
                    ServerEvent::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    } => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        speaker.say(&format!("after {i}")).await;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        for c in &mut rejoined {
            for i in 0..20 {
                assert_eq!(next_message(c).await.text, format!("after {i}"));
            }
        }
    });
}

#[test]
fn redis_restart_is_survived_and_reported() {
    if !need_redis() {
        return;
    }
    let mut redis = Redis::start();
    let port = redis.port;
    let (a, _ca) = chat_edge(
        "127.0.0.1:0",
        Some(&redis),
        "max_per_ip = 0\nrate_burst = 100",
    );
    let (b, _cb) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    runtime().block_on(async {
        let t = token("show", "talker", ChatRole::Viewer);
        let (mut talker, first) = Client::connect(a.http, "show", Some(&t)).await;
        joined(first);
        let (mut listener, first) = Client::connect(b.http, "show", None).await;
        joined(first);
        talker.say("first").await;
        assert_eq!(next_message(&mut listener).await.text, "first");
        redis.kill();
        talker.say("into the void").await;
        loop {
            match next_event(&mut talker).await {
                ServerEvent::Message(m) if m.text == "first" => continue,
                ServerEvent::Error { code, .. } => {
                    assert_eq!(code, ErrorCode::RelayUnavailable);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        wait_metric(&a, "livecdn_edge_chat_unrelayed_total", |n| n >= 1.0).await;
        wait_metric(&b, "livecdn_edge_chat_relay_up", |n| n == 0.0).await;
        assert!(a.log().contains("could not be relayed"), "{}", a.log());
        assert!(b.log().contains("redis unreachable"), "{}", b.log());
        let _redis = Redis::start_on(port);
        // The same edges, not restarted: sending works again once their
        // connections are back, and what is sent reaches the other edge.
        let mut attempt = 0;
        loop {
            attempt += 1;
            assert!(attempt < 200, "never relayed after redis came back");
            talker.say(&format!("back {attempt}")).await;
            match next_event(&mut talker).await {
                ServerEvent::Message(m) if m.text.starts_with("back") => break,
                ServerEvent::Error { .. } => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("{other:?}"),
            }
        }
        let m = next_message(&mut listener).await;
        assert!(m.text.starts_with("back"), "{m:?}");
        wait_metric(&b, "livecdn_edge_chat_relay_up", |n| n == 1.0).await;
        assert!(b.log().contains("reachable again"), "{}", b.log());
    });
}

#[test]
fn moderation_reaches_both_edges() {
    if !need_redis() {
        return;
    }
    let redis = Redis::start();
    let (a, _ca) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    let (b, _cb) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    runtime().block_on(async {
        let mod_token = token("show", "mod", ChatRole::Moderator);
        let (mut moderator, first) = Client::connect(a.http, "show", Some(&mod_token)).await;
        joined(first);
        let troll_token = token("show", "troll", ChatRole::Viewer);
        let (mut troll, first) = Client::connect(b.http, "show", Some(&troll_token)).await;
        joined(first);
        let (mut watcher_a, first) = Client::connect(a.http, "show", None).await;
        joined(first);
        let (mut watcher_b, first) = Client::connect(b.http, "show", None).await;
        joined(first);

        troll.say("spam").await;
        let spam = next_message(&mut moderator).await;
        assert_eq!(spam.text, "spam");
        for c in [&mut watcher_a, &mut watcher_b, &mut troll] {
            assert_eq!(next_message(c).await.id, spam.id);
        }
        // A viewer may not delete; a moderator may.
        troll
            .send_json(serde_json::json!({"type": "delete", "id": spam.id}))
            .await;
        assert!(matches!(
            next_event(&mut troll).await,
            ServerEvent::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ));
        moderator
            .send_json(serde_json::json!({"type": "delete", "id": spam.id}))
            .await;
        for c in [&mut watcher_a, &mut watcher_b, &mut moderator] {
            assert_eq!(
                next_event(c).await,
                ServerEvent::Delete {
                    id: spam.id.clone()
                }
            );
        }
        // Gone from the history on both edges.
        for edge in [a.http, b.http] {
            let (_c, first) = Client::connect(edge, "show", None).await;
            assert!(joined(first).iter().all(|m| m.id != spam.id));
        }
        // Banned on A: refused on B, and on A when the troll moves there.
        moderator
            .send_json(serde_json::json!({"type": "ban", "user": "troll"}))
            .await;
        for c in [&mut watcher_a, &mut watcher_b] {
            assert!(matches!(next_event(c).await, ServerEvent::Ban { ref user, until: None } if user == "troll"));
        }
        assert!(matches!(next_event(&mut troll).await, ServerEvent::Delete { .. }));
        assert!(matches!(next_event(&mut troll).await, ServerEvent::Ban { .. }));
        troll.say("still here").await;
        assert!(matches!(
            next_event(&mut troll).await,
            ServerEvent::Error {
                code: ErrorCode::Banned,
                ..
            }
        ));
        let (mut troll_a, first) = Client::connect(a.http, "show", Some(&troll_token)).await;
        joined(first);
        troll_a.say("from the other edge").await;
        assert!(matches!(
            next_event(&mut troll_a).await,
            ServerEvent::Error {
                code: ErrorCode::Banned,
                ..
            }
        ));
        // The API: ban another user on B with the admin token, lifted later;
        // delete by id; mint a token.
        let tokens = support::http::send(
            "POST",
            &b.url("/api/chat/show/tokens"),
            &[],
            r#"{"user":"guest","name":"Guest","ttl":600}"#,
        )
        .await;
        assert_eq!(tokens.status, 201, "{}", tokens.text());
        let minted: serde_json::Value = serde_json::from_str(&tokens.text()).unwrap();
        let guest_token = minted["token"].as_str().unwrap().to_owned();
        let (mut guest, first) = Client::connect(a.http, "show", Some(&guest_token)).await;
        joined(first);
        guest.say("hello").await;
        let hello = next_message(&mut watcher_b).await;
        assert_eq!((hello.user.as_str(), hello.name.as_str()), ("guest", "Guest"));
        let put = support::http::send("PUT", &b.url("/api/chat/show/bans/guest"), &[], "").await;
        assert_eq!(put.status, 204, "{}", put.text());
        assert_eq!(next_message(&mut watcher_a).await.id, hello.id);
        assert_eq!(next_message(&mut guest).await.id, hello.id);
        for c in [&mut watcher_a, &mut watcher_b, &mut guest] {
            assert!(matches!(next_event(c).await, ServerEvent::Ban { ref user, .. } if user == "guest"));
        }
        guest.say("am I banned").await;
        assert!(matches!(
            next_event(&mut guest).await,
            ServerEvent::Error {
                code: ErrorCode::Banned,
                ..
            }
        ));
        let lift = support::http::send("DELETE", &a.url("/api/chat/show/bans/guest"), &[], "").await;
        assert_eq!(lift.status, 204, "{}", lift.text());
        assert!(matches!(next_event(&mut guest).await, ServerEvent::Unban { .. }));
        assert!(matches!(next_event(&mut watcher_a).await, ServerEvent::Unban { .. }));
        guest.say("free again").await;
        let free = next_message(&mut watcher_a).await;
        assert_eq!(free.text, "free again");
        let delete = support::http::send(
            "DELETE",
            &a.url(&format!("/api/chat/show/messages/{}", free.id)),
            &[],
            "",
        )
        .await;
        assert_eq!(delete.status, 204, "{}", delete.text());
        loop {
            match next_event(&mut watcher_b).await {
                ServerEvent::Delete { id } => {
                    assert_eq!(id, free.id);
                    break;
                }
                ServerEvent::Message(_) | ServerEvent::Unban { .. } => continue,
                other => panic!("{other:?}"),
            }
        }
        // Without the admin token the API is closed.
        let refused = support::http::send(
            "PUT",
            &b.url("/api/chat/show/bans/x"),
            &[("authorization", "Bearer not-the-token")],
            "",
        )
        .await;
        assert_eq!(refused.status, 401);
    });
}

#[test]
fn bad_clients_are_closed_with_a_reason_and_others_carry_on() {
    let (edge, _c) = chat_edge(
        "127.0.0.1:0",
        None,
        "anonymous_read = false\nmax_per_ip = 0\nmax_chars = 100",
    );
    runtime().block_on(async {
        let good_token = token("show", "good", ChatRole::Viewer);
        let (mut good, first) = Client::connect(edge.http, "show", Some(&good_token)).await;
        joined(first);
        let closed = |got: Got| match got {
            Got::Closed(code, reason) => (code, reason),
            other => panic!("expected a close, got {other:?}"),
        };
        // Credentials.
        let (_, got) = Client::connect(edge.http, "show", None).await;
        assert_eq!(closed(got).0, close::UNAUTHENTICATED);
        let expired = support::chat::token_until("show", "old", ChatRole::Viewer, 1_000);
        let (_, got) = Client::connect(edge.http, "show", Some(&expired)).await;
        assert_eq!(
            closed(got),
            (close::UNAUTHENTICATED, "token expired".into())
        );
        let other = token("other-stream", "u", ChatRole::Viewer);
        let (_, got) = Client::connect(edge.http, "show", Some(&other)).await;
        assert_eq!(closed(got).0, close::FORBIDDEN);
        // The signature's last digit changed.
        let (head, last) = good_token.split_at(good_token.len() - 1);
        let forged = format!("{head}{}", if last == "0" { "1" } else { "0" });
        let (_, got) = Client::connect(edge.http, "show", Some(&forged)).await;
        assert_eq!(closed(got).0, close::UNAUTHENTICATED);
        let playback =
            livecdn_shared::auth::sign_token(support::SECRET.as_bytes(), "show", u64::MAX);
        let (_, got) = Client::connect(edge.http, "show", Some(&playback)).await;
        assert_eq!(closed(got).0, close::UNAUTHENTICATED);

        // Frames: too big, not UTF-8, binary, not the schema, too long.
        let t = token("show", "bad", ChatRole::Viewer);
        let (mut c, first) = Client::connect(edge.http, "show", Some(&t)).await;
        joined(first);
        c.send_json(serde_json::json!({"type": "message", "text": "x".repeat(100_000)}))
            .await;
        assert_eq!(closed(c.next(WAIT).await).0, close::TOO_BIG);
        let (mut c, _) = Client::connect(edge.http, "show", Some(&t)).await;
        use tokio_tungstenite::tungstenite::protocol::frame::{coding, Frame};
        use tokio_tungstenite::tungstenite::Message;
        let raw = Frame::message(
            vec![0xff_u8, 0xfe, 0x22],
            coding::OpCode::Data(coding::Data::Text),
            true,
        );
        futures::SinkExt::send(&mut c.ws, Message::Frame(raw))
            .await
            .unwrap();
        assert_eq!(closed(c.next(WAIT).await).0, close::BAD_UTF8);
        let (mut c, _) = Client::connect(edge.http, "show", Some(&t)).await;
        for (raw, code) in [
            (
                r#"{"type":"message","text":"x","extra":1}"#,
                ErrorCode::BadMessage,
            ),
            (r#"["message","x"]"#, ErrorCode::BadMessage),
            ("not json", ErrorCode::BadMessage),
            (r#"{"type":"message","text":"   "}"#, ErrorCode::BadText),
            (r#"{"type":"ban","user":"good"}"#, ErrorCode::Forbidden),
        ] {
            futures::SinkExt::send(&mut c.ws, Message::text(raw))
                .await
                .unwrap();
            match next_event(&mut c).await {
                ServerEvent::Error { code: got, .. } => assert_eq!(got, code, "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
        c.say(&"y".repeat(101)).await;
        assert!(matches!(
            next_event(&mut c).await,
            ServerEvent::Error {
                code: ErrorCode::BadText,
                ..
            }
        ));
        futures::SinkExt::send(&mut c.ws, Message::binary(vec![1, 2, 3]))
            .await
            .unwrap();
        assert_eq!(closed(c.next(WAIT).await).0, close::UNSUPPORTED);

        // A flood: throttled (burst 5), then closed; the good client gets
        // only what was let through, and still talks.
        let f = token("show", "flooder", ChatRole::Viewer);
        let (mut flooder, _) = Client::connect(edge.http, "show", Some(&f)).await;
        for i in 0..100 {
            if futures::SinkExt::send(
                &mut flooder.ws,
                Message::text(format!(r#"{{"type":"message","text":"flood {i}"}}"#)),
            )
            .await
            .is_err()
            {
                break;
            }
        }
        let mut limited = 0;
        let code = loop {
            match flooder.next(WAIT).await {
                Got::Event(ServerEvent::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }) => limited += 1,
                Got::Event(_) => {}
                Got::Closed(code, _) => break code,
            }
        };
        assert_eq!(code, close::FLOOD);
        assert!(limited >= 10, "{limited} rate-limited answers");
        let mut floods = 0;
        good.say("still fine").await;
        loop {
            let m = next_message(&mut good).await;
            if m.text == "still fine" {
                break;
            }
            assert!(m.text.starts_with("flood"), "{m:?}");
            floods += 1;
        }
        assert!(floods <= 6, "{floods} flood messages let through");
        assert_eq!(
            metric(&edge, "livecdn_edge_chat_refused_total").await,
            Some(5.0)
        );

        // Not a WebSocket request at all: 426.
        let plain = support::http::get(&edge.url("/live/show/chat")).await;
        assert_eq!(plain.status, 426);
        assert_eq!(plain.header("upgrade").as_deref(), Some("websocket"));
    });
}

#[test]
fn a_client_that_never_reads_is_dropped_and_others_get_everything() {
    let (edge, _c) = chat_edge(
        "127.0.0.1:0",
        None,
        "max_per_ip = 0\nmax_chars = 2000\nrate_burst = 100000\nrate_per_second = 100000.0\nqueue = 64\nsend_timeout = \"2s\"",
    );
    runtime().block_on(async {
        // The slow client: a socket with a small receive buffer that reads
        // the handshake and then nothing.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(edge.http).await.unwrap();
        let (slow, _) =
            tokio_tungstenite::client_async(format!("ws://{}/live/show/chat", edge.http), tcp)
                .await
                .unwrap();
        let t = token("show", "talker", ChatRole::Viewer);
        let (talker, first) = Client::connect(edge.http, "show", Some(&t)).await;
        joined(first);
        let (mut reader, first) = Client::connect(edge.http, "show", None).await;
        joined(first);
        let text = "z".repeat(1900);
        const N: usize = 3000;
        // The reader and the talker read everything, and the talker sends
        // no more than 32 ahead of what the reader has: they keep up; only
        // the client that never reads falls behind.
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = read.clone();
        let read_all = tokio::spawn(async move {
            for i in 0..N {
                let m = next_message(&mut reader).await;
                assert_eq!(m.text.len(), 1900 + i.to_string().len(), "message {i}");
                counted.store(i + 1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let (mut say, mut hear) = talker.ws.split();
        let talker_hears = tokio::spawn(async move {
            let mut n = 0;
            while n < N {
                match tokio::time::timeout(WAIT, hear.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                        if t.as_str().starts_with(r#"{"type":"message""#) {
                            n += 1;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    other => panic!("talker cut off after {n}: {other:?}"),
                }
            }
        });
        for i in 0..N {
            while i >= read.load(std::sync::atomic::Ordering::Relaxed) + 32 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let json = serde_json::json!({"type": "message", "text": format!("{text}{i}")});
            futures::SinkExt::send(
                &mut say,
                tokio_tungstenite::tungstenite::Message::text(json.to_string()),
            )
            .await
            .unwrap();
        }
        read_all.await.unwrap();
        talker_hears.await.unwrap();
        wait_metric(&edge, "livecdn_edge_chat_slow_consumers_total", |n| {
            n >= 1.0
        })
        .await;
        assert_eq!(
            metric(&edge, "livecdn_edge_chat_slow_consumers_total").await,
            Some(1.0),
            "only the client that never reads"
        );
        drop(slow);
    });
}

#[test]
fn websocket_over_http2_extended_connect() {
    let (edge, _c) = chat_edge("127.0.0.1:0", None, "");
    runtime().block_on(async {
        use http_body_util::Empty;
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let tcp = tokio::net::TcpStream::connect(edge.http).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<bytes::Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        // One ordinary request first, so the server's SETTINGS (with
        // ENABLE_CONNECT_PROTOCOL) have arrived.
        let health = http::Request::get(format!("http://{}/healthz", edge.http))
            .body(Empty::new())
            .unwrap();
        assert_eq!(send.send_request(health).await.unwrap().status(), 200);
        let t = token("show", "h2user", ChatRole::Viewer);
        let mut req = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("http://{}/live/show/chat?token={t}", edge.http))
            .header("sec-websocket-version", "13")
            .body(Empty::new())
            .unwrap();
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let upgraded = hyper::upgrade::on(resp).await.unwrap();
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let join = ws.next().await.unwrap().unwrap();
        let join: ServerEvent = serde_json::from_str(join.to_text().unwrap()).unwrap();
        assert!(
            matches!(join, ServerEvent::Join { you: Some(ref me), .. } if me.user == "h2user"),
            "{join:?}"
        );
        futures::SinkExt::send(
            &mut ws,
            tokio_tungstenite::tungstenite::Message::text(r#"{"type":"message","text":"over h2"}"#),
        )
        .await
        .unwrap();
        // An HTTP/1.1 client in the same room hears it.
        let (mut h1, first) = Client::connect(edge.http, "show", None).await;
        let history = joined(first);
        let heard = match history.last() {
            Some(m) => m.clone(),
            None => next_message(&mut h1).await,
        };
        assert_eq!(
            (heard.user.as_str(), heard.text.as_str()),
            ("h2user", "over h2")
        );
    });
}

/// Runs `livecdn loadtest chat` against `urls`; its JSON report.
fn loadtest_chat(urls: &[String], extra: &[&str]) -> serde_json::Value {
    let json = std::env::temp_dir().join(format!(
        "livecdn-e2e-chat-{}-{}.json",
        std::process::id(),
        urls.len()
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_livecdn"))
        .args(["loadtest", "chat"])
        .args(urls)
        .args([
            "--secret",
            support::SECRET,
            "--json",
            json.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&report).unwrap()
}

#[test]
fn loadtest_chat_measures_delivery_and_sees_loss() {
    if !need_redis() {
        return;
    }
    let redis = Redis::start();
    let (a, _ca) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    let (b, _cb) = chat_edge("127.0.0.1:0", Some(&redis), "max_per_ip = 0");
    let urls = [a.http, b.http].map(|h| format!("ws://{h}/live/load/chat"));
    let args = [
        "--clients",
        "100",
        "--messages",
        "30",
        "--rate",
        "30",
        "--drain",
        "20s",
    ];
    let r = loadtest_chat(&urls, &args);
    assert_eq!(r["joined"], 100, "{r}");
    assert_eq!(r["relayed"], 30, "{r}");
    assert_eq!(r["delivered"], 3000, "{r}");
    assert_eq!(
        (r["lost"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert!(r["latencyMsP50"].as_f64().unwrap() > 0.0, "{r}");
    // Two edges that share no Redis: half the clients miss half the
    // messages, and the harness says so.
    let (c, _cc) = chat_edge("127.0.0.1:0", None, "max_per_ip = 0");
    let (d, _cd) = chat_edge("127.0.0.1:0", None, "max_per_ip = 0");
    let urls = [c.http, d.http].map(|h| format!("ws://{h}/live/load/chat"));
    let args = [
        "--clients",
        "20",
        "--messages",
        "10",
        "--rate",
        "10",
        "--drain",
        "2s",
    ];
    let r = loadtest_chat(&urls, &args);
    assert_eq!(r["relayed"], 10, "{r}");
    assert_eq!(r["lost"], 100, "{r}");
}
