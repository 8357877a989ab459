//! Command definitions (clap) and dispatch.

/// `println!` for long-running commands: a closed stdout (a supervisor
/// that stopped reading) must not bring a server down.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod edge;
mod up;

use anyhow::Context;
use clap::{Parser, Subcommand};
use livecdn_shared::config::{self, Encoder, OriginConfig, RecordPolicy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PUSH_DEFAULT: u16 = livecdn_shared::push::DEFAULT_PORT;

#[derive(Parser, Debug)]
#[command(
    name = "livecdn",
    version,
    about = "Live-video CDN: RTMP in, Low-Latency HLS out"
)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "LIVECDN_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that override the origin config file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OriginFlags {
    /// Origin config file (TOML); built-in defaults without it.
    #[arg(long, env = "LIVECDN_CONFIG")]
    pub config: Option<PathBuf>,
    /// RTMP listen address (ingest.listen).
    #[arg(long, env = "LIVECDN_RTMP_LISTEN")]
    pub rtmp_listen: Option<SocketAddr>,
    /// RTMPS listen address; turns RTMPS on (ingest.rtmps.listen). When
    /// unset and the RTMP port is 0, RTMPS (if on) takes an ephemeral port.
    #[arg(long, env = "LIVECDN_RTMPS_LISTEN")]
    pub rtmps_listen: Option<SocketAddr>,
    /// HTTP listen address (http.listen).
    #[arg(long, env = "LIVECDN_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Push (QUIC) listen address (push.listen). When unset and the HTTP
    /// port is 0, push also takes an ephemeral port (tests).
    #[arg(long, env = "LIVECDN_PUSH_LISTEN")]
    pub push_listen: Option<SocketAddr>,
    /// WebRTC (WHEP) media listen address, UDP (webrtc.listen). When unset
    /// and the HTTP port is 0, WebRTC also takes an ephemeral port on the
    /// HTTP address (tests).
    #[arg(long, env = "LIVECDN_WEBRTC_LISTEN")]
    pub webrtc_listen: Option<SocketAddr>,
    /// RTMP connections one client address may hold; 0: no per-address cap
    /// (ingest.max_connections_per_ip).
    #[arg(long, env = "LIVECDN_RTMP_MAX_CONNECTIONS_PER_IP")]
    pub rtmp_max_connections_per_ip: Option<usize>,
    /// Signing secret for stream keys (secret).
    #[arg(long, env = "LIVECDN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Bearer token for /metrics and /api (admin_token).
    #[arg(long, env = "LIVECDN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Separate listener for /metrics and /api (http.admin_listen).
    #[arg(long, env = "LIVECDN_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Access log file, or `stdout`; turns access logs on (access_log.path).
    #[arg(long, env = "LIVECDN_ACCESS_LOG")]
    pub access_log: Option<PathBuf>,
    /// /live/ pulls need a cluster credential (cluster.require_credential).
    #[arg(long, env = "LIVECDN_REQUIRE_CLUSTER_CREDENTIAL")]
    pub require_cluster_credential: bool,
    /// Redis of the cluster's stream map, `redis://HOST:PORT`: this origin
    /// enters every stream it ingests there (cluster.redis).
    #[arg(long, env = "LIVECDN_REDIS")]
    pub redis: Option<String>,
    /// The base URL edges reach this origin at, `http://HOST:PORT`
    /// (cluster.advertise; default: the HTTP listen address).
    #[arg(long, env = "LIVECDN_ADVERTISE")]
    pub advertise: Option<String>,
    /// Part target, e.g. 333ms (llhls.part_target).
    #[arg(long, env = "LIVECDN_PART_TARGET", value_parser = humantime::parse_duration)]
    pub part_target: Option<Duration>,
    /// Segment target, e.g. 2s (llhls.segment_target).
    #[arg(long, env = "LIVECDN_SEGMENT_TARGET", value_parser = humantime::parse_duration)]
    pub segment_target: Option<Duration>,
    /// on_publish webhook URL (webhooks.on_publish).
    #[arg(long, env = "LIVECDN_ON_PUBLISH")]
    pub on_publish: Option<String>,
    /// on_publish_done webhook URL (webhooks.on_publish_done).
    #[arg(long, env = "LIVECDN_ON_PUBLISH_DONE")]
    pub on_publish_done: Option<String>,
    /// on_record_done webhook URL (webhooks.on_record_done).
    #[arg(long, env = "LIVECDN_ON_RECORD_DONE")]
    pub on_record_done: Option<String>,
    /// Grace period for a publisher to reconnect (llhls.reconnect_grace).
    #[arg(long, env = "LIVECDN_RECONNECT_GRACE", value_parser = humantime::parse_duration)]
    pub reconnect_grace: Option<Duration>,
    /// Rungs to keep from the configured ladder, comma-separated, `source`
    /// included (`source` alone: no transcoding); empty keeps them all.
    #[arg(long, env = "LIVECDN_LADDER", value_delimiter = ',')]
    pub ladder: Vec<String>,
    /// ffmpeg binary for the ladder (ladder.ffmpeg).
    #[arg(long, env = "LIVECDN_FFMPEG")]
    pub ffmpeg: Option<PathBuf>,
    /// Video encoder: libx264, h264_nvenc, h264_vaapi, h264_qsv (ladder.encoder).
    #[arg(long, env = "LIVECDN_ENCODER", value_parser = str::parse::<Encoder>)]
    pub encoder: Option<Encoder>,
    /// Record streams: `all` (the flag alone) or `none` (recording.policy;
    /// default `none` for `origin`, `all` for `up`).
    #[arg(long, env = "LIVECDN_RECORD", num_args = 0..=1, default_missing_value = "all",
          value_parser = str::parse::<RecordPolicy>)]
    pub record: Option<RecordPolicy>,
    /// Where recordings go (recording.dir).
    #[arg(long, env = "LIVECDN_RECORDING_DIR")]
    pub recording_dir: Option<PathBuf>,
}

