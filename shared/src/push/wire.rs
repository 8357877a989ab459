//! Push frames: encode to a `Vec<u8>`, decode through the bounds-checked
//! [`Reader`]. See the module docs of [`crate::push`] for the layout.

use crate::auth::valid_stream_name;
use crate::bytes_reader::{ReadError, Reader};
use bytes::Bytes;

/// ALPN of the push protocol. Version 2 opens the control stream with
/// [`Message::Hello`]; a version-1 peer fails the TLS handshake instead of
/// being refused later for a frame it never sends.
pub const ALPN: &[u8] = b"livecdn-push/2";
/// Longest cluster credential a Hello may carry.
pub const MAX_CREDENTIAL: usize = 256;
/// Bytes before a frame body: type (1) and length (4).
pub const FRAME_HEADER: usize = 5;
/// Longest frame body: every message is a few names and integers.
pub const MAX_FRAME_BODY: usize = 1024;
/// Longest object path.
pub const MAX_PATH: usize = 256;
/// Longest content type.
pub const MAX_CONTENT_TYPE: usize = 128;
/// Largest object body (a segment of a high-bitrate rendition fits easily).
pub const MAX_OBJECT_BODY: usize = 16 * 1024 * 1024;

const T_SUBSCRIBE: u8 = 0x01;
const T_UNSUBSCRIBE: u8 = 0x02;
const T_VIEWERS: u8 = 0x03;
const T_HELLO: u8 = 0x04;
const T_PURGE: u8 = 0x05;
const T_OBJECT: u8 = 0x10;

/// Why bytes are not a valid push frame. Every variant is the peer's fault
/// (malformed input); the reaction is to close the stream or connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A frame type this version does not know.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// The declared body length is over [`MAX_FRAME_BODY`].
    #[error("frame body of {0} bytes is over the limit")]
    FrameTooLong(u32),
    /// A field ran past the end of the frame body.
    #[error("malformed frame: {0}")]
    Read(#[from] ReadError),
    /// Not a valid stream name (1-64 of `[A-Za-z0-9_-]`).
    #[error("invalid stream name")]
    StreamName,
    /// The path is empty, too long, not UTF-8 or does not start with `/`.
    #[error("invalid object path")]
    Path,
    /// The content type is too long or not UTF-8.
    #[error("invalid content type")]
    ContentType,
    /// An object kind byte this version does not know.
    #[error("unknown object kind {0}")]
    Kind(u8),
    /// The `has_part` byte was neither 0 nor 1.
    #[error("invalid part flag {0}")]
    PartFlag(u8),
    /// The credential is empty, too long or not visible ASCII.
    #[error("invalid credential field")]
    Credential,
    /// An object stream did not start with an object header.
    #[error("object stream without an object header")]
    NotAnObject,
    /// An object body over [`MAX_OBJECT_BODY`].
    #[error("object body of {0} bytes is over the limit")]
    BodyTooLarge(usize),
}

/// What a pushed object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushKind {
    Init,
    Part,
    Segment,
    Playlist,
}

impl PushKind {
    fn to_u8(self) -> u8 {
        match self {
            PushKind::Init => 0,
            PushKind::Part => 1,
            PushKind::Segment => 2,
            PushKind::Playlist => 3,
        }
    }

    fn from_u8(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            0 => PushKind::Init,
            1 => PushKind::Part,
            2 => PushKind::Segment,
            3 => PushKind::Playlist,
            other => return Err(WireError::Kind(other)),
        })
    }

    /// A fixed label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Init => "init",
            PushKind::Part => "part",
            PushKind::Segment => "segment",
            PushKind::Playlist => "playlist",
        }
    }
}

/// The head of an object stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeader {
    pub kind: PushKind,
    /// The HTTP path the object is served at, e.g. `/live/cam/source/3.2.m4s`.
    pub path: String,
    pub msn: u64,
    /// The part number (parts); for playlists the last complete part listed.
    pub part: Option<u32>,
    pub content_type: String,
}

