//! Cached objects and their growing bodies.
//!
//! A body is a list of `Bytes` chunks that the filling request appends as they
//! arrive from upstream. Every reader walks the same list and gets clones of the
//! chunks (a reference-count increment), so a thousand viewers of one part share
//! one copy of its bytes and each sees a chunk as soon as it is appended.
//!
//! The lock is a std `Mutex` held only to push or clone one chunk, never across
//! an `.await`; wakeups go through a `tokio::sync::watch` version counter, which
//! cannot lose a notification between a reader's check and its wait.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::watch;

use super::key::ObjectKind;

/// Largest body the cache accepts by default (64 MiB): far above any segment,
/// small enough that one bad upstream cannot take the whole byte budget.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Why a body read did not end normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The filling request gave up (upstream error, reset, client gone); the bytes
    /// read so far are a truncated body and must not be served as complete.
    #[error("body fill failed: {0}")]
    Failed(Arc<str>),
    /// The body grew past the configured maximum.
    #[error("body larger than {max} bytes")]
    TooLarge {
        /// The configured maximum.
        max: u64,
    },
    /// No chunk arrived and the body did not end within the idle timeout.
    #[error("no body progress within {0:?}")]
    Idle(Duration),
    /// `append` after `finish` or `fail`: a bug in the filling code.
    #[error("body is already closed")]
    Closed,
}

/// Where a body is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyState {
    Open,
    Finished,
    Failed(BodyError),
}

#[derive(Debug)]
struct Chunks {
    chunks: Vec<Bytes>,
    len: u64,
    state: BodyState,
    /// Set when the body finishes: the body as one contiguous chunk, shared by
    /// every response served from the complete object. Upstream delivers a
    /// segment in many small frames; served as they came, each response would
    /// take one `writev` (and one wakeup of the viewer) per frame. Joining them
    /// costs one copy per object and makes every later response a single
    /// write (or `sendfile`). `chunks` is replaced by it too, so the bytes are
    /// held once.
    snapshot: Option<Arc<[Bytes]>>,
}

#[derive(Debug)]
struct Shared {
    chunks: Mutex<Chunks>,
    /// Bumped on every change; readers wait on it.
    version: watch::Sender<u64>,
    max_len: u64,
}

/// A body that may still be growing. Cloning gives another handle to the same
/// body.
#[derive(Debug, Clone)]
pub struct GrowingBody {
    shared: Arc<Shared>,
}

impl GrowingBody {
    /// An empty, open body that fails once it exceeds `max_len` bytes.
    pub fn new(max_len: u64) -> GrowingBody {
        GrowingBody {
            shared: Arc::new(Shared {
                chunks: Mutex::new(Chunks {
                    chunks: Vec::new(),
                    len: 0,
                    state: BodyState::Open,
                    snapshot: None,
                }),
                version: watch::Sender::new(0),
                max_len,
            }),
        }
    }

    /// A finished body made of `chunks` (for pushed objects). Fails with
    /// [`BodyError::TooLarge`] rather than storing an oversized body.
    pub fn complete(
        chunks: impl IntoIterator<Item = Bytes>,
        max_len: u64,
    ) -> Result<GrowingBody, BodyError> {
        let body = GrowingBody::new(max_len);
        for chunk in chunks {
            body.append(chunk)?;
        }
        body.finish();
        Ok(body)
    }