impl OriginFlags {
    /// File (or defaults), then env and flags on top; validated.
    pub fn load(&self) -> anyhow::Result<OriginConfig> {
        let mut c = match &self.config {
            Some(path) => config::load_origin(path)?,
            None => OriginConfig::default(),
        };
        if let Some(v) = self.rtmp_listen {
            c.ingest.listen = v;
        }
        if let Some(v) = self.http_listen {
            c.http.listen = v;
        }
        match self.rtmps_listen {
            Some(v) => {
                c.ingest.rtmps.enabled = true;
                c.ingest.rtmps.listen = v;
            }
            None if c.ingest.listen.port() == 0
                && c.ingest.rtmps.listen.port() == config::RTMPS_DEFAULT_PORT =>
            {
                c.ingest.rtmps.listen = SocketAddr::new(c.ingest.listen.ip(), 0);
            }
            None => {}
        }
        match self.push_listen {
            Some(v) => c.push.listen = v,
            None if c.http.listen.port() == 0 && c.push.listen.port() == PUSH_DEFAULT => {
                c.push.listen = SocketAddr::new(c.http.listen.ip(), 0);
            }
            None => {}
        }
        match self.webrtc_listen {
            Some(v) => c.webrtc.listen = v,
            None if c.http.listen.port() == 0
                && c.webrtc.listen.port() == config::DEFAULT_WEBRTC_PORT =>
            {
                c.webrtc.listen = SocketAddr::new(c.http.listen.ip(), 0);
            }
            None => {}
        }
        if let Some(v) = self.rtmp_max_connections_per_ip {
            c.ingest.max_connections_per_ip = v;
        }
        if let Some(v) = &self.secret {
            c.secret = Some(v.clone());
        }
        if let Some(v) = &self.admin_token {
            c.admin_token = Some(v.clone());
        }
        if let Some(v) = self.admin_listen {
            c.http.admin_listen = Some(v);
        }
        if let Some(r) = &self.redis {
            c.cluster.redis = Some(r.clone());
        }
        if let Some(a) = &self.advertise {
            c.cluster.advertise = Some(a.clone());
        }
        if self.require_cluster_credential {
            c.cluster.require_credential = true;
        }
        if let Some(p) = &self.access_log {
            c.access_log.enabled = true;
            c.access_log.path = p.clone();
        }
        if let Some(v) = self.part_target {
            c.llhls.part_target = v;
        }
        if let Some(v) = self.segment_target {
            c.llhls.segment_target = v;
        }
        if let Some(v) = self.reconnect_grace {
            c.llhls.reconnect_grace = v;
        }
        if let Some(v) = &self.on_publish {
            c.webhooks.on_publish = Some(v.clone());
        }
        if let Some(v) = &self.on_publish_done {
            c.webhooks.on_publish_done = Some(v.clone());
        }
        if let Some(v) = &self.on_record_done {
            c.webhooks.on_record_done = Some(v.clone());
        }
        let keep: Vec<&str> = self
            .ladder
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect();
        if !keep.is_empty() {
            c.ladder
                .retain_rungs(&keep)
                .context("--ladder / LIVECDN_LADDER")?;
        }
        if let Some(v) = &self.ffmpeg {
            c.ladder.ffmpeg = Some(v.clone());
        }
        if let Some(v) = self.encoder {
            c.ladder.encoder = v;
        }
        if let Some(v) = self.record {
            c.recording.policy = v;
        }
        if let Some(v) = &self.recording_dir {
            c.recording.dir = v.clone();
        }
        // Re-validate what the flags changed, through the same checks.
        let text = toml::to_string(&c).context("serialising config")?;
        config::parse_origin(&text, "flags and environment")?;
        Ok(c)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Origin and edge in one process on localhost; prints OBS settings and URLs.
    Up {
        /// Also publish a built-in synthetic test stream named `demo`.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        origin: OriginFlags,
    },
    /// Run an edge or shield.
    Edge {
        #[command(flatten)]
        edge: edge::EdgeFlags,
    },
    /// Run an origin.
    Origin {
        #[command(flatten)]
        origin: OriginFlags,
    },
    /// Mint a signed stream key for publishing.
    Key {
        stream: String,
        /// Validity, e.g. 24h.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        origin: OriginFlags,
    },
    /// Mint a signed playback token, or with --chat-user a chat token.
    Token {
        stream: String,
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Mint a chat token for this user id instead (1-64 of [A-Za-z0-9_.@-]).
        #[arg(long, requires = "name")]
        chat_user: Option<String>,
        /// The chat user's display name.
        #[arg(long, requires = "chat_user")]
        name: Option<String>,
        /// The chat user may delete messages and ban users.
        #[arg(long, requires = "chat_user")]
        moderator: bool,
        #[command(flatten)]
        origin: OriginFlags,
    },
    /// Mint a cluster credential for an edge or shield (NODE names it in logs).
    ClusterKey {
        node: String,
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        origin: OriginFlags,
    },
    /// Validate a config file; errors name the line and column.
    CheckConfig { file: PathBuf },
    /// Load tests: virtual LL-HLS viewers (`play`) and RTMP publishers (`publish`).
    Loadtest(livecdn_loadtest::cli::LoadtestArgs),
}

pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIVECDN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn secret_of(c: &OriginConfig) -> anyhow::Result<String> {
    c.secret
        .clone()
        .context("no signing secret: set `secret` in the config or LIVECDN_SECRET")
}

/// Prints a signed credential (stream key, playback token or cluster
/// credential) for `stream` (or node), alone on the last line of stdout.
fn mint(
    stream: &str,
    ttl: Duration,
    origin: &OriginFlags,
    sign: fn(&[u8], &str, u64) -> String,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        livecdn_shared::auth::valid_stream_name(stream),
        "stream and node names are 1-64 of [A-Za-z0-9_-]"
    );
    let secret = secret_of(&origin.load()?)?;
    let expires = unix_now() + ttl.as_secs();
    println!("{stream}, valid until unix time {expires}");
    println!("{}", sign(secret.as_bytes(), stream, expires));
    Ok(())
}

