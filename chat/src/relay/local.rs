//! The in-process relay: each room's log kept in memory, ids assigned as
//! Redis would, entries applied to the open room while the log's lock is
//! held, so concurrent senders' messages reach clients in id order.

use super::now_ms;
use crate::entry::{Entry, EntryKind};
use crate::id::EntryId;
use crate::rooms::{Room, Rooms};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Logs kept for rooms no client has open; beyond that, such logs go.
const MAX_IDLE_LOGS: usize = 10_000;

#[derive(Default)]
struct Log {
    entries: VecDeque<Entry>,
    last: EntryId,
    bans: HashMap<String, Option<u64>>,
}

pub struct LocalRelay {
    logs: Mutex<HashMap<Arc<str>, Log>>,
    /// Entries a log keeps.
    retain: usize,
    /// Entries a room loads on opening.
    history: usize,
}

impl LocalRelay {
    pub fn new(retain: usize, history: usize) -> Self {
        Self {
            logs: Mutex::new(HashMap::new()),
            retain: retain.max(history).max(1),
            history,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Log>> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish(&self, rooms: &Rooms, stream: &str, kind: EntryKind) {
        let mut logs = self.lock();
        if !logs.contains_key(stream) && logs.len() >= MAX_IDLE_LOGS {
            logs.retain(|s, _| rooms.get(s).is_some());
        }
        let log = logs.entry(Arc::from(stream)).or_default();
        let id = log.last.next(now_ms());
        log.last = id;
        match &kind {
            EntryKind::Ban { user, until } => {
                log.bans.insert(user.clone(), *until);
            }
            EntryKind::Unban { user } => {
                log.bans.remove(user);
            }
            _ => {}
        }
        if log.entries.len() == self.retain {
            log.entries.pop_front();
        }
        let entry = Entry { id, kind };
        if let Some(room) = rooms.get(stream) {
            room.apply(std::slice::from_ref(&entry), None, now_ms() / 1000);
        }
        log.entries.push_back(entry);
    }

    pub fn open(&self, room: &Room) {
        let logs = self.lock();
        let (tail, bans, last) = match logs.get(&room.stream) {
            Some(log) => {
                let skip = log.entries.len().saturating_sub(self.history);
                (
                    log.entries.iter().skip(skip).cloned().collect(),
                    log.bans.iter().map(|(u, t)| (u.clone(), *t)).collect(),
                    log.last,
                )
            }
            None => (Vec::new(), Vec::new(), EntryId::ZERO),
        };
        let mut state = room.state();
        state.load(tail, bans, now_ms() / 1000);
        state.skip_to(last);
    }
}
