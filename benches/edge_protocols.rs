//! The edge's cache-hit throughput by protocol: HTTP/3 against HTTP/2 (and
//! cleartext HTTP/1.1 for reference), the same hot object, the same number of
//! requests in flight.
//!
//! wrk speaks only HTTP/1.1 and Debian's curl has no HTTP/3, so the clients
//! here are the load-test harness's own (`livecdn_loadtest::client`: hyper
//! for h1/h2, quinn + h3 for h3). Processes, all on 127.0.0.1 with ephemeral
//! ports: `livecdn up --demo` (origin and its publisher, used only as the
//! upstream) and `livecdn edge` pinned to core 1 with `taskset` when it is
//! there, so the edge's CPU time per request can be read from `/proc`. The
//! client runs in this process, unpinned.
//!
//! Run: `cargo bench --bench edge_protocols` (about 1 minute;
//! `PROTOCOLS=h2,h3` runs only those). Prints, per
//! protocol and concurrency: requests/s, MB/s, the edge's CPU % of one core
//! and µs per request, and the client's latency p50/p99.

use livecdn_loadtest::client::{ClientFactory, ClientOptions, Protocol, Trust};
use livecdn_loadtest::player::Outcome;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Length of each measured run.
const RUN: Duration = Duration::from_secs(8);
/// Requests in flight, and the connections they share (h2/h3).
const SHAPES: [(usize, usize); 2] = [(64, 1), (64, 8)];

