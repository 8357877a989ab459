//! The origin's side of the stream map: enter every live stream, renew
//! while it lives, remove it when it ends here.
//!
//! [`Claims`] is the bookkeeping (sans-IO): what to claim and release each
//! round, and which streams another origin holds. [`announce`] runs it
//! against Redis every third of the lease, and at once when a publisher
//! attaches (so edges follow a moved stream without waiting a round).

use crate::entry::OriginEntry;
use crate::numbering::{owner, Position, Rebase, Report};
use crate::store::{Claim, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A stream live on this origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub stream: String,
    /// Wall-clock milliseconds of its publisher's attach here.
    pub since_ms: u64,
    /// 1: a primary publisher; 0: a backup ([`OriginEntry::rank`]).
    pub rank: u8,
    /// Its hub instance: a stream published again, or an origin
    /// restarted, is a new instance with numbering of its own.
    pub instance: u64,
    /// Where the hub's media numbering stands.
    pub position: Position,
    /// Its segment target (ms).
    pub target_ms: u64,
}

/// One round's work.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Claim or renew these.
    pub claim: Vec<Live>,
    /// No longer live here: remove the entry if it is still ours.
    pub release: Vec<String>,
}

/// What this origin entered in the map.
#[derive(Debug, Default)]
pub struct Claims {
    /// Streams claimed last round, with whether this origin held them.
    tried: HashMap<String, bool>,
}

impl Claims {
    /// The round for `live`, the streams live here now.
    pub fn plan(&self, live: &[Live]) -> Plan {
        let now: HashSet<&str> = live.iter().map(|l| l.stream.as_str()).collect();
        let mut release: Vec<String> = self
            .tried
            .keys()
            .filter(|s| !now.contains(s.as_str()))
            .cloned()
            .collect();
        release.sort();
        Plan {
            claim: live.to_vec(),
            release,
        }
    }

    /// A claim's outcome; `Some(held)` when it changed (worth a log line).
    pub fn claimed(&mut self, stream: &str, held: bool) -> Option<bool> {
        match self.tried.insert(stream.to_string(), held) {
            Some(was) if was == held => None,
            None if held => None,
            _ => Some(held),
        }
    }

    /// `stream` was released (or it ended before any claim landed).
    pub fn released(&mut self, stream: &str) {
        self.tried.remove(stream);
    }

    /// Streams this origin holds.
    pub fn held(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tried
            .iter()
            .filter(|(_, held)| **held)
            .map(|(s, _)| s.clone())
            .collect();
        v.sort();
        v
    }
}

/// An origin's identity in the map.
#[derive(Clone)]
pub struct Announcer {
    pub store: Store,
    /// Its node name (its advertised HTTP base).
    pub node: String,
    /// Its HTTP base as edges reach it.
    pub http: String,
    /// Its push endpoint as edges reach it.
    pub push: Option<String>,
    pub lease: Duration,
}

impl Announcer {
    fn entry(&self, live: &Live) -> OriginEntry {
        OriginEntry {
            node: self.node.clone(),
            http: self.http.clone(),
            push: self.push.clone(),
            since_ms: live.since_ms,
            rank: live.rank,
        }
    }

    fn report(&self, live: &Live, position: Position) -> Report {
        Report {
            owner: owner(&self.node, live.instance),
            position,
            target_ms: live.target_ms,
            at_ms: 0,
        }
    }

