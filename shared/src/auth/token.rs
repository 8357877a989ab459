//! Playback tokens: the credential a viewer's URL carries to be allowed to
//! watch STREAM until EXPIRY. Same scheme as stream keys, under a distinct
//! HMAC domain so a viewer's token can never be used to publish.

use super::{signed, KeyError};

/// Domain prefix of the token MAC; the `:` keeps it disjoint from keys.
const TOKEN_DOMAIN: &[u8] = b"play-token:";

/// Signs a playback token `STREAM.EXPIRY.SIG` valid until `expires_unix`.
pub fn sign_token(secret: &[u8], stream: &str, expires_unix: u64) -> String {
    signed::sign(secret, TOKEN_DOMAIN, stream, expires_unix)
}

/// Verifies a playback token at time `now_unix` and returns the stream it
/// authorises. The signature is compared in constant time.
pub fn verify_token(secret: &[u8], token: &str, now_unix: u64) -> Result<String, KeyError> {
    signed::verify(secret, TOKEN_DOMAIN, token, now_unix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::auth::{sign_key, verify_key};

    #[test]
    fn token_format_matches_independent_hmac() {
        // python3: hmac.new(b'secret', b'play-token:studio-1.2000000000', sha256)
        assert_eq!(
            sign_token(b"secret", "studio-1", 2_000_000_000),
            "studio-1.2000000000.d6dacee0ce392b0bae6fc34789f8aa3d0e72924ec0f2648334a837679e45a3d4"
        );
    }

    #[test]
    fn token_verifies_and_expires() {
        let token = sign_token(b"s", "show", 100);
        assert_eq!(verify_token(b"s", &token, 99), Ok("show".to_owned()));
        assert_eq!(
            verify_token(b"s", &token, 100),
            Err(KeyError::Expired { expired_at: 100 })
        );
    }

    #[test]
    fn keys_and_tokens_are_not_interchangeable() {
        let key = sign_key(b"s", "show", 100);
        let token = sign_token(b"s", "show", 100);
        assert_ne!(key, token);
        assert_eq!(verify_token(b"s", &key, 0), Err(KeyError::BadSignature));
        assert_eq!(verify_key(b"s", &token, 0), Err(KeyError::BadSignature));
    }
}
