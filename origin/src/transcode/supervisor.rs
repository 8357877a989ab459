//! Runs, watches and restarts one stream's encoder.
//!
//! The supervisor waits until the source is measured (size, bitrate, frame
//! rate from its first segment), plans the ladder, and starts ffmpeg with
//! the source as FLV on stdin, a progress channel on fd 3 and each rung as
//! FLV on its own pipe from fd 4 on. Any end of the encoder that the stream
//! did not ask for (exit, a closed or garbled output, no output for a while)
//! marks the rungs down (they list gaps), and the encoder is started again
//! after a backoff that doubles up to the configured maximum. A publisher
//! that comes back with a different video configuration gets a new plan.

use super::plan::{ffmpeg_args, plan, PlannedRung, SourceInfo};
use super::status::{RungPlan, TranscodeState};
use super::Settings;
use crate::registry::StreamHub;
use bytes::Bytes;
use command_fds::{CommandFdExt, FdMapping};
use livecdn_shared::avc;
use livecdn_shared::flv::{
    self, avc_frame_header, avc_sequence_header_body, FlvStreamReader, TagType, VideoTag,
};
use livecdn_shared::media::{Frame, VideoConfig};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

/// Source frames the encoder may have queued: about four seconds at 30 fps.
/// Past it frames are dropped (and the encoder resumes at a keyframe).
const FEED_QUEUE: usize = 120;
/// Largest FLV tag accepted from the encoder.
const MAX_TAG: usize = 8 << 20;
/// Progress channel descriptor in the child; rungs follow it.
const PROGRESS_FD: i32 = 3;
const FIRST_RUNG_FD: i32 = 4;
/// An encoder that ran this long before failing is restarted at once (a
/// crash, not a crash loop); quicker failures wait a doubling backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(5);

/// Why one run of the encoder ended.
#[derive(Debug)]
enum RunEnd {
    /// The stream ended: stop for good.
    StreamEnded,
    /// The publisher's video configuration changed: plan again.
    SourceChanged,
    /// The encoder failed: restart after a backoff.
    Failed(String),
}

/// Transcodes `hub`'s stream until it ends. Spawned once per stream by the
/// ingest session when the ladder is on.
pub async fn run(hub: Arc<StreamHub>, settings: Arc<Settings>) {
    let stream = hub.name().to_string();
    let span = tracing::info_span!("transcode", stream = %stream);
    supervise(hub, settings).instrument(span).await;
}

async fn supervise(hub: Arc<StreamHub>, settings: Arc<Settings>) {
    hub.with_transcode_status(|s| {
        s.state = TranscodeState::Waiting;
        s.encoder = Some(settings.encoder.codec.clone());
    });
    let mut backoff = settings.backoff;
    'plan: loop {
        // Sizes decide most skips at once; the bitrate needs a segment.
        let Some((_, by_size)) = wait_for_source(&hub, false).await else {
            break;
        };
        let info = if plan(&settings.rungs, &by_size).0.is_empty() {
            Some(by_size)
        } else {
            wait_for_source(&hub, true).await.map(|(_, info)| info)
        };
        let Some(info) = info else {
            break;
        };
        let Some(config) = hub.read(|p| p.video_config().cloned()) else {
            continue;
        };
        let (rungs, skipped) = plan(&settings.rungs, &info);
        for (name, why) in &skipped {
            tracing::info!(rendition = %name, reason = %why, "rung skipped");
        }
        hub.with_transcode_status(|s| {
            s.rungs = rungs
                .iter()
                .map(|r| RungPlan {
                    name: r.spec.name.clone(),
                    width: r.width,
                    height: r.height,
                    bitrate: r.spec.bitrate,
                })
                .collect();
            s.skipped = skipped
                .iter()
                .map(|(n, why)| (n.clone(), why.to_string()))
                .collect();
        });
        if rungs.is_empty() {
            hub.with_transcode_status(|s| {
                s.state = TranscodeState::Off;
                s.reason = Some("no configured rung is below the source".into());
            });
            wait_for_change(&hub, &config).await;
            if hub.read(|p| p.is_ended()) {
                break;
            }
            continue;
        }
        loop {
            let started = Instant::now();
            let end = run_encoder(&hub, &settings, &config, &rungs).await;
            hub.set_feed(None);
            for r in &rungs {
                hub.rung_down(&r.spec.name);
            }
            match end {
                RunEnd::StreamEnded => break 'plan,
                RunEnd::SourceChanged => {
                    tracing::info!("source video changed; planning the ladder again");
                    continue 'plan;
                }
                RunEnd::Failed(reason) => {
                    let delay = if started.elapsed() >= HEALTHY_RUN {
                        backoff = settings.backoff;
                        Duration::ZERO
                    } else {
                        let d = backoff;
                        backoff = (backoff * 2).min(settings.backoff_max);
                        d
                    };
                    tracing::warn!(%reason, retry_in = ?delay, "encoder stopped; restarting");
                    hub.with_transcode_status(|s| {
                        s.state = TranscodeState::Restarting;
                        s.reason = Some(reason);
                        s.restarts += 1;
                        s.speed = None;
                    });
                    tokio::time::sleep(delay).await;
                    if hub.read(|p| p.is_ended()) {
                        break 'plan;
                    }
                }
            }
        }
    }
    hub.with_transcode_status(|s| {
        s.state = TranscodeState::Off;
        s.reason = Some("stream ended".into());
    });
    // A publisher that brings the stream back gets a new transcoder.
    hub.release_transcoder();
}

