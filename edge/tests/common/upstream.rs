//! The fake upstream: an LL-HLS origin (or shield) stand-in on
//! `127.0.0.1:0`, served by hyper-util's auto builder, so it speaks HTTP/1.1
//! and the prior-knowledge h2c the edge's upstream client uses.

use super::bounded;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How long a gated fake upstream waits for its gate before answering anyway.
pub const GATE_LIMIT: Duration = Duration::from_secs(10);

/// How a [`FakeUpstream`] answers.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Written into every body, so tests can tell upstreams apart.
    pub tag: &'static str,
    /// Delay before any response headers.
    pub header_delay: Duration,
    /// Media bodies (`.m4s`, `.mp4`) are sent in this many chunks...
    pub chunks: usize,
    /// ...with this gap before each chunk after the first.
    pub chunk_gap: Duration,
    /// Size of a media body in bytes.
    pub media_len: usize,
    /// Blocking playlist requests (`_HLS_msn=`) are held this long.
    pub blocking_hold: Duration,
    /// If set, the last media chunk and every blocking playlist answer also
    /// wait until this turns true (at most [`GATE_LIMIT`]).
    pub gate: Option<watch::Receiver<bool>>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            tag: "origin",
            header_delay: Duration::ZERO,
            chunks: 1,
            chunk_gap: Duration::ZERO,
            media_len: 4096,
            blocking_hold: Duration::ZERO,
            gate: None,
        }
    }
}

struct State {
    config: FakeConfig,
    /// Requests per path-and-query (`/healthz` not included).
    counts: Mutex<HashMap<String, usize>>,
    health_checks: Mutex<usize>,
    /// When the last body chunk of each path-and-query was handed to hyper.
    finished: Mutex<HashMap<String, Instant>>,
}

