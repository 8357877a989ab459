//! Single flight: one upstream fetch per key, however many requests want it.
//!
//! Modelled on pingora's cache lock. The first request to miss a key becomes the
//! leader and gets a [`FillPermit`]; later requests for the key find the flight
//! in the table and wait, bounded by the lock timeout, until the leader
//! publishes the response headers. Publishing hands every waiter the same
//! [`CachedObject`], whose body they then stream as it grows.
//!
//! If the leader goes away without publishing (its future is dropped, upstream
//! failed, it called [`FillPermit::fail`]), the permit's `Drop` removes the
//! flight and wakes the waiters with `Abandoned`. They run the lookup again, and
//! the first to reach the table creates a new flight: exactly one new leader,
//! the rest follow it.
//!
//! The table holds only flights still waiting for headers. Once published, a
//! cacheable object is in the store, where later requests find it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::HeaderMap;
use tokio::sync::watch;

use super::key::{CacheKey, ObjectKind};
use super::object::{CachedObject, GrowingBody};
use super::policy::CachePolicy;
use super::Inner;

/// What waiters of a flight see.
#[derive(Debug, Clone)]
pub(crate) enum FlightState {
    /// The leader has not published headers yet.
    Pending,
    /// The leader published; the body may still be growing.
    Published(Arc<CachedObject>),
    /// The leader went away without publishing; run the lookup again.
    Abandoned,
}

/// One in-progress fetch.
#[derive(Debug)]
pub(crate) struct Flight {
    state: watch::Sender<FlightState>,
}

/// What a lookup should do after consulting the table.
pub(crate) enum Step {
    /// No flight and nothing stored: this request leads a new flight.
    Lead(Arc<Flight>),
    /// A flight exists: wait on it.
    Follow(watch::Receiver<FlightState>),
    /// Nothing in flight, but the store gained the key since we looked (a
    /// leader published in between): look in the store again.
    Retry,
}

/// The keys being fetched right now.
#[derive(Debug, Default)]
pub(crate) struct FlightTable {
    flights: Mutex<HashMap<CacheKey, Arc<Flight>>>,
}

impl FlightTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<CacheKey, Arc<Flight>>> {
        // Map operations leave the map consistent even if a panic poisoned it.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins the flight for `key`, or starts one. `stored_since` is asked, under
    /// the table lock, whether the store now holds the key: a leader inserts into
    /// the store before it leaves the table, so this closes the window in which a
    /// request missed the store, the leader published, and the request would
    /// otherwise start a second fetch.
    pub(crate) fn join_or_lead(&self, key: &CacheKey, stored_since: impl FnOnce() -> bool) -> Step {
        let mut flights = self.lock();
        if let Some(flight) = flights.get(key) {
            return Step::Follow(flight.state.subscribe());
        }
        if stored_since() {
            return Step::Retry;
        }
        let flight = Arc::new(Flight {
            state: watch::Sender::new(FlightState::Pending),
        });
        flights.insert(key.clone(), Arc::clone(&flight));
        Step::Lead(flight)
    }

    /// Removes `flight` from the table if it is still the one for `key`.
    fn remove(&self, key: &CacheKey, flight: &Arc<Flight>) {
        let mut flights = self.lock();
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
    }

    /// How many requests wait on the flight for `key` (0 if there is none).
    pub(crate) fn waiting(&self, key: &CacheKey) -> usize {
        self.lock()
            .get(key)
            .map_or(0, |flight| flight.state.receiver_count())
    }
}

/// The leader's right and duty to fetch one key from upstream.
///
/// Publish the response headers with [`FillPermit::publish`], then append the
/// body to the returned object's [`GrowingBody`] and finish or fail it. Dropping
/// the permit without publishing releases the waiters to elect a new leader.
#[must_use = "dropping a FillPermit makes another request fetch the object"]
pub struct FillPermit {
    inner: Arc<Inner>,
    key: CacheKey,
    kind: ObjectKind,
    /// TTL rules for what this permit publishes: the cache's default, or
    /// the stream's own timing ([`FillPermit::with_policy`]).
    policy: CachePolicy,
    flight: Arc<Flight>,
    /// The object being published, kept so a cancelled publish can fail it.
    publishing: Option<Arc<CachedObject>>,
    published: bool,
}

impl FillPermit {
    pub(super) fn new(
        inner: Arc<Inner>,
        key: CacheKey,
        kind: ObjectKind,
        flight: Arc<Flight>,
    ) -> FillPermit {
        let policy = inner.config.policy;
        FillPermit {
            inner,
            key,
            kind,
            policy,
            flight,
            publishing: None,
            published: false,
        }
    }

    /// The key this permit fills.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// The kind of object the lookup asked for; decides the TTL.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// TTLs from `policy` (the stream's own part and segment timing)
    /// instead of the cache's default.
    pub fn with_policy(mut self, policy: CachePolicy) -> FillPermit {
        self.policy = policy;
        self
    }

    /// Publishes the upstream response headers. The returned object is handed to
    /// every waiting request at once and, if the policy gives `status` a TTL,
    /// stored right away so later requests stream the same growing body. The
    /// caller must then append the body and `finish()` or `fail()` it; a body
    /// that makes no progress for the configured idle timeout is failed for it.
    pub async fn publish(mut self, status: u16, headers: HeaderMap) -> Arc<CachedObject> {
        let config = &self.inner.config;
        let ttl = self.policy.ttl(self.kind, status);
        let body = GrowingBody::new(config.max_object_bytes);
        let object = Arc::new(CachedObject::new(status, headers, self.kind, ttl, body));
        self.publishing = Some(Arc::clone(&object));
        if ttl.is_some() {
            self.inner
                .store
                .insert(self.key.clone(), Arc::clone(&object))
                .await;
        }
        // Store first, then leave the table: see `FlightTable::join_or_lead`.
        self.inner.flights.remove(&self.key, &self.flight);
        self.flight
            .state
            .send_replace(FlightState::Published(Arc::clone(&object)));
        self.published = true;
        object
    }

    /// Gives up before publishing (upstream unreachable, request cancelled):
    /// waiting requests elect a new leader. Same as dropping the permit, with a
    /// reason in the log.
    pub fn fail(self, reason: &str) {
        tracing::debug!(key = %self.key, reason, "cache fill abandoned");
    }
}

impl Drop for FillPermit {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        // A publish cancelled mid-way may have stored its object; fail it so no
        // one waits on a body nobody writes, and the store drops it.
        if let Some(object) = self.publishing.take() {
            object.body.fail("fill cancelled before publish completed");
        }
        self.inner.flights.remove(&self.key, &self.flight);
        self.flight.state.send_replace(FlightState::Abandoned);
    }
}

impl fmt::Debug for FillPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FillPermit")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("published", &self.published)
            .finish()
    }
}
