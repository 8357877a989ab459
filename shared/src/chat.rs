//! The chat wire schema (`/live/STREAM/chat`, WebSocket text frames of
//! JSON), in one place for the edge's chat service, the load-test harness
//! and the tests.
//!
//! Every object has a `type`. Clients send [`ClientMsg`]; the server sends
//! [`ServerEvent`]. The first server event of a connection is `join`, whose
//! `v` is [`SCHEMA_VERSION`]: a client that sees another version knows the
//! schema moved. Fields are added to server events without a version bump
//! (clients ignore what they do not know); clients' objects are strict
//! (`deny_unknown_fields`), so a typo is an error the client sees, not a
//! silently ignored field.
//!
//! ```
//! use livecdn_shared::chat::{ClientMsg, ServerEvent};
//! let m: ClientMsg = serde_json::from_str(r#"{"type":"message","text":"hi"}"#).unwrap();
//! assert_eq!(m, ClientMsg::Message { text: "hi".into() });
//! let e: ServerEvent = serde_json::from_str(r#"{"type":"viewer-count","count":7}"#).unwrap();
//! assert_eq!(e, ServerEvent::ViewerCount { count: 7 });
//! ```

use crate::auth::ChatRole;
use serde::{Deserialize, Serialize};

/// The schema version `join` carries.
pub const SCHEMA_VERSION: u32 = 1;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Say something in the room.
    Message { text: String },
    /// Moderators: delete a message (by its id) for everyone.
    Delete { id: String },
    /// Moderators: ban a user (by user id) from the room, for `seconds` or
    /// until unbanned.
    Ban {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    },
    /// Moderators: lift a ban.
    Unban { user: String },
}

impl ClientMsg {
    /// Parses one text frame: a JSON object of this schema, nothing else
    /// (serde would also take an array for a tagged enum).
    pub fn parse(text: &str) -> Result<ClientMsg, ErrorCode> {
        if !text.trim_start().starts_with('{') {
            return Err(ErrorCode::BadMessage);
        }
        serde_json::from_str(text).map_err(|_| ErrorCode::BadMessage)
    }
}

/// One chat message as every client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Server-assigned, unique in the room, increasing in room order
    /// (`MILLISECONDS-SEQUENCE`, as Redis Streams ids).
    pub id: String,
    pub user: String,
    pub name: String,
    pub role: ChatRole,
    pub text: String,
    /// Server time the message was accepted, unix milliseconds.
    pub ts: u64,
}

/// Who the connection speaks as (`None` in `join`: read-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user: String,
    pub name: String,
    pub role: ChatRole,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerEvent {
    /// The room's state on joining: recent history (oldest first) and the
    /// viewer count.
    Join {
        v: u32,
        room: String,
        you: Option<Me>,
        history: Vec<ChatMessage>,
        viewers: u64,
    },
    Message(ChatMessage),
    /// Viewers of the stream, across edges.
    ViewerCount {
        count: u64,
    },
    /// A moderator deleted message `id`.
    Delete {
        id: String,
    },
    /// `user` may not send until `until` (unix seconds; `None`: until
    /// unbanned).
    Ban {
        user: String,
        until: Option<u64>,
    },
    Unban {
        user: String,
    },
    /// Something this client did was refused; the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Why a client's message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a known message.
    BadMessage,
    /// Text empty, too long, or with control characters.
    BadText,
    /// Over the connection's message rate; wait and retry.
    RateLimited,
    /// The token does not allow it (read-only, or not a moderator).
    Forbidden,
    /// The user is banned from this room.
    Banned,
    /// The message could not be relayed to the other edges (the relay is
    /// down); it was not sent.
    RelayUnavailable,
}

/// Close codes the server uses (RFC 6455 section 7.4; 4000-4999 are the
/// application's).
pub mod close {
    /// No token, or one that does not verify or has expired.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// A valid token for another stream, or a banned user.
    pub const FORBIDDEN: u16 = 4403;
    /// Too many connections from this address, or in this room.
    pub const TOO_MANY: u16 = 4429;
    /// The client did not read its messages fast enough.
    pub const SLOW_CONSUMER: u16 = 4408;
    /// Refused message after refused message: a flood.
    pub const FLOOD: u16 = 1008;
    /// A frame or message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// A text frame that is not UTF-8.
    pub const BAD_UTF8: u16 = 1007;
    /// Binary frames are not part of the schema.
    pub const UNSUPPORTED: u16 = 1003;
    /// The edge is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// No answer to pings.
    pub const TIMEOUT: u16 = 4000;
}

/// Checks a message's text: not blank, at most `max_chars` characters, no
/// control characters other than newline.
pub fn check_text(text: &str, max_chars: usize) -> Result<(), ErrorCode> {
    if text.trim().is_empty()
        || text.chars().count() > max_chars
        || text.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ErrorCode::BadText);
    }
    Ok(())
}

/// Fuzz body: any bytes as a client frame. Parsing never panics, and what
/// parses serialises back to an equal message.
pub fn fuzz_client_msg(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = ClientMsg::parse(text) {
        if let ClientMsg::Message { text } = &msg {
            let _ = check_text(text, 500);
        }
        let again = serde_json::to_vec(&msg).map(|j| serde_json::from_slice::<ClientMsg>(&j));
        assert!(matches!(again, Ok(Ok(ref m)) if *m == msg), "{msg:?}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_strict() {
        for bad in [
            r#"{"type":"message"}"#,
            r#"{"type":"message","text":"x","extra":1}"#,
            r#"{"type":"shout","text":"x"}"#,
            r#"{"text":"x"}"#,
            r#"["message","x"]"#,
        ] {
            assert_eq!(ClientMsg::parse(bad), Err(ErrorCode::BadMessage), "{bad}");
        }
        let ban = ClientMsg::parse(r#" {"type":"ban","user":"u1"}"#).unwrap();
        assert_eq!(
            ban,
            ClientMsg::Ban {
                user: "u1".into(),
                seconds: None
            }
        );
    }

    #[test]
    fn server_events_round_trip_with_their_type() {
        let m = ServerEvent::Message(ChatMessage {
            id: "5-0".into(),
            user: "u".into(),
            name: "N".into(),
            role: ChatRole::Viewer,
            text: "hello".into(),
            ts: 5,
        });
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.starts_with(r#"{"type":"message","id":"5-0""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ServerEvent>(&json).unwrap(), m);
        let e = ServerEvent::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""code":"rate_limited""#), "{json}");
    }

    #[test]
    fn text_rules() {
        assert_eq!(check_text("hi\nthere", 10), Ok(()));
        assert_eq!(check_text("   ", 10), Err(ErrorCode::BadText));
        assert_eq!(check_text("a\u{7}", 10), Err(ErrorCode::BadText));
        assert_eq!(check_text("ééééé", 5), Ok(()));
        assert_eq!(check_text("éééééé", 5), Err(ErrorCode::BadText));
    }

    #[test]
    fn fuzz_client_msg_survives_seeds_and_mutations() {
        crate::bytes_reader::fuzz_input::exercise(
            &[
                br#"{"type":"message","text":"hi"}"#,
                br#"{"type":"ban","user":"u","seconds":5}"#,
            ],
            3000,
            fuzz_client_msg,
        );
    }
}
