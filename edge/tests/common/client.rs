//! Test clients: HTTP/1.1 and prior-knowledge h2c over TCP, h2 over TLS, and
//! HTTP/3 over QUIC (quinn + h3) trusting the edge's self-signed certificate.
//! Each response records when its first body bytes arrived.

use super::bounded;
use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use quinn::crypto::rustls::QuicClientConfig;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A complete response.
#[derive(Debug, Clone)]
pub struct Got {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the first non-empty body chunk arrived.
    pub first_byte: Option<Instant>,
}

impl Got {
    /// The `x-cache` header, or "".
    pub fn x_cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub type H1 = http1::SendRequest<Empty<Bytes>>;
pub type H2 = http2::SendRequest<Empty<Bytes>>;

/// Reads a hyper body to its end, noting when the first bytes came.
async fn read_body<B>(
    mut body: B,
    first_bytes: Option<&AtomicUsize>,
) -> Result<(Bytes, Option<Instant>), String>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    let mut first = None;
    while let Some(frame) = bounded("body frame", body.frame()).await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if !data.is_empty() && first.is_none() {
                first = Some(Instant::now());
                if let Some(n) = first_bytes {
                    n.fetch_add(1, Ordering::SeqCst);
                }
            }
            out.extend_from_slice(&data);
        }
    }
    Ok((Bytes::from(out), first))
}

/// A new cleartext HTTP/1.1 connection.
pub async fn h1_connect(addr: SocketAddr) -> Result<H1, String> {
    let tcp = bounded("tcp connect", TcpStream::connect(addr))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (send, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("h1 handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// A new prior-knowledge h2c connection.
pub async fn h2c_connect(addr: SocketAddr) -> Result<H2, String> {
    let tcp = bounded("tcp connect", TcpStream::connect(addr))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    h2_handshake(tcp).await
}

/// HTTP/2 on an established stream (TCP or TLS).
pub async fn h2_handshake<I>(io: I) -> Result<H2, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// GET `path_and_query` on an HTTP/1.1 connection.
pub async fn h1_get(send: &mut H1, path_and_query: &str) -> Result<Got, String> {
    h1_get_counted(send, path_and_query, None).await
}

/// [`h1_get`], incrementing `first_bytes` when the first body bytes arrive.
pub async fn h1_get_counted(
    send: &mut H1,
    path_and_query: &str,
    first_bytes: Option<&AtomicUsize>,
) -> Result<Got, String> {
    bounded("h1 ready", send.ready())
        .await
        .map_err(|e| format!("h1 ready: {e}"))?;
    let req = Request::get(path_and_query)
        .header("host", "localhost")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = bounded("h1 response", send.send_request(req))
        .await
        .map_err(|e| format!("h1 request: {e}"))?;
    let (parts, body) = resp.into_parts();
    let (body, first_byte) = read_body(body, first_bytes).await?;
    Ok(Got {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
        first_byte,
    })
}

/// GET `path_and_query` on an HTTP/2 connection (any number concurrently:
/// clone the sender).
pub async fn h2_get(send: &mut H2, path_and_query: &str) -> Result<Got, String> {
    h2_get_counted(send, path_and_query, None).await
}

/// [`h2_get`], incrementing `first_bytes` when the first body bytes arrive.
pub async fn h2_get_counted(
    send: &mut H2,
    path_and_query: &str,
    first_bytes: Option<&AtomicUsize>,
) -> Result<Got, String> {
    bounded("h2 ready", send.ready())
        .await
        .map_err(|e| format!("h2 ready: {e}"))?;
    let req = Request::get(format!("http://localhost{path_and_query}"))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = bounded("h2 response", send.send_request(req))
        .await
        .map_err(|e| format!("h2 request: {e}"))?;
    let (parts, body) = resp.into_parts();
    let (body, first_byte) = read_body(body, first_bytes).await?;
    Ok(Got {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
        first_byte,
    })
}

/// One GET on a fresh HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, path_and_query: &str) -> Got {
    let mut send = h1_connect(addr).await.unwrap();
    h1_get(&mut send, path_and_query).await.unwrap()
}

/// A rustls client config (ring) trusting only the certificate in `cert_pem`.
pub fn client_tls(cert_pem: &str, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let der = livecdn_shared::tls::first_certificate_der(cert_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der))
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

/// HTTP/2 over TLS (ALPN h2) to `addr`, trusting `cert_pem`.
pub async fn h2_tls_connect(addr: SocketAddr, cert_pem: &str) -> Result<H2, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_tls(cert_pem, &[b"h2"])));
    let tcp = bounded("tcp connect", TcpStream::connect(addr))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = bounded("tls connect", connector.connect(name, tcp))
        .await
        .map_err(|e| format!("tls: {e}"))?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err("ALPN did not choose h2".to_string());
    }
    h2_handshake(tls).await
}

/// An HTTP/3 connection to the edge.
pub struct H3Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    drive: JoinHandle<()>,
}

impl H3Client {
    /// Connects to `addr` trusting `cert_pem`, with ALPN h3.
    pub async fn connect(addr: SocketAddr, cert_pem: &str) -> Result<H3Client, String> {
        let crypto = QuicClientConfig::try_from(client_tls(cert_pem, &[b"h3"]))
            .map_err(|e| e.to_string())?;
        let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| e.to_string())?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let connecting = endpoint
            .connect(addr, "localhost")
            .map_err(|e| e.to_string())?;
        let conn = bounded("quic connect", connecting)
            .await
            .map_err(|e| format!("quic: {e}"))?;
        let (mut driver, send) = bounded(
            "h3 client",
            h3::client::new(h3_quinn::Connection::new(conn.clone())),
        )
        .await
        .map_err(|e| format!("h3: {e}"))?;
        let drive = tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(H3Client {
            endpoint,
            conn,
            send,
            drive,
        })
    }

    /// One GET over HTTP/3.
    pub async fn get(&mut self, path_and_query: &str) -> Result<Got, String> {
        let req = Request::get(format!("https://localhost{path_and_query}"))
            .body(())
            .map_err(|e| e.to_string())?;
        let mut stream = bounded("h3 send", self.send.send_request(req))
            .await
            .map_err(|e| format!("h3 send: {e}"))?;
        stream
            .finish()
            .await
            .map_err(|e| format!("h3 finish: {e}"))?;
        let resp = bounded("h3 response", stream.recv_response())
            .await
            .map_err(|e| format!("h3 response: {e}"))?;
        let mut body = Vec::new();
        let mut first_byte = None;
        while let Some(mut buf) = bounded("h3 data", stream.recv_data())
            .await
            .map_err(|e| format!("h3 body: {e}"))?
        {
            if buf.has_remaining() && first_byte.is_none() {
                first_byte = Some(Instant::now());
            }
            body.extend_from_slice(&buf.copy_to_bytes(buf.remaining()));
        }
        Ok(Got {
            status: resp.status(),
            version: resp.version(),
            headers: resp.headers().clone(),
            body: Bytes::from(body),
            first_byte,
        })
    }

    /// Closes with H3_NO_ERROR and waits (bounded) for the endpoint.
    pub async fn close(self) {
        drop(self.send);
        self.conn.close(quinn::VarInt::from_u32(0x100), b"");
        bounded("h3 client idle", self.endpoint.wait_idle()).await;
        self.drive.abort();
    }
}
