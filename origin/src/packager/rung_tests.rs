//! Transcoded rungs against the source on a virtual clock: the rung gets the
//! frames the packager says it fed the encoder, some frames later, without
//! B-frames, keyframes where the source had them (what `-copyts
//! -force_key_frames source -bf 0` produces).

#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Frames per GOP: an IDR, then groups of P B B in decode order.
const GOP: u32 = 31;
/// The source's decoding delay (two B-frames at 30 fps).
const SRC_DELAY_MS: i32 = 66;
/// Ticks in one 30 fps frame.
const FRAME: u64 = 3000;

fn config(width: u32, height: u32) -> VideoConfig {
    VideoConfig {
        avcc: Bytes::from(vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, height as u8]),
        width,
        height,
        profile_idc: 0x64,
        constraint_flags: 0,
        level_idc: 0x1f,
        nal_length_size: 4,
        frame_rate: Some(30.0),
    }
}

struct Ladder {
    p: Packager,
    t0: Instant,
    index: u32,
    /// Frames the "encoder" has been fed and not returned yet, by
    /// presentation time: it decodes, reorders, and encodes in that order.
    encoder: BTreeMap<u32, bool>,
    /// Frames of encoder delay.
    delay: usize,
    /// Rung keyframes are shifted this many frames from the source's.
    key_shift: u32,
    /// Frames the rung loses while its encoder is down.
    down: bool,
}

impl Ladder {
    fn new(delay: usize) -> Self {
        let t0 = Instant::now();
        let mut p = Packager::new(
            PackagerConfig::default(),
            t0,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        );
        p.handle_video_config(config(1280, 720));
        p.handle_rung_config("360p", config(640, 360));
        Self {
            p,
            t0,
            index: 0,
            encoder: BTreeMap::new(),
            delay,
            key_shift: 0,
            down: false,
        }
    }

    fn frames(&mut self, n: u32) {
        for _ in 0..n {
            let i = self.index;
            self.index += 1;
            let ms_of = |frame: u32| (f64::from(frame) * 1000.0 / 30.0).round() as u32;
            let ms = ms_of(i);
            let key = i.is_multiple_of(GOP);
            // Presentation order within the GOP: I0 P3 B1 B2 P6 B4 B5 ...
            let j = i % GOP;
            let shown = match j {
                0 => j,
                _ if (j - 1).is_multiple_of(3) => j + 2,
                _ => j - 1,
            };
            let pts = ms_of(i - j + shown + 2);
            let cts = pts as i32 - ms as i32;
            let now = self.t0 + Duration::from_millis(u64::from(ms));
            self.p.handle_frame(
                now,
                Frame {
                    track: TrackKind::Video,
                    dts_ms: ms,
                    cts_ms: cts,
                    keyframe: key,
                    data: Bytes::from(vec![1u8; 800]),
                },
            );
            if let Some(out) = self.p.last_video_out_ms() {
                if !self.down {
                    let shifted = (i + GOP - self.key_shift % GOP).is_multiple_of(GOP);
                    let rung_key = if self.key_shift == 0 { key } else { shifted };
                    self.encoder
                        .insert(out.saturating_add_signed(cts), rung_key);
                }
            }
            while self.encoder.len() > self.delay {
                let Some((pts, key)) = self.encoder.pop_first() else {
                    break;
                };
                // No B-frames: decode time = presentation time.
                self.p.handle_rung_frame(
                    "360p",
                    Frame {
                        track: TrackKind::Video,
                        dts_ms: pts,
                        cts_ms: 0,
                        keyframe: key,
                        data: Bytes::from(vec![2u8; 300]),
                    },
                );
            }
        }
    }
}

fn complete(t: &Track) -> Vec<&Segment> {
    t.segments().iter().filter(|s| s.complete).collect()
}

#[test]
fn rung_segments_and_parts_line_up_with_the_source() {
    let mut l = Ladder::new(6);
    l.frames(30 * 20);
    let src = l.p.track(SOURCE).unwrap();
    let rung = l.p.track("360p").unwrap();
    let rung_segs = complete(rung);
    assert!(rung_segs.len() >= 5, "{} rung segments", rung_segs.len());
    for s in rung_segs {
        let o = src.segment(s.msn).unwrap();
        assert!(o.complete);
        assert_eq!(s.pdt, o.pdt, "msn {}", s.msn);
        assert!(s.gap.is_none());
        assert!(
            s.parts[0].independent,
            "msn {} starts without an IDR",
            s.msn
        );
        // Presentation times agree: the rung's first decode time is the
        // source's first presentation time.
        let src_pts = o.start + u64::from(SRC_DELAY_MS.unsigned_abs()) * 90;
        assert!(s.start.abs_diff(src_pts) <= FRAME / 2, "msn {}", s.msn);
        assert!(
            s.duration().abs_diff(o.duration()) <= FRAME,
            "msn {}",
            s.msn
        );
        assert_eq!(s.parts.len(), o.parts.len(), "msn {}", s.msn);
        for (a, b) in s.parts.iter().zip(&o.parts) {
            assert_eq!(a.index, b.index);
            assert!(a.duration.abs_diff(b.duration) <= FRAME, "msn {}", s.msn);
        }
    }
    // The rung's playlist names its sibling and lists the same MSNs.
    let pl = l.p.media_playlist("360p", None).unwrap();
    assert!(pl
        .rendition_reports
        .iter()
        .any(|r| r.uri == "../source/index.m3u8"));
    let src_pl = l.p.media_playlist(SOURCE, None).unwrap();
    assert!(src_pl
        .rendition_reports
        .iter()
        .any(|r| r.uri == "../360p/index.m3u8"));
    assert_eq!(pl.media_sequence, src_pl.media_sequence);
    assert_eq!(l.p.rung_counters("360p").unwrap().misaligned, 0);
    // The rung trails by about the encoder's delay.
    let lag = l.p.rung_lag_ms("360p").unwrap();
    assert!((100.0..400.0).contains(&lag), "lag {lag}");
}

