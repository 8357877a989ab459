//! Complete cache bodies in shared memory, so responses can leave by
//! `sendfile(2)`.
//!
//! A socket write from a heap buffer costs the kernel a copy per viewer
//! (`copy_from_iter` was the largest item in the edge's profile on cache
//! hits). Bytes in a memfd are page-cache pages: `sendfile` hands the socket
//! references to them, with no copy, which is how nginx serves its
//! `proxy_cache`. So a finished body of [`MIN_BYTES`] or more is copied once
//! into a memfd *slab* and handed out as a `Bytes` view of the slab's
//! read-only mapping. Every protocol reads those `Bytes` as usual; the
//! cleartext HTTP/1.1 listener's socket wrapper
//! ([`crate::listen::zerocopy`]) asks [`locate`] whether a buffer it is told to
//! write lies in a slab and, if so, sends it from the memfd instead.
//!
//! Slabs are [`SLAB_BYTES`] memfds filled by bump allocation, one
//! page-aligned range per object, never reused. When an object's last `Bytes`
//! goes, its pages are returned at once (`fallocate` punch hole), and a slab
//! is unmapped and closed when its last object goes; so memory follows the
//! cache's byte budget, and open descriptors stay at a few per GiB cached.
//!
//! This module holds the crate's only `unsafe`: mapping a slab and viewing a
//! range of it as `&[u8]`. Why that is sound is written where it is done.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use bytes::Bytes;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FallocateFlags, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// Bodies smaller than this stay on the heap: for them the extra system call
/// costs more than the copy it saves.
pub const MIN_BYTES: u64 = 16 * 1024;
/// Size of one slab. Bodies above a quarter of it stay on the heap, so one
/// large object cannot waste most of a slab.
pub const SLAB_BYTES: usize = 8 * 1024 * 1024;
/// Allocation granule: objects start on a page so each can be punched out
/// alone.
const PAGE: usize = 4096;

/// Counters for `/metrics`.
static STORED_BYTES: AtomicU64 = AtomicU64::new(0);
static SLABS: AtomicU64 = AtomicU64::new(0);
/// Set when memfd or mmap is missing or forbidden (an old kernel, a seccomp
/// filter): bodies then stay on the heap.
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Live slabs by the address of their mapping, for [`locate`].
static REGISTRY: RwLock<BTreeMap<usize, (usize, Weak<Slab>)>> = RwLock::new(BTreeMap::new());
/// The process's arena: every cache body goes here.
static ARENA: Arena = Arena::new();

/// Hands out page-aligned ranges of slabs: the slab being filled and the
/// next free offset in it.
struct Arena {
    current: Mutex<Option<(Arc<Slab>, usize)>>,
}

/// One memfd and its read-only shared mapping.
#[derive(Debug)]
pub struct Slab {
    fd: OwnedFd,
    /// Address of the mapping (kept as an integer so the type is `Send`).
    base: usize,
    len: usize,
}

impl Slab {
    fn new() -> nix::Result<Arc<Slab>> {
        let fd = memfd_create(
            c"livecdn-cache",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let len = SLAB_BYTES;
        nix::unistd::ftruncate(&fd, len as i64)?;
        // The file can never shrink below the mapping, so no read through
        // it can fault (SIGBUS) however the slab is used.
        fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK))?;
        let length = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh mapping chosen by the kernel (no address given), of
        // a file we own, at least `len` bytes long; it aliases no Rust
        // object. It is unmapped exactly once, in `Drop`.
        let base = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )?
        };
        let slab = Arc::new(Slab {
            fd,
            base: base.as_ptr() as usize,
            len,
        });
        REGISTRY
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slab.base, (slab.base + len, Arc::downgrade(&slab)));
        SLABS.fetch_add(1, Ordering::Relaxed);
        Ok(slab)
    }

    /// The memfd, for `sendfile`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // Out of the registry before the address can be reused by a new
        // mapping.
        REGISTRY
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.base);
        SLABS.fetch_sub(1, Ordering::Relaxed);
        if let Some(base) = NonNull::new(self.base as *mut c_void) {
            // SAFETY: `base..base + len` is the mapping made in `new`; no
            // `Region` (hence no `&[u8]` into it) outlives the slab, since
            // each holds an `Arc` to it.
            if let Err(e) = unsafe { munmap(base, self.len) } {
                tracing::warn!(error = %e, "munmap of a cache slab failed");
            }
        }
    }
}

