//! Media as served: a segment is the concatenation of its parts (RFC
//! 8216bis 4.4.4.9: a Partial Segment is a subset of its Parent Segment;
//! DESIGN section 3: byte-identical to their concatenation).

use crate::client::{ensure, Check, Server};
use crate::mp4;

pub async fn segment_is_its_parts(s: &Server) -> Check {
    s.each(|r| async move {
        let side = s.side;
        let pl = s.playlist(r, "").await?;
        // The two newest complete segments that list their parts.
        let segs: Vec<_> = pl
            .segs
            .iter()
            .rev()
            .filter(|x| x.complete() && !x.parts.is_empty())
            .take(2)
            .collect();
        ensure!(
            !segs.is_empty(),
            "{side} {r}: no complete segment lists its parts:\n{}",
            pl.tail(12)
        );
        for seg in segs {
            let uri = seg.uri.as_deref().unwrap_or_default();
            let whole = s.bytes(&s.resolve(r, uri)).await?;
            let mut joined = Vec::with_capacity(whole.len());
            for p in &seg.parts {
                joined.extend_from_slice(&s.bytes(&s.resolve(r, &p.uri)).await?);
            }
            ensure!(
                whole[..] == joined[..],
                "4.4.4.9: {side} {r}: segment {} ({uri}, {} bytes) is not the concatenation of its \
                 {} parts ({} bytes)",
                seg.msn,
                whole.len(),
                seg.parts.len(),
                joined.len()
            );
        }
        Ok(())
    })
    .await
}

/// Largest difference allowed between a listed duration and the media's
/// own timing; the playlist writes durations to 10 µs.
const TIMING_SLACK: f64 = 1e-3;

pub async fn durations_match_media(s: &Server) -> Check {
    s.each(|r| async move {
        let side = s.side;
        let pl = s.playlist(r, "").await?;
        // The newest complete segment N listing its parts whose successor
        // has begun: N+1.0 tells where N's last part ends.
        let seg = pl
            .segs
            .iter()
            .rev()
            .find(|x| {
                x.complete()
                    && !x.parts.is_empty()
                    && pl.seg(x.msn + 1).is_some_and(|n| !n.parts.is_empty())
            })
            .ok_or(format!(
                "{side} {r}: no complete segment with parts and a successor"
            ))?;
        let next = pl.seg(seg.msn + 1).and_then(|n| n.parts.first());
        let map = pl
            .segs
            .iter()
            .take_while(|x| x.msn <= seg.msn)
            .filter_map(|x| x.map.as_deref())
            .last()
            .ok_or(format!(
                "{side} {r}: no EXT-X-MAP before segment {}",
                seg.msn
            ))?;
        let init = s.bytes(&s.resolve(r, map)).await?;
        let ts = mp4::timescale(&init).map_err(|e| format!("{side} {r} {map}: {e}"))? as f64;
        let trex = mp4::default_duration(&init).map_err(|e| format!("{side} {r} {map}: {e}"))?;
        // Decode start and summed sample durations of N's parts and N+1.0.
        let mut starts = Vec::new();
        let mut sampled = Vec::new();
        for p in seg.parts.iter().chain(next) {
            let body = s.bytes(&s.resolve(r, &p.uri)).await?;
            let frags =
                mp4::fragments(&body, trex).map_err(|e| format!("{side} {r} {}: {e}", p.uri))?;
            let first = frags
                .first()
                .ok_or(format!("{side} {r} {}: no moof", p.uri))?;
            starts.push(first.decode_time);
            sampled.push(frags.iter().map(|f| f.duration).sum::<u64>());
        }
        let secs = |ticks: u64| ticks as f64 / ts;
        let mut wrong = Vec::new();
        for (i, p) in seg.parts.iter().enumerate() {
            let media = secs(starts[i + 1].saturating_sub(starts[i]));
            if (media - p.duration).abs() > TIMING_SLACK {
                wrong.push(format!(
                    "{} DURATION={} but its media spans {media:.5} s (samples sum to {:.5} s)",
                    p.uri,
                    p.duration,
                    secs(sampled[i])
                ));
            }
        }
        let extinf = seg.extinf.unwrap_or_default();
        let media = secs(starts[seg.parts.len()].saturating_sub(starts[0]));
        if (media - extinf).abs() > TIMING_SLACK {
            let samples: u64 = sampled[..seg.parts.len()].iter().sum();
            wrong.insert(
                0,
                format!(
                    "segment {} EXTINF:{extinf} but its media spans {media:.5} s (tfdt of {}.0 to \
                     {}.0; samples sum to {:.5} s)",
                    seg.msn,
                    seg.msn,
                    seg.msn + 1,
                    secs(samples)
                ),
            );
        }
        ensure!(
            wrong.is_empty(),
            "4.4.4.1 / 4.4.4.9: {side} {r}: listed durations are not the media's (more than \
             {TIMING_SLACK} s off; the error accumulates over the playlist): {}",
            wrong.iter().take(4).cloned().collect::<Vec<_>>().join("; ")
        );
        Ok(())
    })
    .await
}
