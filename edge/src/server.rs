//! Binding and running an edge: listeners from the config, a certificate
//! (configured or self-signed), the upstream health loop, all supervised
//! until shutdown.

use crate::cache::{Cache, CacheConfig, CachePolicy, DiskTier, DiskTierConfig};
use crate::listen::{self, Limits};
use crate::metrics::EdgeMetrics;
use crate::router::EdgeHandler;
use crate::serve::Handler;
use crate::state::Edge;
use crate::streams::Streams;
use crate::upstream::Upstreams;
use crate::viewers::Viewers;
use livecdn_disk::Preference;
use livecdn_shared::access_log::AccessLog;
use livecdn_shared::admin::Surface;
use livecdn_shared::config::DiskIo;
use livecdn_shared::config::EdgeConfig;
use livecdn_shared::tls;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why an edge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not bind.
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The certificate or key could not be read or used.
    #[error("tls: {0}")]
    Tls(String),
    /// The access log could not start.
    #[error("access log: {0}")]
    AccessLog(String),
    /// The disk tier's directory could not be prepared.
    #[error("cache disk tier: {0}")]
    Disk(String),
    /// The stream map or shield set could not be set up.
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterStartError),
    /// The chat service could not start (a bad `chat.redis`).
    #[error("chat: {0}")]
    Chat(#[from] livecdn_chat::ChatError),
    #[error("webrtc {addr}: {source}")]
    WebRtc {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The certificate the HTTPS and HTTP/3 listeners present.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Where the PEM certificate is (written there if self-signed).
    pub cert_path: PathBuf,
    /// base64 SHA-256 of its public key, for chromium's
    /// `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: String,
    pub self_signed: bool,
}

pub struct EdgeServer {
    edge: Arc<Edge>,
    http: Option<TcpListener>,
    https: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    h3: Option<quinn::Endpoint>,
    /// `listen.admin`: metrics and the API on their own cleartext port.
    admin: Option<TcpListener>,
    cert: Option<CertInfo>,
    limits: Limits,
    /// Cancelled at shutdown: stops WebRTC, closes chat connections, and
    /// takes a shield out of the cluster's shield set.
    services_stop: tokio_util::sync::CancellationToken,
    /// With `cluster.redis`: the shield set to follow or join.
    cluster: Option<crate::cluster::Cluster>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn certificate(config: &EdgeConfig) -> Result<(String, String, CertInfo), StartError> {
    let tls_err = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            let (cert_pem, key_pem) = tls::read_pem_pair(cert, key).map_err(|e| tls_err(&e))?;
            let der = tls::first_certificate_der(&cert_pem).map_err(|e| tls_err(&e))?;
            let spki = tls::spki_sha256_base64(&der).map_err(|e| tls_err(&e))?;
            Ok((
                cert_pem,
                key_pem,
                CertInfo {
                    cert_path: cert.clone(),
                    spki_sha256: spki,
                    self_signed: false,
                },
            ))
        }
        _ => {
            let made = tls::self_signed(&["localhost", "127.0.0.1"]).map_err(|e| tls_err(&e))?;
            let spki = tls::spki_sha256_base64(&made.cert_der).map_err(|e| tls_err(&e))?;
            // One file per edge (several edges may share a process): the
            // name carries the key's fingerprint.
            let tag: String = spki
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect();
            let path =
                std::env::temp_dir().join(format!("livecdn-edge-{}-{tag}.crt", std::process::id()));
            std::fs::write(&path, &made.cert_pem)
                .map_err(|e| tls_err(&format!("{}: {e}", path.display())))?;
            Ok((
                made.cert_pem,
                made.key_pem,
                CertInfo {
                    cert_path: path,
                    spki_sha256: spki,
                    self_signed: true,
                },
            ))
        }
    }
}

