//! The `STREAM.EXPIRY.SIG` scheme shared by stream keys and playback tokens.
//!
//! SIG = lowercase hex of HMAC-SHA256(secret, DOMAIN || "STREAM.EXPIRY").
//! Stream keys use an empty DOMAIN (the documented key format); tokens use a
//! DOMAIN containing `:`. Stream names cannot contain `:`, so no key message
//! can equal a token message and one credential never verifies as the other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::stream_key::valid_stream_name;
use super::KeyError;

type HmacSha256 = Hmac<Sha256>;

/// Longest credential we look at: 64 (name) + 20 (u64) + 64 (sig) + 2 dots.
const MAX_LEN: usize = 150;
/// Hex characters of a SHA-256 HMAC.
const SIG_HEX_LEN: usize = 64;

fn mac(secret: &[u8], domain: &[u8], stream: &str, expires_unix: u64) -> HmacSha256 {
    // HMAC is defined for keys of any length (long keys are hashed first), so
    // `new_from_slice` cannot fail for Hmac<Sha256>.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("any key length"); // ok: infallible for HMAC
    mac.update(domain);
    mac.update(stream.as_bytes());
    mac.update(b".");
    mac.update(expires_unix.to_string().as_bytes());
    mac
}

/// HMAC-SHA256(secret, domain || message): the signature of credentials
/// whose signed text is not `STREAM.EXPIRY` (chat tokens).
pub(super) fn hmac_sha256(secret: &[u8], domain: &[u8], message: &[u8]) -> [u8; 32] {
    keyed(secret, domain, message)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks `sig` against HMAC-SHA256(secret, domain || message) in constant
/// time.
pub(super) fn verify_mac(
    secret: &[u8],
    domain: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), KeyError> {
    keyed(secret, domain, message)
        .verify_slice(sig)
        .map_err(|_| KeyError::BadSignature)
}

fn keyed(secret: &[u8], domain: &[u8], message: &[u8]) -> HmacSha256 {
    // Infallible for HMAC, as in `mac`.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("any key length"); // ok: infallible for HMAC
    mac.update(domain);
    mac.update(message);
    mac
}

/// Produces `STREAM.EXPIRY.SIG`.
pub(super) fn sign(secret: &[u8], domain: &[u8], stream: &str, expires_unix: u64) -> String {
    let sig = mac(secret, domain, stream, expires_unix)
        .finalize()
        .into_bytes();
    format!("{stream}.{expires_unix}.{}", hex::encode(sig))
}

/// Checks form, signature (in constant time) and expiry, in that order, and
/// returns the stream name. A credential is valid while `now_unix < EXPIRY`.
pub(super) fn verify(
    secret: &[u8],
    domain: &[u8],
    credential: &str,
    now_unix: u64,
) -> Result<String, KeyError> {
    if credential.len() > MAX_LEN {
        return Err(KeyError::Malformed);
    }
    let mut parts = credential.split('.');
    let (Some(stream), Some(expiry), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::Malformed);
    };
    if !valid_stream_name(stream) {
        return Err(KeyError::BadStreamName);
    }
    // Digits only: `u64::from_str` would also take a leading `+`, which would
    // give one key two spellings.
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KeyError::Malformed);
    }
    let expires_unix: u64 = expiry.parse().map_err(|_| KeyError::Malformed)?;
    // Canonical form only (no leading zeros) so the signed text is exactly
    // what `sign` produced.
    if expires_unix.to_string() != expiry {
        return Err(KeyError::Malformed);
    }
    if sig.len() != SIG_HEX_LEN || !sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(KeyError::Malformed);
    }
    let sig = hex::decode(sig).map_err(|_| KeyError::Malformed)?;
    mac(secret, domain, stream, expires_unix)
        .verify_slice(&sig)
        .map_err(|_| KeyError::BadSignature)?;
    if now_unix >= expires_unix {
        return Err(KeyError::Expired {
            expired_at: expires_unix,
        });
    }
    Ok(stream.to_owned())
}
