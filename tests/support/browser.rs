//! Headless Chromium through the player page's driver
//! (`player/test/play.mjs`), with the flags that reach an edge over HTTP/2
//! (pinned self-signed certificate) or HTTP/3 (QUIC forced on its port).

use std::path::Path;
use std::process::Command;

/// Runs the browser driver on `url` with extra chromium flags, for at most
/// `seconds`, until `min_frames` are decoded; returns its JSON report.
pub fn play(url: &str, flags: &[String], seconds: u32, min_frames: u32) -> serde_json::Value {
    play_args(url, flags, seconds, min_frames, &[])
}

/// As [`play`], with more driver options (`--until-ended`, `--hold S`).
pub fn play_args(
    url: &str,
    flags: &[String],
    seconds: u32,
    min_frames: u32,
    options: &[&str],
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("player/test/play.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(url).args([
        "--seconds",
        &seconds.to_string(),
        "--min-frames",
        &min_frames.to_string(),
    ]);
    for f in flags {
        cmd.arg(format!("--arg={f}"));
    }
    cmd.args(options);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// HTTP/2 over TLS to `https://localhost:PORT`, the certificate pinned.
pub fn h2_flags(spki: &str) -> Vec<String> {
    vec![
        format!("--ignore-certificate-errors-spki-list={spki}"),
        "--disable-quic".into(),
    ]
}

/// HTTP/3 to `https://localhost:PORT`, QUIC forced on that port.
pub fn h3_flags(port: u16, spki: &str) -> Vec<String> {
    vec![
        "--enable-quic".into(),
        format!("--origin-to-force-quic-on=localhost:{port}"),
        format!("--ignore-certificate-errors-spki-list={spki}"),
        // Chromium resolves `localhost` to ::1 first and, with QUIC
        // forced, does not fall back to 127.0.0.1 (where the edge
        // listens): the UDP write fails with ECONNREFUSED and the page
        // gets ERR_QUIC_HANDSHAKE_FAILED. TCP falls back, QUIC does not.
        "--host-resolver-rules=MAP localhost 127.0.0.1".into(),
    ]
}

/// The driver watching playback in the background (`--hold`), for a test
/// that acts once the player plays (kills an encoder, an origin).
pub struct Watched {
    child: std::process::Child,
    playing: std::sync::mpsc::Receiver<()>,
}

impl Watched {
    /// Starts the driver on `url` with `options` (which should hold).
    pub fn start(url: &str, options: &[&str]) -> Watched {
        use std::io::{BufRead, BufReader};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("player/test/play.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(url)
            .args(options)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, playing) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("PLAYING") {
                    let _ = tx.send(());
                }
            }
        });
        Watched { child, playing }
    }

    /// Waits (bounded) until the player plays; panics with the driver's
    /// report if it does not.
    pub fn wait_playing(mut self, limit: std::time::Duration, what: &str) -> Watched {
        if self.playing.recv_timeout(limit).is_ok() {
            return self;
        }
        let _ = self.child.kill();
        panic!("{what}: {}", self.report());
    }

    /// Waits for the driver to finish; its JSON report.
    pub fn report(self) -> serde_json::Value {
        let out = self.child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("driver output is not JSON ({e}): {stdout}"))
    }
}
