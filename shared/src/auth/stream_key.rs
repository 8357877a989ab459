//! Stream keys: the credential a publisher (OBS, ffmpeg) puts in the RTMP
//! URL's stream-key field to be allowed to publish STREAM until EXPIRY.

use super::{signed, KeyError};

/// Stream keys sign the bare `STREAM.EXPIRY` (see [`super::signed`]).
const KEY_DOMAIN: &[u8] = b"";
/// Longest stream name: it appears in URLs, paths and metric labels.
const MAX_STREAM_NAME: usize = 64;

/// True for 1-64 characters of `[A-Za-z0-9_-]`: safe in URLs, file names and
/// metric labels without escaping, and free of the `.` separator.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=MAX_STREAM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Signs a stream key `STREAM.EXPIRY.SIG` valid until `expires_unix`.
///
/// Check the name with [`valid_stream_name`] first: a key for an invalid name
/// is produced but never verifies ([`KeyError::BadStreamName`]).
pub fn sign_key(secret: &[u8], stream: &str, expires_unix: u64) -> String {
    signed::sign(secret, KEY_DOMAIN, stream, expires_unix)
}

/// Verifies a stream key at time `now_unix` and returns the stream it
/// authorises. The signature is compared in constant time.
pub fn verify_key(secret: &[u8], key: &str, now_unix: u64) -> Result<String, KeyError> {
    signed::verify(secret, KEY_DOMAIN, key, now_unix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"secret";

    #[test]
    fn key_format_matches_independent_hmac() {
        // python3: hmac.new(b'secret', b'studio-1.2000000000', sha256).hexdigest()
        assert_eq!(
            sign_key(SECRET, "studio-1", 2_000_000_000),
            "studio-1.2000000000.45f7fcafafda001825949bce82b0fb14b11ac83cdb7ed4356aba98b42913af31"
        );
    }

    #[test]
    fn valid_key_returns_stream_until_expiry() {
        let key = sign_key(SECRET, "Cam_2-b", 1000);
        assert_eq!(verify_key(SECRET, &key, 999), Ok("Cam_2-b".to_owned()));
        assert_eq!(
            verify_key(SECRET, &key, 1000),
            Err(KeyError::Expired { expired_at: 1000 })
        );
    }

    #[test]
    fn wrong_secret_or_tampering_is_bad_signature() {
        let key = sign_key(SECRET, "studio", 2000);
        assert_eq!(verify_key(b"other", &key, 0), Err(KeyError::BadSignature));
        let longer = key.replacen(".2000.", ".2001.", 1);
        assert_eq!(verify_key(SECRET, &longer, 0), Err(KeyError::BadSignature));
        let other_stream = key.replacen("studio", "studi0", 1);
        assert_eq!(
            verify_key(SECRET, &other_stream, 0),
            Err(KeyError::BadSignature)
        );
        // Expired keys with a bad signature report the signature, not expiry.
        assert_eq!(
            verify_key(b"other", &key, 5000),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn malformed_keys() {
        let key = sign_key(SECRET, "studio", 2000);
        let sig = key.rsplit('.').next().unwrap();
        for bad in [
            String::new(),
            "studio".to_owned(),
            "studio.2000".to_owned(),
            format!("studio.2000.{sig}.x"),
            format!("studio..{sig}"),
            format!("studio.+2000.{sig}"),
            format!("studio.02000.{sig}"),
            format!("studio.99999999999999999999.{sig}"),
            format!("studio.2000.{}", sig.to_uppercase()),
            format!("studio.2000.{}", &sig[..62]),
            format!("studio.2000.{sig}{}", "0".repeat(200)),
        ] {
            assert_eq!(
                verify_key(SECRET, &bad, 0),
                Err(KeyError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn stream_names_are_restricted() {
        assert!(valid_stream_name("a"));
        assert!(valid_stream_name("Live_cam-01"));
        assert!(valid_stream_name(&"x".repeat(64)));
        for bad in ["", "a.b", "a/b", "a b", "ü", "a:b", "../x"] {
            assert!(!valid_stream_name(bad), "{bad}");
        }
        assert!(!valid_stream_name(&"x".repeat(65)));
        let key = sign_key(SECRET, "a/b", 2000);
        assert_eq!(verify_key(SECRET, &key, 0), Err(KeyError::BadStreamName));
    }
}