/// One push frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Edge to origin, first on the control stream: the edge's cluster
    /// credential (`livecdn cluster-key`). Nothing else is accepted first.
    Hello { credential: String },
    /// Edge to origin: send me this stream's objects.
    Subscribe { stream: String },
    /// Edge to origin: stop sending this stream.
    Unsubscribe { stream: String },
    /// Edge to origin: this many viewers watch `stream` here.
    ViewerReport { stream: String, viewers: u32 },
    /// Origin to edge: the head of an object stream.
    Object(ObjectHeader),
    /// Origin to edge, alone on a unidirectional stream: the operator
    /// stopped `stream`; drop everything cached for it.
    Purge { stream: String },
}

/// What an origin-to-edge unidirectional stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uni {
    /// An object: its header and body.
    Object(ObjectHeader, Bytes),
    /// Drop this stream's cached objects.
    Purge(String),
}

fn check_stream(stream: &str) -> Result<(), WireError> {
    if valid_stream_name(stream) {
        Ok(())
    } else {
        Err(WireError::StreamName)
    }
}

fn check_credential(c: &str) -> Result<(), WireError> {
    if !c.is_empty() && c.len() <= MAX_CREDENTIAL && c.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(WireError::Credential)
    }
}

fn check_path(path: &str) -> Result<(), WireError> {
    if path.starts_with('/') && path.len() <= MAX_PATH {
        Ok(())
    } else {
        Err(WireError::Path)
    }
}

/// Appends the frame for `msg` to `out`. Refuses (writing nothing) what the
/// other side would refuse to decode.
pub fn encode(msg: &Message, out: &mut Vec<u8>) -> Result<(), WireError> {
    let mut body = Vec::with_capacity(64);
    let kind = match msg {
        Message::Hello { credential } => {
            check_credential(credential)?;
            body.extend_from_slice(credential.as_bytes());
            T_HELLO
        }
        Message::Subscribe { stream }
        | Message::Unsubscribe { stream }
        | Message::Purge { stream } => {
            check_stream(stream)?;
            body.extend_from_slice(stream.as_bytes());
            match msg {
                Message::Subscribe { .. } => T_SUBSCRIBE,
                Message::Unsubscribe { .. } => T_UNSUBSCRIBE,
                _ => T_PURGE,
            }
        }
        Message::ViewerReport { stream, viewers } => {
            check_stream(stream)?;
            body.extend_from_slice(&viewers.to_be_bytes());
            body.extend_from_slice(stream.as_bytes());
            T_VIEWERS
        }
        Message::Object(h) => {
            check_path(&h.path)?;
            if h.content_type.len() > MAX_CONTENT_TYPE {
                return Err(WireError::ContentType);
            }
            body.push(h.kind.to_u8());
            body.extend_from_slice(&h.msn.to_be_bytes());
            match h.part {
                Some(p) => {
                    body.push(1);
                    body.extend_from_slice(&p.to_be_bytes());
                }
                None => body.push(0),
            }
            // Both fit: checked against limits below u16/u8 above.
            body.extend_from_slice(&(h.path.len() as u16).to_be_bytes());
            body.extend_from_slice(h.path.as_bytes());
            body.push(h.content_type.len() as u8);
            body.extend_from_slice(h.content_type.as_bytes());
            T_OBJECT
        }
    };
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// Decodes the frame at the start of `buf`: `Ok(None)` if more bytes are
/// needed, else the message and the bytes it used.
pub fn decode(buf: &Bytes) -> Result<Option<(Message, usize)>, WireError> {
    let mut r = Reader::new(buf.clone());
    if r.remaining() < FRAME_HEADER {
        return Ok(None);
    }
    let kind = r.u8()?;
    let len = r.u32()?;
    if !matches!(
        kind,
        T_HELLO | T_SUBSCRIBE | T_UNSUBSCRIBE | T_VIEWERS | T_PURGE | T_OBJECT
    ) {
        return Err(WireError::UnknownType(kind));
    }
    let body_len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_FRAME_BODY)
        .ok_or(WireError::FrameTooLong(len))?;
    if r.remaining() < body_len {
        return Ok(None);
    }
    let mut body = r.sub(body_len)?;
    let msg = match kind {
        T_HELLO => {
            let raw = body.rest();
            let credential = std::str::from_utf8(&raw).map_err(|_| WireError::Credential)?;
            check_credential(credential)?;
            Message::Hello {
                credential: credential.to_string(),
            }
        }
        T_SUBSCRIBE => Message::Subscribe {
            stream: stream_name(body.rest())?,
        },
        T_UNSUBSCRIBE => Message::Unsubscribe {
            stream: stream_name(body.rest())?,
        },
        T_PURGE => Message::Purge {
            stream: stream_name(body.rest())?,
        },
        T_VIEWERS => {
            let viewers = body.u32()?;
            Message::ViewerReport {
                viewers,
                stream: stream_name(body.rest())?,
            }
        }
        _ => Message::Object(object_header(&mut body)?),
    };
    body.expect_end()?;
    Ok(Some((msg, FRAME_HEADER + body_len)))
}

