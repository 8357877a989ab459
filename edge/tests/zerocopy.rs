//! Cache hits of large bodies leave cleartext connections by `sendfile` from
//! shared memory, and every protocol still gets exactly the upstream's bytes.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::client::{h1_connect, h1_get, h2_get, h2_tls_connect, h2c_connect, H3Client};
use common::{bounded, edge_config_tls, FakeConfig, FakeUpstream, RunningEdge};
use livecdn_edge::cache::shm;
use livecdn_edge::listen::zerocopy::sendfile_bytes;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_hits_go_by_sendfile_and_arrive_intact_on_every_protocol() {
    const LEN: usize = 200 * 1024;
    let origin = FakeUpstream::start(FakeConfig {
        media_len: LEN,
        // Upstream frames arrive apart, as from a real origin.
        chunks: 8,
        chunk_gap: Duration::from_millis(5),
        ..FakeConfig::default()
    })
    .await;
    let edge = RunningEdge::start(edge_config_tls(&[origin.url()])).await;
    let pem = edge.cert_pem.clone().unwrap();
    let path = "/live/cam/source/7.m4s";

    bounded("all fetches", async {
        let mut h1 = h1_connect(edge.http).await.unwrap();
        let miss = h1_get(&mut h1, path).await.unwrap();
        assert_eq!(miss.status, 200);
        assert_eq!(miss.body.len(), LEN);
        let upstream_bytes = miss.body.clone();

        // The finished body is one buffer in shared memory.
        let before = sendfile_bytes();
        assert!(shm::stored_bytes() >= LEN as u64);
        for _ in 0..2 {
            let hit = h1_get(&mut h1, path).await.unwrap();
            assert_eq!(hit.x_cache(), "HIT");
            assert!(hit.body == upstream_bytes, "h1 hit differs from upstream");
        }
        let after_h1 = sendfile_bytes();
        assert_eq!(after_h1 - before, 2 * LEN as u64, "h1 hits by sendfile");

        let mut h2c = h2c_connect(edge.http).await.unwrap();
        let hit = h2_get(&mut h2c, path).await.unwrap();
        assert!(hit.body == upstream_bytes, "h2c hit differs from upstream");
        let after_h2c = sendfile_bytes();
        // The h2 codec copies the odd small DATA piece (split at flow-control
        // window edges) into its own buffer; the bulk goes by sendfile.
        let by_sendfile = after_h2c - after_h1;
        assert!(
            by_sendfile >= LEN as u64 * 9 / 10 && by_sendfile <= LEN as u64,
            "h2c DATA by sendfile: {by_sendfile} of {LEN}"
        );

        // TLS and QUIC encrypt the same shared bytes.
        let mut h2 = h2_tls_connect(edge.https.unwrap(), &pem).await.unwrap();
        let hit = h2_get(&mut h2, path).await.unwrap();
        assert!(hit.body == upstream_bytes, "h2 hit differs from upstream");
        let mut h3 = H3Client::connect(edge.h3.unwrap(), &pem).await.unwrap();
        let hit = h3.get(path).await.unwrap();
        assert!(hit.body == upstream_bytes, "h3 hit differs from upstream");
        h3.close().await;
        assert_eq!(sendfile_bytes(), after_h2c, "no sendfile under TLS");
    })
    .await;
    assert_eq!(origin.count(path), 1);
    edge.stop().await;
}
