//! livecdn's disk tier: whole-file writes, appends, ranged reads and
//! removals on a dedicated thread, through io_uring (tokio-uring) where the
//! kernel and the container runtime allow it, else through ordinary file
//! I/O on the same thread.
//!
//! Why a separate thread: tokio-uring runs its own current-thread runtime
//! and cannot share the server's multi-thread one, and the live path must
//! never wait on a disk. Callers send jobs over a bounded queue
//! ([`DiskConfig::queue`]) and await their answer; a slow or full disk
//! backs up that queue and the callers that wait on it (the recorder, a
//! VOD request), never the packager or the edge's memory cache.
//!
//! Which path runs is decided once at start ([`Preference::Auto`]: try to
//! set up a ring and run one operation on it) and reported by
//! [`Disk::backend`], so that `/metrics` can say which one an operator got.
//! Containers whose seccomp profile blocks `io_uring_setup` (recent Docker
//! and containerd defaults) get the fallback with one log line.
//!
//! Durability: files are written, not fsynced. A process that crashes
//! (`kill -9`) loses nothing the kernel accepted; a machine that loses
//! power may lose the last seconds, which a recording's index rebuild
//! tolerates (a torn file is detected and dropped).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use bytes::Bytes;
//! use livecdn_disk::{Disk, DiskConfig};
//! let dir = std::env::temp_dir().join(format!("livecdn-disk-doc-{}", std::process::id()));
//! let disk = Disk::start(DiskConfig::default()).await;
//! let path = dir.join("a/b.bin");
//! let n = disk.write(&path, vec![Bytes::from_static(b"hello "), Bytes::from_static(b"disk")]).await.unwrap();
//! assert_eq!(n, 10);
//! assert_eq!(&disk.read(&path, 6, None).await.unwrap()[..], b"disk");
//! disk.remove_dir_all(&dir).await.unwrap();
//! # });
//! ```

mod fallback;
#[cfg(target_os = "linux")]
mod uring;

use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Which I/O path the disk thread uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// io_uring through tokio-uring.
    Uring,
    /// Ordinary blocking file I/O (`std::fs`) on the disk thread.
    Std,
}

impl Backend {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Uring => "io_uring",
            Backend::Std => "std",
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// io_uring if it works here, else the fallback.
    #[default]
    Auto,
    /// io_uring; the fallback (with a warning) if it does not work here.
    Uring,
    /// The fallback, without trying io_uring.
    Std,
}

/// Disk engine settings.
#[derive(Debug, Clone, Copy)]
pub struct DiskConfig {
    pub preference: Preference,
    /// Jobs waiting for the disk thread; senders wait past it.
    pub queue: usize,
    /// io_uring: jobs in progress at once on the ring.
    pub in_flight: usize,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            preference: Preference::Auto,
            queue: 256,
            in_flight: 32,
        }
    }
}

/// A disk operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The disk thread is gone (shutdown, or it failed to start).
    #[error("disk thread stopped")]
    Stopped,
    /// The operating system refused.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DiskError {
    /// The file system is full (or over quota).
    pub fn is_no_space(&self) -> bool {
        match self {
            DiskError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || source.raw_os_error() == Some(28)
                    || source.raw_os_error() == Some(122)
            }
            DiskError::Stopped => false,
        }
    }

    /// The file or directory does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DiskError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Lifetime counters, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_written: AtomicU64,
    pub bytes_read: AtomicU64,
}

impl Stats {
    fn count(&self, result: &Result<Done, DiskError>) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(Done::Wrote(n)) => {
                self.bytes_written.fetch_add(*n, Ordering::Relaxed);
            }
            Ok(Done::Read(b)) => {
                self.bytes_read.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            Ok(Done::Unit) => {}
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One job for the disk thread.
#[derive(Debug)]
pub(crate) enum Op {
    /// Create (or truncate) the file, creating its directory, and write
    /// the chunks in order.
    Write {
        path: PathBuf,
        chunks: Vec<Bytes>,
    },
    /// Append to the file, creating it (not its directory).
    Append {
        path: PathBuf,
        data: Bytes,
    },
    /// `len` bytes from `offset`, or to the end.
    Read {
        path: PathBuf,
        offset: u64,
        len: Option<u64>,
    },
    /// A directory and everything under it.
    RemoveDirAll {
        path: PathBuf,
    },
    RemoveFile {
        path: PathBuf,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Write { .. } => "write",
            Op::Append { .. } => "append",
            Op::Read { .. } => "read",
            Op::RemoveDirAll { .. } => "remove",
            Op::RemoveFile { .. } => "unlink",
        }
    }

    fn path(&self) -> &Path {
        match self {
            Op::Write { path, .. }
            | Op::Append { path, .. }
            | Op::Read { path, .. }
            | Op::RemoveDirAll { path }
            | Op::RemoveFile { path } => path,
        }
    }

    /// The error for this operation.
    fn error(&self, source: io::Error) -> DiskError {
        DiskError::Io {
            op: self.name(),
            path: self.path().to_path_buf(),
            source,
        }
    }
}

/// What a job produced.
#[derive(Debug)]
pub(crate) enum Done {
    Unit,
    Wrote(u64),
    Read(Bytes),
}

pub(crate) struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done, DiskError>>,
}

struct Inner {
    tx: mpsc::Sender<Job>,
    backend: Backend,
    stats: Arc<Stats>,
}

