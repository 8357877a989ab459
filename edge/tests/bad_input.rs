//! Bad input against a running edge (DESIGN.md section 7, STYLE.md rule 5):
//! garbage on every port while a viewer is being served. Each bad request
//! gets an error status or a closed connection; the viewer never sees an
//! error; nothing panics; h1, h2 and h3 requests work afterwards.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use bytes::Bytes;
use common::client::{get, h1_connect, h1_get, h2_get, h2_tls_connect, h2c_connect, H3Client};
use common::raw::{exchange, garbage, slowloris, udp_garbage, Outcome};
use common::{bounded, edge_config_tls, FakeConfig, FakeUpstream, RunningEdge};
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on any thread (a panic in a connection task would
/// otherwise only be logged), then runs the default hook.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// A viewer fetching a new part every 100 ms until `stop`; returns
/// (requests made, errors seen).
async fn viewer(
    edge: SocketAddr,
    origin: Arc<FakeUpstream>,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>) {
    let mut errors = Vec::new();
    let mut conn = h1_connect(edge).await.unwrap();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let path = format!("/live/cam/source/{}.{}.m4s", 100 + n / 6, n % 6);
        match h1_get(&mut conn, &path).await {
            Ok(got) if got.status == 200 && got.body == origin.body(&path).unwrap() => {}
            Ok(got) => errors.push(format!("{path}: {} {:?}", got.status, got.body)),
            Err(e) => errors.push(format!("{path}: {e}")),
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (n, errors)
}

/// Malformed request heads on the cleartext port.
async fn garbage_requests(http: SocketAddr) {
    let mut huge_header = b"GET /live/cam/source/1.0.m4s HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge_header.extend(std::iter::repeat_n(b'a', 100 * 1024));
    huge_header.extend_from_slice(b"\r\n\r\n");
    let mut many_headers = b"GET /live/cam/source/1.0.m4s HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        many_headers.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let mut long_uri = b"GET /live/".to_vec();
    long_uri.extend(std::iter::repeat_n(b'x', 64 * 1024));
    long_uri.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut h2_garbage = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2_garbage.extend(garbage(7, 2048));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("garbage line", b"GARBAGE\r\n\r\n".to_vec(), &[400]),
        ("bare method", b"GET\r\n\r\n".to_vec(), &[400]),
        (
            "bad version",
            b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
            &[400, 505],
        ),
        ("nul bytes", vec![0u8; 512], &[400]),
        ("random bytes", garbage(1, 4096), &[400]),
        (
            "bad header line",
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            &[400],
        ),
        ("100 KB header", huge_header, &[431, 400]),
        ("10k headers", many_headers, &[431, 400]),
        ("64 KB uri", long_uri, &[414, 431, 400, 404]),
        ("h2 preface + garbage", h2_garbage, &[]),
    ];
    for (what, bytes, statuses) in cases {
        let out = exchange(http, &bytes, WAIT).await;
        eprintln!("{what}: status {:?}, closed {}", out.status, out.closed);
        assert!(out.refused(statuses), "{what}: {out:?}");
        assert!(out.closed, "{what}: connection left open: {:?}", out.status);
    }
}

/// Paths that try to escape `/live/`: 404 (or 400), never forwarded.
async fn traversal(http: SocketAddr, origin: &FakeUpstream) {
    let paths = [
        "/live/../../etc/passwd",
        "/%2e%2e/",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/live/a%2f..",
        "/live/cam/..%2f..%2fetc%2fpasswd",
        "/live/cam/source/../../../etc/passwd",
        "/live//etc/passwd",
        "//etc/passwd",
        "/live/cam/source/1.0.m4s%00",
        "/live/cam/source/%2e%2e/x",
        "/etc/passwd",
        "/live/cam\\..\\..\\x",
    ];
    for path in paths {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let out = exchange(http, req.as_bytes(), WAIT).await;
        assert!(
            matches!(out.status, Some(404) | Some(400)),
            "{path}: {out:?}"
        );
        let body = String::from_utf8_lossy(&out.received);
        assert!(!body.contains("root:"), "{path}: {body}");
    }
    for (seen, _) in origin.counts() {
        let p = seen.split('?').next().unwrap_or(&seen);
        assert!(
            !p.contains("..") && !p.contains('%') && !p.contains("etc"),
            "forwarded {seen}"
        );
    }
}

/// POST, PUT, DELETE: 405 with `Allow`.
async fn methods(http: SocketAddr) {
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let mut conn = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(
            tokio::net::TcpStream::connect(http).await.unwrap(),
        ))
        .await
        .unwrap();
        tokio::spawn(conn.1);
        let req = http::Request::builder()
            .method(method)
            .uri("/live/cam/source/1.0.m4s")
            .header("host", "x")
            .body(Full::new(Bytes::from_static(b"payload")))
            .unwrap();
        let resp = bounded("method", conn.0.send_request(req)).await.unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "GET, HEAD, OPTIONS", "{method}");
    }
}

