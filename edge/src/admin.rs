//! The admin service: liveness and readiness, Prometheus metrics and the
//! JSON API. It reads the shared handles and never touches playback.

use crate::body::full;
use crate::error::EdgeError;
use crate::metrics::Labels;
use crate::serve::Body;
use crate::state::Edge;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use livecdn_shared::auth::valid_stream_name;
use livecdn_shared::exposition::{self, Kind};
use livecdn_shared::route::{Route, MAX_PATH};
use std::time::Instant;

/// Answers an admin route; `None` if `route` is not one.
pub fn serve(edge: &Edge, route: &Route<'_>) -> Option<(&'static str, Response<Body>)> {
    let resp = match route {
        Route::Healthz => text(StatusCode::OK, "ok\n"),
        Route::Readyz => {
            if edge.upstreams.ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n")
            }
        }
        Route::Metrics => metrics(edge),
        Route::Time => time(),
        Route::ApiStreams => api(edge),
        _ => return None,
    };
    Some((route.kind().as_str(), resp))
}

/// What `POST /api/purge` names: `?stream=NAME` (everything under
/// `/live/NAME/`) or `?prefix=/PATH`, exactly one of them.
pub fn purge_prefix(query: Option<&str>) -> Result<String, String> {
    let mut prefix = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| "not UTF-8".to_string())?;
        let p = match k {
            "stream" if valid_stream_name(&v) => format!("/live/{v}/"),
            "stream" => return Err("invalid stream name".into()),
            "prefix" if v.starts_with('/') && v.len() <= MAX_PATH => v.into_owned(),
            "prefix" => return Err("prefix must start with / and be at most 256 bytes".into()),
            _ => return Err(format!("unknown parameter {k:?}")),
        };
        if prefix.replace(p).is_some() {
            return Err("give one of stream= or prefix=".into());
        }
    }
    prefix.ok_or_else(|| "give stream=NAME or prefix=/PATH".into())
}

/// Fuzz body: any bytes as a purge query. Never a panic; a prefix it
/// names starts with `/`.
pub fn fuzz_purge_query(data: &[u8]) {
    if let Ok(p) = purge_prefix(Some(&String::from_utf8_lossy(data))) {
        assert!(p.starts_with('/'), "{p}");
    }
}

/// `POST /api/purge?stream=NAME` or `?prefix=/PATH`: drops the cached
/// objects of a stream or under a path prefix, and answers how many, as
/// JSON.
pub async fn purge(edge: &Edge, query: Option<&str>) -> Result<Response<Body>, EdgeError> {
    let prefix =
        purge_prefix(query).map_err(|why| EdgeError::BadRequest(format!("purge: {why}")))?;
    let purged = edge.cache.purge(&prefix).await;
    tracing::info!(%prefix, purged, "purged by the operator");
    Ok(json(
        &serde_json::json!({ "prefix": prefix, "purged": purged }),
    ))
}

