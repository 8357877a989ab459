//! The edge's and shield's part in the cluster (`cluster.redis`): the
//! stream map it reads, the live shield set an edge follows, and the
//! membership a shield announces. Upstream selection and push use what
//! this keeps; this module only starts and feeds it.

use crate::upstream::ClusterView;
use livecdn_cluster::{Members, Store, StreamMap, SHIELDS_KEY};
use livecdn_shared::config::{EdgeConfig, EdgeRole};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often an edge reads the shield set, and probes Redis for readiness.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Why the cluster cannot be joined as configured.
#[derive(Debug, thiserror::Error)]
pub enum ClusterStartError {
    #[error("cluster.redis: {0}")]
    Redis(#[from] livecdn_cluster::ClusterError),
    #[error(
        "cluster.advertise is needed: a shield on the wildcard address {0} cannot tell edges where it is"
    )]
    NoAdvertise(SocketAddr),
}

/// This node's cluster handles.
pub struct Cluster {
    store: Store,
    pub map: Arc<StreamMap>,
    /// The live shields (edges only).
    pub shields: Option<Arc<Members>>,
    /// What a shield announces itself as.
    advertise: Option<String>,
    lease: Duration,
    failover_hold: Duration,
}

impl Cluster {
    /// The cluster `config` asks for; `None` without `cluster.redis`.
    /// `http` is the bound cleartext listener (a shield's default address).
    pub fn new(
        config: &EdgeConfig,
        http: Option<SocketAddr>,
    ) -> Result<Option<Self>, ClusterStartError> {
        let c = &config.cluster;
        let Some(url) = &c.redis else {
            return Ok(None);
        };
        let store = Store::open(url)?;
        let advertise = match (config.role, &c.advertise, http) {
            (EdgeRole::Edge, ..) => None,
            (EdgeRole::Shield, Some(a), _) => Some(a.trim_end_matches('/').to_string()),
            (EdgeRole::Shield, None, Some(h)) if h.ip().is_unspecified() => {
                return Err(ClusterStartError::NoAdvertise(h))
            }
            (EdgeRole::Shield, None, Some(h)) => Some(format!("http://{h}")),
            (EdgeRole::Shield, None, None) => None,
        };
        if config.role == EdgeRole::Shield && advertise.is_none() {
            tracing::warn!(
                "a shield without an HTTP listener or cluster.advertise is not announced"
            );
        }
        Ok(Some(Self {
            map: Arc::new(StreamMap::new(store.clone(), c.map_ttl)),
            shields: (config.role == EdgeRole::Edge)
                .then(|| Arc::new(Members::new(store.clone(), SHIELDS_KEY))),
            store,
            advertise,
            lease: c.lease,
            failover_hold: c.failover_hold,
        }))
    }

    /// What upstream selection reads.
    pub fn view(&self) -> ClusterView {
        ClusterView {
            map: self.map.clone(),
            shields: self.shields.clone(),
            failover_hold: self.failover_hold,
        }
    }

    /// Follows the shield set and probes Redis (edges), or announces this
    /// shield, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(shields) = self.shields.clone() {
            tasks.spawn(shields.follow(FOLLOW_EVERY, stop.clone()));
        }
        if let Some(me) = self.advertise.clone() {
            tracing::info!(shield = %me, "announcing this shield in the cluster");
            tasks.spawn(Members::announce(
                self.store.clone(),
                SHIELDS_KEY.to_string(),
                me,
                self.lease,
                stop.clone(),
            ));
        }
        let map = self.map.clone();
        let probe_stop = stop.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(FOLLOW_EVERY * 2);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => { map.probe().await; }
                    _ = probe_stop.cancelled() => return,
                }
            }
        });
        while tasks.join_next().await.is_some() {}
    }
}
