//! Helpers for end-to-end tests: run the real `livecdn` binary on
//! `127.0.0.1:0`, publish with real ffmpeg, fetch over real HTTP.
//!
//! Every wait is bounded; every child process is killed on drop.

#![allow(dead_code, clippy::unwrap_used)]

pub mod http;

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

pub const SECRET: &str = "e2e-test-secret-0123456789";

/// A running `livecdn origin` child.
pub struct Origin {
    child: Child,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
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
            .env("LIVECDN_LOG", "info,livecdn_origin=debug")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // "listening rtmp=ADDR http=ADDR"
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
                .parse()
                .unwrap()
        };
        Origin {
            rtmp: addr("rtmp="),
            http: addr("http="),
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

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish()
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
        let t = seconds.to_string();
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
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
