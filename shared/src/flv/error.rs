//! Errors from FLV parsing and writing.

use crate::bytes_reader::ReadError;

/// Why an FLV tag body or file could not be parsed (or written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlvError {
    /// A field ran past the end of the input, or a structure was malformed at
    /// the byte level.
    #[error("malformed FLV: {0}")]
    Read(#[from] ReadError),
    /// A tag body had no bytes at all, so not even the codec byte is present.
    #[error("empty FLV tag body")]
    EmptyBody,
    /// The AVCPacketType byte was not 0 (sequence header), 1 (NALUs) or 2
    /// (end of sequence).
    #[error("unknown AVCPacketType {0}")]
    UnknownAvcPacketType(u8),
    /// The AACPacketType byte was not 0 (sequence header) or 1 (raw).
    #[error("unknown AACPacketType {0}")]
    UnknownAacPacketType(u8),
    /// The file does not start with the `FLV` signature.
    #[error("not an FLV file (bad signature)")]
    BadSignature,
    /// The FLV header version is not 1, the only version defined.
    #[error("unsupported FLV version {0}")]
    UnsupportedVersion(u8),
    /// The header's data offset is smaller than the 9-byte header itself.
    #[error("FLV header data offset {0} is below 9")]
    BadDataOffset(u32),
    /// The tag has the filter (encryption) bit set; we cannot decode it.
    #[error("encrypted FLV tag (filter bit set)")]
    EncryptedTag,
    /// A tag body to write is longer than the 24-bit DataSize can express.
    #[error("FLV tag body of {0} bytes exceeds the 16 MiB limit")]
    TagTooLarge(usize),
    /// A tag type to write does not fit the 5-bit TagType field.
    #[error("FLV tag type {0} does not fit in 5 bits")]
    BadTagType(u8),
}
