//! HTTP/3 through the edge: an h3 client gets the same master playlist,
//! media playlists, init and parts the origin served, and responses on TCP
//! advertise the HTTP/3 port with `Alt-Svc`.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::client::{get, h2_get, h2_tls_connect, H3Client};
use common::{edge_config_tls, FakeConfig, FakeUpstream, RunningEdge};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_client_gets_what_the_origin_served() {
    let origin = FakeUpstream::start(FakeConfig {
        chunks: 4,
        chunk_gap: Duration::from_millis(30),
        media_len: 64 * 1024,
        blocking_hold: Duration::from_millis(100),
        ..FakeConfig::default()
    })
    .await;
    let edge = RunningEdge::start(edge_config_tls(&[origin.url()])).await;
    let (https, h3) = (edge.https.unwrap(), edge.h3.unwrap());
    assert_eq!(
        https.port(),
        h3.port(),
        "HTTP/3 must share the HTTPS port number"
    );
    let pem = edge.cert_pem.clone().unwrap();

    // Each with the RFC 9218 priority the edge schedules it by: playlists
    // first, then what a player blocks on, then segment bytes.
    let objects = [
        ("/live/cam/master.m3u8", "u=1"),
        ("/live/cam/source/index.m3u8", "u=1"),
        ("/live/cam/source/index.m3u8?_HLS_msn=6&_HLS_part=1", "u=1"),
        ("/live/cam/source/init.mp4", "u=2"),
        ("/live/cam/source/6.1.m4s", "u=2"),
        ("/live/cam/source/5.m4s", "u=4, i"),
    ];
    let mut client = H3Client::connect(h3, &pem).await.unwrap();
    for (path, priority) in objects {
        let got = client.get(path).await.unwrap();
        assert_eq!(got.headers["priority"], priority, "{path}");
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.version, http::Version::HTTP_3, "{path}");
        assert!(
            got.body == origin.body(path).unwrap(),
            "{path}: body differs"
        );
        assert_eq!(got.x_cache(), "MISS", "{path}");
        assert_eq!(origin.count(path), 1, "{path}");
    }
    // Immutable objects are now hits over HTTP/3 too.
    for path in ["/live/cam/source/6.1.m4s", "/live/cam/source/init.mp4"] {
        let got = client.get(path).await.unwrap();
        assert_eq!((got.status.as_u16(), got.x_cache()), (200, "HIT"), "{path}");
        assert!(got.body == origin.body(path).unwrap(), "{path}");
    }
    client.close().await;

    // Both TCP listeners advertise HTTP/3 on the UDP port.
    let alt_svc = format!("h3=\":{}\"", h3.port());
    let mut tls = h2_tls_connect(https, &pem).await.unwrap();
    let got = h2_get(&mut tls, "/live/cam/source/6.1.m4s").await.unwrap();
    assert_eq!(got.status, 200);
    let header = got.headers["alt-svc"].to_str().unwrap();
    assert!(header.starts_with(&alt_svc), "https alt-svc: {header}");
    let got = get(edge.http, "/live/cam/master.m3u8").await;
    assert_eq!(got.status, 200);
    let header = got.headers["alt-svc"].to_str().unwrap();
    assert!(header.starts_with(&alt_svc), "http alt-svc: {header}");
    // Errors advertise it as well (every response).
    let got = get(edge.http, "/nope").await;
    assert_eq!(got.status, 404);
    assert!(got.headers.contains_key("alt-svc"));
    edge.stop().await;
}
