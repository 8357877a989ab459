//! The admin surface against real processes: `/metrics` and `/api` need
//! the admin bearer token (401 with `WWW-Authenticate` otherwise) while
//! playback and health stay open; with `http.admin_listen`, the public port
//! does not serve them at all (404) and the admin port serves only them.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::http::{get, get_with, wait_ok};
use support::{have, key, Ffmpeg, Origin, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token_and_can_move_to_their_own_port() {
    if !have("ffmpeg") {
        return;
    }
    let origin = Origin::start(&["--ladder", "source", "--admin-listen", "127.0.0.1:0"]);
    let admin = origin.admin.expect("admin= on the listening line");
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key("cam")), 60);
    wait_ok(
        &origin.url("/live/cam/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;

    // Public port: playback and health, no admin routes whatever the token.
    for path in ["/metrics", "/api/streams", "/api/streams/cam"] {
        assert_eq!(get(&origin.url(path)).await.status, 404, "{path}");
    }
    assert_eq!(get(&origin.url("/healthz")).await.status, 200);
    assert_eq!(
        get(&origin.url("/live/cam/source/index.m3u8")).await.status,
        200
    );

    // Admin port: the token decides.
    let at = |p: &str| format!("http://{admin}{p}");
    for path in ["/metrics", "/api/streams", "/api/streams/cam"] {
        for bad in ["Bearer wrong-token-0123456789", "Basic abc", "Bearer"] {
            let f = get_with(&at(path), &[("authorization", bad)], false).await;
            assert_eq!(f.status, 401, "{path} {bad}");
            assert!(f
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")));
        }
        let ok = get_with(
            &at(path),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            false,
        )
        .await;
        assert_eq!(ok.status, 200, "{path}: {}", ok.text());
    }
    assert!(get(&at("/metrics")).await.text().contains("livecdn_origin"));
    assert_eq!(get(&at("/healthz")).await.status, 200);
    // Playback is not served on the admin port.
    assert_eq!(get(&at("/live/cam/master.m3u8")).await.status, 404);
}
