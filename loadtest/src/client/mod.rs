//! HTTP clients for the virtual players: HTTP/1.1, HTTP/2 and HTTP/3 behind
//! one enum, each GET returning the player's [`Outcome`].
//!
//! * h1 ([`h1::H1Pool`]): each viewer owns its connections (by default one,
//!   so a viewer's requests queue behind each other as on one TCP socket).
//! * h2 ([`h2::H2Pool`]) and h3 ([`h3::H3Pool`]): viewers share a fixed
//!   number of multiplexed connections; viewer `i` uses connection
//!   `i % connections`. A dead connection is re-dialled by the next request.
//!
//! Times: `ttfb` runs from sending the request (after a connection is
//! available, connect included) to the first body bytes (to the headers for
//! an empty body); `total` to the end of the body. Bodies are read whole into
//! [`Bytes`], bounded by [`ClientOptions::max_body`]. One run talks to one
//! origin (scheme, host, port): the URL given on the command line.

pub mod h1;
pub mod h2;
pub mod h3;
mod io;
pub mod source;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use crate::player::{Failure, Outcome};
pub(crate) use io::{
    check_origin, connect_bounded, dial_tcp, read_hyper, request, BodyReader, TcpOrTls,
};
pub use tls::Trust;

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1, connections per viewer.
    H1,
    /// HTTP/2 (TLS with ALPN, or prior knowledge over cleartext).
    H2,
    /// HTTP/3 over QUIC (https only).
    H3,
}

impl Protocol {
    /// `h1`, `h2` or `h3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::H1 => "h1",
            Protocol::H2 => "h2",
            Protocol::H3 => "h3",
        }
    }
}

/// How clients connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// HTTP version.
    pub protocol: Protocol,
    /// Certificate trust for https.
    pub trust: Trust,
    /// Shared connections for h2/h3.
    pub connections: usize,
    /// Connections each viewer may hold for h1.
    pub h1_pool: usize,
    /// Bound on TCP/QUIC connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Largest body read; larger responses fail.
    pub max_body: usize,
    /// Local addresses TCP connections bind in turn (empty: the kernel
    /// chooses); see [`source`].
    pub source_addrs: Vec<std::net::IpAddr>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            protocol: Protocol::H1,
            trust: Trust::Insecure,
            connections: 8,
            h1_pool: 1,
            connect_timeout: Duration::from_secs(5),
            max_body: 32 << 20,
            source_addrs: Vec::new(),
        }
    }
}

/// Why clients cannot be set up for a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http(s)://host[:port]/...`.
    #[error("bad URL {0:?}: expected http:// or https:// with a host")]
    Url(String),
    /// HTTP/3 needs https.
    #[error("h3 needs an https:// URL")]
    H3NeedsTls,
    /// The CA file cannot be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// File given.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// The QUIC client endpoint could not be created.
    #[error("QUIC client: {0}")]
    Quic(String),
}

/// Why one request got no HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse.
    #[error("bad URL {0:?}")]
    BadUrl(String),
    /// The URL names another origin than the run's.
    #[error("URL {0:?} is not on the run's origin")]
    OtherOrigin(String),
    /// Name resolution failed or found nothing.
    #[error("resolving {host}: {reason}")]
    Resolve {
        /// Host name.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// TCP or QUIC connect failed.
    #[error("connect: {0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Connect plus handshake took longer than the bound.
    #[error("connect timed out")]
    ConnectTimeout,
    /// HTTP/1.1 error.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// HTTP/2 error.
    #[error("h2: {0}")]
    H2(#[from] ::h2::Error),
    /// HTTP/3 error.
    #[error("h3: {0}")]
    H3(String),
    /// The body exceeded [`ClientOptions::max_body`].
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] http::Error),
}

impl FetchError {
    /// The report's kind for this failure.
    pub fn kind(&self) -> Failure {
        match self {
            FetchError::Resolve { .. } | FetchError::Connect(_) | FetchError::ConnectTimeout => {
                Failure::Connect
            }
            FetchError::Tls(_) => Failure::Tls,
            FetchError::Http(_) | FetchError::H2(_) | FetchError::H3(_) => Failure::Protocol,
            FetchError::BodyTooLarge(_) => Failure::BodyTooLarge,
            FetchError::BadUrl(_) | FetchError::OtherOrigin(_) | FetchError::Request(_) => {
                Failure::Other
            }
        }
    }
}

