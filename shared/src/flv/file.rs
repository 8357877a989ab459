//! FLV files: reading the bundled demo clip tag by tag, and writing FLV so a
//! stream can be piped into ffmpeg or published by the load tester.
//!
//! ```text
//! header:  'F' 'L' 'V' version=1 flags(audio=4|video=1) data_offset:u32(=9)
//! then:    PreviousTagSize0:u32 (=0)
//!          { tag_type:u8 data_size:u24 timestamp:u24 timestamp_ext:u8 stream_id:u24
//!            body[data_size]  PreviousTagSize:u32 }*
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::FlvError;
use crate::bytes_reader::Reader;

/// Size of the fixed FLV file header.
const HEADER_LEN: u32 = 9;
/// Bytes of a tag header before the body.
const TAG_HEADER_LEN: usize = 11;
/// Largest body the 24-bit DataSize field can describe.
const MAX_BODY_LEN: usize = 0x00ff_ffff;
/// Bit 5 of the tag type byte: the body is encrypted ("filtered").
const FILTER_BIT: u8 = 0x20;

/// What an FLV tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagType {
    /// An audio tag body: [`super::parse_audio_tag`].
    Audio,
    /// A video tag body: [`super::parse_video_tag`].
    Video,
    /// AMF0 script data (`onMetaData`).
    Script,
    /// Any other 5-bit tag type, kept so a reader can skip it.
    Other(u8),
}

impl TagType {
    /// Maps the 5-bit TagType field.
    pub fn from_u8(value: u8) -> TagType {
        match value {
            8 => TagType::Audio,
            9 => TagType::Video,
            18 => TagType::Script,
            other => TagType::Other(other),
        }
    }

    /// The 5-bit TagType value.
    pub fn as_u8(self) -> u8 {
        match self {
            TagType::Audio => 8,
            TagType::Video => 9,
            TagType::Script => 18,
            TagType::Other(other) => other,
        }
    }
}

/// One tag read from an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    pub tag_type: TagType,
    /// Decode timestamp in ms: the 24-bit field with the extension byte as the
    /// high 8 bits.
    pub timestamp_ms: u32,
    /// The tag body, a zero-copy slice of the file.
    pub body: Bytes,
}

/// Reads an FLV file held in memory, one tag at a time.
///
/// The clip is small and loaded whole, so "end of input" means end of file:
/// [`FlvReader::next_tag`] returns `Ok(None)` there, and an error for a tag cut
/// short.
#[derive(Debug, Clone)]
pub struct FlvReader {
    reader: Reader,
    has_audio: bool,
    has_video: bool,
}

impl FlvReader {
    /// Validates the 9-byte header (signature `FLV`, version 1) and positions
    /// the reader at the first tag.
    pub fn new(file: Bytes) -> Result<FlvReader, FlvError> {
        let mut r = Reader::new(file);
        if r.take_array::<3>()? != *b"FLV" {
            return Err(FlvError::BadSignature);
        }
        let version = r.u8()?;
        if version != 1 {
            return Err(FlvError::UnsupportedVersion(version));
        }
        let flags = r.u8()?;
        let data_offset = r.u32()?;
        let extra = data_offset
            .checked_sub(HEADER_LEN)
            .ok_or(FlvError::BadDataOffset(data_offset))?;
        r.skip(extra as usize)?;
        // PreviousTagSize0: always 0, carries nothing.
        r.skip(4)?;
        Ok(FlvReader {
            reader: r,
            has_audio: flags & 0x04 != 0,
            has_video: flags & 0x01 != 0,
        })
    }

    /// The header's "audio tags present" flag (advisory; encoders lie).
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// The header's "video tags present" flag (advisory; encoders lie).
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// Returns the next tag, or `Ok(None)` at the end of the file.
    ///
    /// The PreviousTagSize after each tag is skipped, not checked: it exists
    /// for backwards seeking and some muxers get it wrong. A file whose last
    /// PreviousTagSize is missing entirely is accepted.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        let mut header = self.reader.sub(TAG_HEADER_LEN)?;
        let type_byte = header.u8()?;
        if type_byte & FILTER_BIT != 0 {
            return Err(FlvError::EncryptedTag);
        }
        let data_size = header.u24()?;
        let low = header.u24()?;
        let ext = header.u8()?;
        let _stream_id = header.u24()?;
        let body = self.reader.take(data_size as usize)?;
        let remaining = self.reader.remaining();
        self.reader.skip(remaining.min(4))?;
        Ok(Some(FlvTag {
            tag_type: TagType::from_u8(type_byte & 0x1f),
            timestamp_ms: (u32::from(ext) << 24) | low,
            body,
        }))
    }
}

/// The FLV file header followed by PreviousTagSize0, i.e. everything that
/// precedes the first [`write_tag`] output.
pub fn write_header(has_audio: bool, has_video: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(13);
    out.put_slice(b"FLV");
    out.put_u8(1);
    out.put_u8(if has_audio { 0x04 } else { 0 } | if has_video { 0x01 } else { 0 });
    out.put_u32(HEADER_LEN);
    out.put_u32(0);
    out.freeze()
}

