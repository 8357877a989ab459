//! The bookkeeping of `loadtest chat`, sans-IO: which load message each
//! client got, when, and in what order, and from that the report's
//! delivery, loss, duplicates, order and latency figures.
//!
//! A load message's text is `lt SEQ SENT_US` (its number and the send
//! time, unix microseconds), so a receiver knows which it got and how long
//! it took without any other channel; the harness and the edges share one
//! clock on one machine.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The text of load message `seq` sent at `sent_us`.
pub fn message_text(seq: u32, sent_us: u64) -> String {
    format!("lt {seq} {sent_us}")
}

/// A load message's number and send time, from its text; `None` for other
/// chat traffic.
pub fn parse_text(text: &str) -> Option<(u32, u64)> {
    let mut parts = text.strip_prefix("lt ")?.split(' ');
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((seq, sent))
}

/// What one client got.
#[derive(Debug, Clone, Default)]
pub struct ClientTally {
    /// One bit per load message number.
    seen: Vec<u64>,
    /// Load message numbers in the order they came.
    order: Vec<u32>,
    pub received: u64,
    pub duplicates: u64,
}

impl ClientTally {
    /// Records load message `seq`.
    pub fn record(&mut self, seq: u32) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.order.push(seq);
        self.received += 1;
    }

    pub fn has(&self, seq: u32) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Whether the messages both got came to both in the same order. The
    /// relay orders messages from senders on different edges as it gets
    /// them, which need not be the order they were numbered in; what
    /// every client must share is one order.
    pub fn same_order(&self, other: &ClientTally) -> bool {
        let mine = self.order.iter().filter(|s| other.has(**s));
        let theirs = other.order.iter().filter(|s| self.has(**s));
        mine.eq(theirs)
    }
}

/// The run's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatReport {
    pub clients: usize,
    /// Clients that joined (got `join`).
    pub joined: usize,
    /// Load messages sent, and refused by the server (rate, relay).
    pub sent: u64,
    pub refused: u64,
    /// Messages at least one client got: the ones that were relayed.
    pub relayed: u64,
    /// relayed x joined clients, what they got, and what is missing.
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Clients that saw the messages in another order than the first
    /// client did.
    pub order_mismatches: usize,
    /// Send to receipt, all deliveries.
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Connections closed by the server during the run, and why (first).
    pub closed: usize,
    pub first_close: Option<String>,
    pub seconds: f64,
    /// The harness's own CPU while it sent and received, in percent of one
    /// core: near its cores' worth, the harness, not the server, was the
    /// limit (and the latency is partly its own queueing).
    pub harness_cpu_percent: f64,
}

/// Adds up the clients' tallies; `latency` holds every delivery's latency
/// in microseconds.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each figure named"
)]
pub fn report(
    clients: usize,
    tallies: &[ClientTally],
    sent: u64,
    refused: u64,
    latency: &Histogram<u64>,
    closed: usize,
    first_close: Option<String>,
    seconds: f64,
    harness_cpu_percent: f64,
) -> ChatReport {
    let relayed = (0..u32::try_from(sent).unwrap_or(u32::MAX))
        .filter(|s| tallies.iter().any(|t| t.has(*s)))
        .count() as u64;
    let joined = tallies.len();
    let expected = relayed * joined as u64;
    let delivered: u64 = tallies.iter().map(|t| t.received).sum();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    ChatReport {
        clients,
        joined,
        sent,
        refused,
        relayed,
        expected_deliveries: expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicates: tallies.iter().map(|t| t.duplicates).sum(),
        order_mismatches: tallies.split_first().map_or(0, |(first, rest)| {
            rest.iter().filter(|t| !first.same_order(t)).count()
        }),
        latency_ms_p50: ms(0.5),
        latency_ms_p99: ms(0.99),
        latency_ms_max: latency.max() as f64 / 1000.0,
        closed,
        first_close,
        seconds,
        harness_cpu_percent,
    }
}

/// The report as text.
pub fn text(r: &ChatReport) -> String {
    format!(
        "chat clients {} joined {} over {:.1} s\n\
         messages sent {} refused {} relayed {}\n\
         deliveries {} of {} (lost {}, duplicates {}, clients in another order {})\n\
         delivery latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms\n\
         closed by the server {}{}\n\
         harness CPU {:.0}% of a core\n",
        r.clients,
        r.joined,
        r.seconds,
        r.sent,
        r.refused,
        r.relayed,
        r.delivered,
        r.expected_deliveries,
        r.lost,
        r.duplicates,
        r.order_mismatches,
        r.latency_ms_p50,
        r.latency_ms_p99,
        r.latency_ms_max,
        r.closed,
        r.first_close
            .as_ref()
            .map(|c| format!(" (first: {c})"))
            .unwrap_or_default(),
        r.harness_cpu_percent,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_others_are_ignored() {
        assert_eq!(
            parse_text(&message_text(7, 1_700_000_000_000_000)),
            Some((7, 1_700_000_000_000_000))
        );
        assert_eq!(parse_text("hello"), None);
        assert_eq!(parse_text("lt 1 2 3"), None);
        assert_eq!(parse_text("lt x 2"), None);
    }

    #[test]
    fn counts_loss_duplicates_and_order() {
        let mut a = ClientTally::default();
        let mut b = ClientTally::default();
        let mut c = ClientTally::default();
        for s in [0, 1, 2, 2, 3] {
            a.record(s);
        }
        for s in [0, 2, 1] {
            b.record(s);
        }
        // c misses 1 but agrees on the order of the rest.
        for s in [0, 2, 3] {
            c.record(s);
        }
        assert!(a.same_order(&c) && c.same_order(&a));
        assert!(!a.same_order(&b));
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(2000).unwrap();
        let r = report(
            4,
            &[a, b, c],
            5,
            1,
            &h,
            1,
            Some("4408 slow consumer".into()),
            1.0,
            50.0,
        );
        // Message 4 reached nobody: not relayed. 0-3 reached someone.
        assert_eq!(r.relayed, 4);
        assert_eq!(r.expected_deliveries, 12);
        assert_eq!(r.delivered, 10);
        assert_eq!(r.lost, 2);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.order_mismatches, 1, "b");
        assert_eq!(r.joined, 3);
        assert!((r.latency_ms_p50 - 2.0).abs() < 0.01);
        assert!(text(&r).contains("lost 2"));
    }
}