    /// Claims `live`'s entry with its numbering report. When another hub
    /// numbered the stream last, `renumber` moves the hub past that
    /// report first (`None`: the hub is gone), then the claim is made.
    async fn claim(
        &self,
        live: &Live,
        renumber: &impl Fn(&str, u64, Rebase) -> Option<Position>,
    ) -> Result<bool, crate::ClusterError> {
        let entry = self.entry(live);
        let report = self.report(live, live.position);
        let claim = self
            .store
            .claim_numbered(&live.stream, &entry, self.lease, &report, false)
            .await?;
        let Claim::Renumber {
            report: previous,
            now_ms,
        } = claim
        else {
            return Ok(claim == Claim::Held);
        };
        let rebase = previous.rebase_at(now_ms);
        let Some(position) = renumber(&live.stream, live.instance, rebase) else {
            return Ok(false);
        };
        tracing::info!(
            stream = %live.stream,
            previous = %previous.owner,
            msn = rebase.msn,
            discontinuity_sequence = rebase.discontinuities,
            "stream map: media renumbered past the previous holder's"
        );
        let report = self.report(live, position);
        let claim = self
            .store
            .claim_numbered(&live.stream, &entry, self.lease, &report, true)
            .await?;
        Ok(claim == Claim::Held)
    }
}

/// Keeps `live()` entered in the map until `stop`, then removes what this
/// origin holds. A hub about to take over a stream another hub numbered
/// is renumbered first through `renumber(stream, instance, rebase)`, which
/// answers its new position. Redis being down only delays entries (logged
/// once per outage); the origin serves on regardless.
pub async fn announce(
    a: Announcer,
    live: impl Fn() -> Vec<Live>,
    renumber: impl Fn(&str, u64, Rebase) -> Option<Position>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut claims = Claims::default();
    let mut tick = tokio::time::interval((a.lease / 3).max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wake.notified() => {}
            _ = stop.cancelled() => break,
        }
        let plan = claims.plan(&live());
        let mut error = None;
        for l in &plan.claim {
            match a.claim(l, &renumber).await {
                Ok(held) => match claims.claimed(&l.stream, held) {
                    Some(true) => {
                        tracing::info!(stream = %l.stream, "stream map: this origin serves it")
                    }
                    Some(false) => tracing::info!(
                        stream = %l.stream,
                        "stream map: another origin's publisher (a primary, or a later one) holds it"
                    ),
                    None => {}
                },
                Err(e) => error = Some(e),
            }
        }
        for s in &plan.release {
            match a.store.release(s, &a.node).await {
                Ok(_) => claims.released(s),
                Err(e) => error = Some(e),
            }
        }
        match (error, failing) {
            (Some(e), false) => {
                tracing::warn!(error = %e, "stream map: cannot reach redis; edges keep their last entries");
                failing = true;
            }
            (None, true) => {
                tracing::info!("stream map: redis reachable again");
                failing = false;
            }
            _ => {}
        }
    }
    for s in claims.held() {
        if let Err(e) = a.store.release(&s, &a.node).await {
            tracing::warn!(stream = %s, error = %e, "stream map: entry left to expire");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(names: &[&str]) -> Vec<Live> {
        names
            .iter()
            .map(|s| Live {
                stream: s.to_string(),
                since_ms: 7,
                rank: 1,
                instance: 1,
                position: Position::default(),
                target_ms: 2000,
            })
            .collect()
    }

    #[test]
    fn live_streams_are_renewed_and_ended_ones_released_once() {
        let mut c = Claims::default();
        let p = c.plan(&live(&["a", "b"]));
        assert_eq!(p.claim.len(), 2);
        assert!(p.release.is_empty());
        assert_eq!(c.claimed("a", true), None, "first hold is the normal case");
        assert_eq!(c.claimed("b", false), Some(false), "b lost: logged");
        assert_eq!(c.claimed("b", false), None, "and only once");
        assert_eq!(c.held(), vec!["a".to_string()]);

        // a ends here; b is still tried (it takes over when the holder's
        // lease runs out).
        let p = c.plan(&live(&["b"]));
        assert_eq!(p.release, vec!["a".to_string()]);
        assert_eq!(p.claim, live(&["b"]));
        c.released("a");
        assert_eq!(c.claimed("b", true), Some(true), "b taken over: logged");
        assert!(c.plan(&live(&["b"])).release.is_empty());
        assert_eq!(c.held(), vec!["b".to_string()]);
    }
}
