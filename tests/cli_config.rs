//! `livecdn check-config` and the ladder overrides, through the real binary:
//! a refused config exits non-zero with `FILE:LINE:COLUMN: key: reason` on
//! stderr, and the shipped example configs pass.

#![allow(clippy::unwrap_used)]

use livecdn_shared::config::{parse_origin, OriginConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A config file in the temp dir, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "livecdn-cli-config-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `livecdn ARGS` with `env` set and every other `LIVECDN_*` variable
/// of the test's environment removed.
fn livecdn(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_livecdn"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LIVECDN_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

fn check_config(path: &Path) -> Output {
    livecdn(&["check-config", path.to_str().unwrap()], &[])
}

const SOURCE: &str = "[[ladder.rungs]]\nname = \"source\"\n\n";

#[test]
fn check_config_names_line_and_reason_of_bad_ladders() {
    let cases = [
        (
            "unknown-encoder",
            "[ladder]\npreset = \"fast\"\nencoder = \"h265\"\n".to_string(),
            ":3:11: ",
            "unknown variant `h265`",
        ),
        (
            "zero-bitrate",
            format!("{SOURCE}[[ladder.rungs]]\nname = \"360p\"\nheight = 360\nvideo_bitrate = \"0k\"\n"),
            ":7:17: ",
            "ladder.rungs[1].video_bitrate: must be more than 0",
        ),
        (
            "odd-height",
            format!("{SOURCE}[[ladder.rungs]]\nname = \"480p\"\nheight = 481\nvideo_bitrate = \"1500k\"\n"),
            ":6:10: ",
            "ladder.rungs[1].height: 481 is odd (must be even)",
        ),
        (
            "duplicate-names",
            format!(
                "{SOURCE}[[ladder.rungs]]\nname = \"sd\"\nheight = 480\nvideo_bitrate = \"1M\"\n\n\
                 [[ladder.rungs]]\nname = \"sd\"\nheight = 360\nvideo_bitrate = \"800k\"\n"
            ),
            ":10:8: ",
            "ladder.rungs[2].name: \"sd\" is already the name of rungs[1]",
        ),
        (
            "no-source",
            "[ladder]\nrungs = []\n".to_string(),
            ":2:9: ",
            "ladder.rungs: no \"source\" rung",
        ),
    ];
    for (name, text, position, reason) in cases {
        let file = TempConfig::new(name, &text);
        let out = check_config(&file.0);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted\n{stderr}");
        let want = format!("{}{position}", file.0.display());
        assert!(stderr.contains(&want), "{name}: want {want:?} in\n{stderr}");
        assert!(
            stderr.contains(reason),
            "{name}: want {reason:?} in\n{stderr}"
        );
    }
}

#[test]
fn shipped_origin_config_and_a_custom_ladder_pass() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/origin.toml");
    let out = check_config(&shipped);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The shipped file's commented ladder, uncommented, is the default one.
    let text = std::fs::read_to_string(&shipped).unwrap();
    let start = text.find("# [ladder]").expect("commented [ladder] section");
    let section: String = text[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let parsed = parse_origin(&section, "uncommented").unwrap_or_else(|e| panic!("{e}\n{section}"));
    assert_eq!(parsed.ladder, OriginConfig::default().ladder, "{section}");
    let file = TempConfig::new("uncommented", &section);
    let out = check_config(&file.0);
    assert!(
        out.status.success(),
        "{section}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ladder_overrides_are_checked_at_start() {
    let secret = ("LIVECDN_SECRET", "cli-config-test-secret-0123");
    // `livecdn key` loads the origin config with its overrides, and needs
    // no listener.
    let ok = livecdn(&["key", "cam", "--ladder", "source,360p"], &[secret]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = livecdn(
        &["key", "cam"],
        &[
            secret,
            ("LIVECDN_LADDER", "source"),
            ("LIVECDN_ENCODER", "h264_vaapi"),
            ("LIVECDN_FFMPEG", "/usr/bin/ffmpeg"),
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    for (args, env, want) in [
        (
            vec!["key", "cam", "--ladder", "source,1080p"],
            vec![],
            "unknown rung \"1080p\"",
        ),
        (
            vec!["key", "cam"],
            vec![("LIVECDN_LADDER", "720p")],
            "must include \"source\"",
        ),
        (
            vec!["key", "cam", "--encoder", "x265"],
            vec![],
            "unknown encoder \"x265\"",
        ),
    ] {
        let mut env = env;
        env.push(secret);
        let out = livecdn(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} accepted");
        assert!(
            stderr.contains(want),
            "{args:?}: want {want:?} in\n{stderr}"
        );
    }
}

#[test]
fn check_config_warns_about_open_trust_boundaries_and_not_about_closed_ones() {
    let open = TempConfig::new("open", "[http]\nlisten = \"0.0.0.0:8080\"\n");
    let out = check_config(&open.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for needle in [
        "cluster.require_credential is off",
        "/api and /metrics need no credential",
        "push refuses every connection",
    ] {
        assert!(stderr.contains(needle), "want {needle:?} in\n{stderr}");
    }
    let closed = TempConfig::new(
        "closed",
        "secret = \"0123456789abcdef0123\"\nadmin_token = \"admin-0123456789abcdef\"\n\
         [cluster]\nrequire_credential = true\n",
    );
    let out = check_config(&closed.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let edge = TempConfig::new(
        "edge-push",
        "[upstream]\npush = [\"o:8444\"]\npush_insecure = true\n",
    );
    let stderr = String::from_utf8_lossy(&check_config(&edge.0).stderr).to_string();
    assert!(stderr.contains("upstream.credential"), "{stderr}");
}

#[test]
fn shipped_edge_and_shield_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let edge = livecdn_shared::config::load_edge(&dir.join("edge.toml")).unwrap();
    assert_eq!(edge.role, livecdn_shared::config::EdgeRole::Edge);
    assert_eq!(
        edge.cluster.map_ttl,
        livecdn_shared::config::DEFAULT_MAP_TTL
    );
    assert_eq!(
        edge.cluster.failover_hold,
        livecdn_shared::config::DEFAULT_FAILOVER_HOLD
    );
    let shield = livecdn_shared::config::load_edge(&dir.join("shield.toml")).unwrap();
    assert_eq!(shield.role, livecdn_shared::config::EdgeRole::Shield);
    assert_eq!(shield.cluster.lease, livecdn_shared::config::DEFAULT_LEASE);
}
