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
