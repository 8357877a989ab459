//! The WHEP server on real sockets: a str0m viewer offers, connects over
//! 127.0.0.1 and receives the frames a synthetic source feeds, starting
//! with the cached keyframe.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use livecdn_shared::config::WebRtcConfig;
use livecdn_webrtc::client::Viewer;
use livecdn_webrtc::server::{FeedSink, MediaSource, RtcServer, ServerError};
use livecdn_webrtc::video::has_parameter_sets;
use livecdn_webrtc::Frame;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A stream named "cam": a keyframe every 30 frames at 30 fps, each frame
/// a few kilobytes (so keyframes span several packets).
struct Synthetic {
    follows: AtomicU64,
    stopped: Arc<AtomicU64>,
}

fn frame(i: u64) -> Frame {
    let key = i.is_multiple_of(30);
    let mut au = Vec::new();
    if key {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    au.extend(std::iter::repeat_n(
        (i % 200) as u8 + 1,
        if key { 6000 } else { 1500 },
    ));
    Frame {
        pts: i * 3000,
        keyframe: key,
        data: Arc::from(au),
        arrived: Instant::now(),
        captured: std::time::SystemTime::now(),
    }
}

impl MediaSource for Synthetic {
    /// "cam" runs until nobody watches; "short" ends after 90 frames.
    fn exists(&self, stream: &str) -> bool {
        stream == "cam" || stream == "short"
    }
    fn follow(&self, stream: &str, sink: FeedSink) -> bool {
        if !self.exists(stream) {
            return false;
        }
        let frames = if stream == "short" { 90 } else { 100_000 };
        self.follows.fetch_add(1, Ordering::Relaxed);
        let stopped = self.stopped.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(33));
            for i in 0..frames {
                tokio::select! {
                    _ = sink.cancelled() => break,
                    _ = tick.tick() => sink.send(vec![frame(i)]),
                }
            }
            if !sink.is_cancelled() {
                sink.ended().await;
            }
            stopped.fetch_add(1, Ordering::Relaxed);
        });
        true
    }
}

