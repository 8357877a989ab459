//! The LL-DASH manifest of a stream, built from the same window as its
//! LL-HLS playlists: every rendition's complete segments as a
//! `SegmentTimeline`, numbered by their media sequence numbers, so
//! `RENDITION/N.m4s` is the same object for both formats.
//!
//! The segment in production is listed too, as the timeline's last `S`:
//! its start is exact, its duration the expected one (the previous
//! segment's, the publisher's keyframe interval, or longer once it has
//! run past that). With `availabilityTimeOffset` = the longest listed
//! duration less one part it may be requested once its first part could
//! exist and arrives as it is produced (chunked), which is what lets a
//! DASH player sit about a part behind live instead of a segment. The
//! timeline is wall-clock exact (below), so a player need not correct for
//! drift: Shaka Player's `autoCorrectDrift`, on by default, would take the
//! listed end of the segment in production for the live edge and play
//! ahead of the encoder (the player page turns it off). Listing it with `@r="-1"`
//! instead would let players extrapolate further, but Shaka Player drops
//! such an `S` in a Period without end; the MPD is instead refreshed
//! every part target (`minimumUpdatePeriod`) and cached for at most half
//! a part at the edge, so a player learns of each new segment as it
//! starts. When the expected duration was wrong (a publisher with a
//! varying keyframe interval) the next MPD lists the real one and the
//! next segment's real start; a request for that segment made early is
//! held until it starts.
//!
//! Timing: `availabilityStartTime` is the Unix epoch and every Period
//! starts at the wall-clock time of media time zero of its publisher
//! session (PROGRAM-DATE-TIME minus decode time, constant within a
//! session), with `presentationTimeOffset` 0. So a Period's start and id
//! never change while its segments slide through the window, and media
//! time maps to wall-clock time as PROGRAM-DATE-TIME says. A new Period
//! starts at each discontinuity (a publisher reconnect) or codec change.

use super::track::{Segment, Track};
use super::{Packager, AUDIO, SOURCE};
use livecdn_shared::dash::{
    AdaptationSet, ContentType, Mpd, Period, Representation, SegmentTemplate,
};
use std::time::{Duration, SystemTime};

/// Where a client reads the server's clock (`UTCTiming`), relative to the
/// page's origin: every livecdn server (origin and edge) answers it.
pub const UTC_TIMING: &str = "/time";

/// `ServiceDescription/PlaybackRate`: players may slow to 0.95x near live
/// and speed up to 1.5x to catch up (the player page's hls.js limit too),
/// so one that starts or falls behind reaches its target in seconds.
const PLAYBACK_RATE: (f64, f64) = (0.95, 1.5);

/// Whether `s` is the segment `track` is producing now, and listed as
/// such (`live_edge`: low-latency streams only).
fn is_open(track: &Track, s: &Segment, live_edge: bool) -> bool {
    live_edge && track.open_segment().is_some_and(|o| o.msn == s.msn)
}

/// The expected duration of the segment in production, in ticks: the
/// previous segment's (the publisher's keyframe interval), the segment
/// target before there is one, or, once its complete parts have run to
/// that, their span plus one more part.
fn expected_duration(track: &Track, open: &Segment, target: Duration, part: Duration) -> u64 {
    let ts = f64::from(track.timescale);
    let previous = track
        .segments()
        .iter()
        .rev()
        .find(|s| s.complete && s.gap.is_none() && s.msn < open.msn)
        .map_or((target.as_secs_f64() * ts) as u64, Segment::duration);
    let done: u64 = open
        .parts
        .iter()
        .filter(|p| p.complete)
        .map(|p| p.duration)
        .sum();
    if done < previous {
        previous
    } else {
        done + (part.as_secs_f64() * ts) as u64
    }
}

/// One Period's identity in the lead track: its discontinuity number and
/// init generation, and the wall-clock time of its media time zero.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PeriodKey {
    discontinuity: u64,
    init_gen: u32,
    zero: Duration,
}

