//! livecdn-shared: the media model, network-input parsers, the CMAF muxer, the
//! LL-HLS playlist model and the config schema.
//!
//! Nothing here does I/O (the one exception: `quic` sets options on a socket
//! its caller bound): no tokio, no clocks read. Every function
//! takes its input (bytes, times) as arguments so the origin, the edge and the
//! load-test harness can share it, and so unit tests and fuzzers drive it
//! directly.

pub mod aac;
pub mod access_log;
pub mod admin;
pub mod auth;
pub mod avc;
pub mod bytes_reader;
pub mod chat;
pub mod cmaf;
pub mod config;
pub mod cors;
pub mod dash;
pub mod exposition;
pub mod flv;
pub mod fuzzing;
pub mod idle;
pub mod limit;
pub mod media;
pub mod playlist;
pub mod priority;
pub mod push;
pub mod quic;
pub mod route;
pub mod rtmp;
pub mod tls;