fn config() -> WebRtcConfig {
    WebRtcConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_sessions: 3,
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// The synthetic source and a server on it, stopped by the token.
async fn start() -> (Arc<Synthetic>, RtcServer, CancellationToken) {
    let source = Arc::new(Synthetic {
        follows: AtomicU64::new(0),
        stopped: Arc::new(AtomicU64::new(0)),
    });
    let stop = CancellationToken::new();
    let server = RtcServer::start(&config(), source.clone(), stop.clone())
        .await
        .unwrap();
    (source, server, stop)
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_connects_and_gets_a_keyframe_first_then_live_frames() {
    let (source, server, stop) = start().await;
    assert_eq!(server.candidates().len(), 1);

    // A first viewer starts the feed; a second joins mid-GOP.
    let mut seen = Vec::new();
    let mut ids = Vec::new();
    for n in 0..2 {
        let (mut v, offer) = Viewer::offer(LOCAL).await.unwrap();
        let answer = server.offer("cam", &offer).await.unwrap();
        assert!(answer.sdp.contains("H264"), "{}", answer.sdp);
        assert!(answer.sdp.contains("a=ice-lite"), "{}", answer.sdp);
        v.answer(&answer.sdp).unwrap();
        seen.push(v.seen.clone());
        ids.push(answer.session);
        tokio::spawn(v.run(stop.clone(), Duration::from_secs(60)));
        let s = seen[n].clone();
        until("frames", Duration::from_secs(20), || {
            s.frames.load(Ordering::Relaxed) >= 40
        })
        .await;
    }
    assert_eq!(
        source.follows.load(Ordering::Relaxed),
        1,
        "one feed per stream"
    );
    for s in &seen {
        let first = s.first.lock().unwrap().clone().unwrap();
        assert!(has_parameter_sets(&first), "the first frame is a keyframe");
        assert!(s.keyframes.load(Ordering::Relaxed) >= 1);
    }
    let m = &server.metrics;
    assert_eq!(m.sessions.load(Ordering::Relaxed), 2);
    assert_eq!(m.connected_total.load(Ordering::Relaxed), 2);

    // Ending both sessions stops following the stream.
    for id in &ids {
        server.close(Some("cam"), id).await.unwrap();
    }
    assert_eq!(
        server.close(Some("cam"), &ids[0]).await,
        Err(ServerError::UnknownSession)
    );
    let stopped = source.stopped.clone();
    until("the feed to stop", Duration::from_secs(5), || {
        stopped.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(m.sessions.load(Ordering::Relaxed), 0);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_asked_for_and_resent_so_every_frame_completes() {
    let (_source, server, stop) = start().await;
    let (mut v, offer) = Viewer::offer(LOCAL).await.unwrap();
    let answer = server.offer("cam", &offer).await.unwrap();
    v.answer(&answer.sdp).unwrap();
    // One RTP packet in 15 lost on the way in: about five a second.
    v.lose_every(15);
    let seen = v.seen.clone();
    tokio::spawn(v.run(stop.clone(), Duration::from_secs(60)));
    let m = server.metrics.clone();
    // NACKs are counted from str0m's stats, once a second.
    until(
        "lost packets asked for again",
        Duration::from_secs(20),
        || seen.frames.load(Ordering::Relaxed) >= 90 && m.nacks.load(Ordering::Relaxed) >= 3,
    )
    .await;
    let lost = seen.lost.load(Ordering::Relaxed);
    assert!(lost >= 10, "{lost} packets lost");
    assert_eq!(
        seen.broken.load(Ordering::Relaxed),
        0,
        "every lost packet was resent in time: no frame went missing"
    );
    assert!(seen.keyframes.load(Ordering::Relaxed) >= 3);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_and_unfinished_sessions_hold_no_state() {
    let (source, server, stop) = start().await;
    assert!(matches!(
        server.offer("cam", "v=0\r\nnot sdp").await,
        Err(ServerError::BadOffer(_))
    ));
    let (_v, offer) = Viewer::offer(LOCAL).await.unwrap();
    assert_eq!(
        server.offer("nope", &offer).await.unwrap_err(),
        ServerError::UnknownStream
    );
    // Offers that never connect: up to the limit, then refused, then
    // dropped after the connect timeout.
    for _ in 0..3 {
        let (_v, offer) = Viewer::offer(LOCAL).await.unwrap();
        server.offer("cam", &offer).await.unwrap();
    }
    let (_v, offer) = Viewer::offer(LOCAL).await.unwrap();
    assert_eq!(
        server.offer("cam", &offer).await.unwrap_err(),
        ServerError::Full
    );
    let m = server.metrics.clone();
    until(
        "unconnected sessions to go",
        Duration::from_secs(10),
        || m.sessions.load(Ordering::Relaxed) == 0,
    )
    .await;
    assert_eq!(m.connect_timeouts.load(Ordering::Relaxed), 3);
    let stopped = source.stopped.clone();
    until("the feed to stop", Duration::from_secs(5), || {
        stopped.load(Ordering::Relaxed) == 1
    })
    .await;
    // Room again.
    let (_v, offer) = Viewer::offer(LOCAL).await.unwrap();
    server.offer("cam", &offer).await.unwrap();
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_ends_its_sessions() {
    let (_source, server, stop) = start().await;
    let (mut v, offer) = Viewer::offer(LOCAL).await.unwrap();
    let answer = server.offer("short", &offer).await.unwrap();
    v.answer(&answer.sdp).unwrap();
    let seen = v.seen.clone();
    tokio::spawn(v.run(stop.clone(), Duration::from_secs(30)));
    until("frames", Duration::from_secs(20), || {
        seen.frames.load(Ordering::Relaxed) >= 10
    })
    .await;
    let m = server.metrics.clone();
    until(
        "the session to end with the stream",
        Duration::from_secs(20),
        || m.sessions.load(Ordering::Relaxed) == 0,
    )
    .await;
    assert_eq!(
        server.close(Some("short"), &answer.session).await,
        Err(ServerError::UnknownSession)
    );
    assert!(seen.frames.load(Ordering::Relaxed) <= 90);
    stop.cancel();
}