/// Prints a chat token for `user` in `stream`'s room, alone on the last
/// line of stdout.
fn mint_chat(
    stream: &str,
    ttl: Duration,
    user: &str,
    name: &str,
    moderator: bool,
    origin: &OriginFlags,
) -> anyhow::Result<()> {
    use livecdn_shared::auth::{sign_chat, ChatClaims, ChatRole};
    let secret = secret_of(&origin.load()?)?;
    let claims = ChatClaims {
        stream: stream.to_owned(),
        user: user.to_owned(),
        name: name.to_owned(),
        role: if moderator {
            ChatRole::Moderator
        } else {
            ChatRole::Viewer
        },
        expires: unix_now() + ttl.as_secs(),
    };
    let token = sign_chat(secret.as_bytes(), &claims).map_err(|e| {
        anyhow::anyhow!("{e}: stream 1-64 of [A-Za-z0-9_-], user 1-64 of [A-Za-z0-9_.@-], name 1-64 characters without control characters or outer spaces")
    })?;
    println!(
        "chat token for {user} ({}) in {stream}, valid until unix time {}",
        claims.role.as_str(),
        claims.expires
    );
    println!("{token}");
    Ok(())
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up { demo, origin } => {
            let explicit = origin.rtmp_listen.is_some()
                || origin.http_listen.is_some()
                || origin.config.is_some();
            let mut config = origin.load()?;
            let run_recordings =
                up::recording_defaults(&mut config, origin.record, origin.recording_dir.is_some());
            runtime()?.block_on(up::run(config, demo, explicit, run_recordings))
        }
        Command::Edge { edge } => runtime()?.block_on(edge::run(edge.load()?)),
        Command::Origin { origin } => runtime()?.block_on(up::run_origin(origin.load()?)),
        Command::Key {
            stream,
            ttl,
            origin,
        } => mint(&stream, ttl, &origin, livecdn_shared::auth::sign_key),
        Command::Token {
            stream,
            ttl,
            chat_user: Some(user),
            name,
            moderator,
            origin,
        } => mint_chat(
            &stream,
            ttl,
            &user,
            name.as_deref().unwrap_or(&user),
            moderator,
            &origin,
        ),
        Command::Token {
            stream,
            ttl,
            origin,
            ..
        } => mint(&stream, ttl, &origin, livecdn_shared::auth::sign_token),
        Command::ClusterKey { node, ttl, origin } => {
            mint(&node, ttl, &origin, livecdn_shared::auth::sign_cluster)
        }
        Command::Loadtest(args) => livecdn_loadtest::cli::run(args),
        Command::CheckConfig { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            // Edge configs have a role or edge-only tables; the rest are origins.
            let table: toml::Table = text.parse().unwrap_or_default();
            let is_edge = ["role", "upstream", "listen", "cache", "tls"]
                .iter()
                .any(|k| table.contains_key(*k));
            let name = file.display().to_string();
            let (kind, warnings) = if is_edge {
                (
                    "edge",
                    config::edge_warnings(&config::parse_edge(&text, &name)?),
                )
            } else {
                let c = config::parse_origin(&text, &name)?;
                ("origin", config::origin_warnings(&c))
            };
            for w in &warnings {
                eprintln!("{name}: warning: {w}");
            }
            println!("{name}: ok ({kind} config)");
            Ok(())
        }
    }
}
