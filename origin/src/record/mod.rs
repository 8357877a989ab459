//! Recording: every recorded stream's CMAF kept on disk as it is packaged,
//! a VOD (and a progressive MP4) once it ends.
//!
//! The packager's own init sections and segments are what gets written
//! (no second muxing): a per-stream task ([`task`]) follows the live
//! window ([`follow::Follower`]) and hands each new object to the disk
//! thread (`livecdn_disk`: tokio-uring where it works, plain file I/O
//! where it does not), then journals it ([`journal`]). The live path never
//! waits on the disk: the follower only clones `Bytes` under the stream's
//! lock, and a disk slower than the stream costs the recording segments
//! (marked as a discontinuity), never the viewers a stall.
//!
//! A recording ends with its stream (`end`), with a disk error (`error`:
//! the recorder retries in a new recording every [`RETRY`]), or with the
//! process (a start finds it and closes it, [`recover`]). Retention
//! ([`Recorder::enforce_retention`]) deletes the oldest finished
//! recordings first.

pub mod dvr;
#[cfg(test)]
mod dvr_tests;
pub mod follow;
pub mod fragment;
pub mod index;
pub mod info;
pub mod journal;
mod metrics;
pub mod mp4;
pub mod recover;
mod task;
pub mod upload;
pub mod vod;

