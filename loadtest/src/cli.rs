//! `livecdn loadtest ...` and the `livecdn-loadtest` binary: argument
//! parsing, the live progress line, and report files. The work is in
//! [`crate::driver`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::client::source::parse_source_addrs;
use crate::client::{ClientOptions, Protocol, Trust};
use crate::driver::{self, Live, PlayOptions, PublishPlan};
use crate::player::PlayerConfig;
use crate::report::{html, json, text};

/// Load tests: virtual LL-HLS viewers and synthetic RTMP publishers.
#[derive(Parser, Debug)]
#[command(name = "livecdn-loadtest", version)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    pub command: LoadtestCommand,
}

#[derive(Subcommand, Debug)]
pub enum LoadtestCommand {
    /// Play a live stream with N virtual LL-HLS viewers.
    Play(PlayArgs),
    /// Publish M real-time RTMP streams of the bundled sample clip.
    Publish(PublishArgs),
    /// Watch a stream with N WebRTC (WHEP) viewers that count frames from
    /// the RTP they receive.
    Whep(WhepArgs),
    /// Run N chat clients over the rooms of one or more edges and measure
    /// message delivery (latency, loss, duplicates).
    Chat(ChatArgs),
}

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// Room URLs, ws://HOST:PORT/live/STREAM/chat (one per edge); clients
    /// go to them in turn.
    #[arg(required = true)]
    pub urls: Vec<String>,
    /// Number of chat clients.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Load messages to send in all.
    #[arg(long, default_value_t = 100)]
    pub messages: u32,
    /// Load messages a second, all senders together.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Clients that send; 0: one per message a second (each within the
    /// edges' default rate limit).
    #[arg(long, default_value_t = 0)]
    pub senders: usize,
    /// Secret to mint the clients' chat tokens with (the edges' auth.secret).
    #[arg(long, env = "LIVECDN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// After the last message, wait at most this long for deliveries.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// Write the result as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ProtocolArg {
    H1,
    H2,
    H3,
}

