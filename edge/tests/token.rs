//! Signed playback tokens at the edge: 403 without a valid token for the
//! stream; a token in the master URL becomes a cookie the player's later
//! requests carry; the token never reaches the cache key or the origin.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::{bounded, edge_config, FakeConfig, FakeUpstream, RunningEdge};
use livecdn_shared::auth::sign_token;
use livecdn_shared::config::EdgeRole;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "edge-token-test-secret-0123";

async fn fetch(addr: SocketAddr, path: &str, cookie: Option<&str>) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let c = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{c}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    bounded("response", s.read_to_end(&mut all)).await.unwrap();
    String::from_utf8_lossy(&all).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_live_paths_and_travel_as_a_cookie() {
    let origin = FakeUpstream::start(FakeConfig::default()).await;
    let mut config = edge_config(EdgeRole::Edge, &[origin.url()], &[]);
    config.auth.required = true;
    config.auth.secret = Some(SECRET.into());
    let edge = RunningEdge::start(config).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let good = sign_token(SECRET.as_bytes(), "cam", exp);
    let other = sign_token(SECRET.as_bytes(), "other", exp);

    let r = fetch(edge.http, "/live/cam/master.m3u8", None).await;
    assert!(r.starts_with("http/1.1 403"), "{r}");
    assert!(
        r.contains("access-control-allow-origin: *"),
        "errors carry CORS"
    );
    let r = fetch(
        edge.http,
        &format!("/live/cam/master.m3u8?token={other}"),
        None,
    )
    .await;
    assert!(
        r.starts_with("http/1.1 403"),
        "a token for another stream: {r}"
    );
    let r = fetch(edge.http, "/live/cam/master.m3u8?token=garbage", None).await;
    assert!(r.starts_with("http/1.1 403"), "{r}");
    assert_eq!(origin.total(), 0, "refused requests never reach the origin");

    let r = fetch(
        edge.http,
        &format!("/live/cam/master.m3u8?token={good}"),
        None,
    )
    .await;
    assert!(r.starts_with("http/1.1 200"), "{r}");
    let cookie_line = r.lines().find(|l| l.starts_with("set-cookie:")).unwrap();
    assert!(cookie_line.contains("path=/live/cam/"), "{cookie_line}");
    // The player's next request carries the cookie, not the token.
    let cookie = format!("livecdn_token_cam={good}");
    let r = fetch(
        edge.http,
        "/live/cam/source/index.m3u8?_HLS_msn=6&_HLS_part=1",
        Some(&cookie),
    )
    .await;
    assert!(r.starts_with("http/1.1 200"), "{r}");
    // The token is stripped before the cache and the upstream.
    assert_eq!(origin.count("/live/cam/master.m3u8"), 1);
    assert!(
        origin.counts().keys().all(|k| !k.contains("token")),
        "{:?}",
        origin.counts()
    );
    // The player page itself is public.
    let r = fetch(edge.http, "/", None).await;
    assert!(!r.starts_with("http/1.1 403"), "{r}");
    edge.stop().await;
}
