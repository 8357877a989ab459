//! A cluster across hosts, on this machine: network namespaces (made and
//! removed here) for two origins, two shields, three edges, Redis, the
//! publishers and the viewers, with 20 ms of delay each way and 1 % loss
//! between the origins and the tiers that pull from them. ffmpeg publishes
//! a prepared file (`-c copy`, no ladder) to each origin; the load-test
//! harness plays both streams through every edge.
//!
//! Shown: zero harness errors on every edge; each origin serves each media
//! object once per shield (edges meet at their stream's shield, by
//! rendezvous over the shields announced in Redis); a killed shield's
//! streams move to the next shield at once while the other shield's
//! stream plays on without a stall longer than one part target; a killed
//! edge that restarts rejoins and serves again.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::netns::{sock, DelayRelay, Net};

const WAIT: Duration = Duration::from_secs(60);
const LOSS_PERCENT: u32 = 1;

/// One-way delay between the origins and the next tier: 20 ms, or
/// `LIVECDN_BENCH_DELAY_MS` (the benchmark's setting).
fn delay() -> Duration {
    let ms = std::env::var("LIVECDN_BENCH_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}
/// The origins' part target (their default).
const PART_TARGET: Duration = Duration::from_millis(334);

/// A process in a namespace, killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(ns: &str, program: &str, args: &[&str], name: &str) -> Proc {
        let log =
            std::env::temp_dir().join(format!("livecdn-netns-{}-{name}.log", std::process::id()));
        let child = Net::command(ns, program)
            .args(args)
            .env("LIVECDN_SECRET", support::SECRET)
            .env("LIVECDN_ADMIN_TOKEN", support::ADMIN_TOKEN)
            .env("LIVECDN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    fn livecdn(ns: &str, args: &[&str], name: &str) -> Proc {
        Self::spawn(ns, env!("CARGO_BIN_EXE_livecdn"), args, name)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
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
async fn wait_ok(url: &str, what: &Proc) {
    let authority = url.split('/').nth(2).unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let listening = tokio::net::TcpStream::connect(&authority).await.is_ok();
        if listening && support::http::get(url).await.status == 200 {
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
fn prepared_file() -> PathBuf {
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
struct Played {
    label: String,
    report: Value,
}

impl Played {
    fn summary(&self) -> &Value {
        &self.report["summary"]
    }
    fn max_stall(&self) -> Duration {
        let ms = self.summary()["stall_duration"]["max"]
            .as_f64()
            .unwrap_or(0.0);
        Duration::from_secs_f64(ms / 1000.0)
    }
    fn latency(&self) -> (f64, f64) {
        let l = &self.summary()["latency_behind_live"];
        (
            l["p50"].as_f64().unwrap_or(f64::NAN),
            l["p99"].as_f64().unwrap_or(f64::NAN),
        )
    }
}

/// Runs the harness in `ns` against every `(label, url)` at once for
/// `seconds`, `viewers` each.
async fn play_all(
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
fn media_requests(log: &Path) -> HashMap<String, u32> {
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
struct Lab {
    net: Net,
    /// The test process's own address (the delay relays listen here).
    me: Ipv4Addr,
    redis_url: String,
    store: livecdn_cluster::Store,
    credential: String,
    no_push: support::TempConfig,
    _redis: Proc,
}

impl Lab {
    async fn new() -> Lab {
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
                support::edge::cluster_credential(support::SECRET, "netns")
            ),
            no_push: support::TempConfig::new("netns-origin", "[push]\nenabled = false\n"),
            _redis: redis,
        }
    }

    /// An origin at `.octet` (packaging the source only, no push, an
    /// access log if asked), reached by the tiers through a delay relay on
    /// `.1` with loss on its side of it. The process, its namespace and the
    /// relay's address (what it advertises).
    async fn origin(&mut self, octet: u8, access_log: Option<&Path>) -> (Proc, String, SocketAddr) {
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
    async fn node(&mut self, octet: u8, extra: &[&str]) -> (Proc, String) {
        let ns = self.net.host(&format!("n{octet}"), octet);
        (self.start_node(&ns, octet, extra, "").await, ns)
    }

    /// Starts (or restarts) the node of [`Lab::node`] in namespace `ns`.
    async fn start_node(&self, ns: &str, octet: u8, extra: &[&str], again: &str) -> Proc {
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
    fn publish(ns: &str, file: &Path, origin: Ipv4Addr, stream: &str) -> Proc {
        let url = format!("rtmp://{origin}:1935/live/{}", support::key(stream));
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
    async fn wait_mapped(&self, stream: &str) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_origins_two_shields_three_edges_across_hosts() {
    if !support::netns::available() || !support::have("ffmpeg") || !support::have("redis-server") {
        return;
    }
    let file = prepared_file();
    let mut lab = Lab::new().await;
    let logs: Vec<PathBuf> = (0..2)
        .map(|i| {
            std::env::temp_dir().join(format!(
                "livecdn-netns-{}-o{i}-access.log",
                std::process::id()
            ))
        })
        .collect();
    for log in &logs {
        let _ = std::fs::remove_file(log);
    }
    let (o_ips, s_ips) = (
        [lab.net.addr(11), lab.net.addr(12)],
        [lab.net.addr(21), lab.net.addr(22)],
    );
    let e_ips = [lab.net.addr(31), lab.net.addr(32), lab.net.addr(33)];
    let _origins = [
        lab.origin(11, Some(&logs[0])).await,
        lab.origin(12, Some(&logs[1])).await,
    ];
    // Shields announce themselves; edges follow the set.
    let mut shields = [
        lab.node(21, &["--role", "shield"]).await.0,
        lab.node(22, &["--role", "shield"]).await.0,
    ];
    let deadline = Instant::now() + WAIT;
    while lab
        .store
        .live(livecdn_cluster::SHIELDS_KEY)
        .await
        .unwrap()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "shields never announced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut edges = Vec::new();
    for octet in [31, 32, 33] {
        edges.push(lab.node(octet, &[]).await);
    }
    let (pub_ns, view_ns) = (lab.net.host("pub", 50), lab.net.host("view", 40));

    // Two streams that rendezvous on different shields, one per origin.
    let shield_bases: Vec<String> = s_ips.iter().map(|ip| format!("http://{ip}:8091")).collect();
    let first = |s: &str| livecdn_edge::upstream::rendezvous_order(s, &shield_bases)[0];
    let names: Vec<String> = (0..64).map(|i| format!("cam{i}")).collect();
    let x = names[0].clone();
    let y = names
        .iter()
        .find(|n| first(n) != first(&x))
        .unwrap()
        .clone();
    let streams = [x.clone(), y.clone()];
    let _publishers: Vec<Proc> = streams
        .iter()
        .zip(o_ips)
        .map(|(s, ip)| Lab::publish(&pub_ns, &file, ip, s))
        .collect();
    for s in &streams {
        lab.wait_mapped(s).await;
    }
    let targets = |edges: &[Ipv4Addr]| -> Vec<(String, String)> {
        edges
            .iter()
            .enumerate()
            .flat_map(|(i, ip)| {
                streams.iter().map(move |s| {
                    (
                        format!("e{}-{s}", i + 1),
                        format!("http://{ip}:8081/live/{s}/master.m3u8"),
                    )
                })
            })
            .collect()
    };

    // 1. Both streams through every edge, zero errors.
    let played = play_all(&view_ns, &targets(&e_ips), 2, 12).await;
    for p in &played {
        assert_eq!(
            p.summary()["errors"],
            serde_json::json!({}),
            "{}: {}",
            p.label,
            p.summary()
        );
        assert!(
            p.summary()["bytes"].as_u64().unwrap_or(0) > 0,
            "{}",
            p.label
        );
        let (p50, p99) = p.latency();
        println!(
            "{}: latency behind live p50 {p50:.0} ms p99 {p99:.0} ms, stalls {}",
            p.label,
            p.summary()["stalls"]
        );
    }
    // 2. Each origin served each media object once: only its stream's
    // shield asks it, however many edges.
    for (i, log) in logs.iter().enumerate() {
        let counts = media_requests(log);
        assert!(counts.len() > 3, "origin {i} served no media: {counts:?}");
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "origin {i} served objects more than once: {repeated:?}"
        );
    }

    // 3. The shield of x dies while everyone plays: x moves to the other
    // shield, and y (on the other shield) plays on without a long stall.
    let doomed = first(&x);
    let viewers = {
        let (ns, t) = (view_ns.clone(), targets(&e_ips));
        tokio::spawn(async move { play_all(&ns, &t, 2, 10).await })
    };
    // Kill once every viewer is playing (the harness reports
    // time-to-first-part; here: the edges have served this run's parts).
    let edge_parts = |ip: Ipv4Addr| format!("http://{ip}:8081/metrics");
    let before = metric_sum(&edge_parts(e_ips[0]), "livecdn_edge_requests_total{").await;
    let deadline = Instant::now() + WAIT;
    while metric_sum(&edge_parts(e_ips[0]), "livecdn_edge_requests_total{").await < before + 50.0 {
        assert!(Instant::now() < deadline, "viewers never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed = Instant::now();
    shields[doomed].kill();
    // x answers again through the next shield at every edge.
    for ip in e_ips {
        let url = format!("http://{ip}:8081/live/{x}/source/index.m3u8?_HLS_msn=0");
        let deadline = Instant::now() + WAIT;
        while support::http::get(&url).await.status != 200 {
            assert!(Instant::now() < deadline, "{x} never came back at {ip}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "{x}: served through the remaining shield {:?} after its shield died",
        killed.elapsed()
    );
    let played = viewers.await.unwrap();
    for p in &played {
        let s = p.summary();
        println!(
            "{}: errors {} stalls {} max stall {:?}",
            p.label,
            s["errors"],
            s["stalls"],
            p.max_stall()
        );
        if p.label.ends_with(&format!("-{y}")) {
            // The other shield's stream did not notice.
            assert_eq!(s["errors"], serde_json::json!({}), "{}: {s}", p.label);
            assert!(
                p.max_stall() <= PART_TARGET,
                "{}: stall {:?}",
                p.label,
                p.max_stall()
            );
        } else {
            // x: a request in flight through the dead shield may fail (its
            // body was cut); the viewers play on through the next shield.
            let intervals = s["intervals"].as_array().unwrap();
            let tail = &intervals[intervals.len().saturating_sub(3)..];
            assert!(
                tail.iter()
                    .all(|i| i["errors"] == 0 && i["bytes"].as_u64().unwrap_or(0) > 0),
                "{}: not playing after the shield died: {tail:?}",
                p.label
            );
        }
    }

    // 4. An edge killed and restarted rejoins.
    edges[1].0.kill();
    edges[1].0 = lab.start_node(&edges[1].1, 32, &[], "-again").await;
    let played = play_all(&view_ns, &targets(&e_ips[1..2]), 2, 6).await;
    for p in &played {
        assert_eq!(
            p.summary()["errors"],
            serde_json::json!({}),
            "{}: {}",
            p.label,
            p.summary()
        );
        assert!(
            p.summary()["bytes"].as_u64().unwrap_or(0) > 0,
            "{}",
            p.label
        );
    }
    let _ = std::fs::remove_file(&file);
    for log in logs {
        let _ = std::fs::remove_file(log);
    }
}

/// The sum of a metric's samples on an edge (admin token sent).
async fn metric_sum(url: &str, prefix: &str) -> f64 {
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let text = support::http::get_with(url, &[("authorization", &auth)], false)
        .await
        .text();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `livecdn_edge_*` summary's quantiles in ms, as `p50 X p99 Y`.
async fn summary_ms(url: &str, name: &str) -> String {
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let text = support::http::get_with(url, &[("authorization", &auth)], false)
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

/// Benchmark (`bash bench/cluster_tiers.sh`): latency behind live at the
/// viewers for each tier depth, all behind the same impaired link (20 ms
/// each way, 1 % loss) from the origin: the origin itself (viewers
/// through the link), an edge in front of it, and an edge behind a shield.
/// Pull only (no push). Prints a table; asserts only that every depth
/// played.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bash bench/cluster_tiers.sh"]
async fn bench_latency_by_tier_depth() {
    if !support::netns::available() || !support::have("ffmpeg") || !support::have("redis-server") {
        return;
    }
    let seconds: u32 = std::env::var("LIVECDN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let viewers: u32 = std::env::var("LIVECDN_BENCH_VIEWERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let file = prepared_file();
    let mut lab = Lab::new().await;
    let (origin, _ns, relay) = lab.origin(11, None).await;
    let _shield = lab.node(21, &["--role", "shield"]).await;
    // Depth 1: an edge that knows the origin (through the link) and no
    // shield; depth 2: an edge of the cluster, behind the shield.
    let advertise = format!("http://{relay}");
    let _edge1 = lab.node(31, &["--origin", &advertise]).await;
    let edge2 = lab.node(32, &[]).await;
    let (pub_ns, view_ns) = (lab.net.host("pub", 50), lab.net.host("view", 40));
    let _ff = Lab::publish(&pub_ns, &file, lab.net.addr(11), "cam");
    lab.wait_mapped("cam").await;
    let (e1_http, e2_http) = (
        format!("{}:8081", lab.net.addr(31)),
        format!("{}:8081", lab.net.addr(32)),
    );
    wait_ok(&format!("http://{relay}/live/cam/master.m3u8"), &origin).await;
    wait_ok(&format!("http://{e2_http}/live/cam/master.m3u8"), &edge2.0).await;
    let targets = [
        (
            "origin".to_string(),
            format!("http://{relay}/live/cam/master.m3u8"),
        ),
        (
            "edge".to_string(),
            format!("http://{e1_http}/live/cam/master.m3u8"),
        ),
        (
            "shield+edge".to_string(),
            format!("http://{e2_http}/live/cam/master.m3u8"),
        ),
    ];
    let played = play_all(&view_ns, &targets, viewers, seconds).await;
    println!(
        "\n{viewers} viewers per depth, {seconds} s, {:?} each way + {LOSS_PERCENT} % loss between the origin and the next hop",
        delay()
    );
    println!("| depth | latency behind live p50 / p99 | stalls | errors |");
    println!("|---|---|---|---|");
    for p in &played {
        let (p50, p99) = p.latency();
        let s = p.summary();
        println!(
            "| {} | {:.0} / {:.0} ms | {} | {} |",
            p.label, p50, p99, s["stalls"], s["errors"]
        );
        assert!(
            s["bytes"].as_u64().unwrap_or(0) > 0,
            "{} did not play",
            p.label
        );
    }
    for (name, http) in [("edge", &e1_http), ("shield+edge", &e2_http)] {
        let release = summary_ms(
            &format!("http://{http}/metrics"),
            "livecdn_edge_blocking_release_seconds",
        )
        .await;
        println!(
            "{name}: blocking reloads answered after the playlist's arrival at the edge: {release}"
        );
    }
    let _ = std::fs::remove_file(&file);
}
