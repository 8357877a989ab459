//! The access log writer thread: formats entries as JSON lines and writes
//! them to stdout or a file rotated by size. Blocking I/O lives here and
//! only here, on a thread of its own, so no request ever waits for it.

use super::{Counters, Entry, Msg};
use crate::config::{AccessLogConfig, ACCESS_LOG_STDOUT};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the writer looks at the queue: lines reach the file at most
/// this late.
const POLL: Duration = Duration::from_millis(20);

/// How often a failing destination is retried (lines meanwhile are
/// dropped and counted).
const RETRY: Duration = Duration::from_secs(1);

/// The directory a file destination lives in (`None` for stdout).
pub(super) fn file_dir(path: &Path) -> Option<&Path> {
    if path == Path::new(ACCESS_LOG_STDOUT) {
        return None;
    }
    Some(match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    })
}

enum Out {
    Stdout(std::io::Stdout),
    File {
        file: BufWriter<File>,
        /// Bytes in the file, for rotation.
        size: u64,
        /// Pipes and devices are not rotated.
        regular: bool,
    },
}

pub(super) struct Writer {
    path: Option<PathBuf>,
    max_bytes: u64,
    keep: u32,
    counters: Arc<Counters>,
    out: Option<Out>,
    failed_at: Option<Instant>,
}

impl Writer {
    pub(super) fn new(config: &AccessLogConfig, counters: Arc<Counters>) -> Self {
        Self {
            path: file_dir(&config.path).map(|_| config.path.clone()),
            max_bytes: config.max_bytes,
            keep: config.keep,
            counters,
            out: None,
            failed_at: None,
        }
    }

    /// Until every sender is gone: every [`POLL`], write everything queued,
    /// then flush. The writer never blocks in `recv`, so a request's
    /// `try_send` finds no sleeping receiver to wake: no futex call and no
    /// context switch per line, whatever the request rate.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        let mut line = Vec::with_capacity(1024);
        loop {
            loop {
                match rx.try_recv() {
                    Ok(Msg::Line(entry)) => self.write(&entry, &mut line),
                    Ok(Msg::Flush(done)) => {
                        self.flush();
                        let _ = done.send(());
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            }
            self.flush();
            std::thread::sleep(POLL);
        }
    }

    fn write(&mut self, entry: &Entry, line: &mut Vec<u8>) {
        line.clear();
        if serde_json::to_writer(&mut *line, entry).is_err() {
            self.drop_line();
            return;
        }
        line.push(b'\n');
        let Some(out) = self.destination() else {
            self.drop_line();
            return;
        };
        let written = match out {
            Out::Stdout(s) => s.write_all(line),
            Out::File { file, size, .. } => {
                *size += line.len() as u64;
                file.write_all(line)
            }
        };
        match written {
            Ok(()) => {
                self.counters.lines.fetch_add(1, Ordering::Relaxed);
                self.rotate_if_full();
            }
            Err(e) => self.fail(&e),
        }
    }

    fn drop_line(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&mut self, e: &std::io::Error) {
        tracing::warn!(error = %e, path = ?self.path, "access log write failed; reopening");
        self.drop_line();
        self.out = None;
        self.failed_at = Some(Instant::now());
    }

    /// The open destination, opening it first if needed (a FIFO blocks
    /// here until a reader comes: only this thread waits).
    fn destination(&mut self) -> Option<&mut Out> {
        if self.out.is_none() {
            if self.failed_at.is_some_and(|t| t.elapsed() < RETRY) {
                return None;
            }
            self.out = match &self.path {
                None => Some(Out::Stdout(std::io::stdout())),
                Some(path) => match open(path) {
                    Ok(out) => Some(out),
                    Err(e) => {
                        tracing::warn!(error = %e, path = %path.display(), "access log cannot be opened");
                        self.failed_at = Some(Instant::now());
                        None
                    }
                },
            };
        }
        self.out.as_mut()
    }

    fn flush(&mut self) {
        let flushed = match &mut self.out {
            Some(Out::Stdout(s)) => s.flush(),
            Some(Out::File { file, .. }) => file.flush(),
            None => Ok(()),
        };
        if let Err(e) = flushed {
            self.fail(&e);
        }
    }

    /// `path` -> `path.1` -> ... -> `path.keep` (the oldest removed), then
    /// a fresh `path`. `keep = 0` starts the file over.
    fn rotate_if_full(&mut self) {
        // Checked on every line: decide before touching the path.
        let full = matches!(&self.out, Some(Out::File { size, regular: true, .. })
            if self.max_bytes > 0 && *size >= self.max_bytes);
        let Some(path) = self.path.clone().filter(|_| full) else {
            return;
        };
        self.flush();
        self.out = None;
        let numbered = |n: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let rotated = if self.keep == 0 {
            std::fs::remove_file(&path)
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&path, numbered(1))
        };
        if let Err(e) = rotated {
            tracing::warn!(error = %e, path = %path.display(), "access log rotation failed");
        }
    }
}

