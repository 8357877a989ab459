//! Shared helpers for the edge integration tests.
//!
//! * [`FakeUpstream`] (in `upstream`): an origin (or shield) stand-in on
//!   `127.0.0.1:0` speaking HTTP/1.1 and prior-knowledge h2c. It counts
//!   requests per path and query, can delay headers, streams media bodies in
//!   chunks with a gap between them, holds LL-HLS blocking playlist requests
//!   (`_HLS_msn`) like an origin waiting for the next part, and can hold its
//!   last chunk (or a blocking answer) until the test opens a gate.
//! * [`RunningEdge`]: an [`EdgeServer`] bound on `127.0.0.1:0` and running.
//! * `client`: h1, h2c, h2 and h3 clients that time each response's first
//!   body bytes; `raw`: raw TCP/UDP for bad input.
//!
//! Every wait is bounded by [`LIMIT`].

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod client;
pub mod raw;
mod upstream;

#[allow(
    unused_imports,
    reason = "not every test binary uses the fake upstream"
)]
pub use upstream::{FakeConfig, FakeUpstream};

use livecdn_edge::state::Edge;
use livecdn_edge::{CertInfo, EdgeServer};
use livecdn_shared::config::{EdgeConfig, EdgeRole};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
/// Upper bound on any single wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(15);

/// Bounds `fut` by [`LIMIT`], failing the test on timeout.
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: timed out after {LIMIT:?}"),
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether
/// it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An edge config listening on cleartext `127.0.0.1:0` only, with short
/// timeouts suited to tests.
pub fn edge_config(role: EdgeRole, origins: &[String], shields: &[String]) -> EdgeConfig {
    let mut config = EdgeConfig {
        role,
        ..EdgeConfig::default()
    };
    config.listen.http = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.listen.https = None;
    config.listen.h3 = false;
    config.listen.header_timeout = Duration::from_secs(2);
    config.upstream.origins = origins.to_vec();
    config.upstream.shields = shields.to_vec();
    config.upstream.timeout = Duration::from_secs(3);
    config.upstream.health_interval = Duration::from_millis(200);
    config.cache.max_bytes = 64 * 1024 * 1024;
    config.cache.lock_timeout = Duration::from_secs(10);
    config
}

/// Like [`edge_config`], plus HTTPS and HTTP/3 on `127.0.0.1:0` with a
/// self-signed certificate.
pub fn edge_config_tls(origins: &[String]) -> EdgeConfig {
    let mut config = edge_config(EdgeRole::Edge, origins, &[]);
    config.listen.https = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.listen.h3 = true;
    config
}

/// A bound, running edge.
pub struct RunningEdge {
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub h3: Option<SocketAddr>,
    pub cert: Option<CertInfo>,
    /// PEM of the certificate, read right after bind.
    pub cert_pem: Option<String>,
    pub edge: Arc<Edge>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningEdge {
    pub async fn start(config: EdgeConfig) -> RunningEdge {
        let server = EdgeServer::bind(config).await.unwrap();
        let cert = server.certificate().cloned();
        let cert_pem = cert
            .as_ref()
            .map(|c| std::fs::read_to_string(&c.cert_path).unwrap());
        let (http, https, h3) = (
            server.http_addr().unwrap(),
            server.https_addr(),
            server.h3_addr(),
        );
        let edge = server.edge();
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(server.run(shutdown));
        RunningEdge {
            http,
            https,
            h3,
            cert,
            cert_pem,
            edge,
            stop,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`, for use as another edge's shield.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Asks the edge to shut down and checks it stops in bounded time.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            bounded("edge shutdown", task).await.unwrap();
        }
    }
}

impl Drop for RunningEdge {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
