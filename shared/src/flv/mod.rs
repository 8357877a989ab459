//! FLV: the container RTMP carries (one FLV tag body per RTMP audio/video
//! message) and the file format of the bundled demo clip.
//!
//! * [`parse_video_tag`] / [`parse_audio_tag`] turn one tag body into a typed
//!   event: a codec sequence header (decoder config) or coded frames. Payloads
//!   stay zero-copy slices of the input [`bytes::Bytes`].
//! * [`FlvReader`] walks an `.flv` file tag by tag; [`write_header`] and
//!   [`write_tag`] produce one, for feeding ffmpeg through a pipe and for the
//!   load-test publisher.
//! * [`FlvStreamReader`] reads FLV arriving in pieces (an encoder's output
//!   pipe); [`avc_sequence_header_body`] and [`avc_frame_header`] write the
//!   tag bodies an encoder reads.
//! * [`video_frame`] / [`audio_frame`] map parsed tags onto
//!   [`crate::media::Frame`].
//! * `fuzz_*` are the fuzz bodies (STYLE.md rule 4): the nightly fuzz targets
//!   call them, and unit tests here run them on stable.
//!
//! Only H.264 and AAC are supported; every other codec, including Enhanced
//! RTMP FourCC codecs (HEVC, AV1, VP9, Opus), is reported as `Unsupported`
//! with a readable name rather than as an error, so the ingest layer can
//! reject the stream with a clear message.

mod demux;
mod error;
mod file;
mod fuzz;
mod mux;
mod stream;
mod tag;

pub use demux::{audio_frame, video_frame};
pub use error::FlvError;
pub use file::{tag_header, write_header, write_tag, FlvReader, FlvTag, TagType};
pub use fuzz::{fuzz_audio_tag, fuzz_flv_file, fuzz_flv_stream, fuzz_video_tag};
pub use mux::{avc_frame_header, avc_sequence_header_body};
pub use stream::FlvStreamReader;
pub use tag::{parse_audio_tag, parse_video_tag, AudioTag, VideoTag};
