//! One room's state on one edge, sans-IO: the recent history, the bans, the
//! viewer count, and the position in the room's log. Entries come in log
//! order from the relay; each is applied once (an id at or before the last
//! one applied is a duplicate and ignored) and yields the event to fan out,
//! rendered to JSON once for every client.

use crate::entry::{Entry, EntryKind};
use crate::id::EntryId;
use livecdn_shared::chat::{Me, ServerEvent, SCHEMA_VERSION};
use std::collections::{HashMap, VecDeque};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A message of the history: its id, sender, and event JSON.
#[derive(Debug, Clone)]
struct Kept {
    id: EntryId,
    json: Utf8Bytes,
}

#[derive(Debug)]
pub struct RoomState {
    room: String,
    history: VecDeque<Kept>,
    cap: usize,
    last: EntryId,
    /// user -> until (unix seconds; `None`: until unbanned).
    bans: HashMap<String, Option<u64>>,
    viewers: u64,
    loaded: bool,
}

/// Renders an event; events are plain data, so this cannot fail, and a
/// failure would only lose that one event.
pub fn render(event: &ServerEvent) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(event).unwrap_or_default())
}

impl RoomState {
    pub fn new(room: &str, history: usize) -> Self {
        Self {
            room: room.to_owned(),
            history: VecDeque::with_capacity(history.min(1024)),
            cap: history,
            last: EntryId::ZERO,
            bans: HashMap::new(),
            viewers: 0,
            loaded: false,
        }
    }

    /// Sets the state from the relay: the log's tail (oldest first), the
    /// bans in force, and the id reading continues after (`last`, which
    /// may be later than the tail's when the tail is empty).
    pub fn load(&mut self, tail: Vec<Entry>, bans: Vec<(String, Option<u64>)>, now_unix: u64) {
        self.bans = bans.into_iter().collect();
        for entry in tail {
            self.apply(&entry, now_unix);
        }
        self.loaded = true;
    }

    /// Whether [`RoomState::load`] ran: until then, entries are not
    /// applied (the relay's tail covers them).
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// The id of the last entry applied: the relay reads after it.
    pub fn last(&self) -> EntryId {
        self.last
    }

    /// Moves the read position without an entry (an empty log whose
    /// newest id is known).
    pub fn skip_to(&mut self, id: EntryId) {
        self.last = self.last.max(id);
    }

    /// Whether `user` is banned at `now_unix`.
    pub fn banned(&self, user: &str, now_unix: u64) -> bool {
        match self.bans.get(user) {
            Some(None) => true,
            Some(Some(until)) => now_unix < *until,
            None => false,
        }
    }

    /// Applies one entry; returns the event for the room's clients, or
    /// `None` for a duplicate, or for a message from a user banned when it
    /// was logged (a relay on another edge that had not yet heard of the
    /// ban).
    pub fn apply(&mut self, entry: &Entry, now_unix: u64) -> Option<Utf8Bytes> {
        if entry.id <= self.last {
            return None;
        }
        self.last = entry.id;
        match &entry.kind {
            EntryKind::Message { user, .. } => {
                if self.banned(user, now_unix) {
                    return None;
                }
                let json = render(&entry.event());
                if self.cap > 0 {
                    if self.history.len() == self.cap {
                        self.history.pop_front();
                    }
                    self.history.push_back(Kept {
                        id: entry.id,
                        json: json.clone(),
                    });
                }
                Some(json)
            }
            EntryKind::Delete { target } => {
                self.history.retain(|k| k.id != *target);
                Some(render(&entry.event()))
            }
            EntryKind::Ban { user, until } => {
                self.bans.insert(user.clone(), *until);
                Some(render(&entry.event()))
            }
            EntryKind::Unban { user } => {
                self.bans.remove(user);
                Some(render(&entry.event()))
            }
        }
    }

    /// Sets the viewer count; the event when it changed.
    pub fn set_viewers(&mut self, n: u64) -> Option<Utf8Bytes> {
        if n == self.viewers {
            return None;
        }
        self.viewers = n;
        Some(render(&ServerEvent::ViewerCount { count: n }))
    }

