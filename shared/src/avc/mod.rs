//! H.264 (AVC) as it arrives over RTMP: the AVCDecoderConfigurationRecord
//! from the FLV sequence header, and access units of length-prefixed (AVCC)
//! NAL units.
//!
//! * [`AvcDecoderConfig::parse`] splits the record into SPS/PPS and the NAL
//!   length size that every later frame depends on.
//! * [`video_config`] additionally decodes the first SPS (with `h264-reader`)
//!   for the picture size after cropping and the frame rate, producing the
//!   [`crate::media::VideoConfig`] the packager writes into `avcC`.
//! * [`nal_units`] / [`contains_idr`] walk an access unit without copying, so
//!   the origin can confirm a keyframe really starts with an IDR before
//!   cutting a segment there.
//! * [`fuzz_decoder_config`] is the fuzz body (STYLE.md rule 4).

mod decoder_config;
mod error;
mod fuzz;
mod nal;

pub use decoder_config::{video_config, AvcDecoderConfig};
pub use error::AvcError;
pub use fuzz::fuzz_decoder_config;
pub use nal::{contains_idr, nal_units, NalUnits};
