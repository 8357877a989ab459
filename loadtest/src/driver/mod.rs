//! The I/O half of `loadtest play` and `loadtest publish`.
//!
//! [`play`] ramps viewers up over `ramp` (viewer `i` starts at
//! `ramp * i / viewers`), runs each as a task ([`viewer`]) until
//! `duration`, and watches the harness itself ([`monitor`]): CPU from
//! `/proc/self/stat` and event-loop lag, so a report shows whether the
//! harness, not the server, was the limit. [`publish`] runs RTMP publishers
//! side by side.

pub mod chat;
pub mod chat_tally;
pub mod monitor;
mod publish;
mod recorder;
mod viewer;
pub mod whep;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{ClientError, ClientFactory, ClientOptions, Protocol};
use crate::player::{ParseCache, PlayerConfig};
use crate::report::{PlayReport, RunInfo};
pub use monitor::Live;
pub use publish::{publish, PublishPlan};
use recorder::Recorder;
use viewer::ViewerContext;

/// How to run `play`.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// Multivariant or media playlist URL.
    pub url: String,
    /// Viewers to run.
    pub viewers: usize,
    /// From the start to the end of the run.
    pub duration: Duration,
    /// Viewers start evenly over this long.
    pub ramp: Duration,
    /// How viewers connect.
    pub client: ClientOptions,
    /// How each viewer plays.
    pub player: PlayerConfig,
    /// Bound on each request (a blocking reload is held up to three target
    /// durations by the server, so keep this above that).
    pub request_timeout: Duration,
}

impl Default for PlayOptions {
    fn default() -> PlayOptions {
        PlayOptions {
            url: String::new(),
            viewers: 1,
            duration: Duration::from_secs(20),
            ramp: Duration::ZERO,
            client: ClientOptions::default(),
            player: PlayerConfig::default(),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The clients cannot be set up (URL, TLS).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Shards of statistics: enough that viewers on different threads rarely
/// meet on one lock (each shard holds ~0.5 MB of histograms).
const SHARDS: usize = 16;
/// How long after the deadline viewers get to wind down before they are
/// aborted.
const GRACE: Duration = Duration::from_secs(2);

/// Runs the viewers and reports; `live` is updated while it runs.
pub async fn play(options: PlayOptions, live: Arc<Live>) -> Result<PlayReport, DriverError> {
    let factory = ClientFactory::new(&options.url, options.client.clone())?;
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let start = Instant::now();
    let deadline = start + options.duration;
    let ctx = Arc::new(ViewerContext {
        url: options.url.clone(),
        player: options.player.clone(),
        request_timeout: options.request_timeout,
        deadline,
        recorder: Recorder::new(start, SHARDS, live.clone()),
        parses: Arc::new(ParseCache::new()),
    });
    let monitor = {
        let live = live.clone();
        tokio::spawn(async move { monitor::watch(&live, start, deadline).await })
    };
    let mut viewers = JoinSet::new();
    let n = options.viewers.max(1);
    for index in 0..options.viewers {
        let at = start + options.ramp.mul_f64(index as f64 / n as f64);
        tokio::time::sleep_until(at).await;
        if Instant::now() >= deadline {
            break;
        }
        viewers.spawn(viewer::run(ctx.clone(), index, factory.client(index)));
    }
    let all_done = async { while viewers.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline + GRACE, all_done)
        .await
        .is_err()
    {
        tracing::warn!("viewers still running after the deadline; aborting them");
        viewers.shutdown().await;
    }
    let elapsed = start.elapsed();
    let (harness, timeline) = monitor.await.unwrap_or_default();
    let (summary, histograms) = ctx.recorder.finish(elapsed.min(options.duration));
    let connections = match options.client.protocol {
        Protocol::H1 => options.client.h1_pool,
        Protocol::H2 | Protocol::H3 => options.client.connections,
    };
    Ok(PlayReport {
        run: RunInfo {
            url: options.url,
            protocol: options.client.protocol.as_str().to_owned(),
            viewers: options.viewers,
            connections,
            duration_ms: millis(options.duration),
            ramp_ms: millis(options.ramp),
            elapsed_ms: millis(elapsed),
            started_unix_ms,
        },
        summary,
        harness,
        timeline,
        histograms,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
