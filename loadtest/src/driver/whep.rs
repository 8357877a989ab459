//! `livecdn loadtest whep`: N WebRTC viewers of one stream, each a str0m
//! session on its own UDP socket (`livecdn_webrtc::client::Viewer`), that
//! count frames from the RTP they receive without decoding them, so the
//! harness costs little beside the server it measures.
//!
//! Each viewer POSTs its offer to the WHEP URL, connects, watches until
//! the run ends, then DELETEs its session. The report: viewers connected,
//! frames each received, time from connecting to the first keyframe,
//! freezes (gaps a viewer would see as one) and the longest gap.

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use livecdn_webrtc::client::{Seen, Viewer};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What to run.
#[derive(Debug, Clone)]
pub struct WhepOptions {
    /// `http://HOST:PORT/live/STREAM/whep`.
    pub url: String,
    pub viewers: usize,
    pub duration: Duration,
    /// Start viewers evenly over this long.
    pub ramp: Duration,
    /// The local address the viewers' sockets bind to.
    pub bind: IpAddr,
}

/// What the viewers saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WhepReport {
    pub viewers: usize,
    pub offers_refused: usize,
    pub connected: usize,
    pub frames: u64,
    pub frames_per_viewer_min: u64,
    pub frames_per_viewer_p50: u64,
    /// Opus packets received, all viewers.
    pub audio_packets: u64,
    pub first_keyframe_ms_p50: u64,
    pub first_keyframe_ms_p95: u64,
    pub first_keyframe_ms_max: u64,
    pub freezes: u64,
    pub viewers_with_freezes: usize,
    pub max_gap_ms: u64,
    /// From a frame's arrival at the origin (abs-capture-time) to its last
    /// packet at the viewer, frames after each joiner's burst, all viewers:
    /// the server's share of glass-to-glass (no decoding). Zero when the
    /// server did not send the extension.
    pub delivery_ms_p50: f64,
    pub delivery_ms_p95: f64,
    pub delivery_ms_max: f64,
    pub seconds: f64,
    /// The first refusal's status and body, if any.
    pub first_error: Option<String>,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// POSTs an offer; the answer and the session URL.
async fn offer(client: &HttpClient, url: &str, sdp: String) -> Result<(String, String), String> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/sdp")
        .body(Full::new(Bytes::from(sdp)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "no answer in 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    match (status.as_u16(), location) {
        (201, Some(loc)) => Ok((text, absolute(url, &loc))),
        (s, _) => Err(format!("{s} {}", text.trim())),
    }
}

/// `loc` (a path, as WHEP servers send) against the WHEP URL.
fn absolute(url: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let origin_end = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(url.len());
    format!("{}{loc}", &url[..origin_end])
}

