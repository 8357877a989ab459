//! One live stream: its packager behind a short lock, and a version counter
//! that wakes waiting requests.
//!
//! The lock is a `std::sync::Mutex`, held only for the duration of a
//! packager call or a window read (microseconds), never across an await.
//! Waiters subscribe to `version` (a `tokio::sync::watch`), which is bumped
//! after every change: one wakeup per change however many requests wait.

use super::captured::Captured;
use crate::opus::OpusTranscoder;
use crate::packager::Packager;
use crate::packager::PackagerConfig;
use crate::transcode::TranscodeStatus;
use crate::verdict::{Monitor, Sample, Transition, Verdict, RATE_WINDOW};
use bytes::Bytes;
use livecdn_shared::media::{AudioConfig, Frame, TrackKind, VideoConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::sync::watch;

/// What a publisher became when it attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRole {
    /// Its frames feed the stream.
    Primary,
    /// Standing by: takes over when the primary stops.
    Backup,
}

#[derive(Debug)]
struct Publishers {
    active: Option<u64>,
    /// Backups in arrival order, with the configs they sent (applied when
    /// they take over).
    standby: Vec<(u64, Option<VideoConfig>, Option<AudioConfig>)>,
    ended_at: Option<Instant>,
    /// How to disconnect each attached session (primary and backups), with
    /// the channel key it published with, if any.
    kicks: Vec<Kick>,
    /// Sessions that send their own Opus (WHIP): no Opus is made from
    /// their AAC.
    own_opus: Vec<u64>,
}

/// A handle on one publisher session that the operator may disconnect.
#[derive(Debug)]
struct Kick {
    session: u64,
    key_id: Option<String>,
    tx: watch::Sender<bool>,
}

/// The lookahead of the Opus encoders browsers use (libopus at 48 kHz),
/// in samples: the `dOps` pre-skip of a WHIP publisher's Opus.
const WEBRTC_OPUS_PRE_SKIP: u16 = 312;

#[derive(Debug)]
pub struct StreamHub {
    name: String,
    packager: Mutex<Packager>,
    publishers: Mutex<Publishers>,
    version: watch::Sender<u64>,
    /// Where source video frames go to be transcoded, while an encoder runs.
    feed: Mutex<Option<mpsc::Sender<Frame>>>,
    /// Source frames the encoder could not take (its queue was full).
    pub feed_dropped: AtomicU64,
    /// Set once a transcoder task has been started for this stream.
    transcoder_started: AtomicBool,
    /// Set while a recording task follows this stream.
    recorder_started: AtomicBool,
    /// What the transcoder reports, for the API and metrics.
    pub transcode: Mutex<TranscodeStatus>,
    /// The origin is shutting down: held requests answer now (503) rather
    /// than wait for media that will not come from this process.
    draining: AtomicBool,
    /// The operator stopped the stream: ended, publishers gone, and edges
    /// told to drop it.
    stopped: AtomicBool,
    /// The health verdict, run every registry tick.
    monitor: Mutex<Monitor>,
    /// Publishers that became primary after the first: encoder restarts
    /// and reconnects.
    pub reconnects: AtomicU64,
    /// Primary publishers attached so far.
    attaches: AtomicU64,
    /// When the stream was created (its first publish).
    pub started: SystemTime,
    /// Wall-clock milliseconds when the current primary publisher attached
    /// (the stream map's "newest publisher wins" order across origins).
    attached_ms: AtomicU64,
    /// The active publisher's key makes it a backup (it outranks no
    /// primary on another origin in the stream map).
    active_backup: AtomicBool,
    /// This hub among all hubs of its stream on this node, ever (its
    /// creation time in Unix nanoseconds): the stream map's numbering
    /// reports name it.
    pub instance: u64,
    /// The AAC to Opus transcoder of the active publisher's audio, when
    /// the packager makes the `opus` rendition, and the AAC configuration
    /// it was made for (none: that configuration gets no Opus). Only the
    /// ingest task of the active publisher uses it.
    opus: Mutex<(Option<AudioConfig>, Option<OpusTranscoder>)>,
    /// When recent source video frames arrived, for WebRTC viewers.
    captured: Mutex<Captured>,
}

impl StreamHub {
    pub fn new(name: &str, cfg: PackagerConfig, now: Instant, wall: SystemTime) -> Self {
        Self {
            name: name.to_string(),
            packager: Mutex::new(Packager::new(cfg, now, wall)),
            publishers: Mutex::new(Publishers {
                active: None,
                standby: Vec::new(),
                ended_at: None,
                kicks: Vec::new(),
                own_opus: Vec::new(),
            }),
            version: watch::channel(0).0,
            feed: Mutex::new(None),
            feed_dropped: AtomicU64::new(0),
            transcoder_started: AtomicBool::new(false),
            recorder_started: AtomicBool::new(false),
            transcode: Mutex::new(TranscodeStatus::default()),
            draining: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            monitor: Mutex::new(Monitor::default()),
            reconnects: AtomicU64::new(0),
            attaches: AtomicU64::new(0),
            started: wall,
            attached_ms: AtomicU64::new(unix_ms(wall)),
            active_backup: AtomicBool::new(false),
            instance: wall
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            opus: Mutex::new((None, None)),
            captured: Mutex::new(Captured::default()),
        }
    }

