//! The io_uring path: a tokio-uring runtime on the disk thread, each job a
//! task on it, at most `in_flight` at once.

use crate::{blocking, read_len, Done, Job, Op, Stats};
use bytes::Bytes;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio_uring::fs::{File, OpenOptions};

/// iovecs per `writev`: below the kernel's IOV_MAX (1024) with room.
const IOVECS_PER_WRITE: usize = 512;

pub(crate) struct Ring {
    rt: tokio_uring::Runtime,
}

impl Ring {
    /// Sets up a ring and runs one operation on it: some sandboxes let
    /// `io_uring_setup` through and refuse the operations.
    pub(crate) fn new() -> io::Result<Ring> {
        let rt = tokio_uring::Runtime::new(&tokio_uring::builder())?;
        rt.block_on(async {
            let dir = std::env::temp_dir();
            tokio_uring::fs::statx(&dir).await.map(|_| ())
        })?;
        Ok(Ring { rt })
    }

    /// Runs jobs until every sender is gone and the last job is done.
    pub(crate) fn serve(self, mut rx: mpsc::Receiver<Job>, in_flight: usize, stats: Arc<Stats>) {
        let in_flight = in_flight.clamp(1, Semaphore::MAX_PERMITS);
        self.rt.block_on(async move {
            let slots = Arc::new(Semaphore::new(in_flight));
            while let Some(job) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let stats = stats.clone();
                tokio_uring::spawn(async move {
                    let result = execute(&job.op).await.map_err(|e| job.op.error(e));
                    stats.count(&result);
                    let _ = job.reply.send(result);
                    drop(slot);
                });
            }
            // Every slot back: every spawned job has answered.
            let _ = slots.acquire_many(in_flight as u32).await;
        });
    }
}

async fn execute(op: &Op) -> io::Result<Done> {
    match op {
        Op::Write { path, chunks } => write(path, chunks).await,
        Op::Append { path, data } => {
            // O_APPEND: the kernel appends whatever offset the write names.
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .await?;
            let (res, _) = f.write_all_at(data.clone(), 0).await;
            let closed = f.close().await;
            res?;
            closed?;
            Ok(Done::Wrote(data.len() as u64))
        }
        Op::Read { path, offset, len } => {
            let f = File::open(path).await?;
            let size = f.statx().await?.stx_size;
            let want = read_len(size, *offset, *len);
            let result = match want {
                0 => Ok(Bytes::new()),
                n => {
                    let buf = Vec::with_capacity(n as usize);
                    let (res, buf) = f.read_exact_at(buf, *offset).await;
                    res.map(|()| Bytes::from(buf))
                }
            };
            let closed = f.close().await;
            let bytes = result?;
            closed?;
            Ok(Done::Read(bytes))
        }
        Op::RemoveFile { path } => {
            tokio_uring::fs::remove_file(path).await?;
            Ok(Done::Unit)
        }
        // No io_uring opcode walks a tree: the blocking pool of the ring's
        // own runtime does, off the ring's thread.
        Op::RemoveDirAll { path } => {
            let path = path.clone();
            let job = Op::RemoveDirAll { path };
            tokio::task::spawn_blocking(move || blocking(&job))
                .await
                .map_err(io::Error::other)?
        }
    }
}

async fn write(path: &Path, chunks: &[Bytes]) -> io::Result<Done> {
    if let Some(dir) = path.parent() {
        tokio_uring::fs::create_dir_all(dir).await?;
    }
    let f = File::create(path).await?;
    let result = write_chunks(&f, chunks).await;
    let closed = f.close().await;
    let n = result?;
    closed?;
    Ok(Done::Wrote(n))
}

/// `writev`s until every chunk is written; the bytes written. A short write
/// (a file system filling up) goes on from where it stopped; a write of
/// nothing is an error. (tokio-uring's own `writev_at_all` panics on a
/// short write, so the loop is here.)
async fn write_chunks(f: &File, chunks: &[Bytes]) -> io::Result<u64> {
    let mut pending: std::collections::VecDeque<Bytes> =
        chunks.iter().filter(|c| !c.is_empty()).cloned().collect();
    let mut pos = 0u64;
    while !pending.is_empty() {
        let batch: Vec<Bytes> = pending.iter().take(IOVECS_PER_WRITE).cloned().collect();
        let (res, _) = f.writev_at(batch, pos).await;
        let mut n = res?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the file system took no bytes",
            ));
        }
        pos += n as u64;
        while n > 0 {
            let Some(front) = pending.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                pending.pop_front();
            } else {
                *front = front.slice(n..);
                n = 0;
            }
        }
    }
    Ok(pos)
}
