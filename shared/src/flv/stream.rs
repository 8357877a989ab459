//! Incremental FLV reading, for FLV that arrives over a pipe in pieces (an
//! encoder's output): bytes go in as they are read, whole tags come out.
//!
//! Sans-IO: the I/O layer reads into [`FlvStreamReader::buffer_mut`] and
//! then drains [`FlvStreamReader::next_tag`] until it returns `Ok(None)`.
//! The buffer holds at most one tag beyond what was drained, and a tag larger
//! than the configured limit is an error, so a misbehaving writer cannot make
//! the reader grow without bound.

use bytes::{Buf, BytesMut};

use super::file::{FlvTag, TagType};
use super::FlvError;

const HEADER_LEN: usize = 9;
const TAG_HEADER_LEN: usize = 11;
const FILTER_BIT: u8 = 0x20;

/// Reads FLV tags from a byte stream delivered in arbitrary pieces.
#[derive(Debug)]
pub struct FlvStreamReader {
    buf: BytesMut,
    /// Header bytes (including PreviousTagSize0) still to skip, once known.
    header: HeaderState,
    max_tag: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderState {
    /// The 9-byte file header has not been read yet.
    Pending,
    /// This many bytes of header padding and PreviousTagSize0 remain.
    Skipping(usize),
    Done,
}

impl FlvStreamReader {
    /// A reader that refuses tags whose body is longer than `max_tag` bytes.
    pub fn new(max_tag: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(64 * 1024),
            header: HeaderState::Pending,
            max_tag,
        }
    }

    /// Where the I/O layer appends what it read.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends bytes (for callers that read into their own buffer).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received and not yet returned as tags.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete tag, `Ok(None)` when more bytes are needed, or an
    /// error for input that is not FLV. After an error the stream is not
    /// resynchronised: the caller drops it.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        loop {
            match self.header {
                HeaderState::Pending => {
                    if self.buf.len() < HEADER_LEN {
                        return Ok(None);
                    }
                    if &self.buf[..3] != b"FLV" {
                        return Err(FlvError::BadSignature);
                    }
                    if self.buf[3] != 1 {
                        return Err(FlvError::UnsupportedVersion(self.buf[3]));
                    }
                    let offset =
                        u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
                    let padding = (offset as usize)
                        .checked_sub(HEADER_LEN)
                        .filter(|p| *p <= self.max_tag)
                        .ok_or(FlvError::BadDataOffset(offset))?;
                    self.buf.advance(HEADER_LEN);
                    // The padding, then PreviousTagSize0.
                    self.header = HeaderState::Skipping(padding + 4);
                }
                HeaderState::Skipping(n) => {
                    let skip = n.min(self.buf.len());
                    self.buf.advance(skip);
                    if skip < n {
                        self.header = HeaderState::Skipping(n - skip);
                        return Ok(None);
                    }
                    self.header = HeaderState::Done;
                }
                HeaderState::Done => return self.tag(),
            }
        }
    }

    fn tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if self.buf.len() < TAG_HEADER_LEN {
            return Ok(None);
        }
        let h = &self.buf[..TAG_HEADER_LEN];
        if h[0] & FILTER_BIT != 0 {
            return Err(FlvError::EncryptedTag);
        }
        let size = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        if size > self.max_tag {
            return Err(FlvError::TagTooLarge(size));
        }
        let timestamp_ms =
            u32::from(h[7]) << 24 | u32::from(h[4]) << 16 | u32::from(h[5]) << 8 | u32::from(h[6]);
        let tag_type = TagType::from_u8(h[0] & 0x1f);
        // Tag header, body, PreviousTagSize.
        let whole = TAG_HEADER_LEN + size + 4;
        if self.buf.len() < whole {
            self.buf.reserve(whole - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(TAG_HEADER_LEN);
        let body = self.buf.split_to(size).freeze();
        self.buf.advance(4);
        Ok(Some(FlvTag {
            tag_type,
            timestamp_ms,
            body,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::flv::{write_header, write_tag};

    fn file() -> Vec<u8> {
        let mut out = write_header(false, true).to_vec();
        for i in 0..5u32 {
            let body = vec![i as u8; 100 + i as usize];
            out.extend_from_slice(&write_tag(TagType::Video, i * 33 + 0x0100_0000, &body).unwrap());
        }
        out
    }

    #[test]
    fn tags_come_out_whole_whatever_the_read_sizes() {
        let file = file();
        for step in [1usize, 3, 11, 64, 4096] {
            let mut r = FlvStreamReader::new(1 << 20);
            let mut tags = Vec::new();
            for piece in file.chunks(step) {
                r.push(piece);
                while let Some(t) = r.next_tag().unwrap() {
                    tags.push(t);
                }
            }
            assert_eq!(tags.len(), 5, "step {step}");
            for (i, t) in tags.iter().enumerate() {
                assert_eq!(t.tag_type, TagType::Video);
                assert_eq!(t.timestamp_ms, i as u32 * 33 + 0x0100_0000);
                assert_eq!(t.body.len(), 100 + i);
                assert!(t.body.iter().all(|b| *b == i as u8));
            }
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn oversized_tags_and_foreign_input_are_errors() {
        let mut r = FlvStreamReader::new(50);
        r.push(&file());
        assert_eq!(r.next_tag(), Err(FlvError::TagTooLarge(100)));
        let mut r = FlvStreamReader::new(50);
        r.push(b"GIF89a\0\0\0\0\0\0");
        assert_eq!(r.next_tag(), Err(FlvError::BadSignature));
        let mut r = FlvStreamReader::new(50);
        r.push(b"FLV\x01\x01\0\0\0\x03");
        assert_eq!(r.next_tag(), Err(FlvError::BadDataOffset(3)));
    }
}
