//! Cluster credentials against real processes: an origin that requires
//! them on HTTP pulls (`cluster.require_credential`) and always on push.
//!
//! * HTTP: no credential, a stream key, a viewer's token, a credential from
//!   another secret and an expired one all get 403 under `/live/`; a valid
//!   one gets the playlist; `/healthz` stays open.
//! * Push, attacked with a raw QUIC client (the edge's own pinned TLS
//!   config): subscribing and reporting viewers without a Hello, or with a
//!   Hello carrying a bad credential, gets the connection closed with code
//!   2, no object stream, and no viewer count at the origin.
//! * An edge with a valid credential plays as before, by pull and by push
//!   (its viewer report reaches the origin); an edge without one gets 403.

#![allow(clippy::unwrap_used)]

mod support;

use livecdn_shared::auth;
use livecdn_shared::push::{self, Message};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::edge::{cluster_credential, Edge};
use support::http::{get, get_with, wait_ok};
use support::{have, key, Ffmpeg, Origin, SECRET};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An origin requiring cluster credentials on pulls, push on a known
/// certificate; returns it, the push address and the certificate pin.
fn origin_requiring_credentials() -> (Origin, String, String) {
    support::edge::origin_with_push(
        "[cluster]\nrequire_credential = true",
        &["--ladder", "source"],
    )
}

async fn get_bearer(url: &str, credential: &str) -> support::http::Fetched {
    let value = format!("Bearer {credential}");
    get_with(url, &[("authorization", &value)], false).await
}

/// `/api/streams/cam`'s viewer count (the sum of edges' push reports).
async fn origin_viewers(origin: &Origin) -> Option<u64> {
    let api = get(&origin.url("/api/streams/cam")).await;
    let v: serde_json::Value = serde_json::from_slice(&api.body).ok()?;
    v["viewers"].as_u64()
}

async fn refused_push(origin: &Origin) -> u64 {
    get(&origin.url("/metrics"))
        .await
        .text()
        .lines()
        .filter(|l| {
            l.starts_with("livecdn_origin_connections_refused_total")
                && l.contains("listener=\"push\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A raw QUIC client: connects with the edge's pinned TLS config, sends
/// `frames` on the control stream, and waits for the origin to close the
/// connection. Returns the close code and how many object streams arrived.
/// A push connection (the edge's pinned TLS config) with `frames` written
/// on its control stream.
async fn push_connection(
    addr: &str,
    pin: &str,
    frames: &[Message],
) -> (quinn::Endpoint, quinn::Connection, quinn::SendStream) {
    let config =
        livecdn_edge::push::client_config(std::slice::from_ref(&pin.to_string()), false).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    let conn = endpoint
        .connect(addr.parse().unwrap(), "origin")
        .unwrap()
        .await
        .unwrap();
    let (mut ctl, _recv) = conn.open_bi().await.unwrap();
    let mut bytes = Vec::new();
    for f in frames {
        push::encode(f, &mut bytes).unwrap();
    }
    ctl.write_all(&bytes).await.unwrap();
    (endpoint, conn, ctl)
}

/// A raw QUIC client sends `frames` and waits for the origin to close the
/// connection. Returns the close code and how many object streams arrived.
async fn raw_push(addr: &str, pin: &str, frames: &[Message]) -> (Option<u64>, usize) {
    let (endpoint, conn, _ctl) = push_connection(addr, pin, frames).await;
    let mut objects = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.accept_uni()).await {
            Ok(Ok(_)) => objects += 1,
            Ok(Err(quinn::ConnectionError::ApplicationClosed(c))) => {
                break Some(c.error_code.into_inner())
            }
            Ok(Err(_)) | Err(_) => break None,
        }
    };
    endpoint.close(0u32.into(), b"");
    (code, objects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_cluster_credentials_open_the_origin_to_pulls_and_push() {
    if !have("ffmpeg") {
        return;
    }
    let (origin, push_addr, pin) = origin_requiring_credentials();
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 90);
    let valid = cluster_credential(SECRET, "edge-a");
    let master = origin.url("/live/cam/master.m3u8");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_bearer(&master, &valid).await.status != 200 {
        assert!(Instant::now() < deadline, "stream never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // HTTP pulls: every kind of wrong credential is a 403.
    let playlist = origin.url("/live/cam/source/index.m3u8");
    assert_eq!(get(&playlist).await.status, 403);
    let wrong = [
        auth::sign_key(SECRET.as_bytes(), "cam", now() + 600),
        auth::sign_token(SECRET.as_bytes(), "cam", now() + 600),
        auth::sign_cluster(b"some-other-secret-0123", "edge-a", now() + 600),
        auth::sign_cluster(SECRET.as_bytes(), "edge-a", now() - 1),
        "not-a-credential".to_string(),
    ];
    for bad in &wrong {
        let f = get_bearer(&playlist, bad).await;
        assert_eq!(f.status, 403, "{bad}: {}", f.text());
        assert!(f.header("access-control-allow-origin").is_some());
    }
    let ok = get_bearer(&playlist, &valid).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.text().contains("#EXT-X-PART:"));
    assert_eq!(get(&origin.url("/healthz")).await.status, 200);

    // Push without a Hello: subscribing and reporting viewers first.
    let attack = [
        Message::Subscribe {
            stream: "cam".into(),
        },
        Message::ViewerReport {
            stream: "cam".into(),
            viewers: 5000,
        },
    ];
    let (code, objects) = raw_push(&push_addr, &pin, &attack).await;
    assert_eq!(code, Some(2), "closed with the credential code");
    assert_eq!(objects, 0, "no object reached an unauthenticated client");
    // With a Hello whose credential is bad: the same.
    for bad in &wrong[..4] {
        let mut frames = vec![Message::Hello {
            credential: bad.clone(),
        }];
        frames.extend(attack.iter().cloned());
        let (code, objects) = raw_push(&push_addr, &pin, &frames).await;
        assert_eq!((code, objects), (Some(2), 0), "{bad}");
    }
    assert!(refused_push(&origin).await >= 5);
    assert_eq!(
        origin_viewers(&origin).await,
        None,
        "a refused report counted"
    );

    // The same raw client with a valid Hello is served objects.
    let mut frames = vec![Message::Hello {
        credential: valid.clone(),
    }];
    frames.push(Message::Subscribe {
        stream: "cam".into(),
    });
    let (endpoint, conn, _ctl) = push_connection(&push_addr, &pin, &frames).await;
    let first = tokio::time::timeout(Duration::from_secs(10), conn.accept_uni()).await;
    assert!(
        matches!(first, Ok(Ok(_))),
        "authenticated client got no object"
    );
    conn.close(0u32.into(), b"");
    endpoint.close(0u32.into(), b"");

    // A real edge with the credential plays by pull and by push, and its
    // viewer report reaches the origin.
    let edge = Edge::start(&origin, &["--push", &push_addr, "--push-spki", &pin]);
    wait_ok(&edge.url("/live/cam/master.m3u8"), Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let f = get(&edge.url("/live/cam/source/index.m3u8")).await;
        assert_eq!(f.status, 200, "{}", f.text());
        if origin_viewers(&origin).await.is_some_and(|n| n >= 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no viewer report\n{}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // An edge without one: its pulls are refused, never served from the
    // origin's media (it never learns the stream, so it never subscribes).
    let stranger = Edge::start_as(&origin, &["--push", &push_addr, "--push-spki", &pin], None);
    for path in ["/live/cam/master.m3u8", "/live/cam/source/index.m3u8"] {
        let f = get(&stranger.url(path)).await;
        assert_eq!(f.status, 403, "{path}: {}", f.text());
    }
}
