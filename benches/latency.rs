//! Origin latency: from a frame's arrival at the origin to
//! (a) its chunk being received by a held request for the preload-hinted
//!     part, and
//! (b) its part being listed in a blocking playlist response (measured from
//!     the part's last frame),
//! over real HTTP on 127.0.0.1, with the origin's own clock.
//!
//! Frames are the bundled sample clip, paced in real time and handed to the
//! stream hub exactly as the RTMP session does (FLV tag parsing included);
//! RTMP chunk parsing itself is left out. Run: `cargo bench --bench latency`
//! (about 25 s). Prints median and p95 of each.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use livecdn_loadtest::publisher::{Action, Schedule};
use livecdn_origin::registry::StreamHub;
use livecdn_origin::Origin;
use livecdn_shared::config::OriginConfig;
use livecdn_shared::flv::{self, AudioTag, VideoTag};
use livecdn_shared::media::{Frame, TrackKind};
use livecdn_shared::playlist::MediaPlaylist;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(20);

type Arrivals = Arc<Mutex<HashMap<(u64, u32, usize), Instant>>>;
type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Empty<Bytes>>;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let mut config = OriginConfig::default();
    config.ingest.listen = "127.0.0.1:0".parse().expect("addr");
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    let origin = Origin::bind(config).await.expect("bind");
    let http = origin.http_addr().expect("addr");
    let state = origin.state();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(origin.run(stop));
    let (hub, _) = state
        .registry
        .claim("bench", 1, false, true, Instant::now())
        .expect("claim");

    let arrivals: Arrivals = Arc::default();
    let feeder = tokio::spawn(feed(hub.clone(), arrivals.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (a, b) = tokio::join!(
        hinted_parts(&client, http, &hub, &arrivals),
        blocking_playlists(&client, http, &hub, &arrivals)
    );
    feeder.abort();
    let _ = stop_tx.send(true);
    let _ = server.await;
    report(
        "(a) frame arrival -> chunk received on held hinted-part request",
        a,
    );
    report(
        "(b) part's last frame arrival -> part listed in blocking playlist",
        b,
    );
}

/// Paces the sample clip in real time into the hub, recording when each
/// video frame arrived and where it went (msn, part, chunk index).
async fn feed(hub: Arc<StreamHub>, arrivals: Arrivals) {
    let mut schedule =
        Schedule::from_flv(livecdn_loadtest::sample_flv(), Instant::now()).expect("clip");
    loop {
        let deadline = schedule.next_deadline();
        tokio::time::sleep_until(deadline.into()).await;
        while let Some(action) = schedule.poll(Instant::now()) {
            let now = Instant::now();
            match action {
                Action::Video(t) => match flv::parse_video_tag(t.body.clone()) {
                    Ok(VideoTag::AvcSequenceHeader(avcc)) => {
                        hub.video_config(1, livecdn_shared::avc::video_config(avcc).expect("avcc"))
                    }
                    Ok(VideoTag::AvcNalus {
                        keyframe,
                        cts_ms,
                        data,
                    }) => {
                        hub.frame(
                            1,
                            now,
                            Frame {
                                track: TrackKind::Video,
                                dts_ms: t.timestamp_ms,
                                cts_ms,
                                keyframe,
                                data,
                            },
                        );
                        let at = hub.read(|p| {
                            let t = p.track("source")?;
                            let seg = t.segments().back()?;
                            let part = seg.parts.last()?;
                            Some((seg.msn, part.index, part.chunks.len() / 2 - 1))
                        });
                        if let Some(key) = at {
                            arrivals.lock().expect("lock").insert(key, now);
                        }
                    }
                    _ => {}
                },
                Action::Audio(t) => match flv::parse_audio_tag(t.body.clone()) {
                    Ok(AudioTag::AacSequenceHeader(asc)) => {
                        hub.audio_config(1, livecdn_shared::aac::audio_config(asc).expect("asc"))
                    }
                    Ok(AudioTag::AacRaw(data)) => hub.frame(
                        1,
                        now,
                        Frame {
                            track: TrackKind::Audio,
                            dts_ms: t.timestamp_ms,
                            cts_ms: 0,
                            keyframe: true,
                            data,
                        },
                    ),
                    _ => {}
                },
            }
        }
    }
}

async fn get_playlist(client: &HttpClient, http: SocketAddr, query: &str) -> Option<MediaPlaylist> {
    let url = format!("http://{http}/live/bench/source/index.m3u8{query}");
    let resp = client.get(url.parse().ok()?).await.ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    MediaPlaylist::parse(std::str::from_utf8(&body).ok()?).ok()
}

fn parse_part(uri: &str) -> Option<(u64, u32)> {
    let stem = uri.strip_suffix(".m4s")?;
    let (m, p) = stem.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// (a): fetch each preload-hinted part as soon as it is hinted; note when
/// every frame's bytes arrive.
async fn hinted_parts(
    client: &HttpClient,
    http: SocketAddr,
    hub: &StreamHub,
    arrivals: &Arrivals,
) -> Vec<Duration> {
    let mut out = Vec::new();
    let end = Instant::now() + RUN;
    let mut pl = get_playlist(client, http, "").await;
    while Instant::now() < end {
        let Some((msn, part)) = pl
            .as_ref()
            .and_then(|p| p.preload_hint.as_ref())
            .and_then(|h| parse_part(&h.uri))
        else {
            pl = get_playlist(client, http, "").await;
            continue;
        };
        let url = format!("http://{http}/live/bench/source/{msn}.{part}.m4s");
        let Ok(resp) = client.get(url.parse().expect("url")).await else {
            break;
        };
        let mut body = resp.into_body();
        let mut received = Vec::new();
        let mut total = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                total += d.len();
                received.push((Instant::now(), total));
            }
        }
        // Chunk boundaries from the origin's window: header, payload, ...
        let chunks = hub.read(
            |p| match p.track("source").map(|t| t.lookup_part(msn, part, 0)) {
                Some(livecdn_origin::packager::PartLookup::Available { chunks, .. }) => {
                    chunks.iter().map(Bytes::len).collect::<Vec<_>>()
                }
                _ => Vec::new(),
            },
        );
        let arr = arrivals.lock().expect("lock").clone();
        let mut offset = 0;
        for (j, pair) in chunks.chunks(2).enumerate() {
            offset += pair.iter().sum::<usize>();
            let (Some(sent), Some((got, _))) = (
                arr.get(&(msn, part, j)),
                received.iter().find(|(_, n)| *n >= offset),
            ) else {
                continue;
            };
            out.push(got.saturating_duration_since(*sent));
        }
        let next = format!("?_HLS_msn={msn}&_HLS_part={part}");
        pl = get_playlist(client, http, &next).await;
    }
    out
}

