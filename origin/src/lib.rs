//! livecdn origin: RTMP ingest, the LL-HLS packager, and the origin HTTP
//! server.
//!
//! [`Origin::bind`] opens the listeners (so callers learn the real ports,
//! e.g. when binding `127.0.0.1:0` in tests) and [`Origin::run`] serves
//! until the shutdown watch flips. Each service is a task the run loop
//! supervises; none is detached.

pub mod cluster;
pub mod control;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod opus;
pub mod packager;
pub mod push;
pub mod record;
pub mod registry;
pub mod stream_map;
pub mod transcode;
pub mod verdict;
pub mod webhook;
pub mod webrtc;
pub mod whip;

use livecdn_shared::access_log::AccessLog;
use livecdn_shared::admin::Surface;
use livecdn_shared::config::OriginConfig;
use packager::PackagerConfig;
use registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Everything the services share.
pub struct OriginState {
    pub config: OriginConfig,
    pub registry: Registry,
    pub webhooks: webhook::Webhooks,
    pub metrics: metrics::Metrics,
    /// Viewer counts the edges report over push.
    pub push_viewers: push::PushViewers,
    /// The ABR ladder's encoder settings (off without ffmpeg).
    pub transcode: Arc<transcode::Settings>,
    /// One line per HTTP request, when `access_log.enabled` (set by
    /// [`Origin::bind`], which starts its writer).
    pub access_log: Option<Arc<AccessLog>>,
    /// Channels and stream keys, when `control.database` is set (opened
    /// by [`Origin::bind`]).
    pub control: Option<control::Control>,
    /// The RTMP listener's address as bound (the ingest endpoint a new
    /// channel is given names its port).
    pub rtmp_addr: Option<SocketAddr>,
    /// Recordings on disk (opened by [`Origin::bind`]).
    pub recorder: Option<Arc<record::Recorder>>,
    /// WHEP playback, when `webrtc.enabled` and its port could be bound
    /// (started by [`Origin::bind`]).
    pub webrtc: std::sync::OnceLock<livecdn_webrtc::RtcServer>,
}

impl OriginState {
    pub fn new(config: OriginConfig) -> Self {
        let l = &config.llhls;
        let packager = PackagerConfig {
            part_target: l.part_target,
            segment_target: l.segment_target,
            window_segments: l.window_segments,
            reconnect_grace: l.reconnect_grace,
            low_latency: true,
            opus: config.webrtc.enabled,
        };
        Self {
            registry: Registry::new(packager, l.ended_linger),
            webhooks: webhook::Webhooks::new(config.webhooks.timeout),
            metrics: metrics::Metrics::new(),
            push_viewers: push::PushViewers::default(),
            transcode: Arc::new(transcode::Settings::from_config(&config.ladder).check_ffmpeg()),
            access_log: None,
            control: None,
            rtmp_addr: None,
            recorder: None,
            webrtc: std::sync::OnceLock::new(),
            config,
        }
    }
}

/// A bound, not yet running origin.
pub struct Origin {
    state: Arc<OriginState>,
    rtmp: TcpListener,
    /// `ingest.rtmps`, when enabled.
    rtmps: Option<ingest::Ingress>,
    http: TcpListener,
    /// `http.admin_listen`, when metrics and the API have their own port.
    admin: Option<TcpListener>,
    push: Option<push::PushServer>,
    /// Stops the WebRTC server and the stream map announcer at shutdown.
    services_stop: tokio_util::sync::CancellationToken,
    /// This origin's entries in the stream map, with `cluster.redis`.
    announcer: Option<livecdn_cluster::Announcer>,
}