/// Kills the child processes on every exit path.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// Spawns `livecdn ARGS` (under `taskset -c CORE` if given and available)
/// and returns it with the first stdout line starting with `prefix`.
fn spawn(args: &[&str], prefix: &str, core: Option<&str>) -> (Child, String) {
    let bin = env!("CARGO_BIN_EXE_livecdn");
    let pinned = core.filter(|_| Command::new("taskset").arg("-V").output().is_ok());
    let mut cmd = match pinned {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.args(["-c", core, bin]);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(args)
        .env("LIVECDN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn livecdn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with(prefix))
        .expect("announce line");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, line)
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

/// utime + stime of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; fields restart after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    get(11) + get(12)
}

async fn run() {
    let (origin, line) = spawn(
        &[
            "up",
            "--demo",
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        "listening ",
        Some("0"),
    );
    let origin_http = field(&line, "http").to_owned();
    let upstream = format!("http://{origin_http}");
    let (edge, line) = spawn(
        &[
            "edge",
            "--origin",
            &upstream,
            "--http-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
        ],
        "edge ",
        Some("1"),
    );
    let edge_pid = edge.id();
    let http = field(&line, "edge_http").to_owned();
    let https = field(&line, "edge_https").to_owned();
    let h3 = field(&line, "edge_h3").to_owned();
    let _procs = Procs(vec![origin, edge]);

    let path = hot_segment(&format!("http://{http}")).await;
    let object = fetch_once(&format!("http://{http}{path}"), Protocol::H1).await;
    println!(
        "edge protocols: hot object {path} ({object} bytes), edge pinned to core 1, {} s per run\n",
        RUN.as_secs()
    );
    println!("| protocol | in flight | connections | req/s | MB/s | edge CPU % | edge µs/req | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::var("PROTOCOLS").unwrap_or_default();
    for (in_flight, connections) in SHAPES {
        for (protocol, base) in [
            (Protocol::H1, format!("http://{http}")),
            (Protocol::H2, format!("https://{https}")),
            (Protocol::H3, format!("https://{h3}")),
        ] {
            if !only.is_empty() && !only.split(',').any(|p| p == protocol.as_str()) {
                continue;
            }
            let url = format!("{base}{path}");
            // h1 has no multiplexing: one connection per request in flight.
            let conns = if protocol == Protocol::H1 {
                in_flight
            } else {
                connections
            };
            let r = measure(&url, protocol, in_flight, connections, edge_pid).await;
            println!(
                "| {} | {in_flight} | {conns} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} | {} |",
                protocol.as_str(),
                r.requests as f64 / r.seconds,
                r.bytes as f64 / r.seconds / 1e6,
                r.cpu_seconds / r.seconds * 100.0,
                r.cpu_seconds * 1e6 / r.requests.max(1) as f64,
                r.p50_ms,
                r.p99_ms,
                r.errors,
            );
            if let Some(e) = &r.first_error {
                println!("|  | first error: {e} |");
            }
        }
    }
}

/// The path of a complete segment of the demo's source rendition, fetched
/// once through the edge so the runs are cache hits.
async fn hot_segment(base: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{base}/live/demo/source/index.m3u8");
        let client = ClientFactory::new(&url, ClientOptions::default())
            .expect("client")
            .client(0);
        if let Outcome::Ok {
            status: 200, body, ..
        } = client.get(&url, true).await
        {
            let text = String::from_utf8_lossy(&body).into_owned();
            let segments: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#') && l.ends_with(".m4s"))
                .collect();
            if segments.len() >= 2 {
                return format!("/live/demo/source/{}", segments[segments.len() - 2]);
            }
        }
        assert!(Instant::now() < deadline, "no segments from the edge");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn fetch_once(url: &str, protocol: Protocol) -> usize {
    let options = ClientOptions {
        protocol,
        trust: Trust::Insecure,
        ..ClientOptions::default()
    };
    let client = ClientFactory::new(url, options).expect("client").client(0);
    match client.get(url, true).await {
        Outcome::Ok {
            status: 200, body, ..
        } => body.len(),
        other => panic!("{url}: {other:?}"),
    }
}

struct Measured {
    requests: u64,
    bytes: u64,
    errors: u64,
    seconds: f64,
    cpu_seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The first failure seen, for the report.
    first_error: Option<String>,
}

/// `in_flight` workers GET `url` back to back for [`RUN`] (after a short
/// warm-up that also opens the connections).
async fn measure(
    url: &str,
    protocol: Protocol,
    in_flight: usize,
    connections: usize,
    edge_pid: u32,
) -> Measured {
    let options = ClientOptions {
        protocol,
        trust: Trust::Insecure,
        connections,
        ..ClientOptions::default()
    };
    let factory = ClientFactory::new(url, options).expect("client");
    let warm_until = Instant::now() + Duration::from_secs(1);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..in_flight {
        let client = factory.client(i);
        let (url, stop, measuring) = (url.to_owned(), stop.clone(), measuring.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
            let (mut requests, mut bytes, mut errors) = (0u64, 0u64, 0u64);
            let mut first_error: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                let outcome = client.get(&url, false).await;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match outcome {
                    Outcome::Ok {
                        status: 200,
                        body,
                        total,
                        ..
                    } => {
                        requests += 1;
                        bytes += body.len() as u64;
                        let _ = hist.record(total.as_micros() as u64);
                    }
                    other => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(format!("{other:?}").chars().take(200).collect());
                        }
                    }
                }
            }
            (requests, bytes, errors, hist, first_error)
        }));
    }
    tokio::time::sleep_until(warm_until.into()).await;
    measuring.store(true, Ordering::Relaxed);
    let (t0, c0) = (Instant::now(), cpu_ticks(edge_pid));
    tokio::time::sleep(RUN).await;
    measuring.store(false, Ordering::Relaxed);
    let (seconds, c1) = (t0.elapsed().as_secs_f64(), cpu_ticks(edge_pid));
    stop.store(true, Ordering::Relaxed);
    let mut all = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let (mut requests, mut bytes, mut errors) = (0, 0, 0);
    let mut first_error = None;
    for w in workers {
        let (r, b, e, h, err) = w.await.expect("worker");
        first_error = first_error.or(err);
        requests += r;
        bytes += b;
        errors += e;
        let _ = all.add(h);
    }
    Measured {
        requests,
        bytes,
        errors,
        seconds,
        cpu_seconds: (c1 - c0) as f64 / 100.0,
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        first_error,
    }
}
