//! `livecdn edge`: run an edge or shield.

use anyhow::Context;
use livecdn_edge::EdgeServer;
use livecdn_shared::config::{self, EdgeConfig, EdgeRole};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags that override the edge config file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EdgeFlags {
    /// Edge config file (TOML); built-in defaults without it.
    #[arg(long, env = "LIVECDN_EDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// `edge` or `shield` (role).
    #[arg(long, env = "LIVECDN_ROLE", value_parser = parse_role)]
    pub role: Option<EdgeRole>,
    /// Cleartext HTTP/1.1 + h2c listen address (listen.http).
    #[arg(long, env = "LIVECDN_EDGE_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// HTTPS + HTTP/3 listen address (listen.https).
    #[arg(long, env = "LIVECDN_EDGE_HTTPS_LISTEN")]
    pub https_listen: Option<SocketAddr>,
    /// Turn HTTP/3 off (listen.h3 = false).
    #[arg(long)]
    pub no_h3: bool,
    /// Origin URL, repeatable (upstream.origins).
    #[arg(long = "origin", env = "LIVECDN_ORIGINS", value_delimiter = ',')]
    pub origins: Vec<String>,
    /// Shield URL, repeatable (upstream.shields).
    #[arg(long = "shield", env = "LIVECDN_SHIELDS", value_delimiter = ',')]
    pub shields: Vec<String>,
    /// Origin push endpoint `host:port` (UDP), repeatable (upstream.push).
    #[arg(long = "push", env = "LIVECDN_PUSH", value_delimiter = ',')]
    pub push: Vec<String>,
    /// Accepted push certificate SPKI pin, repeatable (upstream.push_spki).
    #[arg(long = "push-spki", env = "LIVECDN_PUSH_SPKI", value_delimiter = ',')]
    pub push_spki: Vec<String>,
    /// Accept any push certificate (upstream.push_insecure; labs only).
    #[arg(long)]
    pub push_insecure: bool,
    /// This node's cluster credential for push and pulls (upstream.credential).
    #[arg(long, env = "LIVECDN_CLUSTER_CREDENTIAL", hide_env_values = true)]
    pub cluster_credential: Option<String>,
    /// Require signed playback tokens under /live/ (auth.required).
    #[arg(long, env = "LIVECDN_REQUIRE_TOKEN")]
    pub require_token: bool,
    /// Secret playback tokens are signed with (auth.secret).
    #[arg(long, env = "LIVECDN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Bearer token for /metrics and /api (admin_token).
    #[arg(long, env = "LIVECDN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Separate cleartext listener for /metrics and /api (listen.admin).
    #[arg(long, env = "LIVECDN_EDGE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Cache size in bytes (cache.max_bytes).
    #[arg(long, env = "LIVECDN_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// Disk tier directory below the memory cache (cache.disk_dir).
    #[arg(long, env = "LIVECDN_CACHE_DISK_DIR")]
    pub cache_disk_dir: Option<std::path::PathBuf>,
    /// Disk tier size in bytes (cache.disk_max_bytes).
    #[arg(long, env = "LIVECDN_CACHE_DISK_BYTES")]
    pub cache_disk_bytes: Option<u64>,
    /// Access log file, or `stdout`; turns access logs on (access_log.path).
    #[arg(long, env = "LIVECDN_EDGE_ACCESS_LOG")]
    pub access_log: Option<std::path::PathBuf>,
    /// WebRTC (WHEP) media listen address, UDP; turns WHEP on (webrtc.listen,
    /// needs --push). Port 0 takes any free port.
    #[arg(long, env = "LIVECDN_EDGE_WEBRTC_LISTEN")]
    pub webrtc_listen: Option<SocketAddr>,
    /// Redis of the cluster, `redis://HOST:PORT` (cluster.redis): each
    /// stream's origin from the stream map, the live shield set, and chat
    /// fan-out across edges.
    #[arg(long, env = "LIVECDN_REDIS")]
    pub redis: Option<String>,
    /// A shield's base URL as edges reach it, `http://HOST:PORT`
    /// (cluster.advertise; default: the HTTP listen address).
    #[arg(long, env = "LIVECDN_ADVERTISE")]
    pub advertise: Option<String>,
}