impl Origin {
    /// Binds the RTMP (and RTMPS) and HTTP listeners.
    pub async fn bind(config: OriginConfig) -> std::io::Result<Self> {
        let rtmp = TcpListener::bind(config.ingest.listen).await?;
        let rtmps = match config.ingest.rtmps.enabled {
            true => Some(ingest::Ingress::rtmps(&config.ingest.rtmps).await?),
            false => None,
        };
        let http = TcpListener::bind(config.http.listen).await?;
        let admin = match config.http.admin_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        // Push is an optimisation (edges pull without it), so a push port
        // that cannot be bound is logged, not fatal.
        let push = match config.push.enabled {
            true => push::PushServer::bind(&config.push)
                .inspect_err(|e| tracing::warn!(error = %e, "push disabled"))
                .ok(),
            false => None,
        };
        let access_log = AccessLog::open(&config.access_log).map_err(std::io::Error::other)?;
        let control = match &config.control.database {
            Some(path) => {
                let store = control::Store::open(path).map_err(|e| {
                    std::io::Error::other(format!("control database {}: {e}", path.display()))
                })?;
                let c = control::Control::new(store, config.control.key_ttl)
                    .map_err(|e| std::io::Error::other(format!("control database: {e}")))?;
                Some(c)
            }
            None => None,
        };
        let rtmp_addr = rtmp.local_addr().ok();
        let announcer = stream_map::announcer(
            &config.cluster,
            http.local_addr()?,
            push.as_ref().and_then(|p| p.local_addr().ok()),
        )
        .map_err(std::io::Error::other)?;
        let recorder = Some(Arc::new(
            record::Recorder::open(config.recording.clone()).await,
        ));
        let state = Arc::new(OriginState {
            access_log,
            control,
            rtmp_addr,
            recorder,
            ..OriginState::new(config)
        });
        let services_stop = tokio_util::sync::CancellationToken::new();
        // WebRTC is one way to watch among several: a port that cannot be
        // bound is logged, and WHEP answers 404.
        if state.config.webrtc.enabled {
            let source = Arc::new(webrtc::OriginSource::new(Arc::downgrade(&state)));
            match livecdn_webrtc::RtcServer::start(
                &state.config.webrtc,
                source,
                services_stop.clone(),
            )
            .await
            {
                Ok(server) => {
                    let _ = state.webrtc.set(server);
                }
                Err(e) => tracing::warn!(error = %e, "webrtc disabled"),
            }
        }
        Ok(Self {
            state,
            rtmp,
            rtmps,
            http,
            admin,
            push,
            services_stop,
            announcer,
        })
    }

    /// The WebRTC host candidates (media addresses), if WHEP is on.
    pub fn webrtc_addrs(&self) -> Vec<SocketAddr> {
        self.state
            .webrtc
            .get()
            .map(|w| w.candidates().to_vec())
            .unwrap_or_default()
    }

    /// The push endpoint's UDP address, if push is on.
    pub fn push_addr(&self) -> Option<SocketAddr> {
        self.push.as_ref().and_then(|p| p.local_addr().ok())
    }

    /// The push certificate's SPKI pin, if push is on.
    pub fn push_spki(&self) -> Option<&str> {
        self.push.as_ref().map(|p| p.spki_sha256())
    }

    pub fn rtmp_addr(&self) -> std::io::Result<SocketAddr> {
        self.rtmp.local_addr()
    }

    /// The RTMPS listener's address, if RTMPS is on.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.rtmps.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The admin listener's address, if one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> Arc<OriginState> {
        self.state.clone()
    }

    /// Serves until `shutdown` becomes true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let state = self.state;
        let ingresses = std::iter::once(ingest::Ingress::rtmp(self.rtmp))
            .chain(self.rtmps)
            .collect();
        let rtmp = tokio::spawn(ingest::serve(ingresses, state.clone(), shutdown.clone()));
        let surface = match self.admin {
            Some(_) => Surface::Public,
            None => Surface::All,
        };
        let http = tokio::spawn(http::serve(
            self.http,
            state.clone(),
            surface,
            shutdown.clone(),
        ));
        let admin = self.admin.map(|listener| {
            tokio::spawn(http::serve(
                listener,
                state.clone(),
                Surface::Admin,
                shutdown.clone(),
            ))
        });
        let reaper = tokio::spawn(reap(state.clone(), shutdown.clone()));
        let retention = tokio::spawn(retain(state.clone(), shutdown.clone()));
        let recorded = tokio::spawn(report_recordings(state.clone(), shutdown.clone()));
        let drainer = {
            let (state, mut shutdown) = (state.clone(), shutdown.clone());
            let services_stop = self.services_stop.clone();
            tokio::spawn(async move {
                if shutdown.wait_for(|stop| *stop).await.is_ok() {
                    tracing::info!("draining: held requests answer now, no new connections");
                    state.registry.drain();
                }
                services_stop.cancel();
            })
        };
        let stream_map = {
            let (state, stop) = (state.clone(), self.services_stop.clone());
            let announcer = self.announcer;
            tokio::spawn(async move {
                if let Some(a) = announcer {
                    stream_map::run(state, a, stop).await;
                }
            })
        };
        let push_state = state.clone();
        let push = tokio::spawn(async move {
            if let Some(p) = self.push {
                p.serve(push_state, shutdown).await;
            }
        });
        for (name, task) in [
            ("rtmp", rtmp),
            ("http", http),
            ("reaper", reaper),
            ("retention", retention),
            ("recorded", recorded),
            ("push", push),
            ("drain", drainer),
            ("stream map", stream_map),
        ]
        .into_iter()
        .chain(admin.map(|a| ("admin", a)))
        {
            if let Err(e) = task.await {
                tracing::error!(service = name, error = %e, "service task failed");
            }
        }
        // Recordings close their journals (the streams drained above).
        if let Some(rec) = &state.recorder {
            rec.close(Duration::from_secs(3)).await;
        }
        // Last: the notifications the ended sessions queued, and the
        // access log lines of the last requests.
        let lost = state.webhooks.flush().await;
        if lost > 0 {
            tracing::warn!(lost, "webhook notifications still in flight at exit");
        }
        if let Some(log) = state.access_log.clone() {
            let flushed = tokio::task::spawn_blocking(move || log.flush(Duration::from_secs(2)));
            if !matches!(flushed.await, Ok(true)) {
                tracing::warn!("access log lines still queued at exit");
            }
        }
        tracing::info!("origin stopped");
    }
}

