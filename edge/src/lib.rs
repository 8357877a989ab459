//! livecdn edge and shield: a transparent LL-HLS cache in front of origins
//! (or shields), served over HTTP/1.1, HTTP/2 and HTTP/3.
//!
//! Every listener turns its requests into the same call,
//! [`serve::Handler::handle`], so the cache, coalescing and metrics behave
//! identically whatever protocol a viewer speaks. Behind it a thin
//! [`router`] hands each request to one service ([`playback`], [`admin`],
//! [`webrtc`], [`chat`]),
//! which share the handles in [`state::Edge`]; push feeds the cache and the
//! timing table from below ([`push`]).

pub mod access;
pub mod admin;
pub mod body;
pub mod cache;
pub mod chat;
pub mod cluster;
pub mod error;
pub mod listen;
pub mod live;
pub mod metrics;
pub mod playback;
pub mod push;
pub mod router;
pub mod serve;
pub mod server;
pub mod state;
pub mod streams;
pub mod upstream;
pub mod viewers;
pub mod webrtc;

pub use server::{CertInfo, EdgeServer, StartError};
