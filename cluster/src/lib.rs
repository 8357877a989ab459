//! The cluster's shared state in Redis (DESIGN.md section 8): which origin
//! has each live stream, and which shields are up.
//!
//! * **Stream map.** An origin enters every stream it ingests under
//!   `livecdn:cluster:stream:NAME` (a hash: node, HTTP base, push address,
//!   when its publisher attached, whether it is a backup), with a lease it
//!   renews while the stream lives there ([`announce`]). A primary
//!   publisher outranks a backup, then the newest attach wins: a publisher
//!   that reconnects to another origin moves the entry, and the origin it
//!   left stops renewing once it sees another node there; a backup
//!   publishing to a second origin takes over only when the primary's
//!   entry lapses (its origin died). Edges and shields
//!   read it through [`StreamMap`]: cached for `map_ttl`, read again on a
//!   miss or after a failed fetch, and the last entry kept while Redis is
//!   unreachable.
//! * **Shield set.** Shields announce their base URL in the sorted set
//!   `livecdn:cluster:shields`, scored by lease expiry in Redis's own clock
//!   ([`Members`]); edges rendezvous-hash each stream over the live set, so
//!   a shield that joins or dies moves only its share of streams.
//!
//! * **Numbering.** Beside each entry the holder writes where its media
//!   numbering stands, and a hub that takes a stream over renumbers past
//!   it ([`numbering`]), so no object name means one origin's media in one
//!   cache and another's elsewhere.
//!
//! Every write is a Lua script, so compare-and-set needs no transaction,
//! and the leases use Redis's clock (`TIME`), never a node's.

mod announce;
pub mod connection;
mod entry;
mod map;
mod members;
pub mod numbering;
mod store;

pub use announce::{announce, Announcer, Claims, Live, Plan};
pub use entry::{stream_key, OriginEntry, SHIELDS_KEY};
pub use map::{MapCache, StreamMap};
pub use members::Members;
pub use numbering::{Position, Rebase, Report};
pub use store::{Claim, Store};

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL, the connection or a command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A reply that is not what the script returns.
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}
