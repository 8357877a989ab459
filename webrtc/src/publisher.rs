//! A WHIP publisher on str0m, for tests and the harness: it sends H.264
//! access units (Annex B, as an encoder gives them) at a fixed frame rate,
//! and 20 ms Opus packets of silence beside them. Its frames start with a
//! keyframe; it goes back to it at the end and whenever the server asks
//! for a keyframe (PLI, FIR), as an encoder answers with an IDR, and
//! counts those requests.

use crate::ingest::VideoCodec;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// One Opus packet: 20 ms of silence (a CELT frame, TOC 0xF8).
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];
const OPUS_FRAME: Duration = Duration::from_millis(20);

/// What a publisher has done so far, readable while it runs.
#[derive(Debug, Default)]
pub struct Sent {
    pub connected: AtomicBool,
    pub frames: AtomicU64,
    pub audio: AtomicU64,
    /// Keyframe requests the server sent.
    pub keyframe_requests: AtomicU64,
    pub closed: AtomicBool,
}

pub struct Publisher {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    video: Mid,
    audio: Mid,
    /// The video codec offered: H.264 or VP8.
    codec: Codec,
    /// 20 ms Opus packets sent in a loop; silence when empty.
    sound: Vec<Vec<u8>>,
    pub sent: Arc<Sent>,
}

/// Why a publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("webrtc: {0}")]
    Rtc(String),
}

impl Publisher {
    /// A publisher on a new socket at `ip`, and its SDP offer (H.264 and
    /// Opus, send only).
    pub async fn offer(ip: std::net::IpAddr) -> Result<(Publisher, String), PublisherError> {
        Self::offer_video(ip, VideoCodec::H264).await
    }