/// One object's bytes in a slab: the owner behind the `Bytes` that
/// [`store`] returns.
struct Region {
    slab: Arc<Slab>,
    offset: usize,
    len: usize,
    /// `len` rounded up to whole pages: what the object occupies.
    span: usize,
}

impl AsRef<[u8]> for Region {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `offset + len <= slab.len` (checked in `store`), so the range
        // is inside the mapping, which lives as long as `self.slab`. It is
        // mapped read-only and its bytes never change after `store` wrote
        // them through the descriptor: ranges are handed out once (bump
        // allocation), the descriptor is private to this module, and the
        // range is punched out only in `Drop`, when no view of it remains.
        unsafe { std::slice::from_raw_parts((self.slab.base + self.offset) as *const u8, self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        STORED_BYTES.fetch_sub(self.span as u64, Ordering::Relaxed);
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        // Gives the pages back now rather than when the whole slab goes.
        // Pages a socket still holds (sendfile) stay alive with it.
        let _ = nix::fcntl::fallocate(self.slab.fd(), flags, self.offset as i64, self.span as i64);
    }
}

/// Copies `chunks` (`len` bytes in all) into shared memory and returns one
/// `Bytes` over them, or `None` when the body should stay on the heap (too
/// small, too large, or shared memory is unavailable).
pub fn store(chunks: &[Bytes], len: u64) -> Option<Bytes> {
    ARENA.store(chunks, len)
}

impl Arena {
    const fn new() -> Arena {
        Arena {
            current: Mutex::new(None),
        }
    }

    fn store(&self, chunks: &[Bytes], len: u64) -> Option<Bytes> {
        if len < MIN_BYTES || len > (SLAB_BYTES / 4) as u64 || DISABLED.load(Ordering::Relaxed) {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        if chunks.iter().map(Bytes::len).sum::<usize>() != len {
            return None;
        }
        let span = len.div_ceil(PAGE) * PAGE;
        let (slab, offset) = match self.reserve(span) {
            Ok(at) => at,
            // No memfd in this kernel, or forbidden (seccomp): stop trying.
            Err(e @ (Errno::ENOSYS | Errno::EPERM | Errno::EINVAL)) => {
                if !DISABLED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "shared-memory cache bodies disabled");
                }
                return None;
            }
            // Out of descriptors or memory for now: this body stays on the
            // heap, the next one tries again.
            Err(e) => {
                tracing::debug!(error = %e, "no shared-memory slab for a cache body");
                return None;
            }
        };
        STORED_BYTES.fetch_add(span as u64, Ordering::Relaxed);
        // Built before writing so a failed write still punches the range out.
        let region = Region {
            slab,
            offset,
            len,
            span,
        };
        let mut at = offset;
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                match nix::sys::uio::pwrite(region.slab.fd(), rest, at as i64) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => {
                        rest = &rest[n..];
                        at += n;
                    }
                }
            }
        }
        Some(Bytes::from_owner(region))
    }

    /// A page-aligned range of `span` bytes in the current slab, starting a new
    /// slab when it is full.
    fn reserve(&self, span: usize) -> nix::Result<(Arc<Slab>, usize)> {
        let mut arena = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((slab, next)) = arena.as_mut() {
            if *next + span <= slab.len {
                let offset = *next;
                *next += span;
                return Ok((slab.clone(), offset));
            }
        }
        let slab = Slab::new()?;
        *arena = Some((slab.clone(), span));
        Ok((slab, 0))
    }
}

