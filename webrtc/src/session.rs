//! One WHEP viewer (or WHIP publisher, see [`crate::ingest`]): a str0m `Rtc` (ICE-lite, DTLS, SRTP, RTCP, NACK
//! retransmission from its send buffer) and what this viewer has been
//! sent. No sockets: the server feeds it datagrams, timeouts and frames,
//! and sends what [`Session::drain`] returns.
//!
//! str0m's rule is kept here in one place: every mutation of the `Rtc` is
//! followed by a full drain of its output before the next one.

use crate::abr::Abr;
use crate::audio::{AudioFrame, OPUS_CLOCK, OPUS_FRAME};
use crate::feed::Frame;
use crate::ingest::{IngestSink, Receiving};
use crate::timeline::Timeline;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Pt,
};
use str0m::net::Transmit;
use str0m::rtp::{AbsCaptureTime, Extension};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

/// A viewer's bandwidth estimate starts at this multiple of the best
/// rendition's bitrate (the viewer starts on it either way). str0m paces
/// at a multiple of its estimate; a low start would hold a joiner's
/// keyframe burst back. A congested path brings the estimate down within
/// a second or two.
const BWE_START: f64 = 4.0;

/// Timeouts already due that one drain feeds back to the `Rtc` at most.
const MAX_DUE_STEPS: usize = 256;

/// How often str0m reports a session's egress stats.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// What happened to a session during a drain, for the server to act on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Happened {
    /// ICE and DTLS are up: media may flow.
    pub connected: bool,
    /// The viewer left (ICE disconnected or the peer closed).
    pub closed: bool,
    /// PLIs and FIRs received.
    pub keyframe_requests: u64,
    /// NACKs received since the last drain (str0m reports them once a
    /// second, as totals per media).
    pub nacks: u64,
    /// A publisher's frames received, and keyframes asked of it.
    pub received: u64,
    pub plis: u64,
}

impl Happened {
    /// Adds what happened in a later drain.
    pub fn merge(&mut self, later: Happened) {
        self.connected |= later.connected;
        self.closed |= later.closed;
        self.keyframe_requests += later.keyframe_requests;
        self.nacks += later.nacks;
        self.received += later.received;
        self.plis += later.plis;
    }
}

/// Why an offer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("malformed SDP offer: {0}")]
    Sdp(String),
    #[error("the offer has no video to receive")]
    NoVideo,
    #[error("the offer has no H.264 with packetization-mode 1")]
    NoCodec,
}

pub struct Session {
    pub id: String,
    pub stream: Arc<str>,
    rtc: Rtc,
    /// The video media the offer asked to receive, and the payload type
    /// chosen for it.
    video_mid: Option<Mid>,
    video: Option<(Mid, Pt)>,
    /// The audio media and its Opus payload type, when the offer has one.
    audio: Option<(Mid, Pt)>,
    audio_timeline: Timeline,
    pub connected: bool,
    /// The keyframe burst went out: live frames may follow.
    pub started: bool,
    timeline: Timeline,
    pub created: Instant,
    /// When the `Rtc` wants its next timeout.
    pub deadline: Instant,
    pub frames_sent: u64,
    pub audio_sent: u64,
    pub keyframe_requests: u64,
    /// NACKs received so far, per media (video, audio).
    nacks: [u64; 2],
    /// A publisher's (WHIP): where its media goes.
    ingest: Option<crate::ingest::Receiving>,
    /// The rendition this viewer gets: `None` is the stream's main feed.
    pub rendition: Option<Arc<str>>,
    /// A move the bandwidth estimate asked for, made at the new
    /// rendition's next keyframe.
    pub pending: Option<Option<Arc<str>>>,
    /// Where the viewer is on the ladder, when the stream has one.
    pub abr: Option<Abr>,
    /// The newest bandwidth estimate not yet acted on (bits/s).
    pub estimate: Option<u64>,
    /// Its `Rtc` estimates bandwidth, and so paces what it sends.
    paced: bool,
}

