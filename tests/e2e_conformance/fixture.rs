//! The one shared fixture: an origin with a two-rung ladder, two real
//! `livecdn edge`s in front of it (one pulling only, one also subscribed to
//! the origin's push, the production path), and one ffmpeg publisher.
//! Started once before the trials; dropping it kills every child process.

use crate::client::Server;
use crate::m3u8::{Master, Media};
use crate::support::edge::{free_udp_port, Edge};
use crate::support::http::get;
use crate::support::{key, Ffmpeg, Origin};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The servers under test, as trial name prefixes.
pub const SIDES: [&str; 3] = ["origin", "edge", "push_edge"];

/// The stream every rule reads.
pub const STREAM: &str = "conf";
/// How long ffmpeg publishes; the whole run must end well within it.
const PUBLISH_SECONDS: u32 = 240;
/// Complete segments every playlist has before the trials start.
const MIN_SEGMENTS: usize = 4;

pub struct Fixture {
    // Field order is drop order: the publisher stops first, then the edges,
    // then the origin (which takes its transcoder with it).
    _publisher: Ffmpeg,
    edge: Edge,
    push_edge: Edge,
    origin: Origin,
    renditions: Vec<String>,
    audio: Vec<String>,
}

impl Fixture {
    /// Starts everything and waits (bounded) until the multivariant
    /// playlist lists the rung and every playlist, at the origin and at
    /// the edge, has [`MIN_SEGMENTS`] complete segments.
    pub async fn start() -> Fixture {
        let push = format!("127.0.0.1:{}", free_udp_port());
        let origin = Origin::start(&["--ladder", "source,360p", "--push-listen", &push]);
        // 1280x720 30 fps H.264 with a keyframe every 2 s (the segment
        // target) plus 48 kHz AAC; veryfast leaves CPU for the 360p rung.
        let publisher = Ffmpeg::publish_sized(
            &origin.rtmp_url(&key(STREAM)),
            PUBLISH_SECONDS,
            "1280x720",
            &["-preset", "veryfast", "-g", "60"],
        );
        let edge = Edge::start(&origin, &[]);
        let push_edge = Edge::start(&origin, &["--push", &push, "--push-insecure"]);
        let (renditions, audio) = wait_master(&origin).await;
        let fixture = Fixture {
            _publisher: publisher,
            edge,
            push_edge,
            origin,
            renditions,
            audio,
        };
        for server in fixture.servers() {
            for r in &server.renditions {
                wait_segments(&server, r).await;
            }
        }
        fixture
    }

    /// The origin and the edges as servers under test.
    pub fn servers(&self) -> [Server; 3] {
        let server = |side, addr: SocketAddr| Server {
            side,
            base: format!("http://{addr}"),
            stream: STREAM.to_string(),
            renditions: self.renditions.clone(),
            audio: self.audio.clone(),
        };
        [
            server(SIDES[0], self.origin.http),
            server(SIDES[1], self.edge.http),
            server(SIDES[2], self.push_edge.http),
        ]
    }
}

/// Waits until master.m3u8 lists the `360p` rung and the audio; returns
/// the renditions (each variant's directory, then each `EXT-X-MEDIA`
/// one's) and which of them are audio.
async fn wait_master(origin: &Origin) -> (Vec<String>, Vec<String>) {
    let url = origin.url(&format!("/live/{STREAM}/master.m3u8"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let dir = |uri: &str| uri.split('/').next().unwrap_or_default().to_string();
    while Instant::now() < deadline {
        let f = get(&url).await;
        if f.status == 200 {
            last = f.text();
            let m = Master::parse(&last);
            let audio: Vec<String> = m
                .media
                .iter()
                .filter(|a| a.get("TYPE") == Some("AUDIO"))
                .filter_map(|a| a.get("URI").map(dir))
                .collect();
            let mut names: Vec<String> = m.variants.iter().map(|u| dir(u)).collect();
            names.extend(audio.iter().cloned());
            if names.iter().any(|n| n == "360p") && !audio.is_empty() {
                return (names, audio);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{url} never listed 360p and an audio rendition within 60 s; last:\n{last}");
}

/// Waits until `rendition`'s playlist at `server` has enough complete
/// segments.
async fn wait_segments(server: &Server, rendition: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while Instant::now() < deadline {
        let a = server.request(rendition, "").await;
        if a.status == 200 {
            if let Ok(pl) = Media::parse(&a.text) {
                if pl.segs.iter().filter(|s| s.complete()).count() >= MIN_SEGMENTS {
                    return;
                }
            }
        }
        seen = format!("{} {}", a.status, a.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "{} {rendition}: fewer than {MIN_SEGMENTS} complete segments within 60 s: {seen}",
        server.side
    );
}