use index::Recording;
use journal::{Paths, RecordingMeta};
use livecdn_disk::{Disk, DiskConfig, Preference};
use livecdn_shared::config::{DiskIo, RecordPolicy, RecordRenditions, RecordingConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How long the recorder waits after a disk error before it tries again
/// in a new recording.
pub const RETRY: Duration = Duration::from_secs(5);

/// `(stream, recording id)`.
pub type Key = (String, String);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct RecordStats {
    pub started: AtomicU64,
    pub failed: AtomicU64,
    pub segments: AtomicU64,
    /// Recordings retention deleted.
    pub expired: AtomicU64,
    /// Recordings uploaded, their bytes, and uploads given up.
    pub uploads: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub upload_failures: AtomicU64,
}

/// The recorder: the disk, the recordings directory, and what is in it.
pub struct Recorder {
    config: RecordingConfig,
    disk: Disk,
    catalog: Mutex<BTreeMap<Key, Arc<Recording>>>,
    /// Progressive MP4 layouts of finished recordings, built on first
    /// download (a recording's media never changes once final).
    layouts: Mutex<BTreeMap<Key, Arc<mp4::Layout>>>,
    /// Held while a layout is built (see [`Recorder::layout`]).
    building: tokio::sync::Mutex<()>,
    pub stats: RecordStats,
    /// Recordings that became final, for `on_record_done`.
    finished: mpsc::Sender<Arc<Recording>>,
    finished_rx: Mutex<Option<mpsc::Receiver<Arc<Recording>>>>,
    /// Object storage for finished recordings, when configured.
    pub uploader: Option<upload::Uploader>,
    /// The per-stream recording tasks, so that a shutdown can let them
    /// close their journals.
    tasks: tokio_util::task::TaskTracker,
}

/// Final recordings waiting to be reported; past it, reports are dropped
/// (and logged).
const FINISHED_QUEUE: usize = 1024;

/// Finished recordings whose MP4 layout stays in memory.
const LAYOUTS_KEPT: usize = 16;

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    /// Starts the disk thread and reads back what the directory holds
    /// (closing recordings a crash left open).
    pub async fn open(config: RecordingConfig) -> Recorder {
        let preference = match config.io {
            DiskIo::Auto => Preference::Auto,
            DiskIo::IoUring => Preference::Uring,
            DiskIo::Std => Preference::Std,
        };
        let disk = Disk::start(DiskConfig {
            preference,
            queue: config.queue,
            ..DiskConfig::default()
        })
        .await;
        let root = config.dir.clone();
        let found = tokio::task::spawn_blocking(move || recover::scan(&root, now_ms()))
            .await
            .unwrap_or_default();
        tracing::info!(
            dir = %config.dir.display(),
            io = disk.backend().as_str(),
            policy = ?config.policy,
            recordings = found.len(),
            "recorder ready"
        );
        let (finished, finished_rx) = mpsc::channel(FINISHED_QUEUE);
        let uploader = config.upload.as_ref().and_then(|u| {
            upload::Uploader::new(u)
                .inspect_err(|e| tracing::error!(error = %e, "recording upload is off: bad [recording.upload]"))
                .ok()
        });
        let recorder = Recorder {
            tasks: tokio_util::task::TaskTracker::new(),
            uploader,
            config,
            disk,
            catalog: Mutex::new(BTreeMap::new()),
            layouts: Mutex::new(BTreeMap::new()),
            building: tokio::sync::Mutex::new(()),
            stats: RecordStats::default(),
            finished,
            finished_rx: Mutex::new(Some(finished_rx)),
        };
        for (rec, recovered_now) in found {
            let rec = Arc::new(rec);
            // Closed now, or final but not uploaded yet (the last run
            // stopped first, or gave up): report (and upload) it.
            let unsent = recorder.uploader.is_some() && rec.uploaded.is_none();
            if recovered_now || (rec.state.is_final() && unsent) {
                recorder.report(&rec);
            }
            let key = (rec.meta.stream.clone(), rec.meta.id.clone());
            recorder.catalog().insert(key, rec);
        }
        recorder
    }

    /// Starts recording `hub`'s stream (its caller claimed the hub's
    /// recorder slot).
    pub fn record(self: &Arc<Self>, hub: Arc<crate::registry::StreamHub>) {
        self.tasks.spawn(task::run(self.clone(), hub));
    }

    /// At shutdown: waits (at most `limit`) for the recording tasks, which
    /// close their recordings when the streams drain.
    pub async fn close(&self, limit: Duration) {
        self.tasks.close();
        if tokio::time::timeout(limit, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("recordings still being closed at exit; the next start recovers them");
        }
    }

    /// The recordings that become final, once (for `on_record_done`).
    pub fn take_finished(&self) -> Option<mpsc::Receiver<Arc<Recording>>> {
        self.finished_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Journals where `r` was uploaded (so a restart does not upload it
    /// again) and lists it.
    pub async fn uploaded(&self, r: &Recording, objects: &[upload::Uploaded]) {
        let line = journal::Line::Uploaded {
            at_ms: now_ms(),
            objects: objects.to_vec(),
        };
        let paths = self.paths(&r.meta.stream, &r.meta.id);
        if let Err(e) = self
            .disk
            .append(paths.journal(), bytes::Bytes::from(line.to_line()))
            .await
        {
            tracing::warn!(recording = %r.meta.id, error = %e, "could not journal the upload");
        }
        let key = (r.meta.stream.clone(), r.meta.id.clone());
        self.update(&key, |x| x.apply(&line));
    }

    /// Queues a final recording for `on_record_done`.
    fn report(&self, rec: &Arc<Recording>) {
        if self.finished.try_send(rec.clone()).is_err() {
            tracing::warn!(stream = %rec.meta.stream, recording = %rec.meta.id, "record_done report queue full; not reported");
        }
    }

    pub fn config(&self) -> &RecordingConfig {
        &self.config
    }

    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    pub fn root(&self) -> &Path {
        &self.config.dir
    }

    /// Whether a stream is recorded: its own say (channel, static key or
    /// webhook answer) if any, else the policy.
    pub fn wants(&self, says: Option<bool>) -> bool {
        says.unwrap_or(self.config.policy == RecordPolicy::All)
    }

    pub fn renditions(&self) -> follow::Renditions {
        match self.config.renditions {
            RecordRenditions::Source => follow::Renditions::Source,
            RecordRenditions::All => follow::Renditions::All,
        }
    }

    pub fn paths(&self, stream: &str, id: &str) -> Paths {
        Paths::new(&self.config.dir, stream, id)
    }

    fn catalog(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Arc<Recording>>> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every recording, by stream then start.
    pub fn list(&self) -> Vec<Arc<Recording>> {
        self.catalog().values().cloned().collect()
    }

    pub fn get(&self, stream: &str, id: &str) -> Option<Arc<Recording>> {
        self.catalog()
            .get(&(stream.to_string(), id.to_string()))
            .cloned()
    }

    /// The recording of `stream` being written now, if any.
    pub fn current(&self, stream: &str) -> Option<Arc<Recording>> {
        self.catalog()
            .range((stream.to_string(), String::new())..)
            .take_while(|((s, _), _)| s == stream)
            .filter(|(_, r)| !r.state.is_final())
            .last()
            .map(|(_, r)| r.clone())
    }

    /// What a live playlist of `stream` may reach back into (DVR): the
    /// recording being written and the window, where the window is on and
    /// every one of `live` (the stream's renditions now) is recorded; a
    /// player that seeks back and then switches renditions must find the
    /// same segments in the other playlist.
    pub fn dvr<'a>(
        &self,
        stream: &str,
        mut live: impl Iterator<Item = &'a str>,
    ) -> Option<(Arc<Recording>, Duration)> {
        let window = self.config.dvr_window;
        if window.is_zero() {
            return None;
        }
        let rec = self.current(stream)?;
        live.all(|name| rec.rendition(name).is_some())
            .then_some((rec, window))
    }

    /// A new recording of `stream` starting now: a free id, in the catalog.
    fn begin(&self, stream: &str) -> Arc<Recording> {
        let started_ms = now_ms();
        let mut cat = self.catalog();
        let root = &self.config.dir;
        let id = journal::recording_id(started_ms, |id| {
            cat.contains_key(&(stream.to_string(), id.to_string()))
                || root.join(stream).join(id).exists()
        });
        let rec = Arc::new(Recording::new(RecordingMeta {
            stream: stream.to_string(),
            id: id.clone(),
            started_ms,
        }));
        cat.insert((stream.to_string(), id), rec.clone());
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        rec
    }

    /// Changes a catalogued recording (copy-on-write: readers keep the
    /// snapshot they hold).
    fn update(&self, key: &Key, f: impl FnOnce(&mut Recording)) {
        if let Some(r) = self.catalog().get_mut(key) {
            f(Arc::make_mut(r));
        }
    }

    fn forget(&self, key: &Key) {
        self.catalog().remove(key);
        self.layouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Deletes a finished recording's files and entry. `Ok(false)`: no such
    /// recording; an unfinished one is refused.
    pub async fn delete(&self, stream: &str, id: &str) -> Result<bool, DeleteError> {
        let key = (stream.to_string(), id.to_string());
        let Some(rec) = self.catalog().get(&key).cloned() else {
            return Ok(false);
        };
        if !rec.state.is_final() {
            return Err(DeleteError::Recording);
        }
        self.forget(&key);
        self.disk
            .remove_dir_all(self.paths(stream, id).dir)
            .await
            .map_err(|e| DeleteError::Disk(e.to_string()))?;
        tracing::info!(%stream, recording = %id, "recording deleted");
        Ok(true)
    }

    /// Bytes of every catalogued recording.
    pub fn total_bytes(&self) -> u64 {
        self.catalog().values().map(|r| r.bytes).sum()
    }

    /// Deletes finished recordings past `max_age`, then the oldest ones
    /// while a stream or the whole directory is over its byte limit.
    /// Recordings still being written are never deleted. Returns how many
    /// went.
    pub async fn enforce_retention(&self, now_ms: u64) -> usize {
        let doomed = retention_victims(&self.list(), &self.config, now_ms);
        let mut n = 0;
        for (stream, id) in doomed {
            match self.delete(&stream, &id).await {
                Ok(true) => {
                    n += 1;
                    self.stats.expired.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%stream, recording = %id, "retention deleted a recording");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%stream, recording = %id, error = %e, "retention could not delete")
                }
            }
        }
        n
    }

    /// The cached MP4 layout of a finished recording, or builds it.
    ///
    /// Builds run one at a time (a build reads every segment file once): a
    /// burst of first downloads builds once, the others wait and find it.
    pub async fn layout(&self, rec: &Arc<Recording>) -> Result<Arc<mp4::Layout>, mp4::Mp4Error> {
        let key = (rec.meta.stream.clone(), rec.meta.id.clone());
        let cached = || {
            self.layouts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned()
        };
        if let Some(l) = cached() {
            return Ok(l);
        }
        let _building = self.building.lock().await;
        if let Some(l) = cached() {
            return Ok(l);
        }
        let layout = Arc::new(mp4::build(&self.disk, &self.paths(&key.0, &key.1), rec).await?);
        if rec.state.is_final() {
            let mut cache = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= LAYOUTS_KEPT {
                if let Some(k) = cache.keys().next().cloned() {
                    cache.remove(&k);
                }
            }
            cache.insert(key, layout.clone());
        }
        Ok(layout)
    }
}

/// Why a recording could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("the recording is still being written")]
    Recording,
    #[error("disk: {0}")]
    Disk(String),
}

