//! Warnings about configs that are valid but expose more than an operator
//! likely means to: printed by `livecdn check-config` and logged at start.
//!
//! An address is "public" here when it is not loopback: the unspecified
//! address (`0.0.0.0`, `::`) listens on every interface, and a routable
//! one may face the internet. Private ranges are not told apart, because
//! many clusters span networks the operator does not fully control.

use super::{EdgeConfig, OriginConfig};
use std::net::SocketAddr;

fn public(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// What in an origin config leaves a trust boundary open.
pub fn origin_warnings(c: &OriginConfig) -> Vec<String> {
    let mut out = Vec::new();
    if c.push.enabled && c.secret.is_none() {
        out.push(
            "push is enabled but no `secret` is set: no edge can present a valid cluster \
             credential, so push refuses every connection"
                .to_string(),
        );
    }
    if c.cluster.require_credential && c.secret.is_none() {
        out.push(
            "cluster.require_credential without `secret`: no credential can verify, so \
             /live/ answers 403 to everyone"
                .to_string(),
        );
    }
    if public(c.http.listen) && !c.cluster.require_credential {
        out.push(format!(
            "http.listen {} is not loopback and cluster.require_credential is off: anyone \
             who reaches it can pull /live/ media past the edges' playback tokens \
             (require credentials, or firewall it to the cluster)",
            c.http.listen
        ));
    }
    if public(c.http.listen) && c.admin_token.is_none() && c.http.admin_listen.is_none() {
        out.push(format!(
            "http.listen {} is not loopback and /api and /metrics need no credential: set \
             admin_token (LIVECDN_ADMIN_TOKEN) or http.admin_listen",
            c.http.listen
        ));
    }
    let rtmps = &c.ingest.rtmps;
    if rtmps.enabled && public(rtmps.listen) && rtmps.cert.is_none() {
        out.push(format!(
            "ingest.rtmps.listen {} is not loopback but has no cert: a self-signed one is \
             made at start, which encoders that verify (OBS) refuse and which proves \
             nothing to those that do not",
            rtmps.listen
        ));
    }
    out
}

/// What in an edge config leaves a trust boundary open.
pub fn edge_warnings(c: &EdgeConfig) -> Vec<String> {
    let mut out = Vec::new();
    if !c.upstream.push.is_empty() && c.upstream.credential.is_none() {
        out.push(
            "upstream.push is set but upstream.credential is not: the origin refuses push \
             without a cluster credential (`livecdn cluster-key NODE`)"
                .to_string(),
        );
    }
    if c.upstream.push_insecure {
        out.push(
            "upstream.push_insecure accepts any push certificate: anyone on the path can \
             fill this edge's cache (pin it with upstream.push_spki)"
                .to_string(),
        );
    }
    let public_listener = [c.listen.http, c.listen.https]
        .into_iter()
        .flatten()
        .any(public);
    if public_listener && c.admin_token.is_none() && c.listen.admin.is_none() {
        out.push(
            "a public listener serves /api and /metrics with no credential: set admin_token \
             (LIVECDN_ADMIN_TOKEN) or listen.admin"
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_warn_about_open_pulls_and_admin_but_a_locked_down_config_is_quiet() {
        let open = origin_warnings(&OriginConfig::default());
        assert!(open
            .iter()
            .any(|w| w.contains("cluster.require_credential is off")));
        assert!(open.iter().any(|w| w.contains("admin_token")));
        assert!(open
            .iter()
            .any(|w| w.contains("push refuses every connection")));
        let mut locked = OriginConfig {
            secret: Some("0123456789abcdef0123".into()),
            admin_token: Some("admin-token-0123456789".into()),
            ..OriginConfig::default()
        };
        locked.cluster.require_credential = true;
        assert_eq!(origin_warnings(&locked), Vec::<String>::new());
        // RTMPS in public needs a real certificate.
        locked.ingest.rtmps.enabled = true;
        let warned = origin_warnings(&locked);
        assert!(
            warned.len() == 1 && warned[0].contains("ingest.rtmps.listen 0.0.0.0:1936"),
            "{warned:?}"
        );
        locked.ingest.rtmps.cert = Some("/etc/livecdn/ingest.pem".into());
        locked.ingest.rtmps.key = Some("/etc/livecdn/ingest.key".into());
        assert_eq!(origin_warnings(&locked), Vec::<String>::new());
        // Loopback-only listeners expose nothing.
        let mut local = OriginConfig {
            secret: Some("0123456789abcdef0123".into()),
            ..OriginConfig::default()
        };
        local.http.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        assert_eq!(origin_warnings(&local), Vec::<String>::new());
    }

    #[test]
    fn an_edge_pushing_without_a_credential_is_told() {
        let mut c = EdgeConfig::default();
        c.upstream.push = vec!["origin:8444".into()];
        c.upstream.push_insecure = true;
        let w = edge_warnings(&c);
        assert!(w.iter().any(|w| w.contains("upstream.credential")));
        assert!(w.iter().any(|w| w.contains("push_insecure")));
        c.upstream.credential = Some("edge.1.x".into());
        c.upstream.push_insecure = false;
        c.admin_token = Some("admin-token-0123456789".into());
        assert_eq!(edge_warnings(&c), Vec::<String>::new());
    }
}
