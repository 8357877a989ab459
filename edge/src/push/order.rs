//! Arrival order across a push connection's object streams.
//!
//! Every pushed object travels on its own QUIC stream and is stored by its
//! own task, so two objects can be stored in either order. That is right for
//! media, but not for a purge: the origin sends a stopped stream's ENDLIST
//! playlists first and the purge after them, and a player holding a
//! blocking reload must get that final playlist, not the 404 that follows
//! the purge. QUIC hands the edge its streams in the order the origin opened
//! them, so each gets a ticket at accept, and a purge waits until every
//! stream with an earlier ticket is done (each is bounded by the object
//! timeout).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The tickets of one connection's streams still being read or stored.
#[derive(Debug)]
pub struct Order {
    state: Mutex<State>,
    /// Bumped whenever a ticket is done, to wake `earlier_done`.
    done: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    open: BTreeSet<u64>,
}

/// One accepted stream's place in the order; done when dropped.
#[derive(Debug)]
pub struct Ticket {
    order: Arc<Order>,
    seq: u64,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            done: watch::Sender::new(0),
        }
    }
}

impl Order {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ticket for the stream accepted now (call in accept order).
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        let mut s = self.state();
        let seq = s.next;
        s.next += 1;
        s.open.insert(seq);
        Ticket {
            order: self.clone(),
            seq,
        }
    }

    fn any_before(&self, seq: u64) -> bool {
        self.state().open.first().is_some_and(|&first| first < seq)
    }
}

impl Ticket {
    /// Waits until every stream accepted before this one is done.
    pub async fn earlier_done(&self) {
        let mut rx = self.order.done.subscribe();
        while self.order.any_before(self.seq) {
            // The sender lives in `order`, which this ticket holds.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.order.state().open.remove(&self.seq);
        self.order.done.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_later_ticket_waits_for_every_earlier_one_only() {
        let order = Arc::new(Order::default());
        let first = order.ticket();
        let second = order.ticket();
        let purge = order.ticket();
        let later = order.ticket();
        // Nothing before the first.
        first.earlier_done().await;
        let waiter = tokio::spawn(async move {
            purge.earlier_done().await;
            purge
        });
        drop(second);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the first is still open");
        drop(first);
        let purge = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken when the earlier tickets are done")
            .expect("task");
        // A ticket after the purge does not hold it, and waits for it.
        assert!(order.any_before(later.seq));
        drop(purge);
        later.earlier_done().await;
    }
}
