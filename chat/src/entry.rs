//! What a room's log holds: messages and moderation, each under an id.
//! The Redis relay stores an entry as a Stream entry's fields
//! ([`Entry::fields`], [`Entry::from_fields`]); the in-process relay keeps
//! the values.

use crate::id::EntryId;
use livecdn_shared::auth::ChatRole;
use livecdn_shared::chat::{ChatMessage, ServerEvent};

/// An entry before the relay gave it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Message {
        user: String,
        name: String,
        role: ChatRole,
        text: String,
        /// Accepted at, unix milliseconds.
        ts: u64,
    },
    /// Message `target` deleted for everyone.
    Delete {
        target: EntryId,
    },
    /// `user` may not send until `until` (unix seconds; `None`: until
    /// unbanned).
    Ban {
        user: String,
        until: Option<u64>,
    },
    Unban {
        user: String,
    },
}

/// An entry of a room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub kind: EntryKind,
}

impl EntryKind {
    /// Redis Stream fields: `k` says the kind (`m`, `d`, `b`, `x`).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            EntryKind::Message {
                user,
                name,
                role,
                text,
                ts,
            } => vec![
                ("k", "m".into()),
                ("u", user.clone()),
                ("n", name.clone()),
                ("r", role.as_str().into()),
                ("t", text.clone()),
                ("ts", ts.to_string()),
            ],
            EntryKind::Delete { target } => vec![("k", "d".into()), ("id", target.to_string())],
            EntryKind::Ban { user, until } => vec![
                ("k", "b".into()),
                ("u", user.clone()),
                ("until", until.map_or_else(String::new, |u| u.to_string())),
            ],
            EntryKind::Unban { user } => vec![("k", "x".into()), ("u", user.clone())],
        }
    }
}

impl Entry {
    /// An entry from a Stream entry's fields (`get` looks one up by name);
    /// `None` for anything this version does not know or that is malformed
    /// (another writer's entry), which the room then skips.
    pub fn from_fields<'a>(id: EntryId, get: impl Fn(&str) -> Option<&'a str>) -> Option<Entry> {
        let kind = match get("k")? {
            "m" => EntryKind::Message {
                user: get("u")?.to_owned(),
                name: get("n")?.to_owned(),
                role: match get("r")? {
                    "moderator" => ChatRole::Moderator,
                    _ => ChatRole::Viewer,
                },
                text: get("t")?.to_owned(),
                ts: get("ts")?.parse().ok()?,
            },
            "d" => EntryKind::Delete {
                target: get("id")?.parse().ok()?,
            },
            "b" => EntryKind::Ban {
                user: get("u")?.to_owned(),
                until: match get("until")? {
                    "" => None,
                    t => Some(t.parse().ok()?),
                },
            },
            "x" => EntryKind::Unban {
                user: get("u")?.to_owned(),
            },
            _ => return None,
        };
        Some(Entry { id, kind })
    }

    /// The event clients get for this entry.
    pub fn event(&self) -> ServerEvent {
        match &self.kind {
            EntryKind::Message {
                user,
                name,
                role,
                text,
                ts,
            } => ServerEvent::Message(ChatMessage {
                id: self.id.to_string(),
                user: user.clone(),
                name: name.clone(),
                role: *role,
                text: text.clone(),
                ts: *ts,
            }),
            EntryKind::Delete { target } => ServerEvent::Delete {
                id: target.to_string(),
            },
            EntryKind::Ban { user, until } => ServerEvent::Ban {
                user: user.clone(),
                until: *until,
            },
            EntryKind::Unban { user } => ServerEvent::Unban { user: user.clone() },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_kind_round_trips_through_fields() {
        let id = EntryId { ms: 5, seq: 1 };
        for kind in [
            EntryKind::Message {
                user: "u".into(),
                name: "Ünï".into(),
                role: ChatRole::Moderator,
                text: "a\nb".into(),
                ts: 7,
            },
            EntryKind::Delete {
                target: EntryId { ms: 4, seq: 0 },
            },
            EntryKind::Ban {
                user: "u".into(),
                until: Some(9),
            },
            EntryKind::Ban {
                user: "u".into(),
                until: None,
            },
            EntryKind::Unban { user: "u".into() },
        ] {
            let map: HashMap<&str, String> = kind.fields().into_iter().collect();
            let back = Entry::from_fields(id, |k| map.get(k).map(String::as_str)).unwrap();
            assert_eq!(back, Entry { id, kind });
        }
        assert_eq!(Entry::from_fields(id, |_| None), None);
        assert_eq!(Entry::from_fields(id, |k| (k == "k").then_some("z")), None);
    }
}
