//! Listener tests on `127.0.0.1:0`: a trivial handler that streams three
//! chunks 50 ms apart, real clients (hyper h1/h2 over TCP and TLS, quinn + h3),
//! and garbage on both ports. Every wait is bounded by [`LIMIT`].

mod h3_quic;
mod tcp;

use super::Limits;
use crate::serve::{Body, Conn, Handler};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use livecdn_shared::tls::{self, CertifiedKey};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Upper bound on any single wait in these tests.
const LIMIT: Duration = Duration::from_secs(10);
/// Gap between the chunks of the test handler's body.
const GAP: Duration = Duration::from_millis(50);

/// Answers `hello {path} via {protocol}\n` (`got {n} bytes via {protocol}\n`
/// for a request whose body the listener read), then two more chunks, each
/// after [`GAP`]. `/fail` yields one chunk and then a body error.
struct TestHandler;

impl Handler for TestHandler {
    fn handle(
        &self,
        req: http::Request<()>,
        conn: Conn,
    ) -> BoxFuture<'static, http::Response<Body>> {
        let first = match req.extensions().get::<crate::serve::RequestBody>() {
            Some(body) => format!(
                "got {} bytes via {}\n",
                body.0.len(),
                conn.protocol.as_str()
            ),
            None => format!(
                "hello {} via {}\n",
                req.uri().path(),
                conn.protocol.as_str()
            ),
        };
        let fail = req.uri().path() == "/fail";
        Box::pin(async move {
            let chunks = futures::stream::iter(0..3usize).then(move |i| {
                let first = first.clone();
                async move {
                    if i > 0 {
                        tokio::time::sleep(GAP).await;
                    }
                    match i {
                        0 => Ok(hyper::body::Frame::data(Bytes::from(first))),
                        _ if fail => Err("upstream broke".into()),
                        _ => Ok(hyper::body::Frame::data(Bytes::from(format!(
                            "chunk {i}\n"
                        )))),
                    }
                }
            });
            let body: Body = StreamBody::new(chunks).boxed_unsync();
            http::Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(body)
                .unwrap()
        })
    }
}

/// The body the test handler sends for `path` over `proto`.
fn expected_body(path: &str, proto: &str) -> String {
    format!("hello {path} via {proto}\nchunk 1\nchunk 2\n")
}

fn handler() -> Arc<dyn Handler> {
    Arc::new(TestHandler)
}

fn cert() -> CertifiedKey {
    tls::self_signed(&[]).unwrap()
}

/// A rustls client config (ring) trusting only `ck`, offering `alpn`.
fn client_config(ck: &CertifiedKey, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ck.cert_der.clone()))
        .unwrap();
    let provider = livecdn_shared::tls::crypto_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Bounds `fut` by [`LIMIT`], failing the test on timeout.
async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: timed out after {LIMIT:?}"),
    }
}

/// Body chunks as received, each with its arrival time.
struct Received {
    chunks: Vec<(Instant, Bytes)>,
}

impl Received {
    fn text(&self) -> String {
        let all: Vec<u8> = self.chunks.iter().flat_map(|(_, b)| b.to_vec()).collect();
        String::from_utf8(all).unwrap()
    }

    /// Asserts the body was streamed: the first bytes arrived at least one
    /// [`GAP`] before the last ones (a buffered body arrives all at once).
    fn assert_streamed(&self) {
        let first = self.chunks.first().expect("no body chunks").0;
        let last = self.chunks.last().expect("no body chunks").0;
        assert!(
            last.duration_since(first) >= GAP,
            "body not streamed: {:?} between first and last chunk",
            last.duration_since(first)
        );
    }
}

/// Reads a hyper response body to its end, timing each data frame.
async fn read_hyper_body<B>(mut body: B) -> Received
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut chunks = Vec::new();
    while let Some(frame) = bounded("body frame", body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            chunks.push((Instant::now(), data));
        }
    }
    Received { chunks }
}

/// Deterministic pseudo-random bytes for garbage input (xorshift64).
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn test_limits() -> Limits {
    Limits {
        tls_handshake_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(2),
        drain_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}
