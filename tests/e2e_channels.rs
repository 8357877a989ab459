//! The control plane end to end: channels created over `/api/channels` on
//! a real origin with a SQLite file, real ffmpeg publishing with the key
//! the API returned, an edge (and hls.js in Chromium, where installed)
//! playing the returned playback URL, the stream's state and viewers, a
//! restart that keeps channels and keys (and a NORMAL latency broadcast
//! after it), and stream keys that expire, are revoked and are rotated
//! while a publish is live.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::edge::{origin_with_push, Edge};
use support::http::{get, send, wait_ok};
use support::{have, wait_log, Ffmpeg, Origin};

/// The browser test and the stop test (which bounds how soon the edge
/// answers 404) run one at a time, so that a 2-core machine running
/// Chromium does not stretch the other's deadline.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh directory for this test's database.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "livecdn-e2e-channels-{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn control_config(db: &std::path::Path, extra: &str) -> String {
    format!(
        "[control]\ndatabase = {:?}\n{extra}\n",
        db.display().to_string()
    )
}

/// An origin with the control database and nothing else special.
fn origin_with_db(db: &std::path::Path) -> (Origin, support::TempConfig) {
    let conf = support::TempConfig::new("control", &control_config(db, ""));
    let origin = Origin::start(&["--config", conf.arg()]);
    (origin, conf)
}

async fn json(method: &str, url: &str, body: &str) -> (u16, Value) {
    let f = send(method, url, &[], body).await;
    let v = serde_json::from_slice(&f.body).unwrap_or(Value::Null);
    (f.status, v)
}

/// Creates channel `name` (JSON `extra` fields added); its stream key.
async fn create(origin: &Origin, name: &str, extra: &str) -> Value {
    let body = format!("{{\"name\": \"{name}\"{extra}}}");
    let (status, v) = json("POST", &origin.url("/api/channels"), &body).await;
    assert_eq!(status, 201, "{v}");
    v
}

