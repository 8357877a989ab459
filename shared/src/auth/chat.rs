//! Chat tokens: who may speak in a stream's chat room, under what name, in
//! which role, until when.
//!
//! Format: `PAYLOAD.SIG`, where PAYLOAD is unpadded base64url of a small
//! JSON object `{"s":STREAM,"u":USER,"n":NAME,"r":"viewer"|"moderator",
//! "e":EXPIRY}` and SIG is lowercase hex of HMAC-SHA256(secret,
//! `chat-token:` || PAYLOAD). Why not `STREAM.EXPIRY.SIG` like playback
//! tokens: a chat token also carries a display name, which is free text
//! (any script, spaces, dots); base64url keeps the token one URL-safe word
//! that `?token=` carries unescaped. The HMAC domain differs from keys',
//! playback tokens' and cluster credentials', so no credential of another
//! kind verifies as a chat token.
//!
//! ```
//! use livecdn_shared::auth::{sign_chat, verify_chat, ChatClaims, ChatRole};
//! let claims = ChatClaims {
//!     stream: "cam".into(),
//!     user: "u42".into(),
//!     name: "Ada L.".into(),
//!     role: ChatRole::Viewer,
//!     expires: 2_000_000_000,
//! };
//! let token = sign_chat(b"secret", &claims).expect("valid claims");
//! assert_eq!(verify_chat(b"secret", &token, 1_700_000_000), Ok(claims));
//! ```

use super::signed::hmac_sha256;
use super::{valid_stream_name, KeyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// HMAC domain of chat tokens; the `:` keeps it disjoint from stream keys.
const CHAT_DOMAIN: &[u8] = b"chat-token:";
/// Longest token looked at: a 64-byte name of 4-byte characters, the
/// other fields and base64's 4/3, with room to spare.
const MAX_LEN: usize = 1024;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// What a chat token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// Read and send messages.
    Viewer,
    /// Also delete anyone's message and ban users from the room.
    Moderator,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::Viewer => "viewer",
            ChatRole::Moderator => "moderator",
        }
    }
}

/// What a chat token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatClaims {
    /// The room: a public stream name.
    #[serde(rename = "s")]
    pub stream: String,
    /// The operator's id for the user (what bans name): 1-64 of
    /// `[A-Za-z0-9_.@-]`.
    #[serde(rename = "u")]
    pub user: String,
    /// Shown beside the user's messages: 1-64 characters, no control
    /// characters.
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "r")]
    pub role: ChatRole,
    /// Unix seconds; valid while now < expires.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// Whether `user` is a valid chat user id.
pub fn valid_chat_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'))
}

/// Whether `name` is a valid display name.
pub fn valid_display_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.chars().any(char::is_control)
        && name.trim() == name
}

impl ChatClaims {
    fn check(&self) -> Result<(), KeyError> {
        if !valid_stream_name(&self.stream) {
            return Err(KeyError::BadStreamName);
        }
        if !valid_chat_user(&self.user) || !valid_display_name(&self.name) {
            return Err(KeyError::Malformed);
        }
        Ok(())
    }
}

/// Signs `claims`; refuses claims a verifier would refuse (bad stream,
/// user id or name).
pub fn sign_chat(secret: &[u8], claims: &ChatClaims) -> Result<String, KeyError> {
    claims.check()?;
    let json = serde_json::to_vec(claims).map_err(|_| KeyError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let sig = hmac_sha256(secret, CHAT_DOMAIN, payload.as_bytes());
    Ok(format!("{payload}.{}", hex::encode(sig)))
}

/// Checks form, signature (constant time), fields and expiry, and returns
/// the claims.
pub fn verify_chat(secret: &[u8], token: &str, now_unix: u64) -> Result<ChatClaims, KeyError> {
    if token.len() > MAX_LEN {
        return Err(KeyError::Malformed);
    }
    let (payload, sig) = token.split_once('.').ok_or(KeyError::Malformed)?;
    if sig.len() != 64 || !sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(KeyError::Malformed);
    }
    let sig = hex::decode(sig).map_err(|_| KeyError::Malformed)?;
    super::signed::verify_mac(secret, CHAT_DOMAIN, payload.as_bytes(), &sig)
        .map_err(|_| KeyError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| KeyError::Malformed)?;
    let claims: ChatClaims = serde_json::from_slice(&json).map_err(|_| KeyError::Malformed)?;
    claims.check()?;
    if now_unix >= claims.expires {
        return Err(KeyError::Expired {
            expired_at: claims.expires,
        });
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::auth::{sign_token, verify_token};

    fn claims() -> ChatClaims {
        ChatClaims {
            stream: "show".into(),
            user: "user-1".into(),
            name: "Zoë 🎥".into(),
            role: ChatRole::Moderator,
            expires: 100,
        }
    }

    #[test]
    fn round_trips_unicode_names_and_expires() {
        let t = sign_chat(b"s", &claims()).unwrap();
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
        assert_eq!(verify_chat(b"s", &t, 99), Ok(claims()));
        assert_eq!(
            verify_chat(b"s", &t, 100),
            Err(KeyError::Expired { expired_at: 100 })
        );
        assert_eq!(verify_chat(b"other", &t, 0), Err(KeyError::BadSignature));
    }

    #[test]
    fn tampered_payload_does_not_verify() {
        let t = sign_chat(b"s", &claims()).unwrap();
        let (payload, sig) = t.split_once('.').unwrap();
        let mut c = claims();
        c.role = ChatRole::Moderator;
        c.user = "admin".into();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        assert_ne!(forged, payload);
        assert_eq!(
            verify_chat(b"s", &format!("{forged}.{sig}"), 0),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn other_credentials_are_not_chat_tokens() {
        let play = sign_token(b"s", "show", 100);
        assert!(verify_chat(b"s", &play, 0).is_err());
        let chat = sign_chat(b"s", &claims()).unwrap();
        assert!(verify_token(b"s", &chat, 0).is_err());
    }

    #[test]
    fn refuses_to_sign_what_it_would_refuse() {
        let mut c = claims();
        c.name = "tab\there".into();
        assert_eq!(sign_chat(b"s", &c), Err(KeyError::Malformed));
        c = claims();
        c.user = "a b".into();
        assert_eq!(sign_chat(b"s", &c), Err(KeyError::Malformed));
        c = claims();
        c.stream = "../x".into();
        assert_eq!(sign_chat(b"s", &c), Err(KeyError::BadStreamName));
        c = claims();
        c.name = "x".repeat(65);
        assert_eq!(sign_chat(b"s", &c), Err(KeyError::Malformed));
    }
}
