//! A WHEP viewer without a browser: str0m on the active side, counting
//! the frames it receives. Tests use it to check the server end to end on
//! real sockets; the load harness can run many.
//!
//! [`Viewer::offer`] makes the SDP offer (video and audio, receive only);
//! after the server's answer is given to [`Viewer::answer`],
//! [`Viewer::run`] drives the connection on its own UDP socket.

use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

/// Frames this soon after connecting are the joiner's burst, older than
/// live on purpose: no delivery delay is taken from them.
const BURST: Duration = Duration::from_secs(2);
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// What a viewer has seen so far, readable while it runs.
#[derive(Debug, Default)]
pub struct Seen {
    pub connected: AtomicBool,
    pub frames: AtomicU64,
    /// Audio packets (Opus) received.
    pub audio: AtomicU64,
    pub keyframes: AtomicU64,
    /// Milliseconds from connecting to the first whole keyframe.
    pub first_keyframe_ms: AtomicU64,
    /// The first frame received, as depacketized (Annex B).
    pub first: Mutex<Option<Arc<[u8]>>>,
    pub closed: AtomicBool,
    /// Gaps between frames a viewer would see as a freeze (the W3C
    /// definition: longer than three mean frame intervals and than the
    /// mean plus 150 ms).
    pub freezes: AtomicU64,
    /// Longest gap between two frames, milliseconds.
    pub max_gap_ms: AtomicU64,
    /// RTP packets dropped on purpose ([`Viewer::lose_every`], or the
    /// queue of [`Viewer::limit_rate`] overflowing).
    pub lost: AtomicU64,
    /// The picture height of the newest keyframe (from its SPS).
    pub height: AtomicU64,
    /// Video frames after a gap: frames before them never completed (a
    /// lost packet that was not resent in time).
    pub broken: AtomicU64,
    /// Microseconds from a frame's arrival at the origin (its
    /// abs-capture-time) to its last packet here, for frames after the
    /// joiner's burst: the server's share of glass-to-glass, without a
    /// decoder. Meaningful where server and viewer share a clock.
    pub delivery_us: Mutex<Option<Histogram<u64>>>,
}

impl Seen {
    fn delivered(&self, captured: SystemTime) {
        let Ok(d) = SystemTime::now().duration_since(captured) else {
            return;
        };
        let Ok(mut h) = self.delivery_us.lock() else {
            return;
        };
        if h.is_none() {
            *h = Histogram::new_with_bounds(1, 60_000_000, 2).ok();
        }
        if let Some(h) = h.as_mut() {
            h.saturating_record(d.as_micros() as u64);
        }
    }
}

/// The running frame interval and the freeze rule.
#[derive(Debug, Default)]
struct Gaps {
    last: Option<Instant>,
    mean_ms: f64,
    frames: u64,
}

impl Gaps {
    /// A frame arrived at `now`: whether the gap before it was a freeze,
    /// and the gap.
    fn frame(&mut self, now: Instant) -> (bool, u64) {
        let Some(last) = self.last.replace(now) else {
            return (false, 0);
        };
        let gap = now.duration_since(last).as_secs_f64() * 1000.0;
        self.frames += 1;
        let freeze = self.frames > 5 && gap > (3.0 * self.mean_ms).max(self.mean_ms + 150.0);
        // Frames that arrive back to back (a keyframe burst) say nothing
        // about the frame rate.
        if gap > 1.0 {
            self.mean_ms = if self.mean_ms > 0.0 {
                self.mean_ms * 0.9 + gap * 0.1
            } else {
                gap
            };
        }
        (freeze, gap as u64)
    }
}

pub struct Viewer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    /// Drop every nth RTP packet received (0: none), to make the viewer
    /// ask for them again.
    lose_every: u64,
    /// The link's rate in bits/s (0: unlimited), see [`Viewer::limit_rate`].
    rate: Arc<AtomicU64>,
    pub seen: Arc<Seen>,
}

