//! Malformed input against a running origin, in the spirit of str0m's
//! malformed-packet-injection test: a panic means a bug in livecdn, never
//! bad input (DESIGN section 7, STYLE rule 5).
//!
//! One origin serves a good ffmpeg stream while raw TCP clients throw
//! garbage at its RTMP and HTTP ports. After every attack the process must
//! be alive with no new panic in its log; where an answer comes back it must
//! be a sensible status. At the end the good stream must have kept going:
//! its playlist advanced, blocking reload works and fresh media is served.
//!
//! Every loop is bounded in count and every wait in time. Randomness comes
//! from a seeded xorshift, so a failure replays exactly.

#![allow(clippy::unwrap_used)]

mod http_attacks;
mod rtmp_attacks;
#[path = "../support/mod.rs"]
mod support;

use http_attacks::*;
use rtmp_attacks::*;

use livecdn_shared::playlist::MediaPlaylist;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::http::{get, wait_ok};
use support::{have, key, Ffmpeg, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Seeded xorshift64: reproducible garbage without the rand crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// `base` plus up to `extra` random bytes.
    fn junk(&mut self, base: usize, extra: u64) -> Vec<u8> {
        let n = base + self.below(extra) as usize;
        self.bytes(n)
    }
}

// ---------------------------------------------------------------------------
// Raw TCP helpers (all bounded in time).

const READ_LIMIT: Duration = Duration::from_secs(3);

async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()
}

