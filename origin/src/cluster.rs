//! The origin's side of cluster credentials: one check, used by the push
//! endpoint (the Hello frame) and by the HTTP server (`Authorization:
//! Bearer` on `/live/` pulls when `cluster.require_credential` is set).
//!
//! Fails closed: without a `secret` no credential can verify, so push takes
//! no edge and a credential-requiring HTTP listener serves `/live/` to
//! nobody (the start-up warning says why).

use livecdn_shared::auth::{self, KeyError};
use livecdn_shared::config::OriginConfig;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a cluster credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterAuthError {
    /// The origin has no secret to check credentials with.
    #[error("no secret configured to check cluster credentials")]
    NoSecret,
    /// No credential was presented.
    #[error("no cluster credential")]
    Missing,
    /// The credential did not verify.
    #[error("{0}")]
    Invalid(#[from] KeyError),
}

/// Verifies `credential` now; returns the node name it was minted for.
pub fn verify(config: &OriginConfig, credential: &str) -> Result<String, ClusterAuthError> {
    let secret = config.secret.as_deref().ok_or(ClusterAuthError::NoSecret)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(auth::verify_cluster(secret.as_bytes(), credential, now)?)
}

/// Checks an HTTP request's `Authorization` header value (if any).
pub fn verify_bearer(
    config: &OriginConfig,
    header: Option<&http::HeaderValue>,
) -> Result<String, ClusterAuthError> {
    let credential = header
        .and_then(|h| auth::bearer(h.as_bytes()))
        .ok_or(ClusterAuthError::Missing)?;
    verify(config, credential)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn config(secret: Option<&str>) -> OriginConfig {
        OriginConfig {
            secret: secret.map(str::to_string),
            ..OriginConfig::default()
        }
    }

    #[test]
    fn bearer_credentials_verify_only_with_the_origin_secret() {
        let secret = "cluster-secret-0123456789";
        let good = auth::sign_cluster(secret.as_bytes(), "edge-a", u64::MAX);
        let header = http::HeaderValue::from_str(&format!("Bearer {good}")).unwrap();
        assert_eq!(
            verify_bearer(&config(Some(secret)), Some(&header)),
            Ok("edge-a".to_string())
        );
        assert_eq!(
            verify_bearer(&config(Some(secret)), None),
            Err(ClusterAuthError::Missing)
        );
        assert_eq!(
            verify_bearer(&config(Some("another-secret-0123456")), Some(&header)),
            Err(ClusterAuthError::Invalid(KeyError::BadSignature))
        );
        // Fail closed: no secret, nothing verifies.
        assert_eq!(
            verify_bearer(&config(None), Some(&header)),
            Err(ClusterAuthError::NoSecret)
        );
        // A stream key signed with the same secret is not a credential.
        let key = auth::sign_key(secret.as_bytes(), "edge-a", u64::MAX);
        assert!(verify(&config(Some(secret)), &key).is_err());
    }
}