/// (b): keep a blocking request outstanding for the next part; when it is
/// answered, compare with the arrival of that part's last frame.
async fn blocking_playlists(
    client: &HttpClient,
    http: SocketAddr,
    hub: &StreamHub,
    arrivals: &Arrivals,
) -> Vec<Duration> {
    let mut out = Vec::new();
    let end = Instant::now() + RUN;
    let Some(mut pl) = get_playlist(client, http, "").await else {
        return out;
    };
    while Instant::now() < end {
        let (msn, part) = pl.next_part();
        let q = format!("?_HLS_msn={msn}&_HLS_part={part}");
        let Some(next) = get_playlist(client, http, &q).await else {
            break;
        };
        let answered = Instant::now();
        let part = part as u32;
        let last = hub.read(
            |p| match p.track("source").map(|t| t.lookup_part(msn, part, 0)) {
                Some(livecdn_origin::packager::PartLookup::Available {
                    chunks,
                    complete: true,
                }) => Some(chunks.len() / 2 - 1),
                _ => None,
            },
        );
        if let Some(j) = last {
            if let Some(at) = arrivals.lock().expect("lock").get(&(msn, part, j)) {
                out.push(answered.saturating_duration_since(*at));
            }
        }
        pl = next;
    }
    out
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    if v.is_empty() {
        println!("{name}: no samples");
        return;
    }
    let pct = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: n={} median={:.2} ms p95={:.2} ms max={:.2} ms",
        v.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    );
}