/// An `Rtc` for `offer` (ICE-lite, H.264 and Opus), its answer and the
/// offer's media, in order.
fn negotiate(
    offer: &str,
    candidates: &[SocketAddr],
    now: Instant,
    vp8: bool,
    bwe: Option<u64>,
) -> Result<(Rtc, String, Vec<Mid>), OfferError> {
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| OfferError::Sdp(e.to_string()))?;
    let mids: Vec<Mid> = offer.media_lines.iter().map(|m| m.mid()).collect();
    let mut rtc = RtcConfig::new()
        // Send-side estimation from the viewer's TWCC feedback, where
        // there is a ladder to move it on.
        .enable_bwe(bwe.map(|bps| Bitrate::bps((bps as f64 * BWE_START) as u64)))
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(true)
        .enable_vp8(vp8)
        .enable_opus(true, false)
        // Off in str0m's standard map; 5 is free there. Players that
        // offer it get each frame's arrival time at the origin.
        .set_extension(5, Extension::AbsoluteCaptureTime)
        // Egress stats (NACKs received) once a second.
        .set_stats_interval(Some(STATS_INTERVAL))
        .build(now);
    for addr in candidates {
        if let Ok(c) = Candidate::host(*addr, "udp") {
            rtc.add_local_candidate(c);
        }
    }
    if let Some(bps) = bwe {
        // After a drop, probe for a little above the best rendition; no
        // padding kept up.
        let desired = (bps as f64 * crate::abr::HEADROOM * 1.2) as u64;
        rtc.bwe()
            .set_bitrate(Bitrate::bps(0), Bitrate::bps(desired));
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| OfferError::Sdp(e.to_string()))?;
    Ok((rtc, answer.to_sdp_string(), mids))
}

impl Session {
    /// Accepts a viewer's `offer` with `candidates` as the host
    /// candidates: the session and its SDP answer. With `abr`, its
    /// bandwidth is estimated and it may be moved on that ladder.
    pub fn accept(
        id: String,
        stream: Arc<str>,
        offer: &str,
        candidates: &[SocketAddr],
        abr: Option<Abr>,
        now: Instant,
    ) -> Result<(Session, String), OfferError> {
        let bwe = abr.as_ref().map(|a| a.current().bitrate);
        let (rtc, answer, mids) = negotiate(offer, candidates, now, false, bwe)?;
        let mut s = Session::new(id, stream, rtc, &mids, Direction::SendOnly, now)?;
        s.paced = abr.is_some();
        s.abr = abr;
        Ok((s, answer))
    }

    /// Accepts a publisher's (WHIP) `offer`: its media go to `sink`.
    pub fn accept_publish(
        id: String,
        stream: Arc<str>,
        offer: &str,
        candidates: &[SocketAddr],
        sink: Box<dyn IngestSink>,
        now: Instant,
    ) -> Result<(Session, String), OfferError> {
        // H.264 is what the packager stores as it comes; VP8 is answered
        // only to an offer without it (it costs the origin a transcode).
        let attempt = |vp8: bool| {
            let (rtc, answer, mids) = negotiate(offer, candidates, now, vp8, None)?;
            let s = Session::new(
                id.clone(),
                stream.clone(),
                rtc,
                &mids,
                Direction::RecvOnly,
                now,
            )?;
            Ok::<_, OfferError>((s, answer))
        };
        let (mut s, answer) = match attempt(false) {
            Err(OfferError::NoCodec) => attempt(true)?,
            other => other?,
        };
        s.ingest = Some(Receiving::new(sink));
        Ok((s, answer))
    }

