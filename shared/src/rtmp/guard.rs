//! A sans-IO scanner of the RTMP chunk stream that runs before the RTMP
//! session parser and refuses what that parser would mishandle.
//!
//! rml_rtmp (which drives the session) decodes AMF0 recursively, shares one
//! reassembly buffer across chunk streams, and does unchecked timestamp
//! arithmetic; crafted chunks can make it panic or overflow its stack. The
//! guard tracks chunk headers itself and rejects, with a reason:
//! * a continuation chunk (format 1-3) on a chunk stream with no header yet;
//! * a new message on one chunk stream while another is half received
//!   (encoders send each message whole; interleaving is what breaks the
//!   shared buffer);
//! * message lengths above a per-type limit (64 KiB for commands, 8 MiB for
//!   media), and above [`MAX_PRE_AUTH`] for every type until the session
//!   says the publisher is authorised ([`ChunkGuard::authorise`]), chunk sizes outside 1..=16 MiB, extended timestamps below
//!   0xFFFFFF (they only exist to carry larger values);
//! * command and data messages that are not well-formed, shallow AMF0, and
//!   commands with fewer than three values.
//!
//! Media payloads are only counted, never copied; command payloads (small,
//! capped) are buffered to be checked.
//!
//! Drive contract: call [`ChunkGuard::inspect`] with every byte after the
//! handshake, in order, before giving the same bytes to the session parser.
//! Once it returns an error, close the connection.

use super::amf0;
use std::collections::HashMap;
use thiserror::Error;

const MAX_COMMAND: u32 = 64 * 1024;
const MAX_MEDIA: u32 = 8 * 1024 * 1024;
/// Longest message of any type before [`ChunkGuard::authorise`]: what a
/// client may make the session parser reserve before it has proved it may
/// publish. Connect, createStream and publish commands are a few hundred
/// bytes; media before publish is refused anyway.
pub const MAX_PRE_AUTH: u32 = 4 * 1024;
const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Chunk streams a session may use (real encoders use about five).
const MAX_CHUNK_STREAMS: usize = 64;

/// Why the chunk stream was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GuardError {
    /// A format 1-3 chunk on a chunk stream that never had a full header.
    #[error("chunk stream {0} continues a message it never started")]
    NoPriorHeader(u32),
    /// A new message header while that stream's message is incomplete.
    #[error("chunk stream {0} starts a message inside another")]
    HeaderMidMessage(u32),
    /// Chunks of two messages interleaved across chunk streams.
    #[error("chunk stream {next} interleaved with the unfinished message on {open}")]
    Interleaved { open: u32, next: u32 },
    /// A message longer than its type allows.
    #[error("message type {kind} of {len} bytes exceeds {max}")]
    TooLong { kind: u8, len: u32, max: u32 },
    /// A control message with the wrong length.
    #[error("control message type {kind} has length {len}")]
    BadControl { kind: u8, len: u32 },
    /// Set Chunk Size outside 1..=16 MiB.
    #[error("chunk size {0} out of range")]
    ChunkSize(u32),
    /// An extended timestamp field holding a value that fits 24 bits.
    #[error("extended timestamp {0:#x} below 0xFFFFFF")]
    ExtendedTimestamp(u32),
    /// More chunk streams than any encoder uses.
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyStreams,
    /// A malformed or too deeply nested AMF0 command or data message.
    #[error("AMF0: {0}")]
    Amf0(#[from] amf0::Amf0Error),
    /// A command message with fewer than name, transaction id and object.
    #[error("command with {0} values (needs at least 3)")]
    ShortCommand(usize),
}

#[derive(Debug, Clone, Copy, Default)]
struct Header {
    len: u32,
    kind: u8,
    extended: bool,
}

#[derive(Debug, Default)]
struct Stream {
    header: Option<Header>,
    /// Payload bytes still to come for the current message (0 = none open).
    remaining: u32,
    /// Buffered payload of a command/data message being checked.
    payload: Vec<u8>,
}

#[derive(Debug)]
enum State {
    /// Collecting a chunk header.
    Header(Vec<u8>),
    /// Inside the payload of one chunk: this many bytes of it left.
    Payload { csid: u32, left: u32 },
}

