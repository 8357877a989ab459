//! HTTP/1.1 and HTTP/2 over TCP, cleartext and TLS.

use super::*;
use crate::listen::{alt_svc, serve_tcp};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A running TCP listener; dropping `stop` (or sending true) shuts it down.
struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(tls: Option<&CertifiedKey>) -> Server {
        Self::start_with(tls, test_limits()).await
    }

    async fn start_with(tls: Option<&CertifiedKey>, limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = tls.map(|ck| {
            tls::server_config(&ck.cert_pem, &ck.key_pem, &[b"h2", b"http/1.1"]).unwrap()
        });
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(serve_tcp(
            listener,
            config,
            handler(),
            limits,
            Some(alt_svc(8443)),
            shutdown,
        ));
        Server { addr, stop, task }
    }

    /// Signals shutdown and checks the listener returns in bounded time.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        bounded("listener shutdown", self.task).await.unwrap();
    }
}

async fn tls_connect(addr: SocketAddr, ck: &CertifiedKey, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let connector = TlsConnector::from(Arc::new(client_config(ck, alpn)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    bounded("tls connect", connector.connect(name, tcp))
        .await
        .unwrap()
}

/// One GET over HTTP/2 on `io`; returns (response head, body).
async fn get_h2<I>(io: I, uri: &str) -> (http::response::Parts, Received)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(uri)
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let resp = bounded("h2 response", send.send_request(req))
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let (parts, body) = resp.into_parts();
    (parts, read_hyper_body(body).await)
}

/// One GET over HTTP/1.1 on `io`; returns (response head, body).
async fn get_h1<I>(io: I, path: &str) -> (http::response::Parts, Received)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let resp = bounded("h1 response", send.send_request(req))
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_11);
    let (parts, body) = resp.into_parts();
    (parts, read_hyper_body(body).await)
}

#[tokio::test]
async fn https_negotiates_h2_streams_the_body_and_advertises_h3() {
    let ck = cert();
    let server = Server::start(Some(&ck)).await;
    let tls = tls_connect(server.addr, &ck, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (head, body) = get_h2(tls, "https://localhost/live/a/index.m3u8").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["alt-svc"], "h3=\":8443\"; ma=86400");
    assert_eq!(body.text(), expected_body("/live/a/index.m3u8", "h2"));
    body.assert_streamed();
    server.stop().await;
}

#[tokio::test]
async fn https_serves_http1_when_alpn_offers_only_http1() {
    let ck = cert();
    let server = Server::start(Some(&ck)).await;
    let tls = tls_connect(server.addr, &ck, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (head, body) = get_h1(tls, "/one").await;
    assert_eq!(head.status, 200);
    assert!(head.headers.contains_key("alt-svc"));
    assert_eq!(body.text(), expected_body("/one", "h1"));
    body.assert_streamed();
    server.stop().await;
}

#[tokio::test]
async fn cleartext_serves_h2c_prior_knowledge_and_http1() {
    let server = Server::start(None).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (head, body) = get_h2(tcp, "http://127.0.0.1/h2c").await;
    assert_eq!(head.status, 200);
    assert_eq!(body.text(), expected_body("/h2c", "h2"));
    body.assert_streamed();

    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (head, body) = get_h1(tcp, "/plain").await;
    assert_eq!(head.status, 200);
    assert_eq!(body.text(), expected_body("/plain", "h1"));
    server.stop().await;
}

/// Writes `bytes`, then reads until the server closes (or errors); bounded.
async fn send_garbage(addr: SocketAddr, bytes: &[u8]) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may close before everything is written; that is fine.
    let _ = tcp.write_all(bytes).await;
    let mut sink = vec![0u8; 4096];
    let _ = bounded("server closes on garbage", async {
        loop {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[tokio::test]
async fn garbage_on_the_tls_port_does_not_disturb_later_requests() {
    let ck = cert();
    let server = Server::start(Some(&ck)).await;
    let mut inputs: Vec<Vec<u8>> = (1..20u64).map(|s| garbage(s, (s as usize) * 97)).collect();
    // Looks like a TLS handshake record, then nonsense and a huge length.
    inputs.push([&[0x16, 0x03, 0x01, 0xff, 0xff][..], &garbage(99, 300)].concat());
    inputs.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
    for input in &inputs {
        send_garbage(server.addr, input).await;
    }
    // A half-finished handshake is cut by the handshake timeout, not kept.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();

    let tls = tls_connect(server.addr, &ck, &[b"h2"]).await;
    let (head, body) = get_h2(tls, "https://localhost/after-garbage").await;
    assert_eq!(head.status, 200);
    assert_eq!(body.text(), expected_body("/after-garbage", "h2"));
    let mut buf = [0u8; 64];
    let closed = bounded("stalled handshake dropped", stalled.read(&mut buf)).await;
    assert!(matches!(closed, Ok(0) | Err(_)));
    server.stop().await;
}

#[tokio::test]
async fn cleartext_slow_request_head_is_cut_by_header_read_timeout() {
    let server = Server::start(None).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = bounded("slowloris cut", tcp.read_to_end(&mut buf)).await;
    assert!(started.elapsed() < LIMIT);
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "got {text:?}"
    );
    server.stop().await;
}

/// TCP from `source`, one of the loopback net's addresses.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    bounded("connect", socket.connect(to)).await.unwrap()
}

#[tokio::test]
async fn one_address_past_its_connection_cap_is_closed_while_others_are_served() {
    let limits = Limits {
        max_connections_per_ip: 2,
        ..test_limits()
    };
    let server = Server::start_with(None, limits).await;
    // Two idle connections from 127.0.0.2 hold its budget; a served request
    // on each proves they were accepted, not left in the backlog.
    let mut held = Vec::new();
    for _ in 0..2 {
        let tcp = connect_from([127, 0, 0, 2], server.addr).await;
        let (io, conn) = http1::handshake::<_, http_body_util::Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        held.push(io);
    }
    for io in &mut held {
        let req = http::Request::get("/held")
            .header("host", "x")
            .body(Default::default());
        let resp = bounded("held get", io.send_request(req.unwrap()))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // Read to the end: a dropped half-read body would close the connection.
        read_hyper_body(resp.into_body()).await;
    }
    // A third from the same address is closed without an answer.
    let mut third = connect_from([127, 0, 0, 2], server.addr).await;
    let _ = third
        .write_all(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = bounded("third closed", third.read_to_end(&mut buf)).await;
    assert!(
        buf.is_empty(),
        "answered: {:?}",
        String::from_utf8_lossy(&buf)
    );
    // Another address is served meanwhile.
    let (parts, body) = get_h1(connect_from([127, 0, 0, 3], server.addr).await, "/other").await;
    assert_eq!(parts.status, 200);
    assert_eq!(body.text(), expected_body("/other", "h1"));
    // Released slots come back: with both closed, 127.0.0.2 is served again.
    drop(held);
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut tcp = connect_from([127, 0, 0, 2], server.addr).await;
        let _ = tcp
            .write_all(b"GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = bounded("again", tcp.read_to_end(&mut buf)).await;
        if buf.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "127.0.0.2 never served again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
