//! The CMAF header (`ftyp` + `moov`): the HLS `EXT-X-MAP` every part refers to.
//!
//! One track per header, always `track_ID` 1: LL-HLS renditions are separate
//! playlists, so audio and video are separate CMAF tracks with separate
//! headers, and the fragments in [`super::fragment`] can hard-code the ID.
//!
//! The header describes no samples (empty `stts`/`stsc`/`stsz`/`stco`, zero
//! durations); everything about samples lives in the fragments, and `mvex`
//! announces that fragments follow.

use bytes::Bytes;

use super::boxes::BoxWriter;
use super::sample_entry::{
    write_audio_sample_entry, write_opus_sample_entry, write_video_sample_entry,
};

/// The only track in every CMAF header and fragment this module writes.
pub const TRACK_ID: u32 = 1;

/// What the header needs to know about one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackInit {
    Video(VideoInit),
    Audio(AudioInit),
    Opus(OpusInit),
}

/// An H.264 track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInit {
    /// Ticks per second of every timestamp in this track's fragments
    /// (90 000 is customary for video).
    pub timescale: u32,
    /// Display size in pixels, as parsed from the SPS.
    pub width: u32,
    pub height: u32,
    /// The AVCDecoderConfigurationRecord, copied verbatim into `avcC` so the
    /// decoder sees exactly the SPS/PPS the encoder sent.
    pub avcc: Bytes,
}

/// An AAC track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInit {
    /// Ticks per second; using the sample rate makes every AAC frame exactly
    /// 1024 ticks long, with no rounding drift.
    pub timescale: u32,
    pub sample_rate: u32,
    pub channels: u8,
    /// The AudioSpecificConfig, copied verbatim into `esds`.
    pub asc: Bytes,
}

/// An Opus track (ISO/IEC 23003-5 "Encapsulation of Opus in ISOBMFF"):
/// always on a 48 kHz clock, as Opus decodes at 48 kHz whatever the input
/// rate was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusInit {
    /// 1 or 2 (channel mapping family 0).
    pub channels: u8,
    /// Samples (at 48 kHz) the decoder drops at the start: the encoder's
    /// lookahead.
    pub pre_skip: u16,
}

/// Opus's clock, whatever the input rate.
pub const OPUS_TIMESCALE: u32 = 48_000;

impl TrackInit {
    fn timescale(&self) -> u32 {
        match self {
            TrackInit::Video(v) => v.timescale,
            TrackInit::Audio(a) => a.timescale,
            TrackInit::Opus(_) => OPUS_TIMESCALE,
        }
    }
}

/// Brands: `iso6` because fragments use `tfdt` v1 and signed `trun` v1
/// composition offsets; `cmfc` declares a CMAF track; `isom`/`mp41` keep
/// older demuxers willing to look inside.
const MAJOR_BRAND: &[u8; 4] = b"iso6";
const COMPATIBLE_BRANDS: [&[u8; 4]; 4] = [b"iso6", b"cmfc", b"isom", b"mp41"];

/// The 3x3 identity transform in 16.16/2.30 fixed point (`mvhd`, `tkhd`).
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// ISO-639-2/T `und` packed as three 5-bit letters (`mdhd.language`).
const LANGUAGE_UND: u16 =
    ((b'u' - 0x60) as u16) << 10 | ((b'n' - 0x60) as u16) << 5 | (b'd' - 0x60) as u16;

/// Builds the single-track CMAF header for `track`.
///
/// Pure function of its input: the same track always yields the same bytes,
/// so an origin restart or a second origin produces an identical `EXT-X-MAP`
/// and caches stay valid. Creation/modification times are therefore 0.
pub fn init_segment(track: &TrackInit) -> Bytes {
    let mut w = BoxWriter::with_capacity(768 + extra_config_len(track));
    w.write_box(b"ftyp", |w| {
        w.bytes(MAJOR_BRAND);
        w.u32(0); // minor_version
        for brand in COMPATIBLE_BRANDS {
            w.bytes(brand);
        }
    });
    w.write_box(b"moov", |w| {
        write_mvhd(w, track.timescale());
        w.write_box(b"trak", |w| write_trak(w, track));
        w.write_box(b"mvex", |w| {
            w.write_full_box(b"trex", 0, 0, |w| {
                w.u32(TRACK_ID);
                w.u32(1); // default_sample_description_index
                w.u32(0); // default_sample_duration: every trun sets it
                w.u32(0); // default_sample_size: every trun sets it
                w.u32(0); // default_sample_flags: every trun sets them
            });
        });
    });
    w.finish()
}

