//! The rooms open on this edge: one per stream with at least one client.
//! A room holds its [`RoomState`] behind a short lock (never held across an
//! await) and a broadcast channel of rendered events: each event is
//! rendered once and its bytes shared by every client, and the channel's
//! length bounds what a room keeps for its slowest client.
//!
//! A client joins by taking the state lock, copying the join event and
//! subscribing in one step; the relay applies entries and sends their
//! events under the same lock, so a client gets every entry after its
//! history exactly once.

use crate::entry::Entry;
use crate::id::EntryId;
use crate::metrics::ChatMetrics;
use crate::room::RoomState;
use livecdn_shared::chat::Me;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, Notify, OnceCell};
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub struct Room {
    pub stream: Arc<str>,
    state: Mutex<RoomState>,
    tx: broadcast::Sender<Utf8Bytes>,
    /// Clients in the room on this edge; changed under the rooms' lock.
    members: AtomicUsize,
    /// Set once the relay loaded the room's tail and bans.
    pub(crate) opened: OnceCell<()>,
}

impl Room {
    pub fn state(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies entries in log order and fans out their events; then moves
    /// the read position to `read_to`, the last id read (entries this
    /// version could not parse are not read again). Nothing happens
    /// before the room is loaded: its tail, read when it opens, covers
    /// these entries, and moving its position would hide that tail.
    pub fn apply(&self, entries: &[Entry], read_to: Option<EntryId>, now_unix: u64) {
        let mut state = self.state();
        if !state.loaded() {
            return;
        }
        for e in entries {
            if let Some(event) = state.apply(e, now_unix) {
                let _ = self.tx.send(event);
            }
        }
        if let Some(id) = read_to {
            state.skip_to(id);
        }
    }

    /// Sets the viewer count, telling clients when it changed.
    pub fn set_viewers(&self, n: u64) {
        let mut state = self.state();
        if let Some(event) = state.set_viewers(n) {
            let _ = self.tx.send(event);
        }
    }

    /// The join event and the subscription that continues it.
    pub fn subscribe(&self, me: Option<&Me>) -> (Utf8Bytes, broadcast::Receiver<Utf8Bytes>) {
        let state = self.state();
        (state.join_event(me), self.tx.subscribe())
    }

    pub fn members(&self) -> usize {
        self.members.load(Ordering::Relaxed)
    }
}

/// Every open room, and a signal for the relay's reader when the set
/// changes.
pub struct Rooms {
    map: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    history: usize,
    queue: usize,
    pub changed: Notify,
    metrics: Arc<ChatMetrics>,
}

/// One client's place in a room; leaving (drop) closes the room when it
/// was the last.
pub struct Membership {
    rooms: Arc<Rooms>,
    pub room: Arc<Room>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut map = self.rooms.lock();
        if self.room.members.fetch_sub(1, Ordering::Relaxed) == 1 {
            map.remove(&self.room.stream);
            self.rooms
                .metrics
                .rooms
                .store(map.len() as u64, Ordering::Relaxed);
            drop(map);
            self.rooms.changed.notify_one();
        }
    }
}

impl Rooms {
    pub fn new(history: usize, queue: usize, metrics: Arc<ChatMetrics>) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            history,
            queue: queue.max(1),
            changed: Notify::new(),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters `stream`'s room (made if new), unless it already has `max`
    /// clients on this edge (0: no cap).
    pub fn enter(self: &Arc<Self>, stream: &str, max: usize) -> Option<Membership> {
        let mut map = self.lock();
        let room = match map.get(stream) {
            Some(r) => r.clone(),
            None => {
                let stream: Arc<str> = Arc::from(stream);
                let (tx, _) = broadcast::channel(self.queue);
                let room = Arc::new(Room {
                    stream: stream.clone(),
                    state: Mutex::new(RoomState::new(&stream, self.history)),
                    tx,
                    members: AtomicUsize::new(0),
                    opened: OnceCell::new(),
                });
                map.insert(stream, room.clone());
                self.metrics
                    .rooms
                    .store(map.len() as u64, Ordering::Relaxed);
                room
            }
        };
        if max > 0 && room.members() >= max {
            return None;
        }
        room.members.fetch_add(1, Ordering::Relaxed);
        Some(Membership {
            rooms: self.clone(),
            room,
        })
    }

    pub fn get(&self, stream: &str) -> Option<Arc<Room>> {
        self.lock().get(stream).cloned()
    }

    /// Every open room.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.lock().values().cloned().collect()
    }

    /// Where the relay's reader continues each loaded room.
    pub fn cursors(&self) -> Vec<(Arc<str>, EntryId)> {
        self.all()
            .into_iter()
            .filter_map(|r| {
                let state = r.state();
                state.loaded().then(|| (r.stream.clone(), state.last()))
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use livecdn_shared::auth::ChatRole;

    fn msg(ms: u64) -> Entry {
        Entry {
            id: EntryId { ms, seq: 0 },
            kind: EntryKind::Message {
                user: "u".into(),
                name: "U".into(),
                role: ChatRole::Viewer,
                text: format!("m{ms}"),
                ts: ms,
            },
        }
    }

    #[test]
    fn nothing_is_applied_before_the_room_is_loaded() {
        let rooms = Rooms::new(10, 8, Arc::new(ChatMetrics::default()));
        let member = rooms.enter("cam", 0).unwrap();
        let room = member.room.clone();
        // The reader's answer for an earlier room of the same name.
        room.apply(&[msg(5)], Some(EntryId { ms: 9, seq: 0 }), 0);
        assert_eq!(room.state().last(), EntryId::ZERO);
        room.state().load(vec![msg(3), msg(4)], vec![], 0);
        let (join, mut rx) = room.subscribe(None);
        assert!(join.as_str().contains("m3") && join.as_str().contains("m4"));
        room.apply(&[msg(4), msg(6)], Some(EntryId { ms: 7, seq: 0 }), 0);
        assert!(rx.try_recv().unwrap().as_str().contains("m6"));
        assert!(rx.try_recv().is_err(), "m4 was in the history already");
        assert_eq!(room.state().last(), EntryId { ms: 7, seq: 0 });
    }

    #[test]
    fn the_last_member_closes_the_room_and_the_cap_holds() {
        let rooms = Rooms::new(10, 8, Arc::new(ChatMetrics::default()));
        let a = rooms.enter("cam", 2).unwrap();
        let b = rooms.enter("cam", 2).unwrap();
        assert!(rooms.enter("cam", 2).is_none(), "room full");
        drop(a);
        assert!(rooms.get("cam").is_some());
        drop(b);
        assert!(rooms.get("cam").is_none());
    }
}