    /// The `join` event for a client that speaks as `me`: the history's
    /// already-rendered messages spliced in, not rendered again.
    pub fn join_event(&self, me: Option<&Me>) -> Utf8Bytes {
        let head = serde_json::json!({
            "type": "join",
            "v": SCHEMA_VERSION,
            "room": self.room,
            "you": me,
            "viewers": self.viewers,
        })
        .to_string();
        let len = self.history.iter().map(|k| k.json.len() + 1).sum::<usize>();
        let mut out = String::with_capacity(head.len() + len + 16);
        // `head` ends with `}`: reopen it to add the history.
        out.push_str(head.strip_suffix('}').unwrap_or(&head));
        out.push_str(",\"history\":[");
        for (i, k) in self.history.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k.json.as_str());
        }
        out.push_str("]}");
        Utf8Bytes::from(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use livecdn_shared::auth::ChatRole;
    use livecdn_shared::chat::ServerEvent;

    fn msg(ms: u64, user: &str, text: &str) -> Entry {
        Entry {
            id: EntryId { ms, seq: 0 },
            kind: EntryKind::Message {
                user: user.into(),
                name: user.to_uppercase(),
                role: ChatRole::Viewer,
                text: text.into(),
                ts: ms,
            },
        }
    }

    fn history(state: &RoomState) -> Vec<String> {
        let join: ServerEvent = serde_json::from_str(state.join_event(None).as_str()).unwrap();
        match join {
            ServerEvent::Join { history, .. } => history.into_iter().map(|m| m.text).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn applies_once_in_order_and_keeps_a_bounded_tail() {
        let mut s = RoomState::new("cam", 2);
        s.load(vec![msg(1, "a", "one")], vec![], 0);
        assert!(s.apply(&msg(2, "b", "two"), 0).is_some());
        assert!(s.apply(&msg(2, "b", "two"), 0).is_none(), "duplicate");
        assert!(s.apply(&msg(1, "a", "one"), 0).is_none(), "older");
        assert!(s.apply(&msg(3, "c", "three"), 0).is_some());
        assert_eq!(history(&s), ["two", "three"]);
        assert_eq!(s.last(), EntryId { ms: 3, seq: 0 });
    }

    #[test]
    fn deletes_and_bans_apply_to_history_and_later_messages() {
        let mut s = RoomState::new("cam", 10);
        s.load(vec![msg(1, "a", "one"), msg(2, "b", "spam")], vec![], 100);
        let del = Entry {
            id: EntryId { ms: 3, seq: 0 },
            kind: EntryKind::Delete {
                target: EntryId { ms: 2, seq: 0 },
            },
        };
        assert!(s.apply(&del, 100).unwrap().as_str().contains("\"delete\""));
        assert_eq!(history(&s), ["one"]);
        let ban = Entry {
            id: EntryId { ms: 4, seq: 0 },
            kind: EntryKind::Ban {
                user: "b".into(),
                until: Some(200),
            },
        };
        s.apply(&ban, 100).unwrap();
        assert!(s.banned("b", 199));
        assert!(!s.banned("b", 200));
        assert!(s.apply(&msg(5, "b", "again"), 150).is_none());
        assert!(s.apply(&msg(6, "a", "fine"), 150).is_some());
        assert_eq!(history(&s), ["one", "fine"]);
    }

    #[test]
    fn join_is_valid_json_with_viewers_and_identity() {
        let mut s = RoomState::new("cam", 10);
        s.load(vec![msg(1, "a", "q\"uote")], vec![("z".into(), None)], 0);
        assert!(s.banned("z", u64::MAX));
        assert!(s.set_viewers(12).is_some());
        assert!(s.set_viewers(12).is_none());
        let me = Me {
            user: "a".into(),
            name: "A".into(),
            role: ChatRole::Viewer,
        };
        let join: ServerEvent = serde_json::from_str(s.join_event(Some(&me)).as_str()).unwrap();
        let ServerEvent::Join {
            v,
            room,
            you,
            history,
            viewers,
        } = join
        else {
            panic!("not a join")
        };
        assert_eq!((v, room.as_str(), viewers), (SCHEMA_VERSION, "cam", 12));
        assert_eq!(you, Some(me));
        assert_eq!(history[0].text, "q\"uote");
        let empty: ServerEvent =
            serde_json::from_str(RoomState::new("x", 5).join_event(None).as_str()).unwrap();
        assert!(matches!(empty, ServerEvent::Join { history, .. } if history.is_empty()));
    }
}