/// Which finished recordings retention deletes, oldest first.
pub fn retention_victims(
    recordings: &[Arc<Recording>],
    config: &RecordingConfig,
    now_ms: u64,
) -> Vec<Key> {
    let mut all: Vec<&Arc<Recording>> = recordings.iter().collect();
    all.sort_by_key(|r| (r.meta.started_ms, r.meta.id.clone()));
    let mut doomed: Vec<Key> = Vec::new();
    let key = |r: &Recording| (r.meta.stream.clone(), r.meta.id.clone());
    if let Some(age) = config.max_age {
        let cutoff = now_ms.saturating_sub(age.as_millis() as u64);
        for r in all.iter().filter(|r| r.state.is_final()) {
            if r.ended_ms.unwrap_or(r.meta.started_ms) < cutoff {
                doomed.push(key(r));
            }
        }
    }
    let mut per_stream: BTreeMap<&str, u64> = BTreeMap::new();
    let mut total = 0u64;
    for r in all.iter().filter(|r| !doomed.contains(&key(r))) {
        *per_stream.entry(&r.meta.stream).or_default() += r.bytes;
        total += r.bytes;
    }
    for r in all.iter().filter(|r| r.state.is_final()) {
        if doomed.contains(&key(r)) {
            continue;
        }
        let stream_over = config.max_stream_bytes > 0
            && per_stream.get(r.meta.stream.as_str()).copied().unwrap_or(0)
                > config.max_stream_bytes;
        let total_over = config.max_bytes > 0 && total > config.max_bytes;
        if stream_over || total_over {
            doomed.push(key(r));
            total -= r.bytes;
            if let Some(b) = per_stream.get_mut(r.meta.stream.as_str()) {
                *b -= r.bytes;
            }
        }
    }
    doomed
}

/// The recordings directory is relative to the working directory unless
/// absolute; for log lines and the API.
pub fn display_dir(dir: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|c| c.join(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod retention_tests;
