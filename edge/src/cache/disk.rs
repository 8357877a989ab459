//! The disk tier below the memory cache, for immutable objects that memory
//! evicts.
//!
//! Recordings and DVR windows are long-tail: hours of segments, each read
//! by few viewers, and a seek storm reads many of them once. Memory keeps
//! what is hot (the live edge); what it evicts for size, if it is a
//! complete `200` segment or init section, is written here, and a memory
//! miss looks here before going upstream. Parts are not kept: their
//! segment supersedes them seconds later.
//!
//! * Bounded by bytes: an in-memory index (moka, weighed by file length,
//!   least recently used evicted) decides what stays; its eviction listener
//!   queues the file's removal, which the tier's task runs through the
//!   disk thread before its next write, so the directory holds at most the
//!   budget plus the one file being written.
//! * Files are named by a counter, never by the key, so a replaced entry's
//!   removal cannot delete its successor, and the directory (`DIR/objects`)
//!   is emptied at start: the index lives in memory only.
//! * Reads and writes go through [`livecdn_disk`] (io_uring where it
//!   works, else ordinary file I/O) on its own thread; demotion is queued
//!   (bounded by count and by bytes, since a queued object is memory the
//!   cache's budget no longer counts; dropped when full and counted), so
//!   eviction never waits on the disk. A file that reads back at the wrong length is dropped and
//!   the request goes upstream.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use livecdn_disk::{Backend, Disk, DiskConfig, Preference};
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use tokio::sync::mpsc;

use super::key::{CacheKey, ObjectKind};
use super::object::CachedObject;

/// Objects waiting to be written; past this, demotions are dropped.
const DEMOTE_QUEUE: usize = 1024;
/// Bytes of objects waiting to be written; past this, demotions are
/// dropped (a slow disk must not hold evicted memory without bound).
const DEMOTE_BYTES: u64 = 64 * 1024 * 1024;
/// How often the tier's task removes files the index dropped between
/// writes (expiry, removals found on reads).
const SWEEP: Duration = Duration::from_secs(5);

/// Disk tier settings.
#[derive(Debug, Clone)]
pub struct DiskTierConfig {
    /// The tier's files go under `dir/objects/`.
    pub dir: PathBuf,
    /// Bytes of files kept at most.
    pub max_bytes: u64,
    /// io_uring or the fallback.
    pub preference: Preference,
}

/// One object on disk.
#[derive(Debug)]
pub(crate) struct DiskEntry {
    path: PathBuf,
    len: u64,
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
}

/// Counters since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskTierStats {
    /// Objects written.
    pub writes: u64,
    /// Objects served from disk.
    pub hits: u64,
    /// Demotions dropped (queue full, disk error, already there).
    pub dropped: u64,
    /// Reads that failed or came back at the wrong length.
    pub read_errors: u64,
    /// Bytes the index holds (settles after maintenance).
    pub bytes: u64,
    /// Objects the index holds.
    pub entries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    hits: AtomicU64,
    dropped: AtomicU64,
    read_errors: AtomicU64,
}

type Index = moka::sync::Cache<CacheKey, Arc<DiskEntry>>;

/// The disk tier. Cloning gives another handle to the same tier.
#[derive(Clone)]
pub struct DiskTier {
    inner: Arc<TierInner>,
}

struct TierInner {
    disk: Disk,
    index: Index,
    demote: mpsc::Sender<(CacheKey, Arc<CachedObject>)>,
    /// Files the index let go of, to remove.
    doomed: Arc<Mutex<Vec<PathBuf>>>,
    /// Body bytes queued for writing.
    pending_bytes: AtomicU64,
    counters: Counters,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("backend", &self.inner.disk.backend())
            .field("stats", &self.stats())
            .finish()
    }
}

