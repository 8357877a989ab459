//! WebRTC playback (WHEP) for the origin and the edge: the same CMAF
//! chunks LL-HLS viewers get, sent as RTP to browsers with sub-second
//! latency.
//!
//! * [`video`] and [`feed`] turn a rendition's init section and chunks
//!   into Annex B frames on the RTP clock, once per stream.
//! * [`gop`] keeps the frames since the last keyframe, so a viewer who
//!   joins mid-GOP gets a picture at once; [`timeline`] keeps each
//!   viewer's timestamps moving forward across publisher reconnects.
//! * [`session`] is one viewer's str0m `Rtc` (ICE-lite, DTLS-SRTP, NACK
//!   from str0m's send buffer).
//! * [`server`] owns the UDP sockets and every session in one task; a
//!   [`server::MediaSource`] (the origin's packager, an edge's push)
//!   feeds it.
//! * [`whep`] is the HTTP side both servers route `/live/STREAM/whep` to.
//! * [`ingest`] takes a WHIP publisher's H.264 and Opus to an
//!   [`ingest::IngestSink`] (the origin's packager).
//! * [`client`] and [`publisher`] are str0m peers for tests and the
//!   harness: a viewer counting frames, a publisher sending them.
//!
//! * [`abr`] moves a viewer between the ladder's renditions by its
//!   bandwidth estimate (TWCC or REMB).
//! * [`audio`] turns the stream's `opus` rendition (the origin's Opus
//!   made once per stream from the AAC) into Opus RTP payloads.
//!
//! Video is H.264 passed through: no decoding, no re-encoding. A rendition
//! with B-frames is not sent (receivers do not reorder); the source picks
//! a rung of the ladder instead.

pub mod abr;
pub mod audio;
pub mod client;
pub mod feed;
pub mod fuzz;
pub mod gop;
mod handle;
pub mod ingest;
pub mod metrics;
pub mod publisher;
pub mod server;
pub mod session;
mod sink;
mod socket;
pub mod timeline;
pub mod video;
pub mod whep;

pub use abr::Rung;
pub use feed::{Feed, Frame};
pub use server::{FeedSink, MediaSource, RtcServer, ServerError};
pub use whep::{Reply, WhepError};
