//! Channels and stream keys in SQLite (rusqlite, the library bundled).
//!
//! Synchronous and short: every call is one statement or one transaction
//! on an indexed table, under a mutex. Async callers go through
//! [`super::Control`], which runs them on the blocking pool. The schema is
//! `origin/migrations/*.sql`, applied in order at open (the file's
//! `user_version` says how far it is), so an old database is brought up to
//! date and a newer one than this binary knows is refused.

use super::model::{Channel, ChannelPatch, KeyRecord, LatencyMode, NewChannel, NewKey};
use super::secret;
use livecdn_shared::config::LadderChoice;
use rusqlite::{params, Connection, OptionalExtension, Row};
use rusqlite_migration::{Migrations, M};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The schema, oldest first. Append; never edit one that has shipped.
const MIGRATIONS: &[M<'static>] = &[M::up(include_str!("../../migrations/0001_channels.sql"))];

/// What went wrong with the database or a request against it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("schema migration: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("channel {0:?} already exists")]
    Exists(String),
    #[error("no channel {0:?}")]
    NoChannel(String),
    #[error("no key {0:?} on this channel")]
    NoKey(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// What a presented key turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// Valid now: publishes to `channel`.
    Active {
        channel: Channel,
        key_id: String,
    },
    Expired {
        key_id: String,
    },
    Revoked {
        key_id: String,
    },
    /// Not a key of any channel.
    Unknown,
}

#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // WAL: readers do not block the writer; the file survives a crash
        // at any point with every committed change.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::init(conn)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Every change is one transaction: a panic cannot leave one half
        // applied, so a poisoned lock is still a consistent database.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a channel and its first key (valid for `ttl`).
    pub fn create(
        &self,
        new: &NewChannel,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(Channel, NewKey), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO channels (name, latency_mode, ladder, recording, authorized, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (name) DO NOTHING",
            params![
                new.name,
                new.latency_mode.as_str(),
                new.ladder.as_str(),
                new.recording.unwrap_or(false),
                new.authorized,
                now_ms as i64
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists(new.name.clone()));
        }
        let key = insert_key(&tx, &new.name, now_ms, ttl)?;
        let channel =
            get(&tx, &new.name)?.ok_or_else(|| StoreError::NoChannel(new.name.clone()))?;
        tx.commit()?;
        Ok((channel, key))
    }

    pub fn list(&self) -> Result<Vec<Channel>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("{SELECT_CHANNEL} ORDER BY name"))?;
        let rows = stmt.query_map([], |r| Ok(row_channel(r)))?;
        rows.map(|r| r.map_err(StoreError::from).and_then(|c| c))
            .collect()
    }

    pub fn get(&self, name: &str) -> Result<Option<Channel>, StoreError> {
        get(&self.conn(), name)
    }

    /// Changes the fields `patch` names.
    pub fn update(
        &self,
        name: &str,
        patch: &ChannelPatch,
        now_ms: u64,
    ) -> Result<Channel, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut c = get(&tx, name)?.ok_or_else(|| StoreError::NoChannel(name.to_string()))?;
        c.latency_mode = patch.latency_mode.unwrap_or(c.latency_mode);
        c.ladder = patch.ladder.unwrap_or(c.ladder);
        c.recording = patch.recording.unwrap_or(c.recording);
        c.authorized = patch.authorized.unwrap_or(c.authorized);
        c.updated_at = now_ms;
        tx.execute(
            "UPDATE channels SET latency_mode = ?2, ladder = ?3, recording = ?4, authorized = ?5, updated_at = ?6
             WHERE name = ?1",
            params![
                name,
                c.latency_mode.as_str(),
                c.ladder.as_str(),
                c.recording,
                c.authorized,
                now_ms as i64
            ],
        )?;
        tx.commit()?;
        Ok(c)
    }

    /// Deletes a channel and its keys; false if there was none.
    pub fn delete(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM channels WHERE name = ?1", [name])?
            > 0)
    }

    /// Every key of the channel, newest first.
    pub fn keys(&self, name: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.conn();
        if get(&conn, name)?.is_none() {
            return Err(StoreError::NoChannel(name.to_string()));
        }
        let mut stmt = conn.prepare_cached(
            "SELECT id, channel, created_at, expires_at, revoked_at FROM stream_keys
             WHERE channel = ?1 ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([name], |r| Ok(row_key(r)))?;
        rows.map(|r| r.map_err(StoreError::from).and_then(|c| c))
            .collect()
    }

    /// A new key for the channel; every other key still usable is revoked
    /// (ids returned). A publish already running is not touched here.
    pub fn rotate(
        &self,
        name: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(NewKey, Vec<String>), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if get(&tx, name)?.is_none() {
            return Err(StoreError::NoChannel(name.to_string()));
        }
        let revoked = revoke_usable(&tx, name, now_ms)?;
        let key = insert_key(&tx, name, now_ms, ttl)?;
        tx.commit()?;
        Ok((key, revoked))
    }

    /// Revokes every key of the channel still usable; their ids.
    pub fn revoke_all(&self, name: &str, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        if get(&conn, name)?.is_none() {
            return Err(StoreError::NoChannel(name.to_string()));
        }
        revoke_usable(&conn, name, now_ms)
    }

    /// Revokes one key (again is fine: the first time is kept).
    pub fn revoke(&self, name: &str, id: &str, now_ms: u64) -> Result<KeyRecord, StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE stream_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE channel = ?1 AND id = ?2",
            params![name, id, now_ms as i64],
        )?;
        conn.query_row(
            "SELECT id, channel, created_at, expires_at, revoked_at FROM stream_keys
             WHERE channel = ?1 AND id = ?2",
            params![name, id],
            |r| Ok(row_key(r)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NoKey(id.to_string()))?
    }

    /// What the presented key `value` is at `now_ms`.
    pub fn find_key(&self, value: &str, now_ms: u64) -> Result<KeyLookup, StoreError> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT id, channel, created_at, expires_at, revoked_at FROM stream_keys
                 WHERE key_sha256 = ?1",
                [secret::digest(value)],
                |r| Ok(row_key(r)),
            )
            .optional()?;
        let Some(key) = found.transpose()? else {
            return Ok(KeyLookup::Unknown);
        };
        if key.revoked_at.is_some() {
            return Ok(KeyLookup::Revoked { key_id: key.id });
        }
        if now_ms >= key.expires_at {
            return Ok(KeyLookup::Expired { key_id: key.id });
        }
        let channel = get(&conn, &key.channel)?.ok_or(StoreError::NoChannel(key.channel))?;
        Ok(KeyLookup::Active {
            channel,
            key_id: key.id,
        })
    }
}

