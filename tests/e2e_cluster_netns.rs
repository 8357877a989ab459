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
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::netns::{sock, DelayRelay, Net};

const WAIT: Duration = Duration::from_secs(60);
const DELAY: Duration = Duration::from_millis(20);
const LOSS_PERCENT: u32 = 1;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_origins_two_shields_three_edges_across_hosts() {
    if !support::netns::available() || !support::have("ffmpeg") || !support::have("redis-server") {
        return;
    }
    let file = prepared_file();
    let mut net = Net::new();
    let a = |o: u8| net.addr(o);
    let (redis_ip, o_ips, s_ips, e_ips) =
        (a(2), [a(11), a(12)], [a(21), a(22)], [a(31), a(32), a(33)]);
    let me = a(1);
    let redis_ns = net.host("redis", 2);
    let o_ns = [net.host("o1", 11), net.host("o2", 12)];
    let s_ns = [net.host("s1", 21), net.host("s2", 22)];
    let e_ns = [net.host("e1", 31), net.host("e2", 32), net.host("e3", 33)];
    let pub_ns = net.host("pub", 50);
    let view_ns = net.host("view", 40);

    let redis_url = format!("redis://{redis_ip}:6379");
    let _redis = Proc::spawn(
        &redis_ns,
        "redis-server",
        &[
            "--bind",
            &redis_ip.to_string(),
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
    let store = livecdn_cluster::Store::open(&redis_url).unwrap();
    let deadline = Instant::now() + WAIT;
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "redis did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Origins: reached by the tiers only through a delay relay at .1, with
    // loss on their side of it.
    let no_push = support::TempConfig::new("netns-origin", "[push]\nenabled = false\n");
    let mut origins = Vec::new();
    let mut logs = Vec::new();
    for (i, (ns, ip)) in o_ns.iter().zip(o_ips).enumerate() {
        let relay = DelayRelay::tcp(sock(me, 0), sock(ip, 8080), DELAY).await;
        let log = std::env::temp_dir().join(format!(
            "livecdn-netns-{}-o{i}-access.log",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&log);
        let (rtmp, http) = (format!("{ip}:1935"), format!("{ip}:8080"));
        let advertise = format!("http://{relay}");
        let args = [
            "origin",
            "--config",
            no_push.arg(),
            "--rtmp-listen",
            &rtmp,
            "--http-listen",
            &http,
            "--redis",
            &redis_url,
            "--advertise",
            &advertise,
            "--ladder",
            "source",
            "--access-log",
            log.to_str().unwrap(),
        ];
        let o = Proc::livecdn(ns, &args, &format!("origin{i}"));
        wait_ok(&format!("http://{ip}:8080/healthz"), &o).await;
        Net::loss(ns, me, LOSS_PERCENT);
        origins.push(o);
        logs.push(log);
    }

    // Shields announce themselves; edges follow the set.
    let credential = format!(
        "--cluster-credential={}",
        support::edge::cluster_credential(support::SECRET, "netns")
    );
    let shield_args = |ip: Ipv4Addr| {
        vec![
            "edge".to_string(),
            "--role".into(),
            "shield".into(),
            "--http-listen".into(),
            format!("{ip}:8091"),
            "--https-listen".into(),
            format!("{ip}:8453"),
            "--no-h3".into(),
            "--redis".into(),
            redis_url.clone(),
            credential.clone(),
        ]
    };
    let mut shields: Vec<Proc> = Vec::new();
    for (i, (ns, ip)) in s_ns.iter().zip(s_ips).enumerate() {
        let args = shield_args(ip);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let s = Proc::livecdn(ns, &args, &format!("shield{i}"));
        wait_ok(&format!("http://{ip}:8091/readyz"), &s).await;
        shields.push(s);
    }
    let deadline = Instant::now() + WAIT;
    while store
        .live(livecdn_cluster::SHIELDS_KEY)
        .await
        .unwrap()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "shields never announced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let edge_args = |ip: Ipv4Addr| {
        vec![
            "edge".to_string(),
            "--http-listen".into(),
            format!("{ip}:8081"),
            "--https-listen".into(),
            format!("{ip}:8443"),
            "--no-h3".into(),
            "--redis".into(),
            redis_url.clone(),
            credential.clone(),
        ]
    };
    let mut edges: Vec<Proc> = Vec::new();
    for (i, (ns, ip)) in e_ns.iter().zip(e_ips).enumerate() {
        let args = edge_args(ip);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = Proc::livecdn(ns, &args, &format!("edge{i}"));
        wait_ok(&format!("http://{ip}:8081/readyz"), &e).await;
        edges.push(e);
    }

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
    let file_arg = file.to_str().unwrap().to_string();
    let _publishers: Vec<Proc> = streams
        .iter()
        .zip(o_ips)
        .map(|(s, ip)| {
            let url = format!("rtmp://{ip}:1935/live/{}", support::key(s));
            let args = [
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                &file_arg,
                "-c",
                "copy",
                "-f",
                "flv",
                &url,
            ];
            Proc::spawn(&pub_ns, "ffmpeg", &args, &format!("ffmpeg-{s}"))
        })
        .collect();
    for (s, ip) in streams.iter().zip(o_ips) {
        let want = format!("http://{me}:");
        let deadline = Instant::now() + WAIT;
        loop {
            let e = store.lookup(&[s]).await.unwrap().pop().flatten();
            if e.as_ref().is_some_and(|e| e.http.starts_with(&want)) {
                break;
            }
            assert!(Instant::now() < deadline, "{s} on {ip} never mapped: {e:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
    edges[1].kill();
    let args = edge_args(e_ips[1]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    edges[1] = Proc::livecdn(&e_ns[1], &args, "edge1-again");
    wait_ok(&format!("http://{}:8081/readyz", e_ips[1]), &edges[1]).await;
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
    let mut net = Net::new();
    let me = net.addr(1);
    let (redis_ip, o_ip, s_ip, e1_ip, e2_ip) = (
        net.addr(2),
        net.addr(11),
        net.addr(21),
        net.addr(31),
        net.addr(32),
    );
    let redis_ns = net.host("redis", 2);
    let o_ns = net.host("o1", 11);
    let s_ns = net.host("s1", 21);
    let (e1_ns, e2_ns) = (net.host("e1", 31), net.host("e2", 32));
    let (pub_ns, view_ns) = (net.host("pub", 50), net.host("view", 40));
    let redis_url = format!("redis://{redis_ip}:6379");
    let redis_bind = redis_ip.to_string();
    let _redis = Proc::spawn(
        &redis_ns,
        "redis-server",
        &[
            "--bind",
            &redis_bind,
            "--port",
            "6379",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        "bench-redis",
    );
    let store = livecdn_cluster::Store::open(&redis_url).unwrap();
    let deadline = Instant::now() + WAIT;
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "redis did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay = DelayRelay::tcp(sock(me, 0), sock(o_ip, 8080), DELAY).await;
    let no_push = support::TempConfig::new("bench-origin", "[push]\nenabled = false\n");
    let (rtmp, http, advertise) = (
        format!("{o_ip}:1935"),
        format!("{o_ip}:8080"),
        format!("http://{relay}"),
    );
    let origin = Proc::livecdn(
        &o_ns,
        &[
            "origin",
            "--config",
            no_push.arg(),
            "--rtmp-listen",
            &rtmp,
            "--http-listen",
            &http,
            "--redis",
            &redis_url,
            "--advertise",
            &advertise,
            "--ladder",
            "source",
        ],
        "bench-origin",
    );
    wait_ok(&format!("http://{o_ip}:8080/healthz"), &origin).await;
    Net::loss(&o_ns, me, LOSS_PERCENT);
    let credential = format!(
        "--cluster-credential={}",
        support::edge::cluster_credential(support::SECRET, "bench")
    );
    let (s_http, s_https) = (format!("{s_ip}:8091"), format!("{s_ip}:8453"));
    let shield = Proc::livecdn(
        &s_ns,
        &[
            "edge",
            "--role",
            "shield",
            "--http-listen",
            &s_http,
            "--https-listen",
            &s_https,
            "--no-h3",
            "--redis",
            &redis_url,
            &credential,
        ],
        "bench-shield",
    );
    wait_ok(&format!("http://{s_http}/readyz"), &shield).await;
    // Depth 1: an edge that knows the origin (through the link) and no shield.
    let (e1_http, e1_https) = (format!("{e1_ip}:8081"), format!("{e1_ip}:8443"));
    let edge1 = Proc::livecdn(
        &e1_ns,
        &[
            "edge",
            "--origin",
            &advertise,
            "--http-listen",
            &e1_http,
            "--https-listen",
            &e1_https,
            "--no-h3",
            &credential,
        ],
        "bench-edge1",
    );
    // Depth 2: an edge of the cluster, behind the announced shield.
    let (e2_http, e2_https) = (format!("{e2_ip}:8081"), format!("{e2_ip}:8443"));
    let edge2 = Proc::livecdn(
        &e2_ns,
        &[
            "edge",
            "--http-listen",
            &e2_http,
            "--https-listen",
            &e2_https,
            "--no-h3",
            "--redis",
            &redis_url,
            &credential,
        ],
        "bench-edge2",
    );
    wait_ok(&format!("http://{e1_http}/healthz"), &edge1).await;
    wait_ok(&format!("http://{e2_http}/readyz"), &edge2).await;
    let url = format!("rtmp://{rtmp}/live/{}", support::key("cam"));
    let file_arg = file.to_str().unwrap().to_string();
    let _ff = Proc::spawn(
        &pub_ns,
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            &file_arg,
            "-c",
            "copy",
            "-f",
            "flv",
            &url,
        ],
        "bench-ffmpeg",
    );
    wait_ok(&format!("http://{relay}/live/cam/master.m3u8"), &origin).await;
    wait_ok(&format!("http://{e2_http}/live/cam/master.m3u8"), &edge2).await;
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
        "\n{viewers} viewers per depth, {seconds} s, 20 ms each way + {LOSS_PERCENT} % loss between the origin and the next hop"
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