    /// The same, offering `video` (H.264 or VP8) for video.
    pub async fn offer_video(
        ip: std::net::IpAddr,
        video: VideoCodec,
    ) -> Result<(Publisher, String), PublisherError> {
        let codec = match video {
            VideoCodec::H264 => Codec::H264,
            VideoCodec::Vp8 => Codec::Vp8,
        };
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(codec == Codec::H264)
            .enable_vp8(codec == Codec::Vp8)
            .enable_opus(true, false)
            .build(Instant::now());
        let c = Candidate::host(local, "udp").map_err(|e| PublisherError::Rtc(e.to_string()))?;
        rtc.add_local_candidate(c);
        let mut api = rtc.sdp_api();
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| PublisherError::Rtc("no offer".into()))?;
        let p = Publisher {
            rtc,
            socket,
            local,
            pending: Some(pending),
            video,
            audio,
            codec,
            sound: Vec::new(),
            sent: Arc::new(Sent::default()),
        };
        Ok((p, offer.to_sdp_string()))
    }

    /// The server's SDP answer.
    pub fn answer(&mut self, sdp: &str) -> Result<(), PublisherError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| PublisherError::Rtc(e.to_string()))?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| PublisherError::Rtc("answered twice".into()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| PublisherError::Rtc(e.to_string()))
    }

    /// Sends these 20 ms Opus packets, in a loop, instead of silence.
    pub fn with_sound(&mut self, packets: Vec<Vec<u8>>) {
        self.sound = packets;
    }

    /// The payload type of `codec` the server accepted for `mid`.
    fn pt(&self, mid: Mid, codec: Codec) -> Option<Pt> {
        let remote = self.rtc.media(mid)?.remote_pts();
        self.rtc
            .codec_config()
            .params()
            .iter()
            .filter(|p| remote.contains(&p.pt()))
            .find(|p| {
                p.spec().codec == codec
                    && (codec != Codec::H264 || p.spec().format.packetization_mode == Some(1))
            })
            .map(|p| p.pt())
    }

    /// Sends `frames` (Annex B access units) at `fps`, looping, with Opus
    /// beside them, until `stop`, the server leaving, or `limit`.
    pub async fn run(
        mut self,
        frames: Vec<Arc<[u8]>>,
        fps: u32,
        stop: CancellationToken,
        limit: Duration,
    ) {
        let end = Instant::now() + limit;
        let interval = Duration::from_secs(1) / fps.max(1);
        let mut next_video = Instant::now();
        let mut next_audio = Instant::now();
        let (mut n, mut audio_n, mut pos) = (0u64, 0u64, 0usize);
        let mut buf = vec![0u8; 2048];
        loop {
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            self.sent.connected.store(true, Ordering::Relaxed);
                            next_video = Instant::now();
                            next_audio = Instant::now();
                        }
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                        | Event::Closed => {
                            self.sent.closed.store(true, Ordering::Relaxed);
                            return;
                        }
                        Event::KeyframeRequest(_) => {
                            self.sent.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                            pos = 0;
                        }
                        _ => {}
                    },
                    Err(_) => {
                        self.sent.closed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            };
            let now = Instant::now();
            if now >= end || !self.rtc.is_alive() {
                return;
            }
            if self.sent.connected.load(Ordering::Relaxed) && !frames.is_empty() {
                if now >= next_video {
                    if let (Some(pt), Some(w)) =
                        (self.pt(self.video, self.codec), self.rtc.writer(self.video))
                    {
                        if pos >= frames.len() {
                            pos = 0;
                        }
                        let data = frames[pos].clone();
                        let at = MediaTime::from_90khz(n * 90_000 / u64::from(fps.max(1)));
                        if w.write(pt, now, at, data).is_ok() {
                            self.sent.frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    n += 1;
                    pos += 1;
                    next_video += interval;
                    continue;
                }
                if now >= next_audio {
                    if let (Some(pt), Some(w)) = (
                        self.pt(self.audio, Codec::Opus),
                        self.rtc.writer(self.audio),
                    ) {
                        let at = MediaTime::new(audio_n * 960, Frequency::FORTY_EIGHT_KHZ);
                        let packet = match self.sound.len() {
                            0 => OPUS_SILENCE.to_vec(),
                            n => self.sound[(audio_n % n as u64) as usize].clone(),
                        };
                        if w.write(pt, now, at, packet).is_ok() {
                            self.sent.audio.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    audio_n += 1;
                    next_audio += OPUS_FRAME;
                    continue;
                }
            }
            let mut wait = deadline.max(now).min(end);
            if self.sent.connected.load(Ordering::Relaxed) {
                wait = wait.min(next_video).min(next_audio);
            }
            let input = tokio::select! {
                _ = stop.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((len, source)) => match buf[..len].try_into() {
                        Ok(contents) => Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        }),
                        Err(_) => continue,
                    },
                    Err(_) => continue,
                },
                _ = tokio::time::sleep_until(wait.into()) => Input::Timeout(Instant::now()),
            };
            if self.rtc.handle_input(input).is_err() {
                self.sent.closed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// VP8 frames from an IVF file (ffmpeg's `-c:v libvpx -f ivf`): what
/// [`Publisher::run`] sends when offering VP8.
pub fn ivf_frames(file: &[u8]) -> Vec<Arc<[u8]>> {
    let header = file
        .get(6..8)
        .map_or(32, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let mut frames = Vec::new();
    let mut rest = file.get(header..).unwrap_or_default();
    while let Some((head, tail)) = rest.split_first_chunk::<12>() {
        let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(frame) = tail.get(..size) else { break };
        frames.push(Arc::from(frame));
        rest = &tail[size..];
    }
    frames
}

/// The access units of an Annex B H.264 stream (a file ffmpeg wrote with
/// `-f h264`), each from its access unit delimiter or first slice on:
/// what [`Publisher::run`] sends. Needs AUD NAL units (x264's `aud=1`)
/// to tell frames apart.
pub fn access_units(stream: &[u8]) -> Vec<Arc<[u8]>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 4 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] && stream[i + 3] & 0x1f == 9 {
            let at = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push(at);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts.push(stream.len());
    starts
        .windows(2)
        .map(|w| Arc::from(&stream[w[0]..w[1]]))
        .collect()
}
