//! The origin's entries in the cluster's stream map (`cluster.redis`):
//! every stream it ingests, so edges and shields pull each stream from the
//! origin that has it ([`livecdn_cluster`]).

use crate::OriginState;
use livecdn_cluster::{Announcer, Store};
use livecdn_shared::config::ClusterConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why the stream map cannot be joined as configured.
#[derive(Debug, thiserror::Error)]
pub enum StreamMapError {
    #[error("cluster.redis: {0}")]
    Redis(#[from] livecdn_cluster::ClusterError),
    /// Edges could not reach the address this origin would announce.
    #[error(
        "cluster.advertise is needed: the HTTP listener {0} is a wildcard address edges cannot use"
    )]
    NoAdvertise(SocketAddr),
    #[error("cluster.advertise {0:?} is not an http:// or https:// URL")]
    BadAdvertise(String),
}

/// The announcer `config` asks for, with the bound addresses filling in
/// what it leaves out; `None` without `redis`.
pub fn announcer(
    config: &ClusterConfig,
    http: SocketAddr,
    push: Option<SocketAddr>,
) -> Result<Option<Announcer>, StreamMapError> {
    let Some(url) = &config.redis else {
        return Ok(None);
    };
    let base = match &config.advertise {
        Some(a) if a.starts_with("http://") || a.starts_with("https://") => {
            a.trim_end_matches('/').to_string()
        }
        Some(a) => return Err(StreamMapError::BadAdvertise(a.clone())),
        None if http.ip().is_unspecified() => return Err(StreamMapError::NoAdvertise(http)),
        None => format!("http://{http}"),
    };
    let push = match (&config.advertise_push, push) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(p)) => Some(format!("{}:{}", host_of(&base), p.port())),
        (None, None) => None,
    };
    Ok(Some(Announcer {
        store: Store::open(url)?,
        node: base.clone(),
        http: base,
        push,
        lease: config.lease,
    }))
}

/// The host part of `http://HOST:PORT/...` (brackets kept for IPv6).
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    }
}

/// Keeps this origin's live streams in the map until `stop`.
pub async fn run(state: Arc<OriginState>, announcer: Announcer, stop: CancellationToken) {
    let live_state = state.clone();
    let live = move || live_state.registry.live(Instant::now());
    let wake = Arc::new(tokio::sync::Notify::new());
    // The registry's own notify is a single permit; relay it into the
    // announcer's.
    let relay = {
        let (state, wake, stop) = (state.clone(), wake.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = state.registry.attached.notified() => wake.notify_one(),
                    _ = stop.cancelled() => return,
                }
            }
        })
    };
    let renumber_state = state.clone();
    let renumber =
        move |stream: &str, instance: u64, r| renumber_state.registry.renumber(stream, instance, r);
    livecdn_cluster::announce(announcer, live, renumber, wake, stop).await;
    let _ = relay.await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn cluster(advertise: Option<&str>) -> ClusterConfig {
        ClusterConfig {
            redis: Some("redis://127.0.0.1:1".into()),
            advertise: advertise.map(str::to_string),
            ..ClusterConfig::default()
        }
    }

    // The lazy Redis connection needs a runtime to be made in.
    #[tokio::test]
    async fn announced_addresses_come_from_config_or_the_bound_listeners() {
        let http: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let push: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        let a = announcer(&cluster(None), http, Some(push))
            .unwrap()
            .unwrap();
        assert_eq!(a.http, "http://10.1.2.3:8080");
        assert_eq!(a.push.as_deref(), Some("10.1.2.3:8090"));

        let a = announcer(
            &cluster(Some("http://origin-0.origin:8080/")),
            "0.0.0.0:8080".parse().unwrap(),
            Some(push),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.node, "http://origin-0.origin:8080");
        assert_eq!(a.push.as_deref(), Some("origin-0.origin:8090"));

        let v6 = announcer(&cluster(Some("http://[fd00::1]:8080")), http, Some(push))
            .unwrap()
            .unwrap();
        assert_eq!(v6.push.as_deref(), Some("[fd00::1]:8090"));

        assert!(matches!(
            announcer(&cluster(None), "0.0.0.0:8080".parse().unwrap(), None),
            Err(StreamMapError::NoAdvertise(_))
        ));
        assert!(matches!(
            announcer(&cluster(Some("origin:8080")), http, None),
            Err(StreamMapError::BadAdvertise(_))
        ));
        assert!(announcer(&ClusterConfig::default(), http, None)
            .unwrap()
            .is_none());
    }
}