fn extra_config_len(track: &TrackInit) -> usize {
    match track {
        TrackInit::Video(v) => v.avcc.len(),
        TrackInit::Audio(a) => a.asc.len(),
        TrackInit::Opus(_) => 0,
    }
}

fn write_matrix(w: &mut BoxWriter) {
    for value in UNITY_MATRIX {
        w.u32(value);
    }
}

fn write_mvhd(w: &mut BoxWriter, timescale: u32) {
    w.write_full_box(b"mvhd", 0, 0, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(timescale);
        w.u32(0); // duration: unknown, it is live
        w.u32(0x0001_0000); // rate 1.0
        w.u16(0x0100); // volume 1.0
        w.zeros(2 + 8); // reserved
        write_matrix(w);
        w.zeros(24); // pre_defined
        w.u32(TRACK_ID + 1); // next_track_ID
    });
}

fn write_trak(w: &mut BoxWriter, track: &TrackInit) {
    let (volume, width, height) = match track {
        TrackInit::Video(v) => (0, fixed_16_16(v.width), fixed_16_16(v.height)),
        TrackInit::Audio(_) | TrackInit::Opus(_) => (0x0100, 0, 0),
    };
    // flags 3 = track_enabled | track_in_movie: players skip disabled tracks.
    w.write_full_box(b"tkhd", 0, 0x00_0003, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(TRACK_ID);
        w.u32(0); // reserved
        w.u32(0); // duration
        w.zeros(8); // reserved
        w.u16(0); // layer
        w.u16(0); // alternate_group
        w.u16(volume);
        w.u16(0); // reserved
        write_matrix(w);
        w.u32(width);
        w.u32(height);
    });
    w.write_box(b"mdia", |w| {
        w.write_full_box(b"mdhd", 0, 0, |w| {
            w.u32(0); // creation_time
            w.u32(0); // modification_time
            w.u32(track.timescale());
            w.u32(0); // duration
            w.u16(LANGUAGE_UND);
            w.u16(0); // pre_defined
        });
        let (handler, name): (&[u8; 4], &[u8]) = match track {
            TrackInit::Video(_) => (b"vide", b"VideoHandler\0"),
            TrackInit::Audio(_) | TrackInit::Opus(_) => (b"soun", b"SoundHandler\0"),
        };
        w.write_full_box(b"hdlr", 0, 0, |w| {
            w.u32(0); // pre_defined
            w.bytes(handler);
            w.zeros(12); // reserved
            w.bytes(name);
        });
        w.write_box(b"minf", |w| write_minf(w, track));
    });
}

fn write_minf(w: &mut BoxWriter, track: &TrackInit) {
    match track {
        // flags 1 is mandated for vmhd; graphicsmode copy, opcolor 0.
        TrackInit::Video(_) => w.write_full_box(b"vmhd", 0, 1, |w| w.zeros(2 + 6)),
        // balance 0 (centre), reserved.
        TrackInit::Audio(_) | TrackInit::Opus(_) => {
            w.write_full_box(b"smhd", 0, 0, |w| w.zeros(2 + 2))
        }
    }
    w.write_box(b"dinf", |w| {
        w.write_full_box(b"dref", 0, 0, |w| {
            w.u32(1); // entry_count
                      // flags 1: the media data is in this file, no URL follows.
            w.write_full_box(b"url ", 0, 1, |_| {});
        });
    });
    w.write_box(b"stbl", |w| {
        w.write_full_box(b"stsd", 0, 0, |w| {
            w.u32(1); // entry_count
            match track {
                TrackInit::Video(v) => write_video_sample_entry(w, v),
                TrackInit::Audio(a) => write_audio_sample_entry(w, a),
                TrackInit::Opus(o) => write_opus_sample_entry(w, o),
            }
        });
        // No samples in the header: they all arrive in fragments.
        for empty in [b"stts", b"stsc", b"stco"] {
            w.write_full_box(empty, 0, 0, |w| w.u32(0)); // entry_count
        }
        w.write_full_box(b"stsz", 0, 0, |w| {
            w.u32(0); // sample_size: sizes are per sample
            w.u32(0); // sample_count
        });
    });
}

/// Pixels as 16.16 fixed point. Sizes above 65535 cannot be represented and
/// do not exist in H.264 (max 16 384 wide at level 6.2); saturate rather than
/// wrap so a bogus SPS cannot produce a tiny picture.
fn fixed_16_16(pixels: u32) -> u32 {
    pixels.min(0xFFFF) << 16
}
