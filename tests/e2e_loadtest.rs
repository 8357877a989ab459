//! `livecdn loadtest` against the real binary.
//!
//! * `play`: against `livecdn up --demo`, 500 virtual viewers for 20 s over
//!   h1 (the edge's cleartext port), h2 and h3 (its TLS port, `--insecure`)
//!   while headless Chromium plays the same stream through the same edge
//!   over the same protocol. The harness's JSON report must show bytes, no
//!   errors, every viewer playing (video and audio rendition), and a latency
//!   behind live within 300 ms of the figure hls.js itself reports (wall
//!   clock minus `hls.playingDate`, read by `player/test/play.mjs` at the
//!   end of its run), both catching up with live as hls.js does with
//!   `maxLiveSyncPlaybackRate` 1.5 (see the test's doc for why).
//! * `publish`: 20 synthetic RTMP publishers into one origin each produce a
//!   stream whose playlists parse and whose media decodes.
//!
//! Both run one at a time (a 2-core machine running Chromium, 500 viewers
//! and the server must not also package 20 streams).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use livecdn_shared::playlist::{MediaPlaylist, MultivariantPlaylist};
use serde_json::Value;
use support::http::{get, wait_ok};
use support::{ffprobe, have, Origin, Up, SECRET};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const VIEWERS: u64 = 500;
/// Length of each harness run (`--duration`).
const RUN: Duration = Duration::from_secs(20);
/// Chromium plays this long after its launch, so its last latency reading
/// falls near the end of the harness run.
const BROWSER_SECONDS: u32 = 18;
/// Largest allowed difference between the two latency figures.
const TOLERANCE_S: f64 = 0.3;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "livecdn-e2e-loadtest-{}-{name}",
        std::process::id()
    ))
}