#[derive(Debug)]
pub struct ChunkGuard {
    chunk_size: u32,
    streams: HashMap<u32, Stream>,
    /// The chunk stream with a message half received, if any.
    open: Option<u32>,
    state: State,
    /// Whether the publisher proved it may publish (media limits apply).
    authorised: bool,
}

impl Default for ChunkGuard {
    fn default() -> Self {
        Self::new()
    }
}

fn buffered(kind: u8) -> bool {
    matches!(kind, 1 | 15 | 17 | 18 | 20)
}

fn max_len(kind: u8, authorised: bool) -> u32 {
    match kind {
        _ if !authorised => MAX_PRE_AUTH,
        8 | 9 | 22 => MAX_MEDIA,
        _ => MAX_COMMAND,
    }
}

impl ChunkGuard {
    pub fn new() -> Self {
        Self {
            chunk_size: 128,
            streams: HashMap::new(),
            open: None,
            state: State::Header(Vec::with_capacity(18)),
            authorised: false,
        }
    }

    /// The publisher is authorised: from now on messages may be as long as
    /// their type allows (media up to 8 MiB), not just [`MAX_PRE_AUTH`].
    pub fn authorise(&mut self) {
        self.authorised = true;
    }

    /// A guard for an already authorised session (tests and fuzzing of
    /// the media path).
    pub fn authorised() -> Self {
        let mut g = Self::new();
        g.authorise();
        g
    }