impl DiskTier {
    /// Empties `dir/objects`, starts the disk thread and the tier's task.
    pub async fn start(config: DiskTierConfig) -> Result<DiskTier, livecdn_disk::DiskError> {
        let disk = Disk::start(DiskConfig {
            preference: config.preference,
            ..DiskConfig::default()
        })
        .await;
        let dir = config.dir.join("objects");
        disk.remove_dir_all(&dir).await?;
        let doomed: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
        let listener_doomed = doomed.clone();
        let index = moka::sync::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_k: &CacheKey, e: &Arc<DiskEntry>| u32::try_from(e.len).unwrap_or(u32::MAX))
            .eviction_policy(EvictionPolicy::lru())
            .eviction_listener(move |_k, e: Arc<DiskEntry>, _cause: RemovalCause| {
                lock(&listener_doomed).push(e.path.clone());
            })
            .build();
        let (demote, rx) = mpsc::channel(DEMOTE_QUEUE);
        let tier = DiskTier {
            inner: Arc::new(TierInner {
                disk,
                index,
                demote,
                doomed,
                pending_bytes: AtomicU64::new(0),
                counters: Counters::default(),
            }),
        };
        tracing::info!(
            dir = %dir.display(),
            max_bytes = config.max_bytes,
            io = tier.backend().as_str(),
            "edge disk tier ready"
        );
        tokio::spawn(run(Arc::downgrade(&tier.inner), rx, dir));
        Ok(tier)
    }

    /// The I/O path in use.
    pub fn backend(&self) -> Backend {
        self.inner.disk.backend()
    }

    /// Whether memory should hand this evicted object down: complete,
    /// `200`, a segment or init section.
    pub(crate) fn wants(object: &CachedObject) -> bool {
        object.status == 200
            && matches!(object.kind, ObjectKind::Segment | ObjectKind::Init)
            && object.body.is_complete()
    }

    /// Queues an object memory evicted; never waits.
    pub(crate) fn demote(&self, key: CacheKey, object: Arc<CachedObject>) {
        let inner = &self.inner;
        let len = object.body.len();
        let dropped = || inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if inner.index.contains_key(&key) {
            dropped();
            return;
        }
        if inner.pending_bytes.fetch_add(len, Ordering::Relaxed) + len > DEMOTE_BYTES {
            inner.pending_bytes.fetch_sub(len, Ordering::Relaxed);
            dropped();
            return;
        }
        if inner.demote.try_send((key, object)).is_err() {
            inner.pending_bytes.fetch_sub(len, Ordering::Relaxed);
            dropped();
        }
    }

    /// The object for `key`, read back whole; `None` if the tier does not
    /// have it (or its file is gone or torn, which drops the entry).
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<(Arc<DiskEntry>, Bytes)> {
        let entry = self.inner.index.get(key)?;
        match self.inner.disk.read(&entry.path, 0, None).await {
            Ok(bytes) if bytes.len() as u64 == entry.len => {
                self.inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                Some((entry, bytes))
            }
            other => {
                let reason = match other {
                    Ok(b) => format!("{} bytes of {}", b.len(), entry.len),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(key = %key, %reason, "disk tier object unreadable; dropped");
                self.inner
                    .counters
                    .read_errors
                    .fetch_add(1, Ordering::Relaxed);
                self.inner.index.invalidate(key);
                None
            }
        }
    }

    /// Counters and current size.
    pub fn stats(&self) -> DiskTierStats {
        let c = &self.inner.counters;
        DiskTierStats {
            writes: c.writes.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            read_errors: c.read_errors.load(Ordering::Relaxed),
            bytes: self.inner.index.weighted_size(),
            entries: self.inner.index.entry_count(),
        }
    }

    /// Runs the index's pending evictions and removes their files now;
    /// for tests and housekeeping.
    pub async fn settle(&self) {
        sweep(&self.inner).await;
    }
}

fn lock(m: &Mutex<Vec<PathBuf>>) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Applies the index's pending evictions and removes the files they let
/// go of (the lock is released before any await).
async fn sweep(inner: &TierInner) {
    inner.index.run_pending_tasks();
    let doomed = std::mem::take(&mut *lock(&inner.doomed));
    for path in doomed {
        if let Err(e) = inner.disk.remove_file(&path).await {
            tracing::warn!(path = %path.display(), error = %e, "disk tier file not removed");
        }
    }
}

/// The tier's task: writes demoted objects one at a time, removing what
/// the index evicts after each, and sweeps now and then. Ends when the
/// tier is dropped.
async fn run(
    inner: std::sync::Weak<TierInner>,
    mut rx: mpsc::Receiver<(CacheKey, Arc<CachedObject>)>,
    dir: PathBuf,
) {
    let mut next: u64 = 0;
    let mut tick = tokio::time::interval(SWEEP);
    loop {
        let job = tokio::select! {
            job = rx.recv() => job,
            _ = tick.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                sweep(&inner).await;
                continue;
            }
        };
        let (Some((key, object)), Some(inner)) = (job, inner.upgrade()) else {
            return;
        };
        next += 1;
        write_one(&inner, &dir, next, key, &object).await;
        inner
            .pending_bytes
            .fetch_sub(object.body.len(), Ordering::Relaxed);
        sweep(&inner).await;
    }
}

async fn write_one(inner: &TierInner, dir: &Path, n: u64, key: CacheKey, object: &CachedObject) {
    let Some((chunks, len)) = object.body.complete_chunks() else {
        return;
    };
    if inner.index.contains_key(&key) {
        inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // 256 files per directory level keeps directories small.
    let path = dir
        .join(format!("{:02x}", n & 0xff))
        .join(format!("{n:016x}"));
    match inner.disk.write(&path, chunks.to_vec()).await {
        Ok(written) if written == len => {
            inner.counters.writes.fetch_add(1, Ordering::Relaxed);
            let entry = DiskEntry {
                path,
                len,
                status: object.status,
                headers: object.headers.clone(),
            };
            inner.index.insert(key, Arc::new(entry));
        }
        other => {
            inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = &other {
                tracing::warn!(key = %key, error = %e, "disk tier write failed");
            }
            let _ = inner.disk.remove_file(&path).await;
        }
    }
}
