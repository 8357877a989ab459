//! Helpers for end-to-end tests: run the real `livecdn` binary on
//! `127.0.0.1:0`, publish with real ffmpeg, fetch over real HTTP.
//!
//! Every wait is bounded; every child process is killed on drop.

#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;
#[allow(dead_code, reason = "used by the chat tests only")]
pub mod chat;
#[allow(dead_code, reason = "used by the cluster tests only")]
pub mod cluster;
pub mod edge;
pub mod hook;
pub mod http;
#[allow(dead_code, reason = "used by the multi-host tests only")]
pub mod lab;
#[allow(dead_code, reason = "used by the multi-host tests only")]
pub mod netns;
#[allow(dead_code, reason = "used by the recording tests only")]
pub mod record;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the test must run (CI) rather than skip for a missing tool.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `tool` is on PATH; under CI a missing tool fails the test.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(!ci(), "{tool} is required under CI (.ci/run installs it)");
        eprintln!("skipping: {tool} not installed");
    }
    found
}

/// Whether headless Chromium, node and the player's npm packages are here
/// to drive the player page; under CI a missing piece fails the test.
pub fn browser_ready() -> bool {
    if !have("chromium") || !have("node") {
        return false;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("player/node_modules");
    let ok = root.join("hls.js/dist/hls.min.js").exists()
        && root.join("playwright-core").exists()
        && root.join("shaka-player").exists()
        && root.join("dashjs").exists();
    if !ok {
        assert!(
            !ci(),
            "player/node_modules missing under CI (.ci/run runs npm ci)"
        );
        eprintln!("skipping: run `npm ci --prefix player`");
    }
    ok
}

pub const SECRET: &str = "e2e-test-secret-0123456789";
/// The admin token every process a test starts is given; the HTTP helpers
/// send it on `/metrics` and `/api` requests, as an operator's tools would.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";

/// A running `livecdn origin` child.
pub struct Origin {
    child: Child,
    pub rtmp: SocketAddr,
    /// The RTMPS listener, when the test turned it on.
    pub rtmps: Option<SocketAddr>,
    pub http: SocketAddr,
    /// `http.admin_listen`'s address, when the test configured one.
    pub admin: Option<SocketAddr>,
    pub log: PathBuf,
}

impl Origin {
    pub fn start(extra: &[&str]) -> Origin {
        Self::start_with_env(extra, &[])
    }

    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Origin {
        let mut args = vec!["origin"];
        args.extend_from_slice(extra);
        Self::spawn(&args, env)
    }

    /// `livecdn up --demo` on ephemeral ports: origin plus the built-in
    /// publisher of stream `demo`.
    pub fn up_demo() -> Origin {
        Self::spawn(&["up", "--demo"], &[])
    }

    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Origin {
        let log = std::env::temp_dir().join(format!(
            "livecdn-e2e-{}-{}.log",
            std::process::id(),
            rand_u64()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_livecdn"));
        cmd.args(args)
            .args([
                "--rtmp-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .env("LIVECDN_SECRET", SECRET)
            .env("LIVECDN_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LIVECDN_LOG", "info,livecdn_origin=debug")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).unwrap();
        // Keep reading the rest of stdout so the child never writes into a
        // closed pipe; the lines go to the test's output.
        std::thread::spawn(move || {
            let mut rest = String::new();
            while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {
                print!("{rest}");
                rest.clear();
            }
        });
        // "listening rtmp=ADDR http=ADDR"
        let optional = |key: &str| -> Option<SocketAddr> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|a| a.parse().unwrap())
        };
        let addr = |key: &str| optional(key).unwrap_or_else(|| panic!("no {key} in {line:?}"));
        let (admin, rtmps) = (optional("admin="), optional("rtmps="));
        Origin {
            rtmp: addr("rtmp="),
            rtmps,
            http: addr("http="),
            admin,
            child,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{}", self.rtmp, key)
    }

    /// The origin's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id (to find the encoders it starts).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Process ids of the encoders (ffmpeg children) this process started.
    pub fn encoder_pids(&self) -> Vec<String> {
        let out = Command::new("pgrep")
            .args(["-P", &self.pid().to_string(), "ffmpeg"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Sends SIGTERM (what an orchestrator sends to stop a process).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits (bounded) for the process to exit; its status, if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process dies where it is, nothing flushed or closed.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- origin log ---\n{}", self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
}

/// Waits (bounded) until the origin's log contains `needle`; returns the log.
pub async fn wait_log(o: &Origin, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    for _ in 0..1000 {
        let log = o.log();
        if log.contains(needle) {
            return log;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("log has no {needle:?} within {limit:?}:\n{}", o.log());
}

/// The origin's `/api/streams` as JSON values.
pub async fn streams(o: &Origin) -> Vec<serde_json::Value> {
    let f = http::get(&o.url("/api/streams")).await;
    assert_eq!(f.status, 200, "{}", f.text());
    serde_json::from_slice::<Vec<serde_json::Value>>(&f.body)
        .unwrap_or_else(|e| panic!("{e}: {}", f.text()))
}

/// A signed stream key for `stream`, valid for an hour.
pub fn key(stream: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    livecdn_shared::auth::sign_key(SECRET.as_bytes(), stream, exp)
}

/// A real ffmpeg publisher: 640x360 30 fps H.264 (x264 `-preset medium`,
/// so with B-frames) plus AAC, paced with `-re`.
pub struct Ffmpeg {
    child: Child,
}

impl Ffmpeg {
    pub fn publish(url: &str, seconds: u32) -> Ffmpeg {
        Self::publish_args(url, seconds, &["-preset", "medium", "-g", "60"])
    }

    pub fn publish_args(url: &str, seconds: u32, video_args: &[&str]) -> Ffmpeg {
        Self::publish_sized(url, seconds, "640x360", video_args)
    }

    /// A publisher of `size` (e.g. `1280x720`) 30 fps test video.
    pub fn publish_sized(url: &str, seconds: u32, size: &str, video_args: &[&str]) -> Ffmpeg {
        Self::publish_lavfi(
            url,
            seconds,
            &format!("testsrc2=size={size}:rate=30"),
            video_args,
        )
    }

    /// A publisher whose video is the lavfi graph `source` (e.g. clips
    /// joined with `concat`); the audio is a tone for all `seconds`, also
    /// after the video ends.
    pub fn publish_lavfi(url: &str, seconds: u32, source: &str, video_args: &[&str]) -> Ffmpeg {
        let t = seconds.to_string();
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-re", "-f", "lavfi", "-i", source])
            .args([
                "-re",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
            ])
            .args(["-t", &t, "-c:v", "libx264", "-pix_fmt", "yuv420p"])
            .args(video_args)
            .args(["-c:a", "aac", "-b:a", "96k", "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Ffmpeg { child }
    }

    /// Waits (bounded) for ffmpeg to exit; returns its success and stderr.
    pub fn wait(mut self, limit: Duration) -> (bool, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status.success(), err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return (false, "timed out".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs ffprobe on a file; returns stdout.
pub fn ffprobe(args: &[&str], file: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The mean volume ffmpeg's `volumedetect` measures in `file`'s audio, in
/// dB (full scale 0; digital silence about -91).
pub fn mean_volume(file: &std::path::Path) -> f64 {
    let decoded = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(file)
        .args(["-af", "volumedetect", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&decoded.stderr).to_string();
    assert!(decoded.status.success(), "{log}");
    log.lines()
        .find_map(|l| l.split("mean_volume: ").nth(1))
        .and_then(|v| v.trim_end_matches(" dB").parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no volume in {log}"))
}

/// `livecdn up --demo` with its edge: the origin plus where the edge listens
/// (from the `edge edge_http=… edge_https=… spki=…` line on stdout).
pub struct Up {
    pub origin: Origin,
    pub edge_http: SocketAddr,
    pub edge_https: SocketAddr,
    /// base64 SHA-256 of the edge certificate's SPKI (for chromium's
    /// `--ignore-certificate-errors-spki-list`).
    pub spki: String,
}

impl Up {
    pub fn edge_url(&self, path: &str) -> String {
        format!("http://{}{}", self.edge_http, path)
    }
}

impl Origin {
    /// Like [`Origin::up_demo`], but also parses the edge line; the rest of
    /// stdout is drained by a thread so later prints never hit a closed pipe.
    pub fn up_demo_with_edge() -> Up {
        Self::up_demo_with_edge_args(&[])
    }

    /// [`Origin::up_demo_with_edge`] with more `livecdn up` arguments.
    pub fn up_demo_with_edge_args(extra: &[&str]) -> Up {
        let log = std::env::temp_dir().join(format!(
            "livecdn-e2e-{}-{}.log",
            std::process::id(),
            rand_u64()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_livecdn"))
            .args(["up", "--demo"])
            .args([
                "--rtmp-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("LIVECDN_SECRET", SECRET)
            .env("LIVECDN_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LIVECDN_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = None;
        let mut edge = None;
        // Bounded: the two lines come first; give up after 64 lines or EOF.
        for _ in 0..64 {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if line.starts_with("listening ") {
                first = Some(line);
            } else if line.starts_with("edge ") {
                edge = Some(line);
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        let word = |line: &Option<String>, key: &str| -> Option<String> {
            line.as_deref()?
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_string)
        };
        let parsed: Option<(SocketAddr, SocketAddr, SocketAddr, SocketAddr, String)> = (|| {
            Some((
                word(&first, "rtmp=")?.parse().ok()?,
                word(&first, "http=")?.parse().ok()?,
                word(&edge, "edge_http=")?.parse().ok()?,
                word(&edge, "edge_https=")?.parse().ok()?,
                word(&edge, "spki=")?,
            ))
        })();
        let Some((rtmp, http, edge_http, edge_https, spki)) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "livecdn up --demo did not print its addresses: {first:?} {edge:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Up {
            origin: Origin {
                child,
                rtmp,
                rtmps: word(&first, "rtmps=").and_then(|a| a.parse().ok()),
                http,
                admin: None,
                log,
            },
            edge_http,
            edge_https,
            spki,
        }
    }
}

/// A config file in the temp dir, removed on drop.
#[allow(dead_code, reason = "not every test binary writes a config")]
pub struct TempConfig(pub PathBuf);

#[allow(dead_code, reason = "not every test binary writes a config")]
impl TempConfig {
    pub fn new(name: &str, text: &str) -> TempConfig {
        let path = std::env::temp_dir().join(format!(
            "livecdn-e2e-{}-{}-{name}.toml",
            std::process::id(),
            rand_u64()
        ));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }

    /// The path, as a command-line argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// TCP from `source` (an address of the loopback net, such as 127.0.0.2)
/// to `to`, bounded.
#[allow(dead_code, reason = "not every test binary connects from elsewhere")]
pub async fn connect_from(
    source: [u8; 4],
    to: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// Reads (and discards) until the server closes the connection (EOF or
/// reset); how long that took, or `None` if it was still open at `limit`.
#[allow(dead_code, reason = "not every test binary waits for a close")]
pub async fn wait_closed(s: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}