    fn lock(&self) -> MutexGuard<'_, Chunks> {
        // Nothing panics while the lock is held, and every update leaves the
        // state consistent, so a poisoned lock is still safe to use.
        self.shared
            .chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.shared.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Appends a chunk without copying it. Past the size limit the body fails
    /// (readers get [`BodyError::TooLarge`]) and so does this call.
    pub fn append(&self, chunk: Bytes) -> Result<(), BodyError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let result = {
            let mut inner = self.lock();
            match &inner.state {
                BodyState::Open => {
                    let len = inner.len.saturating_add(chunk.len() as u64);
                    if len > self.shared.max_len {
                        let err = BodyError::TooLarge {
                            max: self.shared.max_len,
                        };
                        inner.state = BodyState::Failed(err.clone());
                        Err(err)
                    } else {
                        inner.len = len;
                        inner.chunks.push(chunk);
                        Ok(())
                    }
                }
                BodyState::Finished => return Err(BodyError::Closed),
                BodyState::Failed(err) => return Err(err.clone()),
            }
        };
        self.notify();
        result
    }

    /// Marks the body complete; readers end after the last chunk. No effect on a
    /// body that already ended.
    pub fn finish(&self) {
        self.close(BodyState::Finished);
    }

    /// Marks the body failed; readers get [`BodyError::Failed`] after the chunks
    /// they have not read yet, never a silent truncation. No effect on a body that
    /// already ended.
    pub fn fail(&self, reason: impl Into<Arc<str>>) {
        self.close(BodyState::Failed(BodyError::Failed(reason.into())));
    }

    fn close(&self, state: BodyState) {
        let changed = {
            let mut inner = self.lock();
            let open = inner.state == BodyState::Open;
            if open {
                if state == BodyState::Finished {
                    let joined = join(&inner.chunks, inner.len);
                    inner.snapshot = Some(Arc::from(joined.as_slice()));
                    inner.chunks = joined;
                    // `snapshot` being set tells readers to go by position.
                }
                inner.state = state;
            }
            open
        };
        if changed {
            self.notify();
        }
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.lock().len
    }

    /// Whether no bytes have been appended yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the body was finished successfully.
    pub fn is_complete(&self) -> bool {
        self.lock().state == BodyState::Finished
    }

    /// The error the body ended with, if it failed.
    pub fn error(&self) -> Option<BodyError> {
        match &self.lock().state {
            BodyState::Failed(err) => Some(err.clone()),
            _ => None,
        }
    }

    /// All chunks and the total length if the body finished successfully:
    /// a complete object is served from this snapshot (reference counts,
    /// no copies) without the waiting machinery of a [`BodyReader`].
    pub fn complete_chunks(&self) -> Option<(Arc<[Bytes]>, u64)> {
        let inner = self.lock();
        inner.snapshot.clone().map(|s| (s, inner.len))
    }

    /// A reader from the first byte.
    pub fn reader(&self) -> BodyReader {
        BodyReader {
            body: self.clone(),
            version: self.shared.version.subscribe(),
            next: 0,
            pos: 0,
            done: false,
        }
    }

    /// Waits until the body ends. If nothing happens within `idle_timeout` the
    /// body is failed with [`BodyError::Idle`], so a stalled fill cannot leave a
    /// half-written object in the cache forever.
    pub(crate) async fn settle(&self, idle_timeout: Duration) -> Result<(), BodyError> {
        let mut version = self.shared.version.subscribe();
        loop {
            version.borrow_and_update();
            match &self.lock().state {
                BodyState::Open => {}
                BodyState::Finished => return Ok(()),
                BodyState::Failed(err) => return Err(err.clone()),
            }
            match tokio::time::timeout(idle_timeout, version.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`, so it cannot be dropped here.
                Ok(Err(_)) | Err(_) => {
                    let err = BodyError::Idle(idle_timeout);
                    self.close(BodyState::Failed(err.clone()));
                    // Another thread may have finished the body just now.
                    return if self.is_complete() { Ok(()) } else { Err(err) };
                }
            }
        }
    }
}

/// Reads a [`GrowingBody`] from the start, waiting for chunks as they arrive.
#[derive(Debug)]
pub struct BodyReader {
    body: GrowingBody,
    version: watch::Receiver<u64>,
    /// Index of the next chunk while the list is as appended.
    next: usize,
    /// Bytes handed out so far: once the list is replaced by one joined
    /// chunk, this says where the reader is in it.
    pos: u64,
    done: bool,
}

impl BodyReader {
    /// The next chunk (a clone of the appended `Bytes`, not a copy), `None` when
    /// the body is complete, or an error if the body failed or nothing arrived
    /// within `idle_timeout`. After an error or the end, returns `None`.
    pub async fn next(&mut self, idle_timeout: Duration) -> Option<Result<Bytes, BodyError>> {
        if self.done {
            return None;
        }
        loop {
            // Mark the current version seen before looking, so an append between
            // the look and the wait still wakes us.
            self.version.borrow_and_update();
            {
                let inner = self.body.lock();
                let found = match inner.snapshot {
                    Some(_) => chunk_at(&inner.chunks, self.pos),
                    None => inner.chunks.get(self.next).cloned(),
                };
                if let Some(chunk) = found {
                    self.next += 1;
                    self.pos += chunk.len() as u64;
                    return Some(Ok(chunk));
                }
                match &inner.state {
                    BodyState::Open => {}
                    BodyState::Finished => {
                        self.done = true;
                        return None;
                    }
                    BodyState::Failed(err) => {
                        self.done = true;
                        return Some(Err(err.clone()));
                    }
                }
            }
            match tokio::time::timeout(idle_timeout, self.version.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    self.done = true;
                    return Some(Err(BodyError::Idle(idle_timeout)));
                }
            }
        }
    }
}

/// `chunks` as one `Bytes` of `len` bytes: in shared memory when it is large
/// enough to be worth `sendfile` (see [`super::shm`]), else on the heap (the
/// same `Bytes`, not a copy, when there is only one).
fn join(chunks: &[Bytes], len: u64) -> Vec<Bytes> {
    if let Some(shared) = super::shm::store(chunks, len) {
        return vec![shared];
    }
    if chunks.len() <= 1 {
        return chunks.to_vec();
    }
    let mut joined = bytes::BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
    for c in chunks {
        joined.extend_from_slice(c);
    }
    vec![joined.freeze()]
}

/// The bytes of `chunks` from byte `pos` up to the end of the chunk holding
/// it (a slice of the shared `Bytes`), or `None` at the end. Used on the
/// joined list (one chunk), so the walk is short.
fn chunk_at(chunks: &[Bytes], pos: u64) -> Option<Bytes> {
    let mut start = 0u64;
    for c in chunks {
        let end = start + c.len() as u64;
        if pos < end {
            let from = usize::try_from(pos - start).unwrap_or(0);
            return Some(if from == 0 {
                c.clone()
            } else {
                c.slice(from..)
            });
        }
        start = end;
    }
    None
}

/// A cached response: status, headers and a body that may still be growing.
#[derive(Debug)]
pub struct CachedObject {
    /// HTTP status code.
    pub status: u16,
    /// Response headers as upstream sent them (hop-by-hop headers are the
    /// caller's business).
    pub headers: HeaderMap,
    /// What the object is.
    pub kind: ObjectKind,
    /// When the headers were published; `Age` is measured from here.
    pub created: Instant,
    /// How long the object is fresh; `None` for a response shared only with the
    /// requests that waited for it and never stored.
    pub ttl: Option<Duration>,
    /// The body.
    pub body: GrowingBody,
    /// gzip of the complete body, made on the first request that accepts it
    /// (playlists only: media is already compressed).
    pub gzipped: std::sync::OnceLock<Bytes>,
}

impl CachedObject {
    /// An object whose body is still to be filled.
    pub fn new(
        status: u16,
        headers: HeaderMap,
        kind: ObjectKind,
        ttl: Option<Duration>,
        body: GrowingBody,
    ) -> CachedObject {
        CachedObject {
            status,
            headers,
            kind,
            created: Instant::now(),
            ttl,
            body,
            gzipped: std::sync::OnceLock::new(),
        }
    }

    /// Time since the headers were published.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.created)
    }

    /// Whether the object is within its TTL at `now` (and storable at all).
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.ttl.is_some_and(|ttl| self.age(now) < ttl)
    }

    /// Bytes this object costs the cache: body plus an estimate for headers and
    /// bookkeeping. Used as the moka weight.
    pub fn weight(&self) -> u64 {
        const OVERHEAD: u64 = 256;
        const PER_HEADER: u64 = 32;
        let headers: u64 = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() as u64 + value.len() as u64 + PER_HEADER)
            .sum();
        self.body.len() + headers + OVERHEAD
    }
}
