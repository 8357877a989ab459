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
    pub received: u64,
    pub duplicates: u64,
    /// Messages that came after a later-sent one (see
    /// [`ClientTally::record`]).
    pub out_of_order: u64,
    last_seq: Option<u32>,
}

impl ClientTally {
    /// Records load message `seq`. Messages are numbered in sending
    /// order; concurrent senders on different edges can be ordered either
    /// way by the relay, so order is counted only as a figure, while every
    /// client must see the same order (checked by the tests, not here).
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
        self.received += 1;
        if self.last_seq.is_some_and(|l| seq < l) {
            self.out_of_order += 1;
        }
        self.last_seq = Some(self.last_seq.map_or(seq, |l| l.max(seq)));
    }

    pub fn has(&self, seq: u32) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
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
    pub out_of_order: u64,
    /// Send to receipt, all deliveries.
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Connections closed by the server during the run, and why (first).
    pub closed: usize,
    pub first_close: Option<String>,
    pub seconds: f64,
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
        out_of_order: tallies.iter().map(|t| t.out_of_order).sum(),
        latency_ms_p50: ms(0.5),
        latency_ms_p99: ms(0.99),
        latency_ms_max: latency.max() as f64 / 1000.0,
        closed,
        first_close,
        seconds,
    }
}

/// The report as text.
pub fn text(r: &ChatReport) -> String {
    format!(
        "chat clients {} joined {} over {:.1} s\n\
         messages sent {} refused {} relayed {}\n\
         deliveries {} of {} (lost {}, duplicates {}, out of order {})\n\
         delivery latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms\n\
         closed by the server {}{}\n",
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
        r.out_of_order,
        r.latency_ms_p50,
        r.latency_ms_p99,
        r.latency_ms_max,
        r.closed,
        r.first_close
            .as_ref()
            .map(|c| format!(" (first: {c})"))
            .unwrap_or_default(),
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
        for s in [0, 1, 2, 2, 3] {
            a.record(s);
        }
        for s in [0, 2, 1] {
            b.record(s);
        }
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(2000).unwrap();
        let r = report(
            3,
            &[a, b],
            5,
            1,
            &h,
            1,
            Some("4408 slow consumer".into()),
            1.0,
        );
        // Message 4 reached nobody: not relayed. 0-3 reached someone.
        assert_eq!(r.relayed, 4);
        assert_eq!(r.expected_deliveries, 8);
        assert_eq!(r.delivered, 7);
        assert_eq!(r.lost, 1);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.out_of_order, 1);
        assert_eq!(r.joined, 2);
        assert!((r.latency_ms_p50 - 2.0).abs() < 0.01);
        assert!(text(&r).contains("lost 1"));
    }
}