    /// Runs the health verdict on what the ingest measured; the change to
    /// report, if any.
    pub fn judge(&self, now: Instant) -> Option<Transition> {
        let live = self.has_publisher();
        let sample = self.read(|p| {
            (live && p.is_live()).then(|| {
                let h = p.health();
                let (bitrate_bps, fps) = h.rate(now, RATE_WINDOW);
                Sample {
                    bitrate_bps,
                    fps,
                    video_age: h.report(now).video_age_ms.map(Duration::from_millis),
                }
            })
        });
        self.monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(now, sample)
    }

    /// The current verdict, what is wrong, and the (bitrate, fps) averages.
    pub fn verdict(&self) -> (Verdict, Vec<&'static str>, (Option<f64>, Option<f64>)) {
        let m = self.monitor.lock().unwrap_or_else(|e| e.into_inner());
        (m.verdict(), m.reasons().to_vec(), m.averages())
    }

    /// Ends the stream now (EXT-X-ENDLIST, which wakes every held request)
    /// and disconnects every publisher; how many. A backup does not take
    /// over.
    pub fn stop(&self, now: Instant) -> usize {
        self.stopped.store(true, Ordering::Release);
        self.update(|p| p.handle_stop(now));
        self.pubs().ended_at = Some(now);
        self.kick(None)
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Wakes every held request and makes them answer at once (see
    /// `draining`).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.version.send_modify(|v| *v += 1);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// True the first time it is called: the caller starts the transcoder.
    pub fn claim_transcoder(&self) -> bool {
        !self.transcoder_started.swap(true, Ordering::AcqRel)
    }

    /// The transcoder task ended (with the stream).
    pub fn release_transcoder(&self) {
        self.transcoder_started.store(false, Ordering::Release);
    }

    /// True the first time it is called while no recording task runs: the
    /// caller starts one.
    pub fn claim_recorder(&self) -> bool {
        !self.recorder_started.swap(true, Ordering::AcqRel)
    }

    /// The recording task ended (with the stream).
    pub fn release_recorder(&self) {
        self.recorder_started.store(false, Ordering::Release);
    }

    /// Installs (or removes) the encoder's input queue.
    pub fn set_feed(&self, feed: Option<mpsc::Sender<Frame>>) {
        *self.feed.lock().unwrap_or_else(|e| e.into_inner()) = feed;
    }

    pub fn transcode_status(&self) -> TranscodeStatus {
        self.transcode
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the transcoder's reported status.
    pub fn with_transcode_status(&self, f: impl FnOnce(&mut TranscodeStatus)) {
        f(&mut self.transcode.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A transcoded rung's decoder configuration.
    pub fn rung_config(&self, rung: &str, config: VideoConfig) {
        self.update(|p| p.handle_rung_config(rung, config));
    }

    /// A transcoded rung's frame (timestamps on the output timeline).
    pub fn rung_frame(&self, rung: &str, frame: Frame) {
        self.update(|p| p.handle_rung_frame(rung, frame));
    }

    /// A rung's encoder is not running: its playlist stands in with the
    /// source's media until it is back.
    pub fn rung_down(&self, rung: &str) {
        self.update(|p| p.handle_rung_down(rung));
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the packager state. Keep `f` short: it runs under the lock.
    pub fn read<R>(&self, f: impl FnOnce(&Packager) -> R) -> R {
        f(&self.packager.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changes the packager state and wakes waiters if `f` says it changed.
    fn update(&self, f: impl FnOnce(&mut Packager) -> bool) -> bool {
        let changed = f(&mut self.packager.lock().unwrap_or_else(|e| e.into_inner()));
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
        changed
    }

    /// A receiver that sees every change to the window.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn pubs(&self) -> std::sync::MutexGuard<'_, Publishers> {
        self.publishers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches a publisher session; None if refused.
    pub fn attach(&self, session: u64, backup_allowed: bool, now: Instant) -> Option<PublishRole> {
        let mut p = self.pubs();
        match p.active {
            None => {
                p.active = Some(session);
                p.ended_at = None;
                self.attached_ms
                    .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
                self.active_backup.store(backup_allowed, Ordering::Relaxed);
                if self.attaches.fetch_add(1, Ordering::Relaxed) > 0 {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                drop(p);
                self.update(|pk| pk.handle_publisher_back(now));
                Some(PublishRole::Primary)
            }
            Some(_) if backup_allowed => {
                p.standby.push((session, None, None));
                Some(PublishRole::Backup)
            }
            Some(_) => None,
        }
    }

    /// A receiver that turns true when the operator disconnects `session`
    /// (which published with channel key `key_id`, if any).
    pub fn watch_kick(&self, session: u64, key_id: Option<String>) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        self.pubs().kicks.push(Kick {
            session,
            key_id,
            tx,
        });
        rx
    }

    /// Disconnects the attached sessions that published with key `key_id`,
    /// or every one when `None`. Returns how many.
    pub fn kick(&self, key_id: Option<&str>) -> usize {
        let p = self.pubs();
        let mut n = 0;
        for k in &p.kicks {
            if key_id.is_none_or(|id| k.key_id.as_deref() == Some(id)) {
                k.tx.send_replace(true);
                n += 1;
            }
        }
        n
    }

    fn is_active(&self, session: u64) -> bool {
        self.pubs().active == Some(session)
    }

    /// Feeds a frame from `session`; frames of a standby backup are ignored.
    ///
    /// Source video goes on to the encoder, if one runs, with its decode
    /// time on the output timeline (the packager's), so the rungs come back
    /// on the same clock. The payload is shared, not copied.
    pub fn frame(&self, session: u64, now: Instant, frame: Frame) {
        if !self.is_active(session) {
            return;
        }
        let feed = match frame.track {
            TrackKind::Video => self.feed.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            TrackKind::Audio => None,
        };
        let wall = SystemTime::now();
        let copy = feed.as_ref().map(|_| frame.clone());
        let aac = (frame.track == TrackKind::Audio).then(|| (frame.dts_ms, frame.data.clone()));
        let cts_ms = (frame.track == TrackKind::Video).then_some(frame.cts_ms);
        let mut out_ms = None;
        self.update(|p| {
            let changed = p.handle_frame(now, frame);
            out_ms = p.last_video_out_ms();
            changed
        });
        if let (Some(cts), Some(ms)) = (cts_ms, out_ms) {
            let pts = ms.wrapping_add_signed(cts);
            self.captured
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .note(pts, wall);
        }
        if let Some((dts_ms, data)) = aac {
            self.opus_frame(dts_ms, &data);
        }
        if let (Some(tx), Some(mut f), Some(ms)) = (feed, copy, out_ms) {
            f.dts_ms = ms;
            if tx.try_send(f).is_err() {
                self.feed_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn video_config(&self, session: u64, config: VideoConfig) {
        if self.is_active(session) {
            self.update(|p| p.handle_video_config(config));
        } else if let Some(s) = self.pubs().standby.iter_mut().find(|s| s.0 == session) {
            s.1 = Some(config);
        }
    }

    /// When the video frame presented at `pts_ms` (the packager's output
    /// timeline, shared by the source and its rungs) reached the origin.
    pub fn captured_at(&self, pts_ms: u32) -> Option<SystemTime> {
        self.captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .at(pts_ms)
    }

    /// The AAC frame the packager just took, as Opus packets (once per
    /// stream, outside the packager's lock). A frame that does not
    /// transcode costs the Opus rendition that frame only.
    fn opus_frame(&self, dts_ms: u32, aac: &[u8]) {
        let packets = {
            let mut slot = self.opus.lock().unwrap_or_else(|e| e.into_inner());
            let Some(t) = slot.1.as_mut() else { return };
            match t.push(dts_ms, aac) {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(stream = %self.name, error = %e, "audio frame not transcoded to opus");
                    return;
                }
            }
        };
        if packets.is_empty() {
            return;
        }
        self.update(|p| {
            let mut changed = false;
            for packet in packets {
                changed |= p.handle_opus_frame(Frame {
                    track: TrackKind::Audio,
                    dts_ms: packet.dts_ms,
                    cts_ms: 0,
                    keyframe: true,
                    data: packet.data,
                });
            }
            changed
        });
    }

    /// An Opus packet its publisher sent as such (WHIP): the `opus`
    /// rendition takes it as it is, no transcoding. Its first packet
    /// configures the rendition (stereo, as WebRTC's Opus always is, with
    /// the usual encoder lookahead).
    pub fn opus_packet(&self, session: u64, dts_ms: u32, data: Bytes) {
        if !self.is_active(session) || !self.read(|p| p.config().opus) {
            return;
        }
        if self.read(|p| p.opus().is_none()) {
            self.update(|p| p.handle_opus_config(2, WEBRTC_OPUS_PRE_SKIP));
        }
        self.update(|p| {
            p.handle_opus_frame(Frame {
                track: TrackKind::Audio,
                dts_ms,
                cts_ms: 0,
                keyframe: true,
                data,
            })
        });
    }

    /// An AAC configuration: a transcoder for it (or none, said once, when
    /// the decoder does not take it). An encoder that repeats its sequence
    /// header keeps its transcoder.
    fn opus_config(&self, config: &AudioConfig) {
        if !self.read(|p| p.config().opus) {
            return;
        }
        let mut slot = self.opus.lock().unwrap_or_else(|e| e.into_inner());
        if slot.0.as_ref() == Some(config) {
            return;
        }
        let made = match OpusTranscoder::new(config) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(stream = %self.name, error = %e, "no opus rendition for webrtc");
                None
            }
        };
        let head = made.as_ref().map(|t| (t.channels(), t.pre_skip()));
        *slot = (Some(config.clone()), made);
        drop(slot);
        if let Some((channels, pre_skip)) = head {
            self.update(|p| p.handle_opus_config(channels, pre_skip));
        }
    }

    /// The AAC a WHIP publisher's Opus is transcoded to
    /// ([`crate::whip`]): the audio rendition's configuration, and no Opus
    /// made back from it (the publisher's own packets are the `opus`
    /// rendition).
    pub fn audio_from_opus(&self, session: u64, config: AudioConfig) {
        let mut p = self.pubs();
        if !p.own_opus.contains(&session) {
            p.own_opus.push(session);
        }
        if p.active == Some(session) {
            drop(p);
            *self.opus.lock().unwrap_or_else(|e| e.into_inner()) = (None, None);
            self.update(|pk| pk.handle_audio_config(config));
        } else if let Some(s) = p.standby.iter_mut().find(|s| s.0 == session) {
            s.2 = Some(config);
        }
    }

    pub fn audio_config(&self, session: u64, config: AudioConfig) {
        if self.is_active(session) {
            self.opus_config(&config);
            self.update(|p| p.handle_audio_config(config));
        } else if let Some(s) = self.pubs().standby.iter_mut().find(|s| s.0 == session) {
            s.2 = Some(config);
        }
    }

    /// A publisher session ended. If it was the primary, a backup takes over
    /// (after a discontinuity), or the stream waits for a reconnect.
    pub fn detach(&self, session: u64, now: Instant) {
        let mut p = self.pubs();
        p.standby.retain(|s| s.0 != session);
        p.kicks.retain(|k| k.session != session);
        p.own_opus.retain(|s| *s != session);
        if p.active != Some(session) || self.is_stopped() {
            return;
        }
        p.active = None;
        let next = if p.standby.is_empty() {
            None
        } else {
            Some(p.standby.remove(0))
        };
        if let Some((id, _, _)) = &next {
            p.active = Some(*id);
            // Only backup keys stand by.
            self.active_backup.store(true, Ordering::Relaxed);
        }
        let own_opus = next.as_ref().is_some_and(|n| p.own_opus.contains(&n.0));
        drop(p);
        self.update(|pk| pk.handle_publisher_lost(now));
        if let Some((id, video, audio)) = next {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(stream = %self.name, session = id, "backup publisher takes over");
            if own_opus {
                *self.opus.lock().unwrap_or_else(|e| e.into_inner()) = (None, None);
            } else if let Some(a) = &audio {
                self.opus_config(a);
            }
            self.update(|pk| {
                pk.handle_publisher_back(now);
                if let Some(v) = video {
                    pk.handle_video_config(v);
                }
                if let Some(a) = audio {
                    pk.handle_audio_config(a);
                }
                true
            });
        }
    }

    pub fn has_publisher(&self) -> bool {
        self.pubs().active.is_some()
    }

    /// Runs the packager's timeouts (grace period -> ENDLIST).
    pub fn tick(&self, now: Instant) {
        let ended = self.update(|p| p.handle_timeout(now));
        if ended {
            tracing::info!(stream = %self.name, "publisher did not come back; stream ended");
            self.pubs().ended_at = Some(now);
        }
    }

    /// When the current primary publisher attached, in Unix milliseconds.
    pub fn attached_ms(&self) -> u64 {
        self.attached_ms.load(Ordering::Relaxed)
    }

    /// Renumbers the stream's media past another origin's (the stream map
    /// gave this hub the stream); wakes held requests, which now find
    /// their MSN older than the window or still to come.
    pub fn renumber(&self, r: livecdn_cluster::Rebase) -> livecdn_cluster::Position {
        let mut position = livecdn_cluster::Position::default();
        self.update(|p| {
            position = p.rebase(r);
            true
        });
        position
    }

    /// Whether the active publisher came with a backup key.
    pub fn active_is_backup(&self) -> bool {
        self.active_backup.load(Ordering::Relaxed)
    }

    /// How long ago the stream ended, if it has.
    pub fn ended_for(&self, now: Instant) -> Option<Duration> {
        self.pubs()
            .ended_at
            .map(|t| now.saturating_duration_since(t))
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