/// The source's video configuration and measurements (the bitrate only
/// with `bitrate`, once a part or segment is measured); None if the stream
/// ends first.
async fn wait_for_source(hub: &StreamHub, bitrate: bool) -> Option<(VideoConfig, SourceInfo)> {
    let mut version = hub.subscribe();
    loop {
        let ready = hub.read(|p| {
            if p.is_ended() {
                return Err(());
            }
            let Some(vc) = p.video_config() else {
                return Ok(None);
            };
            let Some(track) = p.track(crate::packager::SOURCE) else {
                return Ok(None);
            };
            // A whole segment: the first parts alone overstate the bitrate
            // (they hold the keyframe).
            let measured = track.last_complete_msn().and_then(|_| track.bandwidth());
            let avg = match measured {
                Some((_, avg)) => Some(avg),
                None if bitrate => return Ok(None),
                None => None,
            };
            Ok(Some((
                vc.clone(),
                SourceInfo {
                    width: vc.width,
                    height: vc.height,
                    bitrate: avg.filter(|_| bitrate),
                    fps: vc.frame_rate.or_else(|| track.measured_frame_rate()),
                },
            )))
        });
        match ready {
            Ok(Some(found)) => return Some(found),
            Err(()) => return None,
            Ok(None) => {}
        }
        // Changes wake us; the timeout notices an idle stream ending.
        let _ = tokio::time::timeout(Duration::from_secs(1), version.changed()).await;
    }
}

/// Waits until the source's video configuration differs from `config` or
/// the stream ends.
async fn wait_for_change(hub: &StreamHub, config: &VideoConfig) {
    let mut version = hub.subscribe();
    loop {
        let changed = hub.read(|p| p.is_ended() || p.video_config() != Some(config));
        if changed {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), version.changed()).await;
    }
}