/// A link of limited rate in front of the viewer: RTP packets queue and
/// leave at the rate, or are lost when the queue holds more than
/// [`LINK_QUEUE`]. What the congestion controller at the other end sees
/// as a narrow path: growing delay, then loss.
#[derive(Debug, Default)]
struct Link {
    queue: std::collections::VecDeque<(Instant, Vec<u8>, SocketAddr)>,
    /// When the last queued packet leaves.
    busy_until: Option<Instant>,
}

/// The most a limited link queues.
const LINK_QUEUE: Duration = Duration::from_millis(250);

impl Link {
    /// Queues `d` on a link of `rate` bits/s at `now`; false if lost.
    fn offer(&mut self, d: &[u8], source: SocketAddr, rate: u64, now: Instant) -> bool {
        let start = self.busy_until.filter(|t| *t > now).unwrap_or(now);
        if start.duration_since(now) > LINK_QUEUE {
            return false;
        }
        let leaves = start + Duration::from_secs_f64(d.len() as f64 * 8.0 / rate as f64);
        self.busy_until = Some(leaves);
        self.queue.push_back((leaves, d.to_vec(), source));
        true
    }

    fn next(&self) -> Option<Instant> {
        self.queue.front().map(|q| q.0)
    }
}

/// Why a viewer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("webrtc: {0}")]
    Rtc(String),
}

