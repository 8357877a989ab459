//! RTMP and RTMPS ingest: the accept loops, one task per connection, and the publish
//! checks. The RTMP protocol itself is rml_rtmp's sans-IO `ServerSession`;
//! this module moves bytes between it and the socket and turns its events
//! into packager input.

pub mod auth;
mod fuzz;
mod listener;
mod session;

pub(crate) use session::{begin, NEXT_SESSION};

pub use fuzz::fuzz_rtmp_session;
pub use listener::{serve, Ingress};