/// A fake LL-HLS origin on `127.0.0.1:0`.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FakeUpstream {
    pub async fn start(config: FakeConfig) -> FakeUpstream {
        FakeUpstream::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on a given address (to bring a stopped upstream back).
    pub async fn start_at(addr: SocketAddr, config: FakeConfig) -> FakeUpstream {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            config,
            counts: Mutex::default(),
            health_checks: Mutex::default(),
            finished: Mutex::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, state.clone(), stopped));
        FakeUpstream {
            addr,
            state,
            stop,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`, as the edge config wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen for exactly this path and query.
    pub fn count(&self, path_and_query: &str) -> usize {
        let counts = self.state.counts.lock().unwrap();
        counts.get(path_and_query).copied().unwrap_or(0)
    }

    /// Requests seen for this path, whatever the query.
    pub fn count_path(&self, path: &str) -> usize {
        let counts = self.state.counts.lock().unwrap();
        counts
            .iter()
            .filter(|(pq, _)| pq.split('?').next() == Some(path))
            .map(|(_, n)| n)
            .sum()
    }

    /// A copy of every path-and-query seen with its count.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.state.counts.lock().unwrap().clone()
    }

    /// All requests seen, `/healthz` excluded.
    pub fn total(&self) -> usize {
        self.state.counts.lock().unwrap().values().sum()
    }

    pub fn health_checks(&self) -> usize {
        *self.state.health_checks.lock().unwrap()
    }

    /// When the last body chunk for `path_and_query` was sent.
    pub fn finished_at(&self, path_and_query: &str) -> Option<Instant> {
        self.state
            .finished
            .lock()
            .unwrap()
            .get(path_and_query)
            .copied()
    }

    /// The body this upstream serves for `path_and_query` (`None`: 404).
    pub fn body(&self, path_and_query: &str) -> Option<Bytes> {
        content(&self.state.config, path_and_query).map(|(_, b)| b)
    }

    /// Closes the listener and every open connection, and waits for that.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            bounded("fake upstream stop", task).await.unwrap();
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((io, _peer)) = accepted else { continue };
        while conns.try_join_next().is_some() {}
        let state = state.clone();
        conns.spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(state, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(io), service).await;
        });
    }
    // Dropping the listener and aborting every connection task closes the
    // sockets: the edge sees a dead upstream, not a slow one.
    drop(listener);
    conns.shutdown().await;
}

type FakeBody = BoxBody<Bytes, Infallible>;

async fn gate(config: &FakeConfig) {
    if let Some(gate) = &config.gate {
        let mut gate = gate.clone();
        let _ = tokio::time::timeout(GATE_LIMIT, stopped(&mut gate)).await;
    }
}

async fn answer(state: Arc<State>, req: Request<Incoming>) -> Response<FakeBody> {
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if req.uri().path() == "/healthz" {
        *state.health_checks.lock().unwrap() += 1;
        return reply(
            StatusCode::OK,
            "text/plain",
            Full::new(Bytes::from("ok\n")).boxed(),
        );
    }
    *state.counts.lock().unwrap().entry(pq.clone()).or_default() += 1;
    let config = &state.config;
    tokio::time::sleep(config.header_delay).await;
    if hls_query(&pq).0.is_some() {
        tokio::time::sleep(config.blocking_hold).await;
        gate(config).await;
    }
    let Some((content_type, body)) = content(config, &pq) else {
        let body = Full::new(Bytes::from("not found\n")).boxed();
        return reply(StatusCode::NOT_FOUND, "text/plain", body);
    };
    let media = content_type == "video/mp4";
    let n = if media { config.chunks.max(1) } else { 1 };
    let size = body.len().div_ceil(n).max(1);
    let pieces: Vec<Bytes> = (0..n)
        .map(|i| body.slice((i * size).min(body.len())..((i + 1) * size).min(body.len())))
        .collect();
    let stream = futures::stream::unfold(0usize, move |i| {
        let (state, pieces, pq) = (state.clone(), pieces.clone(), pq.clone());
        async move {
            let piece = pieces.get(i)?.clone();
            let config = &state.config;
            if i > 0 {
                tokio::time::sleep(config.chunk_gap).await;
            }
            if i + 1 == pieces.len() {
                if media {
                    gate(config).await;
                }
                state.finished.lock().unwrap().insert(pq, Instant::now());
            }
            Some((Ok::<_, Infallible>(Frame::data(piece)), i + 1))
        }
    });
    reply(
        StatusCode::OK,
        content_type,
        StreamBody::new(stream).boxed(),
    )
}

fn reply(status: StatusCode, content_type: &'static str, body: FakeBody) -> Response<FakeBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
    resp
}

/// `(_HLS_msn, _HLS_part)` of a path-and-query.
fn hls_query(pq: &str) -> (Option<u64>, Option<u64>) {
    let query = pq.split_once('?').map_or("", |(_, q)| q);
    let get = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    (get("_HLS_msn"), get("_HLS_part"))
}

/// What the fake origin serves: `(content type, body)`, `None` for 404.
/// Only `/live/STREAM/...` exists; media bodies are deterministic bytes
/// derived from the tag and path.
fn content(config: &FakeConfig, pq: &str) -> Option<(&'static str, Bytes)> {
    let path = pq.split('?').next().unwrap_or(pq);
    let rest = path.strip_prefix("/live/")?;
    let name = rest.rsplit('/').next().unwrap_or(rest);
    if name == "master.m3u8" {
        let text = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n# {tag} {path}\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720\n\
             source/index.m3u8\n",
            tag = config.tag
        );
        return Some(("application/vnd.apple.mpegurl", Bytes::from(text)));
    }
    if name == "index.m3u8" {
        let (msn, part) = hls_query(pq);
        let (msn, part) = (msn.unwrap_or(5), part.unwrap_or(0));
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-PART-INF:PART-TARGET=0.33334\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0\n\
             #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n# {tag} {pq}\n",
            first = msn.saturating_sub(3),
            tag = config.tag
        );
        for m in msn.saturating_sub(3)..msn {
            text.push_str(&format!("#EXTINF:2.0,\n{m}.m4s\n"));
        }
        for p in 0..=part {
            text.push_str(&format!(
                "#EXT-X-PART:DURATION=0.33334,URI=\"{msn}.{p}.m4s\"\n"
            ));
        }
        text.push_str(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{msn}.{}.m4s\"\n",
            part + 1
        ));
        return Some(("application/vnd.apple.mpegurl", Bytes::from(text)));
    }
    if name.ends_with(".m4s") || name.ends_with(".mp4") {
        let seed = format!("[{} {path}]", config.tag);
        let body: Vec<u8> = seed.bytes().cycle().take(config.media_len).collect();
        return Some(("video/mp4", Bytes::from(body)));
    }
    None
}