/// The Period each listed segment of `track` belongs to.
fn period_keys(track: &Track, live_edge: bool) -> Vec<(u64, PeriodKey)> {
    let ts = f64::from(track.timescale);
    let mut discontinuity = track.discontinuity_sequence();
    let mut out = Vec::new();
    for (i, s) in track.segments().iter().enumerate() {
        if i > 0 && s.discontinuity {
            discontinuity += 1;
        }
        if s.gap.is_some() || (!s.complete && !is_open(track, s, live_edge)) {
            continue;
        }
        let wall = s
            .pdt
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        // Whole milliseconds: the same for every segment of a session.
        let zero = ((wall - s.start as f64 / ts) * 1000.0).round().max(0.0) as u64;
        out.push((
            s.msn,
            PeriodKey {
                discontinuity,
                init_gen: s.init_gen,
                zero: Duration::from_millis(zero),
            },
        ));
    }
    out
}

impl Packager {
    /// The stream's MPD as of `now`, or `None` before any segment is
    /// complete.
    pub fn manifest(&self, now: SystemTime) -> Option<Mpd> {
        let lead = self.track(SOURCE).or_else(|| self.track(AUDIO))?;
        lead.media_segments().next()?;
        // A NORMAL-latency stream lists complete segments only, each
        // available once complete, and asks for plain HLS distances.
        let live_edge = self.config().low_latency;
        let keys = period_keys(lead, live_edge);
        let target = Duration::from_secs(self.target_duration());
        let part_target = self.part_target_of(SOURCE);
        let mut periods: Vec<Period> = Vec::new();
        let mut bounds: Vec<(PeriodKey, u64, u64)> = Vec::new();
        for (msn, key) in &keys {
            match bounds.last_mut() {
                Some((k, _, last))
                    if k.discontinuity == key.discontinuity && k.init_gen == key.init_gen =>
                {
                    *last = *msn;
                }
                _ => bounds.push((*key, *msn, *msn)),
            }
        }
        for (key, first, last) in bounds {
            let sets = self.adaptation_sets(first, last, key.init_gen, part_target);
            if sets.is_empty() {
                continue;
            }
            periods.push(Period {
                id: format!("d{}g{}", key.discontinuity, key.init_gen),
                start: key.zero,
                adaptation_sets: sets,
            });
        }
        if periods.is_empty() {
            return None;
        }
        let window: f64 = lead
            .media_segments()
            .map(|s| s.duration() as f64 / f64::from(lead.timescale))
            .sum();
        // The longest listed, the one in production included.
        let longest = periods
            .iter()
            .flat_map(|p| &p.adaptation_sets)
            .flat_map(|a| &a.representations)
            .flat_map(|r| {
                let ts = f64::from(r.template.timescale);
                r.template.timeline.iter().map(move |e| e.d as f64 / ts)
            })
            .fold(0.0, f64::max);
        // A segment may be requested once its first part could exist: its
        // duration less one part. One offset serves every segment of every
        // representation, so it is taken from the longest listed: players
        // (Shaka Player among them) put the live edge at now -
        // @maxSegmentDuration + the smallest offset, which is one part
        // behind now only when both come from the same segment. A shorter
        // segment thereby becomes requestable up to the difference before
        // it starts; such a request is held until it starts, as a preload
        // hint's is, and then streams as it is produced.
        let offset = match live_edge {
            true => (longest - part_target.as_secs_f64()).max(0.0),
            false => 0.0,
        };
        for rep in periods
            .iter_mut()
            .flat_map(|p| &mut p.adaptation_sets)
            .flat_map(|a| &mut a.representations)
        {
            rep.template.availability_time_offset = offset;
            rep.template.availability_time_complete = !live_edge;
        }
        let longest = if longest > 0.0 {
            Duration::from_secs_f64(longest)
        } else {
            target
        };
        // A DASH player streaming the segment in production holds the
        // distance an LL-HLS player does: PART-HOLD-BACK behind the end of
        // the newest part, which is on average half a part behind now. That
        // is the ServiceDescription's target, which players measure
        // against the wall clock. Players that start at
        // `suggestedPresentationDelay` count it back from the availability
        // edge, which `availabilityTimeOffset` puts one part behind now, so
        // it is the target less that part: both land at the same place.
        // Without parts: three segments back (HLS's HOLD-BACK), refreshed
        // every half segment.
        let (latency, delay, refresh) = match live_edge {
            true => {
                let latency = self.part_hold_back() + part_target / 2;
                (latency, latency.saturating_sub(part_target), part_target)
            }
            false => (target * 3, target * 3, target / 2),
        };
        Some(Mpd {
            availability_start: SystemTime::UNIX_EPOCH,
            publish_time: now,
            minimum_update_period: refresh,
            min_buffer_time: Duration::from_secs(1),
            time_shift_buffer_depth: Duration::from_secs_f64(window),
            suggested_presentation_delay: delay,
            max_segment_duration: longest,
            latency_target: latency,
            latency_range: (latency / 2, latency * 3),
            playback_rate: PLAYBACK_RATE,
            utc_timing: UTC_TIMING.to_string(),
            periods,
        })
    }