fn open(path: &Path) -> std::io::Result<Out> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    Ok(Out::File {
        size: meta.len(),
        regular: meta.is_file(),
        file: BufWriter::with_capacity(64 * 1024, file),
    })
}

/// `2026-12-05T17:02:28.123Z`.
pub(super) fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// Milliseconds with microsecond precision.
pub(super) fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_micros() as f64) / 1000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::super::AccessLog;
    use super::*;

    fn request(path: &str) -> http::Request<()> {
        http::Request::get(format!("{path}?token=secret&CMCD=bl%3D900%2Csid%3D%22s%22"))
            .header("user-agent", "test/1")
            .body(())
            .unwrap()
    }

    fn log_one(log: &Arc<AccessLog>, path: &str, body: &'static [u8]) {
        use http_body::Body as _;
        let start = Instant::now();
        let pending = log.request(&request(path), [10, 0, 0, 9].into(), "h2", start);
        let resp = http::Response::builder()
            .status(200)
            .header("x-cache", "HIT")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(body)))
            .unwrap();
        let mut logged = pending.respond(resp, Some("demo")).into_body();
        let waker = futures_noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        while let std::task::Poll::Ready(Some(_)) =
            std::pin::Pin::new(&mut logged).poll_frame(&mut cx)
        {}
    }

    fn futures_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "livecdn-access-{}-{name}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_line_has_every_field_and_rotation_keeps_the_configured_files() {
        let dir = temp("rotate");
        let path = dir.join("access.log");
        let config = AccessLogConfig {
            enabled: true,
            path: path.clone(),
            max_bytes: 4096,
            keep: 2,
            queue: 1024,
        };
        let log = AccessLog::open(&config).unwrap().unwrap();
        log_one(&log, "/live/demo/source/seg1.0.m4s", b"12345");
        assert!(log.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["client"], "10.0.0.9");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["path"], "/live/demo/source/seg1.0.m4s");
        assert_eq!(line["query"], "token=-");
        assert_eq!(line["stream"], "demo");
        assert_eq!(line["status"], 200);
        assert_eq!(line["bytes"], 5);
        assert_eq!(line["cache"], "HIT");
        assert_eq!(line["protocol"], "h2");
        assert_eq!(line["complete"], true);
        assert_eq!(line["user_agent"], "test/1");
        assert_eq!(line["cmcd"]["bl"], 900);
        assert_eq!(line["cmcd"]["sid"], "s");
        assert!(line["ttfb_ms"].as_f64().unwrap() <= line["duration_ms"].as_f64().unwrap());
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
        // About 400 bytes a line: 60 lines fill 4 KiB several times over.
        for _ in 0..60 {
            log_one(&log, "/live/demo/source/seg2.0.m4s", b"x");
        }
        assert!(log.flush(Duration::from_secs(5)));
        assert!(path.with_extension("log.1").exists());
        assert!(path.with_extension("log.2").exists());
        assert!(!path.with_extension("log.3").exists());
        for p in [path.clone(), path.with_extension("log.1")] {
            let size = std::fs::metadata(&p).unwrap().len();
            assert!(size < 4096 + 1024, "{} is {size} bytes", p.display());
        }
        assert_eq!(log.lines(), 61);
        assert_eq!(log.dropped(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_directory_is_an_error_at_open() {
        let config = AccessLogConfig {
            enabled: true,
            path: PathBuf::from("/nonexistent-livecdn-dir/access.log"),
            ..AccessLogConfig::default()
        };
        assert!(matches!(
            AccessLog::open(&config),
            Err(super::super::AccessLogError::NoDirectory(_))
        ));
        assert!(AccessLog::open(&AccessLogConfig::default())
            .unwrap()
            .is_none());
    }
}
