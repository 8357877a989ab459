//! The deployment files as operators apply them: every Kubernetes manifest
//! under `config/k8s/` validates against the API schemas
//! (`kubernetes-validate --strict`, offline), the kustomization lists them
//! and every Secret and ConfigMap they name exists, `config/compose.yaml`
//! validates (`docker-compose config`), the TOML configs behind the
//! ConfigMaps are accepted by the binary, the image ships every player
//! script the origin reads from disk, and the image builds where a
//! container engine runs.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod support;

use livecdn_shared::config::{parse_edge, parse_origin, EdgeConfig, EdgeRole};
use livecdn_shared::route::Script;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Kubernetes versions the manifests must validate against: the oldest
/// release still common in managed clusters that has everything they use
/// (mixed-protocol LoadBalancer Services: 1.26), and the newest bundled.
const K8S_VERSIONS: &[&str] = &["1.31.0", "1.37.0"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn k8s_dir() -> PathBuf {
    root().join("config/k8s")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Kubernetes objects under `config/k8s/`: every `.yaml` but the
/// kustomization, which is kustomize's input rather than an object.
fn manifests() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    out.sort();
    assert!(out.len() >= 5, "too few manifests: {out:?}");
    out
}

fn show(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether the `kubernetes_validate` module is importable by `python3` (the
/// interpreter .ci/run installs it with); under CI its absence fails.
fn have_kubernetes_validate() -> bool {
    let found = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !support::ci(),
            "kubernetes-validate is required under CI (.ci/run installs it)"
        );
        eprintln!("skipping: kubernetes-validate not installed (python3 -m pip install kubernetes-validate==1.37.0)");
    }
    found
}

/// Runs kubernetes-validate on `files` for every version in
/// [`K8S_VERSIONS`]; fails on an error and on a warning (a kind it has no
/// schema for is a warning, and would go unchecked).
fn kubernetes_validate(files: &[PathBuf]) {
    for version in K8S_VERSIONS {
        let out = Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
            .args(["--kubernetes-version", version])
            .args(files)
            .output()
            .unwrap();
        let text = show(&out);
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{text}"
        );
        assert!(
            !text.contains("WARN") && !text.contains("ERROR"),
            "kubernetes-validate {version}:\n{text}"
        );
    }
}

#[test]
fn every_manifest_validates_strictly() {
    if !have_kubernetes_validate() {
        return;
    }
    kubernetes_validate(&manifests());
}

/// With kubectl here, the rendered kustomization (generated ConfigMaps,
/// their hashed names in the workloads) validates too. kubectl is not a CI
/// requirement: the TOML files themselves are checked below.
#[test]
fn rendered_kustomization_validates() {
    let rendered = Command::new("kubectl")
        .args(["kustomize"])
        .arg(k8s_dir())
        .output();
    let rendered = match rendered {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => panic!("kubectl kustomize config/k8s:\n{}", show(&o)),
        Err(e) => {
            eprintln!("skipping: no kubectl to render config/k8s ({e}); the parts are checked on their own");
            return;
        }
    };
    if !have_kubernetes_validate() {
        return;
    }
    let text = String::from_utf8(rendered).unwrap();
    for name in ["livecdn-origin-", "livecdn-edge-", "livecdn-shield-"] {
        assert!(
            text.contains(&format!("name: {name}")),
            "no generated ConfigMap {name}*"
        );
    }
    let path = std::env::temp_dir().join(format!("livecdn-k8s-{}.yaml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    kubernetes_validate(std::slice::from_ref(&path));
    std::fs::remove_file(&path).unwrap();
}

/// The items of the YAML list under `key:` in a kustomization (`- x`
/// lines until the indentation drops back).
fn yaml_list(text: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != format!("{key}:") {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        while let Some(next) = lines.peek() {
            let t = next.trim();
            let i = next.len() - next.trim_start().len();
            if t.is_empty() || t.starts_with('#') {
                lines.next();
                continue;
            }
            if i < indent || (i == indent && !t.starts_with("- ")) {
                break;
            }
            if let Some(item) = t.strip_prefix("- ") {
                out.push(item.trim().to_string());
            }
            lines.next();
        }
    }
    out
}

#[test]
fn kustomization_lists_every_manifest_and_config() {
    let kustomization = read(&k8s_dir().join("kustomization.yaml"));
    let listed: BTreeSet<String> = yaml_list(&kustomization, "resources").into_iter().collect();
    let present: BTreeSet<String> = manifests()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, present, "kustomization.yaml resources");
    let files = yaml_list(&kustomization, "files");
    assert_eq!(files, ["origin.toml", "edge.toml", "shield.toml"]);
    for f in &files {
        assert!(k8s_dir().join(f).is_file(), "{f} is missing");
    }
}

/// Names of `kind: Secret` objects in secrets.yaml with their
/// `stringData` keys.
fn secrets() -> BTreeMap<String, BTreeSet<String>> {
    let text = read(&k8s_dir().join("secrets.yaml"));
    let mut out = BTreeMap::new();
    for doc in text.split("\n---") {
        if !doc.lines().any(|l| l.trim() == "kind: Secret") {
            continue;
        }
        let name = doc
            .lines()
            .find_map(|l| l.strip_prefix("  name: "))
            .unwrap()
            .trim()
            .to_string();
        let keys = doc
            .lines()
            .skip_while(|l| l.trim_end() != "stringData:")
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_string()))
            .collect();
        out.insert(name, keys);
    }
    out
}