fn metrics(edge: &Edge) -> Response<Body> {
    let stats = edge.cache.stats();
    let viewers = edge.viewers.counts(Instant::now());
    let rows: Vec<(Labels, f64)> = viewers
        .iter()
        .map(|(s, n)| (vec![("stream", s.to_string())], *n as f64))
        .collect();
    let health: Vec<(Labels, f64)> = edge
        .upstreams
        .all()
        .iter()
        .map(|u| {
            (
                vec![("upstream", u.base.to_string())],
                if u.is_healthy() { 1.0 } else { 0.0 },
            )
        })
        .collect();
    let mut families = edge
        .access_log
        .as_ref()
        .map(|l| l.render_metrics("livecdn_edge"))
        .unwrap_or_default();
    // WebRTC sessions served from the pushed chunks (the origin's families,
    // under this prefix), and chunks that came after a later part's.
    if let Some(chat) = &edge.chat {
        chat.metrics.render("livecdn_edge", &mut families);
    }
    if let Some(rtc) = &edge.webrtc {
        rtc.metrics.render("livecdn_edge", &mut families);
        exposition::single(
            &mut families,
            "livecdn_edge_live_late_chunks",
            Kind::Gauge,
            "Pushed chunks dropped for coming after a later part's",
            edge.live.late() as f64,
        );
    }
    let disk = edge.cache.disk().map(|d| (d.stats(), d.backend().as_str()));
    let disk_row = |f: fn(&crate::cache::DiskTierStats) -> u64| -> Vec<(Labels, f64)> {
        disk.iter()
            .map(|(s, io)| (vec![("io", io.to_string())], f(s) as f64))
            .collect()
    };
    let text = edge.metrics.render(
        &[
            (
                "cache_disk_bytes",
                "Bytes of evicted segments and init sections in the disk tier",
                disk_row(|s| s.bytes),
            ),
            (
                "cache_disk_entries",
                "Objects in the disk tier",
                disk_row(|s| s.entries),
            ),
            (
                "cache_disk_hits",
                "Requests answered from the disk tier since start",
                disk_row(|s| s.hits),
            ),
            (
                "cache_disk_writes",
                "Objects written to the disk tier since start",
                disk_row(|s| s.writes),
            ),
            (
                "cache_disk_dropped",
                "Evicted objects not written to the disk tier (queue full, already there, write failed)",
                disk_row(|s| s.dropped),
            ),
            (
                "viewers",
                "Distinct viewer sessions over two target durations",
                rows,
            ),
            (
                "push_waiting",
                "Blocking reloads held for a pushed playlist now",
                edge.push
                    .iter()
                    .map(|p| (vec![], p.waiting() as f64))
                    .collect(),
            ),
            (
                "push_connections",
                "Push connections up now (one per origin that has a watched stream)",
                edge.push
                    .iter()
                    .map(|p| (vec![], p.connections() as f64))
                    .collect(),
            ),
            (
                "cache_bytes",
                "Bytes held in the cache",
                vec![(vec![], stats.bytes as f64)],
            ),
            (
                "cache_entries",
                "Objects held in the cache",
                vec![(vec![], stats.entries as f64)],
            ),
            (
                "upstream_healthy",
                "1 if the upstream is considered healthy",
                health,
            ),
            (
                "cache_shm_bytes",
                "Bytes of cache bodies in shared memory, sent by sendfile on cleartext HTTP/1.1",
                vec![(vec![], crate::cache::shm::stored_bytes() as f64)],
            ),
            (
                "cache_shm_slabs",
                "Shared-memory slabs mapped",
                vec![(vec![], crate::cache::shm::slabs() as f64)],
            ),
            (
                "sendfile_bytes",
                "Bytes sent from shared memory without a copy since start",
                vec![(
                    vec![],
                    crate::listen::zerocopy::sendfile_bytes() as f64,
                )],
            ),
        ],
        &families,
    );
    let mut resp = Response::new(full(Bytes::from(text)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(exposition::CONTENT_TYPE),
    );
    resp
}

fn api(edge: &Edge) -> Response<Body> {
    let viewers = crate::viewers::with_webrtc(
        edge.viewers.counts(Instant::now()),
        edge.webrtc.as_ref().map(|w| &*w.metrics),
    );
    let stats = edge.cache.stats();
    let body = serde_json::json!({
        "role": edge.config.role,
        "streams": viewers.iter().map(|(s, n, w)| serde_json::json!({"name": s, "viewers": n, "webrtc_viewers": w})).collect::<Vec<_>>(),
        "cache": {
            "hits": stats.hits, "misses": stats.misses, "coalesced": stats.coalesced,
            "stale": stats.stale, "timeouts": stats.timeouts, "bytes": stats.bytes, "entries": stats.entries,
            "disk": edge.cache.disk().map(|d| {
                let s = d.stats();
                serde_json::json!({
                    "io": d.backend().as_str(), "bytes": s.bytes, "entries": s.entries,
                    "hits": s.hits, "writes": s.writes, "dropped": s.dropped, "read_errors": s.read_errors,
                })
            }),
        },
        "timing": edge.streams.snapshot().into_iter().map(|(s, p)| (s, serde_json::json!({
            "part_target": p.part_target.as_secs_f64(),
            "target_duration": p.target_duration.as_secs_f64(),
        }))).collect::<serde_json::Map<_, _>>(),
        "upstreams": edge.upstreams.all().iter().map(|u| serde_json::json!({"url": u.base, "healthy": u.is_healthy()})).collect::<Vec<_>>(),
        // With a stream map: where each watched stream comes from, and the
        // shields this edge hashes over.
        "cluster": edge.upstreams.cluster().map(|c| serde_json::json!({
            "redis_reachable": c.map.reachable(),
            "shields": c.shields.as_ref().map(|s| s.live().to_vec()),
            "origins": viewers.iter().map(|(s, ..)| (s.clone(), serde_json::json!(c.map.last(s).map(|e| e.http.clone())))).collect::<serde_json::Map<_, _>>(),
        })),
        "latency_seconds": {
            "ttfb": latency_json(&edge.metrics.ttfb),
            "upstream": latency_json(&edge.metrics.upstream),
        },
    });
    json(&body)
}

/// A JSON answer, never cached.
fn json(body: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(body.to_string())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The edge's own clock (`UTCTiming` of the MPDs it serves); never cached.
fn time() -> Response<Body> {
    let now = livecdn_shared::dash::format_time(std::time::SystemTime::now());
    let mut r = Response::new(full(Bytes::from(now)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A latency histogram as `{count, p50, p90, p99, max}` (seconds).
fn latency_json(h: &crate::metrics::Latency) -> serde_json::Value {
    let (count, [p50, p90, p99, max]) = h.snapshot();
    serde_json::json!({"count": count, "p50": p50, "p90": p90, "p99": p99, "max": max})
}

fn text(status: StatusCode, t: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(t.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn purge_names_one_stream_or_one_prefix() {
        assert_eq!(purge_prefix(Some("stream=cam")).unwrap(), "/live/cam/");
        assert_eq!(
            purge_prefix(Some("prefix=%2Flive%2Fcam%2F720p")).unwrap(),
            "/live/cam/720p"
        );
        for bad in [
            None,
            Some(""),
            Some("stream=a/b"),
            Some("stream=cam&prefix=/x"),
            Some("prefix=x"),
            Some("x=1"),
            Some("prefix=%FF"),
        ] {
            assert!(purge_prefix(bad).is_err(), "{bad:?}");
        }
        for seed in [
            "stream=cam",
            "prefix=/live/",
            "stream=%63am&",
            "prefix=/%2e%2e/",
        ] {
            fuzz_purge_query(seed.as_bytes());
        }
    }
}
