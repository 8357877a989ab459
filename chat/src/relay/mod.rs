//! How a room's entries reach every edge: through Redis Streams when
//! `chat.redis` is set ([`redis::RedisRelay`]), in process otherwise
//! ([`local::LocalRelay`]). Both give entries ids in log order and deliver
//! them to [`crate::rooms::Room::apply`] in that order; the Redis one also
//! keeps bans and viewer counts where every edge sees them.

pub mod local;
pub mod redis;

use crate::entry::EntryKind;
use crate::metrics::ChatMetrics;
use crate::rooms::{Room, Rooms};
use std::sync::Arc;

/// Why the relay could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
}

pub enum Relay {
    Local(local::LocalRelay),
    Redis(redis::RedisRelay),
}

impl Relay {
    /// Logs an entry in `stream`'s room; every edge with the room open
    /// applies it.
    pub async fn publish(
        &self,
        rooms: &Rooms,
        stream: &str,
        kind: EntryKind,
    ) -> Result<(), RelayError> {
        match self {
            Relay::Local(l) => {
                l.publish(rooms, stream, kind);
                Ok(())
            }
            Relay::Redis(r) => r.publish(stream, kind).await,
        }
    }

    /// Loads a newly opened room's tail and bans into its state.
    pub async fn open(&self, room: &Room) -> Result<(), RelayError> {
        match self {
            Relay::Local(l) => {
                l.open(room);
                Ok(())
            }
            Relay::Redis(r) => r.open(room).await,
        }
    }

    /// The stream's viewers on every edge, given this edge's `local`.
    pub async fn viewers(&self, stream: &str, local: u64) -> Result<u64, RelayError> {
        match self {
            Relay::Local(_) => Ok(local),
            Relay::Redis(r) => r.viewers(stream, local).await,
        }
    }

    /// Runs what the relay needs in the background (the Redis reader)
    /// until `stop`.
    pub async fn run(
        self: Arc<Self>,
        rooms: Arc<Rooms>,
        metrics: Arc<ChatMetrics>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        match &*self {
            Relay::Local(_) => {}
            Relay::Redis(r) => r.read_loop(&rooms, &metrics, stop).await,
        }
    }
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
