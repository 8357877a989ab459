//! `[cluster]`: how nodes prove they belong (credentials) and how they find
//! each other (the stream map and the shield set in Redis, crate
//! `livecdn-cluster`). Without `redis` an edge uses its configured origins
//! and shields and one origin runs as it always has.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a map entry or a shield's membership lives unless renewed; a
/// node renews at a third of it, so one lost renewal does not drop it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3);
/// How long an edge trusts what it read from the map. Edges follow a
/// stream that moved to another origin within this (plus one fetch).
pub const DEFAULT_MAP_TTL: Duration = Duration::from_millis(500);
/// How long an edge holds a request for a stream in failover (its origin
/// stopped answering, or the map stopped naming one a moment ago) for the
/// next origin: a dead origin's entry lapses within a lease, a backup
/// claims it within one renewal (a third of a lease), and the edge reads
/// the map again within `map_ttl`.
pub const DEFAULT_FAILOVER_HOLD: Duration = DEFAULT_LEASE
    .saturating_add(Duration::from_millis(DEFAULT_LEASE.as_millis() as u64 / 3))
    .saturating_add(DEFAULT_MAP_TTL);

/// The origin's `[cluster]`: credentials it checks (`livecdn cluster-key
/// NODE`, signed with `secret`; push subscriptions always need one, HTTP
/// pulls under `/live/` when `require_credential` is set) and the streams
/// it announces in the stream map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `/live/` requests over HTTP need `Authorization: Bearer CREDENTIAL`
    /// with a valid cluster credential, else 403: the origin then serves
    /// media only to the operator's edges and shields (whose playback
    /// tokens guard the viewers). Fails closed without `secret`.
    pub require_credential: bool,
    /// `redis://HOST:PORT[/DB]` (LIVECDN_REDIS): every stream this origin
    /// ingests is entered in the stream map there, so edges and shields
    /// pull each stream from the origin that has it.
    pub redis: Option<String>,
    /// The base URL edges and shields reach this origin's HTTP at
    /// (`http://origin-0.origin:8080`); unset: the bound HTTP address,
    /// which must then not be a wildcard.
    pub advertise: Option<String>,
    /// `HOST:PORT` of this origin's push endpoint as edges reach it; unset:
    /// `advertise`'s host with the bound push port.
    pub advertise_push: Option<String>,
    /// Lifetime of this origin's map entries unless renewed.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            require_credential: false,
            redis: None,
            advertise: None,
            advertise_push: None,
            lease: DEFAULT_LEASE,
        }
    }
}

/// The edge's and shield's `[cluster]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeClusterConfig {
    /// `redis://HOST:PORT[/DB]` (LIVECDN_REDIS): each stream's origin is
    /// read from the stream map there (configured origins then serve only
    /// what the map does not name: recordings), shields are the live set
    /// announced there as well as any configured, and chat rooms span
    /// every edge on it (unless `chat.redis` names another).
    pub redis: Option<String>,
    /// A shield's base URL as edges reach it; with `redis`, a shield
    /// announces itself under it. Unset: the bound HTTP address, which
    /// must then not be a wildcard.
    pub advertise: Option<String>,
    /// Lifetime of a shield's membership unless renewed.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long an entry read from the map is used before it is read again.
    #[serde(with = "humantime_serde")]
    pub map_ttl: Duration,
    /// How long a request for a live stream in failover is held for the
    /// next origin before it fails (404 once no origin has the stream,
    /// 502 while the map still names the dead one). Cover the origins'
    /// lease and a third.
    #[serde(with = "humantime_serde")]
    pub failover_hold: Duration,
}

impl Default for EdgeClusterConfig {
    fn default() -> Self {
        Self {
            redis: None,
            advertise: None,
            lease: DEFAULT_LEASE,
            map_ttl: DEFAULT_MAP_TTL,
            failover_hold: DEFAULT_FAILOVER_HOLD,
        }
    }
}