/// Writes, ignoring errors: the server may rightly hang up mid-write.
async fn send(s: &mut TcpStream, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(3), s.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// What came back on a connection within a time limit.
struct Answer {
    bytes: Vec<u8>,
    /// The server closed (EOF or reset) within the limit.
    closed: bool,
}

impl Answer {
    fn contains(&self, needle: &[u8]) -> bool {
        self.bytes.windows(needle.len()).any(|w| w == needle)
    }
    /// Status code of an HTTP/1.x response, if one came back.
    fn status(&self) -> Option<u16> {
        let line = self.bytes.split(|&b| b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?;
        let mut words = line.split_whitespace();
        words.next().filter(|v| v.starts_with("HTTP/1."))?;
        words.next()?.parse().ok()
    }
}

/// Reads until EOF, error, `needle` seen (if any), or `limit`; at most 4 MB.
async fn read_answer(s: &mut TcpStream, limit: Duration, needle: Option<&[u8]>) -> Answer {
    let deadline = tokio::time::Instant::now() + limit;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(n) = needle {
            if bytes.windows(n.len()).any(|w| w == n) {
                return Answer {
                    bytes,
                    closed: false,
                };
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Answer {
                    bytes,
                    closed: true,
                }
            }
            Ok(Ok(n)) => {
                if bytes.len() < 4 << 20 {
                    bytes.extend_from_slice(&buf[..n]);
                }
            }
            Err(_) => {
                return Answer {
                    bytes,
                    closed: false,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// RTMP by hand: simple handshake, chunk headers, AMF0.

type Findings = Vec<String>;

/// Runs the attacks one by one and checks the origin after each.
struct Campaign {
    origin: Origin,
    findings: Vec<String>,
    panics_seen: usize,
}

impl Campaign {
    async fn run(&mut self, name: &str, attack: impl Future<Output = Findings>) {
        if !self.origin.alive() {
            return;
        }
        let start = Instant::now();
        match tokio::time::timeout(Duration::from_secs(20), attack).await {
            Ok(found) => {
                for x in found {
                    self.findings.push(format!("[{name}] {x}"));
                }
            }
            Err(_) => self
                .findings
                .push(format!("[{name}] did not finish in 20 s")),
        }
        // Give the origin a moment to log whatever the attack caused.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let log = self.origin.log();
        // The panic hook's line: "thread '...' panicked at FILE:LINE:COL:"
        // and the message on the next line.
        let lines: Vec<&str> = log.lines().collect();
        let panics: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("thread '") && l.contains(" panicked at "))
            .map(|(i, l)| {
                let at = l.split(" panicked at ").nth(1).unwrap_or(l);
                format!("{at} {}", lines.get(i + 1).unwrap_or(&""))
            })
            .collect();
        if panics.len() > self.panics_seen {
            self.findings.push(format!(
                "[{name}] origin panicked: {}",
                panics[self.panics_seen..].join(" | ")
            ));
            self.panics_seen = panics.len();
        }
        if !self.origin.alive() {
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            self.findings.push(format!(
                "[{name}] origin process died; log tail: {}",
                tail.join(" | ")
            ));
        }
        eprintln!("attack {name}: {:?}", start.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_never_disturbs_the_origin_or_other_streams() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let started = Instant::now();
    let origin = Origin::start(&[]);
    let (rtmp, http) = (origin.rtmp, origin.http);
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("good")), 90);
    wait_ok(
        &origin.url("/live/good/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let before = good_playlist(http, "").await.unwrap();
    let before_part = before.last_part().expect("good stream has parts");
    let last_msn = before.last_msn().unwrap_or(before.media_sequence);

    let mut c = Campaign {
        origin,
        findings: Vec::new(),
        panics_seen: 0,
    };
    c.run("http malformed requests", http_malformed(http)).await;
    c.run("http _HLS_ queries", http_bad_queries(http, last_msn))
        .await;
    c.run("http methods and h2 garbage", http_methods_and_h2(http))
        .await;
    c.run("slowloris rtmp + http", slow_clients(rtmp, http))
        .await;
    c.run(
        "rtmp garbage after connect",
        rtmp_garbage_after_connect(rtmp),
    )
    .await;
    c.run("rtmp C0+C1 then garbage", rtmp_c0c1_then_garbage(rtmp))
        .await;
    c.run("rtmp truncated handshake", rtmp_truncated_handshake(rtmp))
        .await;
    for (i, (name, bytes)) in bad_chunk_cases().into_iter().enumerate() {
        c.run(
            &name,
            rtmp_after_handshake(rtmp, 0x5eed_1000 + i as u64, bytes),
        )
        .await;
    }
    c.run(
        "rtmp wrong app and bad keys",
        rtmp_wrong_app_and_bad_key(rtmp),
    )
    .await;
    c.run(
        "rtmp media before/after publish",
        rtmp_media_before_and_after_publish(rtmp),
    )
    .await;
    c.run("rtmp 200 idle connections", rtmp_idle_flood(rtmp))
        .await;
    // This one aborted the whole origin when written (rml_amf0 recursion);
    // SKIP_NESTING=1 leaves it out to check the final assertions meanwhile.
    if std::env::var_os("SKIP_NESTING").is_none() {
        c.run("rtmp deeply nested AMF0", rtmp_amf_nesting(rtmp))
            .await;
    }

    // The good stream kept going through all of it.
    if c.origin.alive() {
        for x in good_stream_still_plays(&c.origin, before_part).await {
            c.findings.push(format!("[good stream] {x}"));
        }
        if !c.origin.alive() {
            c.findings.push("origin died at the end".into());
        }
    }
    eprintln!("whole test: {:?}", started.elapsed());
    assert!(
        c.findings.is_empty(),
        "{} finding(s):\n{}",
        c.findings.len(),
        c.findings.join("\n")
    );
}

async fn good_stream_still_plays(o: &Origin, before: (u64, u64)) -> Findings {
    let mut f = Vec::new();
    let pl = match good_playlist(o.http, "").await {
        Ok(pl) => pl,
        Err(e) => return vec![e],
    };
    let now = pl.last_part().unwrap_or((0, 0));
    if now <= before {
        f.push(format!("last part {now:?} did not advance past {before:?}"));
    }
    // Blocking reload for the next part returns it.
    let (msn, part) = pl.next_part();
    let t = Instant::now();
    match good_playlist(o.http, &format!("?_HLS_msn={msn}&_HLS_part={part}")).await {
        Ok(after) => {
            if after.last_part().unwrap_or((0, 0)) < (msn, part) && after.last_msn() < Some(msn) {
                f.push(format!(
                    "blocking reload for {msn}.{part} returned {:?}",
                    after.last_part()
                ));
            }
        }
        Err(e) => f.push(format!("blocking reload: {e} after {:?}", t.elapsed())),
    }
    // A fresh part and segment have bytes, and the segment decodes.
    let pl = match good_playlist(o.http, "").await {
        Ok(pl) => pl,
        Err(e) => return [f, vec![e]].concat(),
    };
    let part_uri = pl.segments.iter().rev().find_map(|s| s.parts.last());
    if let Some(p) = part_uri {
        let b = get(&o.url(&format!("/live/good/source/{}", p.uri))).await;
        if b.status != 200 || b.body.is_empty() {
            f.push(format!(
                "part {}: {} with {} bytes",
                p.uri,
                b.status,
                b.body.len()
            ));
        }
    } else {
        f.push("no part listed".into());
    }
    let seg = pl.segments.iter().rev().find_map(|s| s.uri.clone());
    let Some(seg) = seg else {
        f.push("no complete segment".into());
        return f;
    };
    let init = get(&o.url("/live/good/source/init.mp4")).await;
    let body = get(&o.url(&format!("/live/good/source/{seg}"))).await;
    if body.status != 200 || body.body.is_empty() {
        f.push(format!(
            "segment {seg}: {} with {} bytes",
            body.status,
            body.body.len()
        ));
        return f;
    }
    let path = std::env::temp_dir().join(format!("livecdn-e2e-bad-{}-seg.mp4", std::process::id()));
    std::fs::write(&path, [init.body.as_ref(), body.body.as_ref()].concat()).unwrap();
    let frames = support::ffprobe(
        &[
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ],
        &path,
    );
    let _ = std::fs::remove_file(&path);
    if frames.trim().parse::<u32>().unwrap_or(0) == 0 {
        f.push(format!("segment {seg} decodes to {frames:?} frames"));
    }
    f
}