/// A finished child: exit success, stdout, stderr.
struct Finished {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, killing it after `limit`; output goes through
/// files so a chatty child never blocks on a full pipe.
fn run_bounded(mut cmd: Command, name: &str, limit: Duration) -> Finished {
    let (out_path, err_path) = (tmp(&format!("{name}.out")), tmp(&format!("{name}.err")));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let done = Finished {
        ok,
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    done
}

/// hls.js's `maxLiveSyncPlaybackRate` for both players (see the test's doc).
const LIVE_SYNC_RATE: &str = "1.5";

/// One protocol's setup: where the harness and Chromium go.
struct Case {
    protocol: &'static str,
    /// The media URL for the harness.
    stream_url: String,
    /// The player page for Chromium.
    page_url: String,
    chromium_flags: Vec<String>,
    /// What the page reports as the protocol its media came over.
    browser_protocol: &'static str,
}

fn cases(up: &Up) -> Vec<Case> {
    let http = up.edge_http.port();
    let https = up.edge_https.port();
    let pin = format!("--ignore-certificate-errors-spki-list={}", up.spki);
    vec![
        Case {
            protocol: "h1",
            stream_url: format!("http://127.0.0.1:{http}/live/demo/master.m3u8"),
            page_url: format!(
                "http://127.0.0.1:{http}/?stream=demo&maxLiveSyncPlaybackRate={LIVE_SYNC_RATE}"
            ),
            chromium_flags: Vec::new(),
            browser_protocol: "http/1.1",
        },
        Case {
            protocol: "h2",
            stream_url: format!("https://127.0.0.1:{https}/live/demo/master.m3u8"),
            page_url: format!(
                "https://localhost:{https}/?stream=demo&maxLiveSyncPlaybackRate={LIVE_SYNC_RATE}"
            ),
            chromium_flags: vec![pin.clone(), "--disable-quic".into()],
            browser_protocol: "h2",
        },
        Case {
            protocol: "h3",
            stream_url: format!("https://127.0.0.1:{https}/live/demo/master.m3u8"),
            page_url: format!(
                "https://localhost:{https}/?stream=demo&maxLiveSyncPlaybackRate={LIVE_SYNC_RATE}"
            ),
            chromium_flags: vec![
                pin,
                "--enable-quic".into(),
                format!("--origin-to-force-quic-on=localhost:{https}"),
                // QUIC does not fall back from ::1 to 127.0.0.1 (see
                // e2e_edge_browser.rs).
                "--host-resolver-rules=MAP localhost 127.0.0.1".into(),
            ],
            browser_protocol: "h3",
        },
    ]
}

fn harness_command(case: &Case, json: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_livecdn"));
    cmd.args(["loadtest", "play", &case.stream_url])
        .args(["--viewers", &VIEWERS.to_string()])
        .args(["--protocol", case.protocol])
        .args(["--duration", &format!("{}s", RUN.as_secs())])
        .args(["--ramp", "5s"])
        // 500 viewers x 4 requests in flight (a held reload and a part, for
        // the video and for the audio rendition) over 24 connections stays
        // below the edge's 128 concurrent streams per connection.
        .args(["--connections", "24"])
        .args(["--max-live-sync-playback-rate", LIVE_SYNC_RATE])
        .arg("--json")
        .arg(json);
    if case.stream_url.starts_with("https:") {
        cmd.arg("--insecure");
    }
    cmd
}

fn browser_command(case: &Case) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("player/test/play.mjs");
    let mut cmd = Command::new("node");
    // A frame threshold that is never reached keeps Chromium playing for the
    // whole period; the report then says ok=false, and the frames decoded
    // are checked instead.
    cmd.arg(script)
        .arg(&case.page_url)
        .args(["--seconds", &BROWSER_SECONDS.to_string()])
        .args(["--min-frames", "1000000"]);
    for f in &case.chromium_flags {
        cmd.arg(format!("--arg={f}"));
    }
    cmd
}

/// What one protocol measured.
struct Measured {
    protocol: &'static str,
    /// Median latency behind live over all viewers' samples.
    harness_s: f64,
    hlsjs_s: f64,
    /// Times hls.js's own playback stalled.
    hlsjs_stalls: u64,
    /// The harness's report says its event loop fell behind.
    harness_saturated: bool,
    /// The rest of the report, for failure messages.
    details: String,
}

/// Runs the harness and Chromium side by side; checks what each must show on
/// its own and returns the figures to compare.
fn run_case(case: &Case) -> Measured {
    let json = tmp(&format!("{}.json", case.protocol));
    let harness = {
        let cmd = harness_command(case, &json);
        let name = format!("harness-{}", case.protocol);
        std::thread::spawn(move || run_bounded(cmd, &name, RUN + Duration::from_secs(30)))
    };
    let browser = {
        let cmd = browser_command(case);
        let name = format!("chromium-{}", case.protocol);
        let limit = Duration::from_secs(u64::from(BROWSER_SECONDS) + 45);
        std::thread::spawn(move || run_bounded(cmd, &name, limit))
    };
    let (harness, browser) = (harness.join().unwrap(), browser.join().unwrap());

    let p = case.protocol;
    assert!(
        harness.ok,
        "{p}: loadtest failed:\n{}\n{}",
        harness.stdout, harness.stderr
    );
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("{p}: no JSON report ({e}):\n{}", harness.stdout));
    let _ = std::fs::remove_file(&json);
    let report: Value = serde_json::from_str(&text).unwrap();
    let s = &report["summary"];
    let h = &report["harness"];
    let context = format!(
        "{p}: {}\nharness: {h}\nerrors: {}",
        harness.stdout, s["errors"]
    );
    assert_eq!(report["run"]["protocol"], p, "{context}");
    assert!(s["bytes"].as_u64().unwrap_or(0) > 0, "{context}");
    assert_eq!(s["errors"], serde_json::json!({}), "no errors: {context}");
    assert_eq!(h["peak_viewers"], VIEWERS, "{context}");
    assert_eq!(
        s["time_to_first_part"]["count"], VIEWERS,
        "every viewer played: {context}"
    );
    assert_eq!(
        s["audio_requests_by_kind"]["init"]["total"]["count"], VIEWERS,
        "every viewer followed the audio rendition: {context}"
    );

    let line = browser.stdout.lines().last().unwrap_or_default();
    let chromium: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{p}: browser driver output is not JSON ({e}): {}\n{}",
            browser.stdout, browser.stderr
        )
    });
    assert!(chromium["fatalError"].is_null(), "{p}: {chromium}");
    assert_eq!(chromium["protocol"], case.browser_protocol, "{chromium}");
    // 30 fps for most of the period.
    assert!(
        chromium["decodedFrames"].as_u64().unwrap_or(0) >= 150,
        "{p}: Chromium barely played: {chromium}"
    );
    // Wall clock minus PROGRAM-DATE-TIME at the playhead, as the harness
    // measures it (hls.js's own `latency` agrees within about 10 ms).
    let hlsjs_s = chromium["pdtLatency"]
        .as_f64()
        .or_else(|| chromium["latency"].as_f64())
        .unwrap_or_else(|| panic!("{p}: no hls.js latency: {chromium}"));

    let latency = &s["latency_behind_live"];
    let harness_s = latency["p50"].as_f64().unwrap() / 1000.0;
    let details = format!(
        "{p}: harness latency behind live {latency}; hls.js {hlsjs_s:.3} s, {} frames, {} stalls; \
         harness stalls {} {}; time to first part {}; harness cpu {:.0}% (max {:.0}%) loop lag {} \
         saturated {}",
        chromium["decodedFrames"],
        chromium["stalls"],
        s["stalls"],
        s["stall_duration"],
        s["time_to_first_part"],
        h["cpu_percent_mean"].as_f64().unwrap_or(0.0),
        h["cpu_percent_max"].as_f64().unwrap_or(0.0),
        h["loop_lag"],
        h["saturated"],
    );
    Measured {
        protocol: p,
        harness_s,
        hlsjs_s,
        hlsjs_stalls: chromium["stalls"].as_u64().unwrap_or(0),
        harness_saturated: h["saturated"] == true,
        details,
    }
}