    /// The session for a negotiated `rtc`: the first video and the first
    /// audio going `direction` (from this side) are where frames go, or
    /// come from; audio is optional.
    fn new(
        id: String,
        stream: Arc<str>,
        rtc: Rtc,
        mids: &[Mid],
        direction: Direction,
        now: Instant,
    ) -> Result<Session, OfferError> {
        let mut s = Session {
            id,
            stream,
            rtc,
            video_mid: None,
            video: None,
            audio: None,
            audio_timeline: Timeline::with_clock(OPUS_CLOCK, OPUS_FRAME),
            connected: false,
            started: false,
            timeline: Timeline::new(),
            created: now,
            deadline: now,
            frames_sent: 0,
            audio_sent: 0,
            keyframe_requests: 0,
            nacks: [0; 2],
            ingest: None,
            rendition: None,
            pending: None,
            abr: None,
            estimate: None,
            paced: false,
        };
        let going = |s: &Session, mid: &Mid, kind| {
            s.rtc
                .media(*mid)
                .is_some_and(|m| m.kind() == kind && m.direction() == direction)
        };
        s.video_mid = mids
            .iter()
            .copied()
            .find(|mid| going(&s, mid, MediaKind::Video));
        let Some(mid) = s.video_mid else {
            return Err(OfferError::NoVideo);
        };
        // A publisher may send VP8 where it was answered (see
        // `accept_publish`); a viewer gets H.264.
        let pt = s
            .pick_h264(mid)
            .or_else(|| {
                let vp8 = |p: &PayloadParams| p.spec().codec == Codec::Vp8;
                (direction == Direction::RecvOnly).then(|| s.pick(mid, vp8))?
            })
            .ok_or(OfferError::NoCodec)?;
        s.video = Some((mid, pt));
        s.audio = mids
            .iter()
            .copied()
            .find(|mid| going(&s, mid, MediaKind::Audio))
            .and_then(|mid| Some((mid, s.pick(mid, |p| p.spec().codec == Codec::Opus)?)));
        Ok(s)
    }

    /// Whether this is a publisher's (WHIP) session.
    pub fn is_publisher(&self) -> bool {
        self.ingest.is_some()
    }

    /// A publisher's frames received so far, and keyframes asked for.
    pub fn received(&self) -> (u64, u64, u64) {
        self.ingest
            .as_ref()
            .map_or((0, 0, 0), |r| (r.frames, r.audio, r.plis))
    }

    /// The first payload type both sides have that `wanted` takes.
    fn pick(&self, mid: Mid, wanted: impl Fn(&PayloadParams) -> bool) -> Option<Pt> {
        let offered = self.rtc.media(mid)?.remote_pts();
        self.rtc
            .codec_config()
            .params()
            .iter()
            .filter(|p| offered.contains(&p.pt()))
            .find(|p| wanted(p))
            .map(|p| p.pt())
    }

    /// Whether the viewer takes audio.
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// The H.264 payload type to send: packetization mode 1 (FU-A, so
    /// frames larger than a packet fit), preferring the offer's first.
    fn pick_h264(&self, mid: Mid) -> Option<Pt> {
        self.pick(mid, |p| {
            p.spec().codec == Codec::H264 && p.spec().format.packetization_mode == Some(1)
        })
    }

    /// Whether this datagram is for this session (its ICE credentials or
    /// its peer's address).
    pub fn accepts(&self, input: &Input) -> bool {
        self.rtc.accepts(input)
    }

    /// Feeds a datagram or a timeout, then drains.
    pub fn handle(&mut self, input: Input, out: &mut Vec<Transmit>) -> Happened {
        if let Err(e) = self.rtc.handle_input(input) {
            // A datagram it cannot use (a stray or malformed packet) is
            // dropped; a session that cannot go on says so in the drain.
            tracing::debug!(session = %self.id, error = %e, "webrtc input refused");
        }
        self.drain(out)
    }

    /// A remote candidate trickled in, then drains.
    pub fn add_remote_candidate(&mut self, c: Candidate, out: &mut Vec<Transmit>) -> Happened {
        self.rtc.add_remote_candidate(c);
        self.drain(out)
    }

