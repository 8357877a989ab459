//! RTMP input hardening (the RTMP session itself is rml_rtmp's).

pub mod amf0;
mod guard;

pub use guard::{fuzz_chunk_guard, ChunkGuard, GuardError, MAX_PRE_AUTH};
