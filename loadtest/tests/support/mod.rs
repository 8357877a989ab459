//! A tiny in-process LL-HLS server on 127.0.0.1:0 (HTTP/1.1 and
//! prior-knowledge h2c): one live rendition advancing one 200 ms part at a
//! time, five parts a segment, PROGRAM-DATE-TIME on every segment, blocking
//! reloads and not-yet-existing parts held until the part exists (up to 3 s).
//! The master also names a separate audio rendition (`a/`, the same timing,
//! smaller parts). [`start_paused`] starts one that stops producing parts
//! for a while; [`start_counting`] one that counts the connections it
//! accepts.

#![allow(clippy::unwrap_used, reason = "test support")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use livecdn_shared::playlist::{
    AudioRendition, HlsQuery, MediaPlaylist, MultivariantPlaylist, Part, PreloadHint,
    PreloadHintType, Segment, ServerControl, Variant,
};
use tokio::time::Instant;

pub const PART: Duration = Duration::from_millis(200);
const PARTS_PER_SEGMENT: u64 = 5;
/// Parts already published when the server starts.
const INITIAL_PARTS: u64 = 25;
const WINDOW_SEGMENTS: u64 = 6;
const HOLD_LIMIT: Duration = Duration::from_secs(3);
pub const PART_BYTES: usize = 600;
/// Size of an audio part.
pub const AUDIO_PART_BYTES: usize = 200;

struct Clock {
    t0: Instant,
    w0: SystemTime,
    /// No part is produced from `.0` after `t0` for `.1`; production then
    /// resumes where it stopped (program date-times stay continuous).
    pause: Option<(Duration, Duration)>,
}

impl Clock {
    /// Production time by `elapsed` since `t0`: wall time minus pausing.
    fn produced(&self, elapsed: Duration) -> Duration {
        match self.pause {
            Some((at, len)) if elapsed > at => at + elapsed.saturating_sub(at + len),
            _ => elapsed,
        }
    }

    /// Parts published by now.
    fn count(&self) -> u64 {
        INITIAL_PARTS + (self.produced(self.t0.elapsed()).as_nanos() / PART.as_nanos()) as u64
    }

    /// When part `k` (from 0) exists.
    fn ready_at(&self, k: u64) -> Instant {
        let produced = PART * (k + 1).saturating_sub(INITIAL_PARTS) as u32;
        match self.pause {
            Some((at, len)) if produced > at => self.t0 + produced + len,
            _ => self.t0 + produced,
        }
    }

    /// Program date-time of the start of part `k`.
    fn pdt(&self, k: u64) -> SystemTime {
        if k >= INITIAL_PARTS {
            self.w0 + PART * (k - INITIAL_PARTS) as u32
        } else {
            self.w0 - PART * (INITIAL_PARTS - k) as u32
        }
    }

