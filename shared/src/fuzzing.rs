//! Fuzz bodies: each runs one parser of network input on arbitrary bytes and
//! must never panic. The `fuzz/` crate's targets are one line each calling
//! these; the unit tests of each module run them on seeds and mutations, so
//! stable CI exercises the same code nightly fuzzing explores.

pub use crate::aac::fuzz_audio_specific_config;
pub use crate::access_log::cmcd::fuzz_cmcd;
pub use crate::auth::fuzz_credentials;
pub use crate::avc::{fuzz_annex_b, fuzz_decoder_config};
pub use crate::cmaf::fuzz_chunk_splitter;
pub use crate::flv::{fuzz_audio_tag, fuzz_flv_file, fuzz_flv_stream, fuzz_video_tag};
pub use crate::playlist::{fuzz_media_playlist, fuzz_multivariant, fuzz_query};
pub use crate::priority::fuzz_priority;
pub use crate::push::fuzz_push_wire;
pub use crate::route::fuzz_route;
pub use crate::rtmp::fuzz_chunk_guard;
