//! livecdn edge and shield: a transparent LL-HLS cache in front of origins
//! (or shields), served over HTTP/1.1, HTTP/2 and HTTP/3.
//!
//! Every listener turns its requests into the same call,
//! [`serve::Handler::handle`], so the cache, coalescing and metrics behave
//! identically whatever protocol a viewer speaks.

pub mod auth;
pub mod body;
pub mod cache;
pub mod listen;
pub mod metrics;
pub mod proxy;
pub mod push;
pub mod serve;
pub mod server;
pub mod upstream;
pub mod viewers;

pub use server::{CertInfo, EdgeServer, StartError};
