//! Writing a subscription's objects: each on its own unidirectional
//! stream. A whole object is written and finished by one task; a part
//! still being made ([`Stage::First`]) keeps its stream open in a task of
//! its own, which writes the chunks later polls add ([`Stage::More`]) as
//! they come and finishes at [`Stage::Last`]. One part per rendition is
//! open at a time; a newer one, a full queue or a silent tracker ends the
//! older stream with a reset, so the edge drops it and pulls the part if a
//! viewer asks.

use super::tracker::{Outgoing, Stage};
use bytes::Bytes;
use livecdn_shared::push::{self, Message, ObjectHeader, WireError};
use quinn::{Connection, SendStream, VarInt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// One write must finish within this time, else its stream is reset.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The chunks of one open part waiting for its writer: a frame each, so a
/// part of several seconds fits; an edge slower than that loses the part.
const OPEN_QUEUE: usize = 256;
/// Reset code of an abandoned stream (what the edge sees; not an error of
/// the connection).
const RESET: u32 = 0;

#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("open: {0}")]
    Open(#[from] quinn::ConnectionError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("encode: {0}")]
    Encode(#[from] WireError),
    #[error("timed out")]
    Timeout,
    #[error("stream closed")]
    Closed(#[from] quinn::ClosedStream),
    #[error("the part was abandoned before it closed")]
    Abandoned,
}

/// The later chunks of an open part, and whether they end it.
type Piece = (Vec<Bytes>, bool);

/// One subscription's writers.
pub(super) struct Sender {
    conn: Connection,
    in_flight: Arc<Semaphore>,
    tasks: JoinSet<()>,
    /// The open part's writer, by rendition (its path up to the file name).
    open: HashMap<String, (String, mpsc::Sender<Piece>)>,
}

impl Sender {
    pub(super) fn new(conn: Connection, in_flight: Arc<Semaphore>) -> Self {
        Self {
            conn,
            in_flight,
            tasks: JoinSet::new(),
            open: HashMap::new(),
        }
    }

    /// Sends `object` (waiting for an in-flight slot when it needs a new
    /// stream). False once the connection is gone.
    pub(super) async fn send(&mut self, object: Outgoing) -> bool {
        let Outgoing {
            header,
            body,
            stage,
        } = object;
        let rendition = header
            .path
            .rsplit_once('/')
            .map_or(String::new(), |(r, _)| r.to_string());
        match stage {
            Stage::More | Stage::Last => {
                let last = stage == Stage::Last;
                let Some((path, tx)) = self.open.get(&rendition) else {
                    return true;
                };
                if *path == header.path && tx.try_send((body, last)).is_ok() && !last {
                    return true;
                }
                // Ended, or lost: a writer that misses a piece must not
                // finish its part short, so it is dropped (and resets).
                self.open.remove(&rendition);
                true
            }
            Stage::Whole | Stage::First => {
                let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                    return false;
                };
                let conn = self.conn.clone();
                let path = header.path.clone();
                if stage == Stage::Whole {
                    self.tasks.spawn(async move {
                        if let Err(e) = whole(&conn, header, body).await {
                            tracing::debug!(%path, error = %e, "push send failed");
                        }
                        drop(permit);
                    });
                } else {
                    let (tx, rx) = mpsc::channel(OPEN_QUEUE);
                    // A newer part of the rendition replaces (and ends) an older one.
                    self.open.insert(rendition, (path.clone(), tx));
                    self.tasks.spawn(async move {
                        if let Err(e) = open(&conn, header, body, rx, permit).await {
                            tracing::debug!(%path, error = %e, "push send failed");
                        }
                    });
                }
                while self.tasks.try_join_next().is_some() {}
                true
            }
        }
    }

    /// Waits for every write started so far; open parts are ended first.
    pub(super) async fn drain(&mut self) {
        self.open.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn head(header: ObjectHeader) -> Result<Bytes, SendError> {
    let mut head = Vec::with_capacity(64);
    push::encode(&Message::Object(header), &mut head)?;
    Ok(Bytes::from(head))
}

async fn write(stream: &mut SendStream, mut chunks: Vec<Bytes>) -> Result<(), SendError> {
    match tokio::time::timeout(SEND_TIMEOUT, stream.write_all_chunks(&mut chunks)).await {
        Ok(r) => Ok(r?),
        Err(_) => {
            let _ = stream.reset(VarInt::from_u32(RESET));
            Err(SendError::Timeout)
        }
    }
}

/// One object on its own unidirectional stream: header frame, then body.
async fn whole(conn: &Connection, header: ObjectHeader, body: Vec<Bytes>) -> Result<(), SendError> {
    let urgent = !matches!(header.kind, push::PushKind::Segment);
    let chunks: Vec<Bytes> = std::iter::once(head(header)?).chain(body).collect();
    let mut stream = conn.open_uni().await?;
    // Parts and playlists before segments: a viewer waits on those.
    let _ = stream.set_priority(if urgent { 1 } else { 0 });
    write(&mut stream, chunks).await?;
    stream.finish()?;
    Ok(())
}

/// A part while it is made: its stream stays open for the chunks that
/// follow, and ends with the last (or is reset if the part is abandoned).
async fn open(
    conn: &Connection,
    header: ObjectHeader,
    body: Vec<Bytes>,
    mut rx: mpsc::Receiver<Piece>,
    _permit: OwnedSemaphorePermit,
) -> Result<(), SendError> {
    let chunks: Vec<Bytes> = std::iter::once(head(header)?).chain(body).collect();
    let mut stream = conn.open_uni().await?;
    let _ = stream.set_priority(1);
    write(&mut stream, chunks).await?;
    loop {
        match tokio::time::timeout(SEND_TIMEOUT, rx.recv()).await {
            Ok(Some((chunks, last))) => {
                write(&mut stream, chunks).await?;
                if last {
                    stream.finish()?;
                    return Ok(());
                }
            }
            Ok(None) | Err(_) => {
                let _ = stream.reset(VarInt::from_u32(RESET));
                return Err(SendError::Abandoned);
            }
        }
    }
}

/// A purge of `stream`, alone on a unidirectional stream.
pub(super) async fn purge(conn: &Connection, stream: &str) -> Result<(), SendError> {
    let mut frame = Vec::with_capacity(16);
    push::encode(
        &Message::Purge {
            stream: stream.to_string(),
        },
        &mut frame,
    )?;
    let mut uni = conn.open_uni().await?;
    let _ = uni.set_priority(1);
    write(&mut uni, vec![Bytes::from(frame)]).await?;
    uni.finish()?;
    Ok(())
}