fn stream_name(b: Bytes) -> Result<String, WireError> {
    let s = std::str::from_utf8(&b).map_err(|_| WireError::StreamName)?;
    check_stream(s)?;
    Ok(s.to_string())
}

fn object_header(r: &mut Reader) -> Result<ObjectHeader, WireError> {
    let kind = PushKind::from_u8(r.u8()?)?;
    let msn = u64::from_be_bytes(r.take_array()?);
    let part = match r.u8()? {
        0 => None,
        1 => Some(r.u32()?),
        other => return Err(WireError::PartFlag(other)),
    };
    let path_len = usize::from(r.u16()?);
    if path_len > MAX_PATH {
        return Err(WireError::Path);
    }
    let path = std::str::from_utf8(&r.take(path_len)?)
        .map_err(|_| WireError::Path)?
        .to_string();
    check_path(&path)?;
    let ct_len = usize::from(r.u8()?);
    if ct_len > MAX_CONTENT_TYPE {
        return Err(WireError::ContentType);
    }
    let content_type = std::str::from_utf8(&r.take(ct_len)?)
        .map_err(|_| WireError::ContentType)?
        .to_string();
    Ok(ObjectHeader {
        kind,
        path,
        msn,
        part,
        content_type,
    })
}

/// Decodes a whole origin-to-edge unidirectional stream: an object, or a
/// purge (nothing after its frame).
pub fn decode_uni(stream: &Bytes) -> Result<Uni, WireError> {
    if let Ok(Some((Message::Purge { stream: name }, used))) = decode(stream) {
        if used == stream.len() {
            return Ok(Uni::Purge(name));
        }
    }
    let (header, body) = decode_object(stream)?;
    Ok(Uni::Object(header, body))
}

/// Splits a whole object stream into its header and body.
pub fn decode_object(stream: &Bytes) -> Result<(ObjectHeader, Bytes), WireError> {
    let Some((msg, used)) = decode(stream)? else {
        return Err(WireError::Read(ReadError::Truncated {
            needed: FRAME_HEADER,
            available: stream.len(),
        }));
    };
    let Message::Object(header) = msg else {
        return Err(WireError::NotAnObject);
    };
    let body = stream.slice(used..);
    if body.len() > MAX_OBJECT_BODY {
        return Err(WireError::BodyTooLarge(body.len()));
    }
    Ok((header, body))
}

/// Fuzz body: decodes `data` as a frame sequence and as an object stream;
/// whatever decodes must re-encode to the same bytes. Must never panic.
pub fn fuzz_push_wire(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let mut at = 0usize;
    // Bounded: each decoded frame consumes at least FRAME_HEADER bytes.
    while let Ok(Some((msg, used))) = decode(&bytes.slice(at..)) {
        let mut again = Vec::new();
        assert!(encode(&msg, &mut again).is_ok(), "{msg:?} does not encode");
        assert_eq!(Some(&again[..]), bytes.get(at..at + used), "{msg:?}");
        at += used;
    }
    let _ = decode_object(&bytes);
    let _ = decode_uni(&bytes);
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