    /// Sends one frame (restamped onto this viewer's timeline), then drains.
    pub fn write(&mut self, frame: &Frame, now: Instant, out: &mut Vec<Transmit>) -> Happened {
        let Some((mid, pt)) = self.video else {
            return Happened::default();
        };
        let ts = self.timeline.map(frame.pts);
        if let Some(w) = self.rtc.writer(mid) {
            let captured = AbsCaptureTime {
                capture_time: frame.captured,
                clock_offset: None,
            };
            let w = w.abs_capture_time(captured);
            match w.write(pt, now, MediaTime::from_90khz(ts), frame.data.clone()) {
                Ok(()) => self.frames_sent += 1,
                Err(e) => tracing::debug!(session = %self.id, error = %e, "webrtc write"),
            }
        }
        self.drain(out)
    }

    /// Sends one Opus packet (restamped onto this viewer's audio
    /// timeline), then drains.
    pub fn write_audio(
        &mut self,
        frame: &AudioFrame,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Happened {
        let Some((mid, pt)) = self.audio else {
            return Happened::default();
        };
        let ts = self.audio_timeline.map(frame.pts);
        if let Some(w) = self.rtc.writer(mid) {
            let at = MediaTime::new(ts, Frequency::FORTY_EIGHT_KHZ);
            match w.write(pt, now, at, frame.data.clone()) {
                Ok(()) => self.audio_sent += 1,
                Err(e) => tracing::debug!(session = %self.id, error = %e, "webrtc audio write"),
            }
        }
        self.drain(out)
    }

    /// Polls the `Rtc` until it only has a timeout left.
    pub fn drain(&mut self, out: &mut Vec<Transmit>) -> Happened {
        let mut h = Happened::default();
        let before = self.received();
        let mut due = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    // The pacer (with an estimate) lets one packet out at a
                    // time and asks for a timeout for the next: what is due
                    // already goes now, with the rest of the drain, so a
                    // frame's packets still leave together.
                    let now = Instant::now();
                    if self.paced && t <= now && due < MAX_DUE_STEPS {
                        due += 1;
                        if self.rtc.handle_input(Input::Timeout(now)).is_ok() {
                            continue;
                        }
                    }
                    self.deadline = t;
                    break;
                }
                Ok(Output::Transmit(t)) => out.push(t),
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        self.connected = true;
                        h.connected = true;
                    }
                    Event::MediaData(d) => self.received_media(&d),
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                    | Event::Closed => h.closed = true,
                    Event::KeyframeRequest(_) => {
                        self.keyframe_requests += 1;
                        h.keyframe_requests += 1;
                    }
                    Event::EgressBitrateEstimate(
                        BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
                    ) => self.estimate = Some(estimate.as_u64()),
                    Event::MediaEgressStats(st) => {
                        let i = usize::from(self.audio.is_some_and(|(mid, _)| mid == st.mid));
                        h.nacks += st.nacks.saturating_sub(self.nacks[i]);
                        self.nacks[i] = self.nacks[i].max(st.nacks);
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::debug!(session = %self.id, error = %e, "webrtc session failed");
                    h.closed = true;
                    break;
                }
            }
        }
        if !self.rtc.is_alive() {
            h.closed = true;
        }
        let after = self.received();
        h.received = (after.0 + after.1).saturating_sub(before.0 + before.1);
        h.plis = after.2.saturating_sub(before.2);
        h
    }

    /// A publisher's frame: to its sink, and a PLI back when one is due.
    fn received_media(&mut self, d: &MediaData) {
        let Some(r) = self.ingest.as_mut() else {
            return;
        };
        let video = self.video.is_some_and(|(mid, _)| mid == d.mid);
        if r.media(d, video, Instant::now()) {
            if let Some(mut w) = self.rtc.writer(d.mid) {
                if let Err(e) = w.request_keyframe(None, KeyframeRequestKind::Pli) {
                    tracing::debug!(session = %self.id, error = %e, "whip keyframe request");
                }
            }
        }
    }

    /// Ends the session (DELETE or shutdown): the peer is told by DTLS
    /// close where it can still be reached.
    pub fn close(&mut self, out: &mut Vec<Transmit>) {
        self.rtc.disconnect();
        self.drain(out);
    }
}