/// The 11-byte header of a tag whose body is `body_len` bytes, for writers
/// that send the body separately (without copying it); the body is followed
/// by its PreviousTagSize, `11 + body_len` as a big-endian u32.
pub fn tag_header(
    tag_type: TagType,
    timestamp_ms: u32,
    body_len: usize,
) -> Result<[u8; TAG_HEADER_LEN], FlvError> {
    if body_len > MAX_BODY_LEN {
        return Err(FlvError::TagTooLarge(body_len));
    }
    let type_byte = tag_type.as_u8();
    if type_byte > 0x1f {
        return Err(FlvError::BadTagType(type_byte));
    }
    let [ext, t2, t1, t0] = timestamp_ms.to_be_bytes();
    let [_, s2, s1, s0] = (body_len as u32).to_be_bytes();
    Ok([type_byte, s2, s1, s0, t2, t1, t0, ext, 0, 0, 0])
}

/// One tag followed by its PreviousTagSize. Fails if the body is too long for
/// the 24-bit size field or the tag type does not fit 5 bits, rather than
/// writing a file that ffmpeg would misparse.
pub fn write_tag(tag_type: TagType, timestamp_ms: u32, body: &[u8]) -> Result<Bytes, FlvError> {
    let header = tag_header(tag_type, timestamp_ms, body.len())?;
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + body.len() + 4);
    out.put_slice(&header);
    out.put_slice(body);
    out.put_u32((TAG_HEADER_LEN + body.len()) as u32);
    Ok(out.freeze())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_flags() {
        let header = write_header(true, false);
        assert_eq!(&header[..], b"FLV\x01\x04\x00\x00\x00\x09\x00\x00\x00\x00");
        let r = FlvReader::new(header).unwrap();
        assert!(r.has_audio());
        assert!(!r.has_video());
    }

    #[test]
    fn tags_round_trip_including_extended_timestamp() {
        let tags = [
            (TagType::Script, 0, b"\x02\x00\x0aonMetaData".as_slice()),
            (
                TagType::Video,
                40,
                b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65",
            ),
            (TagType::Audio, 0x0123_4567, b"\xaf\x01\xde\x02"),
            (TagType::Other(15), u32::MAX, b""),
        ];
        let mut file = write_header(true, true).to_vec();
        for (tag_type, ts, body) in tags {
            file.extend_from_slice(&write_tag(tag_type, ts, body).unwrap());
        }
        let mut reader = FlvReader::new(Bytes::from(file)).unwrap();
        for (tag_type, ts, body) in tags {
            let tag = reader.next_tag().unwrap().unwrap();
            assert_eq!(tag.tag_type, tag_type);
            assert_eq!(tag.timestamp_ms, ts);
            assert_eq!(&tag.body[..], body);
        }
        assert_eq!(reader.next_tag(), Ok(None));
        assert_eq!(reader.next_tag(), Ok(None));
    }

    #[test]
    fn previous_tag_size_is_tag_header_plus_body() {
        let tag = write_tag(TagType::Video, 0x0a0b0c0d, &[1, 2, 3]).unwrap();
        assert_eq!(
            &tag[..],
            &[9, 0, 0, 3, 0x0b, 0x0c, 0x0d, 0x0a, 0, 0, 0, 1, 2, 3, 0, 0, 0, 14]
        );
    }

    #[test]
    fn writer_rejects_what_flv_cannot_express() {
        assert_eq!(
            write_tag(TagType::Video, 0, &vec![0; MAX_BODY_LEN + 1]),
            Err(FlvError::TagTooLarge(MAX_BODY_LEN + 1))
        );
        assert_eq!(
            write_tag(TagType::Other(0x20), 0, &[]),
            Err(FlvError::BadTagType(0x20))
        );
    }

    #[test]
    fn reader_rejects_bad_headers() {
        let bad = |b: &'static [u8]| FlvReader::new(Bytes::from_static(b)).err();
        assert_eq!(
            bad(b"FLX\x01\x05\0\0\0\x09\0\0\0\0"),
            Some(FlvError::BadSignature)
        );
        assert_eq!(
            bad(b"FLV\x02\x05\0\0\0\x09\0\0\0\0"),
            Some(FlvError::UnsupportedVersion(2))
        );
        assert_eq!(
            bad(b"FLV\x01\x05\0\0\0\x08\0\0\0\0"),
            Some(FlvError::BadDataOffset(8))
        );
        assert!(matches!(bad(b"FLV\x01"), Some(FlvError::Read(_))));
        // A data offset beyond the file is truncation, not a huge allocation.
        assert!(matches!(
            bad(b"FLV\x01\x05\xff\xff\xff\xff\0\0\0\0"),
            Some(FlvError::Read(_))
        ));
    }

    #[test]
    fn reader_reports_truncated_and_encrypted_tags() {
        let mut file = write_header(false, true).to_vec();
        file.extend_from_slice(&write_tag(TagType::Video, 0, &[1, 2, 3, 4]).unwrap());
        // Cut inside the body.
        let cut = Bytes::copy_from_slice(file.get(..file.len() - 6).unwrap());
        let mut r = FlvReader::new(cut).unwrap();
        assert!(matches!(r.next_tag(), Err(FlvError::Read(_))));
        // Missing final PreviousTagSize is tolerated.
        let cut = Bytes::copy_from_slice(file.get(..file.len() - 4).unwrap());
        let mut r = FlvReader::new(cut).unwrap();
        assert_eq!(r.next_tag().unwrap().unwrap().body.len(), 4);
        assert_eq!(r.next_tag(), Ok(None));
        // Filter bit.
        let mut enc = write_header(false, true).to_vec();
        enc.extend_from_slice(&[0x29, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
        let mut r = FlvReader::new(Bytes::from(enc)).unwrap();
        assert_eq!(r.next_tag(), Err(FlvError::EncryptedTag));
    }
}
