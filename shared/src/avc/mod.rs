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
//! * [`split_access_unit`] / [`decoder_config_record`] turn the Annex B
//!   access units WebRTC (WHIP) brings into the same.
//! * [`fuzz_decoder_config`] and [`fuzz_annex_b`] are the fuzz bodies
//!   (STYLE.md rule 4).

mod annexb;
mod decoder_config;
mod error;
mod fuzz;
mod nal;

pub use annexb::{annex_b_units, decoder_config_record, fuzz_annex_b, split_access_unit, AnnexB};
pub use decoder_config::{video_config, AvcDecoderConfig};
pub use error::AvcError;
pub use fuzz::fuzz_decoder_config;
pub use nal::{contains_idr, nal_units, NalUnits};
