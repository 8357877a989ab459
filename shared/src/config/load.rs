//! Reading and validating config files, with errors that name the line.

use super::ladder::LadderError;
use super::locate::{line_column, locate};
use super::{EdgeConfig, OriginConfig};
use std::path::Path;
use std::time::Duration;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// TOML syntax or a value of the wrong type, at a line and column.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The values parse but make no sense together.
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: String,
        key: &'static str,
        message: String,
    },
    /// A value that parses but is not allowed, at the line and column of
    /// its key in the file (`1:1` when the value came from a flag or the
    /// environment rather than the file).
    #[error("{path}:{line}:{column}: {key}: {message}")]
    InvalidAt {
        path: String,
        line: usize,
        column: usize,
        /// Dotted key, e.g. `ladder.rungs[2].height`.
        key: String,
        message: String,
    },
}

/// Reads and validates an origin config file.
pub fn load_origin(path: &Path) -> Result<OriginConfig, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: name.clone(),
        source,
    })?;
    parse_origin(&text, &name)
}

/// Reads and validates an edge or shield config file.
pub fn load_edge(path: &Path) -> Result<EdgeConfig, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: name.clone(),
        source,
    })?;
    parse_edge(&text, &name)
}

/// Parses and validates edge config text; `name` labels errors.
pub fn parse_edge(text: &str, name: &str) -> Result<EdgeConfig, ConfigError> {
    let config: EdgeConfig = from_toml(text, name)?;
    let invalid = |key: &'static str, message: String| ConfigError::Invalid {
        path: name.to_string(),
        key,
        message,
    };
    if config.upstream.origins.is_empty() {
        return Err(invalid(
            "upstream.origins",
            "at least one origin is needed".into(),
        ));
    }
    for (key, list) in [
        ("upstream.origins", &config.upstream.origins),
        ("upstream.shields", &config.upstream.shields),
    ] {
        if let Some(bad) = list.iter().find(|u| !u.starts_with("http://")) {
            return Err(invalid(key, format!("{bad:?} must be an http:// URL")));
        }
    }
    if let Some(bad) = config.upstream.push.iter().find(|a| !valid_host_port(a)) {
        return Err(invalid(
            "upstream.push",
            format!("{bad:?} must be host:port (UDP)"),
        ));
    }
    if !config.upstream.push.is_empty()
        && config.upstream.push_spki.is_empty()
        && !config.upstream.push_insecure
    {
        return Err(invalid(
            "upstream.push_spki",
            "push needs the origins' SPKI pins (or push_insecure = true)".into(),
        ));
    }
    if config.cache.max_bytes < 1024 * 1024 {
        return Err(invalid("cache.max_bytes", "must be at least 1 MiB".into()));
    }
    if let Some(rtc) = &config.webrtc {
        rtc.check().map_err(|m| invalid("webrtc", m))?;
        if rtc.enabled && config.upstream.push.is_empty() {
            return Err(invalid(
                "webrtc",
                "an edge builds WebRTC from pushed chunks: set upstream.push".into(),
            ));
        }
    }
    if config.cache.disk_dir.is_some() && config.cache.disk_max_bytes < 1024 * 1024 {
        return Err(invalid(
            "cache.disk_max_bytes",
            "must be at least 1 MiB".into(),
        ));
    }
    config
        .access_log
        .check()
        .map_err(|m| invalid("access_log", m))?;
    check_idle(config.listen.idle_timeout).map_err(|m| invalid("listen.idle_timeout", m))?;
    if config.tls.cert.is_some() != config.tls.key.is_some() {
        return Err(invalid("tls", "cert and key go together".into()));
    }
    if config.auth.required && config.auth.secret.as_ref().is_none_or(|s| s.len() < 16) {
        return Err(invalid(
            "auth.secret",
            "required tokens need a secret of at least 16 characters".into(),
        ));
    }
    if config.listen.http.is_none() && config.listen.https.is_none() {
        return Err(invalid("listen", "no listener configured".into()));
    }
    if config.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(invalid(
            "admin_token",
            "must be at least 16 characters".into(),
        ));
    }
    Ok(config)
}

