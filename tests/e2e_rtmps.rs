//! RTMP over TLS against a real origin process: ffmpeg publishes to
//! `rtmps://` with a signed key and the stream plays; a client speaking
//! plain RTMP to the RTMPS port gets no RTMP handshake back and is closed.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::http::{get, wait_master, wait_ok};
use support::{have, key, Ffmpeg, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rtmps_origin() -> (Origin, std::net::SocketAddr) {
    let origin = Origin::start(&["--rtmps-listen", "127.0.0.1:0", "--ladder", "source"]);
    let rtmps = origin.rtmps.expect("rtmps= on the listening line");
    assert_ne!(rtmps, origin.rtmp);
    (origin, rtmps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_rtmps_with_a_signed_key_and_the_stream_plays() {
    if !have("ffmpeg") {
        return;
    }
    let (origin, rtmps) = rtmps_origin();
    let _ff = Ffmpeg::publish(&format!("rtmps://{rtmps}/live/{}", key("secure")), 30);
    let (_, variants, _) = wait_master(
        &origin.url("/live/secure/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(variants, ["source"], "{}", origin.log());
    let playlist = wait_ok(
        &origin.url("/live/secure/source/index.m3u8"),
        Duration::from_secs(10),
    )
    .await
    .text();
    let part = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .and_then(|attrs| attrs.split("URI=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no part in {playlist}"));
    let media = get(&origin.url(&format!("/live/secure/source/{part}"))).await;
    assert_eq!(media.status, 200);
    // A CMAF part: a movie fragment, then its media data.
    assert_eq!(&media.body[4..8], b"moof", "{part}");
    assert!(media.body.windows(4).any(|w| w == b"mdat"));
    // The session was the TLS one.
    support::wait_log(&origin, "transport=\"rtmps\"", Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_rtmp_client_on_the_rtmps_port_is_refused() {
    let (origin, rtmps) = rtmps_origin();
    let mut s = TcpStream::connect(rtmps).await.unwrap();
    // C0 (version 3) and C1, as any RTMP client opens.
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    s.write_all(&c0c1).await.unwrap();
    // Whatever comes back (at most a TLS alert) is not S0, and then the
    // server closes the connection.
    let mut back = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut back)).await;
    assert!(read.is_ok(), "still open after 10 s\n{}", origin.log());
    assert_ne!(back.first(), Some(&3u8), "an RTMP handshake came back");
    assert!(back.len() < 64, "{} bytes came back", back.len());
    support::wait_log(&origin, "reason=tls:", Duration::from_secs(5)).await;
    // The plain port still speaks RTMP.
    let mut plain = TcpStream::connect(origin.rtmp).await.unwrap();
    plain.write_all(&c0c1).await.unwrap();
    let mut s0 = [0u8; 1];
    plain.read_exact(&mut s0).await.unwrap();
    assert_eq!(s0[0], 3);
}
