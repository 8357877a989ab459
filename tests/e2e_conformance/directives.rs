//! Delivery directives the server must refuse, or answer at once
//! (RFC 8216bis 6.2.5.2; DESIGN section 3 for an MSN older than the window).

use crate::client::{ensure, show, Check, Server};
use std::time::{Duration, Instant};

/// "Immediately", with room for a loaded two-core machine.
const AT_ONCE: Duration = Duration::from_secs(1);

/// A request that must be answered 400 within [`AT_ONCE`].
async fn expect_400(s: &Server, r: &str, q: &str, rule: &str, context: &str) -> Check {
    let a = s.request(r, q).await;
    ensure!(
        a.status == 400 && a.elapsed < AT_ONCE,
        "6.2.5.2: {} {r}: {} ({context}) {rule}: want 400 within {AT_ONCE:?}, got {} after {:?}: {}",
        s.side,
        show(q),
        a.status,
        a.elapsed,
        first_lines(&a.text, 6)
    );
    Ok(())
}

fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().take(n).collect();
    lines.join(" | ")
}

pub async fn far_future_msn(s: &Server) -> Check {
    s.each(|r| async move {
        // Just after a new version, so the playlist cannot move on by a
        // whole segment before the request lands. Counted from the last
        // listed segment (the open one), +3 is more than two segments past
        // the last segment however "last" is read.
        let pl = s.fresh(r).await?;
        let last = pl
            .last_msn()
            .ok_or(format!("{} {r}: no segments", s.side))?;
        let msn = last + 3;
        let context = format!("last listed segment is {last}");
        let rule = "_HLS_msn more than two segments past the last one SHOULD get 400 at once";
        expect_400(s, r, &format!("_HLS_msn={msn}"), rule, &context).await?;
        expect_400(s, r, &format!("_HLS_msn={msn}&_HLS_part=0"), rule, &context).await
    })
    .await
}

pub async fn advance_part_limit(s: &Server) -> Check {
    s.each(|r| async move {
        // Wait for a segment to begin (its part 0 to be listed), so that
        // segment stays open for most of a target duration: the request
        // lands well before it can end.
        let pl = s.playlist(r, "").await?;
        let next = match pl.next_part() {
            (m, 0) => m,
            (m, _) => m + 1,
        };
        let pl = s
            .playlist(r, &format!("_HLS_msn={next}&_HLS_part=0"))
            .await?;
        let (msn, last) = pl.last_part().ok_or(format!("{} {r}: no parts", s.side))?;
        let target = pl
            .part_target()
            .ok_or(format!("{} {r}: no PART-TARGET", s.side))?;
        // The Advance Part Limit: 3 / PART-TARGET below one second, else 3.
        let limit = if target < 1.0 { 3.0 / target } else { 3.0 };
        // Past the limit even if one more part completes meanwhile.
        let part = last + limit.ceil() as u64 + 2;
        let context =
            format!("last part {msn}.{last}, PART-TARGET {target}, Advance Part Limit {limit:.2}");
        let rule =
            "an _HLS_part more than the Advance Part Limit past the last part SHOULD get 400";
        expect_400(
            s,
            r,
            &format!("_HLS_msn={msn}&_HLS_part={part}"),
            rule,
            &context,
        )
        .await
    })
    .await
}

pub async fn part_without_msn(s: &Server) -> Check {
    s.each(|r| async move {
        let rule = "_HLS_part without _HLS_msn MUST get 400";
        for q in ["_HLS_part=0", "_HLS_part=1", "_HLS_part=1&_HLS_skip=YES"] {
            expect_400(s, r, q, rule, "no _HLS_msn").await?;
        }
        Ok(())
    })
    .await
}

pub async fn old_msn(s: &Server) -> Check {
    s.each(|r| async move {
        // The window must have slid first: wait (bounded) for a playlist
        // whose first segment is not segment 0.
        let deadline = Instant::now() + Duration::from_secs(60);
        let pl = loop {
            let pl = s.playlist(r, "").await?;
            if pl.media_sequence.unwrap_or(0) > 0 {
                break pl;
            }
            ensure!(
                Instant::now() < deadline,
                "{} {r}: the window never slid in 60 s (EXT-X-MEDIA-SEQUENCE stays 0)",
                s.side
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let gone = pl.media_sequence.unwrap_or(0) - 1;
        let before = pl.last_part().unwrap_or((0, 0));
        for q in [
            format!("_HLS_msn={gone}"),
            format!("_HLS_msn={gone}&_HLS_part=0"),
        ] {
            let a = s.request(r, &q).await;
            let rule =
                "DESIGN 3: an _HLS_msn older than the window gets the whole current playlist";
            ensure!(
                a.status == 200 && a.elapsed < AT_ONCE,
                "{} {r}: {} (EXT-X-MEDIA-SEQUENCE is {}): {rule}: want 200 within {AT_ONCE:?}, \
                 got {} after {:?}: {}",
                s.side,
                show(&q),
                gone + 1,
                a.status,
                a.elapsed,
                first_lines(&a.text, 6)
            );
            let answer = crate::m3u8::Media::parse(&a.text)
                .map_err(|e| format!("{} {r}: {}: {e}", s.side, show(&q)))?;
            let now = answer.last_part().unwrap_or((0, 0));
            ensure!(
                answer.skipped.is_none()
                    && now >= before
                    && answer.media_sequence >= pl.media_sequence,
                "{} {r}: {} {rule}: answer is a delta or older than the plain playlist fetched \
                 before it (last part {before:?}, MEDIA-SEQUENCE {:?}); answer has last part \
                 {now:?}, MEDIA-SEQUENCE {:?}, skip {:?}",
                s.side,
                show(&q),
                pl.media_sequence,
                answer.media_sequence,
                answer.skipped
            );
        }
        Ok(())
    })
    .await
}
