//! The ABR ladder's cost on this machine, with real ffmpeg:
//!
//! 1. CPU cores the origin's encoder uses per stream for the default ladder
//!    (a 1280x720 30 fps source makes the 480p and 360p rungs);
//! 2. the extra latency a transcoded rung adds over the source: for every
//!    (MSN, part) both list, when the origin's packager completed it in the
//!    rung minus in the source (the origin's own clock, in process);
//! 3. how many laddered streams run at real time: N = 1, 2, ... publishers
//!    until a rung falls more than a second behind its source, an encoder
//!    restarts, or its queue overflows. (ffmpeg's own speed figure is also
//!    shown, but a live input paces it, so it reads about 1x either way.)
//!
//! Publishers send a pre-encoded 720p clip with `-c copy` so that their own
//! encoding does not take the cores the ladder is measured on. Everything
//! runs on 127.0.0.1; each step is bounded in time. Run:
//! `cargo bench --bench ladder` (about 2 minutes). Needs ffmpeg.

use livecdn_origin::registry::StreamHub;
use livecdn_origin::Origin;
use livecdn_shared::config::OriginConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIP_SECONDS: u32 = 10;
const MEASURE: Duration = Duration::from_secs(20);
const MAX_STREAMS: usize = 8;

fn main() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("ladder bench: ffmpeg not found, nothing measured");
        return;
    }
    let clip = make_clip();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(&clip));
    let _ = std::fs::remove_file(&clip);
}

/// A 720p30 H.264 (x264 medium, B-frames, 3.5 Mb/s CBR, 1 s GOP) + AAC clip.
fn make_clip() -> PathBuf {
    let clip = std::env::temp_dir().join(format!("livecdn-ladder-{}.flv", std::process::id()));
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &CLIP_SECONDS.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "medium", "-bf", "2", "-g", "30",
        ])
        .args(["-pix_fmt", "yuv420p", "-b:v", "3500k", "-minrate", "3500k"])
        .args([
            "-maxrate",
            "3500k",
            "-bufsize",
            "3500k",
            "-x264-params",
            "nal-hrd=cbr",
        ])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv"])
        .arg(&clip)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not make the 720p clip");
    clip
}