impl EdgeServer {
    pub async fn bind(config: EdgeConfig) -> Result<Self, StartError> {
        let limits = Limits {
            max_connections: config.listen.max_connections,
            max_connections_per_ip: config.listen.max_connections_per_ip,
            header_read_timeout: config.listen.header_timeout,
            idle_timeout: config.listen.idle_timeout,
            ..Limits::default()
        };
        let http = match config.listen.http {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let admin = match config.listen.admin {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let (mut https, mut h3, mut cert) = (None, None, None);
        if let Some(addr) = config.listen.https {
            let (cert_pem, key_pem, info) = certificate(&config)?;
            let tcp_tls = tls::server_config(&cert_pem, &key_pem, &[b"h2", b"http/1.1"])
                .map_err(|e| StartError::Tls(e.to_string()))?;
            let listener = bind(addr).await?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            if config.listen.h3 {
                let quic_tls = tls::server_config(&cert_pem, &key_pem, &[b"h3"])
                    .map_err(|e| StartError::Tls(e.to_string()))?;
                // Same port number on UDP, so Alt-Svc can say ":PORT".
                h3 = Some(
                    listen::endpoint(bound, quic_tls, &limits).map_err(|source| {
                        StartError::Bind {
                            addr: bound,
                            source,
                        }
                    })?,
                );
            }
            https = Some((listener, tcp_tls));
            cert = Some(info);
        }
        let policy = CachePolicy::default();
        let disk = match &config.cache.disk_dir {
            Some(dir) => Some(
                DiskTier::start(DiskTierConfig {
                    dir: dir.clone(),
                    max_bytes: config.cache.disk_max_bytes,
                    preference: match config.cache.disk_io {
                        DiskIo::Auto => Preference::Auto,
                        DiskIo::IoUring => Preference::Uring,
                        DiskIo::Std => Preference::Std,
                    },
                })
                .await
                .map_err(|e| StartError::Disk(e.to_string()))?,
            ),
            None => None,
        };
        let cache = Cache::with_disk(
            CacheConfig {
                max_bytes: config.cache.max_bytes,
                policy,
                lock_timeout: config.cache.lock_timeout,
                ..CacheConfig::default()
            },
            disk,
        );
        let cluster =
            crate::cluster::Cluster::new(&config, http.as_ref().and_then(|l| l.local_addr().ok()))?;
        let push = crate::push::Push::new(
            &config.upstream,
            policy.target_duration,
            cluster.as_ref().map(|c| c.map.clone()),
        );
        let live = Arc::new(crate::live::Live::default());
        let services_stop = tokio_util::sync::CancellationToken::new();
        let webrtc = match (&config.webrtc, &push) {
            (Some(rtc), Some(push)) if rtc.enabled => {
                let source = Arc::new(crate::webrtc::EdgeSource::new(live.clone(), push.clone()));
                let server = livecdn_webrtc::RtcServer::start(rtc, source, services_stop.clone())
                    .await
                    .map_err(|source| StartError::WebRtc {
                        addr: rtc.listen,
                        source,
                    })?;
                Some(server)
            }
            (Some(rtc), None) if rtc.enabled => {
                tracing::warn!("[webrtc] needs upstream.push at an edge: WHEP is off");
                None
            }
            _ => None,
        };
        let viewers = Arc::new(Viewers::new(policy.target_duration * 2));
        let chat = if config.chat.enabled {
            let counted = viewers.clone();
            let rtc = webrtc.as_ref().map(|w| w.metrics.clone());
            let local: livecdn_chat::LocalViewers = Arc::new(move |stream: &str| {
                let hls = counted
                    .counts(std::time::Instant::now())
                    .into_iter()
                    .find(|(s, _)| s == stream)
                    .map_or(0, |(_, n)| n as u64);
                hls + rtc.as_ref().map_or(0, |m| m.stream_sessions(stream))
            });
            // Rooms span the cluster's Redis unless chat names its own.
            let mut chat = config.chat.clone();
            chat.redis = chat.redis.or_else(|| config.cluster.redis.clone());
            Some(livecdn_chat::Chat::start(
                chat,
                config.auth.secret.as_deref(),
                local,
                services_stop.clone(),
            )?)
        } else {
            None
        };
        let edge = Arc::new(Edge {
            upstreams: Arc::new(Upstreams::new(
                &config.upstream,
                config.role,
                cluster.as_ref().map(|c| c.view()),
            )),
            cache,
            metrics: EdgeMetrics::new(),
            viewers,
            chat,
            streams: Arc::new(Streams::new(policy)),
            push,
            live,
            webrtc,
            access_log: AccessLog::open(&config.access_log)
                .map_err(|e| StartError::AccessLog(e.to_string()))?,
            config,
        });
        Ok(Self {
            edge,
            http,
            https,
            h3,
            admin,
            cert,
            limits,
            services_stop,
            cluster,
        })
    }

    /// The WebRTC host candidates viewers are offered, when WHEP is on.
    pub fn webrtc_addrs(&self) -> Vec<SocketAddr> {
        self.edge
            .webrtc
            .as_ref()
            .map(|w| w.candidates().to_vec())
            .unwrap_or_default()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The admin listener's address, if one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn h3_addr(&self) -> Option<SocketAddr> {
        self.h3.as_ref().and_then(|e| e.local_addr().ok())
    }

    pub fn certificate(&self) -> Option<&CertInfo> {
        self.cert.as_ref()
    }

    pub fn edge(&self) -> Arc<Edge> {
        self.edge.clone()
    }

    /// Serves until `shutdown` becomes true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let surface = match self.admin {
            Some(_) => Surface::Public,
            None => Surface::All,
        };
        let handler: Arc<dyn Handler> = Arc::new(EdgeHandler(self.edge.clone(), surface));
        let alt_svc = self
            .h3
            .as_ref()
            .and_then(|e| e.local_addr().ok())
            .map(|a| listen::alt_svc(a.port()));
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(l) = self.admin {
            let admin: Arc<dyn Handler> = Arc::new(EdgeHandler(self.edge.clone(), Surface::Admin));
            tasks.spawn(listen::serve_tcp(
                l,
                None,
                admin,
                self.limits.clone(),
                None,
                shutdown.clone(),
            ));
        }
        if let Some(l) = self.http {
            tasks.spawn(listen::serve_tcp(
                l,
                None,
                handler.clone(),
                self.limits.clone(),
                alt_svc.clone(),
                shutdown.clone(),
            ));
        }
        if let Some((l, tls)) = self.https {
            tasks.spawn(listen::serve_tcp(
                l,
                Some(tls),
                handler.clone(),
                self.limits.clone(),
                alt_svc.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(ep) = self.h3 {
            tasks.spawn(listen::serve_h3(
                ep,
                handler.clone(),
                self.limits.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(housekeeping(self.edge.cache.clone(), shutdown.clone()));
        let (stop, mut stopped) = (self.services_stop.clone(), shutdown.clone());
        tasks.spawn(async move {
            let _ = stopped.changed().await;
            stop.cancel();
        });
        let interval = self.edge.config.upstream.health_interval;
        tasks.spawn(
            self.edge
                .upstreams
                .clone()
                .health_loop(interval, shutdown.clone()),
        );
        if let Some(cluster) = self.cluster {
            tasks.spawn(cluster.run(self.services_stop.clone()));
        }
        if let Some(push) = self.edge.push.clone() {
            let feeds = crate::push::Feeds {
                cache: self.edge.cache.clone(),
                streams: self.edge.streams.clone(),
                viewers: self.edge.viewers.clone(),
                live: self.edge.live.clone(),
                webrtc: self.edge.webrtc.as_ref().map(|w| w.metrics.clone()),
            };
            tasks.spawn(crate::push::run(feeds, push, shutdown.clone()));
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "edge service task failed");
            }
        }
        if let Some(log) = self.edge.access_log.clone() {
            let limit = std::time::Duration::from_secs(2);
            let flushed = tokio::task::spawn_blocking(move || log.flush(limit)).await;
            if !matches!(flushed, Ok(true)) {
                tracing::warn!("access log lines still queued at exit");
            }
        }
    }
}

/// How often the cache's deferred maintenance runs when requests do not
/// run it.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// moka applies evictions and expiry on later cache operations; an edge
/// that goes quiet after a burst would hold its overshoot (and keep what
/// the disk tier should get) until the next request. This runs it on a
/// timer instead.
async fn housekeeping(cache: Cache, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => cache.run_pending_tasks().await,
            _ = shutdown.changed() => return,
        }
    }
}