    /// Scans `input`; an error means the connection must be closed.
    pub fn inspect(&mut self, mut input: &[u8]) -> Result<(), GuardError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Header(buf) => {
                    // Take bytes one at a time until the header is complete
                    // (at most 18 bytes, so this is cheap).
                    let (b, rest) = (input[0], &input[1..]);
                    input = rest;
                    buf.push(b);
                    let buf = std::mem::take(buf);
                    match self.parse_header(&buf)? {
                        Some((csid, payload)) => {
                            self.state = if payload == 0 {
                                self.finish_chunk(csid)?;
                                State::Header(Vec::with_capacity(18))
                            } else {
                                State::Payload {
                                    csid,
                                    left: payload,
                                }
                            };
                        }
                        None => self.state = State::Header(buf),
                    }
                }
                State::Payload { csid, left } => {
                    let csid = *csid;
                    let n = (*left as usize).min(input.len());
                    let (chunk, rest) = input.split_at(n);
                    input = rest;
                    *left -= n as u32;
                    let done = *left == 0;
                    if let Some(s) = self.streams.get_mut(&csid) {
                        if s.header.is_some_and(|h| buffered(h.kind)) {
                            s.payload.extend_from_slice(chunk);
                        }
                    }
                    if done {
                        self.state = State::Header(Vec::with_capacity(18));
                        self.finish_chunk(csid)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses a complete chunk header from `buf`, or None if more bytes are
    /// needed. Returns the chunk stream and this chunk's payload length.
    fn parse_header(&mut self, buf: &[u8]) -> Result<Option<(u32, u32)>, GuardError> {
        let b0 = buf[0];
        let fmt = b0 >> 6;
        let (csid, basic) = match b0 & 0x3f {
            0 => match buf.get(1) {
                Some(b) => (64 + u32::from(*b), 2),
                None => return Ok(None),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(a), Some(b)) => (64 + u32::from(*a) + 256 * u32::from(*b), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let msg_len = [11, 7, 3, 0][usize::from(fmt)];
        if buf.len() < basic + msg_len {
            return Ok(None);
        }
        let m = &buf[basic..basic + msg_len];
        let u24 = |i: usize| u32::from(m[i]) << 16 | u32::from(m[i + 1]) << 8 | u32::from(m[i + 2]);
        if !self.streams.contains_key(&csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(GuardError::TooManyStreams);
        }
        let prior = self.streams.get(&csid).and_then(|s| s.header);
        let remaining = self.streams.get(&csid).map_or(0, |s| s.remaining);
        if fmt != 0 && prior.is_none() {
            return Err(GuardError::NoPriorHeader(csid));
        }
        if fmt != 3 && remaining > 0 {
            return Err(GuardError::HeaderMidMessage(csid));
        }
        if let Some(open) = self.open {
            if open != csid {
                return Err(GuardError::Interleaved { open, next: csid });
            }
        }
        let mut header = prior.unwrap_or_default();
        let ts_field = match fmt {
            0..=2 => Some(u24(0)),
            _ => None,
        };
        if fmt <= 1 {
            header.len = u24(3);
            header.kind = m[6];
        }
        let extended = match ts_field {
            Some(ts) => ts == 0xFF_FFFF,
            None => header.extended,
        };
        header.extended = extended;
        let ext_len = if extended { 4 } else { 0 };
        if buf.len() < basic + msg_len + ext_len {
            return Ok(None);
        }
        if extended {
            let e = &buf[basic + msg_len..basic + msg_len + 4];
            let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            // A type-3 chunk repeats its message's extended timestamp; only
            // new values must really need the extra bits.
            if ts_field.is_some() && v < 0xFF_FFFF {
                return Err(GuardError::ExtendedTimestamp(v));
            }
        }
        let max = max_len(header.kind, self.authorised);
        if header.len > max {
            return Err(GuardError::TooLong {
                kind: header.kind,
                len: header.len,
                max,
            });
        }
        let fixed = match header.kind {
            1 | 2 | 3 | 5 => Some(4),
            6 => Some(5),
            _ => None,
        };
        if fixed.is_some_and(|f| f != header.len) || (header.kind == 4 && header.len < 6) {
            return Err(GuardError::BadControl {
                kind: header.kind,
                len: header.len,
            });
        }
        let stream = self.streams.entry(csid).or_default();
        stream.header = Some(header);
        if stream.remaining == 0 {
            stream.remaining = header.len;
            stream.payload.clear();
        }
        let payload = stream.remaining.min(self.chunk_size);
        stream.remaining -= payload;
        self.open = (stream.remaining > 0).then_some(csid);
        Ok(Some((csid, payload)))
    }

    /// A chunk's payload is complete; if its message is too, check it.
    fn finish_chunk(&mut self, csid: u32) -> Result<(), GuardError> {
        let Some(s) = self.streams.get_mut(&csid) else {
            return Ok(());
        };
        let Some(h) = s.header else { return Ok(()) };
        if s.remaining > 0 || !buffered(h.kind) {
            return Ok(());
        }
        let payload = std::mem::take(&mut s.payload);
        match h.kind {
            1 => {
                let raw: [u8; 4] = payload
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(GuardError::BadControl { kind: 1, len: 0 })?;
                let v = u32::from_be_bytes(raw) & 0x7fff_ffff;
                if v == 0 || v > MAX_CHUNK_SIZE {
                    return Err(GuardError::ChunkSize(v));
                }
                self.chunk_size = v;
            }
            20 | 17 => {
                let body = session_view(h.kind, &payload);
                let n = amf0::count_values(body)?;
                if n < 3 {
                    return Err(GuardError::ShortCommand(n));
                }
            }
            _ => {
                amf0::count_values(session_view(h.kind, &payload))?;
            }
        }
        Ok(())
    }
}

/// The bytes of a command or data message that rml_rtmp decodes as AMF0,
/// exactly as it picks them: an "AMF3" command (17) loses its first byte
/// only when that byte is 0x00; an "AMF3" data message (15) is decoded
/// whole. Checking any other slice than the one the session decodes lets
/// a message through that the session then panics on (fewer than three
/// command values) or recurses into.
fn session_view(kind: u8, payload: &[u8]) -> &[u8] {
    match (kind, payload.first()) {
        (17, Some(0x00)) => &payload[1..],
        _ => payload,
    }
}

/// Fuzz body: any byte sequence is accepted or refused, never a panic, and
/// feeding it in one piece or byte by byte gives the same verdict. The first
/// byte's low bit picks a guard before or after authorisation.
pub fn fuzz_chunk_guard(data: &[u8]) {
    let fresh = || match data.first() {
        Some(b) if b & 1 == 1 => ChunkGuard::authorised(),
        _ => ChunkGuard::new(),
    };
    let whole = fresh().inspect(data);
    let mut g = fresh();
    let mut split = Ok(());
    for b in data {
        split = g.inspect(std::slice::from_ref(b));
        if split.is_err() {
            break;
        }
    }
    assert_eq!(
        whole.is_ok(),
        split.is_ok(),
        "verdict depends on read boundaries"
    );
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
