//! Fetching from upstreams (origins, or shields in front of them): a pooled
//! HTTP/2 client, health marks with failover, and rendezvous choice of a
//! stream's shield.

mod select;

pub use select::rendezvous_order;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use livecdn_shared::config::{EdgeRole, UpstreamConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Every upstream failed to connect, timed out or answered 5xx.
    #[error("no upstream answered: {0}")]
    Unavailable(String),
}

/// One upstream base URL and what we know of its health.
#[derive(Debug)]
pub struct Upstream {
    pub base: String,
    healthy: AtomicBool,
    pub failures: AtomicU64,
}

impl Upstream {
    fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            healthy: AtomicBool::new(true),
            failures: AtomicU64::new(0),
        }
    }
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
    fn mark(&self, ok: bool) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let was = self.healthy.swap(ok, Ordering::Relaxed);
        if was != ok {
            tracing::warn!(upstream = %self.base, healthy = ok, "upstream health changed");
        }
    }
}

pub struct Upstreams {
    client: Client<HttpConnector, http_body_util::Empty<Bytes>>,
    origins: Vec<Arc<Upstream>>,
    shields: Vec<Arc<Upstream>>,
    timeout: Duration,
    /// `Bearer CREDENTIAL` for every upstream request, when configured.
    authorization: Option<http::HeaderValue>,
}

/// A response and which upstream gave it, with its latency to headers.
pub struct Fetched {
    pub response: Response<Incoming>,
    pub upstream: Arc<Upstream>,
    pub latency: Duration,
}

impl Upstreams {
    pub fn new(config: &UpstreamConfig, role: EdgeRole) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        // HTTP/2 with prior knowledge: one connection per upstream carries
        // every concurrent fetch, and a held blocking request does not tie
        // up a connection.
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .http2_initial_stream_window_size(4 * 1024 * 1024)
            .http2_initial_connection_window_size(32 * 1024 * 1024)
            .http2_keep_alive_interval(Some(Duration::from_secs(10)))
            .timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        let shields = match role {
            EdgeRole::Edge => config
                .shields
                .iter()
                .map(|s| Arc::new(Upstream::new(s)))
                .collect(),
            // A shield never forwards to another shield.
            EdgeRole::Shield => Vec::new(),
        };
        Self {
            client,
            origins: config
                .origins
                .iter()
                .map(|s| Arc::new(Upstream::new(s)))
                .collect(),
            shields,
            timeout: config.timeout,
            authorization: config.credential.as_deref().and_then(|c| {
                let mut v = http::HeaderValue::from_str(&format!("Bearer {c}")).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.shields.iter().chain(&self.origins)
    }

    /// Preference order for a stream: its rendezvous shields, then the
    /// origins in configured order; healthy ones first.
    fn order(&self, stream: &str) -> Vec<Arc<Upstream>> {
        let mut out: Vec<Arc<Upstream>> = rendezvous_order(
            stream,
            &self
                .shields
                .iter()
                .map(|u| u.base.as_str())
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .filter_map(|i| self.shields.get(i).cloned())
        .chain(self.origins.iter().cloned())
        .collect();
        out.sort_by_key(|u| !u.is_healthy());
        out
    }

    /// GETs `path_and_query` from the first upstream that answers without a
    /// server error. `wait` is how long a blocking request may legitimately
    /// be held upstream, added to the timeout.
    pub async fn fetch(
        &self,
        stream: &str,
        path_and_query: &str,
        wait: Duration,
    ) -> Result<Fetched, UpstreamError> {
        self.fetch_with(stream, path_and_query, wait, &HeaderMap::new())
            .await
    }

    /// [`Upstreams::fetch`] with request headers of the client's passed on
    /// (a `Range` for a relayed download).
    pub async fn fetch_with(
        &self,
        stream: &str,
        path_and_query: &str,
        wait: Duration,
        headers: &HeaderMap,
    ) -> Result<Fetched, UpstreamError> {
        let mut last = String::from("no upstream configured");
        for up in self.order(stream) {
            let Ok(uri) = format!("{}{}", up.base, path_and_query).parse::<Uri>() else {
                last = format!("bad upstream url {}", up.base);
                continue;
            };
            let mut req = Request::get(uri).header(http::header::USER_AGENT, "livecdn-edge");
            if let Some(auth) = &self.authorization {
                req = req.header(http::header::AUTHORIZATION, auth.clone());
            }
            for (name, value) in headers {
                req = req.header(name, value);
            }
            let req = req.body(http_body_util::Empty::new());
            let Ok(req) = req else { continue };
            let start = Instant::now();
            match tokio::time::timeout(self.timeout + wait, self.client.request(req)).await {
                Ok(Ok(resp))
                    if !resp.status().is_server_error()
                        || resp.status() == StatusCode::SERVICE_UNAVAILABLE =>
                {
                    // 503 is the origin saying "not yet" to a blocking
                    // request, not a sick server.
                    up.mark(true);
                    return Ok(Fetched {
                        response: resp,
                        upstream: up,
                        latency: start.elapsed(),
                    });
                }
                Ok(Ok(resp)) => {
                    last = format!("{} answered {}", up.base, resp.status());
                    up.mark(false);
                }
                Ok(Err(e)) => {
                    last = format!("{}: {e}", up.base);
                    up.mark(false);
                }
                Err(_) => {
                    last = format!("{} timed out", up.base);
                    up.mark(false);
                }
            }
        }
        Err(UpstreamError::Unavailable(last))
    }

    /// Probes unhealthy upstreams' `/healthz` until shutdown, so that a
    /// recovered origin is used again.
    pub async fn health_loop(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for up in self.all().filter(|u| !u.is_healthy()) {
                let Ok(uri) = format!("{}/healthz", up.base).parse::<Uri>() else {
                    continue;
                };
                let Ok(req) = Request::get(uri).body(http_body_util::Empty::new()) else {
                    continue;
                };
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await,
                    Ok(Ok(r)) if r.status().is_success()
                );
                if ok {
                    up.mark(true);
                }
            }
        }
    }
}