#[test]
fn a_rung_whose_encoder_is_down_plays_the_source_then_resumes_after_a_discontinuity() {
    let mut l = Ladder::new(4);
    l.frames(30 * 6);
    l.p.handle_rung_down("360p");
    l.down = true;
    l.encoder.clear();
    l.frames(30 * 5);
    // While down, the rung's playlist follows the source's live edge, with
    // the source's init after a discontinuity.
    let src = l.p.media_playlist(SOURCE, None).unwrap();
    let down = l.p.media_playlist("360p", None).unwrap();
    assert_eq!(
        down.preload_hint.as_ref().unwrap().uri,
        format!("../source/{}", src.preload_hint.as_ref().unwrap().uri)
    );
    let last_src = src.segments.last().unwrap();
    let last_down = down.segments.last().unwrap();
    assert_eq!(last_down.parts.len(), last_src.parts.len());
    assert_eq!(
        last_down.parts[0].uri,
        format!("../source/{}", last_src.parts[0].uri)
    );
    let switch = down.segments.iter().find(|s| s.discontinuity).unwrap();
    assert_eq!(switch.map_uri.as_deref(), Some("../source/init.mp4"));
    assert_eq!(l.p.progress("360p"), l.p.progress(SOURCE));
    l.down = false;
    l.frames(30 * 6);
    let src = l.p.track(SOURCE).unwrap();
    let rung = l.p.track("360p").unwrap();
    let segs: Vec<_> = rung.segments().iter().collect();
    // Contiguous MSNs, every one naming the source's media.
    for w in segs.windows(2) {
        assert_eq!(w[1].msn, w[0].msn + 1);
    }
    let gaps: Vec<_> = segs.iter().filter(|s| s.gap.is_some()).collect();
    assert!(gaps.len() >= 2, "{} gaps", gaps.len());
    for g in &gaps {
        let o = src.segment(g.msn).unwrap();
        assert_eq!(g.duration(), o.duration());
        assert_eq!(g.pdt, o.pdt);
    }
    let after = segs
        .iter()
        .skip_while(|s| s.gap.is_none())
        .find(|s| s.gap.is_none())
        .unwrap();
    assert!(
        after.discontinuity,
        "msn {} resumes without a discontinuity",
        after.msn
    );
    assert!(complete(rung).last().unwrap().gap.is_none());
    // Played back: the rung's own segments, the source's for the ones it
    // missed (whole, init switched both ways), then its own again.
    let pl = l.p.media_playlist("360p", None).unwrap();
    let text = pl.to_string();
    assert!(!text.contains("#EXT-X-GAP"), "{text}");
    let borrowed: Vec<_> = pl
        .segments
        .iter()
        .filter(|s| {
            s.uri
                .as_deref()
                .is_some_and(|u| u.starts_with("../source/"))
        })
        .collect();
    assert_eq!(borrowed.len(), gaps.len(), "{text}");
    assert!(
        borrowed[0].discontinuity && borrowed[0].map_uri.as_deref() == Some("../source/init.mp4")
    );
    let back = pl
        .segments
        .iter()
        .skip_while(|s| {
            !s.uri
                .as_deref()
                .is_some_and(|u| u.starts_with("../source/"))
        })
        .find(|s| {
            !s.uri
                .as_deref()
                .is_some_and(|u| u.starts_with("../source/"))
        })
        .unwrap();
    assert!(
        back.discontinuity && back.map_uri.as_deref() == Some("init.mp4"),
        "{text}"
    );
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2, "{text}");
}

#[test]
fn keyframes_off_the_source_ones_are_reported_not_misnumbered() {
    let mut l = Ladder::new(3);
    l.frames(30 * 4);
    l.key_shift = 5;
    l.frames(30 * 8);
    let counters = l.p.rung_counters("360p").unwrap();
    assert!(counters.misaligned >= 1, "{counters:?}");
    let src = l.p.track(SOURCE).unwrap();
    for s in l.p.track("360p").unwrap().segments() {
        if let Some(p) = s.parts.first() {
            assert!(p.independent, "msn {} starts without an IDR", s.msn);
        }
        if s.complete {
            assert_eq!(s.pdt, src.segment(s.msn).unwrap().pdt);
        }
    }
}
