//! LL-DASH over the same CMAF the LL-HLS playlists name: an MPD model
//! ([`Mpd`]) rendered as XML, one `SegmentTemplate` with a
//! `SegmentTimeline` per Representation, `$Number$` equal to the HLS media
//! sequence number, so `RENDITION/N.m4s` is one object for both formats and
//! an edge caches it once.
//!
//! Low latency (DASH-IF IOP, low-latency modes): `availabilityTimeOffset`
//! and `availabilityTimeComplete="false"` let a client request a segment
//! as soon as it starts and receive it chunk by chunk while it is produced
//! (the origin streams an open segment as it does a hinted part);
//! `ServiceDescription` carries the latency target and the playback rates
//! a client may use to hold it; `UTCTiming` points at the server's clock.
//!
//! Nothing here does I/O; the origin's packager fills the model.

mod mpd;

pub use mpd::{
    AdaptationSet, ContentType, Mpd, Period, Representation, SegmentTemplate, TimelineEntry,
    XsDuration, PROFILES,
};

/// A wall-clock time as the MPD and `/time` write it: ISO 8601 UTC with
/// milliseconds (`2026-12-05T08:00:00.000Z`).
pub fn format_time(t: std::time::SystemTime) -> String {
    crate::playlist::date::format_rfc3339_millis(t)
}

#[cfg(test)]
mod tests;