const SELECT_CHANNEL: &str =
    "SELECT name, latency_mode, ladder, recording, authorized, created_at, updated_at FROM channels";

fn get(conn: &Connection, name: &str) -> Result<Option<Channel>, StoreError> {
    conn.query_row(&format!("{SELECT_CHANNEL} WHERE name = ?1"), [name], |r| {
        Ok(row_channel(r))
    })
    .optional()?
    .transpose()
}

fn revoke_usable(conn: &Connection, name: &str, now_ms: u64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE stream_keys SET revoked_at = ?2
         WHERE channel = ?1 AND revoked_at IS NULL AND expires_at > ?2 RETURNING id",
    )?;
    let rows = stmt.query_map(params![name, now_ms as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn insert_key(
    conn: &Connection,
    channel: &str,
    now_ms: u64,
    ttl: Duration,
) -> Result<NewKey, StoreError> {
    let value = secret::new_key();
    let record = KeyRecord {
        id: secret::new_id(),
        channel: channel.to_string(),
        created_at: now_ms,
        expires_at: now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        revoked_at: None,
    };
    conn.execute(
        "INSERT INTO stream_keys (id, channel, key_sha256, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            record.id,
            channel,
            secret::digest(&value),
            record.created_at as i64,
            record.expires_at.min(i64::MAX as u64) as i64
        ],
    )?;
    Ok(NewKey { record, value })
}

/// A channel row; a value the schema's CHECKs should have kept out is
/// reported, not guessed at.
fn row_channel(r: &Row<'_>) -> Result<Channel, StoreError> {
    let mode: String = r.get(1)?;
    let ladder: String = r.get(2)?;
    Ok(Channel {
        name: r.get(0)?,
        latency_mode: LatencyMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("latency_mode {mode:?}")))?,
        ladder: match ladder.as_str() {
            "full" => LadderChoice::Full,
            "source" => LadderChoice::SourceOnly,
            other => return Err(StoreError::Corrupt(format!("ladder {other:?}"))),
        },
        recording: r.get(3)?,
        authorized: r.get(4)?,
        created_at: millis(r.get(5)?),
        updated_at: millis(r.get(6)?),
    })
}

fn row_key(r: &Row<'_>) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: r.get(0)?,
        channel: r.get(1)?,
        created_at: millis(r.get(2)?),
        expires_at: millis(r.get(3)?),
        revoked_at: r.get::<_, Option<i64>>(4)?.map(millis),
    })
}

fn millis(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