/// Runs the viewers and reports.
pub async fn run(opts: WhepOptions) -> anyhow::Result<WhepReport> {
    anyhow::ensure!(
        opts.url.starts_with("http://"),
        "the WHEP URL must be http:// (the harness speaks to 127.0.0.1)"
    );
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let mut seen: Vec<Arc<Seen>> = Vec::new();
    let mut sessions = Vec::new();
    let mut refused = 0;
    let mut first_error = None;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..opts.viewers {
        let at = start + opts.ramp.mul_f64(i as f64 / opts.viewers as f64);
        tokio::time::sleep_until(at.into()).await;
        let (mut viewer, sdp) = Viewer::offer(opts.bind).await?;
        match offer(&client, &opts.url, sdp).await {
            Ok((answer, session)) => {
                if let Err(e) = viewer.answer(&answer) {
                    refused += 1;
                    first_error.get_or_insert(e.to_string());
                    continue;
                }
                seen.push(viewer.seen.clone());
                sessions.push(session);
                let left = opts.duration.saturating_sub(start.elapsed());
                tasks.spawn(viewer.run(stop.clone(), left));
            }
            Err(e) => {
                refused += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    tokio::time::sleep_until((start + opts.duration).into()).await;
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    let seconds = start.elapsed().as_secs_f64();
    for s in &sessions {
        if let Ok(req) = http::Request::delete(s.as_str()).body(Full::new(Bytes::new())) {
            let _ = tokio::time::timeout(Duration::from_secs(2), client.request(req)).await;
        }
    }
    Ok(summarize(
        &seen,
        opts.viewers,
        refused,
        seconds,
        first_error,
    ))
}

fn summarize(
    seen: &[Arc<Seen>],
    viewers: usize,
    refused: usize,
    seconds: f64,
    first_error: Option<String>,
) -> WhepReport {
    let mut frames = Histogram::<u64>::new(3).ok();
    let mut first = Histogram::<u64>::new(3).ok();
    let mut delivery: Option<Histogram<u64>> = None;
    let mut r = WhepReport {
        viewers,
        offers_refused: refused,
        connected: 0,
        frames: 0,
        frames_per_viewer_min: 0,
        frames_per_viewer_p50: 0,
        audio_packets: 0,
        first_keyframe_ms_p50: 0,
        first_keyframe_ms_p95: 0,
        first_keyframe_ms_max: 0,
        freezes: 0,
        viewers_with_freezes: 0,
        max_gap_ms: 0,
        delivery_ms_p50: 0.0,
        delivery_ms_p95: 0.0,
        delivery_ms_max: 0.0,
        seconds,
        first_error,
    };
    for s in seen {
        let n = s.frames.load(Ordering::Relaxed);
        r.frames += n;
        r.audio_packets += s.audio.load(Ordering::Relaxed);
        if let Some(h) = frames.as_mut() {
            let _ = h.record(n);
        }
        if s.connected.load(Ordering::Relaxed) {
            r.connected += 1;
        }
        if s.keyframes.load(Ordering::Relaxed) > 0 {
            if let Some(h) = first.as_mut() {
                let _ = h.record(s.first_keyframe_ms.load(Ordering::Relaxed));
            }
        }
        let f = s.freezes.load(Ordering::Relaxed);
        r.freezes += f;
        r.viewers_with_freezes += usize::from(f > 0);
        r.max_gap_ms = r.max_gap_ms.max(s.max_gap_ms.load(Ordering::Relaxed));
        if let Ok(h) = s.delivery_us.lock() {
            match (delivery.as_mut(), h.as_ref()) {
                (Some(all), Some(one)) => {
                    let _ = all.add(one);
                }
                (None, Some(one)) => delivery = Some(one.clone()),
                _ => {}
            }
        }
    }
    if let Some(h) = delivery.filter(|h| !h.is_empty()) {
        let ms = |us: u64| (us as f64 / 100.0).round() / 10.0;
        r.delivery_ms_p50 = ms(h.value_at_quantile(0.5));
        r.delivery_ms_p95 = ms(h.value_at_quantile(0.95));
        r.delivery_ms_max = ms(h.max());
    }
    if let Some(h) = frames.filter(|h| !h.is_empty()) {
        r.frames_per_viewer_min = h.min();
        r.frames_per_viewer_p50 = h.value_at_quantile(0.5);
    }
    if let Some(h) = first.filter(|h| !h.is_empty()) {
        r.first_keyframe_ms_p50 = h.value_at_quantile(0.5);
        r.first_keyframe_ms_p95 = h.value_at_quantile(0.95);
        r.first_keyframe_ms_max = h.max();
    }
    r
}

/// The report as text lines.
pub fn text(r: &WhepReport) -> String {
    format!(
        "whep viewers {} connected {} refused {} over {:.1} s\n\
         frames {} (per viewer min {} p50 {}), audio packets {}\n\
         first keyframe after connect p50 {} ms p95 {} ms max {} ms\n\
         freezes {} (viewers with freezes {}), longest gap {} ms\n\
         origin arrival to viewer p50 {} ms p95 {} ms max {} ms\n{}",
        r.viewers,
        r.connected,
        r.offers_refused,
        r.seconds,
        r.frames,
        r.frames_per_viewer_min,
        r.frames_per_viewer_p50,
        r.audio_packets,
        r.first_keyframe_ms_p50,
        r.first_keyframe_ms_p95,
        r.first_keyframe_ms_max,
        r.freezes,
        r.viewers_with_freezes,
        r.max_gap_ms,
        r.delivery_ms_p50,
        r.delivery_ms_p95,
        r.delivery_ms_max,
        r.first_error
            .as_ref()
            .map(|e| format!("first error: {e}\n"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_paths_become_urls() {
        assert_eq!(
            absolute("http://127.0.0.1:8080/live/cam/whep", "/live/cam/whep/ab"),
            "http://127.0.0.1:8080/live/cam/whep/ab"
        );
        assert_eq!(absolute("http://h/x", "http://o/y"), "http://o/y");
    }

    #[test]
    fn the_summary_counts_what_each_viewer_saw() {
        let a = Arc::new(Seen::default());
        a.connected.store(true, Ordering::Relaxed);
        a.frames.store(300, Ordering::Relaxed);
        a.keyframes.store(2, Ordering::Relaxed);
        a.audio.store(150, Ordering::Relaxed);
        a.first_keyframe_ms.store(12, Ordering::Relaxed);
        let b = Arc::new(Seen::default());
        b.freezes.store(2, Ordering::Relaxed);
        b.max_gap_ms.store(700, Ordering::Relaxed);
        let r = summarize(&[a, b], 3, 1, 10.0, None);
        assert_eq!(
            (r.connected, r.frames, r.frames_per_viewer_min),
            (1, 300, 0)
        );
        assert_eq!(
            (r.first_keyframe_ms_p50, r.freezes, r.viewers_with_freezes),
            (12, 2, 1)
        );
        assert_eq!((r.max_gap_ms, r.offers_refused), (700, 1));
        assert!(text(&r).contains("freezes 2"));
        assert!(text(&r).contains("audio packets 150"), "{}", text(&r));
    }
}
