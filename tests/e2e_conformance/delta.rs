//! Playlist delta updates (RFC 8216bis 6.2.5.1, 4.4.3.8 CAN-SKIP-UNTIL,
//! 4.4.5.2 EXT-X-SKIP).
//!
//! "The end of the playlist" is read as a client must read it: the end of
//! the last listed media, i.e. every `EXTINF` plus the listed parts of the
//! open segment (this server lists an open segment's completed parts).
//! Segments within CAN-SKIP-UNTIL of that end must not be skipped, so what
//! follows `EXT-X-SKIP` must span at least CAN-SKIP-UNTIL seconds.

use crate::client::{ensure, show, Check, Server};
use crate::m3u8::Media;

/// Consecutive blocking reload versions checked per rendition: the
/// rounding of AAC-quantised durations shows only in some of them.
const VERSIONS: usize = 20;

pub async fn keeps_skip_boundary(s: &Server) -> Check {
    s.each(|r| skip_boundary(s, r)).await
}

async fn skip_boundary(s: &Server, r: &str) -> Check {
    let mut pl = s.playlist(r, "").await?;
    let mut comparable = 0;
    for _ in 0..VERSIONS {
        // The same version twice: a delta update and the full playlist,
        // both blocking on the next part.
        let (msn, part) = pl.next_part();
        let q = format!("_HLS_msn={msn}&_HLS_part={part}");
        let qd = format!("{q}&_HLS_skip=YES");
        let (delta, full) = tokio::join!(s.playlist(r, &qd), s.playlist(r, &q));
        let (delta, full) = (delta?, full?);
        check_delta(s, r, &qd, &delta, &full)?;
        let same_version = delta.last_part() == full.last_part()
            && delta.segs.last().map(|x| x.complete()) == full.segs.last().map(|x| x.complete());
        if same_version {
            comparable += 1;
            check_same_version(s, r, &qd, &delta, &full)?;
        }
        pl = full;
    }
    ensure!(
        comparable > 0,
        "6.2.5.1: {} {r}: in {VERSIONS} tries a delta update and a full playlist asked for \
         the same part never came back as the same version",
        s.side
    );
    Ok(())
}

/// CAN-SKIP-UNTIL >= 6 x TARGETDURATION, EXT-X-SKIP present, and what
/// follows it spans at least CAN-SKIP-UNTIL.
fn check_delta(s: &Server, r: &str, qd: &str, delta: &Media, full: &Media) -> Check {
    let side = s.side;
    let td = full
        .target_duration
        .ok_or(format!("{side} {r}: no TARGETDURATION"))?;
    let until = full.control("CAN-SKIP-UNTIL").ok_or(format!(
        "4.4.3.8: {side} {r}: _HLS_skip answered but the full playlist has no CAN-SKIP-UNTIL"
    ))?;
    ensure!(
        until >= 6.0 * td as f64 - 1e-6,
        "4.4.3.8: {side} {r}: CAN-SKIP-UNTIL={until} is less than six target durations (6 x {td})"
    );
    let skipped = delta.skipped.ok_or(format!(
        "6.2.5.1: {side} {r}: {} has no EXT-X-SKIP:\n{}",
        show(qd),
        delta.tail(12)
    ))?;
    if skipped == 0 {
        return Ok(());
    }
    let kept = delta.listed_duration();
    // Each decimal is rendered to some precision; allow half a unit in the
    // fifth decimal per summed value, no more.
    let summed = delta
        .segs
        .iter()
        .map(|x| if x.complete() { 1 } else { x.parts.len() })
        .sum::<usize>();
    let tolerance = 5e-6 * summed as f64 + 1e-9;
    let durations: Vec<String> = delta
        .segs
        .iter()
        .map(|x| match x.extinf {
            Some(d) => format!("{d}"),
            None => format!("open:{:.5}", x.listed_duration()),
        })
        .collect();
    ensure!(
        kept >= until - tolerance,
        "6.2.5.1: {side} {r}: {} skipped {skipped} segments but kept only {kept:.5} s after \
         EXT-X-SKIP (segments {}), less than CAN-SKIP-UNTIL={until}: a segment within the skip \
         boundary of the end of the playlist was skipped",
        show(qd),
        durations.join(" + ")
    );
    Ok(())
}

/// A delta update and a full playlist of the same version agree: the same
/// EXT-X-MEDIA-SEQUENCE, SKIPPED-SEGMENTS plus the listed segments make up
/// the full playlist's segments, and the listed ones are the same.
fn check_same_version(s: &Server, r: &str, qd: &str, delta: &Media, full: &Media) -> Check {
    let side = s.side;
    let skipped = delta.skipped.unwrap_or(0);
    ensure!(
        delta.media_sequence == full.media_sequence
            && skipped as usize + delta.segs.len() == full.segs.len(),
        "6.2.5.1: {side} {r}: {} (MEDIA-SEQUENCE {:?}, SKIPPED-SEGMENTS={skipped}, {} listed) \
         does not add up to the full playlist of the same version (MEDIA-SEQUENCE {:?}, {} \
         segments)",
        show(qd),
        delta.media_sequence,
        delta.segs.len(),
        full.media_sequence,
        full.segs.len()
    );
    for (d, f) in delta.segs.iter().zip(&full.segs[skipped as usize..]) {
        ensure!(
            d.uri == f.uri && d.extinf == f.extinf && d.parts.len() == f.parts.len(),
            "6.2.5.1: {side} {r}: segment {} differs between {} ({:?} {:?}, {} parts) and the \
             full playlist ({:?} {:?}, {} parts)",
            d.msn,
            show(qd),
            d.uri,
            d.extinf,
            d.parts.len(),
            f.uri,
            f.extinf,
            f.parts.len()
        );
    }
    Ok(())
}
