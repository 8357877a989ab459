//! A cluster on this machine: origins and edges that find each other
//! through the stream map in a real `redis-server`.

use super::chat::Redis;
use super::edge::{cluster_credential, origin_with_push, Edge};
use super::Origin;
use livecdn_cluster::Store;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// An origin in the cluster on `redis` with more origin TOML `config`,
/// packaging the source only (two origins and their publishers share this
/// machine's cores), with push and an access log; its push pin and log
/// path.
pub fn origin(redis: &Redis, name: &str, config: &str) -> (Origin, String, PathBuf) {
    let log = std::env::temp_dir().join(format!(
        "livecdn-e2e-cluster-{name}-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let url = redis.url();
    let args = [
        "--redis",
        &url,
        "--ladder",
        "source",
        "--access-log",
        log.to_str().unwrap(),
    ];
    let (origin, _push, pin) = origin_with_push(config, &args);
    (origin, pin, log)
}

/// An edge (or shield) that knows no origin but the stream map's.
pub fn node(redis: &Redis, pins: &[&str], extra: &[&str]) -> Edge {
    // Port 9 (discard) as the configured origin: nothing answers there, so
    // a fetch that did not go where the map says would fail.
    node_with_origins(redis, "http://127.0.0.1:9", pins, extra)
}

/// An edge (or shield) with `origins` configured (comma separated) for
/// what the stream map does not name: the player page, recordings.
pub fn node_with_origins(redis: &Redis, origins: &str, pins: &[&str], extra: &[&str]) -> Edge {
    let credential = format!(
        "--cluster-credential={}",
        cluster_credential(super::SECRET, "e2e")
    );
    let pins = pins.join(",");
    let url = redis.url();
    let mut args = vec!["--redis", &url, &credential];
    if !pins.is_empty() {
        args.extend(["--push-spki", &pins]);
    }
    args.extend_from_slice(extra);
    Edge::start_args(origins, "127.0.0.1:0", &args)
}

pub fn store(redis: &Redis) -> Store {
    Store::open(&redis.url()).unwrap()
}

/// Waits (bounded by `limit`) until the map names `origin` for `stream`;
/// when it did.
pub async fn wait_entry(store: &Store, stream: &str, origin: &Origin, limit: Duration) -> Instant {
    let want = format!("http://{}", origin.http);
    let deadline = Instant::now() + limit;
    loop {
        let entry = store.lookup(&[stream]).await.unwrap().pop().flatten();
        if entry.as_ref().is_some_and(|e| e.http == want) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{stream} never mapped to {want}: {entry:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