/// `livecdn up --demo`, waiting (bounded) until the edge serves the stream
/// with a few complete segments.
async fn up() -> Up {
    // Without recording: its disk writes are not what is compared here, and
    // on two cores every bit of load shows in Chromium's start-up.
    let up = Origin::up_demo_with_edge_args(&["--record=none"]);
    wait_ok(
        &up.edge_url("/live/demo/master.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let f = get(&up.edge_url("/live/demo/source/index.m3u8")).await;
        let complete = MediaPlaylist::parse(&f.text())
            .map(|pl| pl.segments.iter().filter(|s| s.uri.is_some()).count())
            .unwrap_or(0);
        if complete >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no 3 segments: {}", f.text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    up
}

/// The harness and hls.js agree on latency behind live, per protocol.
///
/// Both catch up with live as hls.js does with `maxLiveSyncPlaybackRate`
/// above 1 (the harness models hls.js's latency controller), because with
/// hls.js's default of 1 a player stays as far behind live as its start-up
/// left it, and Chromium's cold start-up is not the harness's: its
/// sequential part loads from the keyframe part (10-50 ms each in the
/// browser, about 1 ms in the harness), MSE set-up, seek and decoder start
/// take 0.35-0.6 s, so one hls.js session read 1.35-1.67 s behind live on an
/// idle machine against the harness's 1.32 s median (release builds), and
/// 1.69-1.92 s against 1.42-1.43 s beside 500 viewers. Caught up, hls.js
/// settles at 1.29-1.37 s run after run (Chromium loses a little on each
/// rate change, so it settles somewhat behind the harness) and the harness
/// at 1.2-1.3 s. This test, three green runs in a row (harness p50 against
/// hls.js; no harness stalls): h1 1.223 against 1.367, 1.382 and 1.328 s,
/// h2 1.215, 1.215 and 1.207 against 1.357, 1.325 and 1.346 s, h3 1.239,
/// 1.239 and 1.247 against 1.345, 1.377 and 1.352 s. An earlier run failed
/// on h1 (harness 4.1 s behind, 1408 stalls) while other builds on the
/// shared machine held the harness's event loop up to 520 ms (its report
/// said saturated).
///
/// Two more causes were found and fixed: the demo's audio ran 2.7 ms/s
/// ahead of its video (the synthetic publisher looped 188 AAC frames per
/// 4 s clip), so hls.js, which aligns the two by timestamps, started ever
/// closer to live the longer the demo ran (h1, run first, read highest);
/// and the origin, edge and harness built unoptimised (the test profile)
/// starved Chromium on two cores (the workspace now builds them at
/// opt-level 1 in dev and test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_viewers_per_protocol_agree_with_hlsjs_on_latency() {
    if !support::browser_ready() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let up = up().await;
    let mut measured = Vec::new();
    for case in cases(&up) {
        let started = Instant::now();
        let mut m = tokio::task::block_in_place(|| run_case(&case));
        eprintln!("{} ({:.1} s)", m.details, started.elapsed().as_secs_f64());
        // A stall of Chromium's own sets hls.js's figure by the stall, not
        // by the server (one CI run: hls.js 6.2 s behind live after a 5 s
        // stall over h3, the harness steady at 1.24 s): that reference is
        // measured again, once.
        // Likewise when the harness reports its own event loop saturated
        // (one CI run: h1 harness saturated, hls.js 2.18 s behind live with
        // no stall against 1.37 and 1.34 s over h2 and h3): the machine,
        // not either player, set the figures.
        let saturated = m.harness_saturated;
        if (m.harness_s - m.hlsjs_s).abs() > TOLERANCE_S && (m.hlsjs_stalls > 0 || saturated) {
            eprintln!(
                "{}: hls.js stalled {} times, harness saturated {saturated}; measuring again",
                m.protocol, m.hlsjs_stalls
            );
            m = tokio::task::block_in_place(|| run_case(&case));
            eprintln!("{}", m.details);
        }
        measured.push(m);
    }
    let all: Vec<&str> = measured.iter().map(|m| m.details.as_str()).collect();
    for m in &measured {
        let diff = m.harness_s - m.hlsjs_s;
        assert!(
            diff.abs() <= TOLERANCE_S,
            "{}: harness {:.3} s behind live, hls.js {:.3} s: {diff:+.3} s\n{}",
            m.protocol,
            m.harness_s,
            m.hlsjs_s,
            all.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_synthetic_publishers_each_make_a_playable_stream() {
    if !have("ffprobe") {
        return;
    }
    let _serial = SERIAL.lock().await;
    // Twenty publishers from one address: past the default per-address cap.
    let origin = Origin::start(&["--rtmp-max-connections-per-ip", "0"]);
    let json = tmp("publish.json");
    let publisher = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_livecdn"));
        cmd.args(["loadtest", "publish"])
            .arg(format!("rtmp://{}/live", origin.rtmp))
            .args(["--publishers", "20", "--key-template", "load{n}"])
            .args(["--secret", SECRET, "--duration", "12s", "--json"])
            .arg(&json);
        std::thread::spawn(move || run_bounded(cmd, "publish", Duration::from_secs(40)))
    };

    // All 20 live, bounded.
    let names: Vec<String> = (1..=20).map(|n| format!("load{n}")).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let live: Vec<String> = support::streams(&origin)
            .await
            .iter()
            .filter(|s| s["live"] == true)
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect();
        if names.iter().all(|n| live.contains(n)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live after 15 s: {live:?}\n{}",
            origin.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Each stream: master and media playlists parse with a complete segment
    // (the first segment closes about two seconds in).
    let mut checked = 0;
    for (i, name) in names.iter().enumerate() {
        let master = wait_ok(
            &origin.url(&format!("/live/{name}/master.m3u8")),
            Duration::from_secs(10),
        )
        .await;
        let mv = MultivariantPlaylist::parse(&master.text())
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", master.text()));
        assert!(!mv.variants.is_empty(), "{name}: {}", master.text());
        let variant = &mv.variants[0];
        let base = format!("/live/{name}/");
        let media_url = origin.url(&format!("{base}{}", variant.uri));
        let deadline = Instant::now() + Duration::from_secs(10);
        let (pl, text) = loop {
            let f = get(&media_url).await;
            let text = f.text();
            let pl = MediaPlaylist::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"));
            if pl.segments.iter().any(|s| s.uri.is_some()) {
                break (pl, text);
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no complete segment: {text}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        for a in &mv.audio {
            let f = get(&origin.url(&format!("{base}{}", a.uri))).await;
            assert_eq!(f.status, 200, "{name} audio: {}", f.text());
            MediaPlaylist::parse(&f.text()).unwrap_or_else(|e| panic!("{name} audio: {e}"));
        }
        // Init plus a segment of a few of them decode.
        if i % 7 == 0 {
            let dir = variant
                .uri
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| format!("{d}/"));
            let map = pl.segments[0].map_uri.clone().unwrap_or("init.mp4".into());
            let init = get(&origin.url(&format!("{base}{dir}{map}"))).await;
            assert_eq!(init.status, 200, "{name} init");
            let uri = pl.segments.iter().find_map(|s| s.uri.clone()).unwrap();
            let seg = get(&origin.url(&format!("{base}{dir}{uri}"))).await;
            assert_eq!(seg.status, 200, "{name} {uri}: {text}");
            let path = tmp(&format!("{name}.mp4"));
            std::fs::write(&path, [init.body.as_ref(), seg.body.as_ref()].concat()).unwrap();
            let out = ffprobe(
                &[
                    "-count_frames",
                    "-select_streams",
                    "v",
                    "-show_entries",
                    "stream=codec_name,width,height,nb_read_frames",
                    "-of",
                    "csv=p=0",
                ],
                &path,
            );
            let _ = std::fs::remove_file(&path);
            let fields: Vec<&str> = out.trim().split(',').collect();
            assert_eq!(fields.get(..3), Some(&["h264", "640", "360"][..]), "{out}");
            let frames: u32 = fields.get(3).and_then(|f| f.parse().ok()).unwrap_or(0);
            assert!(frames >= 25, "{name} {uri}: {frames} frames decoded");
            checked += 1;
        }
    }
    assert_eq!(checked, 3);

    let done = tokio::task::block_in_place(|| publisher.join().unwrap());
    assert!(
        done.ok,
        "loadtest publish failed:\n{}\n{}",
        done.stdout, done.stderr
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["succeeded"], 20, "{report}");
}
