//! Signed credentials: stream keys that authorise publishing, and playback
//! tokens that authorise viewing, both `STREAM.EXPIRY.SIG`.
//!
//! Why signed rather than looked up: the origin and every edge can check a
//! credential with only the shared secret, no database round trip on the hot
//! path, and an operator can mint keys offline (`livecdn key`). EXPIRY bounds
//! the damage of a leaked key.
//!
//! ```
//! use livecdn_shared::auth::{sign_key, verify_key, verify_token, KeyError};
//!
//! let key = sign_key(b"secret", "studio-1", 2_000_000_000);
//! assert_eq!(verify_key(b"secret", &key, 1_700_000_000).as_deref(), Ok("studio-1"));
//! // A stream key is not a playback token.
//! assert_eq!(verify_token(b"secret", &key, 1_700_000_000), Err(KeyError::BadSignature));
//! ```

mod chat;
mod cluster;
mod compare;
mod error;
pub mod playback;
mod signed;
mod stream_key;
mod token;

pub use chat::{
    sign_chat, valid_chat_user, valid_display_name, verify_chat, ChatClaims, ChatRole,
    MAX_NAME_CHARS,
};
pub use cluster::{bearer, sign_cluster, verify_cluster};
pub use compare::same_secret;
pub use error::KeyError;
pub use stream_key::{sign_key, valid_stream_name, verify_key};
pub use token::{sign_token, verify_token};

/// Fuzz body: any bytes as a stream key, playback token, cluster credential
/// and `Authorization` header. Never a panic; nothing made up verifies (a
/// forged signature would need the secret), and what the signer makes from
/// the name and expiry it claims verifies back to that name.
pub fn fuzz_credentials(data: &[u8]) {
    const SECRET: &[u8] = b"fuzz-secret-0123456789";
    let header = bearer(data);
    let text = String::from_utf8_lossy(data);
    for candidate in [Some(text.as_ref()), header].into_iter().flatten() {
        assert!(verify_chat(SECRET, candidate, 0).is_err());
        for verify in [verify_key, verify_token, verify_cluster] {
            assert!(
                verify(SECRET, candidate, 0).is_err(),
                "{candidate:?} verified"
            );
        }
        let _ = same_secret(candidate, "a-static-key");
        // Re-sign what the input claims (when it has the shape) and check
        // the genuine credential verifies as what it names.
        let mut parts = candidate.split('.');
        if let (Some(name), Some(expiry), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let (true, Ok(expiry)) = (valid_stream_name(name), expiry.parse::<u64>()) {
                let genuine = sign_cluster(SECRET, name, expiry);
                let now = expiry.saturating_sub(1);
                if expiry > 0 {
                    assert_eq!(verify_cluster(SECRET, &genuine, now).as_deref(), Ok(name));
                }
                assert!(verify_token(SECRET, &genuine, now).is_err());
            }
        }
    }
}

#[cfg(test)]
mod fuzz_tests {
    #[test]
    fn fuzz_credentials_survives_seeds_and_mutations() {
        let key = super::sign_key(b"x", "cam", 99);
        let header = format!(
            "Bearer {}",
            super::sign_cluster(b"x", "edge-1", 2_000_000_000)
        );
        crate::bytes_reader::fuzz_input::exercise(
            &[key.as_bytes(), header.as_bytes(), b"a.1.00", b"Bearer  "],
            3000,
            super::fuzz_credentials,
        );
    }
}