/// Logs a health change and tells the `on_health` webhook.
fn report_health(state: &OriginState, stream: &str, change: &verdict::Transition) {
    tracing::warn!(
        %stream,
        from = change.from.as_str(),
        to = change.to.as_str(),
        reasons = ?change.reasons,
        "stream health changed"
    );
    state.metrics.health_change(change.to.as_str());
    if let Some(url) = state.config.webhooks.on_health.clone() {
        let body = serde_json::json!({
            "event": "health",
            "stream": stream,
            "health": change.to,
            "previous": change.from,
            "reasons": change.reasons,
        });
        state.webhooks.notify(url, body, "on_health");
    }
}

/// Ends streams whose publisher did not come back, drops ended ones, and
/// judges every live stream's health.
async fn reap(state: Arc<OriginState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (stream, change) in state.registry.tick(Instant::now()) {
                    report_health(&state, &stream, &change);
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Applies the recordings' retention limits every minute (and when each
/// recording ends).
async fn retain(state: Arc<OriginState>, mut shutdown: watch::Receiver<bool>) {
    let Some(rec) = state.recorder.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                rec.enforce_retention(record::now_ms()).await;
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Uploads each recording that became final (when configured), then
/// tells `on_record_done` about it, with its objects or the upload's
/// error. At most [`UPLOADS_AT_ONCE`] recordings upload at once.
async fn report_recordings(state: Arc<OriginState>, mut shutdown: watch::Receiver<bool>) {
    let Some(rec) = state.recorder.clone() else {
        return;
    };
    let Some(mut finished) = rec.take_finished() else {
        return;
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(UPLOADS_AT_ONCE));
    let jobs = tokio_util::task::TaskTracker::new();
    // After a shutdown begins, recordings still close (their streams
    // drain): their reports are taken for a few more seconds.
    let mut until: Option<tokio::time::Instant> = None;
    loop {
        let r = match until {
            None => tokio::select! {
                r = finished.recv() => r,
                _ = shutdown.wait_for(|s| *s) => {
                    until = Some(tokio::time::Instant::now() + Duration::from_secs(3));
                    continue;
                }
            },
            Some(t) => match tokio::time::timeout_at(t, finished.recv()).await {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        let Some(r) = r else {
            break;
        };
        let (state, rec, uploads) = (state.clone(), rec.clone(), uploads.clone());
        jobs.spawn(async move {
            let objects = match &rec.uploader {
                Some(u) => {
                    let _slot = uploads.acquire().await;
                    Some(u.deliver(&rec, &r).await)
                }
                None => None,
            };
            let Some(url) = state.config.webhooks.on_record_done.clone() else {
                return;
            };
            let info = record::info::RecordingInfo::of(&r, rec.root());
            let mut body = serde_json::to_value(&info).unwrap_or_default();
            if let Some(o) = body.as_object_mut() {
                o.insert("event".into(), "record_done".into());
                o.insert("recording".into(), info.id.clone().into());
                match objects {
                    Some(Ok(list)) => {
                        o.insert(
                            "objects".into(),
                            serde_json::to_value(list).unwrap_or_default(),
                        );
                    }
                    Some(Err(e)) => {
                        o.insert("objects".into(), serde_json::Value::Array(Vec::new()));
                        o.insert("uploadError".into(), e.into());
                    }
                    None => {}
                }
            }
            state
                .webhooks
                .notify_retrying(url, body, "on_record_done", 3);
        });
    }
    jobs.close();
    // Uploads in progress are cut here; the journal says they did not
    // finish, and the next start uploads them.
    let _ = tokio::time::timeout(Duration::from_secs(2), jobs.wait()).await;
}

/// Recordings uploading at once (each with its objects in flight bounded
/// by `recording.upload.concurrency`).
const UPLOADS_AT_ONCE: usize = 2;