#[derive(clap::Args, Debug)]
pub struct PlayArgs {
    /// Multivariant or media playlist URL (http:// or https://).
    pub url: String,
    /// Number of viewers.
    #[arg(long, default_value_t = 1)]
    pub viewers: usize,
    /// HTTP version.
    #[arg(long, value_enum, default_value = "h1")]
    pub protocol: ProtocolArg,
    /// Length of the run, ramp included.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Start viewers evenly over this long.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long)]
    pub insecure: bool,
    /// Trust the certificates in this PEM file (https without --insecure).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Shared connections for h2 and h3.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Connections each viewer may open for h1. Six, like Chromium per
    /// host: a viewer has up to four requests in flight (a held blocking
    /// reload and a part for the variant and for a separate audio
    /// rendition), opened as needed; with fewer, a part fetch queues behind
    /// a held reload and the viewer drifts behind live (an h1 artefact, not
    /// the server's latency).
    #[arg(long, default_value_t = 6)]
    pub h1_pool: usize,
    /// Local addresses TCP connections bind in turn, e.g.
    /// `127.0.0.2-127.0.0.17` (comma-separated addresses and IPv4 ranges):
    /// each address gives about 28,000 more connections to one server
    /// address (the ephemeral port range); all of 127.0.0.0/8 reaches
    /// loopback.
    #[arg(long, value_name = "ADDRS")]
    pub source_addrs: Option<String>,
    /// Bound on each request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Ask for full playlists on every reload. By default, like hls.js, a
    /// viewer asks for delta updates (`_HLS_skip=YES`) when the playlist
    /// offers them (`CAN-SKIP-UNTIL`).
    #[arg(long)]
    pub no_delta: bool,
    /// Fetch each part once a playlist lists it, never the preload-hinted
    /// part ahead of time (what hls.js 1.7 does; by default the viewer
    /// fetches hints, as LL-HLS intends).
    #[arg(long)]
    pub no_hints: bool,
    /// Stay on the starting rendition.
    #[arg(long)]
    pub no_abr: bool,
    /// Play up to this much faster to catch up with the target latency, as
    /// hls.js does with `maxLiveSyncPlaybackRate` (1: never, its default).
    #[arg(long, default_value_t = 1.0)]
    pub max_live_sync_playback_rate: f64,
    /// Starting variant (index in ascending bandwidth order).
    #[arg(long)]
    pub start_rendition: Option<usize>,
    /// Write every figure as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(clap::Args, Debug)]
pub struct WhepArgs {
    /// The stream's WHEP URL: http://HOST:PORT/live/STREAM/whep.
    pub url: String,
    /// Number of viewers.
    #[arg(long, default_value_t = 1)]
    pub viewers: usize,
    /// Length of the run, ramp included.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Start viewers evenly over this long.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// The local address the viewers' UDP sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Write the result as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// rtmp://HOST[:PORT]/APP, or with a key: rtmp://HOST[:PORT]/APP/KEY.
    pub url: String,
    /// Number of publishers.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// How long each publishes.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Start publishers evenly over this long.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// Stream names from a template; `{n}` becomes 1..=M (default: the URL's
    /// key, else `load{n}`).
    #[arg(long)]
    pub key_template: Option<String>,
    /// Sign each name as STREAM.EXPIRY.SIG with this secret.
    #[arg(long, env = "LIVECDN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Validity of signed keys.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub key_ttl: Duration,
    /// One key per line (used as given), instead of a template.
    #[arg(long, conflicts_with = "key_template")]
    pub keys_file: Option<PathBuf>,
    /// Write the result as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Logs to stderr, `LIVECDN_LOG` filtering (default `warn`); for the
/// standalone binary.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIVECDN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a loadtest command on its own runtime.
pub fn run(args: LoadtestArgs) -> anyhow::Result<()> {
    let threads = match &args.command {
        LoadtestCommand::Play(play) => play.threads,
        LoadtestCommand::Whep(whep) => whep.threads,
        LoadtestCommand::Chat(chat) => chat.threads,
        LoadtestCommand::Publish(_) => None,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        LoadtestCommand::Play(play) => runtime.block_on(run_play(play)),
        LoadtestCommand::Publish(publish) => runtime.block_on(run_publish(publish)),
        LoadtestCommand::Whep(whep) => runtime.block_on(run_whep(whep)),
        LoadtestCommand::Chat(chat) => runtime.block_on(run_chat(chat)),
    }
}

async fn run_chat(args: ChatArgs) -> anyhow::Result<()> {
    let report = driver::chat::run(driver::chat::ChatOptions {
        urls: args.urls,
        clients: args.clients,
        messages: args.messages,
        rate: args.rate,
        senders: args.senders,
        secret: args.secret,
        drain: args.drain,
    })
    .await?;
    print!("{}", driver::chat_tally::text(&report));
    if let Some(path) = &args.json {
        json::write_file(path, &serde_json::to_string_pretty(&report)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

async fn run_whep(args: WhepArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.viewers > 0, "--viewers must be at least 1");
    anyhow::ensure!(
        args.ramp <= args.duration,
        "--ramp must not exceed --duration"
    );
    let report = driver::whep::run(driver::whep::WhepOptions {
        url: args.url,
        viewers: args.viewers,
        duration: args.duration,
        ramp: args.ramp,
        bind: args.bind,
    })
    .await?;
    print!("{}", driver::whep::text(&report));
    if let Some(path) = &args.json {
        json::write_file(path, &serde_json::to_string_pretty(&report)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

async fn run_play(args: PlayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.viewers > 0, "--viewers must be at least 1");
    anyhow::ensure!(
        args.ramp <= args.duration,
        "--ramp must not exceed --duration"
    );
    anyhow::ensure!(
        (1.0..=2.0).contains(&args.max_live_sync_playback_rate),
        "--max-live-sync-playback-rate must be between 1 and 2"
    );
    let trust = match (&args.ca, args.insecure) {
        (Some(path), _) => Trust::CaFile(path.clone()),
        (None, true) => Trust::Insecure,
        (None, false) if args.url.starts_with("https:") => {
            anyhow::bail!("https needs --insecure or --ca FILE (no system roots are bundled)")
        }
        (None, false) => Trust::Insecure,
    };
    let options = PlayOptions {
        url: args.url.clone(),
        viewers: args.viewers,
        duration: args.duration,
        ramp: args.ramp,
        client: ClientOptions {
            protocol: match args.protocol {
                ProtocolArg::H1 => Protocol::H1,
                ProtocolArg::H2 => Protocol::H2,
                ProtocolArg::H3 => Protocol::H3,
            },
            trust,
            connections: args.connections.max(1),
            h1_pool: args.h1_pool.max(1),
            source_addrs: match &args.source_addrs {
                Some(spec) => parse_source_addrs(spec).context("--source-addrs")?,
                None => Vec::new(),
            },
            ..ClientOptions::default()
        },
        player: PlayerConfig {
            use_delta: !args.no_delta,
            use_hints: !args.no_hints,
            abr: !args.no_abr,
            start_rendition: args.start_rendition,
            max_live_sync_playback_rate: args.max_live_sync_playback_rate,
            ..PlayerConfig::default()
        },
        request_timeout: args.request_timeout,
    };
    if !matches!(args.protocol, ProtocolArg::H1) {
        // Two tracks when the variant has a separate audio rendition.
        let in_flight = args.viewers * options.player.max_parallel * 2;
        let per_connection = in_flight / args.connections.max(1);
        if per_connection > 100 {
            eprintln!(
                "warning: up to {per_connection} concurrent streams per connection; servers often \
                 allow 100-128 (livecdn's edge: 128), beyond which requests queue in the client. \
                 Consider --connections {}",
                in_flight.div_ceil(100)
            );
        }
    }
    let live = Arc::new(Live::default());
    let bar = progress_bar(args.duration);
    let ticker = tokio::spawn(progress(bar.clone(), live.clone(), args.viewers));
    let report = driver::play(options, live).await;
    ticker.abort();
    bar.finish_and_clear();
    let report = report?;
    print!("{}", text::play(&report));
    if let Some(path) = &args.json {
        json::write_file(path, &json::to_string(&report)?)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.html {
        json::write_file(path, &html::play(&report)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn progress_bar(duration: Duration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_secs().max(1));
    if let Ok(style) = ProgressStyle::with_template("{elapsed:>4} [{bar:25}] {msg}")
        .map(|s| s.progress_chars("=> "))
    {
        bar.set_style(style);
    }
    bar
}

/// Refreshes the progress line four times a second.
async fn progress(bar: ProgressBar, live: Arc<Live>, viewers: usize) {
    let started = tokio::time::Instant::now();
    let (mut last_req, mut last_bytes, mut last_lat, mut last_n) = (0, 0, 0, 0);
    let mut last_at = started;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let dt = last_at.elapsed().as_secs_f64().max(1e-3);
        last_at = tokio::time::Instant::now();
        let (req, bytes) = (Live::get(&live.requests), Live::get(&live.bytes));
        let (lat, n) = (
            Live::get(&live.latency_sum_ms),
            Live::get(&live.latency_count),
        );
        let latency = match n - last_n {
            0 => "-".to_owned(),
            k => format!("{:.2}s", (lat - last_lat) as f64 / k as f64 / 1000.0),
        };
        bar.set_position(started.elapsed().as_secs());
        bar.set_message(format!(
            "viewers {}/{viewers}  req/s {:.0}  {:.1} Mbit/s  behind live {latency}  errors {}  stalls {}  cpu {}%  lag {:.1}ms",
            Live::get(&live.viewers),
            (req - last_req) as f64 / dt,
            (bytes - last_bytes) as f64 * 8.0 / dt / 1e6,
            Live::get(&live.errors),
            Live::get(&live.stalls),
            Live::get(&live.cpu_percent),
            Live::get(&live.lag_us) as f64 / 1000.0,
        ));
        (last_req, last_bytes, last_lat, last_n) = (req, bytes, lat, n);
    }
}

async fn run_publish(args: PublishArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.publishers > 0, "--publishers must be at least 1");
    let (url, url_key) = match crate::parse_rtmp_url(&args.url) {
        Ok(url) => {
            let key = url.key.clone();
            (url, Some(key))
        }
        Err(_) => {
            let with_key = format!("{}/_", args.url.trim_end_matches('/'));
            let url = crate::parse_rtmp_url(&with_key)
                .with_context(|| format!("bad RTMP URL {:?}", args.url))?;
            (url, None)
        }
    };
    let keys = match &args.keys_file {
        Some(path) => keys_from_file(path, args.publishers)?,
        None => {
            let template = args
                .key_template
                .clone()
                .or(url_key)
                .unwrap_or_else(|| "load{n}".to_owned());
            keys_from_template(
                &template,
                args.publishers,
                args.secret.as_deref(),
                args.key_ttl,
            )?
        }
    };
    let plan = PublishPlan {
        url,
        keys,
        duration: args.duration,
        ramp: args.ramp,
    };
    let live = Arc::new(Live::default());
    let bar = progress_bar(args.ramp + args.duration);
    let ticker = {
        let (bar, live, total) = (bar.clone(), live.clone(), args.publishers);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                bar.set_position(bar.elapsed().as_secs());
                bar.set_message(format!(
                    "publishers {}/{total}  failed {}  cpu {}%",
                    Live::get(&live.viewers),
                    Live::get(&live.errors),
                    Live::get(&live.cpu_percent)
                ));
            }
        })
    };
    let report = driver::publish(plan, live).await;
    ticker.abort();
    bar.finish_and_clear();
    print!("{}", text::publish(&report));
    if let Some(path) = &args.json {
        json::write_file(path, &json::to_string(&report)?)?;
        println!("wrote {}", path.display());
    }
    anyhow::ensure!(report.succeeded > 0, "no publisher succeeded");
    Ok(())
}

fn keys_from_file(path: &std::path::Path, count: usize) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading keys from {}", path.display()))?;
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .take(count)
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(
        keys.len() == count,
        "{} holds {} keys, {count} publishers asked",
        path.display(),
        keys.len()
    );
    Ok(keys)
}

/// Names from `template` (`{n}` = 1..=count), signed when a secret is given.
pub fn keys_from_template(
    template: &str,
    count: usize,
    secret: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        count == 1 || template.contains("{n}"),
        "--key-template needs {{n}} so the {count} streams get distinct names"
    );
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + ttl.as_secs();
    (1..=count)
        .map(|n| {
            let name = template.replace("{n}", &n.to_string());
            match secret {
                None => Ok(name),
                Some(secret) => {
                    anyhow::ensure!(
                        livecdn_shared::auth::valid_stream_name(&name),
                        "stream name {name:?}: 1-64 of [A-Za-z0-9_-]"
                    );
                    Ok(livecdn_shared::auth::sign_key(
                        secret.as_bytes(),
                        &name,
                        expires,
                    ))
                }
            }
        })
        .collect()
}