/// `host:port` with a non-empty host and a non-zero port.
fn valid_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

fn from_toml<T: serde::de::DeserializeOwned>(text: &str, name: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_column(text, s.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            path: name.to_string(),
            line,
            column,
            message: e.message().to_string(),
        }
    })
}

/// Parses and validates origin config text; `name` labels errors.
pub fn parse_origin(text: &str, name: &str) -> Result<OriginConfig, ConfigError> {
    let config: OriginConfig = from_toml(text, name)?;
    validate(&config, name)?;
    config
        .ladder
        .validate()
        .map_err(|e| located(text, name, e))?;
    Ok(config)
}

/// A ladder error with the position of its key in `text`.
fn located(text: &str, name: &str, e: LadderError) -> ConfigError {
    let (line, column) = locate(text, &e.key).map_or((1, 1), |o| line_column(text, o));
    ConfigError::InvalidAt {
        path: name.to_string(),
        line,
        column,
        key: e.key.to_string(),
        message: e.message,
    }
}

/// Idle timeouts: long enough for a blocking playlist reload, short enough
/// that QUIC can express it.
fn check_idle(d: Duration) -> Result<(), String> {
    if d < Duration::from_secs(5) || d > Duration::from_secs(3600) {
        return Err(format!("{d:?} is outside 5s..=1h"));
    }
    Ok(())
}

