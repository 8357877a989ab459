//! `loadtest publish`: M publishers side by side, each looping the bundled
//! clip in real time under its own key.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::monitor::{self, Live};
use crate::publisher::{publish as publish_one, PublishOptions, RtmpUrl};
use crate::report::{PublishReport, PublisherResult};

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishPlan {
    /// Server and application; the key is replaced per stream.
    pub url: RtmpUrl,
    /// One key per publisher.
    pub keys: Vec<String>,
    /// How long each publishes.
    pub duration: Duration,
    /// Publishers start evenly over this long.
    pub ramp: Duration,
}

/// Extra time past `duration` before publishers are cut off.
const GRACE: Duration = Duration::from_secs(15);

/// Runs the plan; `live.viewers` counts publishers running.
pub async fn publish(plan: PublishPlan, live: Arc<Live>) -> PublishReport {
    let start = Instant::now();
    let deadline = start + plan.ramp + plan.duration;
    let (stop, shutdown) = watch::channel(false);
    let monitor = {
        let live = live.clone();
        tokio::spawn(async move { monitor::watch(&live, start, deadline).await })
    };
    let mut tasks = JoinSet::new();
    let n = plan.keys.len().max(1);
    for (index, key) in plan.keys.iter().enumerate() {
        tokio::time::sleep_until(start + plan.ramp.mul_f64(index as f64 / n as f64)).await;
        let mut url = plan.url.clone();
        url.key = key.clone();
        let options = PublishOptions {
            duration: Some(plan.duration),
            ..PublishOptions::default()
        };
        let (shutdown, live) = (shutdown.clone(), live.clone());
        tasks.spawn(async move {
            Live::add(&live.viewers, 1);
            let result = publish_one(&url, options, shutdown).await;
            live.viewers
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let stream = url.key.split('.').next().unwrap_or_default().to_owned();
            match result {
                Ok(stats) => {
                    Live::add(&live.bytes, stats.bytes_sent);
                    PublisherResult {
                        stream,
                        bytes_sent: stats.bytes_sent,
                        media_messages: stats.video_tags + stats.audio_tags,
                        error: None,
                    }
                }
                Err(e) => {
                    Live::add(&live.errors, 1);
                    PublisherResult {
                        stream,
                        bytes_sent: 0,
                        media_messages: 0,
                        error: Some(e.to_string()),
                    }
                }
            }
        });
    }
    let mut streams = Vec::new();
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(result) = joined {
                streams.push(result);
            }
        }
    };
    if tokio::time::timeout_at(deadline + GRACE, collect)
        .await
        .is_err()
    {
        let _ = stop.send(true);
        tasks.shutdown().await;
    }
    let elapsed = start.elapsed();
    let (harness, _) = monitor.await.unwrap_or_default();
    streams.sort_by(|a, b| a.stream.cmp(&b.stream));
    PublishReport {
        url: format!("rtmp://{}/{}", plan.url.authority(), plan.url.app),
        publishers: plan.keys.len(),
        succeeded: streams.iter().filter(|s| s.error.is_none()).count(),
        bytes_sent: streams.iter().map(|s| s.bytes_sent).sum(),
        media_messages: streams.iter().map(|s| s.media_messages).sum(),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        streams,
        harness,
    }
}
