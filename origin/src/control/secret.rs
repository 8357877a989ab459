//! Stream key values and ids: random, and stored only as a digest.
//!
//! A key is 32 random bytes in hex behind a `lsk_` prefix (so a leaked one
//! is recognisable in logs and secret scanners, and never has the two dots
//! of a signed key). The database holds its SHA-256 only: whoever reads the
//! file cannot publish. Lookup by digest needs no constant-time compare:
//! an attacker learns nothing from how fast a digest that is not stored
//! is not found.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Recognisable prefix of a channel's stream key.
pub const KEY_PREFIX: &str = "lsk_";

/// A new secret key value.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// A new public key id (names a key in the API and logs, proves nothing).
pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill(&mut bytes);
    format!("k{}", hex::encode(bytes))
}

/// What the database stores for `key`.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_prefixed_and_digests_fixed() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_eq!(a.matches('.').count(), 0);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(livecdn_shared::auth::valid_stream_name(&new_id()));
    }
}
