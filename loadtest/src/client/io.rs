//! Plumbing the three clients share: dialling TCP (+TLS), building requests,
//! and reading bodies with their timing.

use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use tokio::io::BufReader;
use tokio::time::Instant;

use super::{FetchError, Origin, Shared};
use crate::player::Outcome;

/// Stand-in bytes for bodies that are counted, not kept.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// Accumulates a body and its timing. With `keep` false (media: the player
/// only needs their length) chunks are counted and dropped as they arrive,
/// and the outcome carries zero bytes of the same length, so no copy.
pub(crate) struct BodyReader {
    start: Instant,
    keep: bool,
    first: Option<Duration>,
    chunks: Vec<Bytes>,
    len: usize,
    max: usize,
}

impl BodyReader {
    pub(crate) fn new(start: Instant, max: usize, keep: bool) -> BodyReader {
        BodyReader {
            start,
            keep,
            first: None,
            chunks: Vec::new(),
            len: 0,
            max,
        }
    }

    pub(crate) fn push(&mut self, chunk: Bytes) -> Result<(), FetchError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.first.get_or_insert_with(|| self.start.elapsed());
        self.len += chunk.len();
        if self.len > self.max {
            return Err(FetchError::BodyTooLarge(self.max));
        }
        if self.keep {
            self.chunks.push(chunk);
        }
        Ok(())
    }

    pub(crate) fn finish(self, status: u16) -> Outcome {
        let total = self.start.elapsed();
        let body = match self.chunks.len() {
            0 if !self.keep => match ZEROS.get(..self.len) {
                Some(zeros) => Bytes::from_static(zeros),
                None => Bytes::from(vec![0; self.len]),
            },
            0 => Bytes::new(),
            1 => self.chunks.into_iter().next().unwrap_or_default(),
            _ => {
                let mut all = Vec::with_capacity(self.len);
                for c in &self.chunks {
                    all.extend_from_slice(c);
                }
                Bytes::from(all)
            }
        };
        Outcome::Ok {
            status,
            body,
            ttfb: self.first.unwrap_or(total),
            total,
        }
    }
}

/// Runs `fut` bounded by the connect timeout.
pub(crate) async fn connect_bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| FetchError::ConnectTimeout)?
}

/// TCP (nodelay), then TLS with `alpn` when the origin is https.
///
/// Under TLS the socket is read through a `read_buffer`-byte buffer: rustls
/// asks for at most 4 KiB a read, so without it a connection carrying many
/// viewers' streams costs one `recv` (and, on loopback, the peer's ACK
/// processing) per 4 KiB. With it one `recv` takes whatever the socket
/// holds up to the buffer size, and rustls is fed from memory.
pub(crate) async fn dial_tcp(
    shared: &Shared,
    tls: Option<&tokio_rustls::TlsConnector>,
    read_buffer: usize,
) -> Result<TcpOrTls, FetchError> {
    let addr = shared.origin.resolve().await?;
    let connect = |e: std::io::Error| FetchError::Connect(e.to_string());
    let tcp = match shared.sources.next_for(addr) {
        None => tokio::net::TcpStream::connect(addr)
            .await
            .map_err(connect)?,
        Some(local) => {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(connect)?;
            socket.bind(local).map_err(connect)?;
            socket.connect(addr).await.map_err(connect)?
        }
    };
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(TcpOrTls::Tcp(tcp)),
        Some(connector) => {
            let name = rustls::pki_types::ServerName::try_from(shared.origin.host.clone())
                .map_err(|e| FetchError::Tls(e.to_string()))?;
            let stream = connector
                .connect(name, BufReader::with_capacity(read_buffer, tcp))
                .await
                .map_err(|e| FetchError::Tls(e.to_string()))?;
            Ok(TcpOrTls::Tls(Box::new(stream)))
        }
    }
}

/// A dialled TCP connection, plain or TLS.
pub(crate) enum TcpOrTls {
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<BufReader<tokio::net::TcpStream>>>),
}

/// The request for `uri`: `absolute` for h2/h3 (pseudo-headers), else
/// origin-form with a `Host` header.
pub(crate) fn request<B>(
    origin: &Origin,
    uri: &Uri,
    absolute: bool,
    body: B,
) -> Result<http::Request<B>, FetchError> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let builder = if absolute {
        // Already checked to be on `origin`: sent as it is (no rebuilding
        // and re-parsing of the URL per request).
        http::Request::get(uri.clone())
    } else {
        http::Request::get(path).header(http::header::HOST, origin.authority())
    };
    Ok(builder
        .header(http::header::USER_AGENT, "livecdn-loadtest")
        .body(body)?)
}

/// Reads a hyper response body into an [`Outcome`].
pub(crate) async fn read_hyper(
    resp: http::Response<hyper::body::Incoming>,
    start: Instant,
    max: usize,
    keep: bool,
) -> Result<Outcome, FetchError> {
    use http_body_util::BodyExt;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut reader = BodyReader::new(start, max, keep);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            reader.push(data)?;
        }
    }
    Ok(reader.finish(status))
}

/// Checks a URI is on the origin.
pub(crate) fn check_origin(origin: &Origin, uri: &Uri) -> Result<(), FetchError> {
    if origin.contains(uri) {
        Ok(())
    } else {
        Err(FetchError::OtherOrigin(uri.to_string()))
    }
}