fn validate(c: &OriginConfig, path: &str) -> Result<(), ConfigError> {
    let invalid = |key: &'static str, message: String| ConfigError::Invalid {
        path: path.to_string(),
        key,
        message,
    };
    let part = c.llhls.part_target;
    if part < Duration::from_millis(100) || part > Duration::from_secs(1) {
        return Err(invalid(
            "llhls.part_target",
            format!("{part:?} is outside 100ms..=1s"),
        ));
    }
    if c.llhls.segment_target < part * 2 || c.llhls.segment_target > Duration::from_secs(10) {
        return Err(invalid(
            "llhls.segment_target",
            "must be at least two part targets and at most 10s".to_string(),
        ));
    }
    if !(3..=100).contains(&c.llhls.window_segments) {
        return Err(invalid(
            "llhls.window_segments",
            "must be between 3 and 100".to_string(),
        ));
    }
    if c.ingest.app.is_empty() || c.ingest.app.contains('/') {
        return Err(invalid(
            "ingest.app",
            "must be a non-empty name without '/'".to_string(),
        ));
    }
    for k in &c.ingest.static_keys {
        if !crate::auth::valid_stream_name(&k.stream) {
            return Err(invalid(
                "ingest.static_keys",
                format!(
                    "stream name {:?} must match [A-Za-z0-9_-]{{1,64}}",
                    k.stream
                ),
            ));
        }
        if k.key.len() < 8 {
            return Err(invalid(
                "ingest.static_keys",
                format!("key for {:?} is shorter than 8 characters", k.stream),
            ));
        }
    }
    if c.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(invalid(
            "admin_token",
            "must be at least 16 characters".to_string(),
        ));
    }
    if let Some(s) = &c.secret {
        if s.len() < 16 {
            return Err(invalid(
                "secret",
                "must be at least 16 characters".to_string(),
            ));
        }
    }
    c.access_log.check().map_err(|m| invalid("access_log", m))?;
    c.recording.check().map_err(|m| invalid("recording", m))?;
    c.webrtc.check().map_err(|m| invalid("webrtc", m))?;
    if c.ingest.rtmps.cert.is_some() != c.ingest.rtmps.key.is_some() {
        return Err(invalid(
            "ingest.rtmps",
            "cert and key go together".to_string(),
        ));
    }
    if c.push.cert.is_some() != c.push.key.is_some() {
        return Err(invalid("push", "cert and key go together".to_string()));
    }
    if !(1..=1024).contains(&c.push.max_in_flight) {
        return Err(invalid(
            "push.max_in_flight",
            "must be between 1 and 1024".to_string(),
        ));
    }
    for (key, url) in [
        ("webhooks.on_publish", &c.webhooks.on_publish),
        ("webhooks.on_publish_done", &c.webhooks.on_publish_done),
        ("webhooks.on_record_done", &c.webhooks.on_record_done),
    ] {
        if let Some(u) = url {
            if !u.starts_with("http://") {
                return Err(invalid(key, format!("{u:?} must be an http:// URL")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_config_defaults_and_validation() {
        let c = parse_edge("", "e.toml").expect("defaults");
        assert_eq!(c.role, crate::config::EdgeRole::Edge);
        let c = parse_edge(
            "role = \"shield\"\n[cache]\nmax_bytes = 2000000\n",
            "s.toml",
        )
        .expect("shield");
        assert_eq!(c.role, crate::config::EdgeRole::Shield);
        for (text, key) in [
            ("[upstream]\norigins = []", "upstream.origins"),
            ("[upstream]\nshields = [\"ftp://x\"]", "upstream.shields"),
            ("[cache]\nmax_bytes = 10", "cache.max_bytes"),
            (
                "[cache]\ndisk_dir = \"/tmp/x\"\ndisk_max_bytes = 1000",
                "cache.disk_max_bytes",
            ),
            ("[tls]\ncert = \"a.pem\"", "tls"),
        ] {
            match parse_edge(text, "t") {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected invalid {key}, got {other:?}"),
            }
        }
        let err = parse_edge("role = \"middle\"", "e.toml").expect_err("bad role");
        assert!(err.to_string().starts_with("e.toml:1:"), "{err}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse_origin("", "t.toml").expect("defaults");
        assert_eq!(c, OriginConfig::default());
        assert_eq!(c.llhls.part_target, Duration::from_millis(333));
    }

    #[test]
    fn durations_are_humantime() {
        let c = parse_origin(
            "[llhls]\npart_target = \"200ms\"\nsegment_target = \"4s\"\n",
            "t",
        )
        .expect("valid");
        assert_eq!(c.llhls.part_target, Duration::from_millis(200));
        assert_eq!(c.llhls.segment_target, Duration::from_secs(4));
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let err = parse_origin("[ingest]\napp = \"live\"\nbogus = 1\n", "o.toml")
            .expect_err("unknown key");
        match err {
            ConfigError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 1)),
            other => panic!("wrong error {other}"),
        }
        let text = parse_origin("[ingest]\napp = \"live\"\nbogus = 1\n", "o.toml")
            .expect_err("unknown key")
            .to_string();
        assert!(text.starts_with("o.toml:3:1:"), "{text}");
    }

    #[test]
    fn wrong_type_reports_line() {
        let err =
            parse_origin("\n\n[llhls]\nwindow_segments = \"ten\"\n", "o.toml").expect_err("type");
        assert!(err.to_string().starts_with("o.toml:4:"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for (text, key) in [
            ("[llhls]\npart_target = \"50ms\"", "llhls.part_target"),
            (
                "[llhls]\nsegment_target = \"300ms\"",
                "llhls.segment_target",
            ),
            ("[llhls]\nwindow_segments = 1", "llhls.window_segments"),
            ("secret = \"short\"", "secret"),
            (
                "[webhooks]\non_publish = \"ftp://x\"",
                "webhooks.on_publish",
            ),
            (
                "[[ingest.static_keys]]\nkey = \"longenough\"\nstream = \"a/b\"",
                "ingest.static_keys",
            ),
        ] {
            match parse_origin(text, "t") {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected invalid {key}, got {other:?}"),
            }
        }
    }
}