/// The value of the first `field: VALUE` line among the next few lines
/// after line `i` (a `secretKeyRef:` or `configMap:` block).
fn field_after(lines: &[&str], i: usize, field: &str) -> String {
    lines[i + 1..]
        .iter()
        .take(3)
        .find_map(|l| l.trim().strip_prefix(&format!("{field}: ")))
        .unwrap_or_else(|| panic!("no {field} after line {}: {}", i + 1, lines[i]))
        .to_string()
}

/// A workload that names a Secret, a key in it or a ConfigMap that does
/// not exist never starts (CreateContainerConfigError), which schema
/// validation cannot see.
#[test]
fn every_secret_and_config_map_named_exists() {
    let secrets = secrets();
    assert_eq!(secrets.len(), 3, "{secrets:?}");
    let config_maps: BTreeSet<String> = ["livecdn-origin", "livecdn-edge", "livecdn-shield"]
        .map(String::from)
        .into();
    let mut seen = 0;
    for path in manifests() {
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        let at = |i: usize| format!("{}:{}", path.display(), i + 1);
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            if t.starts_with('#') {
                continue;
            }
            if t == "secretKeyRef:" {
                let (name, key) = (
                    field_after(&lines, i, "name"),
                    field_after(&lines, i, "key"),
                );
                let keys = secrets
                    .get(&name)
                    .unwrap_or_else(|| panic!("{}: no Secret {name}", at(i)));
                assert!(keys.contains(&key), "{}: Secret {name} has no {key}", at(i));
                seen += 1;
            } else if let Some(name) = t.strip_prefix("secretName: ") {
                assert!(secrets.contains_key(name), "{}: no Secret {name}", at(i));
                seen += 1;
            } else if t == "configMap:" {
                let name = field_after(&lines, i, "name");
                assert!(
                    config_maps.contains(&name),
                    "{}: no ConfigMap {name}",
                    at(i)
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 10, "only {seen} references found: the parse is off");
}

/// The compose file's variables, with stand-ins for the checks.
const COMPOSE_ENV: &[(&str, &str)] = &[
    ("LIVECDN_SECRET", "test-secret-0123456789"),
    ("LIVECDN_ADMIN_TOKEN", "test-admin-token-0123456789"),
    ("LIVECDN_EDGE_CREDENTIAL", "edge.1.00"),
    ("LIVECDN_SHIELD_CREDENTIAL", "shield.1.00"),
    ("LIVECDN_PUSH_DIR", "/nonexistent/push"),
    (
        "LIVECDN_PUSH_SPKI",
        "d5bDu1S1RosqP33t/4LAYKupw+1cNKMyZXcVimLd0pQ=",
    ),
];

fn docker_compose(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f")
        .arg(root().join("config/compose.yaml"))
        .args(args)
        .current_dir(root());
    for (k, _) in COMPOSE_ENV {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

#[test]
fn compose_file_validates() {
    if !support::have("docker-compose") {
        return;
    }
    let out = docker_compose(&["config", "-q"], COMPOSE_ENV);
    assert!(
        out.status.success(),
        "docker-compose config -q:\n{}",
        show(&out)
    );

    // The resolved file: four livecdn services from the one image, and the
    // origin's config is the Kubernetes one (checked below).
    let out = docker_compose(&["config"], COMPOSE_ENV);
    assert!(
        out.status.success(),
        "docker-compose config:\n{}",
        show(&out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("image: livecdn:dev").count(), 4, "{text}");
    let origin_toml = k8s_dir().join("origin.toml");
    assert!(
        text.contains(&format!(
            "{}:/etc/livecdn/origin.toml",
            origin_toml.display()
        )),
        "{text}"
    );

    // A missing secret stops compose with the hint, not a half-configured
    // cluster.
    let out = docker_compose(&["config", "-q"], &COMPOSE_ENV[1..]);
    assert!(!out.status.success(), "ran without LIVECDN_SECRET");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("openssl rand -hex 32"), "{err}");
}

fn listen(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_default()
}

/// Ports as the manifests use them: `containerPort: N`, `port: N`.
fn manifest_ports(file: &str) -> BTreeSet<u16> {
    read(&k8s_dir().join(file))
        .lines()
        .filter_map(|l| {
            let t = l.trim().trim_start_matches("- ");
            t.strip_prefix("containerPort: ")
                .or_else(|| t.strip_prefix("port: "))
                .and_then(|p| p.parse().ok())
        })
        .collect()
}

/// `replicas: N` of the origin StatefulSet.
fn origin_replicas() -> usize {
    read(&k8s_dir().join("origin.yaml"))
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn origin_config_is_accepted() {
    let path = k8s_dir().join("origin.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_livecdn"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "check-config:\n{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok (origin config)"),
        "{}",
        show(&out)
    );
    let c = parse_origin(&read(&path), "origin.toml").unwrap();
    // What origin.yaml's ports, probes, volumes and the NetworkPolicies
    // assume.
    assert_eq!(c.ingest.listen.to_string(), "0.0.0.0:1935");
    assert_eq!(c.http.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.push.listen.to_string(), "0.0.0.0:8444");
    assert!(c.push.enabled && c.cluster.require_credential);
    assert_eq!(
        c.push.cert.as_deref(),
        Some(Path::new("/etc/livecdn/push/tls.crt"))
    );
    assert!(c.recording.dir.starts_with("/var/lib/livecdn"));
    let ports = manifest_ports("origin.yaml");
    for p in [1935, 8080, 8444] {
        assert!(ports.contains(&p), "origin.yaml lacks port {p}");
    }
}

fn edge_config(file: &str) -> EdgeConfig {
    parse_edge(&read(&k8s_dir().join(file)), file).unwrap()
}

#[test]
fn edge_and_shield_configs_are_accepted() {
    let replicas = origin_replicas();
    let expected_origins: Vec<String> = (0..replicas)
        .map(|i| format!("http://origin-{i}.origin:8080"))
        .collect();

    let edge = edge_config("edge.toml");
    assert_eq!(edge.role, EdgeRole::Edge);
    assert_eq!(listen(edge.listen.http), "0.0.0.0:8081");
    assert_eq!(listen(edge.listen.https), "0.0.0.0:8443");
    assert_eq!(edge.cluster.redis.as_deref(), Some("redis://redis:6379"));
    assert_eq!(
        edge.upstream.origins, expected_origins,
        "one per origin pod"
    );
    let ports = manifest_ports("edge.yaml");
    assert!(ports.contains(&8081) && ports.contains(&8443), "{ports:?}");

    let shield = edge_config("shield.toml");
    assert_eq!(shield.role, EdgeRole::Shield);
    assert_eq!(listen(shield.listen.http), "0.0.0.0:8091");
    assert_eq!(shield.cluster.redis.as_deref(), Some("redis://redis:6379"));
    assert_eq!(
        shield.upstream.origins, expected_origins,
        "one per origin pod"
    );
    assert!(manifest_ports("shield.yaml").contains(&8091));
}

/// Every player engine script, so that a new one cannot be added without
/// this list (and the Dockerfile) knowing.
fn all_scripts() -> [Script; 4] {
    let _exhaustive = |s: Script| match s {
        Script::HlsJs | Script::Shaka | Script::DashJs | Script::Chat => (),
    };
    [Script::HlsJs, Script::Shaka, Script::DashJs, Script::Chat]
}

/// The origin reads the engines' scripts from disk (LIVECDN_PLAYER_DIR and
/// the npm layout around it): the image must carry each one there.
#[test]
fn image_ships_every_player_script() {
    let dockerfile = read(&root().join("Dockerfile"));
    let player_dir = "ENV LIVECDN_PLAYER_DIR=${NM}/hls.js/dist";
    assert!(
        dockerfile.contains(player_dir),
        "Dockerfile lacks {player_dir}"
    );
    let node_modules = root().join("player/node_modules");
    for script in all_scripts() {
        let Some(package_path) = script.package_path() else {
            continue;
        };
        let source = format!("/player/node_modules/{package_path} ");
        assert!(
            dockerfile.contains(&source),
            "Dockerfile does not copy {package_path}"
        );
        // Where npm ci has run (always under CI), the path is real.
        if node_modules.exists() {
            assert!(
                node_modules.join(package_path).is_file(),
                "npm has no {package_path}"
            );
        }
    }
    let ignore = read(&root().join(".dockerignore"));
    assert!(
        !ignore.lines().any(|l| l.trim() == "player"),
        "player/ is needed"
    );
}

/// `docker build` where an engine runs. CI machines have none: that skips
/// (and says why) rather than fails.
#[test]
fn image_builds() {
    let info = Command::new("docker").arg("info").output();
    let why = match &info {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output")
                .trim()
                .to_string(),
        ),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = why {
        eprintln!("skipping: no container engine: docker info failed: {why}");
        return;
    }
    let out = Command::new("docker")
        .args(["build", "-t", "livecdn:test", "."])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "docker build:\n{}", show(&out));
}
