//! How every node reaches the cluster's Redis: the stream map, the shield
//! set and chat share one Redis (`cluster.redis`), so they share one way
//! of talking to it. A connection opens lazily (a node starts while Redis
//! is down and works once it is up), reconnects with a capped backoff, and
//! a command that takes too long fails, so the caller keeps what it knew
//! instead of waiting on a Redis that has gone away.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// A command (or a connection attempt) that takes longer fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A multiplexed, reconnecting connection to `client`'s Redis, opened on
/// first use. Fails only on a client it cannot use (a bad URL scheme).
pub fn lazy_manager(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(BACKOFF_MAX);
    client.get_connection_manager_lazy(config)
}
