//! The media model that flows from ingest to the packager.
//!
//! Frames carry `Bytes`, never `Vec<u8>`: the payload handed over by the RTMP
//! layer is sliced, not copied, all the way into the CMAF chunks that viewers
//! receive, so fan-out to many renditions and viewers is a reference count.

use bytes::Bytes;

/// Which elementary stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }
}

/// One access unit as it arrived in FLV: timestamps in milliseconds, exactly as
/// the FLV tag carried them (32-bit, may wrap; the packager unwraps them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub track: TrackKind,
    /// FLV decode timestamp in milliseconds (the tag timestamp, 32 bits).
    pub dts_ms: u32,
    /// Composition time offset in milliseconds (pts = dts + cts). Signed: FLV
    /// carries a signed 24-bit value, and x264 B-frames need it.
    pub cts_ms: i32,
    /// For video: the frame is an IDR (random access point). Always true for audio.
    pub keyframe: bool,
    /// Video: AVCC (length-prefixed NAL units). Audio: one raw AAC frame.
    pub data: Bytes,
}

/// Decoder configuration of an H.264 video track, from the FLV sequence header.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    /// The AVCDecoderConfigurationRecord exactly as received; it becomes `avcC`.
    pub avcc: Bytes,
    pub width: u32,
    pub height: u32,
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// Frame rate from the SPS VUI timing info when present.
    pub frame_rate: Option<f64>,
}

impl VideoConfig {
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Decoder configuration of an AAC audio track, from the FLV sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// The AudioSpecificConfig exactly as received; it goes into `esds`.
    pub asc: Bytes,
    /// MPEG-4 audio object type (2 = AAC-LC, 5 = HE-AAC, ...).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AudioConfig {
    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Samples per AAC frame (1024 for AAC-LC; 2048 output samples for SBR
    /// would be signalled by the object type, but the access unit still
    /// covers 1024 core samples at the core rate).
    pub fn samples_per_frame(&self) -> u32 {
        1024
    }
}
