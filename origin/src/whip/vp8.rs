//! A VP8 publisher's video transcoded to H.264, once, for everything the
//! stream serves (LL-HLS, the ladder, recordings, WHEP): fMP4 HLS and
//! Safari play H.264, and the packager stores it.
//!
//! Frames go to the encoder ([`super::encode`]) as IVF with their times in
//! milliseconds on the stream's clock (`-copyts`), and x264 (zerolatency,
//! no B-frames) gives H.264 back as FLV at those same times, so no
//! timeline needs keeping here. x264 makes a keyframe at every segment
//! target on the stream's clock, where the packager cuts, so the publisher
//! is asked for one only to start, after a loss, or for a new encoder.

use super::encode::{self, Job};
use crate::registry::StreamHub;
use bytes::Bytes;
use livecdn_shared::avc;
use livecdn_shared::flv::{self, FlvTag, TagType, VideoTag};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Frames waiting for the encoder: two seconds at 30 fps.
const QUEUE: usize = 60;
/// IVF's file header and frame header sizes.
const IVF_HEADER: usize = 32;

/// One frame for the encoder.
#[derive(Debug)]
pub struct Vp8Frame {
    dts_ms: u32,
    data: Bytes,
}

/// The sink's side: VP8 frames in.
#[derive(Debug)]
pub struct Vp8Out {
    tx: mpsc::Sender<Vp8Frame>,
    /// The encoder needs a keyframe: it (re)started, or a frame was lost.
    want_key: Arc<AtomicBool>,
}

impl Vp8Out {
    pub fn start(ffmpeg: PathBuf, hub: Arc<StreamHub>, session: u64) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let want_key = Arc::new(AtomicBool::new(true));
        let segment = hub.read(|p| p.config().segment_target);
        let job = Vp8Job {
            hub: hub.clone(),
            session,
            segment,
            size: (0, 0),
            header_sent: false,
            want_key: want_key.clone(),
        };
        let span = tracing::info_span!("whip_vp8", stream = %hub.name(), session);
        tokio::spawn(encode::supervise(ffmpeg, rx, job).instrument(span));
        Self { tx, want_key }
    }

    /// One frame at `dts_ms`; whether to ask the publisher for a keyframe.
    /// Until one comes after a loss, the frames in between are dropped (a
    /// decoder would smear them).
    pub fn frame(&mut self, dts_ms: u32, data: Bytes, keyframe: bool) -> bool {
        if keyframe {
            self.want_key.store(false, Ordering::Relaxed);
        } else if self.want_key.load(Ordering::Relaxed) {
            return true;
        }
        if self.tx.try_send(Vp8Frame { dts_ms, data }).is_err() {
            self.want_key.store(true, Ordering::Relaxed);
        }
        self.want_key.load(Ordering::Relaxed)
    }
}

/// Width and height from a VP8 keyframe's header (RFC 6386 §9.1).
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let h = frame.get(..10)?;
    let key = h[0] & 1 == 0;
    if !key || h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([h[6], h[7]]) & 0x3fff;
    let ht = u16::from_le_bytes([h[8], h[9]]) & 0x3fff;
    Some((w, ht))
}

/// IVF's file header for VP8 with a millisecond timebase.
fn ivf_header(width: u16, height: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(IVF_HEADER);
    h.extend_from_slice(b"DKIF");
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&(IVF_HEADER as u16).to_le_bytes());
    h.extend_from_slice(b"VP80");
    h.extend_from_slice(&width.to_le_bytes());
    h.extend_from_slice(&height.to_le_bytes());
    h.extend_from_slice(&1000u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h
}

/// The encoder's side: IVF in, H.264 to the hub.
struct Vp8Job {
    hub: Arc<StreamHub>,
    session: u64,
    segment: Duration,
    /// The newest keyframe's size, for the IVF header.
    size: (u16, u16),
    header_sent: bool,
    want_key: Arc<AtomicBool>,
}

impl Job for Vp8Job {
    type Item = Vp8Frame;

    fn name(&self) -> &'static str {
        "video"
    }

    fn args(&self) -> Vec<String> {
        let keys = format!(
            "expr:gte(t,n_forced*{:.3})",
            self.segment.as_secs_f64().max(0.1)
        );
        [
            "-f",
            "ivf",
            "-probesize",
            "32",
            "-analyzeduration",
            "0",
            "-i",
            "pipe:0",
            "-copyts",
            "-fps_mode",
            "passthrough",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-bf",
            "0",
            "-g",
            "600",
            "-sc_threshold",
            "0",
            "-force_key_frames",
            &keys,
            "-crf",
            "21",
            "-maxrate",
            "8M",
            "-bufsize",
            "8M",
        ]
        .map(String::from)
        .to_vec()
    }

    fn start(&mut self) -> Vec<u8> {
        // The file header goes with the first frame (which gives the size);
        // a new encoder starts at a keyframe.
        self.header_sent = false;
        self.want_key.store(true, Ordering::Relaxed);
        Vec::new()
    }

    fn input(&mut self, frame: Vp8Frame) -> Vec<u8> {
        if let Some(size) = keyframe_size(&frame.data) {
            self.size = size;
        }
        let mut out = Vec::with_capacity(IVF_HEADER + 12 + frame.data.len());
        if !self.header_sent {
            out.extend_from_slice(&ivf_header(self.size.0, self.size.1));
            self.header_sent = true;
        }
        out.extend_from_slice(&(frame.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&u64::from(frame.dts_ms).to_le_bytes());
        out.extend_from_slice(&frame.data);
        out
    }

    fn output(&mut self, tag: FlvTag) -> Result<(), String> {
        if tag.tag_type != TagType::Video {
            return Ok(());
        }
        let parsed = flv::parse_video_tag(tag.body).map_err(|e| format!("bad video tag: {e}"))?;
        match parsed {
            VideoTag::AvcSequenceHeader(record) => {
                let config = avc::video_config(record)
                    .map_err(|e| format!("bad decoder configuration: {e}"))?;
                tracing::info!(
                    width = config.width,
                    height = config.height,
                    "whip vp8 transcoded to h264"
                );
                self.hub.video_config(self.session, config);
            }
            other => {
                if let Some(frame) = flv::video_frame(tag.timestamp_ms, other) {
                    self.hub.frame(self.session, Instant::now(), frame);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn a_keyframe_gives_its_size_and_a_delta_frame_none() {
        // Frame tag (key, version 0, shown), start code, 640x360.
        let key = [
            0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xff,
        ];
        assert_eq!(keyframe_size(&key), Some((640, 360)));
        let mut delta = key;
        delta[0] |= 1;
        assert_eq!(keyframe_size(&delta), None);
        assert_eq!(keyframe_size(&key[..5]), None);
        let h = ivf_header(640, 360);
        assert_eq!(h.len(), IVF_HEADER);
        assert_eq!(&h[..4], b"DKIF");
        assert_eq!(&h[12..16], &[0x80, 0x02, 0x68, 0x01]);
    }
}
