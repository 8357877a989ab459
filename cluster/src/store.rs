//! The Redis side: one multiplexed connection (reconnecting, lazily
//! opened, so a node starts while Redis is down) and the scripts.

use crate::entry::{stream_key, OriginEntry};
use crate::numbering::{numbering_key, Report, REPORT_TTL};
use crate::ClusterError;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// Takes or renews a stream's entry: written when there is none, when it
/// is this node's, or when this node's publisher outranks the holder's
/// (a higher rank, or the same rank and a later attach). Returns `{1}`
/// when this node holds it afterwards, `{0}` when not.
///
/// With a numbering report (ARGV[7], the reporting hub, not empty) the
/// report is written beside the entry (KEYS[2], stamped with Redis's
/// clock). Unless ARGV[12] is `1`, a report another hub wrote stops the
/// claim first: the script answers `{2, owner, next, disc, gen, target,
/// at, now}` so that the hub renumbers past it before edges can find it
/// ([`crate::numbering`]), then claims again with ARGV[12] `1`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local node = redis.call('HGET', KEYS[1], 'node')
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or '0') or 0
local rank = tonumber(redis.call('HGET', KEYS[1], 'rank') or '1') or 1
local my_since, my_rank = tonumber(ARGV[2]), tonumber(ARGV[6])
if not (node == false or node == ARGV[1] or rank < my_rank or (rank == my_rank and since < my_since)) then
  return {0}
end
if ARGV[7] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local prev = redis.call('HMGET', KEYS[2], 'owner', 'next', 'disc', 'gen', 'target', 'at')
  if ARGV[12] ~= '1' and prev[1] and prev[1] ~= ARGV[7] then
    return {2, prev[1], prev[2] or '', prev[3] or '', prev[4] or '', prev[5] or '', prev[6] or '', tostring(now)}
  end
  redis.call('HSET', KEYS[2], 'owner', ARGV[7], 'next', ARGV[8], 'disc', ARGV[9], 'gen', ARGV[10], 'target', ARGV[11], 'at', now)
  redis.call('PEXPIRE', KEYS[2], ARGV[13])
end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'since', ARGV[2], 'http', ARGV[3], 'push', ARGV[4], 'rank', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1}",
    )
});

/// A numbered claim's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node holds the entry (and its report is written).
    Held,
    /// Another origin's publisher holds it.
    Lost,
    /// The entry is this node's to take, but another hub numbered the
    /// stream last: renumber past `report` (at Redis time `now_ms`), then
    /// claim again with `renumbered`.
    Renumber { report: Report, now_ms: u64 },
}

/// Deletes a stream's entry if this node holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0",
    )
});

/// Adds or renews a member of a live set, scored by its expiry in Redis's
/// clock, and drops expired members.
static JOIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1",
    )
});

/// The members of a live set whose lease has not run out.
static LIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')",
    )
});

