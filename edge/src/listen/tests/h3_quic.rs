//! HTTP/3 over QUIC with a quinn + h3 client.

use super::*;
use crate::listen::{endpoint, serve_h3};
use bytes::Buf;
use quinn::crypto::rustls::QuicClientConfig;
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    fn start(ck: &CertifiedKey) -> Server {
        let config = tls::server_config(&ck.cert_pem, &ck.key_pem, &[b"h3"]).unwrap();
        let limits = test_limits();
        let ep = endpoint("127.0.0.1:0".parse().unwrap(), config, &limits).unwrap();
        let addr = ep.local_addr().unwrap();
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(serve_h3(ep, handler(), limits, shutdown));
        Server { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        bounded("h3 listener shutdown", self.task).await.unwrap();
    }
}

/// What a GET over HTTP/3 produced.
struct H3Response {
    status: http::StatusCode,
    body: Received,
    /// The body ended with a stream error (reset) instead of a clean end.
    reset: bool,
}

/// Opens a QUIC connection trusting `ck`, sends one GET, reads it all, and
/// closes with H3_NO_ERROR.
async fn get_h3(addr: SocketAddr, ck: &CertifiedKey, path: &str) -> H3Response {
    request_h3(addr, ck, http::Method::GET, path, None).await
}

/// One request over HTTP/3, with a body when given.
async fn request_h3(
    addr: SocketAddr,
    ck: &CertifiedKey,
    method: http::Method,
    path: &str,
    body: Option<Bytes>,
) -> H3Response {
    let crypto = QuicClientConfig::try_from(client_config(ck, &[b"h3"])).unwrap();
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let conn = bounded("quic connect", client.connect(addr, "localhost").unwrap())
        .await
        .unwrap();
    let (mut driver, mut send) = bounded(
        "h3 client",
        h3::client::new(h3_quinn::Connection::new(conn.clone())),
    )
    .await
    .unwrap();
    let drive = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let req = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .body(())
        .unwrap();
    let mut stream = bounded("h3 send", send.send_request(req)).await.unwrap();
    if let Some(body) = body {
        for piece in body.chunks(16 * 1024) {
            if stream
                .send_data(Bytes::copy_from_slice(piece))
                .await
                .is_err()
            {
                break;
            }
        }
    }
    let _ = stream.finish().await;
    let resp = bounded("h3 response", stream.recv_response())
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_3);
    let mut chunks = Vec::new();
    let mut reset = false;
    loop {
        match bounded("h3 data", stream.recv_data()).await {
            Ok(Some(mut buf)) => {
                let data = buf.copy_to_bytes(buf.remaining());
                chunks.push((Instant::now(), data));
            }
            Ok(None) => break,
            Err(_) => {
                reset = true;
                break;
            }
        }
    }
    drop(stream);
    drop(send);
    conn.close(
        h3::error::Code::H3_NO_ERROR.value().try_into().unwrap(),
        b"",
    );
    bounded("client idle", client.wait_idle()).await;
    drive.abort();
    H3Response {
        status: resp.status(),
        body: Received { chunks },
        reset,
    }
}

#[tokio::test]
async fn h3_post_bodies_reach_the_handler_up_to_the_bound() {
    let ck = cert();
    let server = Server::start(&ck);
    let body = Bytes::from(vec![7u8; 40_000]);
    let r = request_h3(server.addr, &ck, http::Method::POST, "/x", Some(body)).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.text().starts_with("got 40000 bytes via h3\n"),
        "{}",
        r.body.text()
    );
    let big = Bytes::from(vec![0u8; crate::serve::MAX_REQUEST_BODY + 1]);
    let r = request_h3(server.addr, &ck, http::Method::POST, "/x", Some(big)).await;
    assert_eq!(r.status, http::StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn h3_get_streams_the_body_chunk_by_chunk() {
    let ck = cert();
    let server = Server::start(&ck);
    let resp = get_h3(server.addr, &ck, "/live/a/1.2.m4s").await;
    assert_eq!(resp.status, 200);
    assert!(!resp.reset);
    assert_eq!(resp.body.text(), expected_body("/live/a/1.2.m4s", "h3"));
    resp.body.assert_streamed();
    // A second connection to the same endpoint works as well.
    let again = get_h3(server.addr, &ck, "/again").await;
    assert_eq!(again.body.text(), expected_body("/again", "h3"));
    server.stop().await;
}

#[tokio::test]
async fn h3_body_error_resets_the_stream() {
    let ck = cert();
    let server = Server::start(&ck);
    let resp = get_h3(server.addr, &ck, "/fail").await;
    assert_eq!(resp.status, 200);
    assert!(resp.reset, "a failed body must not look complete");
    assert_eq!(resp.body.text(), "hello /fail via h3\n");
    server.stop().await;
}

#[tokio::test]
async fn random_udp_datagrams_do_not_disturb_later_requests() {
    let ck = cert();
    let server = Server::start(&ck);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for seed in 1..200u64 {
        let len = 1 + (seed as usize * 37) % 1400;
        let mut datagram = garbage(seed, len);
        // Every fourth one looks like a QUIC long header (Initial, v1).
        if seed % 4 == 0 && len > 6 {
            datagram[0] = 0xc0;
            datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        socket.send_to(&datagram, server.addr).await.unwrap();
    }
    let resp = get_h3(server.addr, &ck, "/after-garbage").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.text(), expected_body("/after-garbage", "h3"));
    server.stop().await;
}