impl Viewer {
    /// A viewer on a new socket at `ip`, and its SDP offer.
    pub async fn offer(ip: std::net::IpAddr) -> Result<(Viewer, String), ViewerError> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .set_extension(5, Extension::AbsoluteCaptureTime)
            .build(Instant::now());
        let c = Candidate::host(local, "udp").map_err(|e| ViewerError::Rtc(e.to_string()))?;
        rtc.add_local_candidate(c);
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| ViewerError::Rtc("no offer".into()))?;
        let v = Viewer {
            rtc,
            socket,
            local,
            pending: Some(pending),
            lose_every: 0,
            rate: Arc::new(AtomicU64::new(0)),
            seen: Arc::new(Seen::default()),
        };
        Ok((v, offer.to_sdp_string()))
    }

    /// Loses every `n`th RTP packet that arrives (counted in
    /// [`Seen::lost`]) before str0m sees it: a lossy path on loopback, so
    /// the viewer's NACKs and the server's resends can be seen.
    pub fn lose_every(&mut self, n: u64) {
        self.lose_every = n;
    }

    /// The viewer's link: RTP from the server arrives at most at this many
    /// bits/s (0: unlimited), changeable while it runs.
    pub fn limit_rate(&self) -> Arc<AtomicU64> {
        self.rate.clone()
    }

    /// The server's SDP answer.
    pub fn answer(&mut self, sdp: &str) -> Result<(), ViewerError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| ViewerError::Rtc(e.to_string()))?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| ViewerError::Rtc("answered twice".into()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| ViewerError::Rtc(e.to_string()))
    }

    /// Drives the connection until `stop`, the peer leaving, or `limit`.
    pub async fn run(mut self, stop: CancellationToken, limit: Duration) {
        let end = Instant::now() + limit;
        let mut connected_at = None;
        let mut gaps = Gaps::default();
        let mut buf = vec![0u8; 2048];
        let mut rtp = 0u64;
        let mut link = Link::default();
        loop {
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            connected_at = Some(Instant::now());
                            self.seen.connected.store(true, Ordering::Relaxed);
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            self.seen.closed.store(true, Ordering::Relaxed);
                            return;
                        }
                        Event::MediaData(d) if d.params.spec().codec.is_video() => {
                            let (freeze, gap) = gaps.frame(Instant::now());
                            if freeze {
                                self.seen.freezes.fetch_add(1, Ordering::Relaxed);
                            }
                            self.seen.max_gap_ms.fetch_max(gap, Ordering::Relaxed);
                            if let (Some(at), Some(c)) = (connected_at, d.ext_vals.abs_capture_time)
                            {
                                if at.elapsed() > BURST {
                                    self.seen.delivered(c.capture_time);
                                }
                            }
                            let n = self.seen.frames.fetch_add(1, Ordering::Relaxed);
                            if n > 0 && !d.contiguous {
                                self.seen.broken.fetch_add(1, Ordering::Relaxed);
                            }
                            if n == 0 {
                                if let Ok(mut f) = self.seen.first.lock() {
                                    *f = Some(d.data.clone());
                                }
                            }
                            if d.is_keyframe() {
                                if let Some(h) = picture_height(&d.data) {
                                    self.seen.height.store(h, Ordering::Relaxed);
                                }
                                let k = self.seen.keyframes.fetch_add(1, Ordering::Relaxed);
                                if let (0, Some(at)) = (k, connected_at) {
                                    let ms = at.elapsed().as_millis() as u64;
                                    self.seen.first_keyframe_ms.store(ms, Ordering::Relaxed);
                                }
                            }
                        }
                        Event::MediaData(d) if d.params.spec().codec.is_audio() => {
                            self.seen.audio.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    },
                    Err(_) => {
                        self.seen.closed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            };
            let now = Instant::now();
            if now >= end || !self.rtc.is_alive() {
                return;
            }
            let wait = deadline.max(now).min(end);
            let leaves = link.next().unwrap_or(end).max(now);
            let released;
            let input = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, _)) if self.lose(&buf[..n], &mut rtp) => continue,
                    Ok((n, source)) => {
                        let rate = self.rate.load(Ordering::Relaxed);
                        if rate > 0 && is_rtp(&buf[..n]) {
                            if !link.offer(&buf[..n], source, rate, Instant::now()) {
                                self.seen.lost.fetch_add(1, Ordering::Relaxed);
                            }
                            continue;
                        }
                        match buf[..n].try_into() {
                            Ok(contents) => Input::Receive(Instant::now(), Receive {
                                proto: Protocol::Udp,
                                source,
                                destination: self.local,
                                contents,
                            }),
                            Err(_) => continue,
                        }
                    }
                    Err(_) => continue,
                },
                _ = tokio::time::sleep_until(leaves.into()), if link.next().is_some() => {
                    let Some((at, data, source)) = link.queue.pop_front() else { continue };
                    released = data;
                    match released.as_slice().try_into() {
                        Ok(contents) => Input::Receive(at, Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        }),
                        Err(_) => continue,
                    }
                }
                _ = tokio::time::sleep_until(wait.into()) => Input::Timeout(Instant::now()),
            };
            if self.rtc.handle_input(input).is_err() {
                self.seen.closed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Whether a datagram is RTP (RFC 7983: first byte 128-191; RFC 5761:
/// RTCP's packet types are 192-223 in the second byte).
fn is_rtp(d: &[u8]) -> bool {
    d.len() > 12 && (128..192).contains(&d[0]) && !(192..224).contains(&d[1])
}

/// The picture height a keyframe's SPS gives.
fn picture_height(au: &[u8]) -> Option<u64> {
    let split = livecdn_shared::avc::split_access_unit(&bytes::Bytes::copy_from_slice(au)).ok()?;
    let record = livecdn_shared::avc::decoder_config_record(&split.sps?, &split.pps?).ok()?;
    let config = livecdn_shared::avc::video_config(record).ok()?;
    Some(u64::from(config.height))
}

impl Viewer {
    /// Whether to lose this datagram: every `lose_every`th RTP packet
    /// (RTCP is kept).
    fn lose(&self, d: &[u8], rtp: &mut u64) -> bool {
        if self.lose_every == 0 || !is_rtp(d) {
            return false;
        }
        *rtp += 1;
        let lose = (*rtp).is_multiple_of(self.lose_every);
        if lose {
            self.seen.lost.fetch_add(1, Ordering::Relaxed);
        }
        lose
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_gap_between_steady_frames_is_a_freeze() {
        let mut g = Gaps::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut freezes = 0;
        // A burst, then 30 fps, then a 400 ms hole, then 30 fps again.
        for ms in [0, 0, 0, 1, 34, 67, 100, 134, 167, 200, 600, 634, 667] {
            freezes += u64::from(g.frame(at(ms)).0);
        }
        assert_eq!(freezes, 1);
    }
}
