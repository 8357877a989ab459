//! HTTP listeners under clients that hold connections, against real
//! processes: the origin caps connections per client address (a fifth from
//! 127.0.0.2 is closed at once while 127.0.0.1 is served) and closes
//! keep-alive connections that went idle; the edge closes an HTTP/2
//! connection on which nothing moves (no keep-alive pings keep it busy).
//!
//! Waits are on the server closing the socket, bounded; the idle periods
//! are the behaviour under test.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};
use support::edge::Edge;
use support::{connect_from, wait_closed, Origin, TempConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 keep-alive request for `/healthz`; the answer's bytes, or
/// none if the server closed the connection instead.
async fn healthz(s: &mut TcpStream) -> Option<String> {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .ok()?;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn refused(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("livecdn_origin_connections_refused_total")
                && l.contains("listener=\"http\"")
                && l.contains("limit=\"per_ip\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_caps_connections_per_address_and_closes_idle_ones() {
    let config = TempConfig::new(
        "origin",
        "[http]\nmax_connections_per_ip = 4\nidle_timeout = \"5s\"\n",
    );
    let origin = Origin::start(&["--config", config.arg()]);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from([127, 0, 0, 2], origin.http).await.unwrap();
        let answer = healthz(&mut s).await.expect("served");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(s);
    }
    let served_at = Instant::now();
    // A fifth from the same address is closed without an answer...
    let mut fifth = connect_from([127, 0, 0, 2], origin.http).await.unwrap();
    assert_eq!(healthz(&mut fifth).await, None);
    // ...and counted, while another address is served.
    let metrics = support::http::get(&origin.url("/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert!(refused(&metrics.text()) >= 1, "{}", metrics.text());

    // The four go quiet: each is closed once idle for 5 s (sampled every
    // 1.25 s), not before.
    for mut s in held {
        let closed = wait_closed(&mut s, Duration::from_secs(20)).await;
        let after = served_at.elapsed();
        assert!(closed.is_some(), "idle connection still open after 20 s");
        assert!(after >= Duration::from_secs(4), "closed after {after:?}");
    }
    support::wait_log(&origin, "idle connection closed", Duration::from_secs(5)).await;
    // With them gone, the address is served again.
    let mut again = connect_from([127, 0, 0, 2], origin.http).await.unwrap();
    assert!(healthz(&mut again).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_closes_an_http2_connection_on_which_nothing_moves() {
    let origin = Origin::start(&[]);
    let config = TempConfig::new(
        "edge",
        "[upstream]\norigins = [\"http://127.0.0.1:1\"]\n[listen]\nidle_timeout = \"5s\"\n",
    );
    let edge = Edge::start(&origin, &["--config", config.arg()]);
    let mut s = TcpStream::connect(edge.http).await.unwrap();
    // Prior-knowledge h2c: the preface and an empty SETTINGS frame, then
    // one request's worth of nothing: the client says no more.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut frame = [0u8; 9];
    s.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[3], 4, "the server's SETTINGS come first");
    let opened = Instant::now();
    let closed = wait_closed(&mut s, Duration::from_secs(20)).await;
    assert!(
        closed.is_some(),
        "idle h2 connection still open\n{}",
        edge.log()
    );
    let after = opened.elapsed();
    assert!(after >= Duration::from_secs(4), "closed after {after:?}");
    assert!(
        edge.log().contains("idle connection closed"),
        "{}",
        edge.log()
    );
}
