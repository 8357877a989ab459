//! Access logs: one JSON line per request on the origin and the edge, what
//! billing, abuse handling and debugging start from.
//!
//! Off the request path: a request captures its facts in an [`Entry`], the
//! response body ([`Logged`]) completes it when the last byte is sent (or
//! the client goes away), and the entry goes into a bounded queue. A
//! dedicated thread formats and writes ([`sink`]); when it falls behind (a
//! slow disk, a pipe nobody reads) the queue fills and further lines are
//! dropped and counted, never waited for. Each line:
//!
//! ```json
//! {"ts":"2026-12-05T17:02:28.123Z","client":"203.0.113.7","method":"GET",
//!  "path":"/live/demo/source/seg12.3.m4s","stream":"demo","status":200,
//!  "bytes":48213,"cache":"HIT","ttfb_ms":0.41,"duration_ms":0.52,
//!  "protocol":"h2","complete":true,"cmcd":{"bl":2100,"ot":"v","sid":"..."}}
//! ```
//!
//! `query` appears when the request had one, with playback tokens redacted
//! and the CMCD argument removed (it is parsed into `cmcd`).

mod body;
pub mod cmcd;
mod sink;

pub use body::Logged;

use crate::config::AccessLogConfig;
use cmcd::Cmcd;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Bytes kept of a path, query or user agent.
const MAX_FIELD: usize = 1024;

/// Why the access log could not start.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The file's directory does not exist (the file itself is opened by
    /// the writer, which may block on a pipe).
    #[error("access log directory {0} does not exist")]
    NoDirectory(std::path::PathBuf),
    #[error("starting the access log writer: {0}")]
    Spawn(std::io::Error),
}

/// One request, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(serialize_with = "sink::rfc3339")]
    pub ts: SystemTime,
    pub client: IpAddr,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// The edge's `X-Cache` (HIT, MISS, ...); absent at the origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Until the first body byte (or the end of an empty body).
    #[serde(serialize_with = "sink::millis")]
    pub ttfb_ms: Duration,
    /// Until the last body byte.
    #[serde(serialize_with = "sink::millis")]
    pub duration_ms: Duration,
    /// h1, h2 or h3.
    pub protocol: &'static str,
    /// False when the body ended early (client gone, upstream failed).
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Cmcd::is_empty")]
    pub cmcd: Cmcd,
}

/// Lines written and dropped, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    lines: AtomicU64,
    dropped: AtomicU64,
}

enum Msg {
    Line(Box<Entry>),
    /// Answered once everything queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The handle requests log through (cheap to share: an `Arc` of it).
pub struct AccessLog {
    queue: SyncSender<Msg>,
    counters: Arc<Counters>,
}

impl AccessLog {
    /// Starts the writer thread for `config`; `None` when access logs are
    /// off.
    pub fn open(config: &AccessLogConfig) -> Result<Option<Arc<Self>>, AccessLogError> {
        if !config.enabled {
            return Ok(None);
        }
        if let Some(dir) = sink::file_dir(&config.path) {
            if !dir.is_dir() {
                return Err(AccessLogError::NoDirectory(dir.to_path_buf()));
            }
        }
        let (queue, rx) = std::sync::mpsc::sync_channel(config.queue);
        let counters = Arc::new(Counters::default());
        let writer = sink::Writer::new(config, counters.clone());
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run(rx))
            .map_err(AccessLogError::Spawn)?;
        Ok(Some(Arc::new(Self { queue, counters })))
    }

    /// The facts of a request known before it is served.
    pub fn request<B>(
        self: &Arc<Self>,
        req: &http::Request<B>,
        client: IpAddr,
        protocol: &'static str,
        start: Instant,
    ) -> Pending {
        let headers = req.headers();
        let query = req.uri().query();
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| clip(s).to_string());
        Pending {
            log: self.clone(),
            start,
            entry: Entry {
                ts: SystemTime::now(),
                client,
                method: req.method().as_str().to_string(),
                path: clip(req.uri().path()).to_string(),
                query: query.and_then(redact_query),
                stream: None,
                status: 0,
                bytes: 0,
                cache: None,
                ttfb_ms: Duration::ZERO,
                duration_ms: Duration::ZERO,
                protocol,
                complete: false,
                user_agent,
                cmcd: Cmcd::from_request(query, headers),
            },
        }
    }

    fn send(&self, entry: Entry) {
        match self.queue.try_send(Msg::Line(Box::new(entry))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (blocking, bounded) until the lines queued so far are written;
    /// false if that did not happen within `limit`. For shutdown.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (tx, rx) = std::sync::mpsc::channel();
        let mut msg = Msg::Flush(tx);
        loop {
            match self.queue.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.counters.lines.load(Ordering::Relaxed)
    }

    /// Lines dropped so far (queue full, or the destination failing).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Prometheus text for the two counters, named `{prefix}_access_log_*`.
    pub fn render_metrics(&self, prefix: &str) -> String {
        let mut out = String::new();
        for (name, help, v) in [
            ("lines", "Access log lines written", self.lines()),
            (
                "dropped",
                "Access log lines dropped because the writer fell behind or failed",
                self.dropped(),
            ),
        ] {
            crate::exposition::single(
                &mut out,
                &format!("{prefix}_access_log_{name}"),
                crate::exposition::Kind::Counter,
                help,
                v as f64,
            );
        }
        out
    }
}

/// A request being served: completed by the response and its body.
pub struct Pending {
    log: Arc<AccessLog>,
    start: Instant,
    entry: Entry,
}

impl Pending {
    /// Takes the status and cache outcome from `resp` and wraps its body so
    /// that the line is sent when the body ends.
    pub fn respond<B: http_body::Body>(
        mut self,
        resp: http::Response<B>,
        stream: Option<&str>,
    ) -> http::Response<Logged<B>> {
        self.entry.status = resp.status().as_u16();
        self.entry.stream = stream.map(str::to_string);
        self.entry.cache = resp
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(|s| clip(s).to_string());
        resp.map(|b| Logged::new(b, self))
    }

    fn finish(mut self, bytes: u64, first_byte: Option<Instant>, complete: bool) {
        let now = Instant::now();
        self.entry.bytes = bytes;
        self.entry.ttfb_ms = first_byte
            .unwrap_or(now)
            .saturating_duration_since(self.start);
        self.entry.duration_ms = now.saturating_duration_since(self.start);
        self.entry.complete = complete;
        self.log.send(self.entry);
    }
}

/// At most [`MAX_FIELD`] bytes of `s`, cut at a character boundary.
fn clip(s: &str) -> &str {
    cmcd::truncate(s, MAX_FIELD)
}

/// The query as logged: playback tokens redacted (they are credentials),
/// the CMCD argument removed (it is logged parsed).
fn redact_query(query: &str) -> Option<String> {
    let kept: Vec<&str> = clip(query)
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("CMCD="))
        .map(|p| {
            if p.starts_with("token=") {
                "token=-"
            } else {
                p
            }
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_and_cmcd_leaves_the_query() {
        assert_eq!(
            redact_query("_HLS_msn=4&token=s.1.abc&CMCD=bl%3D1"),
            Some("_HLS_msn=4&token=-".into())
        );
        assert_eq!(redact_query("CMCD=bl%3D1"), None);
        assert_eq!(redact_query(""), None);
    }
}
