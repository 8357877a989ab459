//! The shipped monitoring config: `promtool check rules` passes on the
//! Prometheus alerting rules, the Grafana dashboard is valid JSON with a
//! query per panel, and every metric either of them names is exported by a
//! running origin or edge (`livecdn up --demo`, scraped after some viewing
//! through the edge), and a real Prometheus scrapes them: every family
//! read with its declared type, every rule evaluated.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::http::{get, wait_ok};
use support::{have, Origin};

fn shipped(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// Every `livecdn_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("livecdn_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every `expr` of the dashboard's panels.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    let mut out = Vec::new();
    for p in panels {
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("no targets: {p}"));
        assert!(!targets.is_empty(), "{p}");
        for t in targets {
            out.push(
                t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no expr: {t}"))
                    .to_string(),
            );
        }
    }
    out
}

/// `livecdn up --demo` with its edge, once the edge serves the stream.
async fn demo_through_the_edge() -> support::Up {
    let up = Origin::up_demo_with_edge();
    wait_ok(
        &up.edge_url("/live/demo/master.m3u8"),
        Duration::from_secs(30),
    )
    .await;
    up
}

#[test]
fn promtool_accepts_the_alerting_rules() {
    if !have("promtool") {
        assert!(
            !support::ci(),
            "promtool is missing (Debian package prometheus)"
        );
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/livecdn-alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_rules_name_is_exported() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&shipped("config/grafana/livecdn-dashboard.json")).unwrap();
    let mut wanted = BTreeSet::new();
    for q in dashboard_queries(&dashboard) {
        let names = metric_names(&q);
        assert!(!names.is_empty(), "a query naming no livecdn metric: {q}");
        wanted.extend(names);
    }
    wanted.extend(metric_names(&shipped(
        "config/prometheus/livecdn-alerts.yml",
    )));
    if !have("ffmpeg") {
        return;
    }
    // Live through the edge (a viewer, cache hits and misses), with the
    // ladder's rungs running.
    let up = demo_through_the_edge().await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut exported = BTreeSet::new();
    loop {
        for _ in 0..3 {
            get(&up.edge_url("/live/demo/source/index.m3u8")).await;
        }
        exported.clear();
        for url in [up.origin.url("/metrics"), up.edge_url("/metrics")] {
            let f = get(&url).await;
            assert_eq!(f.status, 200, "{url}");
            for line in f.text().lines() {
                let name = line
                    .strip_prefix("# TYPE ")
                    .unwrap_or(line)
                    .split(['{', ' '])
                    .next()
                    .unwrap_or("");
                if name.starts_with("livecdn_") {
                    exported.insert(name.to_string());
                }
            }
        }
        let missing: Vec<_> = wanted.difference(&exported).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "named by the dashboard or rules but not exported: {missing:?}\nexported: {exported:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "{} metric names checked against {} exported",
        wanted.len(),
        exported.len()
    );
}

#[test]
fn names_are_found_in_queries() {
    let q = r#"sum by (instance) (rate(livecdn_edge_cache_total{status="hit"}[1m])) / livecdn_origin_x"#;
    let names: Vec<_> = metric_names(q).into_iter().collect();
    assert_eq!(names, ["livecdn_edge_cache_total", "livecdn_origin_x"]);
}

/// A real `prometheus` server on a free port, with its own data directory
/// and config; killed (and its directory removed) on drop.
struct Prometheus {
    child: std::process::Child,
    dir: std::path::PathBuf,
    base: String,
}

impl Prometheus {
    /// Scrapes `targets` (job name, `host:port`) every second with the
    /// admin token, and evaluates the shipped alerting rules every second.
    fn start(targets: &[(&str, std::net::SocketAddr)]) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("livecdn-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rules =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus/livecdn-alerts.yml");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
            rules.display()
        );
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    authorization:\n      credentials: {}\n    static_configs:\n      - targets: ['{addr}']\n",
                support::ADMIN_TOKEN
            ));
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        Prometheus {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A `/api/v1/...` answer's `data`; `None` until Prometheus listens
    /// and answers.
    async fn api(&self, path: &str) -> Option<serde_json::Value> {
        let authority = self.base.trim_start_matches("http://");
        tokio::net::TcpStream::connect(authority).await.ok()?;
        let f = get(&format!("{}/api/v1/{path}", self.base)).await;
        let v: serde_json::Value = serde_json::from_slice(&f.body).ok()?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every `# TYPE` line of an exposition: family name -> type. A family
/// declared twice (a gauge and a counter trimmed to one name, say) is an
/// error in both text formats.
fn declared_types(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let before = out.insert(name.to_string(), kind.to_string());
        assert!(before.is_none(), "family {name} declared twice:\n{text}");
    }
    out
}

/// A real Prometheus scrapes the origin and the edge of `livecdn up --demo`
/// (it asks for OpenMetrics first, so the strict parser reads every line):
/// both targets are up with no scrape error, every family either node
/// declares reaches Prometheus's metadata with its type (a counter written
/// by hand is as much a counter as the registry's), and every shipped
/// alerting rule evaluates against the scraped series without error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_family_and_evaluates_the_rules() {
    if !have("prometheus") || !have("ffmpeg") {
        assert!(
            !support::ci(),
            "prometheus or ffmpeg is missing (Debian packages prometheus, ffmpeg)"
        );
        return;
    }
    let up = demo_through_the_edge().await;
    get(&up.edge_url("/live/demo/source/index.m3u8")).await;
    let prom = Prometheus::start(&[("origin", up.origin.http), ("edge", up.edge_http)]);
    let auth = format!("Bearer {}", support::ADMIN_TOKEN);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut declared = std::collections::BTreeMap::new();
    for url in [up.origin.url("/metrics"), up.edge_url("/metrics")] {
        let f = support::http::get_with(&url, &[("authorization", &auth)], false).await;
        assert_eq!(f.status, 200, "{url}");
        assert_eq!(
            f.header("content-type").as_deref(),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            "{url}"
        );
        declared.extend(declared_types(&f.text()));
    }
    assert!(declared.len() > 20, "{declared:?}");

    // 1. Both targets scraped, with no error.
    loop {
        let targets = prom.api("targets").await;
        let active = targets
            .as_ref()
            .and_then(|t| t["activeTargets"].as_array().cloned())
            .unwrap_or_default();
        let up_now = active.iter().filter(|t| t["health"] == "up").count();
        for t in &active {
            assert_eq!(
                t["lastError"].as_str().unwrap_or(""),
                "",
                "scrape error: {t}\n{}",
                prom.log()
            );
        }
        if up_now == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "targets not up: {targets:?}\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 2. Every declared family in the metadata, with its type.
    loop {
        let meta = prom.api("metadata").await.unwrap_or_default();
        let wrong: Vec<String> = declared
            .iter()
            .filter(|(name, kind)| meta[name.as_str()][0]["type"] != kind.as_str())
            .map(|(name, kind)| format!("{name} {kind}: {}", meta[name.as_str()]))
            .collect();
        if wrong.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "families Prometheus did not read as declared: {wrong:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 3. Every alerting rule evaluated, none in error.
    loop {
        let rules = prom.api("rules").await.unwrap_or_default();
        let all: Vec<serde_json::Value> = rules["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        for r in &all {
            assert_ne!(r["health"], "err", "rule in error: {r}");
        }
        if !all.is_empty() && all.iter().all(|r| r["health"] == "ok") {
            eprintln!(
                "{} families read with their types, {} rules evaluated",
                declared.len(),
                all.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules not evaluated: {rules}\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
