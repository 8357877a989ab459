//! One supervised ffmpeg process that turns a WHIP publisher's media into
//! what HLS needs (Opus into AAC, VP8 into H.264): input written to its
//! stdin from a bounded queue, FLV read back from its stdout with the
//! demuxer the RTMP ingest uses, and the process started again after a
//! backoff that doubles up to 30 s when it dies. What comes while it is
//! down is lost, never queued without bound; the publish ending (the
//! queue's sender dropped) closes stdin so ffmpeg flushes and exits.
//!
//! A [`Job`] says what the process is: its arguments, the bytes each item
//! becomes on stdin, and where each FLV tag goes. It is called from the
//! writer and the reader under one short lock, never across an await.

use livecdn_shared::flv::{FlvStreamReader, FlvTag};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Largest FLV tag accepted from the encoder.
const MAX_TAG: usize = 8 << 20;
const BACKOFF: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What one kind of process does with the publisher's media.
pub trait Job: Send + 'static {
    type Item: Send + 'static;
    /// The name said in logs ("audio", "video").
    fn name(&self) -> &'static str;
    /// ffmpeg's input and codec arguments (reading stdin); the runner
    /// adds the output, FLV on stdout, written a packet at a time.
    fn args(&self) -> Vec<String>;
    /// A new process starts: forget the last one's state; the bytes it
    /// reads first (a file header), if any.
    fn start(&mut self) -> Vec<u8>;
    /// The bytes `item` becomes on stdin.
    fn input(&mut self, item: Self::Item) -> Vec<u8>;
    /// One tag of the output; an error ends this run of the process.
    fn output(&mut self, tag: FlvTag) -> Result<(), String>;
}

/// Runs `job` on `ffmpeg` until `rx`'s sender is dropped.
pub async fn supervise<J: Job>(ffmpeg: PathBuf, mut rx: mpsc::Receiver<J::Item>, job: J) {
    let job = Mutex::new(job);
    let name = lock(&job).name();
    let mut backoff = BACKOFF;
    loop {
        let started = Instant::now();
        match run(&ffmpeg, &mut rx, &job).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "whip {name} encoder failed; restarting"),
        }
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF;
        }
        // Media that comes while the encoder is down is lost; the publish
        // may end meanwhile.
        let pause = tokio::time::sleep(backoff);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                item = rx.recv() => if item.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn lock<J>(job: &Mutex<J>) -> std::sync::MutexGuard<'_, J> {
    job.lock().unwrap_or_else(|e| e.into_inner())
}

/// One run of the encoder: until the publish ends (`Ok`) or it fails.
async fn run<J: Job>(
    ffmpeg: &PathBuf,
    rx: &mut mpsc::Receiver<J::Item>,
    job: &Mutex<J>,
) -> Result<(), String> {
    let args = lock(job).args();
    let mut child = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostats"])
        .args(args)
        .args(["-flush_packets", "1", "-f", "flv", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", ffmpeg.display()))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("the encoder's pipes are missing".into());
    };
    tokio::spawn(tracing::Instrument::in_current_span(
        crate::transcode::log_stderr(stderr),
    ));
    let head = lock(job).start();
    let write = async {
        if !head.is_empty() {
            stdin
                .write_all(&head)
                .await
                .map_err(|e| format!("writing to the encoder: {e}"))?;
        }
        while let Some(item) = rx.recv().await {
            let bytes = lock(job).input(item);
            stdin
                .write_all(&bytes)
                .await
                .map_err(|e| format!("writing to the encoder: {e}"))?;
        }
        // The publish ended: closing stdin lets the encoder flush and exit.
        drop(stdin);
        Ok(())
    };
    let (wrote, read) = tokio::join!(write, read(stdout, job));
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    wrote.and(read)
}

/// Reads the encoder's FLV until it closes it.
async fn read<J: Job>(mut out: impl AsyncRead + Unpin, job: &Mutex<J>) -> Result<(), String> {
    let mut reader = FlvStreamReader::new(MAX_TAG);
    loop {
        let n = out
            .read_buf(reader.buffer_mut())
            .await
            .map_err(|e| format!("reading the encoder: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        while let Some(tag) = reader
            .next_tag()
            .map_err(|e| format!("bad FLV from the encoder: {e}"))?
        {
            lock(job).output(tag)?;
        }
    }
}
