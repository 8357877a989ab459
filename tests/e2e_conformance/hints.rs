//! Where a client goes next: the preload hint (RFC 8216bis 4.4.5.3, 6.2.6)
//! and the rendition reports for switching (4.4.5.4).

use crate::client::{ensure, resolve_path, Check, Server};
use crate::m3u8::Media;
use crate::support::http::get;

pub async fn preload_hint(s: &Server) -> Check {
    s.each(|r| async move {
        let side = s.side;
        let pl = s.fresh(r).await?;
        let hints: Vec<&str> = pl
            .preload_hints
            .iter()
            .filter(|h| h.get("TYPE") == Some("PART"))
            .filter_map(|h| h.get("URI"))
            .collect();
        ensure!(
            hints.len() == 1,
            "4.4.5.3: {side} {r}: want exactly one EXT-X-PRELOAD-HINT:TYPE=PART with a URI on a \
             live playlist, found {}:\n{}",
            hints.len(),
            pl.tail(6)
        );
        let hint = hints[0];
        let (m, k) = pl.last_part().ok_or(format!("{side} {r}: no parts"))?;
        // Ask for the hinted part before it exists (the server must hold
        // the request and send the part once produced) and, meanwhile,
        // follow the playlist until it lists the part after the last one.
        let hint_url = s.resolve(r, hint);
        let (hinted, next) = tokio::join!(get(&hint_url), listing_after(s, r, &pl, m, k));
        ensure!(
            hinted.status == 200 && !hinted.body.is_empty(),
            "6.2.6: {side} {r}: the preload-hinted part {hint} answered {} with {} bytes",
            hinted.status,
            hinted.body.len()
        );
        let (nm, np, listed) = next?;
        let listed_url = s.resolve(r, &listed);
        ensure!(
            listed_url == hint_url,
            "4.4.5.3: {side} {r}: with last part {m}.{k} the EXT-X-PRELOAD-HINT named {hint}, but \
             the part listed next is {nm}.{np} {}",
            listed
        );
        let body = s.bytes(&listed_url).await?;
        ensure!(
            body == hinted.body,
            "6.2.6: {side} {r}: the preload-hinted {hint} sent {} bytes, the listed part has {} \
             bytes, and they differ",
            hinted.body.len(),
            body.len()
        );
        Ok(())
    })
    .await
}

/// Blocking reloads from `pl` on until a playlist lists a part after
/// `m.k`; returns that part's MSN, index and URI. Each asks for the next part; a server that answers a request
/// past the end of a segment early (rule 6.2.5.2, its own trial) costs a
/// step here, not a failure.
async fn listing_after(
    s: &Server,
    r: &str,
    pl: &Media,
    m: u64,
    k: u64,
) -> Result<(u64, u64, String), String> {
    let mut now = pl.clone();
    for _ in 0..4 {
        if let Some((nm, np, part)) = now.part_after(m, k) {
            return Ok((nm, np, part.uri.clone()));
        }
        let (a, b) = now.next_part();
        now = s
            .playlist(r, &format!("_HLS_msn={a}&_HLS_part={b}"))
            .await?;
    }
    Err(format!(
        "6.2.5.2: {} {r}: four blocking reloads in a row listed no part after {m}.{k}; the last \
         ends:\n{}",
        s.side,
        now.tail(6)
    ))
}

pub async fn rendition_reports(s: &Server) -> Check {
    s.each(|r| async move {
        let others: Vec<&str> = s
            .renditions
            .iter()
            .map(String::as_str)
            .filter(|o| *o != r)
            .collect();
        // Each other rendition just before and just after this one's
        // playlist: a report must lie between the two, give or take one
        // part for the edge's short playlist caching.
        let before = all(s, &others).await?;
        let pl = s.playlist(r, "").await?;
        let after = all(s, &others).await?;
        for ((o, lo), hi) in others.iter().zip(&before).zip(&after) {
            check_report(s, r, &pl, o, lo, hi)?;
        }
        Ok(())
    })
    .await
}

async fn all(s: &Server, renditions: &[&str]) -> Result<Vec<Media>, String> {
    let fetches = renditions.iter().map(|o| s.playlist(o, ""));
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .collect()
}

fn check_report(s: &Server, r: &str, pl: &Media, o: &str, lo: &Media, hi: &Media) -> Check {
    let side = s.side;
    let dir = format!("/live/{}/{r}/", s.stream);
    let target = s.playlist_path(o);
    let reports: Vec<_> = pl
        .rendition_reports
        .iter()
        .filter(|a| a.get("URI").map(|u| resolve_path(&dir, u)).as_deref() == Some(&target))
        .collect();
    let listed: Vec<&str> = pl
        .rendition_reports
        .iter()
        .filter_map(|a| a.get("URI"))
        .collect();
    ensure!(
        reports.len() == 1,
        "4.4.5.4: {side} {r}: want one EXT-X-RENDITION-REPORT for {o}, found {} (reports: {:?})",
        reports.len(),
        listed
    );
    let report = reports[0];
    let msn = report.integer("LAST-MSN").ok_or(format!(
        "4.4.5.4: {side} {r}: report for {o} has no LAST-MSN"
    ))?;
    let part = report.integer("LAST-PART").ok_or(format!(
        "4.4.5.4: {side} {r}: report for {o} has no LAST-PART (REQUIRED with parts)"
    ))?;
    let ids = hi.part_ids();
    let at = |id: Option<(u64, u64)>| id.and_then(|id| ids.iter().position(|x| *x == id));
    let (first, last) = (lo.last_part(), hi.last_part());
    let show = |id: Option<(u64, u64)>| id.map_or("none".into(), |(m, p)| format!("{m}.{p}"));
    let (Some(p), Some(p_lo), Some(p_hi)) = (at(Some((msn, part))), at(first), at(last)) else {
        return Err(format!(
            "4.4.5.4: {side} {r}: report for {o} says LAST-MSN={msn},LAST-PART={part}, which is \
             not among {o}'s listed parts (its last part was {} just before, {} just after)",
            show(first),
            show(last)
        ));
    };
    ensure!(
        p + 1 >= p_lo && p <= p_hi + 1,
        "4.4.5.4: {side} {r}: report for {o} says LAST-MSN={msn},LAST-PART={part}, but {o}'s \
         own playlist had last part {} just before and {} just after ({} parts behind the first)",
        show(first),
        show(last),
        p_lo.saturating_sub(p)
    );
    Ok(())
}
