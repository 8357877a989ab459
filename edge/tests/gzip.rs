//! Playlists leave the edge gzip-compressed for clients that accept it (one
//! compression per cached object), and plain for those that do not; media
//! is never re-encoded.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::{bounded, edge_config, FakeConfig, FakeUpstream, RunningEdge};
use livecdn_shared::config::EdgeRole;
use std::io::Read;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request with `Connection: close`; returns (head, body).
async fn fetch(addr: SocketAddr, path: &str, accept_gzip: bool) -> (String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let enc = if accept_gzip {
        "Accept-Encoding: gzip, deflate\r\n"
    } else {
        ""
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{enc}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    bounded("response", s.read_to_end(&mut all)).await.unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).to_lowercase();
    (head, all[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_are_gzipped_for_clients_that_accept_it() {
    let origin = FakeUpstream::start(FakeConfig::default()).await;
    let edge = RunningEdge::start(edge_config(EdgeRole::Edge, &[origin.url()], &[])).await;
    // A blocking-reload answer: cached for six target durations, so the
    // test cannot race a plain playlist's sub-second TTL.
    let path = "/live/cam/source/index.m3u8?_HLS_msn=6&_HLS_part=1";
    // The first answer is a miss, streamed while it fills (chunked, never
    // compressed); the rest are hits of the complete object.
    fetch(edge.http, path, true).await;

    let (head, plain) = fetch(edge.http, path, false).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(plain.starts_with(b"#EXTM3U"));

    for _ in 0..2 {
        let (head, gz) = fetch(edge.http, path, true).await;
        assert!(head.contains("content-encoding: gzip"), "{head}");
        assert!(head.contains("vary: accept-encoding"), "{head}");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain, "gzip body decodes to the plain playlist");
    }
    assert_eq!(
        origin.count(path),
        1,
        "one upstream fetch serves both encodings"
    );

    fetch(edge.http, "/live/cam/source/5.m4s", true).await;
    let (head, _) = fetch(edge.http, "/live/cam/source/5.m4s", true).await;
    assert!(
        !head.contains("content-encoding"),
        "media is not re-encoded: {head}"
    );
    edge.stop().await;
}
