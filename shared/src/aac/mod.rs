//! AAC as it arrives over RTMP: the AudioSpecificConfig from the FLV sequence
//! header, which gives the packager its sample rate (the track timescale),
//! channel count and codec string.
//!
//! * [`AudioSpecificConfig::parse`] reads the bit-packed header (ISO 14496-3
//!   §1.6.2.1), including escaped object types and explicit sample rates.
//! * [`audio_config`] turns it into [`crate::media::AudioConfig`].
//! * [`fuzz_audio_specific_config`] is the fuzz body (STYLE.md rule 4).

mod audio_specific_config;
mod error;
mod fuzz;

pub use audio_specific_config::{audio_config, AudioSpecificConfig};
pub use error::AacError;
pub use fuzz::fuzz_audio_specific_config;
