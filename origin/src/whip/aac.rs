//! A WHIP publisher's Opus transcoded once to AAC, for the stream's HLS
//! audio rendition, by an ffmpeg process (the encoder the ladder already
//! runs; no AAC encoder on the registry encodes a live stream).
//!
//! The sink decodes Opus in process ([`super::pcm::OpusPcm`]) and hands
//! PCM blocks to a bounded queue; the encoder ([`super::encode`]) takes
//! them as s16le and gives AAC back as FLV. Frame times come from
//! [`super::pcm::Timeline`]. A full queue drops a block and the next one
//! starts a new run, so a slow encoder costs audio, never the video.

use super::encode::{self, Job};
use super::pcm::{OpusPcm, PcmBlock, Timeline, CHANNELS, RATE};
use crate::registry::StreamHub;
use bytes::Bytes;
use livecdn_shared::aac;
use livecdn_shared::flv::{self, AudioTag, FlvTag, TagType};
use livecdn_shared::media::{AudioConfig, Frame, TrackKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Blocks waiting for the encoder: about a second of 20 ms packets.
const QUEUE: usize = 50;
/// The AAC the encoder is asked for: AAC-LC, 48 kHz, stereo.
const ASC: [u8; 2] = [0x11, 0x90];

/// The configuration the encoder makes, announced before its first frame
/// so the stream's audio track exists from the start.
pub fn config() -> AudioConfig {
    let c = aac::audio_config(Bytes::from_static(&ASC));
    c.unwrap_or(AudioConfig {
        asc: Bytes::from_static(&ASC),
        object_type: 2,
        sample_rate: RATE,
        channels: CHANNELS as u8,
    })
}

fn same(a: &AudioConfig, b: &AudioConfig) -> bool {
    (a.object_type, a.sample_rate, a.channels) == (b.object_type, b.sample_rate, b.channels)
}

/// The sink's side: Opus packets in.
#[derive(Debug)]
pub struct AacOut {
    pcm: OpusPcm,
    tx: mpsc::Sender<PcmBlock>,
    /// A block was dropped: the next one starts a new run.
    broken: bool,
    stream: String,
}

/// The encoder's side: PCM in, AAC frames to the hub.
struct AacJob {
    hub: Arc<StreamHub>,
    session: u64,
    /// Hold frames until the stream has video (the packager lets its first
    /// frame decide which track leads, and video must).
    wait_video: bool,
    timeline: Timeline,
    announced: AudioConfig,
}

impl AacOut {
    /// Starts the encoder task for `session`'s audio; `None` (said once
    /// in the log) when Opus cannot be decoded here.
    pub fn start(
        ffmpeg: PathBuf,
        hub: Arc<StreamHub>,
        session: u64,
        wait_video: bool,
    ) -> Option<Self> {
        let stream = hub.name().to_string();
        let pcm = match OpusPcm::new() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "whip audio not transcoded to aac");
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let job = AacJob {
            hub,
            session,
            wait_video,
            timeline: Timeline::default(),
            announced: config(),
        };
        let span = tracing::info_span!("whip_aac", stream = %stream, session);
        tokio::spawn(encode::supervise(ffmpeg, rx, job).instrument(span));
        Some(Self {
            pcm,
            tx,
            broken: false,
            stream,
        })
    }

    /// One Opus packet (see [`OpusPcm::push`]).
    pub fn packet(&mut self, time_us: u64, dts_ms: u32, data: &[u8]) {
        let mut block = match self.pcm.push(time_us, dts_ms, data) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(stream = %self.stream, error = %e, "whip audio packet not decoded");
                return;
            }
        };
        block.contiguous &= !self.broken;
        self.broken = self.tx.try_send(block).is_err();
    }
}

impl Job for AacJob {
    type Item = PcmBlock;

    fn name(&self) -> &'static str {
        "audio"
    }

    fn args(&self) -> Vec<String> {
        let rate = RATE.to_string();
        let channels = CHANNELS.to_string();
        [
            "-f",
            "s16le",
            "-ar",
            &rate,
            "-ac",
            &channels,
            "-i",
            "pipe:0",
            "-c:a",
            "aac",
            "-profile:a",
            "aac_low",
            "-b:a",
            "128k",
            "-ar",
            &rate,
            "-ac",
            &channels,
        ]
        .map(String::from)
        .to_vec()
    }

    fn start(&mut self) -> Vec<u8> {
        self.timeline = Timeline::default();
        Vec::new()
    }

    fn input(&mut self, block: PcmBlock) -> Vec<u8> {
        self.timeline.fed(&block);
        block.to_le_bytes()
    }

    fn output(&mut self, tag: FlvTag) -> Result<(), String> {
        if tag.tag_type != TagType::Audio {
            return Ok(());
        }
        match flv::parse_audio_tag(tag.body).map_err(|e| format!("bad audio tag: {e}"))? {
            AudioTag::AacSequenceHeader(asc) => {
                let c = aac::audio_config(asc).map_err(|e| format!("bad AAC config: {e}"))?;
                if !same(&c, &self.announced) {
                    self.hub.audio_from_opus(self.session, c.clone());
                    self.announced = c;
                }
            }
            AudioTag::AacRaw(data) => {
                let Some(dts_ms) = self.timeline.frame() else {
                    return Ok(());
                };
                if self.wait_video && self.hub.read(|p| p.video_config().is_none()) {
                    return Ok(());
                }
                let frame = Frame {
                    track: TrackKind::Audio,
                    dts_ms,
                    cts_ms: 0,
                    keyframe: true,
                    data,
                };
                self.hub.frame(self.session, Instant::now(), frame);
            }
            AudioTag::Unsupported { codec } => return Err(format!("the encoder sent {codec}")),
        }
        Ok(())
    }
}
