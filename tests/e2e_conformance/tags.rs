//! Media playlist tags (RFC 8216bis 4.4): durations against their targets,
//! hold-backs, the tags a low-latency playlist needs, and where parts are
//! listed.

use crate::client::{ensure, show, Check, Server};
use crate::m3u8::Media;

/// Slack for a duration compared with a target both written as decimals.
const EPSILON: f64 = 1e-6;

pub async fn parts_within_part_target(s: &Server) -> Check {
    s.each(|r| async move {
        // Two versions a segment or two apart: between them every part of
        // about five segments is seen.
        let first = s.playlist(r, "").await?;
        // The segment after the open one (at most two past the last
        // complete one, so the request is not refused).
        let later = first.next_part().0 + 1;
        let second = s.playlist(r, &format!("_HLS_msn={later}")).await?;
        for pl in [&first, &second] {
            durations_within_targets(s, r, pl)?;
        }
        Ok(())
    })
    .await
}

/// 4.4.4.9: every EXT-X-PART DURATION <= PART-TARGET; 4.4.3.1: every
/// EXTINF, rounded to the nearest integer, <= TARGETDURATION.
fn durations_within_targets(s: &Server, r: &str, pl: &Media) -> Check {
    let side = s.side;
    let target = pl.part_target().ok_or(format!(
        "4.4.3.7: {side} {r}: no EXT-X-PART-INF:PART-TARGET"
    ))?;
    let td = pl
        .target_duration
        .ok_or(format!("4.4.3.1: {side} {r}: no TARGETDURATION"))?;
    let long_parts: Vec<String> = pl
        .segs
        .iter()
        .flat_map(|x| x.parts.iter().map(move |p| (x.msn, p)))
        .filter(|(_, p)| p.duration > target + EPSILON)
        .map(|(msn, p)| format!("{} ({msn}) DURATION={}", p.uri, p.duration))
        .collect();
    ensure!(
        long_parts.is_empty(),
        "4.4.4.9: {side} {r}: {} of the listed parts last longer than PART-TARGET={target}: {}",
        long_parts.len(),
        long_parts
            .iter()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let long_segments: Vec<String> = pl
        .segs
        .iter()
        .filter_map(|x| Some((x.msn, x.extinf?)))
        .filter(|(_, d)| d.round() > td as f64)
        .map(|(msn, d)| format!("{msn}: EXTINF:{d}"))
        .collect();
    ensure!(
        long_segments.is_empty(),
        "4.4.3.1: {side} {r}: EXTINF rounded to an integer exceeds TARGETDURATION={td}: {}",
        long_segments.join(", ")
    );
    Ok(())
}

pub async fn part_hold_back(s: &Server) -> Check {
    let mut playlists = Vec::new();
    for r in &s.renditions {
        playlists.push((r.as_str(), s.playlist(r, "").await?));
    }
    let largest = playlists
        .iter()
        .filter_map(|(_, pl)| pl.part_target())
        .fold(0.0, f64::max);
    let side = s.side;
    for (r, pl) in &playlists {
        let target = pl
            .part_target()
            .ok_or(format!("4.4.3.7: {side} {r}: no PART-TARGET"))?;
        let td = pl.target_duration.unwrap_or(0) as f64;
        let phb = pl.control("PART-HOLD-BACK").ok_or(format!(
            "4.4.3.8: {side} {r}: PART-HOLD-BACK is REQUIRED with EXT-X-PART-INF"
        ))?;
        ensure!(
            phb >= 2.0 * target - EPSILON,
            "4.4.3.8: {side} {r}: PART-HOLD-BACK={phb} MUST be at least twice PART-TARGET={target}"
        );
        ensure!(
            phb >= 3.0 * largest - EPSILON,
            "4.4.3.8: {side} {r}: PART-HOLD-BACK={phb} SHOULD be at least three times the \
             largest PART-TARGET of any rendition ({largest})"
        );
        if let Some(hb) = pl.control("HOLD-BACK") {
            ensure!(
                hb >= 3.0 * td - EPSILON,
                "4.4.3.8: {side} {r}: HOLD-BACK={hb} MUST be at least three target durations ({td})"
            );
        }
    }
    Ok(())
}

pub async fn basics(s: &Server) -> Check {
    s.each(|r| async move {
        let side = s.side;
        let a = s.request(r, "").await;
        ensure!(a.status == 200, "{side} {r}: status {}", a.status);
        let ct = a.content_type.unwrap_or_default();
        ensure!(
            ct.starts_with("application/vnd.apple.mpegurl") || ct.starts_with("audio/mpegurl"),
            "4: {side} {r}: playlist served as Content-Type {ct:?}"
        );
        let pl = Media::parse(&a.text).map_err(|e| format!("4.1: {side} {r}: {e}"))?;
        let missing: Vec<&str> = [
            ("EXT-X-VERSION", pl.version.is_some()),
            ("EXT-X-TARGETDURATION", pl.target_duration.is_some()),
            ("EXT-X-PART-INF:PART-TARGET", pl.part_target().is_some()),
            (
                "EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
                pl.server_control
                    .as_ref()
                    .is_some_and(|c| c.yes("CAN-BLOCK-RELOAD")),
            ),
            ("EXT-X-INDEPENDENT-SEGMENTS", pl.independent_segments),
            (
                "EXT-X-MAP before the first segment",
                pl.segs.first().is_some_and(|x| x.map.is_some()),
            ),
            (
                "EXT-X-PROGRAM-DATE-TIME on the first segment",
                pl.segs.first().is_some_and(|x| x.program_date_time),
            ),
            ("no EXT-X-ENDLIST while live", !pl.end_list),
        ]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| what)
        .collect();
        ensure!(
            missing.is_empty(),
            "4.4: {side} {r}: plain playlist lacks {}:\n{}",
            missing.join(", "),
            a.text.lines().take(12).collect::<Vec<_>>().join("\n")
        );
        ensure!(
            pl.version >= Some(6),
            "version compatibility: {side} {r}: EXT-X-MAP needs EXT-X-VERSION 6 or more, got {:?}",
            pl.version
        );
        if !s.is_audio(r) {
            let dependent: Vec<u64> = pl
                .segs
                .iter()
                .filter(|x| x.parts.first().is_some_and(|p| !p.independent))
                .map(|x| x.msn)
                .collect();
            ensure!(
                dependent.is_empty(),
                "4.4.4.9: {side} {r}: first part of segments {dependent:?} lacks INDEPENDENT=YES \
                 though each segment starts with an IDR (EXT-X-INDEPENDENT-SEGMENTS)"
            );
        }
        let q = "_HLS_skip=YES";
        let delta = s.playlist(r, q).await?;
        ensure!(
            delta.skipped.is_some() && delta.version >= Some(9),
            "6.2.5.1 / version compatibility: {side} {r}: {} must carry EXT-X-SKIP and EXT-X-VERSION 9 or more; \
             got version {:?}, skip {:?}",
            show(q),
            delta.version,
            delta.skipped
        );
        Ok(())
    })
    .await
}