/// Polls `/api/channels/NAME/stream` until `ok` holds (bounded); the last
/// answer.
async fn wait_stream(
    origin: &Origin,
    name: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = json(
            "GET",
            &origin.url(&format!("/api/channels/{name}/stream")),
            "",
        )
        .await;
        assert_eq!(status, 200, "{v}");
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "stream never {what}: {v}\n{}",
            origin.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Publishes with `key` and expects a refusal naming `reason` in the log.
async fn assert_refused(origin: &Origin, key: &str, reason: &str) {
    let ff = Ffmpeg::publish(&origin.rtmp_url(key), 5);
    let (ok, stderr) = ff.wait(Duration::from_secs(10));
    assert!(
        !ok && stderr != "timed out",
        "{key} was not refused: {stderr}"
    );
    wait_log(origin, reason, Duration::from_secs(5)).await;
}

/// Waits until the origin's playlist for `name` lists a complete segment.
async fn wait_live(origin: &Origin, name: &str) {
    support::http::wait_playlist(
        &origin.url(&format!("/live/{name}/source/index.m3u8")),
        Duration::from_secs(30),
        "a complete segment",
        |pl| support::http::complete_segments(pl) >= 1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_publishes_plays_through_an_edge_reports_its_viewer_and_survives_a_restart() {
    if !have("ffmpeg") {
        return;
    }
    let _heavy = HEAVY.lock().await;
    let dir = temp_dir("main");
    let db = dir.join("control.db");
    // The edge's port is named in the playback URL before the edge starts.
    let edge_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let playback = format!("http://127.0.0.1:{edge_port}");
    let config = control_config(&db, &format!("playback_url = {playback:?}"));
    let (origin, push, pin) = origin_with_push(&config, &[]);

    let created = create(&origin, "studio", "").await;
    let channel = &created["channel"];
    assert_eq!(channel["name"], "studio");
    assert_eq!(channel["latencyMode"], "LOW");
    let ingest = channel["ingestEndpoint"].as_str().unwrap().to_string();
    assert_eq!(
        ingest,
        format!("rtmp://127.0.0.1:{}/live", origin.rtmp.port())
    );
    let playback_url = channel["playbackUrl"].as_str().unwrap().to_string();
    assert_eq!(playback_url, format!("{playback}/live/studio/master.m3u8"));
    let key = created["streamKey"]["value"].as_str().unwrap().to_string();
    assert!(key.starts_with("lsk_"), "{created}");
    let day = created["streamKey"]["expiresAt"].as_u64().unwrap()
        - created["streamKey"]["createdAt"].as_u64().unwrap();
    assert_eq!(day, 24 * 3600 * 1000, "keys last 24 h by default");
    // Listed, and the key's value is never shown again.
    let (_, one) = json("GET", &origin.url("/api/channels/studio"), "").await;
    assert_eq!(one["streamKeys"][0]["id"], created["streamKey"]["id"]);
    assert!(!one.to_string().contains(&key));

    let (_, offline) = json("GET", &origin.url("/api/channels/studio/stream"), "").await;
    assert_eq!(
        (offline["state"].as_str(), offline["health"].as_str()),
        (Some("OFFLINE"), Some("UNKNOWN"))
    );

    let _ff = Ffmpeg::publish(&format!("{ingest}/{key}"), 120);
    wait_live(&origin, "studio").await;
    let edge = Edge::start_on(
        &origin,
        &["--push", &push, "--push-spki", &pin],
        &format!("127.0.0.1:{edge_port}"),
    );
    wait_ok(&playback_url, Duration::from_secs(15)).await;
    if support::browser_ready() {
        let page = format!("{playback}/?src={}", playback_url);
        let report = support::browser::play(&page, &[], 25, 30);
        assert_eq!(report["ok"], true, "hls.js through the edge: {report}");
        assert!(report["fatalError"].is_null(), "{report}");
    }
    // This test plays through the edge too while it waits: the edge reports
    // its viewers to the origin over push.
    let deadline = Instant::now() + Duration::from_secs(20);
    let live = loop {
        let f = get(&edge.url("/live/studio/source/index.m3u8")).await;
        assert_eq!(f.status, 200, "{}", f.text());
        let (_, v) = json("GET", &origin.url("/api/channels/studio/stream"), "").await;
        if v["state"] == "LIVE" && v["health"] == "HEALTHY" && v["viewerCount"].as_u64() >= Some(1)
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "not LIVE, HEALTHY, watched: {v}\n{}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(live["ingest"]["bitrateBps"].as_u64() > Some(0), "{live}");
    assert!(live["ingest"]["fps"].as_f64() > Some(10.0), "{live}");
    assert_eq!(
        live["ingest"]["keyframeIntervalS"].as_f64(),
        Some(2.0),
        "{live}"
    );

    // Restart: the channel and its key are still there.
    drop(_ff);
    drop(edge);
    let mut origin = origin;
    origin.terminate();
    assert!(
        origin.wait_exit(Duration::from_secs(15)).is_some(),
        "origin did not stop"
    );
    let (origin, _conf) = origin_with_db(&db);
    let (status, again) = json("GET", &origin.url("/api/channels/studio"), "").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["channel"]["createdAt"], channel["createdAt"]);
    // Its next broadcast in NORMAL latency mode: plain HLS, 6 s segments.
    let (status, patched) = json(
        "PATCH",
        &origin.url("/api/channels/studio"),
        r#"{"latencyMode": "NORMAL"}"#,
    )
    .await;
    assert_eq!(
        (status, patched["latencyMode"].as_str()),
        (200, Some("NORMAL"))
    );
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key), 60);
    wait_live(&origin, "studio").await;
    wait_stream(&origin, "studio", "LIVE", |v| v["state"] == "LIVE").await;
    let text = get(&origin.url("/live/studio/source/index.m3u8"))
        .await
        .text();
    assert!(text.contains("#EXT-X-TARGETDURATION:6"), "{text}");
    assert!(
        !text.contains("EXT-X-PART") && !text.contains("PRELOAD-HINT"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_keys_are_refused_and_rotation_waits_for_the_reconnect() {
    if !have("ffmpeg") {
        return;
    }
    let dir = temp_dir("keys");
    let (origin, _conf) = origin_with_db(&dir.join("control.db"));

    // A key that lives one second.
    let short = create(&origin, "brief", ", \"keyTtlSeconds\": 1").await;
    let expires = short["streamKey"]["expiresAt"].as_u64().unwrap();
    while (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64)
        <= expires
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_refused(
        &origin,
        short["streamKey"]["value"].as_str().unwrap(),
        "expired",
    )
    .await;

    // Live with the first key; rotation leaves it live.
    let first = create(&origin, "cam", "").await;
    let old = first["streamKey"]["value"].as_str().unwrap().to_string();
    let mut live = Ffmpeg::publish(&origin.rtmp_url(&old), 120);
    wait_live(&origin, "cam").await;
    let (status, rotated) = json("POST", &origin.url("/api/channels/cam/keys"), "").await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(rotated["revoked"][0], first["streamKey"]["id"]);
    assert_eq!(rotated["disconnected"], 0);
    let new = rotated["streamKey"]["value"].as_str().unwrap().to_string();
    // Still publishing: the playlist goes on past where it was.
    let pl = |t: String| {
        livecdn_shared::playlist::MediaPlaylist::parse(&t)
            .unwrap()
            .next_msn()
    };
    let before = pl(get(&origin.url("/live/cam/source/index.m3u8")).await.text());
    support::http::wait_playlist(
        &origin.url("/live/cam/source/index.m3u8"),
        Duration::from_secs(20),
        "advancing",
        |p| p.next_msn() > before + 1,
    )
    .await;
    assert!(!origin.log().contains("disconnected by the operator"));
    // The encoder reconnects: only the new key works now.
    live.stop();
    assert_refused(&origin, &old, "revoked").await;
    let _with_new = Ffmpeg::publish(&origin.rtmp_url(&new), 120);
    wait_stream(&origin, "cam", "LIVE", |v| v["state"] == "LIVE").await;

    // Revoked with disconnect: the live publisher is cut off now.
    let id = rotated["streamKey"]["id"].as_str().unwrap();
    let (status, revoked) = json(
        "DELETE",
        &origin.url(&format!("/api/channels/cam/keys/{id}?disconnect=true")),
        "",
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["disconnected"], 1, "{revoked}");
    assert!(revoked["streamKey"]["revokedAt"].is_u64());
    wait_log(
        &origin,
        "disconnected by the operator",
        Duration::from_secs(5),
    )
    .await;
    assert_refused(&origin, &new, "revoked").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_admin_token_and_bad_requests_store_nothing() {
    let dir = temp_dir("api");
    let (origin, _conf) = origin_with_db(&dir.join("control.db"));
    let url = origin.url("/api/channels");
    let wrong = [("authorization", "Bearer not-the-token")];
    for (method, path, body) in [
        ("POST", "/api/channels", r#"{"name":"x"}"#),
        ("PATCH", "/api/channels/x", r#"{"recording":true}"#),
        ("DELETE", "/api/channels/x", ""),
        ("POST", "/api/channels/x/keys", ""),
        ("DELETE", "/api/channels/x/keys/k1", ""),
    ] {
        for headers in [&wrong[..], &[("authorization", "Basic Zm9vOmJhcg==")][..]] {
            let f = send(method, &origin.url(path), headers, body).await;
            assert_eq!(f.status, 401, "{method} {path}: {}", f.text());
        }
    }
    for (body, reason) in [
        ("{\"name\": ", "invalid JSON"),
        (
            r#"{"name": "ok", "latencyMode": "LOW", "color": "red"}"#,
            "unknown field `color`",
        ),
        (r#"{"name": "no/slashes"}"#, "invalid channel name"),
        (r#"{"name": ""}"#, "invalid channel name"),
        (
            r#"{"name": "ok", "latencyMode": "FAST"}"#,
            "unknown variant `FAST`",
        ),
        (r#"{"name": "ok", "keyTtlSeconds": 0}"#, "keyTtlSeconds"),
        (r#"{"latencyMode": "LOW"}"#, "missing field `name`"),
    ] {
        let f = send("POST", &url, &[], body).await;
        assert_eq!(f.status, 400, "{body}: {}", f.text());
        assert!(f.text().contains(reason), "{body}: {}", f.text());
    }
    let big = format!(r#"{{"name": "ok", "pad": "{}"}}"#, "x".repeat(70_000));
    let f = send("POST", &url, &[], &big).await;
    assert_eq!(f.status, 400, "{}", f.text());
    assert!(f.text().contains("body larger than"), "{}", f.text());
    let (_, list) = json("GET", &url, "").await;
    assert_eq!(
        list["channels"].as_array().map(Vec::len),
        Some(0),
        "nothing stored: {list}"
    );
    // A real one, then the same name again.
    create(&origin, "ok", "").await;
    let f = send("POST", &url, &[], r#"{"name": "ok"}"#).await;
    assert_eq!(f.status, 409, "{}", f.text());
    let f = send(
        "PATCH",
        &origin.url("/api/channels/ok"),
        &[],
        r#"{"ladder": "source", "authorized": true}"#,
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.text());
    let patched: Value = serde_json::from_slice(&f.body).unwrap();
    assert_eq!(
        (patched["ladder"].as_str(), patched["authorized"].as_bool()),
        (Some("source"), Some(true))
    );
    assert!(
        patched["playbackAuth"]["exampleToken"].is_string(),
        "{patched}"
    );
    let f = send("PATCH", &origin.url("/api/channels/nope"), &[], "{}").await;
    assert_eq!(f.status, 404, "{}", f.text());
    // Reads need the token too (no public reads configured).
    let f = support::http::get_with(&url, &wrong, false).await;
    assert_eq!(f.status, 401);
    let f = send("DELETE", &origin.url("/api/channels/ok"), &[], "").await;
    assert_eq!(f.status, 200, "{}", f.text());
    assert_eq!(get(&origin.url("/api/channels/ok")).await.status, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_stream_cuts_the_publisher_and_purges_the_edge() {
    if !have("ffmpeg") {
        return;
    }
    let _heavy = HEAVY.lock().await;
    let dir = temp_dir("stop");
    let (origin, push, pin) = origin_with_push(&control_config(&dir.join("control.db"), ""), &[]);
    let created = create(&origin, "show", "").await;
    let key = created["streamKey"]["value"].as_str().unwrap().to_string();
    let ff = Ffmpeg::publish(&origin.rtmp_url(&key), 120);
    wait_live(&origin, "show").await;
    let edge = Edge::start(&origin, &["--push", &push, "--push-spki", &pin]);
    let playlist = edge.url("/live/show/source/index.m3u8");
    let pl = support::http::wait_playlist(
        &playlist,
        Duration::from_secs(15),
        "a complete segment",
        |p| support::http::complete_segments(p) >= 1,
    )
    .await;
    // The stop reaches this edge by push: wait until its subscription is
    // up (the origin counts the edge's viewers only over push), so the
    // test does not depend on how soon the edge dials.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        get(&playlist).await; // stay a viewer
        let (_, info) = json("GET", &origin.url("/api/streams/show"), "").await;
        if info["viewers"].as_u64().is_some_and(|n| n >= 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge never subscribed by push: {info}\n{}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A segment the edge has cached.
    let segment = edge.url(&format!("/live/show/source/{}.m4s", pl.media_sequence));
    get(&segment).await;
    assert_eq!(
        get(&segment).await.header("x-cache").as_deref(),
        Some("HIT")
    );
    // And a part of it.
    let part_url = edge.url(&format!("/live/show/source/{}.0.m4s", pl.media_sequence));
    get(&part_url).await;
    assert_eq!(
        get(&part_url).await.header("x-cache").as_deref(),
        Some("HIT")
    );

    // The edge's purge API, as an operator calls it.
    let purge = edge.url("/api/purge?stream=show");
    let f = send("POST", &purge, &[("authorization", "Bearer wrong")], "").await;
    assert_eq!(f.status, 401);
    for bad in [
        "/api/purge",
        "/api/purge?stream=a/b",
        "/api/purge?prefix=live",
        "/api/purge?x=1",
    ] {
        let f = send("POST", &edge.url(bad), &[], "").await;
        assert_eq!(f.status, 400, "{bad}: {}", f.text());
    }
    let (status, purged) = json("POST", &purge, "").await;
    assert_eq!(status, 200, "{purged}");
    assert!(purged["purged"].as_u64() >= Some(1), "{purged}");
    let again = get(&segment).await;
    assert_eq!(
        (again.status, again.header("x-cache").as_deref()),
        (200, Some("MISS"))
    );
    assert_eq!(
        get(&segment).await.header("x-cache").as_deref(),
        Some("HIT")
    );

    // A player holding a blocking reload for the next part at the edge.
    // The stop comes once the edge holds that reload for the push (else the
    // request could reach the edge after the stream is gone: a 404). Should
    // the part be there already when the request comes, it is answered at
    // once: ask again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let held = 'held: loop {
        let pl =
            livecdn_shared::playlist::MediaPlaylist::parse(&get(&playlist).await.text()).unwrap();
        // The first part of the segment after the next: it is a good second
        // away, so the stop below reaches the edge before it would.
        let (msn, _) = pl.next_part();
        let held_url = format!("{playlist}?_HLS_msn={}&_HLS_part=0", msn + 1);
        let held = tokio::spawn(async move { get(&held_url).await });
        while !held.is_finished() {
            let m = get(&edge.url("/metrics")).await.text();
            if m.lines().any(|l| {
                l.strip_prefix("livecdn_edge_push_waiting ")
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v >= 1.0)
            }) {
                break 'held held;
            }
            assert!(Instant::now() < deadline, "the reload is not held: {m}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(Instant::now() < deadline, "no reload was ever held");
    };

    let (status, stopped) = json(
        "POST",
        &origin.url("/api/channels/show/stop"),
        r#"{"revokeKeys": true}"#,
    )
    .await;
    let stopped_at = Instant::now();
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(
        (
            stopped["stopped"].as_bool(),
            stopped["disconnected"].as_u64()
        ),
        (Some(true), Some(1))
    );
    assert_eq!(stopped["revoked"][0], created["streamKey"]["id"]);
    let held = held.await.unwrap();
    assert_eq!(held.status, 200, "{}", held.text());
    assert!(
        held.text().contains("#EXT-X-ENDLIST"),
        "the player sees ENDLIST:\n{}",
        held.text()
    );
    // Within a second the edge answers 404 for the playlists, and the
    // segment and part it held are gone from its cache.
    loop {
        let (p, s, pt) = (
            get(&playlist).await,
            get(&segment).await,
            get(&part_url).await,
        );
        // (A 404 may itself be cached briefly: what matters is that the
        // media is no longer served.)
        if [&p, &s, &pt].iter().all(|f| f.status == 404) {
            break;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(1),
            "edge still serves: playlist {} segment {} {:?}\n{}",
            p.status,
            s.status,
            s.header("x-cache"),
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("edge answers 404 {:?} after the stop", stopped_at.elapsed());
    assert_eq!(get(&edge.url("/live/show/master.m3u8")).await.status, 404);
    // The publisher was cut off, and its revoked key cannot come back.
    let (_, exited) = ff.wait(Duration::from_secs(10));
    assert_ne!(exited, "timed out", "ffmpeg is still publishing");
    wait_log(
        &origin,
        "disconnected by the operator",
        Duration::from_secs(5),
    )
    .await;
    assert_refused(&origin, &key, "revoked").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorized_channel_needs_a_playback_token_at_the_origin_and_the_edge() {
    if !have("ffmpeg") {
        return;
    }
    let dir = temp_dir("authorized");
    let (origin, _conf) = origin_with_db(&dir.join("control.db"));
    let created = create(&origin, "vip", ", \"authorized\": true").await;
    let auth = &created["channel"]["playbackAuth"];
    assert_eq!(auth["queryParameter"], "token", "{created}");
    let token = auth["exampleToken"].as_str().unwrap().to_string();
    let key = created["streamKey"]["value"].as_str().unwrap().to_string();
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key), 120);
    let other = livecdn_shared::auth::sign_token(
        support::SECRET.as_bytes(),
        "another",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600,
    );
    // Directly at the origin: a token in the query, then its cookie.
    let master = origin.url("/live/vip/master.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let f = get(&format!("{master}?token={token}")).await;
        if f.status == 200 {
            break f;
        }
        assert!(Instant::now() < deadline, "{} {}", f.status, f.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(first.header("livecdn-access").as_deref(), Some("token"));
    let cookie = first.header("set-cookie").unwrap();
    assert!(cookie.starts_with("livecdn_token_vip="), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(get(&master).await.status, 403);
    assert_eq!(get(&format!("{master}?token={other}")).await.status, 403);
    let with_cookie = support::http::get_with(&master, &[("cookie", &cookie)], false).await;
    assert_eq!(with_cookie.status, 200);

    // Through an edge that knows nothing of the channel: it learns the
    // rule from the origin's answer, and refuses the very first viewer
    // without a token.
    let edge = Edge::start(&origin, &["--secret", support::SECRET]);
    let at_edge = edge.url("/live/vip/master.m3u8");
    assert_eq!(get(&at_edge).await.status, 403);
    assert_eq!(
        get(&at_edge).await.status,
        403,
        "a cached answer is checked too"
    );
    let f = get(&format!("{at_edge}?token={token}")).await;
    assert_eq!(f.status, 200, "{}", f.text());
    let playlist = edge.url("/live/vip/source/index.m3u8");
    assert_eq!(get(&playlist).await.status, 403);
    let f = support::http::get_with(&playlist, &[("cookie", &cookie)], false).await;
    assert_eq!(f.status, 200, "{}", f.text());

    // Opened: the origin serves anyone again.
    let (status, _) = json(
        "PATCH",
        &origin.url("/api/channels/vip"),
        r#"{"authorized": false}"#,
    )
    .await;
    assert_eq!(status, 200);
    let open = get(&master).await;
    assert_eq!(open.status, 200);
    assert!(open.header("livecdn-access").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_purges_an_edge_that_pulls_without_push_over_http() {
    if !have("ffmpeg") {
        return;
    }
    let _heavy = HEAVY.lock().await;
    let dir = temp_dir("purge-http");
    let edge_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!("purge_edges = [\"http://127.0.0.1:{edge_port}\"]");
    let conf = support::TempConfig::new("purge", &control_config(&dir.join("control.db"), &extra));
    let origin = Origin::start(&["--config", conf.arg()]);
    let created = create(&origin, "pulled", "").await;
    let key = created["streamKey"]["value"].as_str().unwrap().to_string();
    let _ff = Ffmpeg::publish(&origin.rtmp_url(&key), 120);
    wait_live(&origin, "pulled").await;
    let edge = Edge::start_on(&origin, &[], &format!("127.0.0.1:{edge_port}"));
    let pl = support::http::wait_playlist(
        &edge.url("/live/pulled/source/index.m3u8"),
        Duration::from_secs(15),
        "a complete segment",
        |p| support::http::complete_segments(p) >= 1,
    )
    .await;
    let segment = edge.url(&format!("/live/pulled/source/{}.m4s", pl.media_sequence));
    get(&segment).await;
    assert_eq!(
        get(&segment).await.header("x-cache").as_deref(),
        Some("HIT")
    );
    let (status, stopped) = json("POST", &origin.url("/api/channels/pulled/stop"), "").await;
    let stopped_at = Instant::now();
    assert_eq!(
        (status, stopped["stopped"].as_bool()),
        (200, Some(true)),
        "{stopped}"
    );
    // The cached segment would be served for its whole lifetime: only the
    // purge call takes it away.
    loop {
        let f = get(&segment).await;
        if f.status == 404 {
            break;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(1),
            "segment still served: {} {:?}\n{}",
            f.status,
            f.header("x-cache"),
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        edge.log().contains("purged by the operator"),
        "{}",
        edge.log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
