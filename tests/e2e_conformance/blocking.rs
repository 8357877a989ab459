//! Blocking playlist reload (RFC 8216bis 6.2.5.2): a request with
//! `_HLS_msn=M&_HLS_part=P` is held until the playlist contains part P of
//! segment M; a part index past the last part of a complete segment means
//! part 0 of the next segment.

use crate::client::{ensure, show, Check, Server};
use crate::m3u8::Media;
use std::time::{Duration, Instant};

/// The two boundaries each rendition must be caught at.
const BOUNDARIES: usize = 2;

pub async fn part_past_last_part(s: &Server) -> Check {
    s.each(|r| past_last_part(s, r)).await
}

/// How the boundary is caught without racing it: the loop plays like a
/// low-latency client, blocking on the part after the last one listed.
/// Every blocking answer is published the moment its part completes, so
/// the answer that completes segment N (it lists N with `EXTINF` and its
/// last part L, and nothing of N+1) arrives at the start of the window in
/// which N+1.0 is still being produced (about a part duration). Right
/// then the loop asks for `N / L+1`, plain and as a delta update: a
/// conforming server holds both until N+1.0 is listed, while one that
/// reads "segment N is complete" as enough answers at once with the very
/// playlist we already have. A server that never publishes that state
/// (it lists N+1.0 together with the end of N) still gets the request
/// whenever a step's answer shows it asked past the end of a segment.
/// Either way the trial counts the requests whose answer shows segment N
/// complete with fewer parts than asked for, and needs [`BOUNDARIES`] of
/// them per rendition; every answer is checked.
async fn past_last_part(s: &Server, r: &str) -> Check {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pl = s.playlist(r, "").await?;
    let mut exercised = 0;
    while exercised < BOUNDARIES {
        ensure!(
            Instant::now() < deadline,
            "6.2.5.2: {} {r}: caught only {exercised} of {BOUNDARIES} segment boundaries in 20 s; \
             last playlist ends:\n{}",
            s.side,
            pl.tail(8)
        );
        let (msn, part) = match (pl.segs.last(), pl.last_part()) {
            (Some(last), Some((n, l))) if last.complete() && last.msn == n => (n, l + 1),
            _ => pl.next_part(),
        };
        let q = format!("_HLS_msn={msn}&_HLS_part={part}");
        let qd = format!("{q}&_HLS_skip=YES");
        let (full, delta) = tokio::join!(s.timed(r, &q), s.timed(r, &qd));
        let (full, took) = full?;
        let (delta, took_delta) = delta?;
        check_reaches(s, r, &q, &full, took, msn, part)?;
        check_reaches(s, r, &qd, &delta, took_delta, msn, part)?;
        if full
            .seg(msn)
            .is_some_and(|n| n.complete() && n.parts.len() as u64 <= part)
        {
            exercised += 1;
        }
        pl = full;
    }
    Ok(())
}

/// `answer` (to `query`, after `took`) must contain part `msn.part` in the
/// sense of 6.2.5.2.
fn check_reaches(
    s: &Server,
    r: &str,
    query: &str,
    answer: &Media,
    took: Duration,
    msn: u64,
    part: u64,
) -> Check {
    if answer.reaches(msn, part) {
        return Ok(());
    }
    let seg = answer.seg(msn);
    let why = match seg {
        Some(n) if n.complete() => format!(
            "segment {msn} is complete with last part {}, so part {part} means part {}.0, \
             which must be listed before the server answers",
            n.parts.len().saturating_sub(1),
            msn + 1
        ),
        _ => format!("part {msn}.{part} must be listed before the server answers"),
    };
    Err(format!(
        "6.2.5.2: {} {r}: {} was answered after {took:?} with a playlist whose {}: {why}; it ends:\n{}",
        s.side,
        show(query),
        answer.describe_end(),
        answer.tail(8)
    ))
}

pub async fn holds_until_part_exists(s: &Server) -> Check {
    s.each(|r| holds(s, r)).await
}

/// Six blocking reloads in a row, each for the part after the last one
/// listed (as a player makes them): every answer lists that part (or has
/// moved past its segment), and the part it lists can be fetched.
async fn holds(s: &Server, r: &str) -> Check {
    let mut pl = s.playlist(r, "").await?;
    for _ in 0..6 {
        let (msn, part) = pl.next_part();
        let q = format!("_HLS_msn={msn}&_HLS_part={part}");
        let (answer, took) = s.timed(r, &q).await?;
        check_reaches(s, r, &q, &answer, took, msn, part)?;
        let listed = answer.seg(msn).and_then(|n| n.parts.get(part as usize));
        if let Some(p) = listed {
            let url = s.resolve(r, &p.uri);
            let body = s.bytes(&url).await.map_err(|e| {
                format!(
                    "6.2.5.2: {} {r}: part {msn}.{part} listed by {} but {e}",
                    s.side,
                    show(&q)
                )
            })?;
            ensure!(
                !body.is_empty(),
                "6.2.5.2: {} {r}: part {msn}.{part} ({url}) listed but empty",
                s.side
            );
        }
        pl = answer;
    }
    Ok(())
}
