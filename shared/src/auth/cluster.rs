//! Cluster credentials: what an edge or shield presents to the origin, on
//! its push subscription and on every HTTP pull, to prove it is part of the
//! operator's cluster. Same `NAME.EXPIRY.SIG` scheme as stream keys, where
//! NAME names the node (for logs), under a distinct HMAC domain: a stream
//! key or a viewer's token never passes as a cluster credential.
//!
//! Why a signed credential rather than mutual TLS: the origin checks it with
//! the secret it already has, no certificate authority or per-edge pin to
//! manage; pulls over cleartext HTTP/2 inside the cluster carry it as
//! `Authorization: Bearer`, and EXPIRY bounds what a leaked one is worth.
//! `livecdn cluster-key NODE` mints one.

use super::{signed, KeyError};

/// Domain prefix of the cluster MAC; the `:` keeps it disjoint from keys.
const CLUSTER_DOMAIN: &[u8] = b"cluster:";

/// Signs a cluster credential `NODE.EXPIRY.SIG` valid until `expires_unix`.
pub fn sign_cluster(secret: &[u8], node: &str, expires_unix: u64) -> String {
    signed::sign(secret, CLUSTER_DOMAIN, node, expires_unix)
}

/// Verifies a cluster credential at `now_unix`; returns the node name. The
/// signature is compared in constant time.
pub fn verify_cluster(secret: &[u8], credential: &str, now_unix: u64) -> Result<String, KeyError> {
    signed::verify(secret, CLUSTER_DOMAIN, credential, now_unix)
}

/// The credential in an `Authorization: Bearer CREDENTIAL` header value.
pub fn bearer(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?;
    let (scheme, value) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| value.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::auth::{sign_key, sign_token};

    #[test]
    fn cluster_format_matches_independent_hmac() {
        // python3: hmac.new(b'secret', b'cluster:edge-1.2000000000', sha256).hexdigest()
        assert_eq!(
            sign_cluster(b"secret", "edge-1", 2_000_000_000),
            "edge-1.2000000000.fe1519238df3794ac4c2da4f7752fccb75773e33718105c435042581f477fd5e"
        );
    }

    #[test]
    fn only_a_cluster_credential_passes() {
        let c = sign_cluster(b"s", "edge-1", 100);
        assert_eq!(verify_cluster(b"s", &c, 99), Ok("edge-1".to_owned()));
        assert_eq!(
            verify_cluster(b"s", &c, 100),
            Err(KeyError::Expired { expired_at: 100 })
        );
        assert_eq!(verify_cluster(b"t", &c, 99), Err(KeyError::BadSignature));
        for other in [
            sign_key(b"s", "edge-1", 100),
            sign_token(b"s", "edge-1", 100),
        ] {
            assert_eq!(
                verify_cluster(b"s", &other, 99),
                Err(KeyError::BadSignature)
            );
        }
    }

    #[test]
    fn bearer_header_is_parsed_leniently_but_never_empty() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(&[0xff, b' ', b'a']), None);
    }
}
