//! Comparing a presented secret (a static stream key, an admin token) with
//! the configured one without a timing side channel: both are hashed, and
//! the digests compared with every byte looked at. Hashing first also hides
//! the length of the configured secret.

use sha2::{Digest, Sha256};

/// Whether `presented` equals `expected`, in time independent of where they
/// differ.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_identical() {
        assert!(same_secret("a-long-static-key", "a-long-static-key"));
        assert!(!same_secret("a-long-static-key", "a-long-static-kez"));
        assert!(!same_secret("a-long-static-key", "a-long-static-key "));
        assert!(!same_secret("", "x"));
        assert!(same_secret("", ""));
    }
}