/// One run of ffmpeg, until it fails or the stream no longer needs it.
async fn run_encoder(
    hub: &Arc<StreamHub>,
    settings: &Settings,
    config: &VideoConfig,
    rungs: &[PlannedRung],
) -> RunEnd {
    let (mut child, progress, outputs) = match spawn(settings, rungs) {
        Ok(spawned) => spawned,
        Err(e) => {
            return RunEnd::Failed(format!(
                "cannot start {}: {e}",
                settings.encoder.ffmpeg.display()
            ))
        }
    };
    let (tx, rx) = mpsc::channel(FEED_QUEUE);
    let epoch = Instant::now();
    // Milliseconds since `epoch` of the latest frame from any rung, per rung.
    let last_out: Arc<Vec<AtomicU64>> = Arc::new(rungs.iter().map(|_| AtomicU64::new(0)).collect());
    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    // Spawned tasks log with the stream's span, like the supervisor.
    let span = tracing::Span::current();
    if let Some(stdin) = child.stdin.take() {
        tasks.spawn(feed(stdin, rx, config.avcc.clone(), hub.clone()).instrument(span.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tasks.spawn(log_stderr(stderr).instrument(span.clone()));
    }
    tasks.spawn(read_progress(progress, hub.clone()).instrument(span.clone()));
    for (i, (out, rung)) in outputs.into_iter().zip(rungs).enumerate() {
        let reader = read_rung(
            out,
            rung.spec.name.clone(),
            hub.clone(),
            last_out.clone(),
            i,
            epoch,
        );
        let rung_span = tracing::info_span!(parent: &span, "rung", rendition = %rung.spec.name);
        tasks.spawn(reader.instrument(rung_span));
    }
    hub.set_feed(Some(tx.clone()));
    hub.with_transcode_status(|s| {
        s.state = TranscodeState::Running;
        s.reason = None;
    });
    tracing::info!(rungs = rungs.len(), pid = child.id(), "encoder started");

    // No output for this long (after a grace period for the first frame)
    // means the encoder is stuck.
    let segment = hub.read(|p| p.config().segment_target);
    let stall_after = (segment * 2).max(Duration::from_secs(3));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let end = loop {
        tokio::select! {
            status = child.wait() => {
                break RunEnd::Failed(match status {
                    Ok(s) => format!("encoder exited: {s}"),
                    Err(e) => format!("encoder wait failed: {e}"),
                });
            }
            done = tasks.join_next(), if !tasks.is_empty() => {
                match done {
                    Some(Ok(Err(reason))) => break RunEnd::Failed(reason),
                    Some(Err(e)) => break RunEnd::Failed(format!("encoder I/O task failed: {e}")),
                    // The stderr or progress reader ended normally: the
                    // process is on its way out; `wait` reports it.
                    Some(Ok(Ok(()))) | None => {}
                }
            }
            _ = tick.tick() => {
                let (ended, changed) = hub.read(|p| (p.is_ended(), p.video_config() != Some(config)));
                if ended {
                    break RunEnd::StreamEnded;
                }
                if changed {
                    break RunEnd::SourceChanged;
                }
                hub.with_transcode_status(|s| s.queue_depth = FEED_QUEUE - tx.capacity());
                let now = epoch.elapsed().as_millis() as u64;
                let publishing = hub.has_publisher();
                let stalled = last_out.iter().any(|t| {
                    let last = t.load(Ordering::Relaxed);
                    now.saturating_sub(last) > stall_after.as_millis() as u64
                });
                if publishing && stalled && epoch.elapsed() > stall_after {
                    break RunEnd::Failed(format!("no output for {stall_after:?}"));
                }
            }
        }
    };
    drop(tx);
    hub.set_feed(None);
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    tasks.abort_all();
    end
}

type Spawned = (Child, pipe::Receiver, Vec<pipe::Receiver>);

/// Starts ffmpeg with the progress pipe on fd 3 and one pipe per rung.
fn spawn(settings: &Settings, rungs: &[PlannedRung]) -> std::io::Result<Spawned> {
    let args = ffmpeg_args(&settings.encoder, rungs, PROGRESS_FD, FIRST_RUNG_FD);
    let mut mappings = Vec::with_capacity(rungs.len() + 1);
    let (progress_tx, progress_rx) = pipe::pipe()?;
    mappings.push(FdMapping {
        parent_fd: progress_tx.into_blocking_fd()?,
        child_fd: PROGRESS_FD,
    });
    let mut outputs = Vec::with_capacity(rungs.len());
    for i in 0..rungs.len() {
        let (w, r) = pipe::pipe()?;
        mappings.push(FdMapping {
            parent_fd: w.into_blocking_fd()?,
            child_fd: FIRST_RUNG_FD + i as i32,
        });
        outputs.push(r);
    }
    let mut cmd = Command::new(&settings.encoder.ffmpeg);
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.fd_mappings(mappings)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tracing::debug!(args = %args.join(" "), "starting encoder");
    let child = cmd.spawn()?;
    // The write ends now belong to the child alone (dropping the command
    // closes the parent's copies), so a dead encoder reads as end of file.
    drop(cmd);
    Ok((child, progress_rx, outputs))
}

/// Writes the source to the encoder as FLV: the header and sequence header
/// once, then every queued frame, starting at a keyframe. After frames were
/// dropped (the queue was full) it waits for the next keyframe again, so the
/// decoder never sees a frame whose references it missed.
async fn feed(
    mut stdin: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Frame>,
    avcc: Bytes,
    hub: Arc<StreamHub>,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("writing to the encoder: {e}");
    let seq = avc_sequence_header_body(&avcc);
    let mut head = flv::write_header(false, true).to_vec();
    head.extend_from_slice(&flv::write_tag(TagType::Video, 0, &seq).map_err(|e| e.to_string())?);
    stdin.write_all(&head).await.map_err(io)?;
    let mut started = false;
    let mut dropped = hub.feed_dropped.load(Ordering::Relaxed);
    while let Some(frame) = rx.recv().await {
        let now_dropped = hub.feed_dropped.load(Ordering::Relaxed);
        if now_dropped != dropped {
            dropped = now_dropped;
            started = false;
        }
        if !started && !frame.keyframe {
            continue;
        }
        started = true;
        let body_len = 5 + frame.data.len();
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(
            &flv::tag_header(TagType::Video, frame.dts_ms, body_len).map_err(|e| e.to_string())?,
        );
        header.extend_from_slice(&avc_frame_header(&frame));
        stdin.write_all(&header).await.map_err(io)?;
        stdin.write_all(&frame.data).await.map_err(io)?;
        stdin
            .write_all(&((11 + body_len) as u32).to_be_bytes())
            .await
            .map_err(io)?;
    }
    Ok(())
}

/// Reads one rung's FLV and hands its configuration and frames to the hub.
async fn read_rung(
    mut out: impl AsyncRead + Unpin,
    name: String,
    hub: Arc<StreamHub>,
    last_out: Arc<Vec<AtomicU64>>,
    index: usize,
    epoch: Instant,
) -> Result<(), String> {
    let mut reader = FlvStreamReader::new(MAX_TAG);
    loop {
        let n = out
            .read_buf(reader.buffer_mut())
            .await
            .map_err(|e| format!("reading rung {name}: {e}"))?;
        if n == 0 {
            return Err(format!("rung {name}: encoder closed its output"));
        }
        while let Some(tag) = reader
            .next_tag()
            .map_err(|e| format!("rung {name}: bad FLV from the encoder: {e}"))?
        {
            if tag.tag_type != TagType::Video {
                continue;
            }
            let parsed = flv::parse_video_tag(tag.body)
                .map_err(|e| format!("rung {name}: bad video tag from the encoder: {e}"))?;
            match parsed {
                VideoTag::AvcSequenceHeader(record) => {
                    let config = avc::video_config(record)
                        .map_err(|e| format!("rung {name}: bad decoder configuration: {e}"))?;
                    hub.rung_config(&name, config);
                }
                other => {
                    if let Some(frame) = flv::video_frame(tag.timestamp_ms, other) {
                        if let Some(t) = last_out.get(index) {
                            t.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                        }
                        hub.rung_frame(&name, frame);
                    }
                }
            }
        }
    }
}

/// ffmpeg's `-progress` key=value lines: the encoding speed.
async fn read_progress(progress: pipe::Receiver, hub: Arc<StreamHub>) -> Result<(), String> {
    let mut lines = BufReader::new(progress).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(v) = line.strip_prefix("speed=") {
            let speed = v.trim().trim_end_matches('x').parse::<f64>().ok();
            hub.with_transcode_status(|s| s.speed = speed.filter(|x| x.is_finite()));
        }
    }
    Ok(())
}

/// The encoder's own messages go to the log (with the stream's span).
pub(crate) async fn log_stderr(stderr: impl AsyncRead + Unpin) -> Result<(), String> {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(500).collect();
        if !line.trim().is_empty() {
            tracing::warn!(target: "livecdn::ffmpeg", "{line}");
        }
    }
    Ok(())
}