/// The origin every request of a run goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `https` (else `http`).
    pub tls: bool,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Origin {
    /// The origin of `url`.
    pub fn of(url: &str) -> Result<Origin, ClientError> {
        let bad = || ClientError::Url(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Origin { tls, host, port })
    }

    /// Whether `uri` is on this origin.
    fn contains(&self, uri: &Uri) -> bool {
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = uri.host().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        tls == self.tls && port == self.port && host.eq_ignore_ascii_case(&self.host)
    }

    /// `host:port` (IPv6 bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Resolves the host to one socket address.
    async fn resolve(&self) -> Result<std::net::SocketAddr, FetchError> {
        let fail = |reason: String| FetchError::Resolve {
            host: self.host.clone(),
            reason,
        };
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| fail(e.to_string()))?;
        addrs.next().ok_or_else(|| fail("no addresses".into()))
    }
}

/// What the pools share: the origin and the options.
#[derive(Debug)]
pub struct Shared {
    /// Where requests go.
    pub origin: Origin,
    /// How to connect.
    pub options: ClientOptions,
    /// Local addresses TCP connections rotate over.
    pub sources: source::SourceAddrs,
}

/// A viewer's HTTP client.
#[derive(Debug)]
pub enum HttpClient {
    /// The viewer's own HTTP/1.1 connections.
    H1(h1::H1Pool),
    /// One of the shared HTTP/2 connections.
    H2(Arc<h2::H2Pool>, usize),
    /// One of the shared HTTP/3 connections.
    H3(Arc<h3::H3Pool>, usize),
}

impl HttpClient {
    /// GETs `url`, reading the whole body; with `keep_body` false the body
    /// is counted but not kept (the outcome holds zeros of its length).
    /// Never panics on network input.
    pub async fn get(&self, url: &str, keep_body: bool) -> Outcome {
        let result = match url.parse::<Uri>() {
            Err(_) => Err(FetchError::BadUrl(url.to_owned())),
            Ok(uri) => match self {
                HttpClient::H1(pool) => pool.get(uri, keep_body).await,
                HttpClient::H2(pool, slot) => pool.get(*slot, uri, keep_body).await,
                HttpClient::H3(pool, slot) => pool.get(*slot, uri, keep_body).await,
            },
        };
        result.unwrap_or_else(|e| Outcome::Failed {
            kind: e.kind(),
            error: e.to_string(),
        })
    }
}

/// Makes each viewer's [`HttpClient`]; the h2/h3 connections are shared.
#[derive(Clone)]
pub enum ClientFactory {
    /// Per-viewer h1 pools sharing one TLS connector.
    H1(Arc<Shared>, Option<tokio_rustls::TlsConnector>),
    /// Shared h2 connections.
    H2(Arc<h2::H2Pool>),
    /// Shared h3 connections.
    H3(Arc<h3::H3Pool>),
}

impl std::fmt::Debug for ClientFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientFactory::H1(shared, _) => f.debug_tuple("H1").field(&shared.origin).finish(),
            ClientFactory::H2(pool) => f.debug_tuple("H2").field(pool).finish(),
            ClientFactory::H3(pool) => f.debug_tuple("H3").field(pool).finish(),
        }
    }
}

impl ClientFactory {
    /// Checks the URL and prepares TLS and pools; connects nothing yet.
    pub fn new(url: &str, options: ClientOptions) -> Result<ClientFactory, ClientError> {
        let origin = Origin::of(url)?;
        let sources = source::SourceAddrs::new(options.source_addrs.clone());
        let shared = Arc::new(Shared {
            origin,
            options,
            sources,
        });
        Ok(match shared.options.protocol {
            Protocol::H1 => {
                let tls = h1::connector(&shared)?;
                ClientFactory::H1(shared, tls)
            }
            Protocol::H2 => ClientFactory::H2(Arc::new(h2::H2Pool::new(shared)?)),
            Protocol::H3 => ClientFactory::H3(Arc::new(h3::H3Pool::new(shared)?)),
        })
    }

    /// The client of viewer `index`.
    pub fn client(&self, index: usize) -> HttpClient {
        match self {
            ClientFactory::H1(shared, tls) => {
                HttpClient::H1(h1::H1Pool::new(shared.clone(), tls.clone()))
            }
            ClientFactory::H2(pool) => HttpClient::H2(pool.clone(), index % pool.len()),
            ClientFactory::H3(pool) => HttpClient::H3(pool.clone(), index % pool.len()),
        }
    }
}
