//! The Redis relay: one Redis Stream per room (`livecdn:chat:STREAM`),
//! written with `XADD MAXLEN ~ retain` (Redis assigns the ids, so every
//! edge sees one order) and read by one task per edge with `XREAD BLOCK`
//! over all the rooms open on that edge, each from the last id it applied.
//! Why Streams and not pub/sub: pub/sub is at-most-once, so an edge that
//! blips loses messages; a Stream lets it resume from its last id, and its
//! tail is the history a joining client gets.
//!
//! Beside each room's Stream: `livecdn:chat:STREAM:bans` (hash: user ->
//! until, empty for no end), so a room opened later still knows bans older
//! than its tail, and `livecdn:chat:STREAM:viewers` (hash: node ->
//! `COUNT:EXPIRES_MS`), where each edge writes its viewer count and sums
//! the others' fresh ones.
//!
//! When the room set changes while the reader blocks, the reader wakes
//! itself with `CLIENT UNBLOCK` from the command connection. When Redis
//! goes away, sends fail at once (the sender is told, the metric counts
//! it) and the reader reconnects with a capped backoff, resuming every
//! room from its last id: nothing logged while it was away is skipped.

use super::{now_ms, RelayError};
use crate::entry::{Entry, EntryKind};
use crate::id::EntryId;
use crate::metrics::ChatMetrics;
use crate::rooms::{Room, Rooms};
use livecdn_cluster::connection::{lazy_manager, BACKOFF_MAX, COMMAND_TIMEOUT};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{
    StreamId, StreamMaxlen, StreamRangeReply, StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, AsyncConnectionConfig, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one `XREAD` blocks when nothing comes.
const BLOCK: Duration = Duration::from_secs(5);
/// Entries one `XREAD` returns at most.
const READ_COUNT: usize = 1000;
/// The reader's first reconnect backoff (doubling up to the cluster's
/// `BACKOFF_MAX`).
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// A node's viewer count is trusted this long after it wrote it.
const VIEWERS_FRESH_MS: u64 = 10_000;

fn key(stream: &str) -> String {
    format!("livecdn:chat:{stream}")
}

fn bans_key(stream: &str) -> String {
    format!("livecdn:chat:{stream}:bans")
}

fn viewers_key(stream: &str) -> String {
    format!("livecdn:chat:{stream}:viewers")
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn entry(raw: &StreamId) -> Option<Entry> {
    let id: EntryId = raw.id.parse().ok()?;
    Entry::from_fields(id, |k| raw.map.get(k).and_then(text))
}

pub struct RedisRelay {
    client: redis::Client,
    cmd: ConnectionManager,
    node: String,
    retain: usize,
    history: usize,
}

impl RedisRelay {
    /// A relay on `url` (`redis://HOST:PORT[/DB]`). Connects lazily: an
    /// edge starts while Redis is down and chat works once it is up.
    pub fn new(url: &str, node: String, retain: usize, history: usize) -> Result<Self, RelayError> {
        let client = redis::Client::open(url)?;
        let cmd = lazy_manager(&client)?;
        Ok(Self {
            client,
            cmd,
            node,
            retain: retain.max(history).max(1),
            history,
        })
    }

    pub async fn publish(&self, stream: &str, kind: EntryKind) -> Result<(), RelayError> {
        let mut con = self.cmd.clone();
        match &kind {
            EntryKind::Ban { user, until } => {
                let until = until.map_or_else(String::new, |u| u.to_string());
                let _: () = con.hset(bans_key(stream), user, until).await?;
            }
            EntryKind::Unban { user } => {
                let _: () = con.hdel(bans_key(stream), user).await?;
            }
            _ => {}
        }
        let fields = kind.fields();
        let _: Option<String> = con
            .xadd_maxlen(key(stream), StreamMaxlen::Approx(self.retain), "*", &fields)
            .await?;
        Ok(())
    }

    pub async fn open(&self, room: &Room) -> Result<(), RelayError> {
        let mut con = self.cmd.clone();
        let stream = &room.stream;
        let tail: StreamRangeReply = con
            .xrevrange_count(key(stream), "+", "-", self.history.max(1))
            .await?;
        let bans: HashMap<String, String> = con.hgetall(bans_key(stream)).await?;
        let now = now_ms() / 1000;
        let bans = bans
            .into_iter()
            .filter_map(|(user, until)| match until.as_str() {
                "" => Some((user, None)),
                t => t.parse().ok().map(|t| (user, Some(t))),
            })
            .collect();
        let newest = tail.ids.first().and_then(|r| r.id.parse().ok());
        let mut entries: Vec<Entry> = tail.ids.iter().rev().filter_map(entry).collect();
        // A room with no history shown still continues after its newest
        // entry.
        let keep = entries.len().saturating_sub(self.history);
        entries.drain(..keep);
        let mut state = room.state();
        state.load(entries, bans, now);
        if let Some(newest) = newest {
            state.skip_to(newest);
        }
        Ok(())
    }

    /// Writes this node's viewer count for `stream` and sums every node's
    /// fresh one.
    pub async fn viewers(&self, stream: &str, local: u64) -> Result<u64, RelayError> {
        let mut con = self.cmd.clone();
        let key = viewers_key(stream);
        let now = now_ms();
        let (counts,): (HashMap<String, String>,) = redis::pipe()
            .hset(
                &key,
                &self.node,
                format!("{local}:{}", now + VIEWERS_FRESH_MS),
            )
            .ignore()
            .pexpire(
                &key,
                i64::try_from(VIEWERS_FRESH_MS * 3).unwrap_or(i64::MAX),
            )
            .ignore()
            .hgetall(&key)
            .query_async(&mut con)
            .await?;
        Ok(counts
            .values()
            .filter_map(|v| {
                let (n, until) = v.split_once(':')?;
                (until.parse::<u64>().ok()? > now).then_some(())?;
                n.parse::<u64>().ok()
            })
            .sum())
    }

    async fn connect_reader(&self) -> Result<(MultiplexedConnection, i64), RelayError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(BLOCK + COMMAND_TIMEOUT));
        let mut con = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut con).await?;
        Ok((con, id))
    }

    /// Reads every open room's new entries and applies them, until `stop`.
    pub async fn read_loop(&self, rooms: &Rooms, metrics: &ChatMetrics, stop: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        let mut was_up = true;
        metrics.relay_up.store(1, Ordering::Relaxed);
        loop {
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.read_until_error(rooms, &stop, &mut backoff, &mut was_up, metrics) => r,
            };
            let Err(e) = result else { return };
            ChatMetrics::add(&metrics.relay_errors, 1);
            metrics.relay_up.store(0, Ordering::Relaxed);
            if was_up {
                tracing::warn!(error = %e, "chat relay: redis unreachable; messages are refused until it is back");
                was_up = false;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn read_until_error(
        &self,
        rooms: &Rooms,
        stop: &CancellationToken,
        backoff: &mut Duration,
        was_up: &mut bool,
        metrics: &ChatMetrics,
    ) -> Result<(), RelayError> {
        let (mut con, client_id) = self.connect_reader().await?;
        *backoff = BACKOFF_MIN;
        metrics.relay_up.store(1, Ordering::Relaxed);
        if !*was_up {
            tracing::info!("chat relay: redis reachable again; rooms resume from their last ids");
            *was_up = true;
        }
        let block_ms = usize::try_from(BLOCK.as_millis()).unwrap_or(5000);
        let options = StreamReadOptions::default()
            .block(block_ms)
            .count(READ_COUNT);
        loop {
            let changed = rooms.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let cursors = rooms.cursors();
            if cursors.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = changed => continue,
                }
            }
            let keys: Vec<String> = cursors.iter().map(|(s, _)| key(s)).collect();
            let ids: Vec<String> = cursors.iter().map(|(_, id)| id.to_string()).collect();
            let read = con.xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &options);
            tokio::pin!(read);
            let reply = tokio::select! {
                r = &mut read => r?,
                _ = changed => {
                    // Wake the blocked read so the next one covers the new
                    // set; what it returns is applied all the same.
                    let mut cmd = self.cmd.clone();
                    let _: Result<i64, _> = redis::cmd("CLIENT")
                        .arg("UNBLOCK")
                        .arg(client_id)
                        .query_async(&mut cmd)
                        .await;
                    read.await?
                }
                _ = stop.cancelled() => return Ok(()),
            };
            let now = now_ms() / 1000;
            for stream_key in reply.map(|r| r.keys).unwrap_or_default() {
                let Some(stream) = stream_key.key.strip_prefix("livecdn:chat:") else {
                    continue;
                };
                let Some(room) = rooms.get(stream) else {
                    continue;
                };
                let entries: Vec<Entry> = stream_key.ids.iter().filter_map(entry).collect();
                let read_to = stream_key.ids.last().and_then(|r| r.id.parse().ok());
                room.apply(&entries, read_to, now);
            }
        }
    }
}
