//! `livecdn up` and `livecdn origin`: run until Ctrl-C.

use livecdn_loadtest::{PublishOptions, RtmpUrl};
use livecdn_origin::Origin;
use livecdn_shared::config::EdgeConfig;
use livecdn_shared::config::{
    Bitrate, H264Profile, LadderConfig, OriginConfig, RecordPolicy, RecordingConfig, RungConfig,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// Flips the shutdown watch on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

pub async fn run_origin(config: OriginConfig) -> anyhow::Result<()> {
    if config.secret.is_none() {
        tracing::warn!(
            "no secret configured: signed stream keys are refused (static keys and webhooks still work)"
        );
    }
    for w in livecdn_shared::config::origin_warnings(&config) {
        tracing::warn!("{w}");
    }
    let origin = Origin::bind(config).await?;
    // Machine-readable line for scripts and tests (they bind port 0).
    say!(
        "listening rtmp={}{} http={}{}{}",
        origin.rtmp_addr()?,
        rtmps_word(&origin),
        origin.http_addr()?,
        push_words(&origin),
        webrtc_word(&origin)
    );
    origin.run(shutdown_on_signal()).await;
    Ok(())
}

/// `livecdn up` records every stream (every rendition, so its DVR window
/// works across the ladder) unless told `--record=none`, bounded by a
/// retention limit. Like its channel database, the recordings are for
/// the run (a directory under the temporary directory, removed at exit)
/// unless the config or `--recording-dir` names a directory to keep, which
/// later runs then find again. Returns the run's own directory, if any.
pub fn recording_defaults(
    config: &mut OriginConfig,
    flag: Option<RecordPolicy>,
    dir_flag: bool,
) -> Option<PathBuf> {
    let r = &mut config.recording;
    if flag.is_none() {
        r.policy = RecordPolicy::All;
    }
    // Every rung too, so the demo's live playlists reach back (DVR needs
    // each rendition a player may switch to).
    if r.renditions == RecordingConfig::default().renditions {
        r.renditions = livecdn_shared::config::RecordRenditions::All;
    }
    if r.max_age.is_none() && r.max_bytes == 0 {
        r.max_age = Some(Duration::from_secs(24 * 3600));
        r.max_bytes = 2 << 30;
    }
    let untouched = RecordingConfig::default();
    (!dir_flag && r.dir == untouched.dir).then(|| {
        r.dir = std::env::temp_dir().join(format!("livecdn-up-{}-recordings", std::process::id()));
        r.dir.clone()
    })
}

/// `livecdn up`: everything on localhost with a fresh secret, OBS settings
/// printed, and with `--demo` a built-in publisher looping the sample clip.
pub async fn run(
    mut config: OriginConfig,
    demo: bool,
    explicit_listen: bool,
    run_recordings: Option<PathBuf>,
) -> anyhow::Result<()> {
    if !explicit_listen {
        config.ingest.listen = SocketAddr::from(([127, 0, 0, 1], config.ingest.listen.port()));
        config.http.listen = SocketAddr::from(([127, 0, 0, 1], config.http.listen.port()));
        config.push.listen = SocketAddr::from(([127, 0, 0, 1], config.push.listen.port()));
        config.ingest.rtmps.listen =
            SocketAddr::from(([127, 0, 0, 1], config.ingest.rtmps.listen.port()));
    }
    // RTMPS beside RTMP, with a self-signed certificate unless configured.
    config.ingest.rtmps.enabled = true;
    let secret = config.secret.clone().unwrap_or_else(|| {
        let bytes: [u8; 24] = rand::random();
        hex::encode(bytes)
    });
    config.secret = Some(secret.clone());
    // The API and metrics of this run need a token too; the edge shares it.
    let admin_token = config.admin_token.clone().unwrap_or_else(|| {
        let bytes: [u8; 16] = rand::random();
        hex::encode(bytes)
    });
    config.admin_token = Some(admin_token.clone());
    if demo && config.ladder == LadderConfig::default() {
        config.ladder.rungs = demo_ladder();
    }
    // Channels (`/api/channels`) in a database for this run, unless the
    // config names one to keep.
    let run_db = config
        .control
        .database
        .is_none()
        .then(|| std::env::temp_dir().join(format!("livecdn-up-{}.db", std::process::id())));
    if let Some(db) = &run_db {
        config.control.database = Some(db.clone());
    }
    // New channels play through the edge when its port is the fixed one.
    if config.control.playback_url.is_none() && config.http.listen.port() != 0 {
        config.control.playback_url = Some("http://127.0.0.1:8081".to_string());
    }
    let origin = Origin::bind(config.clone()).await?;
    let rtmp = origin.rtmp_addr()?;
    let http = origin.http_addr()?;
    // The edge in front of it, on localhost; ephemeral ports when the
    // origin's are (tests), else the defaults 8081 and 8443.
    let ephemeral = http.port() == 0 || explicit_listen && config.http.listen.port() == 0;
    let port = |p: u16| if ephemeral { 0 } else { p };
    let mut edge_config = EdgeConfig {
        admin_token: Some(admin_token.clone()),
        ..EdgeConfig::default()
    };
    // Chat tokens (`livecdn token STREAM --chat-user ID --name NAME`) are
    // signed with this run's secret.
    edge_config.auth.secret = Some(secret.clone());
    edge_config.listen.http = Some(SocketAddr::from(([127, 0, 0, 1], port(8081))));
    edge_config.listen.https = Some(SocketAddr::from(([127, 0, 0, 1], port(8443))));
    edge_config.upstream.origins = vec![format!("http://{}:{}", host(http), http.port())];
    // The edge subscribes to the origin's push (pinned to its certificate),
    // so blocking reloads are answered at the edge.
    if let (Some(addr), Some(pin)) = (origin.push_addr(), origin.push_spki()) {
        edge_config.upstream.push = vec![format!("{}:{}", host(addr), addr.port())];
        edge_config.upstream.push_spki = vec![pin.to_string()];
        // And serves WHEP from the pushed chunks, on the next UDP port
        // (any free one when the origin's is).
        if config.webrtc.enabled && !origin.webrtc_addrs().is_empty() {
            let p = config.webrtc.listen.port();
            edge_config.webrtc = Some(livecdn_shared::config::WebRtcConfig {
                listen: SocketAddr::new(
                    config.webrtc.listen.ip(),
                    p.checked_add(1).filter(|_| p != 0).unwrap_or(0),
                ),
                ..config.webrtc.clone()
            });
        }
    }
    let expires = super::unix_now() + 24 * 3600;
    // The edge proves itself to the origin's push port (and to its HTTP,
    // should the config require it) with a cluster credential for this run.
    // It never leaves this process, so it lasts as long as the process.
    edge_config.upstream.credential = Some(livecdn_shared::auth::sign_cluster(
        secret.as_bytes(),
        "up-edge",
        u64::MAX,
    ));
    let obs_key = livecdn_shared::auth::sign_key(secret.as_bytes(), "obs", expires);
    let app = &config.ingest.app;
    say!(
        "listening rtmp={rtmp}{} http={http}{}{}",
        rtmps_word(&origin),
        push_words(&origin),
        webrtc_word(&origin)
    );
    let edge = super::edge::bind_and_announce(edge_config).await?;
    let edge_http = edge.http_addr();
    say!();
    say!("livecdn is up.");
    say!("  OBS  Settings > Stream > Service: Custom");
    say!(
        "       Server:     rtmp://{}:{}/{app}",
        host(rtmp),
        rtmp.port()
    );
    say!("       Stream Key: {obs_key}   (stream \"obs\", valid 24 h)");
    if let Some(a) = origin.rtmps_addr() {
        say!(
            "       or over TLS: rtmps://{}:{}/{app}  (self-signed unless ingest.rtmps.cert is set)",
            host(a),
            a.port()
        );
    }
    say!("  ffmpeg -re -i INPUT -c:v libx264 -pix_fmt yuv420p -c:a aac -f flv rtmp://{}:{}/{app}/{obs_key}", host(rtmp), rtmp.port());
    if !origin.webrtc_addrs().is_empty() {
        say!(
            "  WHIP (OBS 30+: Service WHIP): http://{}:{}/live/whip  Bearer Token: the stream key above",
            host(http),
            http.port()
        );
        say!(
            "       or this browser's camera: http://{}:{}/#publish=<stream key>",
            host(http),
            http.port()
        );
    }
    say!("  Player:  http://{}:{}/", host(http), http.port());
    if demo {
        say!(
            "           http://{}:{}/?stream=demo  (built-in test stream)",
            host(http),
            http.port()
        );
    }
    if let Some(w) = origin.webrtc_addrs().first() {
        let stream = if demo { "demo" } else { "NAME" };
        say!(
            "  WebRTC:  http://{}:{}/?stream={stream}&engine=webrtc  (WHEP, media on udp {})",
            host(http),
            http.port(),
            w.port()
        );
        if let (Some(e), Some(w)) = (edge_http, edge.webrtc_addrs().first()) {
            say!(
                "           http://{}:{}/?stream={stream}&engine=webrtc  (from the edge, udp {})",
                host(e),
                e.port(),
                w.port()
            );
        }
    }
    say!(
        "  Metrics: http://{}:{}/metrics   API: http://{}:{}/api/streams",
        host(http),
        http.port(),
        host(http),
        http.port()
    );
    if let Some(e) = edge_http {
        say!("  Edge:    http://{}:{}/  (the same player through the edge cache; metrics at /metrics)", host(e), e.port());
        // A moderator's chat token for the demo stream's room, so the page
        // chats out of the box (the room is on the edge).
        let chat = demo
            .then(|| {
                livecdn_shared::auth::sign_chat(
                    secret.as_bytes(),
                    &livecdn_shared::auth::ChatClaims {
                        stream: "demo".into(),
                        user: "operator".into(),
                        name: "Operator".into(),
                        role: livecdn_shared::auth::ChatRole::Moderator,
                        expires,
                    },
                )
                .ok()
            })
            .flatten();
        if let Some(token) = chat {
            say!(
                "  Chat:    http://{}:{}/?stream=demo&chat={token}  (as moderator; other viewers read, or get tokens from `livecdn token demo --chat-user ID --name NAME`)",
                host(e),
                e.port()
            );
        }
    }
    if let Some(e) = edge.https_addr() {
        say!(
            "           https://127.0.0.1:{}/  (HTTP/2, and HTTP/3 on UDP)",
            e.port()
        );
    }
    say!("  Secret for this run (LIVECDN_SECRET): {secret}");
    say!("  Admin token for /api and /metrics (LIVECDN_ADMIN_TOKEN): {admin_token}");
    say!(
        "       curl -H 'Authorization: Bearer {admin_token}' http://{}:{}/api/streams",
        host(http),
        http.port()
    );
    say!(
        "       stream list on the player page: http://{}:{}/#admin={admin_token}",
        host(http),
        http.port()
    );
    say!("  Mint more keys: LIVECDN_SECRET={secret} livecdn key STREAM");
    say!("  Chat tokens:    LIVECDN_SECRET={secret} livecdn token STREAM --chat-user ID --name NAME [--moderator]");
    say!(
        "  Recordings ({}): curl -H 'Authorization: Bearer {admin_token}' http://{}:{}/api/recordings",
        match &run_recordings {
            Some(_) => "for this run; --recording-dir DIR keeps them",
            None => "recording.dir",
        },
        host(http),
        http.port()
    );
    say!(
        "  Channels ({}): curl -H 'Authorization: Bearer {admin_token}' -d '{{\"name\":\"studio\"}}' http://{}:{}/api/channels",
        match &run_db {
            Some(_) => "for this run; set control.database to keep them",
            None => "control.database",
        },
        host(http),
        http.port()
    );
    let shutdown = shutdown_on_signal();
    let publisher = demo.then(|| {
        let url = RtmpUrl::new(
            host(rtmp),
            rtmp.port(),
            app.clone(),
            livecdn_shared::auth::sign_key(secret.as_bytes(), "demo", expires),
        );
        tokio::spawn(demo_publisher(url, shutdown.clone()))
    });
    tokio::join!(origin.run(shutdown.clone()), edge.run(shutdown));
    if let Some(p) = publisher {
        let _ = p.await;
    }
    if let Some(dir) = run_recordings {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Some(db) = run_db {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// ` push=ADDR push_spki=PIN` for the "listening" line, if push is on.
/// The built-in clip is 640x360 at about 600 kb/s, so the default ladder
/// (720p, 480p, 360p) would skip every rung; the demo gets two below it.
fn demo_ladder() -> Vec<RungConfig> {
    let rung = |name: &str, height, kbps| RungConfig {
        name: name.to_string(),
        height: Some(height),
        video_bitrate: Some(Bitrate::from_kbps(kbps)),
        max_rate: None,
        buffer: None,
        profile: Some(H264Profile::Main),
        fps_cap: None,
    };
    vec![
        RungConfig::source(),
        rung("240p", 240, 300),
        rung("144p", 144, 120),
    ]
}

/// ` webrtc=ADDR` (the first host candidate) for the "listening" line,
/// if WHEP is on.
fn webrtc_word(origin: &Origin) -> String {
    origin
        .webrtc_addrs()
        .first()
        .map(|a| format!(" webrtc={a}"))
        .unwrap_or_default()
}

/// ` rtmps=ADDR` for the "listening" line, if RTMPS is on.
fn rtmps_word(origin: &Origin) -> String {
    origin
        .rtmps_addr()
        .map(|a| format!(" rtmps={a}"))
        .unwrap_or_default()
}

fn push_words(origin: &Origin) -> String {
    let mut words = match (origin.push_addr(), origin.push_spki()) {
        (Some(a), Some(pin)) => format!(" push={a} push_spki={pin}"),
        _ => String::new(),
    };
    if let Some(a) = origin.admin_addr() {
        words.push_str(&format!(" admin={a}"));
    }
    words
}

fn host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    }
}

/// Publishes the bundled clip until shutdown, reconnecting with backoff if
/// the session drops (the origin restarting, say).
async fn demo_publisher(url: RtmpUrl, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        let result =
            livecdn_loadtest::publish(&url, PublishOptions::default(), shutdown.clone()).await;
        if *shutdown.borrow() {
            return;
        }
        match result {
            Ok(stats) => tracing::info!(?stats, "demo publisher finished"),
            Err(e) => tracing::warn!(error = %e, "demo publisher failed; retrying"),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
