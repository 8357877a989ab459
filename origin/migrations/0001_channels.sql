-- Channels and their stream keys. Times are Unix milliseconds.
CREATE TABLE channels (
    name         TEXT PRIMARY KEY NOT NULL,
    latency_mode TEXT NOT NULL CHECK (latency_mode IN ('LOW', 'NORMAL')),
    ladder       TEXT NOT NULL CHECK (ladder IN ('full', 'source')),
    recording    INTEGER NOT NULL CHECK (recording IN (0, 1)),
    authorized   INTEGER NOT NULL CHECK (authorized IN (0, 1)),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

-- Only a key's SHA-256 is stored: the key itself is shown once, when it
-- is made. Revoked and expired keys stay, for the record.
CREATE TABLE stream_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    channel    TEXT NOT NULL REFERENCES channels (name) ON DELETE CASCADE,
    key_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX stream_keys_by_channel ON stream_keys (channel);