/// A handle on the disk thread; cheap to clone. The thread ends when the
/// last handle is dropped and the queued jobs are done.
#[derive(Clone)]
pub struct Disk {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("backend", &self.inner.backend)
            .finish()
    }
}

impl Disk {
    /// Starts the disk thread and learns which path it runs.
    pub async fn start(config: DiskConfig) -> Disk {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let stats = Arc::new(Stats::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_stats = stats.clone();
        let spawned = std::thread::Builder::new()
            .name("livecdn-disk".into())
            .spawn(move || run(config, rx, thread_stats, ready_tx));
        let backend = match spawned {
            Ok(_) => ready_rx.await.unwrap_or(Backend::Std),
            Err(e) => {
                // Jobs then fail with `Stopped`; callers report it.
                tracing::error!(error = %e, "could not start the disk thread");
                Backend::Std
            }
        };
        Disk {
            inner: Arc::new(Inner { tx, backend, stats }),
        }
    }

    /// The I/O path in use.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    async fn submit(&self, op: Op) -> Result<Done, DiskError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Job { op, reply })
            .await
            .map_err(|_| DiskError::Stopped)?;
        rx.await.map_err(|_| DiskError::Stopped)?
    }

    /// Writes a whole file (creating its directory, replacing any old
    /// file) from chunks that are not copied first; the bytes written.
    pub async fn write(
        &self,
        path: impl AsRef<Path>,
        chunks: Vec<Bytes>,
    ) -> Result<u64, DiskError> {
        let path = path.as_ref().to_path_buf();
        match self.submit(Op::Write { path, chunks }).await? {
            Done::Wrote(n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// Appends to a file, creating it (its directory must exist).
    pub async fn append(&self, path: impl AsRef<Path>, data: Bytes) -> Result<(), DiskError> {
        let path = path.as_ref().to_path_buf();
        self.submit(Op::Append { path, data }).await.map(|_| ())
    }

    /// Reads `len` bytes at `offset`, or everything from `offset` on. A
    /// file shorter than asked gives what it has.
    pub async fn read(
        &self,
        path: impl AsRef<Path>,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Bytes, DiskError> {
        let path = path.as_ref().to_path_buf();
        match self.submit(Op::Read { path, offset, len }).await? {
            Done::Read(b) => Ok(b),
            _ => Ok(Bytes::new()),
        }
    }

    /// Removes a directory tree; one that is not there is not an error.
    pub async fn remove_dir_all(&self, path: impl AsRef<Path>) -> Result<(), DiskError> {
        let path = path.as_ref().to_path_buf();
        match self.submit(Op::RemoveDirAll { path }).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Removes one file; one that is not there is not an error.
    pub async fn remove_file(&self, path: impl AsRef<Path>) -> Result<(), DiskError> {
        let path = path.as_ref().to_path_buf();
        match self.submit(Op::RemoveFile { path }).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// The disk thread: io_uring if preferred and working, else the fallback.
fn run(
    config: DiskConfig,
    rx: mpsc::Receiver<Job>,
    stats: Arc<Stats>,
    ready: oneshot::Sender<Backend>,
) {
    #[cfg(target_os = "linux")]
    let rx = match config.preference {
        Preference::Std => rx,
        Preference::Auto | Preference::Uring => match uring::Ring::new() {
            Ok(ring) => {
                tracing::info!("disk I/O through io_uring");
                let _ = ready.send(Backend::Uring);
                ring.serve(rx, config.in_flight, stats);
                return;
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "io_uring is not available here (old kernel, or blocked by the container's seccomp profile); disk I/O falls back to ordinary file I/O"
                );
                rx
            }
        },
    };
    #[cfg(not(target_os = "linux"))]
    let _ = config;
    let _ = ready.send(Backend::Std);
    fallback::serve(rx, stats);
}

/// Blocking implementation of one job, shared by the fallback and by the
/// operations io_uring has no opcode for.
pub(crate) fn blocking(op: &Op) -> io::Result<Done> {
    use std::io::{Read, Seek, SeekFrom, Write};
    match op {
        Op::Write { path, chunks } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::File::create(path)?;
            let mut n = 0u64;
            for c in chunks {
                f.write_all(c)?;
                n += c.len() as u64;
            }
            Ok(Done::Wrote(n))
        }
        Op::Append { path, data } => {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)?;
            f.write_all(data)?;
            Ok(Done::Wrote(data.len() as u64))
        }
        Op::Read { path, offset, len } => {
            let mut f = std::fs::File::open(path)?;
            let size = f.metadata()?.len();
            let want = read_len(size, *offset, *len);
            f.seek(SeekFrom::Start(*offset))?;
            let mut buf = Vec::with_capacity(want as usize);
            f.take(want).read_to_end(&mut buf)?;
            Ok(Done::Read(Bytes::from(buf)))
        }
        Op::RemoveDirAll { path } => {
            std::fs::remove_dir_all(path)?;
            Ok(Done::Unit)
        }
        Op::RemoveFile { path } => {
            std::fs::remove_file(path)?;
            Ok(Done::Unit)
        }
    }
}

/// How many bytes a read of `len` at `offset` gets from a file of `size`.
pub(crate) fn read_len(size: u64, offset: u64, len: Option<u64>) -> u64 {
    let rest = size.saturating_sub(offset);
    len.map_or(rest, |l| l.min(rest))
}

#[cfg(test)]
mod tests;
