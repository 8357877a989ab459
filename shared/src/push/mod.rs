//! The origin-to-edge push protocol (DESIGN.md section 5, "Push"): wire
//! types only, no sockets. The origin's QUIC server lives in
//! `livecdn_origin::push`, the edge's subscriber in `livecdn_edge::push`.
//!
//! # Transport
//!
//! QUIC (quinn) on the origin's push port, `push.listen`, default
//! `0.0.0.0:8444/udp`, ALPN [`ALPN`]. The origin presents a certificate (its
//! own `push.cert`/`push.key`, or a self-signed one made at start); an edge
//! trusts it by SHA-256 SPKI pin (`upstream.push_spki`, the value the origin
//! prints as `push_spki=` on its `listening ...` line), or, with
//! `upstream.push_insecure = true`, without any check. The insecure mode is
//! for labs only: anyone on the path can then feed the edge's cache; a pin
//! costs one config line per origin, and a configured (not self-signed)
//! origin certificate keeps the pin stable across restarts.
//!
//! # Cluster credential
//!
//! The TLS pin authenticates the origin to the edge; the edge authenticates
//! to the origin with its cluster credential (`livecdn cluster-key NODE`,
//! see [`crate::auth::sign_cluster`]), sent in a [`Message::Hello`] as the
//! first frame of the control stream. The origin closes the connection
//! (application code 2, "cluster credential refused") on any other first
//! frame, a credential that does not verify, or none within its control
//! timeout; only after a Hello does it take subscriptions and viewer
//! reports.
//!
//! # Streams
//!
//! * One **control** stream per connection: the edge opens a bidirectional
//!   stream and writes [`Message::Hello`], then [`Message::Subscribe`], [`Message::Unsubscribe`] and,
//!   every second, [`Message::ViewerReport`] frames. The origin writes nothing
//!   back on it (yet); a frame it cannot decode closes the connection.
//! * One **unidirectional** stream per **object**, origin to edge: an
//!   [`Message::Object`] frame ([`ObjectHeader`]) then the object's body to
//!   the end of the stream. Objects never share a stream, so a lost packet of
//!   a segment never delays the next part (no head-of-line blocking).
//!   A part's stream opens with its first CMAF chunk and gains each chunk
//!   as the packager makes it (a frame, or a run of audio frames); it
//!   finishes when the part is complete, and is reset if the part is
//!   abandoned. An edge may use each chunk as it arrives (WebRTC) and
//!   stores the part once its stream has finished.
//!
//! # Frames
//!
//! ```text
//! frame   = type:u8  length:u32be  body[length]          (length <= MAX_FRAME_BODY)
//! 0x01 Subscribe     body = stream name (1-64 of [A-Za-z0-9_-])
//! 0x02 Unsubscribe   body = stream name
//! 0x03 ViewerReport  body = viewers:u32be  stream name
//! 0x04 Hello         body = cluster credential (1-256 visible ASCII)
//! 0x10 Object        body = kind:u8 (0 init, 1 part, 2 segment, 3 playlist)
//!                           msn:u64be  has_part:u8 (0|1)  [part:u32be]
//!                           path_len:u16be path (<= MAX_PATH, starts with '/')
//!                           ctype_len:u8 content type (<= MAX_CONTENT_TYPE)
//! ```
//!
//! For a playlist, `(msn, part)` is the last complete part it lists, so the
//! edge can also answer the blocking reload `_HLS_msn=msn&_HLS_part=part`
//! from it. An object body is at most [`MAX_OBJECT_BODY`] bytes.
//!
//! A stream whose live playlists reach back into its recording (DVR) gets
//! its parts, segments and init sections pushed, but not its playlists:
//! hours of segments re-sent to every edge three times a second would cost
//! more than the pull they save, and pulled blocking reloads with delta
//! updates (`_HLS_skip`) carry only the newest lines. Its playlist answers
//! say so in the [`PULL_PLAYLISTS_HEADER`] header, so an edge does not
//! wait for a pushed playlist that will not come.
//!
//! # Drive contract
//!
//! Sans-IO, hyper style: feed whatever bytes have arrived to [`decode`]; it
//! returns `Ok(None)` until a whole frame is there, then the message and how
//! many bytes it used. Errors are final: close the stream or connection.
//!
//! ```
//! use bytes::Bytes;
//! use livecdn_shared::push::{decode, encode, Message};
//!
//! let mut buf = Vec::new();
//! encode(&Message::Subscribe { stream: "cam".into() }, &mut buf).unwrap();
//! let bytes = Bytes::from(buf);
//! assert_eq!(decode(&bytes.slice(..3)), Ok(None)); // need more bytes
//! let (msg, used) = decode(&bytes).unwrap().unwrap();
//! assert_eq!(msg, Message::Subscribe { stream: "cam".into() });
//! assert_eq!(used, bytes.len());
//! ```

mod wire;

pub use wire::{
    decode, decode_object, decode_uni, encode, fuzz_push_wire, Message, ObjectHeader, PushKind,
    Uni, WireError, ALPN, FRAME_HEADER, MAX_CONTENT_TYPE, MAX_CREDENTIAL, MAX_FRAME_BODY,
    MAX_OBJECT_BODY, MAX_PATH,
};

/// The push port when none is configured (UDP).
pub const DEFAULT_PORT: u16 = 8444;

/// The playlist response header (value `1`) by which the origin tells an
/// edge that this stream's playlists are not pushed (a DVR window).
pub const PULL_PLAYLISTS_HEADER: &str = "livecdn-pull-playlists";