fn parse_role(s: &str) -> Result<EdgeRole, String> {
    match s {
        "edge" => Ok(EdgeRole::Edge),
        "shield" => Ok(EdgeRole::Shield),
        _ => Err(format!("role must be edge or shield, not {s:?}")),
    }
}

impl EdgeFlags {
    pub fn load(&self) -> anyhow::Result<EdgeConfig> {
        let mut c = match &self.config {
            Some(p) => config::load_edge(p)?,
            None => EdgeConfig::default(),
        };
        if let Some(r) = self.role {
            c.role = r;
        }
        if let Some(a) = self.http_listen {
            c.listen.http = Some(a);
        }
        if let Some(a) = self.https_listen {
            c.listen.https = Some(a);
        }
        if self.no_h3 {
            c.listen.h3 = false;
        }
        if !self.origins.is_empty() {
            c.upstream.origins = self.origins.clone();
        }
        if !self.shields.is_empty() {
            c.upstream.shields = self.shields.clone();
        }
        if !self.push.is_empty() {
            c.upstream.push = self.push.clone();
        }
        if !self.push_spki.is_empty() {
            c.upstream.push_spki = self.push_spki.clone();
        }
        if self.push_insecure {
            c.upstream.push_insecure = true;
        }
        if let Some(v) = &self.cluster_credential {
            c.upstream.credential = Some(v.clone());
        }
        if self.require_token {
            c.auth.required = true;
        }
        if let Some(s) = &self.secret {
            c.auth.secret = Some(s.clone());
        }
        if let Some(b) = self.cache_bytes {
            c.cache.max_bytes = b;
        }
        if let Some(d) = &self.cache_disk_dir {
            c.cache.disk_dir = Some(d.clone());
        }
        if let Some(b) = self.cache_disk_bytes {
            c.cache.disk_max_bytes = b;
        }
        if let Some(t) = &self.admin_token {
            c.admin_token = Some(t.clone());
        }
        if let Some(a) = self.admin_listen {
            c.listen.admin = Some(a);
        }
        if let Some(p) = &self.access_log {
            c.access_log.enabled = true;
            c.access_log.path = p.clone();
        }
        if let Some(a) = self.webrtc_listen {
            let rtc = c.webrtc.get_or_insert_with(Default::default);
            rtc.enabled = true;
            rtc.listen = a;
        }
        if let Some(r) = &self.redis {
            c.cluster.redis = Some(r.clone());
        }
        if let Some(a) = &self.advertise {
            c.cluster.advertise = Some(a.clone());
        }
        let text = toml::to_string(&c).context("serialising config")?;
        config::parse_edge(&text, "flags and environment")?;
        Ok(c)
    }
}

/// Binds an edge and prints where it listens (one machine-readable line,
/// then the certificate pin for browsers).
pub async fn bind_and_announce(config: EdgeConfig) -> anyhow::Result<EdgeServer> {
    for w in config::edge_warnings(&config) {
        tracing::warn!("{w}");
    }
    let server = EdgeServer::bind(config).await?;
    let mut line = String::from("edge");
    if let Some(a) = server.http_addr() {
        line.push_str(&format!(" edge_http={a}"));
    }
    if let Some(a) = server.https_addr() {
        line.push_str(&format!(" edge_https={a}"));
    }
    if let Some(a) = server.h3_addr() {
        line.push_str(&format!(" edge_h3={a}"));
    }
    if let Some(a) = server.admin_addr() {
        line.push_str(&format!(" edge_admin={a}"));
    }
    if let Some(a) = server.webrtc_addrs().first() {
        line.push_str(&format!(" edge_webrtc={a}"));
    }
    if let Some(c) = server.certificate() {
        line.push_str(&format!(" spki={}", c.spki_sha256));
    }
    say!("{line}");
    if let Some(c) = server.certificate().filter(|c| c.self_signed) {
        say!(
            "  self-signed certificate: {} (for chromium: --ignore-certificate-errors-spki-list={})",
            c.cert_path.display(),
            c.spki_sha256
        );
    }
    Ok(server)
}

pub async fn run(config: EdgeConfig) -> anyhow::Result<()> {
    let server = bind_and_announce(config).await?;
    server.run(super::up::shutdown_on_signal()).await;
    Ok(())
}