pub async fn parts_near_live_edge(s: &Server) -> Check {
    s.each(|r| async move {
        let side = s.side;
        let pl = s.playlist(r, "").await?;
        let td = pl
            .target_duration
            .ok_or(format!("{side} {r}: no TARGETDURATION"))? as f64;
        let end = pl.listed_duration();
        // Where each segment ends, counted from the start of the playlist.
        let mut at = 0.0;
        let mut stale = Vec::new();
        for x in &pl.segs {
            at += x.listed_duration();
            let behind = end - at;
            if !x.parts.is_empty() && behind > 3.0 * td + EPSILON {
                stale.push(format!("{} (ends {behind:.3} s before the end)", x.msn));
            }
        }
        ensure!(
            stale.is_empty(),
            "4.4.4.9: {side} {r}: EXT-X-PART tags SHOULD be removed once more than three target \
             durations ({}) from the end of the playlist, still listed for segments {}",
            3.0 * td,
            stale.join(", ")
        );
        // And the parts a client at PART-HOLD-BACK plays are there.
        let hold = pl.control("PART-HOLD-BACK").unwrap_or(0.0);
        let mut at = 0.0;
        for x in &pl.segs {
            at += x.listed_duration();
            ensure!(
                !x.parts.is_empty() || end - at > hold,
                "4.4.4.9: {side} {r}: segment {} ends within PART-HOLD-BACK={hold} of the end \
                 but lists no parts",
                x.msn
            );
        }
        Ok(())
    })
    .await
}
