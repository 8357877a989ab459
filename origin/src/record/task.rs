//! One stream's recording task: follows the live window and writes what
//! is new, in order, each media file before the journal line that lists
//! it. One task per recorded stream, started with its first publish.

use super::follow::{Follower, Write};
use super::index::{Recording, State};
use super::journal::{Line, Paths};
use super::{now_ms, Key, Recorder, RETRY};
use crate::registry::StreamHub;
use bytes::Bytes;
use livecdn_disk::DiskError;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tracing::Instrument;

/// The recording being written.
struct Active {
    key: Key,
    paths: Paths,
    /// Started after a failed one: if it fails before its first segment it
    /// is removed, so a disk that stays full leaves one error, not one per
    /// retry.
    retry: bool,
}

/// Records `hub` until its stream ends.
pub async fn run(rec: Arc<Recorder>, hub: Arc<StreamHub>) {
    let stream = hub.name().to_string();
    let span = tracing::info_span!("record", %stream);
    async move {
        let mut version = hub.subscribe();
        let mut follower = Follower::new(rec.renditions());
        let mut active: Option<Active> = None;
        let mut retry = false;
        'follow: loop {
            let writes = hub.read(|p| follower.poll(p));
            for w in writes {
                let ended = matches!(w, Write::End);
                if let Err(e) = apply(&rec, &stream, &mut active, retry, w).await {
                    fail(&rec, active.take(), &e).await;
                    follower.restart();
                    retry = true;
                    tokio::time::sleep(RETRY).await;
                    continue 'follow;
                }
                if ended {
                    break 'follow;
                }
            }
            // The origin is shutting down: what was written is the
            // recording (it ends here rather than being recovered later).
            if hub.is_draining() {
                break;
            }
            if version.changed().await.is_err() {
                break;
            }
        }
        if let Some(a) = active.take() {
            // Shutdown, or the stream went away without an end: close what
            // was written.
            finish(&rec, a, Line::End { at_ms: now_ms() }).await;
        }
        hub.release_recorder();
    }
    .instrument(span)
    .await
}

async fn apply(
    rec: &Recorder,
    stream: &str,
    active: &mut Option<Active>,
    retry: bool,
    w: Write,
) -> Result<(), DiskError> {
    if let Write::End = w {
        if let Some(a) = active.take() {
            finish(rec, a, Line::End { at_ms: now_ms() }).await;
        }
        return Ok(());
    }
    if active.is_none() {
        *active = Some(begin(rec, stream, retry).await?);
    }
    let Some(a) = active.as_ref() else {
        return Ok(());
    };
    let line = match w {
        Write::Rendition(meta) => Line::Rendition(meta),
        Write::Init {
            rendition,
            gen,
            body,
        } => {
            let bytes = rec
                .disk()
                .write(a.paths.init(&rendition, gen), vec![body])
                .await?;
            Line::Init {
                rendition,
                gen,
                bytes,
            }
        }
        Write::Segment { mut entry, body } => {
            // The first segment of a recording continues nothing in it.
            let first = rec
                .get(&a.key.0, &a.key.1)
                .and_then(|r| r.rendition(&entry.rendition).map(|x| x.segments.is_empty()))
                .unwrap_or(true);
            if first {
                entry.discontinuity = false;
            }
            entry.bytes = rec
                .disk()
                .write(a.paths.segment(&entry.rendition, entry.msn), body)
                .await?;
            rec.stats.segments.fetch_add(1, Ordering::Relaxed);
            Line::Segment(entry)
        }
        Write::End => return Ok(()),
    };
    journal(rec, a, &line).await?;
    rec.update(&a.key, |r| r.apply(&line));
    Ok(())
}

async fn journal(rec: &Recorder, a: &Active, line: &Line) -> Result<(), DiskError> {
    rec.disk()
        .append(a.paths.journal(), Bytes::from(line.to_line()))
        .await
}

async fn begin(rec: &Recorder, stream: &str, retry: bool) -> Result<Active, DiskError> {
    let r: Arc<Recording> = rec.begin(stream);
    let key = (r.meta.stream.clone(), r.meta.id.clone());
    let paths = rec.paths(&key.0, &key.1);
    // Serialising a plain struct cannot fail.
    let meta = serde_json::to_vec(&r.meta).unwrap_or_default();
    let a = Active { key, paths, retry };
    if let Err(e) = rec
        .disk()
        .write(a.paths.meta(), vec![Bytes::from(meta)])
        .await
    {
        rec.forget(&a.key);
        let _ = rec.disk().remove_dir_all(&a.paths.dir).await;
        return Err(e);
    }
    tracing::info!(recording = %a.key.1, dir = %a.paths.dir.display(), "recording started");
    Ok(a)
}

/// Closes a recording with `line` (its end).
async fn finish(rec: &Recorder, a: Active, line: Line) {
    if let Err(e) = journal(rec, &a, &line).await {
        tracing::warn!(recording = %a.key.1, error = %e, "could not close the journal; a restart will");
    }
    rec.update(&a.key, |r| r.apply(&line));
    if let Some(r) = rec.get(&a.key.0, &a.key.1) {
        rec.report(&r);
        tracing::info!(
            recording = %a.key.1,
            seconds = r.duration_secs(),
            bytes = r.bytes,
            state = r.state.as_str(),
            "recording finished"
        );
    }
    rec.enforce_retention(now_ms()).await;
}

/// A disk error stops the recording (live playback goes on).
async fn fail(rec: &Recorder, a: Option<Active>, e: &DiskError) {
    rec.stats.failed.fetch_add(1, Ordering::Relaxed);
    let reason = if e.is_no_space() {
        format!("disk full: {e}")
    } else {
        e.to_string()
    };
    tracing::warn!(error = %e, retry_in = ?RETRY, "recording stopped by a disk error; live playback goes on");
    let Some(a) = a else {
        return;
    };
    let empty = rec
        .get(&a.key.0, &a.key.1)
        .is_none_or(|r| r.segment_count() == 0);
    if a.retry && empty {
        rec.forget(&a.key);
        let _ = rec.disk().remove_dir_all(&a.paths.dir).await;
        return;
    }
    let line = Line::Error {
        at_ms: now_ms(),
        reason,
    };
    // Likely to fail too on a full disk; the entry says it either way, and
    // a restart closes the journal as recovered.
    let _ = journal(rec, &a, &line).await;
    rec.update(&a.key, |r| {
        r.apply(&line);
        debug_assert!(matches!(r.state, State::Error(_)));
    });
    if let Some(r) = rec.get(&a.key.0, &a.key.1) {
        rec.report(&r);
    }
}
