//! Errors from AAC configuration parsing.

use crate::bytes_reader::ReadError;

/// Why an AudioSpecificConfig was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AacError {
    /// The config ended inside a field.
    #[error("malformed AudioSpecificConfig: {0}")]
    Read(#[from] ReadError),
    /// audioObjectType 0 is "null"; nothing can be decoded.
    #[error("audio object type 0 (null)")]
    NullObjectType,
    /// samplingFrequencyIndex 13 or 14 is reserved.
    #[error("reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    /// An explicit sampling frequency of 0 Hz.
    #[error("sampling frequency of 0 Hz")]
    ZeroSampleRate,
    /// channelConfiguration 0 (layout in a program config element, which we do
    /// not parse) or a reserved value.
    #[error("unsupported channel configuration {0}")]
    UnsupportedChannelConfig(u8),
}