/// The slab holding all of `data` and the offset of its first byte, if
/// `data` lies in one (it is part of a `Bytes` from [`store`]).
pub fn locate(data: &[u8]) -> Option<(Arc<Slab>, u64)> {
    let start = data.as_ptr() as usize;
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let (base, (end, slab)) = registry.range(..=start).next_back()?;
    if start + data.len() > *end {
        return None;
    }
    Some((slab.upgrade()?, (start - base) as u64))
}

/// Bytes of cache bodies held in shared memory (whole pages).
pub fn stored_bytes() -> u64 {
    STORED_BYTES.load(Ordering::Relaxed)
}

/// Slabs currently mapped.
pub fn slabs() -> u64 {
    SLABS.load(Ordering::Relaxed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn body(len: usize, seed: u8) -> Vec<Bytes> {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect();
        data.chunks(5000).map(Bytes::copy_from_slice).collect()
    }

    #[test]
    fn stored_bodies_read_back_and_are_located_for_sendfile() {
        let chunks = body(40_000, 7);
        let whole: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        let stored = store(&chunks, whole.len() as u64).unwrap();
        assert_eq!(stored.as_ref(), whole.as_slice());

        let (slab, offset) = locate(&stored).unwrap();
        assert_eq!(offset % PAGE as u64, 0, "objects start on a page");
        // The memfd holds the same bytes at that offset.
        let mut back = vec![0u8; whole.len()];
        let n = nix::sys::uio::pread(slab.fd(), &mut back, offset as i64).unwrap();
        assert_eq!((n, back), (whole.len(), whole.clone()));

        // A slice of the body is located too, at its own offset.
        let tail = stored.slice(1000..);
        assert_eq!(locate(&tail).unwrap().1, offset + 1000);
        // Heap memory is not.
        assert!(locate(&whole).is_none());
    }

    #[test]
    fn small_large_and_inconsistent_bodies_stay_on_the_heap() {
        let small = body(MIN_BYTES as usize - 1, 1);
        assert!(store(&small, MIN_BYTES - 1).is_none());
        let large = body(SLAB_BYTES / 4 + 1, 2);
        assert!(store(&large, (SLAB_BYTES / 4 + 1) as u64).is_none());
        let wrong_len = body(20_000, 3);
        assert!(store(&wrong_len, 30_000).is_none());
    }

    #[test]
    fn a_full_slab_is_retired_and_unmapped_when_its_objects_go() {
        // A private arena, so no other test's objects share its slabs.
        let arena = Arena::new();
        let chunks = body(SLAB_BYTES / 4, 9);
        let len = (SLAB_BYTES / 4) as u64;
        let stored: Vec<Bytes> = (0..6).map(|_| arena.store(&chunks, len).unwrap()).collect();
        let slab_of = |b: &Bytes| locate(b).unwrap().0;
        // Four quarter-slab objects fill a slab; the fifth starts another.
        assert!(Arc::ptr_eq(&slab_of(&stored[0]), &slab_of(&stored[3])));
        assert!(!Arc::ptr_eq(&slab_of(&stored[0]), &slab_of(&stored[4])));
        let first = Arc::downgrade(&slab_of(&stored[0]));
        let mut stored = stored;
        let later = stored.split_off(4);
        drop(stored);
        assert!(first.upgrade().is_none(), "retired slab still mapped");
        for b in &later {
            assert_eq!(b.as_ref(), chunks.concat().as_slice());
        }

        // A dropped object's pages are given back at once: its range of the
        // (still live) slab reads as a hole, its neighbour is intact.
        let (slab, offset) = locate(&later[0]).unwrap();
        drop(later);
        let mut back = vec![1u8; len as usize];
        nix::sys::uio::pread(slab.fd(), &mut back, offset as i64).unwrap();
        assert!(back.iter().all(|&b| b == 0), "range not punched out");
    }
}