/// Garbage on the TLS port: closed connections.
async fn tls_garbage(https: SocketAddr) {
    let mut record = vec![0x16, 0x03, 0x01, 0x02, 0x00];
    record.extend(garbage(3, 512));
    let mut alert_like = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
    alert_like.extend(garbage(5, 64));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", garbage(2, 4096)),
        ("handshake record of garbage", record),
        ("alert then garbage", alert_like),
        (
            "oversized record",
            vec![0x17, 0x03, 0x03, 0xff, 0xff, 0, 0, 0],
        ),
        ("plain http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ];
    for (what, bytes) in cases {
        let out: Outcome = exchange(https, &bytes, WAIT).await;
        assert!(out.closed, "tls {what}: still open after {WAIT:?}");
        assert!(
            out.status.is_none(),
            "tls {what}: HTTP answer to non-TLS bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_port_leaves_viewers_and_later_requests_unharmed() {
    count_panics();
    let origin = Arc::new(FakeUpstream::start(FakeConfig::default()).await);
    let edge = RunningEdge::start(edge_config_tls(&[origin.url()])).await;
    let (https, h3) = (edge.https.unwrap(), edge.h3.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let viewing = tokio::spawn(viewer(edge.http, origin.clone(), stop.clone()));

    // Slow clients run alongside everything else; the header timeout is 2 s.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(slowloris(
                edge.http,
                Duration::from_millis(300),
                Duration::from_secs(8),
            ))
        })
        .collect();
    garbage_requests(edge.http).await;
    traversal(edge.http, &origin).await;
    methods(edge.http).await;
    tls_garbage(https).await;
    udp_garbage(h3, 200).await;
    for s in slow {
        let held = bounded("slowloris", s).await.unwrap();
        let held = held.expect("slowloris connection still open after 8 s");
        assert!(held < Duration::from_secs(5), "slowloris held for {held:?}");
    }

    stop.store(true, Ordering::SeqCst);
    let (requests, errors) = bounded("viewer", viewing).await.unwrap();
    assert!(errors.is_empty(), "viewer errors: {errors:?}");
    assert!(requests >= 10, "viewer made only {requests} requests");

    // Every protocol still works.
    let path = "/live/cam/source/200.0.m4s";
    let want = origin.body(path).unwrap();
    let got = get(edge.http, path).await;
    assert_eq!(
        (got.status.as_u16(), got.version),
        (200, http::Version::HTTP_11)
    );
    assert!(got.body == want);
    let mut h2 = h2c_connect(edge.http).await.unwrap();
    let got = h2_get(&mut h2, "/live/cam/source/200.1.m4s").await.unwrap();
    assert_eq!(
        (got.status.as_u16(), got.version),
        (200, http::Version::HTTP_2)
    );
    let mut h2s = h2_tls_connect(https, edge.cert_pem.as_deref().unwrap())
        .await
        .unwrap();
    let got = h2_get(&mut h2s, path).await.unwrap();
    assert_eq!(
        (got.status.as_u16(), got.version),
        (200, http::Version::HTTP_2)
    );
    assert!(got.body == want);
    let mut h3c = H3Client::connect(h3, edge.cert_pem.as_deref().unwrap())
        .await
        .unwrap();
    let got = h3c.get(path).await.unwrap();
    assert_eq!(
        (got.status.as_u16(), got.version),
        (200, http::Version::HTTP_3)
    );
    assert!(got.body == want);
    h3c.close().await;

    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    edge.stop().await;
}

/// A malformed LL-HLS query is the client's error: the edge answers 400
/// itself (RFC 8216bis) and neither forwards nor caches anything.
#[tokio::test]
async fn malformed_hls_queries_get_400_and_are_not_rewritten_upstream() {
    let origin = FakeUpstream::start(FakeConfig::default()).await;
    let edge = RunningEdge::start(common::edge_config(
        livecdn_shared::config::EdgeRole::Edge,
        &[origin.url()],
        &[],
    ))
    .await;
    for query in [
        "_HLS_part=2",
        "_HLS_msn=abc",
        "_HLS_msn=1&_HLS_msn=2",
        "_HLS_skip=NO",
    ] {
        let got = get(edge.http, &format!("/live/cam/source/index.m3u8?{query}")).await;
        let seen: Vec<String> = origin.counts().into_keys().collect();
        assert!(
            !seen.iter().any(|s| s.contains('~')),
            "{query}: upstream saw {seen:?}"
        );
        assert_eq!(got.status, 400, "{query}");
    }
    edge.stop().await;
}
