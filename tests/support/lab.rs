//! The multi-host lab (`tests/e2e_cluster_netns.rs` and its benchmark):
//! network namespaces for Redis, origins, shields, edges, publishers and
//! viewers ([`super::netns`]), with the origins reached through a delay
//! relay and loss on their side of it; processes killed on drop, the
//! load-test harness run in a namespace and its reports read back.

use super::netns::{sock, DelayRelay, Net};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(60);
pub const LOSS_PERCENT: u32 = 1;

/// One-way delay between the origins and the next tier: 20 ms, or
/// `LIVECDN_BENCH_DELAY_MS` (the benchmark's setting).
pub fn delay() -> Duration {
    let ms = std::env::var("LIVECDN_BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}

/// A process in a namespace, killed on drop.
pub struct Proc {
    pub child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(ns: &str, program: &str, args: &[&str], name: &str) -> Proc {
        let log =
            std::env::temp_dir().join(format!("livecdn-netns-{}-{name}.log", std::process::id()));
        let child = Net::command(ns, program)
            .args(args)
            .env("LIVECDN_SECRET", super::SECRET)
            .env("LIVECDN_ADMIN_TOKEN", super::ADMIN_TOKEN)
            .env("LIVECDN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    pub fn livecdn(ns: &str, args: &[&str], name: &str) -> Proc {
        Self::spawn(ns, env!("CARGO_BIN_EXE_livecdn"), args, name)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it answers 200 (bounded), connecting first (the
/// process may not be listening yet).
pub async fn wait_ok(url: &str, what: &Proc) {
    let authority = url.split('/').nth(2).unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let listening = tokio::net::TcpStream::connect(&authority).await.is_ok();
        if listening && super::http::get(url).await.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never 200:\n{}",
            what.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 12 s H.264 (no B-frames, a keyframe a second) + AAC file to publish
/// with `-c copy`.
pub fn prepared_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("livecdn-netns-{}.flv", std::process::id()));
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=426x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
        ])
        .args([
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg could not prepare the file");
    path
}

/// One harness run's report, parsed.
pub struct Played {
    pub label: String,
    pub report: Value,
}

impl Played {
    pub fn summary(&self) -> &Value {
        &self.report["summary"]
    }
    pub fn max_stall(&self) -> Duration {
        let ms = self.summary()["stall_duration"]["max"]
            .as_f64()
            .unwrap_or(0.0);
        Duration::from_secs_f64(ms / 1000.0)
    }
    /// Asserts the run played: no error of any kind, and media received.
    pub fn assert_clean(&self) {
        assert_eq!(
            self.summary()["errors"],
            serde_json::json!({}),
            "{}: {}",
            self.label,
            self.summary()
        );
        assert!(
            self.summary()["bytes"].as_u64().unwrap_or(0) > 0,
            "{}",
            self.label
        );
    }
    /// The run's latency behind live, p50 and p99, in ms.
    pub fn latency(&self) -> (f64, f64) {
        let l = &self.summary()["latency_behind_live"];
        (
            l["p50"].as_f64().unwrap_or(f64::NAN),
            l["p99"].as_f64().unwrap_or(f64::NAN),
        )
    }
}

/// Runs the harness in `ns` against every `(label, url)` at once for
/// `seconds`, `viewers` each.
pub async fn play_all(
    ns: &str,
    targets: &[(String, String)],
    viewers: u32,
    seconds: u32,
) -> Vec<Played> {
    let runs: Vec<_> = targets
        .iter()
        .map(|(label, url)| {
            let json = std::env::temp_dir()
                .join(format!("livecdn-netns-{}-{label}.json", std::process::id()));
            let _ = std::fs::remove_file(&json);
            let (v, d) = (viewers.to_string(), format!("{seconds}s"));
            let args = [
                "loadtest",
                "play",
                url,
                "--viewers",
                &v,
                "--duration",
                &d,
                "--protocol",
                "h1",
                "--threads",
                "1",
                "--json",
                json.to_str().unwrap(),
            ];
            let proc = Proc::livecdn(ns, &args, &format!("harness-{label}"));
            (label.clone(), proc, json)
        })
        .collect();
    let mut out = Vec::new();
    for (label, mut proc, json) in runs {
        let deadline = Instant::now() + Duration::from_secs(u64::from(seconds)) + WAIT;
        let status = loop {
            if let Some(s) = proc.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "harness {label} did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "harness {label} failed:\n{}", proc.log());
        let text = std::fs::read_to_string(&json).unwrap();
        let _ = std::fs::remove_file(&json);
        out.push(Played {
            label,
            report: serde_json::from_str(&text).unwrap(),
        });
    }
    out
}

/// Media objects (parts, segments, init sections) in an access log, with
/// how many times each was requested.
pub fn media_requests(log: &Path) -> HashMap<String, u32> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let path = v["path"].as_str().unwrap_or("");
        if path.ends_with(".m4s") || path.ends_with(".mp4") {
            *counts.entry(path.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// What every scenario here starts from: the net, Redis at `.2`, the
/// cluster credential, and the hosts made so far.
pub struct Lab {
    pub net: Net,
    /// The test process's own address (the delay relays listen here).
    me: Ipv4Addr,
    redis_url: String,
    pub store: livecdn_cluster::Store,
    credential: String,
    no_push: super::TempConfig,
    _redis: Proc,
}

impl Lab {
    pub async fn new() -> Lab {
        let mut net = Net::new();
        let (me, ip) = (net.addr(1), net.addr(2));
        let ns = net.host("redis", 2);
        let bind = ip.to_string();
        let redis = Proc::spawn(
            &ns,
            "redis-server",
            &[
                "--bind",
                &bind,
                "--port",
                "6379",
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            "redis",
        );
        let redis_url = format!("redis://{ip}:6379");
        let store = livecdn_cluster::Store::open(&redis_url).unwrap();
        let deadline = Instant::now() + WAIT;
        while store.ping().await.is_err() {
            assert!(Instant::now() < deadline, "redis did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Lab {
            net,
            me,
            redis_url,
            store,
            credential: format!(
                "--cluster-credential={}",
                super::edge::cluster_credential(super::SECRET, "netns")
            ),
            no_push: super::TempConfig::new("netns-origin", "[push]\nenabled = false\n"),
            _redis: redis,
        }
    }

    /// An origin at `.octet` (packaging the source only, no push, an
    /// access log if asked), reached by the tiers through a delay relay on
    /// `.1` with loss on its side of it. The process, its namespace and the
    /// relay's address (what it advertises).
    pub async fn origin(
        &mut self,
        octet: u8,
        access_log: Option<&Path>,
    ) -> (Proc, String, SocketAddr) {
        let ip = self.net.addr(octet);
        let ns = self.net.host(&format!("o{octet}"), octet);
        let relay = DelayRelay::tcp(sock(self.me, 0), sock(ip, 8080), delay()).await;
        let (rtmp, http, advertise) = (
            format!("{ip}:1935"),
            format!("{ip}:8080"),
            format!("http://{relay}"),
        );
        let mut args = vec![
            "origin",
            "--config",
            self.no_push.arg(),
            "--rtmp-listen",
            &rtmp,
            "--http-listen",
            &http,
            "--redis",
            &self.redis_url,
            "--advertise",
            &advertise,
            "--ladder",
            "source",
        ];
        if let Some(log) = access_log {
            args.extend(["--access-log", log.to_str().unwrap()]);
        }
        let origin = Proc::livecdn(&ns, &args, &format!("origin-{octet}"));
        wait_ok(&format!("http://{http}/healthz"), &origin).await;
        Net::loss(&ns, self.me, LOSS_PERCENT);
        (origin, ns, relay)
    }

    /// An edge (HTTP on `.octet:8081`) or, with `--role shield` in
    /// `extra`, a shield (`.octet:8091`), in the cluster unless `extra`
    /// names its origin; waits until it is ready. The process and its
    /// namespace.
    pub async fn node(&mut self, octet: u8, extra: &[&str]) -> (Proc, String) {
        let ns = self.net.host(&format!("n{octet}"), octet);
        (self.start_node(&ns, octet, extra, "").await, ns)
    }

    /// Starts (or restarts) the node of [`Lab::node`] in namespace `ns`.
    pub async fn start_node(&self, ns: &str, octet: u8, extra: &[&str], again: &str) -> Proc {
        let ip = self.net.addr(octet);
        let shield = extra.contains(&"shield");
        let (http, https) = match shield {
            true => (format!("{ip}:8091"), format!("{ip}:8453")),
            false => (format!("{ip}:8081"), format!("{ip}:8443")),
        };
        let mut args = vec![
            "edge",
            "--http-listen",
            &http,
            "--https-listen",
            &https,
            "--no-h3",
        ];
        args.push(&self.credential);
        if !extra.contains(&"--origin") {
            args.extend(["--redis", &self.redis_url]);
        }
        args.extend_from_slice(extra);
        let node = Proc::livecdn(ns, &args, &format!("node-{octet}{again}"));
        wait_ok(&format!("http://{http}/readyz"), &node).await;
        node
    }

    /// ffmpeg in `ns` publishing `file` (`-c copy`, looped) as `stream` to
    /// the origin at `origin`.
    pub fn publish(ns: &str, file: &Path, origin: Ipv4Addr, stream: &str) -> Proc {
        let url = format!("rtmp://{origin}:1935/live/{}", super::key(stream));
        let file = file.to_str().unwrap();
        let args = [
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            file,
            "-c",
            "copy",
            "-f",
            "flv",
            &url,
        ];
        Proc::spawn(ns, "ffmpeg", &args, &format!("ffmpeg-{stream}"))
    }

    /// Waits (bounded) until the map names an origin for `stream`.
    pub async fn wait_mapped(&self, stream: &str) {
        let deadline = Instant::now() + WAIT;
        while self
            .store
            .lookup(&[stream])
            .await
            .unwrap()
            .pop()
            .flatten()
            .is_none()
        {
            assert!(Instant::now() < deadline, "{stream} never mapped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The sum of a metric's samples on an edge (admin token sent).
pub async fn metric_sum(url: &str, prefix: &str) -> f64 {
    let auth = format!("Bearer {}", super::ADMIN_TOKEN);
    let text = super::http::get_with(url, &[("authorization", &auth)], false)
        .await
        .text();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `livecdn_edge_*` summary's quantiles in ms, as `p50 X p99 Y`.
pub async fn summary_ms(url: &str, name: &str) -> String {
    let auth = format!("Bearer {}", super::ADMIN_TOKEN);
    let text = super::http::get_with(url, &[("authorization", &auth)], false)
        .await
        .text();
    let q = |quantile: &str| {
        let prefix = format!("{name}{{quantile=\"{quantile}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse::<f64>().ok())
            .map_or(f64::NAN, |s| s * 1000.0)
    };
    format!("p50 {:.1} ms p99 {:.1} ms", q("0.5"), q("0.99"))
}