    fn playlist(&self, n: u64) -> String {
        let complete = n / PARTS_PER_SEGMENT;
        let first = complete.saturating_sub(WINDOW_SEGMENTS);
        let mut segments = Vec::new();
        for msn in first..=complete {
            let listed = if msn < complete {
                PARTS_PER_SEGMENT
            } else {
                n % PARTS_PER_SEGMENT
            };
            if listed == 0 {
                continue;
            }
            let parts = (0..listed)
                .filter(|_| msn + 2 >= complete)
                .map(|p| Part {
                    duration: 0.2,
                    uri: format!("p{msn}.{p}.m4s"),
                    independent: true,
                    gap: false,
                })
                .collect();
            segments.push(Segment {
                duration: 0.2 * PARTS_PER_SEGMENT as f64,
                uri: (msn < complete).then(|| format!("s{msn}.m4s")),
                discontinuity: false,
                program_date_time: Some(self.pdt(msn * PARTS_PER_SEGMENT)),
                map_uri: (msn == first).then(|| "init.mp4".to_owned()),
                parts,
                gap: false,
            });
        }
        MediaPlaylist {
            version: 6,
            target_duration: 1,
            part_target: Some(0.2),
            server_control: Some(ServerControl {
                can_block_reload: true,
                part_hold_back: Some(0.6),
                ..ServerControl::default()
            }),
            media_sequence: first,
            segments,
            preload_hint: Some(PreloadHint {
                hint_type: PreloadHintType::Part,
                uri: format!("p{complete}.{}.m4s", n % PARTS_PER_SEGMENT),
            }),
            ..MediaPlaylist::default()
        }
        .render()
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    resp
}

/// Waits until part `k` exists; false when that is beyond the hold limit.
async fn hold_until(clock: &Clock, k: u64) -> bool {
    let at = clock.ready_at(k);
    if at > Instant::now() + HOLD_LIMIT {
        return false;
    }
    tokio::time::sleep_until(at).await;
    true
}

async fn handle(clock: Arc<Clock>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    match path.as_str() {
        "/master.m3u8" => {
            let master = MultivariantPlaylist {
                variants: vec![Variant {
                    uri: "v0/index.m3u8".into(),
                    bandwidth: 32_000,
                    audio_group: Some("aud".into()),
                    ..Variant::default()
                }],
                audio: vec![AudioRendition {
                    group_id: "aud".into(),
                    name: "audio".into(),
                    uri: "a/index.m3u8".into(),
                    default: true,
                    autoselect: true,
                    channels: Some(2),
                    language: None,
                }],
                ..MultivariantPlaylist::default()
            };
            return reply(200, master.render());
        }
        "/v0/index.m3u8" | "/a/index.m3u8" => {
            let Ok(q) = HlsQuery::parse(&query) else {
                return reply(400, "bad query");
            };
            if let Some(msn) = q.msn {
                let k = msn * PARTS_PER_SEGMENT + q.part.unwrap_or(0);
                if !hold_until(&clock, k).await {
                    return reply(503, "too far ahead");
                }
            }
            return reply(200, clock.playlist(clock.count()));
        }
        "/v0/init.mp4" | "/a/init.mp4" => return reply(200, vec![0u8; 100]),
        _ => {}
    }
    let (name, part_bytes) = match (path.strip_prefix("/v0/"), path.strip_prefix("/a/")) {
        (Some(file), _) => (file, PART_BYTES),
        (None, Some(file)) => (file, AUDIO_PART_BYTES),
        (None, None) => return reply(404, "not found"),
    };
    let Some(name) = name.strip_suffix(".m4s") else {
        return reply(404, "not found");
    };
    let (k, len) = if let Some((msn, p)) = name.strip_prefix('p').and_then(|s| s.split_once('.')) {
        let (Ok(msn), Ok(p)) = (msn.parse::<u64>(), p.parse::<u64>()) else {
            return reply(404, "not found");
        };
        (msn * PARTS_PER_SEGMENT + p, part_bytes)
    } else if let Some(Ok(msn)) = name.strip_prefix('s').map(str::parse::<u64>) {
        (
            msn * PARTS_PER_SEGMENT + PARTS_PER_SEGMENT - 1,
            part_bytes * PARTS_PER_SEGMENT as usize,
        )
    } else {
        return reply(404, "not found");
    };
    if !hold_until(&clock, k).await {
        return reply(404, "not yet");
    }
    reply(200, vec![7u8; len])
}

/// Starts the server on its own runtime thread; returns its address. The
/// thread lives as long as the test process.
pub fn start() -> SocketAddr {
    serve(None).0
}

/// Like [`start`], with the count of connections accepted so far.
#[allow(dead_code, reason = "not every test binary counts")]
pub fn start_counting() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    serve(None)
}

/// Like [`start`], but no part is produced from `at` after the start for
/// `len`: playlists stop advancing, blocking reloads and part requests are
/// held (or refused past the hold limit) as for parts not yet made.
#[allow(dead_code, reason = "not every test binary pauses")]
pub fn start_paused(at: Duration, len: Duration) -> SocketAddr {
    serve(Some((at, len))).0
}

fn serve(pause: Option<(Duration, Duration)>) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = counter.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let clock = Arc::new(Clock {
                t0: Instant::now(),
                w0: SystemTime::now(),
                pause,
            });
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let clock = clock.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let clock = clock.clone();
                        async move { Ok::<_, Infallible>(handle(clock, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (rx.recv_timeout(Duration::from_secs(5)).unwrap(), counter)
}