/// A handle on the cluster's Redis; cheap to clone.
#[derive(Clone)]
pub struct Store {
    cmd: ConnectionManager,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store {
    /// A store on `url` (`redis://HOST:PORT[/DB]`); fails only on a
    /// malformed URL.
    pub fn open(url: &str) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url)?;
        Ok(Self {
            cmd: crate::connection::lazy_manager(&client)?,
        })
    }

    /// Takes or renews `stream`'s entry for `entry.node` for `lease`,
    /// leaving the numbering report alone; whether this node holds it now.
    pub async fn claim(
        &self,
        stream: &str,
        entry: &OriginEntry,
        lease: Duration,
    ) -> Result<bool, ClusterError> {
        let reply = self.run_claim(stream, entry, lease, None, false).await?;
        Ok(reply.first().map(String::as_str) == Some("1"))
    }

    /// Takes or renews `stream`'s entry and writes `report` beside it
    /// (its `at` is Redis's clock). Unless `renumbered`, a report another
    /// hub wrote comes back first as [`Claim::Renumber`].
    pub async fn claim_numbered(
        &self,
        stream: &str,
        entry: &OriginEntry,
        lease: Duration,
        report: &Report,
        renumbered: bool,
    ) -> Result<Claim, ClusterError> {
        let reply = self
            .run_claim(stream, entry, lease, Some(report), renumbered)
            .await?;
        match reply.first().map(String::as_str) {
            Some("1") => Ok(Claim::Held),
            Some("0") => Ok(Claim::Lost),
            Some("2") if reply.len() == 8 => {
                let names = ["owner", "next", "disc", "gen", "target", "at"];
                let get = |k: &str| {
                    let i = names.iter().position(|n| *n == k)?;
                    reply.get(i + 1).map(String::as_str)
                };
                let now_ms = reply[7].parse().ok();
                match (Report::from_fields(get), now_ms) {
                    (Some(report), Some(now_ms)) => Ok(Claim::Renumber { report, now_ms }),
                    // A report that does not parse is no report: claim
                    // over it.
                    _ => Box::pin(self.claim_numbered(stream, entry, lease, report, true)).await,
                }
            }
            _ => Err(ClusterError::Reply(format!("{reply:?}"))),
        }
    }

    async fn run_claim(
        &self,
        stream: &str,
        entry: &OriginEntry,
        lease: Duration,
        report: Option<&Report>,
        renumbered: bool,
    ) -> Result<Vec<String>, ClusterError> {
        let mut con = self.cmd.clone();
        let mut call = CLAIM.key(stream_key(stream));
        call.key(numbering_key(stream))
            .arg(&entry.node)
            .arg(entry.since_ms)
            .arg(&entry.http)
            .arg(entry.push.as_deref().unwrap_or(""))
            .arg(millis(lease))
            .arg(entry.rank);
        match report {
            Some(r) => call
                .arg(&r.owner)
                .arg(r.position.next_msn)
                .arg(r.position.discontinuities)
                .arg(r.position.init_gen)
                .arg(r.target_ms),
            None => call.arg("").arg(0).arg(0).arg(0).arg(0),
        };
        let reply: Vec<String> = call
            .arg(if renumbered { "1" } else { "0" })
            .arg(millis(REPORT_TTL))
            .invoke_async(&mut con)
            .await?;
        Ok(reply)
    }

    /// The numbering report of `stream`, if any.
    pub async fn report(&self, stream: &str) -> Result<Option<Report>, ClusterError> {
        let mut con = self.cmd.clone();
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(numbering_key(stream))
            .query_async(&mut con)
            .await?;
        Ok(Report::from_fields(|k| h.get(k).map(String::as_str)))
    }

    /// Deletes `stream`'s entry if `node` holds it.
    pub async fn release(&self, stream: &str, node: &str) -> Result<bool, ClusterError> {
        let mut con = self.cmd.clone();
        let n: i64 = RELEASE
            .key(stream_key(stream))
            .arg(node)
            .invoke_async(&mut con)
            .await?;
        Ok(n == 1)
    }

    /// The entries of `streams`, in order, in one round trip.
    pub async fn lookup(&self, streams: &[&str]) -> Result<Vec<Option<OriginEntry>>, ClusterError> {
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for s in streams {
            pipe.hgetall(stream_key(s));
        }
        let mut con = self.cmd.clone();
        let replies: Vec<HashMap<String, String>> = pipe.query_async(&mut con).await?;
        if replies.len() != streams.len() {
            return Err(ClusterError::Reply(format!(
                "{} replies for {} lookups",
                replies.len(),
                streams.len()
            )));
        }
        Ok(replies
            .iter()
            .map(|h| OriginEntry::from_fields(|k| h.get(k).map(String::as_str)))
            .collect())
    }

    /// A round trip.
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let mut con = self.cmd.clone();
        let _: String = redis::cmd("PING").query_async(&mut con).await?;
        Ok(())
    }

    /// Adds or renews `member` in the live set `set` for `lease`.
    pub async fn join(&self, set: &str, member: &str, lease: Duration) -> Result<(), ClusterError> {
        let mut con = self.cmd.clone();
        let _: i64 = JOIN
            .key(set)
            .arg(member)
            .arg(millis(lease))
            .invoke_async(&mut con)
            .await?;
        Ok(())
    }

    /// Removes `member` from `set` (a clean shutdown).
    pub async fn leave(&self, set: &str, member: &str) -> Result<(), ClusterError> {
        let mut con = self.cmd.clone();
        let _: i64 = redis::cmd("ZREM")
            .arg(set)
            .arg(member)
            .query_async(&mut con)
            .await?;
        Ok(())
    }

    /// The live members of `set`.
    pub async fn live(&self, set: &str) -> Result<Vec<String>, ClusterError> {
        let mut con = self.cmd.clone();
        let v: Value = LIVE.key(set).invoke_async(&mut con).await?;
        match v {
            Value::Array(items) => Ok(items
                .into_iter()
                .filter_map(|i| match i {
                    Value::BulkString(b) => String::from_utf8(b).ok(),
                    Value::SimpleString(s) => Some(s),
                    _ => None,
                })
                .collect()),
            other => Err(ClusterError::Reply(format!("{other:?}"))),
        }
    }
}
