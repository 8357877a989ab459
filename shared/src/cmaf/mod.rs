//! The CMAF (fragmented MP4) muxer behind LL-HLS.
//!
//! Two pure functions produce everything a viewer downloads besides the
//! playlists:
//!
//! * [`init_segment`] — the `EXT-X-MAP` header (`ftyp` + `moov`) for one
//!   track, from codec configuration records.
//! * [`fragment_header`] / [`chunk`] — a `moof` + `mdat` header for a run of
//!   samples. Payloads are never copied: they follow the header as the same
//!   `Bytes` the ingest produced, so a part is a list of reference-counted
//!   buffers.
//!
//! No I/O, no clock, no state: the packager decides sequence numbers and
//! decode times and passes them in, so identical input gives identical bytes
//! on every origin. Every box is written through [`BoxWriter`], which
//! back-patches box sizes, and the tests check the output with an independent
//! parser (`mp4-atom`) and, when installed, `ffprobe`.
//!
//! ```
//! use bytes::Bytes;
//! use livecdn_shared::cmaf::{chunk, init_segment, AudioInit, Sample, TrackInit};
//!
//! let init = init_segment(&TrackInit::Audio(AudioInit {
//!     timescale: 48_000,
//!     sample_rate: 48_000,
//!     channels: 2,
//!     asc: Bytes::from_static(&[0x11, 0x90]),
//! }));
//! let frame = Bytes::from_static(&[0x21, 0x10, 0x04]);
//! let sample = Sample { duration: 1024, size: 3, cts_offset: 0, sync: true };
//! let part = chunk(1, 0, &[sample], &[frame.clone()]).expect("sizes match");
//! assert_eq!(part.len(), 2);
//! assert_eq!(part[1].as_ptr(), frame.as_ptr()); // the payload was not copied
//! # let _ = init;
//! ```

mod boxes;
mod fragment;
mod init;
mod sample_entry;
mod scan;
mod split;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ffprobe;

pub use boxes::BoxWriter;
pub use fragment::{chunk, fragment_header, FragmentError, Sample, MAX_SAMPLES_PER_FRAGMENT};
pub use init::{init_segment, AudioInit, OpusInit, TrackInit, VideoInit, OPUS_TIMESCALE, TRACK_ID};
pub use scan::{scan, SampleRef, ScanError, Scanned};
pub use split::{fuzz_chunk_splitter, ChunkSplitter, SplitError};