fn publish(clip: &Path, url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-re", "-stream_loop", "-1", "-i"])
        .arg(clip)
        .args(["-c", "copy", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg")
}

async fn run(clip: &Path) {
    let secret = "ladder-bench-secret-0123456789";
    let mut config = OriginConfig {
        secret: Some(secret.to_string()),
        ..OriginConfig::default()
    };
    config.ingest.listen = "127.0.0.1:0".parse().expect("addr");
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.push.enabled = false;
    let origin = Origin::bind(config).await.expect("bind");
    let rtmp = origin.rtmp_addr().expect("addr");
    let state = origin.state();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(origin.run(stop));
    let url = |name: &str| {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 3600;
        let key = livecdn_shared::auth::sign_key(secret.as_bytes(), name, exp);
        format!("rtmp://{rtmp}/live/{key}")
    };

    let mut publishers: Vec<Child> = Vec::new();
    let mut latency_done = false;
    println!("streams  encoder_cores_each  max_rung_lag_ms  min_speed  restarts  queue_overflows");
    for n in 1..=MAX_STREAMS {
        let name = format!("s{n}");
        publishers.push(publish(clip, &url(&name)));
        // Every stream's encoder running before measuring.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let running = (1..=n).all(|i| {
                state.registry.get(&format!("s{i}")).is_some_and(|h| {
                    h.transcode_status().state == livecdn_origin::transcode::TranscodeState::Running
                })
            });
            if running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let hubs: Vec<Arc<StreamHub>> = (1..=n)
            .filter_map(|i| state.registry.get(&format!("s{i}")))
            .collect();
        let before = encoder_cpu_seconds();
        let restarts_before: u64 = hubs.iter().map(|h| h.transcode_status().restarts).sum();
        let dropped_before: u64 = hubs.iter().map(dropped).sum();
        let started = Instant::now();
        let mut min_speed = f64::MAX;
        let mut max_lag: f64 = 0.0;
        let latency = if latency_done {
            None
        } else {
            latency_done = true;
            hubs.first().cloned()
        };
        let sampler = async {
            while started.elapsed() < MEASURE {
                for h in &hubs {
                    if let Some(s) = h.transcode_status().speed {
                        min_speed = min_speed.min(s);
                    }
                    let lag = h.read(|p| {
                        let names: Vec<String> = p.rung_names().map(str::to_string).collect();
                        names
                            .iter()
                            .filter_map(|r| p.rung_lag_ms(r))
                            .fold(0.0f64, f64::max)
                    });
                    max_lag = max_lag.max(lag);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let gaps = async {
            match latency {
                Some(h) => Some(rung_delay(&h, MEASURE).await),
                None => None,
            }
        };
        let ((), gaps) = tokio::join!(sampler, gaps);
        let cpu = encoder_cpu_seconds() - before;
        let wall = started.elapsed().as_secs_f64();
        let restarts: u64 = hubs
            .iter()
            .map(|h| h.transcode_status().restarts)
            .sum::<u64>()
            - restarts_before;
        let overflows: u64 = hubs.iter().map(dropped).sum::<u64>() - dropped_before;
        println!(
            "{n:>7}  {:>18.2}  {max_lag:>15.0}  {:>9.2}  {restarts:>8}  {overflows:>15}",
            cpu / wall / n as f64,
            if min_speed == f64::MAX {
                0.0
            } else {
                min_speed
            }
        );
        if let Some(mut d) = gaps {
            d.sort_by(|a, b| a.total_cmp(b));
            if !d.is_empty() {
                let pct = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize];
                println!(
                    "         rung part available after the source's: median {:.0} ms, p95 {:.0} ms (n = {})",
                    pct(0.5),
                    pct(0.95),
                    d.len()
                );
            }
        }
        if max_lag > 1000.0 || restarts > 0 || overflows > 0 {
            println!("         {n} streams are past what this machine transcodes at real time");
            break;
        }
    }
    for mut p in publishers {
        let _ = p.kill();
        let _ = p.wait();
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}

fn dropped(h: &Arc<StreamHub>) -> u64 {
    h.feed_dropped.load(std::sync::atomic::Ordering::Relaxed)
}

/// For `run`, watches every window change and notes when each (rendition,
/// MSN, part) first appears complete; returns, for every part a rung and
/// the source both completed, the rung's time minus the source's (ms).
async fn rung_delay(hub: &StreamHub, run: Duration) -> Vec<f64> {
    let mut seen: HashMap<(String, u64, u32), Instant> = HashMap::new();
    let mut version = hub.subscribe();
    let until = Instant::now() + run;
    while Instant::now() < until {
        let now = Instant::now();
        hub.read(|p| {
            for t in p.tracks() {
                for s in t.segments().iter().rev().take(2) {
                    for part in s.parts.iter().filter(|x| x.complete) {
                        seen.entry((t.name.clone(), s.msn, part.index))
                            .or_insert(now);
                    }
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_millis(100), version.changed()).await;
    }
    let mut out = Vec::new();
    for ((name, msn, part), at) in &seen {
        if name == "source" || name == "audio" {
            continue;
        }
        if let Some(src) = seen.get(&("source".to_string(), *msn, *part)) {
            out.push(at.saturating_duration_since(*src).as_secs_f64() * 1000.0);
        }
    }
    out
}

/// CPU seconds used so far by this process's encoder children (ffmpeg
/// processes reading FLV on stdin with `-copyts`), from /proc.
fn encoder_cpu_seconds() -> f64 {
    let me = std::process::id().to_string();
    let tick = 100.0; // USER_HZ on Linux
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name.
        let Some(rest) = stat.rsplit(')').next() else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 13 || f[1] != me {
            continue;
        }
        let cmdline = std::fs::read_to_string(path.join("cmdline")).unwrap_or_default();
        if !cmdline.contains("-copyts") {
            continue;
        }
        let utime: f64 = f[11].parse().unwrap_or(0.0);
        let stime: f64 = f[12].parse().unwrap_or(0.0);
        total += (utime + stime) / tick;
    }
    total
}
