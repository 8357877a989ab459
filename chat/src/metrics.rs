//! The chat service's counters, rendered into the edge's `/metrics` as
//! `PREFIX_chat_...`.

use livecdn_shared::exposition::{single, Kind};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ChatMetrics {
    /// Connections now.
    pub connections: AtomicU64,
    /// Rooms open on this edge now.
    pub rooms: AtomicU64,
    pub connections_total: AtomicU64,
    /// Connections closed before joining (token, limits).
    pub refused_total: AtomicU64,
    /// Messages clients sent that were accepted and relayed.
    pub messages_in: AtomicU64,
    /// Client messages refused (rate, size, schema, role, ban).
    pub messages_refused: AtomicU64,
    /// Events written to clients.
    pub delivered: AtomicU64,
    /// Clients closed for not reading.
    pub slow_consumers: AtomicU64,
    /// Messages that could not be relayed (Redis down): refused to their
    /// senders.
    pub unrelayed: AtomicU64,
    /// Relay failures: a Redis command or connection that failed.
    pub relay_errors: AtomicU64,
    /// 1 while the relay is reachable (always 1 in process).
    pub relay_up: AtomicU64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl ChatMetrics {
    pub fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// The families, each named `PREFIX_chat_...`.
    pub fn render(&self, prefix: &str, out: &mut String) {
        let rows: [(&str, Kind, &str, u64); 11] = [
            (
                "connections",
                Kind::Gauge,
                "chat connections",
                get(&self.connections),
            ),
            (
                "rooms",
                Kind::Gauge,
                "chat rooms open on this node",
                get(&self.rooms),
            ),
            (
                "connections_accepted_total",
                Kind::Counter,
                "chat connections accepted",
                get(&self.connections_total),
            ),
            (
                "refused_total",
                Kind::Counter,
                "chat connections closed before joining (token, limits)",
                get(&self.refused_total),
            ),
            (
                "messages_total",
                Kind::Counter,
                "chat messages accepted from clients",
                get(&self.messages_in),
            ),
            (
                "messages_refused_total",
                Kind::Counter,
                "chat messages refused (rate, size, schema, role, ban)",
                get(&self.messages_refused),
            ),
            (
                "delivered_total",
                Kind::Counter,
                "chat events written to clients",
                get(&self.delivered),
            ),
            (
                "slow_consumers_total",
                Kind::Counter,
                "chat clients closed for not reading",
                get(&self.slow_consumers),
            ),
            (
                "unrelayed_total",
                Kind::Counter,
                "chat messages that could not be relayed to other edges and were refused",
                get(&self.unrelayed),
            ),
            (
                "relay_errors_total",
                Kind::Counter,
                "chat relay (Redis) commands or connections that failed",
                get(&self.relay_errors),
            ),
            (
                "relay_up",
                Kind::Gauge,
                "1 while the chat relay is reachable",
                get(&self.relay_up),
            ),
        ];
        for (name, kind, help, value) in rows {
            single(
                out,
                &format!("{prefix}_chat_{name}"),
                kind,
                help,
                value as f64,
            );
        }
    }
}
