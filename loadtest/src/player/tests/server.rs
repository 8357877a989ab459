//! A scripted LL-HLS server on a virtual clock: one part every 333 ms, six
//! parts a segment, a window of ten segments with parts on the newest three,
//! blocking reloads, preload hints, delta updates, and switchable faults.
//! With [`Server::audio`], the master names a separate audio rendition
//! (`a/index.m3u8`, the variants' `AUDIO` group) with the same timing, as
//! livecdn's origin does.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use livecdn_shared::playlist::{
    AudioRendition, HlsQuery, MediaPlaylist, MultivariantPlaylist, Part, PreloadHint,
    PreloadHintType, Segment, ServerControl, Skip, SkipRequest, Variant,
};

use crate::player::{Outcome, Request};

pub const BASE: &str = "http://cdn.test/live";
pub const PART: Duration = Duration::from_millis(333);
pub const PARTS_PER_SEGMENT: u64 = 6;
/// Parts already published at `t0`.
pub const INITIAL_PARTS: u64 = 62;
const WINDOW_SEGMENTS: u64 = 10;
const SEGMENTS_WITH_PARTS: u64 = 3;
const LATENCY: Duration = Duration::from_millis(20);
/// Bit rate of the audio rendition.
pub const AUDIO_BPS: u64 = 128_000;
const TTFB: Duration = Duration::from_millis(10);

/// A response due at `at`; its body is built when it is delivered.
struct Pending {
    at: Instant,
    id: u64,
    what: What,
}

enum What {
    Status(u16),
    Master,
    Playlist {
        skip: bool,
        audio: bool,
    },
    Body {
        len: usize,
        ttfb: Duration,
        total: Duration,
    },
}

pub struct Server {
    pub t0: Instant,
    pub w0: SystemTime,
    pub bandwidths: Vec<u64>,
    /// Link rate for media downloads, bits per second.
    pub link_bps: u64,
    /// No part is published during `(from, length)`.
    pub pause: Option<(Instant, Duration)>,
    /// The master names a separate audio rendition.
    pub audio: bool,
    /// No audio part is published during `(from, length)`; video goes on.
    pub audio_pause: Option<(Instant, Duration)>,
    /// Every playlist request gets this status until the instant.
    pub playlist_fault: Option<(u16, Instant)>,
    /// Blocking reloads get 400.
    pub reject_blocking: bool,
    /// This part URL (suffix) gets one 404.
    pub part_404_once: Option<String>,
    /// Segments from this MSN on follow a discontinuity with a new init.
    pub discontinuity_at: Option<u64>,
    /// Advertise and honour delta updates.
    pub delta: bool,
    /// Like livecdn's origin: a segment whose last part is done stays open
    /// (no URI yet) until the next segment starts, while the preload hint
    /// already names the next segment's first part.
    pub close_late: bool,
    pub delta_responses: u32,
    pending: Vec<Pending>,
}

impl Server {
    pub fn new(t0: Instant, bandwidths: Vec<u64>) -> Server {
        Server {
            t0,
            w0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            bandwidths,
            link_bps: 50_000_000,
            pause: None,
            audio: false,
            audio_pause: None,
            playlist_fault: None,
            reject_blocking: false,
            part_404_once: None,
            discontinuity_at: None,
            delta: false,
            close_late: false,
            delta_responses: 0,
            pending: Vec::new(),
        }
    }

    pub fn wall(&self, now: Instant) -> SystemTime {
        self.w0 + now.saturating_duration_since(self.t0)
    }

    fn unpaused_count(&self, at: Instant) -> u64 {
        let elapsed = at.saturating_duration_since(self.t0).as_nanos();
        INITIAL_PARTS + (elapsed / PART.as_nanos()) as u64
    }

    fn pause_of(&self, audio: bool) -> Option<(Instant, Duration)> {
        if audio {
            self.audio_pause
        } else {
            self.pause
        }
    }

    /// Video parts published by `at`.
    pub fn count(&self, at: Instant) -> u64 {
        self.count_of(false, at)
    }

    /// Parts of the audio (or video) rendition published by `at`.
    pub fn count_of(&self, audio: bool, at: Instant) -> u64 {
        match self.pause_of(audio) {
            Some((from, _)) if at < from => self.unpaused_count(at),
            Some((from, length)) if at < from + length => self.unpaused_count(from),
            Some((_, length)) => self.unpaused_count(at - length),
            None => self.unpaused_count(at),
        }
    }

