//! The RTMP listener under hostile clients, against a real origin process:
//! a client that completes the handshake and then trickles a byte every 9 s
//! is closed at the publish deadline; a thousand of them from one address
//! (127.0.0.2) leave a real ffmpeg publisher on another (127.0.0.1) free to
//! publish; a message declared larger than the pre-authentication budget is
//! refused at its header.
//!
//! Every wait is bounded; nothing sleeps for a fixed time to let the server
//! catch up (the trickle's pauses are the attack itself).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};
use support::http::wait_master;
use support::{connect_from, have, key, wait_closed, Ffmpeg, Origin, TempConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The original-spec handshake: C0+C1, read S0+S1+S2, send C2 = S1.
/// `None` when the server closed the connection instead.
async fn handshake(mut s: TcpStream) -> Option<TcpStream> {
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    c0c1[1..9].fill(0);
    s.write_all(&c0c1).await.ok()?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut s0s1s2))
        .await
        .ok()?
        .ok()?;
    s.write_all(&s0s1s2[1..1537]).await.ok()?;
    Some(s)
}

/// Sends one byte of a chunk header every `every`, until the server closes
/// the connection or `limit` passes; returns when it closed, from the first
/// byte.
async fn trickle(mut s: TcpStream, every: Duration, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < limit {
        // 0x03: a format-0 header on chunk stream 3, never completed.
        if s.write_all(&[0x03]).await.is_err() {
            return Some(start.elapsed());
        }
        match tokio::time::timeout(every, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_a_byte_every_9s_is_closed_at_the_publish_deadline() {
    // Defaults: idle timeout 10 s per read, publish deadline 10 s.
    let origin = Origin::start(&[]);
    let s = connect_from([127, 0, 0, 1], origin.rtmp).await.unwrap();
    let connected = Instant::now();
    let s = handshake(s).await.expect("handshake");
    let closed = trickle(s, Duration::from_secs(9), Duration::from_secs(30)).await;
    let after = connected.elapsed();
    assert!(
        closed.is_some(),
        "still open after 30 s of trickling\n{}",
        origin.log()
    );
    // Each read came well inside the idle timeout, so only the publish
    // deadline (10 s from the connection) can have closed it, and its log
    // line says so.
    assert!(
        after >= Duration::from_secs(9) && after < Duration::from_secs(19),
        "closed after {after:?}"
    );
    let log = support::wait_log(&origin, "no publish within 10s", Duration::from_secs(5)).await;
    assert!(!log.contains("idle for"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_trickling_clients_from_one_address_do_not_lock_out_a_publisher() {
    if !have("ffmpeg") {
        return;
    }
    // A global cap of 64: without the per-address cap the flood alone
    // would hold every slot.
    let config = TempConfig::new(
        "flood",
        "[ingest]\nmax_connections = 64\nmax_connections_per_ip = 16\npublish_timeout = \"30s\"\n",
    );
    let origin = Origin::start(&["--config", config.arg(), "--ladder", "source"]);
    let rtmp = origin.rtmp;
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        flood.spawn(async move {
            let s = connect_from([127, 0, 0, 2], rtmp).await.ok()?;
            let s = handshake(s).await?;
            // Held open, trickling, for the rest of the test.
            trickle(s, Duration::from_secs(9), Duration::from_secs(60)).await
        });
    }
    // The flood is in place once the origin has refused what it will not
    // hold: at least 1000 - 16 refusals at accept.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let metrics = support::http::get(&origin.url("/metrics")).await.text();
        let refused: u64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("livecdn_origin_connections_refused_total")
                    && l.contains("limit=\"per_ip\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if refused >= 1000 - 16 || Instant::now() > deadline {
            break refused;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused >= 1000 - 16,
        "only {refused} refused\n{}",
        origin.log()
    );
    assert_eq!(
        support::http::get(&origin.url("/metrics"))
            .await
            .text()
            .lines()
            .filter(|l| l.contains("limit=\"global\""))
            .count(),
        0,
        "the flood reached the global cap"
    );

    // A real publisher on 127.0.0.1 gets in and its stream plays.
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("real")), 30);
    let (_, variants, _) = wait_master(
        &origin.url("/live/real/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(variants, ["source"]);
    let playlist = support::http::wait_ok(
        &origin.url("/live/real/source/index.m3u8"),
        Duration::from_secs(10),
    )
    .await
    .text();
    assert!(playlist.contains("#EXT-X-PART:"), "{playlist}");
    flood.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_declared_past_the_pre_auth_budget_is_refused_at_its_header() {
    let origin = Origin::start(&[]);
    // The largest length RTMP can declare (24 bits: 16 MiB), as video on
    // chunk stream 6, before any connect or publish; no payload follows.
    let s = connect_from([127, 0, 0, 1], origin.rtmp).await.unwrap();
    let mut s = handshake(s).await.expect("handshake");
    s.write_all(&[0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0])
        .await
        .unwrap();
    let closed = wait_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "not closed\n{}", origin.log());
    support::wait_log(
        &origin,
        "message type 9 of 16777215 bytes exceeds 4096",
        Duration::from_secs(5),
    )
    .await;
}
