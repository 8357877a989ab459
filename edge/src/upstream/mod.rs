//! Fetching from upstreams (origins, or shields in front of them): a pooled
//! HTTP/2 client, health marks with failover, and rendezvous choice of a
//! stream's shield.
//!
//! With `cluster.redis` the upstreams are not only what is configured:
//! a live stream is fetched from the origin the stream map names (and
//! from no other: an origin is never asked for a stream it does not
//! have; a stream in no origin's entry is a 404 here), a request for a
//! stream in failover is held for the next origin (`cluster.failover_hold`),
//! and an edge's
//! shields are the configured ones plus the live set shields announce.
//! Upstreams learned that way keep their health marks by base URL.

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
    /// The stream map names no origin for this live stream.
    #[error("no origin has stream {0:?}")]
    NotFound(String),
}

/// Upstreams learned from the cluster (origins in map entries, live
/// shields) remembered at most; past it, unhealthy ones are forgotten.
const MAX_LEARNED: usize = 1024;
/// Origins one fetch tries at most (a stream the map keeps moving).
const MAX_ORIGIN_TRIES: usize = 4;
/// How often a request held in a failover reads the map.
const FAILOVER_POLL: Duration = Duration::from_millis(100);

/// The cluster's view, with `cluster.redis`.
pub struct ClusterView {
    pub map: Arc<livecdn_cluster::StreamMap>,
    /// Live shields (edges only).
    pub shields: Option<Arc<livecdn_cluster::Members>>,
    /// `cluster.failover_hold`.
    pub failover_hold: Duration,
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
    cluster: Option<ClusterView>,
    /// Upstreams met through the cluster, by base URL.
    learned: std::sync::Mutex<std::collections::HashMap<String, Arc<Upstream>>>,
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
    pub fn new(config: &UpstreamConfig, role: EdgeRole, cluster: Option<ClusterView>) -> Self {
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
            cluster,
            learned: std::sync::Mutex::new(std::collections::HashMap::new()),
            timeout: config.timeout,
            authorization: config.credential.as_deref().and_then(|c| {
                let mut v = http::HeaderValue::from_str(&format!("Bearer {c}")).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
        }
    }

    /// Every upstream known now: configured, then learned.
    pub fn all(&self) -> Vec<Arc<Upstream>> {
        let mut v: Vec<Arc<Upstream>> = self.shields.iter().chain(&self.origins).cloned().collect();
        let mut learned: Vec<Arc<Upstream>> = self.learned().values().cloned().collect();
        learned.sort_by(|a, b| a.base.cmp(&b.base));
        // `learn` never enters a configured upstream, so no duplicates.
        v.extend(learned);
        v
    }

    /// The cluster's view, with `cluster.redis`.
    pub fn cluster(&self) -> Option<&ClusterView> {
        self.cluster.as_ref()
    }

    /// Whether this node can serve. In a cluster: the map (which names
    /// each stream's origin) answers and, at an edge, the shield set has
    /// been read (else the shields' share would go to the origins). Else:
    /// some upstream is healthy.
    pub fn ready(&self) -> bool {
        match &self.cluster {
            Some(c) => c.map.reachable() && c.shields.as_ref().is_none_or(|s| s.loaded()),
            None => self.all().iter().any(|u| u.is_healthy()),
        }
    }

    fn learned(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<Upstream>>> {
        // Single inserts and lookups: a poisoned map is still consistent.
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstream for a base URL met through the cluster.
    fn learn(&self, base: &str) -> Arc<Upstream> {
        if let Some(u) = self
            .shields
            .iter()
            .chain(&self.origins)
            .find(|u| u.base == base)
        {
            return u.clone();
        }
        let mut learned = self.learned();
        if let Some(u) = learned.get(base) {
            return u.clone();
        }
        if learned.len() >= MAX_LEARNED {
            learned.retain(|_, u| u.is_healthy());
        }
        let u = Arc::new(Upstream::new(base));
        if learned.len() < MAX_LEARNED {
            learned.insert(u.base.clone(), u.clone());
        }
        u
    }

    /// A stream's shields in rendezvous order (configured and live).
    fn shields_for(&self, stream: &str) -> Vec<Arc<Upstream>> {
        let mut all: Vec<Arc<Upstream>> = self.shields.clone();
        if let Some(live) = self.cluster.as_ref().and_then(|c| c.shields.as_ref()) {
            for base in live.live().iter() {
                if !all.iter().any(|u| u.base == base.trim_end_matches('/')) {
                    all.push(self.learn(base));
                }
            }
        }
        let bases: Vec<&str> = all.iter().map(|u| u.base.as_str()).collect();
        rendezvous_order(stream, &bases)
            .into_iter()
            .filter_map(|i| all.get(i).cloned())
            .collect()
    }

    /// The origins to ask for `path` of `stream`: for a live stream with a
    /// stream map, the one origin the map names (none: `NotFound`); else
    /// the configured ones, healthy first. A map that cannot be read and
    /// has no earlier entry falls back to the configured origins.
    async fn origins_for(
        &self,
        stream: &str,
        path: &str,
    ) -> Result<Vec<Arc<Upstream>>, UpstreamError> {
        if let Some(c) = self.cluster.as_ref().filter(|_| path.starts_with("/live/")) {
            match c.map.resolve(stream).await {
                Ok(Some(e)) => return Ok(vec![self.learn(&e.http)]),
                Ok(None) => return Err(UpstreamError::NotFound(stream.to_string())),
                Err(e) => {
                    tracing::warn!(stream, error = %e, "stream map unreachable: configured origins used")
                }
            }
        }
        let mut out = self.origins.clone();
        out.sort_by_key(|u| !u.is_healthy());
        Ok(out)
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
        // Healthy shields, then the origins, then shields marked down (a
        // dead shield costs its timeout only when nothing else answered).
        let (healthy, down): (Vec<_>, Vec<_>) = self
            .shields_for(stream)
            .into_iter()
            .partition(|u| u.is_healthy());
        for up in healthy {
            match self.try_one(&up, path_and_query, wait, headers).await {
                Ok(f) => return Ok(f),
                Err(why) => last = why,
            }
        }
        let mut tried: Vec<String> = Vec::new();
        // A failed fetch from the origin the map named reads the map again:
        // the stream may have moved. A live stream in failover (its origin
        // failed, or the map stopped naming one a moment ago) is held for
        // the next origin, reading the map every FAILOVER_POLL, up to
        // `cluster.failover_hold`: the viewer sees a slow answer, not an
        // error that some players take as fatal.
        let hold = self
            .cluster
            .as_ref()
            .filter(|_| path_and_query.starts_with("/live/"))
            .map(|c| (c, Instant::now() + c.failover_hold));
        loop {
            let in_failover = |tried: &[String]| {
                hold.is_some_and(|(c, until)| {
                    Instant::now() < until
                        && (!tried.is_empty() || c.map.mapped_within(stream, c.failover_hold))
                })
            };
            let origins = match self.origins_for(stream, path_and_query).await {
                Ok(o) => o,
                Err(_) if in_failover(&tried) => {
                    self.wait_for_map(stream).await;
                    continue;
                }
                Err(e) if tried.is_empty() => return Err(e),
                Err(_) => break,
            };
            let fresh: Vec<Arc<Upstream>> = origins
                .into_iter()
                .filter(|u| !tried.contains(&u.base))
                .collect();
            if fresh.is_empty() {
                if in_failover(&tried) {
                    self.wait_for_map(stream).await;
                    continue;
                }
                break;
            }
            for up in fresh {
                tried.push(up.base.clone());
                match self.try_one(&up, path_and_query, wait, headers).await {
                    Ok(f) => {
                        if f.response.status() == StatusCode::NOT_FOUND {
                            self.forget(stream);
                        }
                        return Ok(f);
                    }
                    Err(why) => last = why,
                }
            }
            if self.cluster.is_none() || tried.len() >= MAX_ORIGIN_TRIES {
                break;
            }
            self.forget(stream);
        }
        for up in down {
            match self.try_one(&up, path_and_query, wait, headers).await {
                Ok(f) => return Ok(f),
                Err(why) => last = why,
            }
        }
        Err(UpstreamError::Unavailable(last))
    }

    /// Waits one map poll in a failover; the next lookup reads the map.
    async fn wait_for_map(&self, stream: &str) {
        tokio::time::sleep(FAILOVER_POLL).await;
        self.forget(stream);
    }

    /// The map's entry for `stream` failed a fetch: read it again next time.
    fn forget(&self, stream: &str) {
        if let Some(c) = &self.cluster {
            c.map.invalidate(stream);
        }
    }

    /// One GET from `up`; why it failed (it is then marked unhealthy).
    async fn try_one(
        &self,
        up: &Arc<Upstream>,
        path_and_query: &str,
        wait: Duration,
        headers: &HeaderMap,
    ) -> Result<Fetched, String> {
        let Ok(uri) = format!("{}{}", up.base, path_and_query).parse::<Uri>() else {
            return Err(format!("bad upstream url {}", up.base));
        };
        let mut req = Request::get(uri).header(http::header::USER_AGENT, "livecdn-edge");
        if let Some(auth) = &self.authorization {
            req = req.header(http::header::AUTHORIZATION, auth.clone());
        }
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let req = req
            .body(http_body_util::Empty::new())
            .map_err(|e| format!("request: {e}"))?;
        let start = Instant::now();
        let why = match tokio::time::timeout(self.timeout + wait, self.client.request(req)).await {
            Ok(Ok(resp))
                if !resp.status().is_server_error()
                    || resp.status() == StatusCode::SERVICE_UNAVAILABLE =>
            {
                // 503 is the origin saying "not yet" to a blocking
                // request, not a sick server.
                up.mark(true);
                return Ok(Fetched {
                    response: resp,
                    upstream: up.clone(),
                    latency: start.elapsed(),
                });
            }
            Ok(Ok(resp)) => format!("{} answered {}", up.base, resp.status()),
            Ok(Err(e)) => format!("{}: {e}", up.base),
            Err(_) => format!("{} timed out", up.base),
        };
        up.mark(false);
        Err(why)
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
            for up in self.all().into_iter().filter(|u| !u.is_healthy()) {
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