    /// When part number `k` (from 0) is published.
    fn ready_at(&self, audio: bool, k: u64) -> Instant {
        let raw = match (k + 1).checked_sub(INITIAL_PARTS) {
            Some(n) if n > 0 => self.t0 + PART * n as u32,
            _ => self.t0,
        };
        match self.pause_of(audio) {
            Some((from, length)) if raw >= from => raw + length,
            _ => raw,
        }
    }

    fn pdt(&self, k: u64) -> SystemTime {
        self.w0 - PART * INITIAL_PARTS as u32 + PART * k as u32
    }

    fn map_for(&self, msn: u64) -> &'static str {
        match self.discontinuity_at {
            Some(d) if msn >= d => "init-b.mp4",
            _ => "init.mp4",
        }
    }

    pub fn master(&self) -> String {
        let variants = (0..self.bandwidths.len())
            .map(|r| Variant {
                uri: format!("v{r}/index.m3u8"),
                bandwidth: self.bandwidths[r],
                audio_group: self.audio.then(|| "aud".to_owned()),
                ..Variant::default()
            })
            .collect();
        let audio = self
            .audio
            .then(|| AudioRendition {
                group_id: "aud".into(),
                name: "audio".into(),
                uri: "a/index.m3u8".into(),
                default: true,
                autoselect: true,
                channels: Some(2),
                language: None,
            })
            .into_iter()
            .collect();
        MultivariantPlaylist {
            variants,
            audio,
            ..MultivariantPlaylist::default()
        }
        .render()
    }

    /// The media playlist of rendition `r` with `n` parts published.
    pub fn playlist(&self, n: u64, skip: bool) -> MediaPlaylist {
        let complete = n / PARTS_PER_SEGMENT;
        let first = complete.saturating_sub(WINDOW_SEGMENTS);
        let mut segments = Vec::new();
        for msn in first..=complete {
            let listed = if msn < complete {
                PARTS_PER_SEGMENT
            } else {
                n % PARTS_PER_SEGMENT
            };
            if listed == 0 {
                continue;
            }
            let with_parts = msn + SEGMENTS_WITH_PARTS >= complete;
            let parts = (0..listed)
                .filter(|_| with_parts)
                .map(|p| Part {
                    duration: 0.333,
                    uri: format!("p{msn}.{p}.m4s"),
                    independent: true,
                    gap: false,
                })
                .collect();
            let new_map = msn == first || Some(msn) == self.discontinuity_at;
            segments.push(Segment {
                duration: 0.333 * PARTS_PER_SEGMENT as f64,
                uri: (msn < complete
                    && !(self.close_late
                        && msn + 1 == complete
                        && n.is_multiple_of(PARTS_PER_SEGMENT)))
                .then(|| format!("s{msn}.m4s")),
                discontinuity: Some(msn) == self.discontinuity_at && msn != first,
                program_date_time: Some(self.pdt(msn * PARTS_PER_SEGMENT)),
                map_uri: new_map.then(|| self.map_for(msn).to_owned()),
                parts,
                gap: false,
            });
        }
        let (next_msn, next_part) = (complete, n % PARTS_PER_SEGMENT);
        let preload_hint = Some(
            if next_part == 0 && Some(next_msn) == self.discontinuity_at {
                PreloadHint {
                    hint_type: PreloadHintType::Map,
                    uri: "init-b.mp4".into(),
                }
            } else {
                PreloadHint {
                    hint_type: PreloadHintType::Part,
                    uri: format!("p{next_msn}.{next_part}.m4s"),
                }
            },
        );
        let mut playlist = MediaPlaylist {
            version: if skip { 9 } else { 6 },
            target_duration: 2,
            part_target: Some(0.333),
            server_control: Some(ServerControl {
                can_block_reload: true,
                part_hold_back: Some(0.999),
                can_skip_until: self.delta.then_some(12.0),
                ..ServerControl::default()
            }),
            media_sequence: first,
            discontinuity_sequence: u64::from(self.discontinuity_at.is_some_and(|d| d < first)),
            segments,
            preload_hint,
            ..MediaPlaylist::default()
        };
        if skip {
            let skippable = playlist.segments.len().saturating_sub(6);
            playlist.segments.drain(..skippable);
            playlist.skip = Some(Skip {
                skipped_segments: skippable as u64,
                ..Skip::default()
            });
        }
        playlist
    }

    /// Accepts a request sent at `now`.
    pub fn accept(&mut self, now: Instant, request: &Request) {
        let path = request
            .url
            .strip_prefix(BASE)
            .unwrap_or(&request.url)
            .trim_start_matches('/');
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let at_latency = now + LATENCY;
        let (at, what) = if path == "master.m3u8" {
            (at_latency, What::Master)
        } else if let Some(file) = path.strip_prefix("a/").filter(|_| self.audio) {
            self.media_request(now, None, file, query)
        } else if let Some(file) = path.strip_prefix(&format!("v{}/", request.rendition)) {
            self.media_request(now, Some(request.rendition), file, query)
        } else {
            (at_latency, What::Status(404))
        };
        self.pending.push(Pending {
            at,
            id: request.id,
            what,
        });
    }

    /// A request for rendition `rendition`'s files, or the audio's (`None`).
    fn media_request(
        &mut self,
        now: Instant,
        rendition: Option<usize>,
        file: &str,
        query: &str,
    ) -> (Instant, What) {
        let audio = rendition.is_none();
        let soon = now + LATENCY;
        if file == "index.m3u8" {
            if let Some((status, until)) = self.playlist_fault {
                if now < until {
                    return (soon, What::Status(status));
                }
            }
            let query = HlsQuery::parse(query).unwrap();
            let skip = self.delta && query.skip == Some(SkipRequest::Yes);
            let Some(msn) = query.msn else {
                return (soon, What::Playlist { skip, audio });
            };
            if self.reject_blocking {
                return (soon, What::Status(400));
            }
            let k = msn * PARTS_PER_SEGMENT + query.part.unwrap_or(0);
            let at = self.ready_at(audio, k).max(now) + LATENCY;
            return (at, What::Playlist { skip, audio });
        }
        if file.starts_with("init") {
            return (
                soon,
                What::Body {
                    len: 1000,
                    ttfb: LATENCY,
                    total: LATENCY,
                },
            );
        }
        if self.part_404_once.as_deref() == Some(file) {
            self.part_404_once = None;
            return (soon, What::Status(404));
        }
        let name = file.trim_end_matches(".m4s");
        let (k, parts) = if let Some(part) = name.strip_prefix('p') {
            let (msn, p) = part.split_once('.').unwrap();
            (
                msn.parse::<u64>().unwrap() * PARTS_PER_SEGMENT + p.parse::<u64>().unwrap(),
                1,
            )
        } else {
            let msn = name.trim_start_matches('s').parse::<u64>().unwrap();
            (
                msn * PARTS_PER_SEGMENT + PARTS_PER_SEGMENT - 1,
                PARTS_PER_SEGMENT,
            )
        };
        let bps = rendition.map_or(AUDIO_BPS, |r| self.bandwidths[r]);
        let len = (bps / 8 * 333 / 1000 * parts) as usize;
        let transfer = Duration::from_secs_f64(len as f64 * 8.0 / self.link_bps as f64);
        let wait = self.ready_at(audio, k).saturating_duration_since(now);
        // A part not yet produced is held, as a preload-hinted request is.
        let ttfb = wait + TTFB;
        (
            now + ttfb + transfer,
            What::Body {
                len,
                ttfb,
                total: ttfb + transfer,
            },
        )
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.at).min()
    }

    /// Responses due by `now`, in due order.
    pub fn take_due(&mut self, now: Instant) -> Vec<(u64, Outcome)> {
        self.pending.sort_by_key(|p| p.at);
        let due = self.pending.iter().take_while(|p| p.at <= now).count();
        let ready: Vec<Pending> = self.pending.drain(..due).collect();
        ready
            .into_iter()
            .map(|p| (p.id, self.outcome(now, p.what)))
            .collect()
    }

    fn outcome(&mut self, now: Instant, what: What) -> Outcome {
        let ok = |body: String| Outcome::Ok {
            status: 200,
            body: Bytes::from(body),
            ttfb: LATENCY,
            total: LATENCY,
        };
        match what {
            What::Status(status) => Outcome::Ok {
                status,
                body: Bytes::new(),
                ttfb: LATENCY,
                total: LATENCY,
            },
            What::Master => ok(self.master()),
            What::Playlist { skip, audio } => {
                let playlist = self.playlist(self.count_of(audio, now), skip);
                self.delta_responses += u32::from(playlist.skip.is_some());
                ok(playlist.render())
            }
            What::Body { len, ttfb, total } => Outcome::Ok {
                status: 200,
                body: Bytes::from(vec![0; len]),
                ttfb,
                total,
            },
        }
    }
}
