//! DVR: a live media playlist reaching back into the stream's recording.
//!
//! The packager keeps a few segments in memory; the recorder has written
//! every segment since the recording began, under the same media sequence
//! numbers. [`extend`] puts the recorded segments older than the memory
//! window (and within `dvr_window`) in front of the live playlist, so a
//! player can seek back; the origin serves those segments from disk under
//! their live URLs (`/live/STREAM/RENDITION/MSN.m4s`).
//!
//! The rules it keeps:
//! * Only an unbroken run: walking back from the first live segment, the
//!   recorded MSNs must be consecutive; a gap (segments the recorder
//!   missed) ends the window there.
//! * `EXT-X-DISCONTINUITY-SEQUENCE` names the first listed segment, so it
//!   goes down by every discontinuity between that segment and the first
//!   live one (whose number the packager's playlist fixes).
//! * `EXT-X-MAP` before the first listed segment and wherever the init
//!   generation changes, and again before the first live segment.
//! * Delta updates (`_HLS_skip`): with hours listed, a reload must not
//!   cost hours of text. The skip boundary is counted over the whole
//!   list in the playlist's own 10 µs units (what a client sums from the
//!   EXTINFs it is sent), and the first segment after it carries its
//!   `EXT-X-MAP`.
//!
//! Pure: the caller renders the live playlist (without skip) and hands in
//! the recording's rendition index.

use super::index::RenditionIndex;
use super::journal::{init_file, segment_file, SegmentEntry};
use livecdn_shared::playlist::{MediaPlaylist, Segment, Skip, SkipRequest};
use std::time::{Duration, UNIX_EPOCH};

/// 10 µs units per second: what a playlist's five decimals can say.
const UNITS: f64 = 100_000.0;

/// A duration as the playlist writes it, in 10 µs units.
fn units(secs: f64) -> u64 {
    (secs * UNITS).round().max(0.0) as u64
}

/// Puts the recorded segments of `recorded` before `live` (a live media
/// playlist rendered without skip), at most `window` of them by
/// PROGRAM-DATE-TIME from the live edge; then applies `skip` to the whole.
/// Returns how many recorded segments were put in front.
///
/// A delta update builds only what it sends: the skip boundary is found
/// from the durations first, so a reload of a two-hour window costs a
/// walk over numbers, not thousands of lines rendered and dropped.
pub fn extend(
    live: &mut MediaPlaylist,
    recorded: &RenditionIndex,
    window: Duration,
    skip: Option<SkipRequest>,
) -> usize {
    let first_live = live.media_sequence;
    let ts = f64::from(recorded.meta.timescale.max(1));
    let newest_pdt_ms = live
        .segments
        .last()
        .and_then(|s| s.program_date_time)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    let oldest_ms = newest_pdt_ms.saturating_sub(window.as_millis() as u64);
    // Walk back from the first live MSN while the run is unbroken.
    let mut run = Vec::new();
    let mut want = first_live;
    for s in recorded.segments.iter().rev() {
        if s.msn >= want {
            continue;
        }
        if s.msn + 1 != want || s.pdt_ms < oldest_ms {
            break;
        }
        run.push(s);
        want = s.msn;
    }
    run.reverse();
    let added = run.len();
    let listed = |ticks: u64| units(ticks as f64 / ts);
    if added > 0 {
        // The live playlist's first segment keeps its number: each
        // discontinuity after the new first segment comes off.
        let live_first_tag = live.segments.first().is_some_and(|s| s.discontinuity);
        let between = run.iter().skip(1).filter(|s| s.discontinuity).count() as u64
            + u64::from(live_first_tag);
        live.discontinuity_sequence = live.discontinuity_sequence.saturating_sub(between);
        live.media_sequence = run[0].msn;
    }
    let Some(kind) = skip else {
        prepend(live, &run, 0, &listed);
        return added;
    };
    let Some(until) = live
        .server_control
        .as_ref()
        .and_then(|c| c.can_skip_until)
        .map(units)
    else {
        prepend(live, &run, 0, &listed);
        return added;
    };
    // RFC 8216bis 6.2.5.1: skip the leading complete segments that end at
    // least CAN-SKIP-UNTIL before the end of the playlist.
    let live_units: Vec<(u64, bool)> = live
        .segments
        .iter()
        .map(|s| match s.is_complete() {
            true => (units(s.duration), true),
            false => (s.parts.iter().map(|p| units(p.duration)).sum(), false),
        })
        .collect();
    let end: u64 = run.iter().map(|s| listed(s.duration)).sum::<u64>()
        + live_units.iter().map(|(u, _)| u).sum::<u64>();
    let lengths = run
        .iter()
        .map(|s| (listed(s.duration), true))
        .chain(live_units.iter().copied());
    let mut at = 0;
    let mut skipped = 0;
    for (u, complete) in lengths {
        at += u;
        if !complete || end - at < until {
            break;
        }
        skipped += 1;
    }
    let from_run = skipped.min(run.len());
    let from_live = skipped - from_run;
    // The EXT-X-MAP in force where the list now starts, if that is a
    // live segment without one of its own.
    let map = live.segments[..from_live]
        .iter()
        .rev()
        .find_map(|s| s.map_uri.clone())
        .or_else(|| run.last().map(|s| init_file(s.gen)));
    live.segments.drain(..from_live);
    prepend(live, &run, from_run, &listed);
    if let Some(first) = live.segments.first_mut() {
        if first.map_uri.is_none() {
            first.map_uri = map;
        }
    }
    live.version = live.version.max(9);
    live.skip = Some(Skip {
        skipped_segments: skipped as u64,
        recently_removed_dateranges: matches!(kind, SkipRequest::V2).then(Vec::new),
    });
    added
}

/// Puts `run[from..]` in front of `pl`'s segments, each with its
/// `EXT-X-MAP` where the init generation changes (and on the first).
fn prepend(
    pl: &mut MediaPlaylist,
    run: &[&SegmentEntry],
    from: usize,
    listed: &dyn Fn(u64) -> u64,
) {
    let Some(rest) = run.get(from..).filter(|r| !r.is_empty()) else {
        return;
    };
    let mut gen = None;
    let mut front: Vec<Segment> = Vec::with_capacity(rest.len() + pl.segments.len());
    for (i, s) in rest.iter().enumerate() {
        let map_uri = (gen != Some(s.gen)).then(|| init_file(s.gen));
        gen = Some(s.gen);
        front.push(Segment {
            duration: listed(s.duration) as f64 / UNITS,
            uri: Some(segment_file(s.msn)),
            // The first segment of the whole list has its tag in the
            // sequence number.
            discontinuity: (from > 0 || i > 0) && s.discontinuity,
            program_date_time: Some(UNIX_EPOCH + Duration::from_millis(s.pdt_ms)),
            map_uri,
            parts: Vec::new(),
            gap: false,
        });
    }
    front.append(&mut pl.segments);
    pl.segments = front;
}
