//! Errors from H.264 configuration and NAL unit parsing.

use crate::bytes_reader::ReadError;

/// Why an AVC decoder configuration or access unit was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AvcError {
    /// A length or count ran past the end of the input.
    #[error("malformed AVC data: {0}")]
    Read(#[from] ReadError),
    /// configurationVersion is not 1, the only version ISO 14496-15 defines.
    #[error("unsupported AVCDecoderConfigurationRecord version {0}")]
    UnsupportedVersion(u8),
    /// The NAL unit length size is not 1, 2 or 4 bytes (lengthSizeMinusOne
    /// of 2 is reserved).
    #[error("invalid NAL unit length size {0} (must be 1, 2 or 4)")]
    InvalidNalLengthSize(u8),
    /// The record lists no SPS, so the picture size cannot be known.
    #[error("AVCDecoderConfigurationRecord has no SPS")]
    MissingSps,
    /// A parameter set in the record has length zero.
    #[error("empty parameter set in AVCDecoderConfigurationRecord")]
    EmptyParameterSet,
    /// The first SPS entry is not an SPS NAL unit (type 7); carries the type.
    #[error("expected an SPS NAL unit (type 7), found type {0}")]
    NotAnSps(u8),
    /// An Annex B access unit without a start code, or parameter sets too
    /// short or long for a decoder configuration record.
    #[error("no H.264 NAL unit framed by a start code")]
    NoStartCode,
    /// h264-reader rejected the SPS; the text is its diagnostic.
    #[error("invalid SPS: {0}")]
    Sps(String),
}