    /// The video and audio sets of one Period: segments `first..=last` of
    /// init generation `gen` (of the lead track).
    fn adaptation_sets(
        &self,
        first: u64,
        last: u64,
        gen: u32,
        part_target: Duration,
    ) -> Vec<AdaptationSet> {
        let target = self.config().segment_target;
        let live_edge = self.config().low_latency;
        let tpl = |track, gen| template(track, first, last, gen, (target, part_target), live_edge);
        let mut video = Vec::new();
        for name in std::iter::once(SOURCE).chain(self.rung_names()) {
            let (Some(track), Some(vc)) = (self.track(name), self.video_config_of(name)) else {
                continue;
            };
            let Some(template) = tpl(track, gen) else {
                continue;
            };
            let bandwidth = track.bandwidth().map_or(0, |(peak, _)| peak).max(1);
            video.push(Representation {
                id: name.to_string(),
                codecs: vc.codec_string(),
                bandwidth,
                resolution: Some((vc.width, vc.height)),
                frame_rate: vc.frame_rate.or_else(|| track.measured_frame_rate()),
                audio: None,
                template,
            });
        }
        video.sort_by_key(|r| std::cmp::Reverse(r.bandwidth));
        let mut sets = Vec::new();
        if !video.is_empty() {
            sets.push(AdaptationSet {
                id: 0,
                content_type: ContentType::Video,
                representations: video,
            });
        }
        let audio = self.track(AUDIO).zip(self.audio_config());
        if let Some((track, ac)) = audio {
            // The audio's own init generation for these segments.
            let gen = track.segment(first).map_or(gen, |s| s.init_gen);
            if let Some(template) = tpl(track, gen) {
                sets.push(AdaptationSet {
                    id: 1,
                    content_type: ContentType::Audio,
                    representations: vec![Representation {
                        id: AUDIO.to_string(),
                        codecs: ac.codec_string(),
                        bandwidth: track.bandwidth().map_or(0, |(peak, _)| peak).max(1),
                        resolution: None,
                        frame_rate: None,
                        audio: Some((ac.sample_rate, ac.channels)),
                        template,
                    }],
                });
            }
        }
        sets
    }
}

/// The `SegmentTemplate` of `track`'s media segments numbered
/// `first..=last`, complete or in production; `None` if it has none of
/// them.
fn template(
    track: &Track,
    first: u64,
    last: u64,
    gen: u32,
    (target, part_target): (Duration, Duration),
    live_edge: bool,
) -> Option<SegmentTemplate> {
    let segments: Vec<&Segment> = track
        .segments()
        .iter()
        .filter(|s| {
            s.gap.is_none()
                && (s.complete || is_open(track, s, live_edge))
                && (first..=last).contains(&s.msn)
        })
        .collect();
    let start_number = segments.first()?.msn;
    let mut tpl = SegmentTemplate {
        timescale: track.timescale,
        media: format!("{}/$Number$.m4s", track.name),
        initialization: format!("{}/{}", track.name, Track::init_uri(gen)),
        start_number,
        presentation_time_offset: 0,
        availability_time_offset: 0.0,
        availability_time_complete: false,
        timeline: Vec::new(),
    };
    for (expected, s) in (start_number..).zip(segments) {
        // A missing number (a rung's gap) cannot be expressed with
        // $Number$ in one timeline: stop there.
        if s.msn != expected {
            break;
        }
        let d = if s.complete {
            s.duration()
        } else {
            expected_duration(track, s, target, part_target)
        };
        tpl.push(s.start, d);
    }
    Some(tpl)
}
